# SPDX-License-Identifier: Apache-2.0
# Warnings for every Teiten target; -Werror when TEITEN_WERROR is on (CI).
function(teiten_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align
                                           # schema tables leave defaulted members out
                                           -Wno-missing-field-initializers)
  # g++ 12 at -O3 reports -Wrestrict false positives inside std::string's operator+
  # (GCC PR 105651, fixed in 13); the diagnostics point into libstdc++, not at our code.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
    # ... and -Wmismatched-new-delete false positives on coroutine frames that use a
    # class-specific operator new/delete (Boost.Asio's awaitable_frame), seen with
    # -fsanitize=thread at -O2.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(TEITEN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

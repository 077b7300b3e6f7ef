# SPDX-License-Identifier: Apache-2.0
# TEITEN_SANITIZERS: a comma list, checked like Zeek's ZEEK_SANITIZERS.
if(TEITEN_SANITIZERS)
  string(REPLACE "," ";" _teiten_sans "${TEITEN_SANITIZERS}")
  set(_teiten_flags "")
  foreach(_san IN LISTS _teiten_sans)
    string(STRIP "${_san}" _san)
    if(NOT _san MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "TEITEN_SANITIZERS: unknown sanitizer '${_san}' "
                          "(expected address, undefined, thread or leak)")
    endif()
    list(APPEND _teiten_flags "-fsanitize=${_san}")
  endforeach()
  if("thread" IN_LIST _teiten_sans AND "address" IN_LIST _teiten_sans)
    message(FATAL_ERROR "TEITEN_SANITIZERS: thread and address cannot be combined")
  endif()
  list(APPEND _teiten_flags -fno-omit-frame-pointer -fno-sanitize-recover=all)
  # Boost.Asio uses std::atomic_thread_fence, which g++ 12 flags under -fsanitize=thread
  # (-Wtsan). The fences are in Asio's scheduler, not in Teiten's own code.
  if("thread" IN_LIST _teiten_sans AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-tsan)
  endif()
  add_compile_options(${_teiten_flags})
  add_link_options(${_teiten_flags})
  add_compile_definitions(TEITEN_SANITIZED=1)
endif()

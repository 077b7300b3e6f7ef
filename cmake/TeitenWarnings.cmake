# Warnings for every Teiten target; -Werror when TEITEN_WERROR is on (CI).
function(teiten_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wnull-dereference)
  if(TEITEN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

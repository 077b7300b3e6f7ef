# SPDX-License-Identifier: Apache-2.0
# Hardening, as Debian's dpkg-buildflags (hardening=+all) would give: PIE, full RELRO
# (-z relro -z now), -fstack-protector-strong, stack clash protection, _FORTIFY_SOURCE=2
# and format-string errors. Checked on the packaged binaries with hardening-check
# (tests/packaging/check-packages.sh). Off under sanitizers: their runtimes replace the
# checked libc functions that _FORTIFY_SOURCE wraps.
option(TEITEN_HARDENING "Build hardened binaries (PIE, RELRO, stack protector, fortify)" ON)
if(TEITEN_HARDENING AND NOT TEITEN_SANITIZERS)
  include(CheckPIESupported)
  check_pie_supported(LANGUAGES CXX)
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)
  add_compile_options(-fstack-protector-strong -fstack-clash-protection -Wformat
                      -Werror=format-security)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|i.86)$")
    add_compile_options(-fcf-protection)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    add_compile_options(-mbranch-protection=standard)
  endif()
  # _FORTIFY_SOURCE needs optimisation; a Debug build would only warn.
  add_compile_options("$<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE;-D_FORTIFY_SOURCE=2>")
  add_link_options(-Wl,-z,relro -Wl,-z,now)
endif()

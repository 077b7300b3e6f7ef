# SPDX-License-Identifier: Apache-2.0
# Cross build for arm64 (Debian 12) with Debian's g++-aarch64-linux-gnu and a sysroot made
# by scripts/make-arm64-sysroot.sh: a sysroot, not multiarch, because some arm64 -dev
# packages cannot be installed beside their amd64 twins (yaml-cpp's).
#   cmake -B build/arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
#         -DTEITEN_SYSROOT=/var/cache/teiten/sysroot-arm64
# Test programs run under qemu-aarch64-static (ctest, catch_discover_tests).

# The sysroot: -DTEITEN_SYSROOT= or the environment; cached so that a re-run of CMake
# (ninja after an edit) does not need the environment again.
if(NOT TEITEN_SYSROOT AND DEFINED ENV{TEITEN_SYSROOT})
  set(TEITEN_SYSROOT "$ENV{TEITEN_SYSROOT}" CACHE PATH "arm64 sysroot (scripts/make-arm64-sysroot.sh)")
endif()
# Absolute: it ends up in compiler flags run from other directories.
if(NOT IS_ABSOLUTE "${TEITEN_SYSROOT}"
   OR NOT EXISTS "${TEITEN_SYSROOT}/usr/lib/aarch64-linux-gnu/libc.so")
  message(FATAL_ERROR "TEITEN_SYSROOT ('${TEITEN_SYSROOT}') is not the absolute path of an "
                      "arm64 sysroot: make one with scripts/make-arm64-sysroot.sh DIR, then "
                      "give -DTEITEN_SYSROOT=DIR (or TEITEN_SYSROOT=DIR in the environment)")
endif()
# try_compile projects (compiler checks, check_pie_supported) read this file again
# without the cache: hand the variable on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TEITEN_SYSROOT)

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_SYSROOT "${TEITEN_SYSROOT}")
# Known before the compiler is probed, so that find_package looks in
# <sysroot>/usr/lib/aarch64-linux-gnu/cmake (yaml-cpp, spdlog, fmt, date) from the start.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Libraries, headers and CMake packages from the sysroot only, never the host's amd64
# ones; programs (pkg-config, gzip) from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The host's pkg-config reads the sysroot's .pc files and prefixes their paths with it.
# PKG_CONFIG_LIBDIR (not _PATH) replaces the host's search path instead of adding to it.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${TEITEN_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${TEITEN_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${TEITEN_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# ctest and catch_discover_tests (at build time) run the arm64 test programs through this;
# -L: the arm64 loader and libraries come from the sysroot.
find_program(TEITEN_QEMU_AARCH64 qemu-aarch64-static)
if(NOT TEITEN_QEMU_AARCH64)
  message(FATAL_ERROR "qemu-aarch64-static not found (apt-get install qemu-user-static, "
                      "or run scripts/make-arm64-sysroot.sh): the tests run under it")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${TEITEN_QEMU_AARCH64};-L;${TEITEN_SYSROOT}")

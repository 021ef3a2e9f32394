# Cross-compiling eipgate for arm64 (Graviton) on an x86_64 Debian 12 host: Debian's
# g++-aarch64-linux-gnu against a sysroot of Debian's arm64 packages made by
# ami/cross/make-sysroot.sh. Used by ami/cross/build-deb.sh:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake -DEIPGATE_SYSROOT=/path ...
# Tests built this way run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so ctest works.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT EIPGATE_SYSROOT AND DEFINED ENV{EIPGATE_SYSROOT})
  set(EIPGATE_SYSROOT $ENV{EIPGATE_SYSROOT})
endif()
if(NOT EIPGATE_SYSROOT OR NOT EXISTS ${EIPGATE_SYSROOT}/usr/include/aarch64-linux-gnu)
  message(FATAL_ERROR "toolchain-aarch64: EIPGATE_SYSROOT='${EIPGATE_SYSROOT}' is not an arm64 "
                      "sysroot; make one with ami/cross/make-sysroot.sh arm64 DIR")
endif()
# try_compile projects get a fresh cache: pass the sysroot on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EIPGATE_SYSROOT)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_SYSROOT ${EIPGATE_SYSROOT})
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Libraries, headers and packages from the sysroot only; programs (clang for BPF, bpftool,
# python3) from the host.
set(CMAKE_FIND_ROOT_PATH ${EIPGATE_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${EIPGATE_SYSROOT})
set(ENV{PKG_CONFIG_LIBDIR}
    "${EIPGATE_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${EIPGATE_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

find_program(EIPGATE_QEMU_AARCH64 qemu-aarch64-static qemu-aarch64)
if(EIPGATE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EIPGATE_QEMU_AARCH64} -L ${EIPGATE_SYSROOT})
endif()

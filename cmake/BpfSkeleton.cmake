# eipgate_bpf_skeleton(<name> SOURCE <file.bpf.c> [DEPENDS <header>...]): clang -target bpf ->
# <name>.bpf.o -> bpftool gen skeleton -> <name>.skel.h in the current binary directory, made by
# the custom target <name>_skel. Programs include the source root (-I), so "bench/..." and
# "bpf/..." headers resolve as in C++. Link PkgConfig::LIBBPF next to the skeleton.
# Used by bpf/ (the steering program) and bench/xdpgen/ (generator and sink). When cross-compiling,
# CMAKE_SYSROOT holds the target's UAPI headers (cmake/toolchain-aarch64-linux-gnu.cmake).
include_guard(DIRECTORY)

find_program(EIPGATE_BPF_CLANG NAMES clang clang-16 clang-15 clang-14)
find_program(EIPGATE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
if(NOT EIPGATE_BPF_CLANG)
  message(FATAL_ERROR "clang not found; it compiles the BPF programs (-target bpf). "
                      "Debian: apt-get install clang llvm (scripts/setup.sh does).")
endif()
if(NOT EIPGATE_BPFTOOL)
  message(FATAL_ERROR "bpftool not found; it generates the libbpf skeletons. "
                      "Debian: apt-get install bpftool (scripts/setup.sh does).")
endif()
if(NOT TARGET PkgConfig::LIBBPF)
  pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
endif()

# BPF C includes the kernel UAPI headers, whose <asm/types.h> lives in the multiarch directory.
set(EIPGATE_BPF_ASM_DIR ${CMAKE_SYSROOT}/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
if(NOT CMAKE_LIBRARY_ARCHITECTURE OR NOT EXISTS ${EIPGATE_BPF_ASM_DIR}/asm/types.h)
  message(FATAL_ERROR "asm/types.h not found in '${EIPGATE_BPF_ASM_DIR}'. "
                      "Debian: apt-get install linux-libc-dev.")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(EIPGATE_BPF_ARCH arm64)
else()
  set(EIPGATE_BPF_ARCH x86)
endif()

function(eipgate_bpf_skeleton name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "SOURCE" "DEPENDS")
  if(NOT arg_SOURCE)
    message(FATAL_ERROR "eipgate_bpf_skeleton(${name}): SOURCE is required")
  endif()
  get_filename_component(src ${arg_SOURCE} ABSOLUTE)
  set(deps "")
  foreach(dep IN LISTS arg_DEPENDS)
    get_filename_component(dep ${dep} ABSOLUTE)
    list(APPEND deps ${dep})
  endforeach()
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${EIPGATE_BPF_CLANG} -O2 -g -target bpf -D__TARGET_ARCH_${EIPGATE_BPF_ARCH}
            -Wall -Wextra -Werror -I${EIPGATE_BPF_ASM_DIR} -I${PROJECT_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${deps}
    COMMENT "clang -target bpf ${name}.bpf.c"
    VERBATIM)
  # Written to a temporary first so a failed bpftool run leaves no truncated header behind.
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$3\" > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
            ${EIPGATE_BPFTOOL} ${obj} ${skel} ${name}
    DEPENDS ${obj}
    COMMENT "bpftool gen skeleton ${name}.bpf.o"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()

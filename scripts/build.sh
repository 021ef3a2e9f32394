#!/usr/bin/env bash
# Configures and builds eipgate with CMake + Ninja.
#   BUILD_DIR   build directory, relative to the repo root unless absolute (default: build)
#   BUILD_TYPE  CMAKE_BUILD_TYPE on first configure (default: RelWithDebInfo)
#   TARGETS     space-separated targets to build (default: all)
#   JOBS        parallel build jobs (default: nproc)
# Extra arguments go to the cmake configure step, e.g. scripts/build.sh -DEIPGATE_WERROR=ON.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

configure_args=(-S "${ROOT}" -B "${BUILD_DIR}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
# The generator can only be chosen on first configure; re-passing it to an existing tree is an error
# when that tree was made with another generator, so leave an existing tree's choice alone.
if [[ ! -f ${BUILD_DIR}/CMakeCache.txt ]]; then
  configure_args+=(-G Ninja)
fi

printf '[build] configuring %s (%s) %s\n' "${BUILD_DIR}" "${BUILD_TYPE}" "$*"
cmake "${configure_args[@]}" "$@"

build_args=(--build "${BUILD_DIR}" --parallel "${JOBS}")
if [[ -n ${TARGETS:-} ]]; then
  read -r -a targets <<<"${TARGETS}"
  build_args+=(--target "${targets[@]}")
fi
printf '[build] building %s\n' "${TARGETS:-all}"
cmake "${build_args[@]}"

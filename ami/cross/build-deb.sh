#!/bin/bash
# Builds the arm64 (Graviton) Debian package on an x86_64 Debian 12 machine, tests the arm64 build
# under qemu-user, and checks the package. One command, as root:
#   bash ami/cross/build-deb.sh            # -> build-arm64/eipgate_<ver>_arm64.deb
# 1. installs Debian's cross compiler (g++-aarch64-linux-gnu) and qemu-user-static
# 2. makes an arm64 sysroot from Debian's arm64 packages (ami/cross/make-sysroot.sh; cached)
# 3. configures with cmake/toolchain-aarch64-linux-gnu.cmake (Release, -Werror) and builds
# 4. runs the unit tests (gtest: engine, policy, NAT, config, ARP, admin, HA wire/FSM/sync with the
#    1M-event run, AWS SigV4/EC2/IMDS against the fakes, control) as arm64 code under
#    qemu-aarch64; not what needs an arm64 kernel (namespaces + DPDK e2e, BPF, the simulator)
# 5. computes Depends from the sysroot (ami/cross/shlibdeps.py), runs cpack and the package
#    checks of ami/tests/deb_lintian.sh (files, modes, Depends, conffiles, lintian clean), checks
#    the architecture of the package and of its programs, and runs the packaged programs (--check
#    of the example config, --help) under qemu
# Environment: BUILD_DIR (default build-arm64), SYSROOT (default /var/tmp/eipgate-sysroot-arm64),
# JOBS (default nproc), TESTS=0 to skip step 4.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "${ROOT}"
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build-arm64}")
SYSROOT=${SYSROOT:-/var/tmp/eipgate-sysroot-arm64}
JOBS=${JOBS:-$(nproc)}
TESTS=${TESTS:-1}
log() { printf '[cross-arm64] %s\n' "$*"; }
die() { printf '[cross-arm64] FAIL: %s\n' "$*" >&2; exit 1; }

need=()
for pkg in g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user-static dpkg-dev lintian; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || need+=("${pkg}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

bash "${ROOT}/ami/cross/make-sysroot.sh" "${SYSROOT}"

log "configure + build ${BUILD_DIR}"
cfg=(-S "${ROOT}" -B "${BUILD_DIR}" -DCMAKE_BUILD_TYPE=Release
     -DCMAKE_TOOLCHAIN_FILE="${ROOT}/cmake/toolchain-aarch64-linux-gnu.cmake"
     -DEIPGATE_SYSROOT="${SYSROOT}" -DEIPGATE_WERROR=ON -DEIPGATE_BENCH=OFF)
[[ -f ${BUILD_DIR}/CMakeCache.txt ]] || cfg+=(-G Ninja)
((TESTS)) || cfg+=(-DEIPGATE_TESTS=OFF)
cmake "${cfg[@]}" >/dev/null
cmake --build "${BUILD_DIR}" --parallel "${JOBS}"

progs=("${BUILD_DIR}/dataplane/eipgate-dataplane" "${BUILD_DIR}/control/daemon/eipgate-control"
       "${BUILD_DIR}/control/eipgatectl")
for p in "${progs[@]}"; do
  file -b "${p}" | grep -q 'ARM aarch64' || die "${p} is not an arm64 program: $(file -b "${p}")"
done

if ((TESTS)); then
  # Tests that run eipgatectl as a child (admin tests) exec an arm64 program: binfmt_misc hands it
  # to qemu, and QEMU_LD_PREFIX finds its libraries in the sysroot.
  bash "${ROOT}/ami/cross/binfmt-aarch64.sh"
  export QEMU_LD_PREFIX=${SYSROOT}
  # gtest cases (discovered through qemu at build time). Not here: the script tests (they need
  # an arm64 kernel for namespaces and DPDK, or are architecture-free: python, templates), and the
  # BPF tests that load programs into the kernel (qemu-user has no bpf(2): ENOSYS).
  log "unit tests as arm64 code under qemu-aarch64"
  ctest --test-dir "${BUILD_DIR}" --output-on-failure -j"${JOBS}" --no-tests=error \
    -E '^(dataplane_e2e_.*|policy_e2e_.*|nat_discovery_.*|sim_ha_e2e|ami_.*|aws_fake_awscli_fidelity|cost_model|control\.integration\..*|Steer(Xsk|Attach|ProgramTest|Skeleton)\..*|Table/SteerVerdict\..*)$'
fi

log "Depends from the sysroot"
python3 "${ROOT}/ami/cross/shlibdeps.py" "${SYSROOT}" "${progs[@]}" >"${BUILD_DIR}/packaging/shlibdeps.txt"
cat "${BUILD_DIR}/packaging/shlibdeps.txt"

log "package + checks"
DEB_OUT="${BUILD_DIR}" EXPECT_ARCH=arm64 bash "${ROOT}/ami/tests/deb_lintian.sh" "${BUILD_DIR}"
DEB=$(ls "${BUILD_DIR}"/eipgate_*_arm64.deb)
x=$(mktemp -d /tmp/eipgate-deb-arm64.XXXXXX)
trap 'rm -rf "${x}"' EXIT
dpkg-deb -x "${DEB}" "${x}"
q=(qemu-aarch64-static -L "${SYSROOT}")
"${q[@]}" "${x}/usr/sbin/eipgate-dataplane" --check --config "${ROOT}/dataplane/config/eipgate.example.yaml" \
  || die "packaged eipgate-dataplane --check"
"${q[@]}" "${x}/usr/sbin/eipgatectl" --help >/dev/null || die "packaged eipgatectl --help"
"${q[@]}" "${x}/usr/sbin/eipgate-control" --help >/dev/null || die "packaged eipgate-control --help"
log "ok: ${DEB} ($(du -k "${DEB}" | cut -f1) KiB)"

#!/usr/bin/env bash
# Installs the Debian 12 packages eipgate builds and tests with, the npm packages of iac/ (npm ci),
# and reserves 2 MiB hugepages for DPDK. Idempotent: a second run only queries dpkg, a stamp file
# and sysfs (no apt, no npm) when everything is already in place.
set -euo pipefail

readonly PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev llvm clang-format clang-tidy valgrind
  libdpdk-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libbpf-dev bpftool linux-libc-dev
  libcurl4-openssl-dev libssl-dev libpugixml-dev prometheus-cpp-dev
  python3-botocore python3-yaml lintian awscli
  iproute2 ethtool iputils-ping curl python3 iperf3 traceroute coturn dnsmasq nftables iptables netsniff-ng tcpdump gnuplot-nox
)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly MIN_HUGEPAGES=256
readonly HUGEPAGES_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
readonly HUGEPAGES_MOUNT=/dev/hugepages

log() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }

SUDO=()
if [[ ${EUID} -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    printf '[setup] ERROR: run as root (or install sudo)\n' >&2
    exit 1
  fi
fi

# --- packages -------------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)
  if [[ ${status} != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed"
else
  log "installing ${#missing[@]} missing package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# --- Node.js and the iac/ tests' npm packages (pinned in iac/package-lock.json) -------------------
# Debian 12's nodejs 18 and npm 9 suffice (aws-cdk-lib is pinned to its last release supporting
# Node 18); a node and npm already on PATH are used as they are. npm ci runs only when
# node_modules was not installed from this very lockfile with this node (a stamp file records it).
readonly IAC_DIR=${ROOT}/iac
readonly NPM_STAMP=${IAC_DIR}/node_modules/.eipgate-npm-ci
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm (Debian) for the iac/ tests"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
npm_want="$(sha256sum "${IAC_DIR}/package-lock.json" | cut -d' ' -f1) node $(node --version)"
if [[ -f ${NPM_STAMP} && $(<"${NPM_STAMP}") == "${npm_want}" ]]; then
  log "iac/node_modules already installed from package-lock.json"
else
  log "npm ci in iac/ (package-lock.json changed or node_modules missing)"
  (cd "${IAC_DIR}" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "${npm_want}" >"${NPM_STAMP}"
fi

# --- hugepages (DPDK) -----------------------------------------------------------------------------
# Best effort: containers often mount /sys read-only or forbid mount(2). The engine's unit tests and
# benchmarks need no hugepages; only the DPDK process does, so a failure here is a warning.
setup_hugepages() {
  if [[ ! -e ${HUGEPAGES_SYSFS} ]]; then
    warn "hugepages: ${HUGEPAGES_SYSFS} does not exist (kernel without 2 MiB hugepages?)"
    return 1
  fi
  local current
  current=$(<"${HUGEPAGES_SYSFS}")
  if ((current >= MIN_HUGEPAGES)); then
    log "hugepages: ${current} x 2 MiB reserved (>= ${MIN_HUGEPAGES}), left as is"
  else
    log "hugepages: ${current} x 2 MiB reserved, raising to ${MIN_HUGEPAGES}"
    if ! echo "${MIN_HUGEPAGES}" | "${SUDO[@]}" tee "${HUGEPAGES_SYSFS}" >/dev/null 2>&1; then
      warn "hugepages: cannot write ${HUGEPAGES_SYSFS} (read-only /sys in a container?)"
      return 1
    fi
    current=$(<"${HUGEPAGES_SYSFS}")
    if ((current < MIN_HUGEPAGES)); then
      # The kernel grants what it can find contiguous; report the shortfall rather than fail.
      warn "hugepages: kernel granted only ${current} of ${MIN_HUGEPAGES} (memory fragmented?)"
      return 1
    fi
    log "hugepages: now ${current} x 2 MiB"
  fi

  if awk -v m="${HUGEPAGES_MOUNT}" '$2 == m && $3 == "hugetlbfs" { found = 1 } END { exit !found }' \
    /proc/mounts; then
    log "hugepages: hugetlbfs already mounted at ${HUGEPAGES_MOUNT}"
  else
    log "hugepages: mounting hugetlbfs at ${HUGEPAGES_MOUNT}"
    if ! "${SUDO[@]}" mkdir -p "${HUGEPAGES_MOUNT}" ||
      ! "${SUDO[@]}" mount -t hugetlbfs -o pagesize=2M nodev "${HUGEPAGES_MOUNT}"; then
      warn "hugepages: cannot mount hugetlbfs at ${HUGEPAGES_MOUNT} (no CAP_SYS_ADMIN?)"
      return 1
    fi
  fi
  return 0
}

if ! setup_hugepages; then
  warn "hugepages not ready: builds and tests are unaffected; the DPDK process will need" \
    ">= ${MIN_HUGEPAGES} x 2 MiB hugepages (or --no-huge) to start"
fi

log "done"

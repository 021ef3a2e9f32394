#!/usr/bin/env bash
# The engine benchmark (also `scripts/demo.sh --bench`): builds the NAT engine and runs its
# micro-benchmark (the engine alone, fed packets built from bytes: no NIC, no DPDK I/O).
# Extra arguments go to the benchmark, e.g. --benchmark_filter=Fast.
#   BUILD_DIR  build directory (default: build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"

BUILD_DIR=${BUILD_DIR:-build}
BENCH=${BUILD_DIR}/bench/engine_bench

bash scripts/setup.sh
# RelWithDebInfo (-O2 -g) is optimised like a release build and keeps symbols for perf.
BUILD_DIR=${BUILD_DIR} BUILD_TYPE=RelWithDebInfo TARGETS=engine_bench bash scripts/build.sh \
  -DEIPGATE_BENCH=ON

if [[ ! -x ${BENCH} ]]; then
  printf '[demo] ERROR: %s was not built\n' "${BENCH}" >&2
  exit 1
fi

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
cat <<TEXT

eipgate engine benchmark
------------------------
What is measured: the NAT engine's per-packet work on one core: parse, flow lookup, address/port
rewrite with incremental checksums (established flows: 1k, 1M and 16M of them), and the slow path that
sets up new connections (port allocation, flow create). No NIC is involved, so these
are upper bounds for the engine, not end-to-end forwarding rates.
Targets (shared/DESIGN.md): established fast path >= 20 Mpps per core (<= 50 ns/packet),
new connections >= 3 M/s per core, <= 128 B of memory per tracked connection.
Machine: ${cpu:-unknown CPU}, $(nproc) CPU(s). Frequency scaling and noisy neighbours move these
numbers; compare runs on the same machine only.

TEXT

exec "${BENCH}" --benchmark_counters_tabular=true "$@"

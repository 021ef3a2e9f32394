#!/usr/bin/env bash
# One command for every benchmark: builds what it needs, runs the engine benchmark, the forwarding
# benchmark against iptables/nftables (bench/nat_xdp.sh), idle CPU, the failover comparison (when
# bench/failover.sh exists) and the cost model, and writes bench/results/report-<date>/report.md
# with gnuplot PNGs.
#
# Usage (root): bash bench/report.sh
# Environment: QUICK (1: shortened runs, < 10 min on a 2-vCPU guest once built), OUT_DIR (default
# bench/results/report-<date>), BUILD_DIR (build-bench), SKIP_BUILD (1: use BUILD_DIR as it is),
# SKIP (space-separated: engine nat_xdp idle failover cost), JOBS (build jobs, 2),
# FAILOVER_RUNS (runs of each setup in bench/failover.sh: 10, QUICK 1).
# A step that fails is recorded in report.log and its section says "not run"; the others go on.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${HERE}/.." && pwd)
cd "${ROOT}"
QUICK=${QUICK:-0}
DATE=$(date +%Y-%m-%d)
OUT_DIR=${OUT_DIR:-${ROOT}/bench/results/report-${DATE}}
BUILD_DIR=${BUILD_DIR:-build-bench}
[[ ${BUILD_DIR} == /* ]] || BUILD_DIR=${ROOT}/${BUILD_DIR}
SKIP=${SKIP:-}
PY=/usr/bin/python3
mkdir -p "${OUT_DIR}"
LOG=${OUT_DIR}/report.log
: >"${LOG}"
T0=$(date +%s)

log() { printf '[report %3ds] %s\n' $(($(date +%s) - T0)) "$*" | tee -a "${LOG}"; }
skipped() { [[ " ${SKIP} " == *" $1 "* ]]; }
# Runs a step with its output in the log; a failure is logged, not fatal.
step() {
  local name=$1; shift
  log "${name}: $*"
  if "$@" >>"${LOG}" 2>&1; then log "${name}: done"; else log "${name}: FAILED (exit $?)"; return 1; fi
}

((EUID == 0)) || log "WARNING: not root: nat_xdp, idle_latency and failover need root and will not run"
command -v gnuplot >/dev/null || { echo "report: gnuplot not found (bash scripts/setup.sh installs gnuplot-nox)" >&2; exit 1; }

# --- the machine, named in every figure ----------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
vm=$(systemd-detect-virt --vm 2>/dev/null || true)
[[ -z ${vm} || ${vm} == none ]] && grep -qw hypervisor /proc/cpuinfo && vm="virtualised (hypervisor flag)"
ct=$(systemd-detect-virt --container 2>/dev/null || true)
virt="bare metal"
[[ -n ${vm} && ${vm} != none ]] && virt="${vm^^} guest"
[[ -n ${ct} && ${ct} != none ]] && virt+=", in a ${ct} container"
mem_gib=$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
os=$(. /etc/os-release && echo "${PRETTY_NAME}")
short="$(nproc) vCPU ${cpu}, ${virt}, kernel $(uname -r)"
long="$(nproc) vCPUs of ${cpu}, ${virt}, ${mem_gib} GiB, ${os}, kernel $(uname -r), $(gcc -dumpfullversion 2>/dev/null | sed 's/^/gcc /'), build ${BUILD_DIR#"${ROOT}"/} (Release)"
commit=$(git -C "${ROOT}" rev-parse --short HEAD 2>/dev/null || echo unknown)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
write_machine() {
  "${PY}" - "$@" <<'EOF'
import json, sys
keys = ("short", "long", "date", "commit", "load_before", "load_after", "quick", "command", "file")
d = dict(zip(keys, sys.argv[1:]))
d["quick"] = d["quick"] == "1"
path = d.pop("file")
json.dump(d, open(path, "w"), indent=2)
EOF
}
cmd="bash bench/report.sh"
((QUICK)) && cmd="QUICK=1 ${cmd}"
write_machine "${short}" "${long}" "${DATE}" "${commit}" "${load_before}" "" "${QUICK}" "${cmd}" "${OUT_DIR}/machine.json"
log "machine: ${long}; load ${load_before}; QUICK=${QUICK}; output ${OUT_DIR}"

# --- build ---------------------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  step build env BUILD_DIR="${BUILD_DIR}" BUILD_TYPE=Release JOBS="${JOBS:-2}" \
    TARGETS="engine_bench eipgate-dataplane eipgatectl eipgate-control eipgate-xdpgen eipgate-xdpsink" bash scripts/build.sh
fi
DP=${BUILD_DIR}/dataplane/eipgate-dataplane

# --- engine: 1k / 1M / 16M flows, new connections/s, bytes per connection --------------------------
if ! skipped engine; then
  reps=3
  ((QUICK)) && reps=1
  rm -f "${OUT_DIR}/engine.json"
  step engine "${BUILD_DIR}/bench/engine_bench" --benchmark_repetitions=${reps} \
    --benchmark_report_aggregates_only=true --benchmark_counters_tabular=true \
    --benchmark_out="${OUT_DIR}/engine.json" --benchmark_out_format=json
fi

# --- eipgate vs iptables / nftables, same harness, same run (nat_xdp.md, .csv, .json) --------------
if ! skipped nat_xdp && ! skipped nat_compare && ((EUID == 0)); then
  if ((QUICK)); then
    step nat_xdp env OUT="${OUT_DIR}/nat_xdp.md" BUILD_DIR="${BUILD_DIR}" ROUNDS=1 DURATION=2 FLOWS=4096 \
      KEEPS="32 8 2 1" LABEL="QUICK report run: one short round" bash bench/nat_xdp.sh "${DP}"
  else
    step nat_xdp env OUT="${OUT_DIR}/nat_xdp.md" BUILD_DIR="${BUILD_DIR}" ROUNDS=3 \
      LABEL="report run, 3 rounds" bash bench/nat_xdp.sh "${DP}"
  fi
fi

# --- idle CPU and first-packet latency ------------------------------------------------------------
if ! skipped idle && ((EUID == 0)); then
  if ((QUICK)); then
    step idle env OUT="${OUT_DIR}/idle_latency.md" IDLE_S=5 SAMPLES=5 MODES="adaptive busy" \
      bash bench/idle_latency.sh "${DP}"
  else
    step idle env OUT="${OUT_DIR}/idle_latency.md" bash bench/idle_latency.sh "${DP}"
  fi
fi

# --- failover gap vs an alterNAT-style baseline (another engineer's script; optional) -------------
if ! skipped failover; then
  if [[ -x bench/failover.sh ]] && ((EUID == 0)); then
    # failover.sh writes bench/results/failover-<date>.md: keep whatever was there before (another
    # run's result) and move this run's into the report.
    fo_default=bench/results/failover-$(date +%F).md
    fo_saved=""
    if [[ -f ${fo_default} ]]; then fo_saved=$(mktemp) && cp -p "${fo_default}" "${fo_saved}"; fi
    rm -f "${OUT_DIR}/failover.md"
    runs=${FAILOVER_RUNS:-10}
    ((QUICK)) && runs=${FAILOVER_RUNS:-1}
    if step failover env BUILD_DIR="${BUILD_DIR}" bash bench/failover.sh "${runs}" && [[ -f ${fo_default} ]] \
      && { [[ -z ${fo_saved} ]] || ! cmp -s "${fo_default}" "${fo_saved}"; }; then
      cp "${fo_default}" "${OUT_DIR}/failover.md"
    fi
    if [[ -n ${fo_saved} ]]; then cp -p "${fo_saved}" "${fo_default}" && rm -f "${fo_saved}"
    else rm -f "${fo_default}"; fi
  else
    log "failover: not run (bench/failover.sh not present or not executable, or not root)"
  fi
fi

# --- cost model: per-core rates from this run's nat_xdp; a QUICK run's single short round is too
# noisy to size instances on, so QUICK leaves eipgate-cost to take the newest full result ----------
if ! skipped cost; then
  nc_args=()
  ((!QUICK)) && [[ -f ${OUT_DIR}/nat_xdp.csv ]] && nc_args=(--nat-compare "${OUT_DIR}/nat_xdp.csv")
  cost_table() { tools/cost/eipgate-cost --table --json "${nc_args[@]}" >"${OUT_DIR}/cost-grid.json"; }
  cost_series() { tools/cost/eipgate-cost --series --azs "$1" "${nc_args[@]}" >"${OUT_DIR}/cost-$1az.tsv"; }
  step cost-table cost_table
  step cost-series-2az cost_series 2
  step cost-series-3az cost_series 3
fi

# --- report ---------------------------------------------------------------------------------------
write_machine "${short}" "${long}" "${DATE}" "${commit}" "${load_before}" "$(cut -d' ' -f1-3 /proc/loadavg)" "${QUICK}" "${cmd}" "${OUT_DIR}/machine.json"
step report "${PY}" bench/report.py "${OUT_DIR}"
log "wrote ${OUT_DIR}/report.md in $(($(date +%s) - T0)) s"

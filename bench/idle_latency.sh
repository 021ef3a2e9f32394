#!/usr/bin/env bash
# Idle CPU and first-packet latency of eipgate-dataplane's adaptive polling: an idle NAT
# instance must use about 0% CPU (burstable t4g instances earn CPU credits only below their
# baseline), and the first packet after a quiet spell must not wait long for a sleeping worker.
#
#   client ns --veth--> NAT ns (eipgate-dataplane, af_xdp with steering) --veth--> internet ns
#
# For each polling mode it measures (adaptive: the defaults — backoff to 1 ms sleeps, 10 ms after
# 1 s of silence; adaptive-2ms: polling.deep_sleep_us 2000; busy: polling.adaptive false)
#  - idle CPU: the dataplane's utime+stime over IDLE_S seconds with no traffic, in % of one CPU;
#  - RTT of a ping through the NAT that follows GAP_S seconds of silence ("first packet after
#    idle"), SAMPLES times, against the RTT of back-to-back pings 2 ms apart (workers awake).
# The added first-packet latency is the difference of the medians.
#
# Usage (root): bench/idle_latency.sh [path to eipgate-dataplane]
# Environment: OUT (results file, default bench/results/idle_latency-<date>.md), IDLE_S (10),
# GAP_S (2), SAMPLES (10), MODES ("adaptive busy"), MODE (af_xdp_steer|af_packet).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${HERE}/.." && pwd)
DP=${1:-${DP:-${ROOT}/build/dataplane/eipgate-dataplane}}
IDLE_S=${IDLE_S:-10}
GAP_S=${GAP_S:-2}
SAMPLES=${SAMPLES:-10}
MODES=${MODES:-"adaptive adaptive-2ms busy"}
MODE=${MODE:-af_xdp_steer}
OUT=${OUT:-${ROOT}/bench/results/idle_latency-$(date +%Y-%m-%d).md}

die() { echo "idle_latency: $*" >&2; exit 1; }
((EUID == 0)) || die "run as root (network namespaces)"
[[ -x ${DP} ]] || die "dataplane not found: ${DP} (build it, or pass its path)"

# Namespaces, veth pairs and teardown as the end-to-end tests build them (tests/e2e/lib.sh):
# client 10.0.1.10 -- nin | NAT | nout -- 203.0.113.254, the server 198.51.100.7 on lo.
source "${ROOT}/tests/e2e/lib.sh"
e2e_init il
e2e_topology "${MODE}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) {print "nan"; exit} m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f\n", m}'; }

declare -A IDLE_CPU FIRST_MS WARM_MS SLEEPS
for polling in ${MODES}; do
  adaptive=true deep_sleep=10000
  [[ ${polling} == busy ]] && adaptive=false
  [[ ${polling} == adaptive-2ms ]] && deep_sleep=2000
  e2e_config "${WORK}/dp.yaml" "polling:
  adaptive: ${adaptive}
  deep_sleep_us: ${deep_sleep}
logging:
  level: warn"
  ip netns exec "${NAT}" "${DP}" --config "${WORK}/dp.yaml" >"${WORK}/dp.log" 2>&1 &
  DP_PID=$!
  for _ in $(seq 300); do
    [[ -S ${WORK}/dp.sock ]] && break
    kill -0 "${DP_PID}" 2>/dev/null || { cat "${WORK}/dp.log"; die "dataplane exited at start"; }
    sleep 0.2
  done
  in_ns "${CLI}" ping -c 3 -i 0.2 -W 2 198.51.100.7 >/dev/null || die "no connectivity through the NAT (${polling})"
  sleep 3  # let the workers settle into their idle state
  t0=$(cpu_ticks "${DP_PID}")
  sleep "${IDLE_S}"
  t1=$(cpu_ticks "${DP_PID}")
  hz=$(getconf CLK_TCK)
  IDLE_CPU[${polling}]=$(awk -v d=$((t1 - t0)) -v hz="${hz}" -v s="${IDLE_S}" 'BEGIN {printf "%.1f", 100 * d / hz / s}')
  : >"${WORK}/first.txt"
  for _ in $(seq "${SAMPLES}"); do
    sleep "${GAP_S}"
    in_ns "${CLI}" ping -c 1 -W 2 198.51.100.7 | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' >>"${WORK}/first.txt"
  done
  FIRST_MS[${polling}]=$(median <"${WORK}/first.txt")
  in_ns "${CLI}" ping -c 200 -i 0.002 -W 2 198.51.100.7 | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' |
    tail -n +11 | median >"${WORK}/warm.txt"
  WARM_MS[${polling}]=$(cat "${WORK}/warm.txt")
  SLEEPS[${polling}]=$(grep -c . "${WORK}/first.txt")
  kill -TERM "${DP_PID}"
  wait "${DP_PID}" 2>/dev/null || true
  DP_PID=""
  echo "${polling}: idle CPU ${IDLE_CPU[${polling}]}% of one core; first-packet RTT ${FIRST_MS[${polling}]} ms (median of ${SLEEPS[${polling}]}), warm RTT ${WARM_MS[${polling}]} ms"
done

mkdir -p "$(dirname "${OUT}")"
{
  echo "# Idle CPU and first-packet latency — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r);"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the busy row most: a"
  echo "busy-polling worker shares its core)."
  echo "Port mode: ${MODE}; one worker lcore + main lcore; idle window ${IDLE_S} s; first-packet"
  echo "samples: ${SAMPLES} pings each after ${GAP_S} s of silence; warm: 190 pings 2 ms apart."
  echo
  echo "| polling | idle CPU (% of one core, whole process) | first-packet RTT after ${GAP_S} s idle (median ms) | warm RTT (median ms) | added by waking up (ms) |"
  echo "|---|---|---|---|---|"
  for polling in ${MODES}; do
    added=$(awk -v a="${FIRST_MS[${polling}]}" -v b="${WARM_MS[${polling}]}" 'BEGIN {printf "%.3f", a - b}')
    echo "| ${polling} | ${IDLE_CPU[${polling}]} | ${FIRST_MS[${polling}]} | ${WARM_MS[${polling}]} | ${added} |"
  done
  echo
  echo "Reproduce: \`sudo bench/idle_latency.sh build/dataplane/eipgate-dataplane\`."
} >"${OUT}"
echo "written: ${OUT}"

#!/usr/bin/env bash
# Forwarding benchmark of the NAT itself: eipgate-dataplane (fast path, af_xdp, af_packet) versus
# Linux netfilter NAT (iptables MASQUERADE as fck-nat sets it up, nftables masquerade, nftables
# with a flowtable), with an XDP traffic generator and sink that are not the bottleneck
# (bench/xdpgen/), established flows, and the NAT's work on one core.
#
#   client ns --veth--> NAT ns (the NAT under test) --veth--> internet ns (sink / reflector)
#
# Usage (root): bench/nat_xdp.sh [path to eipgate-dataplane]
# Environment (defaults in brackets; bench/README.md, "Forwarding benchmark", says more):
#   MODES      [iptables nftables nft-flowtable eipgate-fastpath eipgate-af_xdp eipgate-af_packet]
#   FLOWS      flow counts, each a workload [4096 100000 1000000]
#   KEEPS      the generator's 1-in-k steps, lightest load first; the last is the overload [64 32 16 8 4 2 1]
#   DURATION   seconds per step [2]          ROUNDS  rounds, modes interleaved, medians [1]
#   WARM_KEEP  1-in-k of the warm-up passes [512]  WARM_PASSES  passes at most [6]
#   WARM_MIN   share of the flows that must have had a reply before the measurement [1]
#   OFFLOAD_WAIT  seconds to wait for the fast path to take every flow [15]
#   LAT_STAMP  1 in M frames stamped in the latency step [64]; LATENCY=0 skips the step
#   FLOWS_PER_DST  flows per destination address [16384]; PORTS_PER_SRC  source ports per inside address [1024]
#   NAT_CPU [1]  GEN_CPU [0]  NICE [-20; 0 leaves priorities alone]
#   BUILD_DIR [build-bench]  DP CTL GEN SINK (binaries)  OUT (.md; the .csv and .json go beside it)
#   DP_EXTRA_YAML (appended to the dataplane's config)  KEEP_WORK=1 (keep logs in /tmp)
#   DP_MAX_FLOWS [2M]  DP_EAL_ARGS ["--no-huge -m 512"] (the small-instance memory check sets both)
# Needs iproute2, ethtool, iptables, nftables, taskset, python3 and the four binaries.
set -Eeuo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${HERE}/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build-bench}
[[ ${BUILD_DIR} == /* ]] || BUILD_DIR=${ROOT}/${BUILD_DIR}
DP=${1:-${DP:-${BUILD_DIR}/dataplane/eipgate-dataplane}}
CTL=${CTL:-$(dirname "${DP}")/../control/eipgatectl}
GEN=${GEN:-${BUILD_DIR}/bench/xdpgen/eipgate-xdpgen}
SINK=${SINK:-${BUILD_DIR}/bench/xdpgen/eipgate-xdpsink}
MODES=${MODES:-"iptables nftables nft-flowtable eipgate-fastpath eipgate-af_xdp eipgate-af_packet"}
FLOWS=${FLOWS:-"4096 100000 1000000"}
KEEPS=${KEEPS:-"64 32 16 8 4 2 1"}
DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-1}
WARM_KEEP=${WARM_KEEP:-512}
WARM_PASSES=${WARM_PASSES:-6}
WARM_MIN=${WARM_MIN:-1}
OFFLOAD_WAIT=${OFFLOAD_WAIT:-15}
LATENCY=${LATENCY:-1}
LAT_STAMP=${LAT_STAMP:-64}
FLOWS_PER_DST=${FLOWS_PER_DST:-16384}
PORTS_PER_SRC=${PORTS_PER_SRC:-1024}
NAT_CPU=${NAT_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
NICE=${NICE:--20}
PY=/usr/bin/python3
DATE=$(date +%Y-%m-%d)
OUT=${OUT:-${ROOT}/bench/results/nat_xdp-${DATE}.md}
CSV=${OUT%.md}.csv
META=${OUT%.md}.json

# --- failing loudly: every phase names itself; the EXIT trap says which one failed ---------------
STEP="start"
step() { STEP=$*; echo "[nat_xdp] ${STEP}"; }
die() {
  echo "nat_xdp: FAILED at step '${STEP}': $*" >&2
  declare -F dump_devices >/dev/null && dump_devices >&2
  exit 1
}
trap 'echo "nat_xdp: command failed (exit $?) at line ${LINENO}: ${BASH_COMMAND}" >&2' ERR

((EUID == 0)) || die "run as root (network namespaces, XDP)"
for tool in ip ethtool iptables nft taskset; do
  command -v "${tool}" >/dev/null || die "${tool} not found (Debian: iproute2 ethtool iptables nftables util-linux)"
done
[[ -x ${PY} ]] || die "${PY} not found"
for bin in "${GEN}" "${SINK}"; do [[ -x ${bin} ]] || die "${bin} not built (cmake --build ${BUILD_DIR} --target eipgate-xdpgen eipgate-xdpsink)"; done
case " ${MODES} " in *" eipgate-"*)
  [[ -x ${DP} ]] || die "dataplane not found: ${DP} (build it, or pass its path)"
  [[ -x ${CTL} ]] || die "eipgatectl not found: ${CTL}" ;;
esac
(($(nproc) >= 2)) || die "needs at least 2 CPUs"
((NAT_CPU != GEN_CPU)) || die "NAT_CPU and GEN_CPU must differ"
for m in ${MODES}; do
  case ${m} in iptables | nftables | nft-flowtable | eipgate-fastpath | eipgate-af_xdp | eipgate-af_packet) ;;
    *) die "unknown mode ${m}" ;; esac
done
# iptables first (the latency step runs at half of iptables' peak of the same round), the rest in
# the order given.
MODES=$(tr ' ' '\n' <<<"${MODES}" | awk 'NF && !seen[$1]++' | awk '$1 == "iptables" { print; next } { rest = rest " " $1 } END { printf "%s", rest }' | xargs)

# Unique names: the NAPI kthreads are found by their device's name ("napi/<dev>-<id>"), and other
# tests on the machine use nin/nout.
P=nx$(($$ % 100000))
CLI=${P}c NAT=${P}n NET=${P}i           # namespaces
C0=${P}c0 NIN=${P}ni NOUT=${P}no I0=${P}i0  # client | NAT inside, NAT outside | internet
WORK=$(mktemp -d /tmp/nat_xdp.XXXXXX)
DP_PID="" SINK_PID="" CSINK_PID=""
SOFTIRQ_NICE=() SYSCTL_RESTORE=()

stop_pid() {  # pid, signal: stop a process this script started and wait for it
  local pid=$1 sig=${2:-TERM} _
  [[ -n ${pid} ]] || return 0
  kill "-${sig}" "${pid}" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}

teardown() {  # one measurement: processes, then namespaces (their veths, rules, conntrack, XDP go with them)
  stop_pid "${SINK_PID}" INT; SINK_PID=""
  stop_pid "${CSINK_PID}" INT; CSINK_PID=""
  if [[ -n ${DP_PID} ]]; then
    stop_pid "${DP_PID}" TERM
    rm -rf "/var/run/dpdk/eipgate${DP_PID}"
    DP_PID=""
  fi
  local ns
  for ns in "${CLI}" "${NAT}" "${NET}" "${P}ft"; do  # (${P}ft: the flowtable probe's, if it failed)
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "${ns}" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  trap - ERR
  teardown
  local e
  for e in "${SOFTIRQ_NICE[@]}"; do renice -n "${e##*:}" -p "${e%%:*}" >/dev/null 2>&1 || true; done
  for e in "${SYSCTL_RESTORE[@]}"; do echo "${e#*=}" >"${e%%=*}" 2>/dev/null || true; done
  if ((rc != 0)); then
    echo "nat_xdp: FAILED (exit ${rc}) at step '${STEP}'" >&2
    local f
    for f in "${WORK}"/dp.log "${WORK}"/*.err; do
      [[ -s ${f} ]] && { echo "--- ${f##*/} (last lines)" >&2; tail -15 "${f}" >&2; }
    done
  fi
  if [[ -n ${KEEP_WORK:-} ]]; then echo "nat_xdp: work files kept in ${WORK}" >&2; else rm -rf "${WORK}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "${ns}" "$@"; }

# --- priorities on a shared machine (NICE): ours by inheritance, the two ksoftirqd (restored) -------
if ((NICE != 0)); then
  renice -n "${NICE}" -p $$ >/dev/null
  for c in "${GEN_CPU}" "${NAT_CPU}"; do
    p=$(ps -e -o pid=,comm= | awk -v n="ksoftirqd/${c}" '$2 == n { print $1 }')
    [[ -n ${p} ]] || continue
    SOFTIRQ_NICE+=("${p}:$(ps -o ni= -p "${p}" | tr -d ' ')")
    renice -n "${NICE}" -p "${p}" >/dev/null
  done
fi

# --- conntrack sized for the largest workload (global settings, restored on exit) -----------------
max_flows=$(tr ' ' '\n' <<<"${FLOWS}" | sort -n | tail -1)
raise() {  # file, at least this value
  local cur
  cur=$(cat "$1")
  if ((cur < $2)); then SYSCTL_RESTORE+=("$1=${cur}"); echo "$2" >"$1"; fi
}
step "conntrack table sized for ${max_flows} flows"
raise /proc/sys/net/netfilter/nf_conntrack_max $((2 * max_flows))
raise /sys/module/nf_conntrack/parameters/hashsize "${max_flows}"

# --- the flowtable may not be built into this kernel: try it in a scratch namespace ---------------
FLOWTABLE_OK=1 FLOWTABLE_WHY=""
if [[ " ${MODES} " == *" nft-flowtable "* ]]; then
  step "probing for nftables flowtables"
  ip netns add "${P}ft"
  ip -n "${P}ft" link add "${P}d" type veth peer name "${P}e"  # (no dummy driver in every kernel)
  if ! why=$(ip netns exec "${P}ft" nft -f - 2>&1 <<NFT
table inet probe {
  flowtable ft { hook ingress priority 0; devices = { ${P}d }; }
}
NFT
  ); then
    # A kernel without CONFIG_NF_FLOW_TABLE answers ENOENT ("No such file or directory"); anything
    # else (a syntax error: nft too old for this ruleset) is the harness's problem, not the kernel's.
    grep -q "No such file or directory\|Operation not supported" <<<"${why}" || die "flowtable probe: ${why}"
    FLOWTABLE_OK=0
    FLOWTABLE_WHY="not available here: this kernel has no nftables flowtable (CONFIG_NF_FLOW_TABLE); creating one fails with '$(grep -o 'Error: .*' <<<"${why}" | head -1)'"
    echo "  ${FLOWTABLE_WHY}"
  fi
  ip netns del "${P}ft"
fi

cpumask() { printf '%x' $((1 << $1)); }
mac_of() { in_ns "$1" cat "/sys/class/net/$2/address"; }

# --- topology ------------------------------------------------------------------------------------
# client: C0 10.0.255.2/24 (the inside router; the flows' sources are 10.0.0.0/16 behind it)
# NAT:    NIN 10.0.255.1/24 | NOUT 203.0.113.2/24 (+ 203.0.113.1, eipgate's outside address)
# internet: I0 203.0.113.254/24 (the gateway; the destinations 198.51.100.x lie behind it)
# GRO on for every veth: a veth takes XDP-redirected frames only while it has NAPI (GRO or an XDP
# program), and with GRO the NAPI stays when XDP programs come and go, so its kthread, pinned once,
# stays pinned. GRO does not merge forwarded UDP. Checksum and segmentation offloads off. GRO is
# switched on once both ends are up: on a veth whose peer was down then, it gives no NAPI (6.18).
build_topology() {
  local ns
  for ns in "${CLI}" "${NAT}" "${NET}"; do ip netns add "${ns}"; in_ns "${ns}" ip link set lo up; done
  ip link add "${C0}" netns "${CLI}" type veth peer name "${NIN}" netns "${NAT}"
  ip link add "${NOUT}" netns "${NAT}" type veth peer name "${I0}" netns "${NET}"
  local pair dev
  for pair in "${CLI}:${C0}" "${NAT}:${NIN}" "${NAT}:${NOUT}" "${NET}:${I0}"; do
    ns=${pair%%:*} dev=${pair##*:}
    in_ns "${ns}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1"
    in_ns "${ns}" ip link set "${dev}" up
  done
  for pair in "${CLI}:${C0}" "${NAT}:${NIN}" "${NAT}:${NOUT}" "${NET}:${I0}"; do
    ns=${pair%%:*} dev=${pair##*:}
    in_ns "${ns}" ethtool -K "${dev}" tx off rx off tso off gso off gro on >/dev/null 2>&1 ||
      die "ethtool -K ${dev}"
  done
  in_ns "${CLI}" ip addr add 10.0.255.2/24 dev "${C0}"
  in_ns "${NET}" ip addr add 203.0.113.254/24 dev "${I0}"
  in_ns "${NAT}" ip addr add 10.0.255.1/24 dev "${NIN}"
  in_ns "${NAT}" ip addr add 203.0.113.2/24 dev "${NOUT}"
  MAC_C0=$(mac_of "${CLI}" "${C0}") MAC_NIN=$(mac_of "${NAT}" "${NIN}") MAC_I0=$(mac_of "${NET}" "${I0}")
  # NAPI threaded: each veth's receive work in its own kthread, pinned below.
  for pair in "${CLI}:${C0}" "${NAT}:${NIN}" "${NAT}:${NOUT}" "${NET}:${I0}"; do
    in_ns "${pair%%:*}" sh -c "echo 1 > /sys/class/net/${pair##*:}/threaded" || die "threaded NAPI on ${pair##*:}"
  done
}

# The NAT's veths' NAPI kthreads on NAT_CPU (SCHED_OTHER at NICE, sharing the core with the
# dataplane's worker as the scheduler sees fit: that competition is part of what is measured);
# the client's and the sink's on GEN_CPU, SCHED_FIFO (SINK_RT_PRIO), so that they preempt the
# generator as soon as frames arrive: at normal priority they wait out the generator's time
# slice while their 256-frame veth ring overflows, and the sink, not the NAT, would lose frames.
SINK_RT_PRIO=${SINK_RT_PRIO:-50}
pin_napi() {
  local dev cpu pids p
  for dev in "${NIN}:${NAT_CPU}" "${NOUT}:${NAT_CPU}" "${C0}:${GEN_CPU}" "${I0}:${GEN_CPU}"; do
    cpu=${dev##*:} dev=${dev%%:*}
    pids=$(ps -e -o pid=,comm= | awk -v pre="napi/${dev}-" 'index($2, pre) == 1 { print $1 }')
    [[ -n ${pids} ]] || die "no threaded NAPI kthread for ${dev}"
    for p in ${pids}; do
      taskset -pc "${cpu}" "${p}" >/dev/null
      if ((cpu == GEN_CPU)); then
        chrt -f -p "${SINK_RT_PRIO}" "${p}"
      elif ((NICE != 0)); then
        renice -n "${NICE}" -p "${p}" >/dev/null
      fi
      [[ $(taskset -pc "${p}" | awk '{ print $NF }') == "${cpu}" ]] || die "napi kthread ${p} (${dev}) not on CPU ${cpu}"
    done
  done
}

dump_devices() {  # the veths' counters, for a failed step
  local pair
  for pair in "${CLI}:${C0}" "${NAT}:${NIN}" "${NAT}:${NOUT}" "${NET}:${I0}"; do
    ip netns exec "${pair%%:*}" ip -s link show "${pair##*:}" 2>/dev/null || continue
    ip netns exec "${pair%%:*}" ethtool -S "${pair##*:}" 2>/dev/null | awk '$2 != 0' | sed 's/^/   /'
  done
  if [[ -n ${DP_PID} ]]; then
    echo "--- eipgatectl --json stats (non-zero counters)"
    dp_json 2>/dev/null | "${PY}" -c '
import json, sys
def walk(p, v):
    if isinstance(v, dict):
        for k, x in v.items(): walk(p + "." + k if p else k, x)
    elif isinstance(v, list):
        for i, x in enumerate(v): walk("%s[%d]" % (p, i), x)
    elif v: print("  ", p, v)
walk("", json.load(sys.stdin))' || true
    echo "--- eipgatectl --json xstats (non-zero)"
    "${CTL}" --socket "${WORK}/dp.sock" --json xstats 2>/dev/null | "${PY}" -c '
import json, sys
for p in json.load(sys.stdin).get("ports", []):
    print("  ", p.get("name"), {k: v for k, v in p.get("xstats", {}).items() if v})' || true
  fi
}

kernel_router() {  # the NAT namespace as a Linux router, set up the way fck-nat does it
  in_ns "${NAT}" ip route add 10.0.0.0/16 via 10.0.255.2 dev "${NIN}"
  in_ns "${NAT}" ip route add default via 203.0.113.254 dev "${NOUT}"
  # The sink and the client run XDP programs that would not answer every ARP in time: static.
  in_ns "${NAT}" ip neigh replace 10.0.255.2 lladdr "${MAC_C0}" dev "${NIN}" nud permanent
  in_ns "${NAT}" ip neigh replace 203.0.113.254 lladdr "${MAC_I0}" dev "${NOUT}" nud permanent
  in_ns "${NAT}" sysctl -qw net.ipv4.ip_forward=1
  local f
  for f in all default "${NIN}" "${NOUT}"; do in_ns "${NAT}" sysctl -qw "net.ipv4.conf.${f}.rp_filter=0"; done
  in_ns "${NAT}" sysctl -qw net.ipv4.conf.all.send_redirects=0
  in_ns "${NAT}" sysctl -qw "net.ipv4.conf.${NOUT}.send_redirects=0"
}

start_dataplane() {  # af_xdp | af_packet, fastpath true|false
  local kind=$1 fastpath=$2 in_dev out_dev
  in_ns "${NAT}" ip addr add 203.0.113.1/32 dev "${NOUT}"  # the steering layout: the kernel holds the addresses
  if [[ ${kind} == af_xdp ]]; then
    in_dev="net_af_xdp0,iface=${NIN},start_queue=0,queue_count=1"
    out_dev="net_af_xdp1,iface=${NOUT},start_queue=0,queue_count=1"
  else
    in_dev="net_af_packet0,iface=${NIN},qpairs=1,qdisc_bypass=1,framecnt=4096"
    out_dev="net_af_packet1,iface=${NOUT},qpairs=1,qdisc_bypass=1,framecnt=4096"
    # af_packet copies frames beside the kernel stack: the stack's own copy is dropped at the
    # netdev ingress hook (after the taps), on both ports (warm-up replies come in on the outside).
    local dev
    for dev in "${NIN}" "${NOUT}"; do
      in_ns "${NAT}" nft add table netdev "eg_${dev}"
      in_ns "${NAT}" nft add chain netdev "eg_${dev}" in "{ type filter hook ingress device ${dev} priority 0; policy drop; }"
    done
  fi
  cat >"${WORK}/dp.yaml" <<YAML
mode: two-armed
ports:
  - name: inside
    device: ${in_dev}
    $([[ ${in_dev} == net_af_packet* ]] && echo "af_packet_fragments: drop")
  - name: outside
    device: ${out_dev}
    $([[ ${out_dev} == net_af_packet* ]] && echo "af_packet_fragments: drop")
interface:
  address: 203.0.113.2/24
  inside_address: 10.0.255.1/24
next_hop:
  gateway: 203.0.113.254
  mac: "${MAC_I0}"
  inside_gateway: 10.0.255.2
nat:
  inside_prefixes: [10.0.0.0/16]
  outside_addresses: [203.0.113.1]
  max_flows: ${DP_MAX_FLOWS:-2M}
workers:
  lcores: [${NAT_CPU}]
  main_lcore: ${GEN_CPU}
eal:
  extra_args: "${DP_EAL_ARGS:---no-huge -m 512}"
exception_path:
  enabled: false
fastpath:
  enabled: ${fastpath}
# Egress probes come from an address no flow uses: the default (the inside prefix's network + 3,
# 10.0.0.3) would take the replies of that address's flows as probe strays and drop them.
probe:
  source: 10.0.254.3
admin:
  socket: ${WORK}/dp.sock
logging:
  level: info
${DP_EXTRA_YAML:-}
YAML
  ip netns exec "${NAT}" "${DP}" --config "${WORK}/dp.yaml" >"${WORK}/dp.log" 2>&1 &
  DP_PID=$!
  local _
  for _ in $(seq 1200); do
    grep -q "dataplane ready" "${WORK}/dp.log" && break
    kill -0 "${DP_PID}" 2>/dev/null || die "dataplane exited at start (log below)"
    sleep 0.1
  done
  grep -q "dataplane ready" "${WORK}/dp.log" || die "dataplane not ready after 120 s"
  ((NICE == 0)) || renice -n "${NICE}" -p "${DP_PID}" >/dev/null
  # The inside gateway is resolved by the dataplane's own ARP (the client's kernel answers); a
  # reply that finds it unresolved waits in the dataplane's ARP queue, and a lost one is made up
  # by the next warm-up pass.
  sleep 1
}

dp_json() { "${CTL}" --socket "${WORK}/dp.sock" --json stats; }
# A number from the dataplane's stats: a dotted path, or a key to sum wherever it appears.
dp_stat() {
  dp_json | "${PY}" -c '
import json, sys
d, key = json.load(sys.stdin), sys.argv[1]
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == key and isinstance(x, (int, float)): yield x
            else: yield from walk(x)
    elif isinstance(v, list):
        for x in v: yield from walk(x)
if "." in key:
    for part in key.split("."): d = d[part]
    print(d if isinstance(d, (int, float)) else len(d))
else:
    print(sum(walk(d)))' "$1"
}

setup_mode() {  # mode
  case $1 in
    iptables)  # fck-nat: ip_forward=1, rp_filter off, iptables -t nat ... -o <eni> -j MASQUERADE
      kernel_router
      in_ns "${NAT}" iptables -t nat -A POSTROUTING -o "${NOUT}" -j MASQUERADE -m comment --comment "NAT routing rule installed by fck-nat"
      ;;
    nftables)
      kernel_router
      in_ns "${NAT}" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oif "${NOUT}" masquerade; }
}
NFT
      ;;
    nft-flowtable)
      kernel_router
      in_ns "${NAT}" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oif "${NOUT}" masquerade; }
}
table inet filter {
  flowtable ft { hook ingress priority 0; devices = { ${NIN}, ${NOUT} }; }
  chain forward { type filter hook forward priority filter; policy accept; ip protocol { tcp, udp } flow add @ft; }
}
NFT
      ;;
    eipgate-fastpath) start_dataplane af_xdp true ;;
    eipgate-af_xdp) start_dataplane af_xdp false ;;
    eipgate-af_packet) start_dataplane af_packet false ;;
  esac
}

expected_src() { [[ $1 == eipgate-* ]] && echo 203.0.113.1 || echo 203.0.113.2; }

# --- counters --------------------------------------------------------------------------------------
cpu_ticks() {  # cpu -> "busy total" (jiffies)
  awk -v c="cpu$1" '$1 == c { idle = $5 + $6; t = 0; for (i = 2; i <= 9; i++) t += $i; print t - idle, t }' /proc/stat
}
# The NAT's own threads: its veths' NAPI kthreads and, for eipgate, the dataplane's threads that
# run on NAT_CPU (the worker lcore). Their CPU time (schedstat, ns) over a step is the NAT's work,
# which on a shared machine the core's /proc/stat figure (other tenants included) is not.
nat_tids() {
  ps -e -o pid=,comm= | awk -v a="napi/${NIN}-" -v b="napi/${NOUT}-" 'index($2, a) == 1 || index($2, b) == 1 { print $1 }'
  if [[ -n ${DP_PID} ]]; then
    local t
    for t in /proc/"${DP_PID}"/task/*; do
      [[ $(awk '/^Cpus_allowed_list/ { print $2 }' "${t}/status" 2>/dev/null) == "${NAT_CPU}" ]] && echo "${t##*/}"
    done
  fi
  return 0
}
nat_cpu_ns() {  # summed on-CPU ns of the given thread ids
  local t sum=0 v
  for t in "$@"; do
    v=$(awk '{ print $1 }' "/proc/${t}/schedstat" 2>/dev/null || echo 0)
    sum=$((sum + ${v:-0}))
  done
  echo "${sum}"
}
busy_pct() {  # "busy0 total0" "busy1 total1"
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
# Frames the NAT's transmit lost before the sink's program saw them (the sink's veth ring full):
# the NAT's outside veth's tx drops (skb path) and the sink veth's XDP-transmit errors (the
# NAT's own XDP redirects). Non-zero means the sink, not the NAT, was short of CPU.
sink_side_drops() {
  local a b
  a=$(in_ns "${NAT}" cat "/sys/class/net/${NOUT}/statistics/tx_dropped")
  b=$(in_ns "${NAT}" ethtool -S "${NOUT}" 2>/dev/null | awk '/xdp_xmit_errors/ { s += $2 } END { print s + 0 }')
  echo $((a + b))
}

# --- sinks and generator -------------------------------------------------------------------------
sink_start() {  # var (SINK_PID or CSINK_PID), ns, dev, name, options...
  local var=$1 ns=$2 dev=$3 name=$4 _ pid
  shift 4
  ip netns exec "${ns}" "${SINK}" --dev "${dev}" --json "$@" >"${WORK}/${name}.json" 2>"${WORK}/${name}.err" &
  pid=$!
  printf -v "${var}" '%s' "${pid}"
  ((NICE == 0)) || renice -n "${NICE}" -p "${pid}" >/dev/null
  for _ in $(seq 100); do
    grep -q attached "${WORK}/${name}.err" && return 0
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.05
  done
  die "sink on ${dev} did not attach: $(cat "${WORK}/${name}.err")"
}
sink_stop() {  # var
  local pid=${!1}
  kill -INT "${pid}" 2>/dev/null || die "sink ${pid} was gone before its report"
  wait "${pid}" || die "sink ${pid} failed"
  printf -v "$1" '%s' ""
}

GEN_ARGS=()
gen_run() {  # name, generator options... (into C0, so frames arrive at the NAT's inside veth)
  local name=$1
  shift
  in_ns "${CLI}" "${GEN}" --dev "${C0}" --dst-mac "${MAC_NIN}" --cpu "${GEN_CPU}" --json \
    "${GEN_ARGS[@]}" "$@" >"${WORK}/${name}.json" 2>"${WORK}/${name}.err" ||
    die "generator failed: $(cat "${WORK}/${name}.err")"
  ! grep -q warning "${WORK}/${name}.err" || die "$(cat "${WORK}/${name}.err")"
}
jget() { "${PY}" -c 'import json,sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

# --- warm-up: one frame per flow, reflected by the sink, until every flow has had its reply --------
# The client-side sink counts distinct reply 5-tuples over all passes (a flow's reply is unique to
# it), so a pass that loses frames is made up by the next one, and "every flow established" is
# checked, not assumed. Sets WARM_SEEN (flows answered).
warm_flows_seen() {  # from the client sink's latest --interval line
  awk '/ flows / { n = $NF } END { print n + 0 }' "${WORK}/warm-cli.err"
}
warm_up() {  # mode flows
  local mode=$1 flows=$2 pass want _
  want=$(awk -v f="${flows}" -v m="${WARM_MIN}" 'BEGIN { w = f * m; printf "%d", (w == int(w)) ? w : int(w) + 1 }')
  WARM_SEEN=0
  sink_start CSINK_PID "${CLI}" "${C0}" warm-cli --pass-arp --count-flows $((flows + 4096)) --interval 0.2
  for pass in $(seq "${WARM_PASSES}"); do
    step "${mode} ${flows} flows: warm-up pass ${pass} (1 frame per flow, keep 1 in ${WARM_KEEP}, sink reflects)"
    sink_start SINK_PID "${NET}" "${I0}" warm-refl --reflect --pass-arp --expect-src "$(expected_src "${mode}")"
    gen_run warm-gen --keep "${WARM_KEEP}" --count "${flows}" --duration 300
    sleep 0.5  # replies in flight, and a fresh line from the client sink
    sink_stop SINK_PID
    WARM_SEEN=$(warm_flows_seen)
    printf '  sent %s at %s pps; reflected %s (wrong source %s); flows answered so far %s of %s\n' \
      "$(jget "${WORK}/warm-gen.json" sent)" "$(jget "${WORK}/warm-gen.json" offered_pps)" \
      "$(jget "${WORK}/warm-refl.json" reflected)" "$(jget "${WORK}/warm-refl.json" wrong_src)" \
      "${WARM_SEEN}" "${flows}"
    csv_row "${mode}" "${flows}" warmup "${WARM_KEEP}" "${WORK}/warm-gen.json" "${WORK}/warm-refl.json" "" "" "" \
      "pass ${pass}: flows answered ${WARM_SEEN} of ${flows}"
    ((WARM_SEEN >= want)) && break
  done
  sink_stop CSINK_PID
  ((WARM_SEEN >= want)) ||
    die "${mode}: after ${WARM_PASSES} warm-up passes ${WARM_SEEN} of ${flows} flows had a reply (WARM_MIN ${WARM_MIN})"
  [[ $(jget "${WORK}/warm-cli.json" flows_full) == 0 ]] || die "the client sink's flow table was full"
}

# The fast path carries a flow once the dataplane has offloaded it: wait for flows_offloaded.
OFFLOADED=""
wait_offload() {  # flows
  local want=$1 t0 n=0 on
  t0=$(date +%s)
  step "eipgate-fastpath: waiting up to ${OFFLOAD_WAIT} s for flows_offloaded >= $1"
  on=$(dp_json | "${PY}" -c 'import json, sys; f = json.load(sys.stdin).get("fastpath"); print("absent" if f is None else ("on" if f.get("on") else "off: " + str(f.get("off_reason"))))')
  if [[ ${on} != on ]]; then
    OFFLOADED="fast path ${on}"
    echo "  ${OFFLOADED}"
    return 0
  fi
  while :; do
    n=$(dp_stat totals.counters.flows_offloaded || echo 0)
    ((n >= want)) && break
    (($(date +%s) - t0 >= OFFLOAD_WAIT)) && break
    sleep 0.5
  done
  OFFLOADED="flows_offloaded ${n} of ${want}"
  echo "  ${OFFLOADED}"
}
# Packets the XDP fast path translated itself (steering counters fp_fwd_tx + fp_fwd_redirect,
# both ports); empty without a dataplane or without those counters.
fp_packets() {
  [[ -n ${DP_PID} ]] || return 0
  dp_json | "${PY}" -c '
import json, sys
st = json.load(sys.stdin).get("xdp_steer", {})
vals = [c.get(k) for c in st.values() if isinstance(c, dict) for k in ("fp_fwd_tx", "fp_fwd_redirect")]
vals = [v for v in vals if isinstance(v, int)]
print(sum(vals) if vals else "")'
}

# --- results -------------------------------------------------------------------------------------
CSV_HEADER="round,flows,mode,step,keep,offered_pps,sent,gen_seconds,nat_ring_refused,received,forwarded_pps,sink_pps,nat_busy_pct,gen_busy_pct,sink_side_drops,wrong_src,bad_ip_csum,bad_l4_csum,not_ipv4,lat_p50_ns,lat_p99_ns,note,nat_threads_pct,fastpath_packets"
csv_row() {  # mode flows step keep gen.json sink.json nat_busy gen_busy sink_side_drops note [nat_threads fastpath_packets]
  "${PY}" - "${ROUND}" "$@" >>"${WORK}/results.csv" <<'PY'
import csv, json, sys
rnd, mode, flows, step, keep, gj, sj, nb, gb, sd, note = sys.argv[1:12]
nt = sys.argv[12] if len(sys.argv) > 12 else ""
fp = sys.argv[13] if len(sys.argv) > 13 else ""
g = json.load(open(gj)) if gj != "-" else {}
s = json.load(open(sj)) if sj != "-" else {}
secs = g.get("seconds") or 0
# Forwarded: everything the sink counted for this run (it attached before the generator started
# and reports after the NAT's queues drained) over the generator's own clock window.
fwd = s.get("received", 0) / secs if secs else 0
row = [rnd, flows, mode, step, keep, g.get("offered_pps", ""), g.get("sent", ""), secs,
       g.get("dev_xdp_xmit_errors", ""), s.get("received", ""), "%.0f" % fwd if g else "",
       s.get("pps", ""), nb, gb, sd, s.get("wrong_src", ""), s.get("bad_ip_csum", ""),
       s.get("bad_l4_csum", ""), s.get("not_ipv4", ""), s.get("lat_p50_ns") or "",
       s.get("lat_p99_ns") or "", note, nt, fp]
csv.writer(sys.stdout, lineterminator="\n").writerow(row)
PY
}

# One load step: a fresh counting sink, the generator for DURATION, the NAT core's busy time.
load_step() {  # mode flows step keep [generator options]
  local mode=$1 flows=$2 kind=$3 keep=$4 n0 n1 g0 g1 d0 d1 tids t0 t1 c0 c1 fp0 fp1
  shift 4
  pin_napi
  sink_start SINK_PID "${NET}" "${I0}" sink --pass-arp --expect-src "$(expected_src "${mode}")"
  mapfile -t tids < <(nat_tids)
  fp0=$(fp_packets)
  d0=$(sink_side_drops); n0=$(cpu_ticks "${NAT_CPU}"); g0=$(cpu_ticks "${GEN_CPU}")
  c0=$(nat_cpu_ns "${tids[@]}"); t0=$(date +%s%N)
  gen_run gen --keep "${keep}" --duration "${DURATION}" "$@"
  c1=$(nat_cpu_ns "${tids[@]}"); t1=$(date +%s%N)
  n1=$(cpu_ticks "${NAT_CPU}"); g1=$(cpu_ticks "${GEN_CPU}")
  sleep 0.2  # the NAT's queues drain into the sink
  d1=$(sink_side_drops)
  sink_stop SINK_PID
  fp1=$(fp_packets)
  [[ -z ${DP_PID} ]] || kill -0 "${DP_PID}" 2>/dev/null || die "dataplane died"
  csv_row "${mode}" "${flows}" "${kind}" "${keep}" "${WORK}/gen.json" "${WORK}/sink.json" \
    "$(busy_pct "${n0}" "${n1}")" "$(busy_pct "${g0}" "${g1}")" $((d1 - d0)) "${NOTE:-}" \
    "$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", (t > 0 ? 100 * c / t : 0) }')" \
    "$([[ -n ${fp0} && -n ${fp1} ]] && echo $((fp1 - fp0)))"
  tail -1 "${WORK}/results.csv" | awk -F, '{ printf "  keep %-3s offered %9.0f pps  forwarded %9.0f pps  NAT core %3s%% (its threads %3s%%)  refused at NAT ring %s  lost at sink %s  wrong src %s%s%s\n", $5, $6, $11, $13, $23, $9, $15, $16, ($24 != "" ? "  by the fast path " $24 : ""), ($20 != "" ? "  latency p50 " $20 " ns p99 " $21 " ns" : "") }'
  if (($(awk -F, 'END { print $16 + 0 }' "${WORK}/results.csv") > 0)); then
    die "${mode}: the sink saw packets from a source other than $(expected_src "${mode}")"
  fi
}

# The keep that offers about the target rate, from this mode's sweep (offered ~ 1 / (a + b k)
# between the two steps around it).
keep_for_rate() {  # mode flows target_pps
  "${PY}" - "${WORK}/results.csv" "${ROUND}" "$1" "$2" "$3" <<'PY'
import csv, sys
path, rnd, mode, flows, target = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
pts = sorted((int(r["keep"]), float(r["offered_pps"])) for r in csv.DictReader(open(path))
             if r["round"] == rnd and r["mode"] == mode and r["flows"] == flows and r["step"] == "sweep")
if len(pts) < 2 or target >= pts[0][1]:
    print(pts[0][0] if pts else 1); sys.exit()
for (k0, r0), (k1, r1) in zip(pts, pts[1:]):
    if r1 <= target <= r0 or (k1, r1) == pts[-1]:
        break
if r0 == r1 or k0 == k1:
    print(k0); sys.exit()
b = (1 / r1 - 1 / r0) / (k1 - k0)
a = 1 / r0 - b * k0
print(max(1, round((1 / target - a) / b)) if b > 0 else k0)
PY
}

# One mode at one flow count in one round.
measure() {  # mode flows
  local mode=$1 flows=$2 dsts srcs
  if [[ ${mode} == nft-flowtable && ${FLOWTABLE_OK} == 0 ]]; then
    csv_row "${mode}" "${flows}" unavailable "" - - "" "" "" "${FLOWTABLE_WHY}"
    return 0
  fi
  dsts=$(((flows + FLOWS_PER_DST - 1) / FLOWS_PER_DST))
  srcs=$(((flows + PORTS_PER_SRC - 1) / PORTS_PER_SRC))
  ((dsts <= 254)) || die "${flows} flows need ${dsts} destinations (FLOWS_PER_DST ${FLOWS_PER_DST}); 254 at most"
  ((srcs <= 65024)) || die "${flows} flows need ${srcs} inside addresses; raise PORTS_PER_SRC"
  # Flow f: source 10.0.0.1 + f / PORTS_PER_SRC, port 1024 + f % PORTS_PER_SRC; destination
  # 198.51.100.1 + f % dsts, port 9. Never two flows with one 5-tuple, at most FLOWS_PER_DST flows
  # per destination (a NAT's ports are per destination: 64512 from 1024 up).
  GEN_ARGS=(--flows "${flows}" --src-ip 10.0.0.1 --sport-base 1024 --ports-per-addr "${PORTS_PER_SRC}"
    --dst-ip 198.51.100.1 --dst-count "${dsts}")
  step "${mode} ${flows} flows (round ${ROUND}): topology"
  build_topology
  step "${mode} ${flows} flows (round ${ROUND}): set up the NAT"
  setup_mode "${mode}"
  in_ns "${NET}" ip route add 198.51.100.0/24 dev lo  # not needed by the sink; keeps its kernel quiet
  pin_napi
  warm_up "${mode}" "${flows}"
  OFFLOADED=""
  [[ ${mode} != eipgate-fastpath ]] || wait_offload "${flows}"
  local keep
  NOTE=""
  [[ -z ${OFFLOADED} ]] || NOTE=${OFFLOADED}
  for keep in ${KEEPS}; do
    step "${mode} ${flows} flows (round ${ROUND}): load step keep ${keep}"
    load_step "${mode}" "${flows}" sweep "${keep}"
  done
  if ((LATENCY)); then
    local base k
    base=$(awk -F, -v r="${ROUND}" -v f="${flows}" '$1 == r && $2 == f && $3 == "iptables" && $4 == "sweep" && $11 > m { m = $11 } END { print m + 0 }' "${WORK}/results.csv")
    if ((base > 0)); then
      k=$(keep_for_rate "${mode}" "${flows}" $((base / 2)))
      step "${mode} ${flows} flows (round ${ROUND}): latency at half of iptables' peak ($((base / 2)) pps: keep ${k})"
      NOTE="target $((base / 2)) pps${OFFLOADED:+; ${OFFLOADED}}"
      load_step "${mode}" "${flows}" latency "${k}" --stamp "${LAT_STAMP}"
    fi
  fi
  # The dataplane's counters after the mode (kept with KEEP_WORK=1).
  [[ -z ${DP_PID} ]] || dp_json >"${WORK}/dp-stats-${mode}-${flows}-r${ROUND}.json" 2>/dev/null || true
  step "${mode} ${flows} flows (round ${ROUND}): teardown"
  teardown
}

# --- run -----------------------------------------------------------------------------------------
echo "${CSV_HEADER}" >"${WORK}/results.csv"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
echo "nat_xdp: ${ROUNDS} round(s) x flows {${FLOWS}} x modes {${MODES}}; steps keep {${KEEPS}} x ${DURATION} s; load average ${load_before}"
for ROUND in $(seq "${ROUNDS}"); do
  for flows in ${FLOWS}; do
    for mode in ${MODES}; do measure "${mode}" "${flows}"; done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

step "writing the results"
mkdir -p "$(dirname "${OUT}")"
cp "${WORK}/results.csv" "${CSV}"
# The run's settings and machine, passed through the environment (no quoting to get wrong).
M_DATE=$(date -u +%Y-%m-%dT%H:%MZ) M_COMMIT=$(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown) \
M_MODEL=$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }') \
M_HYP=$(lscpu | awk -F: '/^Hypervisor vendor/ { gsub(/^ +/, "", $2); print $2; exit }') \
M_VIRT=$(grep -qw hypervisor /proc/cpuinfo && echo "virtual machine (hypervisor CPU flag)" || echo "bare metal") \
M_VCPUS=$(nproc) M_KERNEL=$(uname -r) M_MEM=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) \
M_LOAD0=${load_before} M_LOAD1=${load_after} M_SECONDS=$(($(date +%s) - t_start)) M_MODES=${MODES} M_FLOWS=${FLOWS} \
M_KEEPS=${KEEPS} M_DURATION=${DURATION} M_ROUNDS=${ROUNDS} M_NAT_CPU=${NAT_CPU} M_GEN_CPU=${GEN_CPU} M_NICE=${NICE} \
M_WARM_KEEP=${WARM_KEEP} M_LAT_STAMP=${LAT_STAMP} M_FPD=${FLOWS_PER_DST} M_PPS=${PORTS_PER_SRC} \
M_FLOWTABLE=${FLOWTABLE_WHY:-available} M_LABEL=${LABEL:-} "${PY}" - "${META}" <<'PY'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "commit": e["M_COMMIT"], "cpu_model": e["M_MODEL"] or "unknown",
    "hypervisor": e["M_HYP"], "virt": e["M_VIRT"], "vcpus": int(e["M_VCPUS"]), "kernel": e["M_KERNEL"], "mem_gib": int(e["M_MEM"]),
    "load_before": e["M_LOAD0"], "load_after": e["M_LOAD1"], "seconds": int(e["M_SECONDS"]),
    "modes": e["M_MODES"].split(), "flows": [int(x) for x in e["M_FLOWS"].split()],
    "keeps": [int(x) for x in e["M_KEEPS"].split()], "duration_s": float(e["M_DURATION"]),
    "rounds": int(e["M_ROUNDS"]), "nat_cpu": int(e["M_NAT_CPU"]), "gen_cpu": int(e["M_GEN_CPU"]),
    "nice": int(e["M_NICE"]), "warm_keep": int(e["M_WARM_KEEP"]), "lat_stamp": int(e["M_LAT_STAMP"]),
    "flows_per_dst": int(e["M_FPD"]), "ports_per_src": int(e["M_PPS"]), "flowtable": e["M_FLOWTABLE"],
    "label": e["M_LABEL"],
}, open(sys.argv[1], "w"), indent=2)
PY
"${PY}" "${HERE}/nat_xdp_report.py" "${CSV}" "${META}" >"${OUT}"
cat "${OUT}"
echo
echo "written: ${OUT}, ${CSV}, ${META} ($(($(date +%s) - t_start)) s)"

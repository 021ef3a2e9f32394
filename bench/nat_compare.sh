#!/usr/bin/env bash
# Forwarding packets/s: eipgate-dataplane (af_xdp, af_packet) versus Linux netfilter NAT
# (iptables MASQUERADE the way fck-nat sets it up, nftables masquerade) and plain kernel
# forwarding as a reference — same namespace harness, same traffic generator, same run.
#
#   client ns --veth--> NAT ns (the NAT under test) --veth--> internet ns (the sink)
#
# Usage (root): bench/nat_compare.sh [path to eipgate-dataplane]
# Environment: OUT (results file, default bench/results/nat_compare-<date>.md), RATES (offered
# rates in pps stepped through per mode, "max" = as fast as trafgen goes; default
# "50000 100000 200000 400000 800000 max"), DURATION (s per step, 4), WARMUP (s, 1), ROUNDS (3;
# modes interleaved round by round, medians reported), FLOWS (UDP flows, 4096), MODES (space-separated subset of the modes below),
# NAT_CPU (1), GEN_CPU (0), DP_EXTRA_YAML (appended to the dataplane's config, e.g. a
# "polling:" section), NICE (-20; 0 leaves priorities alone): this script and everything it
# starts (generator, dataplane), the af_xdp NAPI kthread and ksoftirqd/GEN_CPU, ksoftirqd/NAT_CPU
# (restored on exit) run at this nice level, so that other work on a shared machine takes little
# of the two cores while the kernel's deferred softirq work still gets its fair share next to a
# busy-polling worker. Needs iptables, nftables, netsniff-ng (trafgen), ethtool, iproute2.
#
# "One core each" on veth (see bench/README.md, "Forwarding versus Linux netfilter"):
#  - GEN_CPU runs the traffic generator (trafgen, one process) and the sink's receive path;
#  - NAT_CPU runs everything the NAT does. veth has no interrupts: a frame sent into a veth is
#    received in the softirq of the *sending* CPU. RPS on the NAT's inside veth moves that receive
#    processing (kernel NAT: conntrack, routing, MASQUERADE, transmit; af_packet: the copy into
#    the PMD's ring) to NAT_CPU; in af_xdp mode the XDP program and the copy into the UMEM run in
#    the veth's NAPI, which is made threaded and its kthread pinned to NAT_CPU. The dataplane's
#    worker lcore is NAT_CPU. RPS on the sink's veth sends the sink's receive back to GEN_CPU, so
#    the NAT's transmit ends at the veth. Per-core busy time comes from /proc/stat.
#  - The sink drops the packets in the routing lookup (blackhole route, no ICMP); "received" is
#    the sink veth's rx_packets counter over DURATION seconds.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${HERE}/.." && pwd)
DP=${1:-${DP:-${ROOT}/build-nf/dataplane/eipgate-dataplane}}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
RATES=${RATES:-"50000 100000 200000 400000 800000 max"}
ROUNDS=${ROUNDS:-3}
FLOWS=${FLOWS:-4096}
NAT_CPU=${NAT_CPU:-1}
NICE=${NICE:--20}  # see the header
GEN_CPU=${GEN_CPU:-0}
MODES=${MODES:-"iptables nftables eipgate-af_xdp eipgate-af_packet linux-forward"}
CTL=${CTL:-$(dirname "${DP}")/../control/eipgatectl}  # optional: dataplane counters after each run
OUT=${OUT:-${ROOT}/bench/results/nat_compare-$(date +%Y-%m-%d).md}

die() { echo "nat_compare: $*" >&2; exit 1; }
((EUID == 0)) || die "run as root (network namespaces)"
for tool in ip ethtool iptables nft trafgen taskset; do
  command -v "${tool}" >/dev/null || die "${tool} not found (Debian: iproute2 ethtool iptables nftables netsniff-ng util-linux)"
done
(($(nproc) >= 2)) || die "needs at least 2 CPUs"
((GEN_CPU == 0)) || die "GEN_CPU must be 0 (trafgen -P 1 binds its one process to CPU 0)"
((NAT_CPU != GEN_CPU)) || die "NAT_CPU and GEN_CPU must differ"
case " ${MODES} " in *" eipgate-"*) [[ -x ${DP} ]] || die "dataplane not found: ${DP} (build it, or pass its path)" ;; esac

S=nc$$
CLI=${S}c NAT=${S}n NET=${S}i
WORK=$(mktemp -d)
DP_PID="" GEN_PID=""
SOFTIRQ_NICE=()

in_ns() { local ns=$1; shift; ip netns exec "${ns}" "$@"; }

stop_pid() {  # pid, signal: stop one process we started and wait for it
  local pid=$1 sig=${2:-TERM}
  [[ -n ${pid} ]] || return 0
  kill "-${sig}" "${pid}" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}

teardown() {  # everything of one measurement: processes, namespaces (their rules, conntrack, XDP go with them)
  stop_pid "${GEN_PID}" INT; GEN_PID=""
  stop_pid "${DP_PID}" TERM; DP_PID=""
  for ns in "${CLI}" "${NAT}" "${NET}"; do
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "${ns}" 2>/dev/null || true
  done
}
cleanup() {
  local rc=$?
  teardown
  for e in "${SOFTIRQ_NICE[@]}"; do renice -n "${e##*:}" -p "${e%%:*}" >/dev/null 2>&1 || true; done
  if ((rc != 0)); then
    echo "nat_compare: failed (exit ${rc}); last dataplane log:" >&2
    tail -20 "${WORK}/dp.log" 2>/dev/null >&2 || true
  fi
  rm -rf "${WORK}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Priorities (NICE): ours by inheritance; the two ksoftirqd threads, restored by cleanup.
if ((NICE != 0)); then
  renice -n "${NICE}" -p $$ >/dev/null
  for c in "${GEN_CPU}" "${NAT_CPU}"; do
    p=$(ps -e -o pid=,comm= | awk -v n="ksoftirqd/${c}" '$2 == n { print $1 }')
    [[ -n ${p} ]] || continue
    SOFTIRQ_NICE+=("${p}:$(ps -o ni= -p "${p}" | tr -d ' ')")
    renice -n "${NICE}" -p "${p}" >/dev/null
  done
fi

cpumask() { printf '%x' $((1 << $1)); }

# --- one measurement's topology: client 10.0.1.10/24 -- [nin | NAT | nout] -- 203.0.113.254 (sink)
build_topology() {
  for ns in "${CLI}" "${NAT}" "${NET}"; do ip netns add "${ns}"; in_ns "${ns}" ip link set lo up; done
  ip link add c0 netns "${CLI}" type veth peer name nin netns "${NAT}"
  ip link add nout netns "${NAT}" type veth peer name i0 netns "${NET}"
  # As in tests/e2e/dataplane_e2e.sh: no offloads (a NIC hands over plain frames, no super-frames).
  for pair in "${CLI}:c0" "${NAT}:nin" "${NAT}:nout" "${NET}:i0"; do
    local ns=${pair%%:*} dev=${pair##*:}
    in_ns "${ns}" ethtool -K "${dev}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "${ns}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1" || true
    in_ns "${ns}" ip link set "${dev}" up
  done
  in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
  in_ns "${CLI}" ip route add default via 10.0.1.1
  in_ns "${NET}" ip addr add 203.0.113.254/24 dev i0
  # The sink: forwarding on and a blackhole route, so each packet ends in the route lookup
  # silently (no ICMP back through the NAT, no socket).
  in_ns "${NET}" sysctl -qw net.ipv4.ip_forward=1
  in_ns "${NET}" ip route add blackhole 198.51.100.0/24
  # Receive steering (see the header): NAT work on NAT_CPU, the sink's receive on GEN_CPU.
  in_ns "${NAT}" sh -c "echo $(cpumask "${NAT_CPU}") > /sys/class/net/nin/queues/rx-0/rps_cpus"
  in_ns "${NET}" sh -c "echo $(cpumask "${GEN_CPU}") > /sys/class/net/i0/queues/rx-0/rps_cpus"
}

kernel_router() {  # the NAT namespace as a Linux router, set up the way fck-nat does it
  in_ns "${NAT}" ip addr add 10.0.1.1/24 dev nin
  in_ns "${NAT}" ip addr add 203.0.113.2/24 dev nout
  in_ns "${NAT}" ip route add default via 203.0.113.254
  in_ns "${NAT}" sysctl -qw net.ipv4.ip_forward=1
  for f in all default nin nout; do in_ns "${NAT}" sysctl -qw "net.ipv4.conf.${f}.rp_filter=0"; done
  in_ns "${NAT}" sysctl -qw net.ipv4.conf.nout.send_redirects=0
  in_ns "${NAT}" sysctl -qw net.ipv4.conf.all.send_redirects=0
}

start_dataplane() {  # device kind
  local kind=$1 in_dev out_dev
  if [[ ${kind} == af_xdp ]]; then
    in_dev="net_af_xdp0,iface=nin,start_queue=0,queue_count=1"
    out_dev="net_af_xdp1,iface=nout,start_queue=0,queue_count=1"
  else
    in_dev="net_af_packet0,iface=nin,qpairs=1,qdisc_bypass=1,framecnt=4096"
    out_dev="net_af_packet1,iface=nout,qpairs=1,qdisc_bypass=1,framecnt=4096"
  fi
  cat >"${WORK}/dp.yaml" <<YAML
mode: two-armed
ports:
  - name: inside
    device: ${in_dev}
  - name: outside
    device: ${out_dev}
interface:
  address: 203.0.113.2/24
  inside_address: 10.0.1.1/24
next_hop:
  gateway: 203.0.113.254
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [203.0.113.1]
  max_flows: 64K
workers:
  lcores: [${NAT_CPU}]
  main_lcore: ${GEN_CPU}
eal:
  extra_args: "--no-huge -m 256"
exception_path:
  enabled: false
admin:
  socket: ${WORK}/dp.sock
logging:
  level: info
${DP_EXTRA_YAML:-}
YAML
  ip netns exec "${NAT}" "${DP}" --config "${WORK}/dp.yaml" >"${WORK}/dp.log" 2>&1 &
  DP_PID=$!
  for _ in $(seq 100); do
    grep -q "dataplane ready" "${WORK}/dp.log" && break
    kill -0 "${DP_PID}" 2>/dev/null || { cat "${WORK}/dp.log" >&2; die "dataplane exited at start"; }
    sleep 0.1
  done
  grep -q "dataplane ready" "${WORK}/dp.log" || die "dataplane not ready after 10 s"
  if [[ ${kind} == af_xdp ]]; then
    # XDP on a veth runs in the veth's NAPI on the sending CPU; make it a kthread on NAT_CPU.
    local before pids
    before=$(ps -e -o pid=,comm= | awk '$2 ~ /^napi\/nin-/ { print $1 }')
    in_ns "${NAT}" sh -c 'echo 1 > /sys/class/net/nin/threaded'
    sleep 0.2
    pids=$(ps -e -o pid=,comm= | awk -v old=" ${before//$'\n'/ } " '$2 ~ /^napi\/nin-/ && index(old, " " $1 " ") == 0 { print $1 }')
    [[ -n ${pids} ]] || die "no threaded NAPI kthread for nin"
    for p in ${pids}; do taskset -pc "${NAT_CPU}" "${p}" >/dev/null; renice -n "${NICE}" -p "${p}" >/dev/null; done
  else
    # af_packet takes its copy before the kernel stack; the stack's own copy of each frame is
    # dropped at the netdev ingress hook (on AWS the ENI belongs to DPDK; the kernel sees nothing).
    in_ns "${NAT}" nft -f - <<'NFT'
table netdev eipgate_bench {
  chain nin_ingress { type filter hook ingress device "nin" priority 0; policy drop; }
}
NFT
  fi
}

setup_mode() {
  case $1 in
    iptables)  # fck-nat: ip_forward=1, rp_filter off, iptables -t nat ... -o <eni> -j MASQUERADE
      kernel_router
      in_ns "${NAT}" iptables -t nat -F
      in_ns "${NAT}" iptables -t nat -A POSTROUTING -o nout -j MASQUERADE -m comment --comment "NAT routing rule installed by fck-nat"
      ;;
    nftables)
      kernel_router
      in_ns "${NAT}" nft -f - <<'NFT'
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oif "nout" masquerade; }
}
NFT
      ;;
    linux-forward) kernel_router ;;  # reference: routing only, no netfilter, no NAT
    eipgate-af_xdp) start_dataplane af_xdp ;;
    eipgate-af_packet) start_dataplane af_packet ;;
    *) die "unknown mode $1" ;;
  esac
}

expected_src() {
  case $1 in
    eipgate-*) echo 203.0.113.1 ;;
    linux-forward) echo 10.0.1.10 ;;
    *) echo 203.0.113.2 ;;
  esac
}

ns_counter() { in_ns "$1" cat "/sys/class/net/$2/statistics/$3"; }
cpu_ticks() {  # cpu -> "busy total" (jiffies)
  awk -v c="cpu$1" '$1 == c { idle = $5 + $6; t = 0; for (i = 2; i <= 9; i++) t += $i; print t - idle, t }' /proc/stat
}
backlog_drops() {  # cpu -> dropped column of /proc/net/softnet_stat (hex), as decimal
  local hex
  hex=$(awk -v r=$(($1 + 1)) 'NR == r { print $2 }' /proc/net/softnet_stat)
  echo $((16#${hex}))
}

# One mode, one round: the topology, then the offered load stepped through RATES (trafgen -b; "max"
# = no rate limit). Appends per step: mode round requested received offered nat_busy gen_busy
# nat_backlog_drops src (rates per second, busy in %).
measure() {
  local mode=$1 round=$2
  build_topology
  setup_mode "${mode}"
  local mac
  mac=$(in_ns "${NAT}" cat /sys/class/net/nin/address)
  # 60-byte frames (64 on the wire), FLOWS UDP flows (source ports), one destination.
  cat >"${WORK}/gen.cfg" <<CFG
{ eth(da=${mac}), ipv4(saddr=10.0.1.10, daddr=198.51.100.7, ttl=64),
  udp(sp=dinc(1024, $((1024 + FLOWS - 1))), dp=9), fill(0, 18) }
CFG
  local src="" rate
  for rate in ${RATES}; do
    local limit=()
    [[ ${rate} == max ]] || limit=(-b "${rate}pps")
    ip netns exec "${CLI}" taskset -c "${GEN_CPU}" \
      trafgen -o c0 -i "${WORK}/gen.cfg" -P 1 -Q -C "${limit[@]}" >"${WORK}/gen.log" 2>&1 &
    GEN_PID=$!
    sleep 0.5
    kill -0 "${GEN_PID}" 2>/dev/null || { cat "${WORK}/gen.log" >&2; die "trafgen exited"; }
    if [[ -z ${src} ]]; then  # once per mode: the sink must see the NAT's outside address
      src=$(in_ns "${NET}" timeout 3 tcpdump -c 3 -nn -i i0 udp 2>/dev/null |
        awk '{ split($3, a, "."); print a[1]"."a[2]"."a[3]"."a[4] }' | sort -u | tr '\n' ',' || true)
      src=${src%,}
      src=${src:-none}
      local expect
      expect=$(expected_src "${mode}")
      [[ ${src} == "${expect}" ]] || echo "  WARNING: sink saw source '${src}', expected ${expect}" >&2
    fi
    sleep "${WARMUP}"
    local rx0 tx0 n0 g0 d0 rx1 tx1 n1 g1 d1 t0 t1
    rx0=$(ns_counter "${NET}" i0 rx_packets); tx0=$(ns_counter "${CLI}" c0 tx_packets)
    n0=$(cpu_ticks "${NAT_CPU}"); g0=$(cpu_ticks "${GEN_CPU}"); d0=$(backlog_drops "${NAT_CPU}")
    t0=$(date +%s.%N)
    sleep "${DURATION}"
    rx1=$(ns_counter "${NET}" i0 rx_packets); tx1=$(ns_counter "${CLI}" c0 tx_packets)
    n1=$(cpu_ticks "${NAT_CPU}"); g1=$(cpu_ticks "${GEN_CPU}"); d1=$(backlog_drops "${NAT_CPU}")
    t1=$(date +%s.%N)
    kill -0 "${GEN_PID}" 2>/dev/null || die "trafgen died during ${mode}"
    [[ -z ${DP_PID} ]] || kill -0 "${DP_PID}" 2>/dev/null || die "dataplane died during ${mode}"
    stop_pid "${GEN_PID}" INT; GEN_PID=""
    awk -v m="${mode}" -v r="${round}" -v q="${rate}" -v rx=$((rx1 - rx0)) -v tx=$((tx1 - tx0)) \
        -v t0="${t0}" -v t1="${t1}" -v n="${n0} ${n1}" -v g="${g0} ${g1}" -v d=$((d1 - d0)) -v src="${src}" 'BEGIN {
      dt = t1 - t0; split(n, a, " "); split(g, b, " ")
      nb = (a[4] - a[2]) > 0 ? 100 * (a[3] - a[1]) / (a[4] - a[2]) : 0
      gb = (b[4] - b[2]) > 0 ? 100 * (b[3] - b[1]) / (b[4] - b[2]) : 0
      printf "%s %s %s %.0f %.0f %.0f %.0f %.0f %s\n", m, r, q, rx / dt, tx / dt, nb, gb, d / dt, src }' >>"${WORK}/results"
    tail -1 "${WORK}/results" |
      awk '{ printf "  %-18s rate %-7s offered %8d pps  received %8d pps  (NAT core %s%%, generator core %s%%)\n", $1, $3, $5, $4, $6, $7 }'
    sleep 0.5
  done
  if [[ -n ${DP_PID} && -x ${CTL} ]]; then
    "${CTL}" --socket "${WORK}/dp.sock" stats >"${WORK}/stats-${mode}.txt" 2>&1 || true
  fi
  if [[ -n ${NAT_COMPARE_DEBUG:-} ]]; then
    { echo "--- ${mode}"; for p in "${CLI}:c0" "${NAT}:nin" "${NAT}:nout" "${NET}:i0"; do in_ns "${p%%:*}" ip -s link show "${p##*:}"; done
      cat /proc/net/softnet_stat; cat "${WORK}/stats-${mode}.txt" 2>/dev/null; } >&2
  fi
  teardown
}

echo "nat_compare: ${ROUNDS} round(s); per mode offered rates ${RATES} × ${DURATION} s; modes: ${MODES}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: ${load_before}"
: >"${WORK}/results"
for r in $(seq "${ROUNDS}"); do
  echo "round ${r}/${ROUNDS}"
  for mode in ${MODES}; do measure "${mode}" "${r}"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ---------------------------------------------------------------------------------------
# Per mode and round: the peak received rate over the offered rates (the forwarding capacity
# with one core), and what arrives when the generator sends as fast as it can (overload).
awk '{ k = $1 " " $2
       if (!(k in peak) || $4 > peak[k]) { peak[k] = $4; poff[k] = $5; pbusy[k] = $6; prate[k] = $3 }
       if ($3 == "max") { ovl[k] = $4; ooff[k] = $5 } }
     END { for (k in peak) print k, peak[k], poff[k], pbusy[k], prate[k], (k in ovl ? ovl[k] : 0), (k in ooff ? ooff[k] : 0) }' \
  "${WORK}/results" >"${WORK}/summary"
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "${WORK}/summary"; }
kpps() { awk -v v="$1" 'BEGIN { printf "%.0f k", v / 1000 }'; }
base=$(col iptables 3 | median)
model=$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }')
hyp=$(lscpu | awk -F: '/^Hypervisor vendor/ { gsub(/^ +/, "", $2); print $2; exit }')
{
  echo "# NAT forwarding: eipgate-dataplane vs Linux netfilter ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "Machine: ${model:-unknown CPU}${hyp:+ (${hyp} guest)}, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "${PRETTY_NAME}")."
  echo "Load average before / after: ${load_before} / ${load_after} — other work on the machine competes for both cores, so the figures are noisy."
  echo "Harness: client ns → NAT ns → sink ns over veth (offloads off), trafgen (netsniff-ng) on CPU ${GEN_CPU}, 60-byte frames"
  echo "(64 on the wire), ${FLOWS} UDP flows; NAT work on CPU ${NAT_CPU} (RPS / threaded NAPI / worker lcore; bench/README.md)."
  echo "Offered rates stepped through: ${RATES} (trafgen -b; its achieved rate is below the requested one) × ${DURATION} s."
  echo "${ROUNDS} round(s), modes interleaved within each round; medians over rounds (min–max)."
  echo
  echo "| mode | peak received pps (min–max) | offered at peak | received at max offered load | max offered | NAT core busy at peak | peak vs iptables |"
  echo "|---|---|---|---|---|---|---|"
  for mode in ${MODES}; do
    pk=$(col "${mode}" 3 | median)
    lo=$(col "${mode}" 3 | sort -n | head -1); hi=$(col "${mode}" 3 | sort -n | tail -1)
    ratio=$(awk -v a="${pk}" -v b="${base}" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }')
    printf '| %s | **%s** (%s–%s) | %s | %s | %s | %s%% | %s |\n' "${mode}" "$(kpps "${pk}")" "$(kpps "${lo}")" "$(kpps "${hi}")" \
      "$(kpps "$(col "${mode}" 4 | median)")" "$(kpps "$(col "${mode}" 7 | median)")" "$(kpps "$(col "${mode}" 8 | median)")" \
      "$(col "${mode}" 5 | median)" "${ratio}"
  done
  echo
  echo "Source address seen at the sink: $(awk '{ s[$1] = $9 } END { for (m in s) printf "%s %s; ", m, s[m] }' "${WORK}/results" | sed 's/; $//')."
  echo
  echo "Raw samples (mode, round, requested rate, received pps, offered pps, NAT core busy %, generator core busy %,"
  echo "NAT-core RPS backlog drops/s, source at sink):"
  echo
  echo '```'
  cat "${WORK}/results"
  echo '```'
} >"${WORK}/report.md"
mkdir -p "$(dirname "${OUT}")"
cp "${WORK}/report.md" "${OUT}"
echo
cat "${OUT}"
echo
echo "written to ${OUT}"
exit 0

#!/usr/bin/env bash
# End-to-end, one-armed (the AWS layout: one ENI carries both directions; the private route table
# points at the NAT's ENI) over DPDK's tap PMD, whose queues have Rx interrupts: an idle worker
# must wait on the interrupt rather than sleep, and wake for the first packet.
#
#   client ns (10.0.1.10) -- router ns "VPC router" (10.0.1.1 | 10.0.0.1 | 203.0.113.254) -- internet ns
#                                   |  tap (the ENI's wire)
#                             NAT ns: eipgate-dataplane, port net_tap, interface 10.0.0.5,
#                                     outside (service) address 10.0.0.100
# The router sends the client subnet's traffic to the NAT (policy route, as a VPC route table
# does), delivers the NAT's translated traffic to the internet and the replies to 10.0.0.100 back
# to the NAT over the tap; the NAT sends inside-bound packets to the router (inside_gateway).
# Usage: one_armed_tap.sh <eipgate-dataplane> [eipgatectl]. Needs root. Tears everything down.
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
CTL=${2:-$(dirname "${DP}")/../control/eipgatectl}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init oa
RTR=${S}r
TAPIF=${S}t

io_stat() {  # worker 0's I/O counter, -1 when unavailable
  ctl --json stats 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['io'][0]['$1'])" 2>/dev/null ||
    echo -1
}

e2e_netns "${CLI}" "${RTR}" "${NAT}" "${NET}"
e2e_veth "${CLI}:c0" "${RTR}:rc"
e2e_veth "${RTR}:ri" "${NET}:i0"
in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
in_ns "${CLI}" ip route add default via 10.0.1.1
in_ns "${RTR}" ip addr add 10.0.1.1/24 dev rc
in_ns "${RTR}" ip addr add 203.0.113.254/24 dev ri
in_ns "${RTR}" sysctl -qw net.ipv4.ip_forward=1
in_ns "${RTR}" sysctl -qw net.ipv4.conf.all.rp_filter=0
in_ns "${RTR}" sysctl -qw net.ipv4.conf.default.rp_filter=0
in_ns "${RTR}" sysctl -qw net.ipv4.conf.all.send_redirects=0
# The private subnet's route table: 0.0.0.0/0 -> the NAT's ENI.
in_ns "${RTR}" ip rule add iif rc lookup 100
in_ns "${NET}" ip addr add 203.0.113.7/24 dev i0
in_ns "${NET}" ip addr add 198.51.100.7/32 dev lo
in_ns "${NET}" ip route add default via 203.0.113.254
in_ns "${RTR}" ip route add 198.51.100.0/24 via 203.0.113.7

cat >"${WORK}/dp.yaml" <<YAML
mode: one-armed
ports:
  - name: data
    device: net_tap0,iface=${TAPIF}
    mac: 02:00:00:00:0a:05
interface:
  address: 10.0.0.5/24
next_hop:
  gateway: 10.0.0.1
  inside_gateway: 10.0.0.1
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [10.0.0.100]
  max_flows: 64K
workers:
  lcores: [1]
  main_lcore: 0
eal:
  extra_args: "--no-huge -m 256"
exception_path:
  enabled: false
admin:
  socket: ${WORK}/dp.sock
polling:
  deep_idle_ms: 300
logging:
  level: info
YAML

e2e_whoami_script
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.7 8080 &

E2E_START_TIMEOUT_S=60 e2e_start_dataplane "${DP}" "${WORK}/dp.yaml"
# The tap's kernel end is the wire to the VPC router: move it there.
ip -n "${NAT}" link set "${TAPIF}" netns "${RTR}"
in_ns "${RTR}" sysctl -qw "net.ipv4.conf.${TAPIF}.rp_filter=0"
in_ns "${RTR}" sysctl -qw "net.ipv6.conf.${TAPIF}.disable_ipv6=1" || true
in_ns "${RTR}" ip addr add 10.0.0.1/24 dev "${TAPIF}"
in_ns "${RTR}" ip link set "${TAPIF}" up
in_ns "${RTR}" ip route add default via 10.0.0.5 dev "${TAPIF}" table 100

check "ping through the one-armed NAT" in_ns "${CLI}" ping -c 3 -i 0.2 -W 2 198.51.100.7
check "curl sees the outside address" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 10.0.0.100 ]]"
check "10 connections in a row" bash -c \
  "for i in \$(seq 10); do [[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 10.0.0.100 ]] || exit 1; done"
check "the worker registered its queue for Rx interrupts" grep -q "idle waits on Rx interrupts" "${WORK}/dp.log"
waits_before=$(io_stat rx_interrupt_waits)
sleep 2  # quiet: the worker goes deeply idle and waits on the interrupt
waits_after=$(io_stat rx_interrupt_waits)
check "an idle worker waits on the Rx interrupt (waits ${waits_before} -> ${waits_after})" \
  test "${waits_before}" -ge 0 -a "${waits_after}" -gt "${waits_before}"
rtt=$(in_ns "${CLI}" ping -c 1 -W 2 198.51.100.7 | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
check "the first packet after idle wakes the worker (RTT ${rtt:-none} ms)" test -n "${rtt}"
check "unsolicited TCP to the outside address reaches nobody" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 http://10.0.0.100:8080/"

check "eipgatectl xstats: the tap port's counters, and no ENA allowance in stats" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json xstats | /usr/bin/python3 -c \
   'import json,sys; p=json.load(sys.stdin)[\"ports\"]; assert [x[\"name\"] for x in p]==[\"data\"], p; assert p[0][\"xstats\"][\"rx_good_packets\"] > 0, p' &&
   '${CTL}' --socket '${WORK}/dp.sock' --json stats | /usr/bin/python3 -c \
   'import json,sys; p=json.load(sys.stdin)[\"ports\"]; assert p and \"allowance\" not in p[0], p'"

kill -TERM "${DP_PID}"
check "clean shutdown on SIGTERM" bash -c "for i in \$(seq 300); do kill -0 ${DP_PID} 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "${DP_PID}" 2>/dev/null && rc=0 || rc=$?
DP_PID=""
check "exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0

e2e_summary

#!/usr/bin/env bash
# End-to-end, one-armed (the AWS layout: one ENI carries both directions) over af_xdp with the XDP
# steering program and the kernel fast path on (the default): established flows are translated in
# XDP and sent back out of the same port with XDP_TX. Also: a flow only the fast path carries is
# kept while active and expires on time once quiet.
#
#   client ns (10.0.1.10) -- router ns "VPC router" (10.0.1.1 | 10.0.0.1 | 203.0.113.254) -- internet ns
#                                   |  veth (the ENI's wire)
#                             NAT ns: eipgate-dataplane on eth1 (af_xdp), interface 10.0.0.5,
#                                     outside (service) address 10.0.0.100
# Usage: one_armed_xdp.sh <eipgate-dataplane> [eipgatectl]. Needs root. Tears everything down.
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
CTL=${2:-$(dirname "${DP}")/../control/eipgatectl}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init ox
RTR=${S}r

json_of() {  # python expression over the stats JSON `s`; -1 when unavailable
  ctl --json stats 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null || echo -1
}
fp_tx() { json_of "s['xdp_steer']['data']['fp_fwd_tx']"; }
counter() { json_of "s['totals']['counters']['$1']"; }
udp_flow_present() {  # inside port: the dataplane tracks the client's UDP flow from that port
  ctl --json flows --proto udp --inside 10.0.1.10 |
    /usr/bin/python3 -c "import json,sys; f=json.load(sys.stdin); sys.exit(not any(x['inside_port'] == $1 for x in f['flows']))"
}

e2e_netns "${CLI}" "${RTR}" "${NAT}" "${NET}"
e2e_veth "${CLI}:c0" "${RTR}:rc"
e2e_veth "${RTR}:ri" "${NET}:i0"
e2e_veth "${RTR}:rn" "${NAT}:eth1"
# XDP_TX on a veth delivers to its peer only when the peer runs an XDP program (GRO, enough for
# XDP_REDIRECT, is not for XDP_TX on this kernel; ENA transmits XDP_TX itself): give the router's
# end our steering program unconfigured, which passes every frame to the kernel.
XDP_OBJ=${XDP_OBJ:-$(dirname "${DP}")/../bpf/xdp_steer.bpf.o}
in_ns "${RTR}" ip link set dev rn xdpdrv obj "${XDP_OBJ}" sec xdp
in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
in_ns "${CLI}" ip route add default via 10.0.1.1
in_ns "${RTR}" ip addr add 10.0.1.1/24 dev rc
in_ns "${RTR}" ip addr add 203.0.113.254/24 dev ri
in_ns "${RTR}" ip addr add 10.0.0.1/24 dev rn
for k in all default rn; do
  in_ns "${RTR}" sysctl -qw "net.ipv4.conf.${k}.rp_filter=0" "net.ipv4.conf.${k}.send_redirects=0"
done
in_ns "${RTR}" sysctl -qw net.ipv4.ip_forward=1
# The private subnet's route table: 0.0.0.0/0 -> the NAT's ENI.
in_ns "${RTR}" ip rule add iif rc lookup 100
in_ns "${RTR}" ip route add default via 10.0.0.5 dev rn table 100
in_ns "${NET}" ip addr add 203.0.113.7/24 dev i0
in_ns "${NET}" ip addr add 198.51.100.7/32 dev lo
in_ns "${NET}" ip route add default via 203.0.113.254
in_ns "${RTR}" ip route add 198.51.100.0/24 via 203.0.113.7
# The instance's kernel keeps its addresses (the steering program passes it ARP and its own
# traffic); the service address too, so it answers ARP for it.
in_ns "${NAT}" ip addr add 10.0.0.5/24 dev eth1
in_ns "${NAT}" ip addr add 10.0.0.100/32 dev eth1

cat >"${WORK}/dp.yaml" <<YAML
mode: one-armed
ports:
  - name: data
    device: net_af_xdp0,iface=eth1,start_queue=0,queue_count=1
interface:
  address: 10.0.0.5/24
next_hop:
  gateway: 10.0.0.1
  inside_gateway: 10.0.0.1
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [10.0.0.100]
  max_flows: 64K
timeouts:
  udp: 4s
workers:
  lcores: [1]
  main_lcore: 0
eal:
  extra_args: "--no-huge -m 256"
exception_path:
  enabled: false
admin:
  socket: ${WORK}/dp.sock
logging:
  level: info
YAML

e2e_whoami_script
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.7 8080 &
cat >"${WORK}/udpecho.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(65535); s.sendto(data, peer)
PY
# UDP from a fixed source port, 20 datagrams a second for N seconds, each answered.
cat >"${WORK}/udpstream.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.0.1.10", int(sys.argv[3])))
s.settimeout(1)
answered = 0
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    s.sendto(b"x" * 64, (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(2048); answered += 1
    except socket.timeout:
        pass
    time.sleep(0.05)
print(answered)
sys.exit(answered == 0)
PY
in_ns "${NET}" /usr/bin/python3 "${WORK}/udpecho.py" 198.51.100.7 7007 &

E2E_START_TIMEOUT_S=60 e2e_start_dataplane "${DP}" "${WORK}/dp.yaml"
check "the dataplane says the fast path is on" grep -q "fast path on" "${WORK}/dp.log"

check "ping through the one-armed NAT" in_ns "${CLI}" ping -c 5 -i 0.2 -W 2 198.51.100.7
check "curl sees the outside address" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 10.0.0.100 ]]"
check "10 connections in a row" bash -c \
  "for i in \$(seq 10); do [[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 10.0.0.100 ]] || exit 1; done"
in_ns "${NET}" iperf3 -s -B 198.51.100.7 -D --logfile "${WORK}/iperf.log"
for _ in $(seq 50); do [[ -n $(in_ns "${NET}" ss -Hltn 'sport = :5201') ]] && break; sleep 0.1; done
tx0=$(fp_tx)
check "iperf3 TCP through the NAT" in_ns "${CLI}" iperf3 -c 198.51.100.7 -t 2 --connect-timeout 3000
tx1=$(fp_tx)
check "the fast path sent the established TCP stream back out of the port (fp_fwd_tx ${tx0} -> ${tx1})" \
  test "${tx1}" -gt $((tx0 + 1000))
check "traceroute shows the NAT's hop then the server" bash -c \
  "ip netns exec ${CLI} traceroute -n -q 1 -w 2 -m 5 198.51.100.7 | tee /dev/stderr | grep -q ' 198.51.100.7 '"
check "unsolicited TCP to the outside address reaches nobody" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 http://10.0.0.100:8080/"

# Expiry (timeouts.udp 4 s): a UDP flow the fast path carries is kept for its whole life, however
# long beyond the timeout, and expires about 4 s after its last datagram.
tx0=$(fp_tx)
in_ns "${CLI}" /usr/bin/python3 "${WORK}/udpstream.py" 198.51.100.7 7007 40000 9 >"${WORK}/stream.out" &
STREAM=$!
sleep 7
check "a UDP flow active for 7 s (> the 4 s timeout) is still tracked" udp_flow_present 40000
wait "${STREAM}" && stream_rc=0 || stream_rc=$?
check "the UDP stream was answered ($(cat "${WORK}/stream.out") answers)" test "${stream_rc}" -eq 0
tx1=$(fp_tx)
check "the fast path carried it (fp_fwd_tx ${tx0} -> ${tx1})" test "${tx1}" -gt $((tx0 + 200))
sleep 2
check "2 s after its last datagram it is still tracked" udp_flow_present 40000
withdrawn0=$(counter flows_withdrawn)
gone() { ! udp_flow_present 40000; }
for _ in $(seq 60); do gone && break; sleep 0.1; done
check "about 4 s after its last datagram it has expired" gone
check "and its fast-path entries were withdrawn (flows_withdrawn ${withdrawn0} -> $(counter flows_withdrawn))" \
  test "$(counter flows_withdrawn)" -gt "${withdrawn0}"

# kill -9 leaves the program attached (the kernel's, not the process's); the next start removes
# it, attaches its own (empty fast-path map) and forwards again.
kill -KILL "${DP_PID}"
wait "${DP_PID}" 2>/dev/null || true
check "after kill -9 the old program is still attached" bash -c \
  "ip -n ${NAT} link show dev eth1 | grep -q 'prog/xdp'"
E2E_START_TIMEOUT_S=60 e2e_start_dataplane "${DP}" "${WORK}/dp.yaml" "${WORK}/dp2.log"
check "the restarted dataplane removed its predecessor's program" \
  grep -q "removed the xdp_steer program" "${WORK}/dp2.log"
check "and translates again (curl sees the outside address)" bash -c \
  "for i in 1 2 3; do [[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 10.0.0.100 ]] && exit 0; sleep 0.5; done; exit 1"

kill -TERM "${DP_PID}"
check "clean shutdown on SIGTERM" bash -c "for i in \$(seq 300); do kill -0 ${DP_PID} 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "${DP_PID}" 2>/dev/null && rc=0 || rc=$?
DP_PID=""
check "exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0

e2e_summary

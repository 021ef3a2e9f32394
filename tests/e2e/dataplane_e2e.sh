#!/usr/bin/env bash
# End-to-end: client namespace (private subnet) -> eipgate-dataplane on veth via af_packet ->
# "internet" namespace with servers on documentation addresses. Real traffic from real tools.
# Usage: dataplane_e2e.sh <path to eipgate-dataplane> [af_packet|af_xdp|af_xdp_steer] [eipgatectl]
#        [on|off: af_xdp_steer's kernel fast path, on by default].
# Needs root. Tears everything down on exit.
#   af_packet     af_packet PMD; the instance's own traffic reaches the kernel through TAPs
#   af_xdp        af_xdp PMD with DPDK's default XDP program (every frame to the dataplane), TAPs
#   af_xdp_steer  af_xdp PMD with eipgate's XDP steering program: only NAT traffic reaches the
#                 dataplane; the kernel's own interfaces keep their addresses and everything else
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
MODE=${2:-af_packet}
CTL=${3:-$(dirname "${DP}")/../control/eipgatectl}
FASTPATH=${4:-on}  # af_xdp_steer: on (the default config) or off (fastpath.enabled: false)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init eg
SRV=${S}s
TAP=${S}t  # exception path TAPs in the NAT namespace: ${TAP} (inside port), ${TAP}1 (outside port)

# --- topology: client 10.0.1.10/24 -- [inside | NAT | outside] -- 203.0.113.254 router+servers
# (198.51.100.7: the "what is my IP" server, 198.51.100.8: a second destination)
e2e_topology "${MODE}"
# A server behind a 1280-MTU link (Path MTU Discovery through the NAT).
e2e_netns "${SRV}"
ip link add r0 netns "${NET}" mtu 1280 type veth peer name s0 netns "${SRV}" mtu 1280
in_ns "${NET}" ip link set r0 up
in_ns "${SRV}" ip link set s0 up
in_ns "${NET}" ip addr add 192.0.2.1/24 dev r0
in_ns "${SRV}" ip addr add 192.0.2.9/24 dev s0
in_ns "${SRV}" ip route add default via 192.0.2.1
in_ns "${NET}" sysctl -qw net.ipv4.ip_forward=1

STEER_KEY=""
[[ ${MODE} == af_xdp ]] && STEER_KEY="xdp_steering: false"
[[ ${MODE} == af_packet ]] && STEER_KEY="af_packet_fragments: drop"  # the limit, acknowledged
cat >"${WORK}/dp.yaml" <<YAML
mode: two-armed
ports:
  - name: inside
    device: ${IN_DEV}
    ${STEER_KEY}
  - name: outside
    device: ${OUT_DEV}
    ${STEER_KEY}
interface:
  address: 203.0.113.2/24
  inside_address: 10.0.1.1/24
next_hop:
  gateway: 203.0.113.254
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [203.0.113.1]
  port_range: 1024-1279   # 256 ports per destination: small enough to exhaust below
  max_flows: 64K
workers:
  lcores: [1]
  main_lcore: 0
eal:
  extra_args: "--no-huge -m 256"
exception_path:
  enabled: true
  tap_name: ${TAP}
admin:
  socket: ${WORK}/dp.sock
logging:
  level: info
translation_log:
  enabled: true
  path: ${WORK}/txlog/translations.jsonl
YAML
[[ ${FASTPATH} == off ]] && printf 'fastpath:\n  enabled: false\n' >>"${WORK}/dp.yaml"

# wait_for CMD...: polls CMD every 0.1 s until it succeeds (30 s at most: only a hang fails it).
wait_for() {
  local _
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*"
  return 1
}
listening() {  # namespace, tcp|udp, address:port
  [[ -n $(ip netns exec "$1" ss -Hln --"$2" "src $3") ]]
}

e2e_whoami_script
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.7 8080 &
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.8 8080 &

e2e_start_dataplane "${DP}" "${WORK}/dp.yaml"

check "ping through the NAT" in_ns "${CLI}" ping -c 3 -i 0.2 -W 2 198.51.100.7
check "curl sees the outside address" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
check "second destination too" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.8:8080/) == 203.0.113.1 ]]"
check "20 connections in a row" bash -c \
  "for i in \$(seq 20); do [[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]] || exit 1; done"
check "traceroute shows the NAT then the server" bash -c \
  "ip netns exec ${CLI} traceroute -n -q 1 -w 2 -m 4 198.51.100.7 | tee /dev/stderr | awk 'NR==2 && \$2==\"10.0.1.1\" {a=1} NR==3 && \$2==\"198.51.100.7\" {b=1} END {exit !(a && b)}'"
in_ns "${NET}" iperf3 -s -B 198.51.100.7 -D --logfile "${WORK}/iperf.log"
wait_for listening "${NET}" tcp 198.51.100.7:5201
check "iperf3 TCP through the NAT" in_ns "${CLI}" iperf3 -c 198.51.100.7 -t 2 -J --connect-timeout 3000
check "iperf3 UDP through the NAT" in_ns "${CLI}" iperf3 -c 198.51.100.7 -u -b 20M -t 2 --connect-timeout 3000
# UDP datagrams larger than the MTU: fragments out and back, reassembled by the far ends.
cat >"${WORK}/udpecho.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(65535); s.sendto(data, peer)
PY
cat >"${WORK}/udpclient.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
for size in (1400, 3000, 8000, 20000):
    msg = bytes((i * 7) % 251 for i in range(size))
    for attempt in range(3):
        s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
        try:
            data, _ = s.recvfrom(65535)
            break
        except socket.timeout:
            data = b""
    assert data == msg, f"size {size}: got {len(data)} bytes back"
print("ok")
PY
in_ns "${NET}" /usr/bin/python3 "${WORK}/udpecho.py" 198.51.100.7 7007 &
wait_for listening "${NET}" udp 198.51.100.7:7007
[[ -n ${E2E_DEBUG:-} ]] && { in_ns "${NET}" tcpdump -n -i i0 -w "${WORK}/i0.pcap" & in_ns "${CLI}" tcpdump -n -i c0 -w "${WORK}/c0.pcap" & sleep 1; }
# DPDK 22.11's af_packet PMD always joins a PACKET_FANOUT group with FLAG_DEFRAG, so the kernel
# reassembles fragments before the dataplane sees them (and the result exceeds the frame size):
# fragments can only be exercised through af_xdp (or a real NIC).
if [[ ${MODE} == af_xdp* ]]; then
  check "fragmented UDP both ways" in_ns "${CLI}" /usr/bin/python3 "${WORK}/udpclient.py" 198.51.100.7 7007
else
  # af_packet runs only with `af_packet_fragments: drop` (the config says it accepts the limit):
  # what fits one frame passes, a fragmented datagram is dropped and counted, nothing is mangled.
  cat >"${WORK}/udpfrag_drop.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
def echo(size, tries):
    msg = bytes((i * 7) % 251 for i in range(size))
    for _ in range(tries):
        s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
        try:
            data, _ = s.recvfrom(65535)
            return data == msg
        except socket.timeout:
            pass
    return False
assert echo(1400, 3), "an unfragmented 1400-byte datagram did not come back"
assert not echo(4000, 2), "a fragmented 4000-byte datagram came back through af_packet"
print("ok")
PY
  bad_len() { ctl --json stats | /usr/bin/python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print(t.get('drops', {}).get('ip_bad_total_length', t['counters'].get('ip_bad_total_length', 0)))"; }
  bad_before=$(bad_len)
  check "af_packet (fragments acknowledged as dropped): 1400-byte UDP passes, a fragmented datagram does not" \
    in_ns "${CLI}" /usr/bin/python3 "${WORK}/udpfrag_drop.py" 198.51.100.7 7007
  check "the fragmented datagrams were counted as drops (ip_bad_total_length $(bad_len) > ${bad_before})" \
    test "$(bad_len)" -gt "${bad_before}"
  check "--check names the af_packet fragment limit" bash -c \
    "'${DP}' --config '${WORK}/dp.yaml' --check | grep -q 'uses af_packet: .*fragments'"
  sed '/af_packet_fragments: drop/d' "${WORK}/dp.yaml" >"${WORK}/dp-noack.yaml"
  check "without af_packet_fragments: drop, af_packet is refused with file:line and why" bash -c \
    "out=\$('${DP}' --config '${WORK}/dp-noack.yaml' --check 2>&1); rc=\$?; echo \"\$out\"; [[ \$rc -ne 0 ]] && grep -q 'dp-noack.yaml:[0-9]*: .*cannot pass IP fragments' <<<\"\$out\""
fi
# Path MTU Discovery: an upload toward the 1280-MTU link only completes if the router's
# "fragmentation needed" reaches the client, translated back to its own address and port.
cat >"${WORK}/sink.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
while True:
    c, _ = s.accept(); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.sendall(str(n).encode()); c.close()
PY
cat >"${WORK}/upload.py" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
payload = bytes(200000); s.sendall(payload); s.shutdown(socket.SHUT_WR)
assert s.recv(64).decode() == str(len(payload)), "upload incomplete"
print("ok")
PY
in_ns "${SRV}" /usr/bin/python3 "${WORK}/sink.py" 192.0.2.9 8000 &
wait_for listening "${SRV}" tcp 192.0.2.9:8000
check "PMTUD through the NAT (upload over a 1280-MTU path)" in_ns "${CLI}" /usr/bin/python3 "${WORK}/upload.py" 192.0.2.9 8000
# Nothing unsolicited gets in: from the internet side, to the outside address.
in_ns "${CLI}" /usr/bin/python3 "${WORK}/whoami.py" 10.0.1.10 9090 &
check "unsolicited TCP from outside is not delivered" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 http://203.0.113.1:9090/"
check "unsolicited TCP to the inside address is not routed" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 --interface 203.0.113.254 http://10.0.1.10:9090/"
if [[ ${MODE} == af_packet ]]; then
  check "the kernel ingress drop is found: no warning about it" bash -c \
    "grep -q 'the kernel.s ingress on nin is dropped' '${WORK}/dp.log' &&
     ! grep -q 'no nftables netdev ingress chain' '${WORK}/dp.log'"
fi
cat >"${WORK}/glue_check.py" <<'PY'
import json, sys
d = json.load(sys.stdin)["glue_drops"]
want = {"host_ring_full", "handoff_ring_full", "inject_ring_full", "resolve_ring_full"}
assert want <= set(d), d
print(d)
PY
check "stats export every glue drop counter" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json stats | /usr/bin/python3 '${WORK}/glue_check.py'"
main_stat() {  # prints -1 when the admin socket does not answer, so the checks below fail
  ctl --json stats 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['main']['$1'])" 2>/dev/null ||
    echo -1
}
if [[ ${MODE} == af_xdp_steer ]]; then
# --- af_xdp_steer: the instance's own traffic never reaches the dataplane; the XDP program passes
# it to the kernel's interfaces, which hold the addresses; NAT traffic is redirected.
steer_stat() {  # port, counter; -1 when unavailable
  ctl --json stats 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['xdp_steer']['$1']['$2'])" 2>/dev/null ||
    echo -1
}
check "the attached XDP program is eipgate's xdp_steer" bash -c \
  "ip -n ${NAT} -d link show dev nout | grep -q 'prog/xdp id' && bpftool prog show | grep -q 'name xdp_steer'"
host_before=$(steer_stat outside pass_host_addr)
check "ping to the outside port's own address is answered by the kernel" \
  in_ns "${NET}" ping -c 3 -i 0.2 -W 2 203.0.113.2
check "ping to the inside port's own address is answered by the kernel" \
  in_ns "${CLI}" ping -c 2 -i 0.2 -W 2 10.0.1.1
check "ping to an outside address is answered by the kernel" \
  in_ns "${NET}" ping -c 2 -i 0.2 -W 2 203.0.113.1
in_ns "${NAT}" /usr/bin/python3 "${WORK}/whoami.py" 203.0.113.2 2222 &
for _ in $(seq 50); do [[ -n $(in_ns "${NAT}" ss -Hltn 'sport = :2222') ]] && break; sleep 0.1; done
check "TCP service on 203.0.113.2:2222 reachable from the internet (sees the real caller)" bash -c \
  "[[ \$(ip netns exec ${NET} curl -s --max-time 5 http://203.0.113.2:2222/) == 203.0.113.254 ]]"
check "the NAT still translates client traffic" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
host_after=$(steer_stat outside pass_host_addr)
check "host traffic passed to the kernel by XDP (pass_host_addr ${host_before} -> ${host_after})" \
  test "${host_before}" -ge 0 -a "${host_after}" -ge $((host_before + 6))
check "NAT traffic redirected both ways (inside nat_inside_out $(steer_stat inside nat_inside_out), outside nat_outside_in $(steer_stat outside nat_outside_in))" \
  test "$(steer_stat inside nat_inside_out)" -gt 20 -a "$(steer_stat outside nat_outside_in)" -gt 20
check "the dataplane resolved its gateway through the kernel's ARP traffic" \
  test "$(steer_stat outside pass_not_ipv4)" -gt 0
total_of() {  # engine counter over all workers
  ctl --json stats | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['counters']['$1'])"
}
if [[ ${FASTPATH} == on ]]; then
  # The kernel fast path (bpf/, on by default where XDP runs natively, as on veth): the engine
  # offloaded the established flows and XDP translated their packets both ways (redirected to
  # the other port: two-armed); the engine counted them as its own.
  check "the dataplane says the fast path is on" grep -q "fast path on" "${WORK}/dp.log"
  check "stats: fastpath.on, entries written by the glue" bash -c \
    "${CTL} --socket ${WORK}/dp.sock --json stats | /usr/bin/python3 -c 'import json,sys; f=json.load(sys.stdin)[\"fastpath\"]; sys.exit(not (f[\"on\"] and f[\"entries_written\"] > 10 and f[\"errors\"] == 0))'"
  check "flows offloaded ($(total_of flows_offloaded)) and withdrawn ($(total_of flows_withdrawn))" \
    test "$(total_of flows_offloaded)" -gt 10 -a "$(total_of flows_withdrawn)" -gt 0
  check "XDP translated packets both ways (inside fp_fwd_redirect $(steer_stat inside fp_fwd_redirect), outside $(steer_stat outside fp_fwd_redirect))" \
    test "$(steer_stat inside fp_fwd_redirect)" -gt 100 -a "$(steer_stat outside fp_fwd_redirect)" -gt 100
  check "the engine counts the fast path's packets (fastpath_packets $(total_of fastpath_packets))" \
    test "$(total_of fastpath_packets)" -gt 0
else
  check "the dataplane says the fast path is off" grep -q "fast path off: fastpath.enabled is false" "${WORK}/dp.log"
  check "stats: fastpath off, with the reason" bash -c \
    "${CTL} --socket ${WORK}/dp.sock --json stats | /usr/bin/python3 -c 'import json,sys; f=json.load(sys.stdin)[\"fastpath\"]; sys.exit(not (not f[\"on\"] and \"enabled\" in f[\"off_reason\"]))'"
  check "nothing offloaded" test "$(total_of flows_offloaded)" -eq 0
fi

else
# --- host exception path: the instance's own traffic reaches the NAT namespace's kernel through
# the TAPs (which carry the ports' MACs and addresses), and the kernel's replies leave via DPDK.
check "TAP ${TAP}1 carries the outside port's MAC and address" bash -c \
  "ip -n ${NAT} -4 addr show dev ${TAP}1 | grep -q 'inet 203.0.113.2/24' &&
   [[ \$(ip -n ${NAT} -br link show dev ${TAP}1 | awk '{print \$3}') == \$(ip -n ${NAT} -br link show dev nout | awk '{print \$3}') ]]"
check "nin and nout still have no IPv4 address" bash -c \
  "[[ -z \$(ip -n ${NAT} -4 addr show dev nin) && -z \$(ip -n ${NAT} -4 addr show dev nout) ]]"
to_kernel_before=$(main_stat host_to_kernel)
from_kernel_before=$(main_stat kernel_to_port)
check "ping to the outside port's own address is answered by the kernel" \
  in_ns "${NET}" ping -c 3 -i 0.2 -W 2 203.0.113.2
check "ping to the inside port's own address is answered by the kernel" \
  in_ns "${CLI}" ping -c 2 -i 0.2 -W 2 10.0.1.1
check "ping to an outside address is answered by the kernel" \
  in_ns "${NET}" ping -c 2 -i 0.2 -W 2 203.0.113.1
# The "SSH" case: a TCP service bound to the interface address in the NAT namespace.
in_ns "${NAT}" /usr/bin/python3 "${WORK}/whoami.py" 203.0.113.2 2222 &
for _ in $(seq 50); do [[ -n $(in_ns "${NAT}" ss -Hltn 'sport = :2222') ]] && break; sleep 0.1; done
check "TCP service on 203.0.113.2:2222 reachable from the internet (sees the real caller)" bash -c \
  "[[ \$(ip netns exec ${NET} curl -s --max-time 5 http://203.0.113.2:2222/) == 203.0.113.254 ]]"
check "the NAT still translates client traffic" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
to_kernel_after=$(main_stat host_to_kernel)
from_kernel_after=$(main_stat kernel_to_port)
check "host packets went to the kernel (host_to_kernel ${to_kernel_before} -> ${to_kernel_after})" \
  test "${to_kernel_before}" -ge 0 -a "${to_kernel_after}" -ge $((to_kernel_before + 8))
check "the kernel's replies left via DPDK (kernel_to_port ${from_kernel_before} -> ${from_kernel_after})" \
  test "${from_kernel_before}" -ge 0 -a "${from_kernel_after}" -ge $((from_kernel_before + 8))
# Security: a frame written to the TAP with another source MAC never leaves through the port.
filtered_before=$(main_stat kernel_filtered)
in_ns "${NAT}" /usr/bin/python3 -c "
import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('${TAP}1', 0))
for _ in range(5): s.send(b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + b'\\x08\\x00' + bytes(46))"
filtered_risen() { (($(main_stat kernel_filtered) >= filtered_before + 5)); }
wait_for filtered_risen || true
filtered_after=$(main_stat kernel_filtered)
check "frames with a foreign source MAC are filtered (kernel_filtered ${filtered_before} -> ${filtered_after})" \
  test "${filtered_before}" -ge 0 -a "${filtered_after}" -ge $((filtered_before + 5))

fi

# The admin socket and eipgatectl.
check "admin socket is root-only (0600)" bash -c "[[ \$(stat -c %a ${WORK}/dp.sock) == 600 ]]"
check "eipgatectl health" ctl health
check "eipgatectl stats (table) shows NAT Gateway counters" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' stats | tee /dev/stderr | grep -q ConnectionAttemptCount"
check "eipgatectl flows lists the client's flows with the outside address" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json flows --inside 10.0.1.10 | /usr/bin/python3 -c \
   'import json,sys; r=json.load(sys.stdin); f=r[\"flows\"]; assert f and all(x[\"outside_ip\"]==\"203.0.113.1\" for x in f), r'"
# Port xstats (on AWS the ENA allowance counters; here af_packet/af_xdp). Every port
# answers with ethdev's generic counters, which the main lcore read after this run's traffic, and
# has no ENA allowance counters, so stats carries no "allowance" for it.
cat >"${WORK}/xstats_check.py" <<'PY'
import json, sys
x = json.load(open(sys.argv[1]))
st = json.load(open(sys.argv[2]))
names = [p["name"] for p in x["ports"]]
assert names == ["inside", "outside"], names
for p in x["ports"]:
    xs = p["xstats"]
    assert "rx_good_packets" in xs and "tx_good_packets" in xs, p
    assert xs["rx_good_packets"] > 0 and xs["tx_good_packets"] > 0, p
    assert not any(k.endswith("_allowance_exceeded") for k in xs), p
assert [p["name"] for p in st["ports"]] == names, st["ports"]
assert all("allowance" not in p for p in st["ports"]), st["ports"]
print("ok", {p["name"]: p["xstats"]["rx_good_packets"] for p in x["ports"]})
PY
check "eipgatectl xstats: both ports' counters, traffic counted, no ENA allowance in stats" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json xstats >'${WORK}/xstats.json' &&
   '${CTL}' --socket '${WORK}/dp.sock' --json stats >'${WORK}/stats.json' &&
   /usr/bin/python3 '${WORK}/xstats_check.py' '${WORK}/xstats.json' '${WORK}/stats.json'"
check "eipgatectl xstats (table) and stats show no allowance warning" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' xstats | grep -q rx_good_packets &&
   ! '${CTL}' --socket '${WORK}/dp.sock' stats 2>&1 | grep -q WARNING"
# Live reload. A good file applies at once and keeps the flows (MSS clamping shows on the next SYN
# the server sees); a broken file is refused with file:line and a restart-only change by name;
# after both, the first config still runs.
flows_before=$("${CTL}" --socket "${WORK}/dp.sock" --json stats |
  /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nat_gateway']['ActiveConnectionCount'])")
sed 's/^  max_flows: 64K$/  max_flows: 64K\n  tcp_mss_clamp: 1200/' "${WORK}/dp.yaml" >"${WORK}/reload.yaml"
check "reload of a valid config succeeds" ctl reload "${WORK}/reload.yaml"
flows_after=$("${CTL}" --socket "${WORK}/dp.sock" --json stats |
  /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nat_gateway']['ActiveConnectionCount'])")
check "reload keeps the flows (${flows_before} -> ${flows_after})" test "${flows_after}" -ge "${flows_before}" -a "${flows_before}" -gt 0
in_ns "${NET}" timeout 30 tcpdump -l -n -c 1 -i i0 'tcp[tcpflags] & tcp-syn != 0 and dst port 8080' >"${WORK}/syn.txt" 2>"${WORK}/tcpdump.err" &
TCPDUMP_PID=$!
wait_for grep -q "listening on" "${WORK}/tcpdump.err"
in_ns "${CLI}" curl -s --max-time 5 -o /dev/null http://198.51.100.7:8080/ || true
wait "${TCPDUMP_PID}" 2>/dev/null || true
check "the reloaded MSS clamp applies to new connections" grep -q "mss 1200" "${WORK}/syn.txt"
# refused(file, expected text): eipgatectl reload fails and its message names the expected text.
refused() {
  local out rc=0
  out=$("${CTL}" --socket "${WORK}/dp.sock" reload "$1" 2>&1) || rc=$?
  echo "rc=${rc} ${out}"
  [[ ${rc} -ne 0 && ${out} == *"$2"* ]]
}
sed 's/^  gateway: 203.0.113.254$/  gateway: 203.0.113.999/' "${WORK}/dp.yaml" >"${WORK}/broken.yaml"
line=$(grep -n '203.0.113.999' "${WORK}/broken.yaml" | cut -d: -f1)
check "a broken config is refused with file:line (broken.yaml:${line})" refused "${WORK}/broken.yaml" "broken.yaml:${line}:"
sed 's/^  outside_addresses: \[203.0.113.1\]$/  outside_addresses: [203.0.113.1, 203.0.113.3]/' "${WORK}/dp.yaml" >"${WORK}/restart.yaml"
check "a restart-only change is refused by name" refused "${WORK}/restart.yaml" "nat.outside_addresses"
# A new gateway (reloaded): the first packet toward it waits in the ARP queue instead of being
# dropped, so a single ping gets its answer.
in_ns "${NET}" ip addr add 203.0.113.253/24 dev i0
sed 's/^  gateway: 203.0.113.254$/  gateway: 203.0.113.253/' "${WORK}/dp.yaml" >"${WORK}/gw.yaml"
check "reload to a new gateway" ctl reload "${WORK}/gw.yaml"
check "the first packet toward an unresolved next hop is queued, not lost" \
  in_ns "${CLI}" ping -c 1 -W 3 198.51.100.8
echo "INFO arp_queued=$(main_stat arp_queued) arp_queue_sent=$(main_stat arp_queue_sent)"
check "forwarding continues after refused reloads" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"

# Connection-table sync (HA): this script stands in for eipgate-control on the sync socket.
SYNC=${WORK}/sync.sock
PEER="/usr/bin/python3 $(dirname "${BASH_SOURCE[0]}")/sync_peer.py"
check "the sync socket is root-only (0600)" bash -c "[[ \$(stat -c %a ${SYNC}) == 600 ]]"
check "a snapshot lists the live flows (the client's HTTP flow with the outside address)" bash -c \
  "${PEER} snapshot ${SYNC} | tee /dev/stderr | grep -q '10.0.1.10:[0-9]* -> 198.51.100.7:8080 via 203.0.113.1:' && ${PEER} snapshot ${SYNC} | grep -q '^END'"
check "ha_role active" ${PEER} role "${WORK}/dp.sock" active 1
# ARP and the HA role: the active answers for the service address, a standby only for its own.
# (af_xdp_steer leaves ARP to the kernel's interfaces, which hold the addresses themselves.)
cat >"${WORK}/arpask.py" <<'PY'
import socket, struct, sys, time
iface, target, sender = sys.argv[1], socket.inet_aton(sys.argv[2]), socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)); s.bind((iface, 0))
mac = s.getsockname()[4]
req = b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + sender + bytes(6) + target
s.settimeout(0.2)
for _ in range(3):
    s.send(req.ljust(60, b"\0"))
    end = time.time() + 1
    while time.time() < end:
        try:
            f = s.recv(128)
        except socket.timeout:
            continue
        if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == target:
            print("answered by", f[22:28].hex(":")); sys.exit(0)
print("no answer"); sys.exit(1)
PY
arp_answered() { in_ns "${NET}" /usr/bin/python3 "${WORK}/arpask.py" i0 "$1" 203.0.113.254; }
if [[ ${MODE} != af_xdp_steer ]]; then
  check "the active answers ARP for the service address" arp_answered 203.0.113.1
fi
connects() { grep -c "sync: eipgate-control connected" "${WORK}/dp.log" || true; }
connects_before=$(connects)
${PEER} watch "${SYNC}" 4 >"${WORK}/events.txt" &
WATCH_PID=$!
watcher_accepted() { (($(connects) > connects_before)); }
wait_for watcher_accepted
in_ns "${CLI}" curl -s --max-time 5 -o /dev/null http://198.51.100.8:8080/ || true
wait "${WATCH_PID}" || true
check "the active streams a new connection's create event" \
  grep -q 'create proto=6 10.0.1.10:[0-9]* -> 198.51.100.8:8080 via 203.0.113.1:' "${WORK}/events.txt"
check "ha_role standby" ${PEER} role "${WORK}/dp.sock" standby 2
if [[ ${MODE} != af_xdp_steer ]]; then
  check "a standby answers ARP for its own address" arp_answered 203.0.113.2
  check "a standby does not answer ARP for the service address" bash -c \
    "! ip netns exec ${NET} /usr/bin/python3 ${WORK}/arpask.py i0 203.0.113.1 203.0.113.254"
fi
check "a peer's flow is installed" ${PEER} install "${SYNC}" 10.0.1.10:5555 198.51.100.7:7100 203.0.113.1:1270 17 60
cat >"${WORK}/udprecv.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.0.1.10", int(sys.argv[1]))); s.settimeout(5)
data, peer = s.recvfrom(2048)
assert data == b"synced" and peer == ("198.51.100.7", 7100), (data, peer)
print("ok")
PY
in_ns "${CLI}" /usr/bin/python3 "${WORK}/udprecv.py" 5555 >"${WORK}/udprecv.out" 2>&1 &
RECV_PID=$!
wait_for listening "${CLI}" udp 10.0.1.10:5555
in_ns "${NET}" /usr/bin/python3 -c "
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.51.100.7', 7100))
for _ in range(3): s.sendto(b'synced', ('203.0.113.1', 1270))"
check "the installed flow translates the reply to the inside host" bash -c "wait ${RECV_PID}; cat ${WORK}/udprecv.out; grep -q ok ${WORK}/udprecv.out"

# A freeze longer than HA's dead interval (SIGSTOP): the role may be stale, so after the resume
# nothing translated leaves — not the frames queued meanwhile, not new ones — until the role is
# set again. (af_packet only: the behaviour is the dataplane's own, whatever the port.)
if [[ ${MODE} == af_packet ]]; then
  glue() {  # reason
    "${CTL}" --socket "${WORK}/dp.sock" --json stats 2>/dev/null |
      /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['glue_drops']['$1'])" 2>/dev/null ||
      echo -1
  }
  check "ha_role active before the freeze" ${PEER} role "${WORK}/dp.sock" active 3
  in_ns "${NET}" timeout 60 tcpdump -l -n -i i0 'src host 203.0.113.1 and not arp' >"${WORK}/frozen.txt" 2>"${WORK}/frozen.err" &
  FROZEN_DUMP=$!
  wait_for grep -q "listening on" "${WORK}/frozen.err"
  kill -STOP "${DP_PID}"
  in_ns "${CLI}" ping -c 10 -i 0.2 -W 1 198.51.100.7 >/dev/null 2>&1 || true  # queued while frozen
  sleep 1  # the freeze lasts > 2 s in all (the scenario, not a wait for a condition)
  kill -CONT "${DP_PID}"
  unconfirmed_drops() { (($(glue role_unconfirmed) > 0)); }
  wait_for unconfirmed_drops || true
  check "after the freeze the queued frames are dropped (role_unconfirmed $(glue role_unconfirmed))" \
    unconfirmed_drops
  check "health says degraded until the role is confirmed" bash -c \
    "! '${CTL}' --socket '${WORK}/dp.sock' health"
  check "no new translated traffic leaves either" bash -c \
    "! ip netns exec ${CLI} curl -s --max-time 2 http://198.51.100.7:8080/"
  kill "${FROZEN_DUMP}" 2>/dev/null || true
  wait "${FROZEN_DUMP}" 2>/dev/null || true
  check "nothing with the outside address left the port after the resume ($(grep -c . "${WORK}/frozen.txt") frames)" \
    test ! -s "${WORK}/frozen.txt"
  check "the role confirmed again" ${PEER} role "${WORK}/dp.sock" active 4
  check "translation resumes once the role is confirmed" bash -c \
    "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
  check "health is ok again" ctl health
fi

# Translation log: one connection's open and close records carry its tuple, bytes and end, and
# `eipgatectl who` names the inside host for the outside tuple at a time within it. A 1 s
# time-wait (reloaded live) lets the closed flow go in time; the original config comes back after.
TXLOG="${WORK}/txlog/translations.jsonl"
printf 'timeouts:\n  tcp_time_wait: 1s\n' | cat "${WORK}/dp.yaml" - >"${WORK}/txlog_tw.yaml"
check "reload with a 1 s time-wait" ctl reload "${WORK}/txlog_tw.yaml"
check "curl from inside port 47001" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 --local-port 47001 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
cat >"${WORK}/txlog_check.py" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"10.0.1.10:47001"' in l]
opens = [r for r in recs if r["ev"] == "open"]
closes = [r for r in recs if r["ev"] == "close"]
if len(opens) != 1 or len(closes) != 1:
    sys.exit(f"want one open and one close, got {recs}")
o, c = opens[0], closes[0]
for r in (o, c):
    assert r["proto"] == "tcp" and r["remote"] == "198.51.100.7:8080", r
    assert r["out"].startswith("203.0.113.1:"), r
assert o["out"] == c["out"], (o, c)
assert c["end"] in ("fin", "rst"), c
assert c["bytes_out"] > 0 and c["bytes_in"] > 0, c
assert c["t"] >= o["t"], (o, c)
print(o["out"], o["t"])
PY
txlog_closed() { /usr/bin/python3 "${WORK}/txlog_check.py" "${TXLOG}"; }
wait_for txlog_closed || true
check "translation log: open and close records with the connection's tuple" txlog_closed
if read -r TX_OUT TX_T < <(txlog_closed 2>/dev/null); then
  check "eipgatectl who ${TX_OUT} --at ${TX_T} names 10.0.1.10:47001" bash -c \
    "'${CTL}' who '${TX_OUT}' --at '${TX_T}' --log '${TXLOG}' | tee /dev/stderr | grep -q '^10.0.1.10:47001 -> 198.51.100.7:8080'"
fi
# HA: the flow installed from the peer's sync above (standby) has its open record, marked synced,
# so the node that takes over can answer for it.
check "translation log: the synced flow's open record (synced: true)" bash -c \
  "grep '\"in\":\"10.0.1.10:5555\"' '${TXLOG}' | grep '\"ev\":\"open\"' | grep '\"out\":\"203.0.113.1:1270\"' | grep -q '\"synced\":true'"
check "eipgatectl who 203.0.113.1:1270 names the synced flow's inside host" bash -c \
  "'${CTL}' who 203.0.113.1:1270 --at \$(date +%s) --log '${TXLOG}' | tee /dev/stderr | grep -q '^10.0.1.10:5555 -> 198.51.100.7:7100 .*(taken over)'"
check "stats: translation_log records written, none dropped" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json stats | /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin)[\"translation_log\"]; print(t); sys.exit(not (t[\"enabled\"] and t[\"records_written\"] >= 2 and t[\"records_dropped\"] == 0))'"
check "reload back to the original config" ctl reload "${WORK}/dp.yaml"

# Connection flood toward one destination until its 256 ports run out.
cat >"${WORK}/flood.py" <<'PY'
import socket, sys, time
socks = []
for i in range(int(sys.argv[3])):
    s = socket.socket(); s.setblocking(False); s.connect_ex((sys.argv[1], int(sys.argv[2]))); socks.append(s)
time.sleep(3)
PY
stat_of() {
  ctl --json stats |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nat_gateway']['$1'])"
}
before=$(stat_of ErrorPortAllocation)
in_ns "${CLI}" /usr/bin/python3 "${WORK}/flood.py" 198.51.100.8 8080 400
exhaustion_counted() { (($(stat_of ErrorPortAllocation) > before)); }
wait_for exhaustion_counted || true
after=$(stat_of ErrorPortAllocation)
check "port exhaustion counted (ErrorPortAllocation ${before} -> ${after})" test "${after}" -gt "${before}"
check "other destinations still work after exhaustion" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
check "the dataplane is still running" kill -0 "${DP_PID}"

kill -TERM "${DP_PID}"
check "clean shutdown on SIGTERM" bash -c "for i in \$(seq 300); do kill -0 ${DP_PID} 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "${DP_PID}" 2>/dev/null && rc=0 || rc=$?
DP_PID=""
check "exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0

e2e_summary

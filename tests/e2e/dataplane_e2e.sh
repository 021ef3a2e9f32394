#!/usr/bin/env bash
# End-to-end: client namespace (private subnet) -> eipgate-dataplane on veth via af_packet ->
# "internet" namespace with servers on documentation addresses. Real traffic from real tools.
# Usage: dataplane_e2e.sh <path to eipgate-dataplane> [af_packet|af_xdp]. Needs root. Tears
# everything down on exit.
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
MODE=${2:-af_packet}
CTL=${3:-$(dirname "${DP}")/../control/eipgatectl}
S=eg$$  # namespace prefix, unique per run
CLI=${S}c NAT=${S}n NET=${S}i SRV=${S}s
WORK=$(mktemp -d)
DP_PID=""
pass=0 fail=0

cleanup() {
  [[ -n ${DP_PID} ]] && kill -TERM "${DP_PID}" 2>/dev/null && wait "${DP_PID}" 2>/dev/null || true
  for ns in "${CLI}" "${NAT}" "${NET}" "${SRV}"; do
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "${ns}" 2>/dev/null || true
  done
  if ((fail > 0)) || [[ -n ${E2E_VERBOSE:-} ]]; then
    echo "--- dataplane log ---"
    cat "${WORK}/dp.log" 2>/dev/null || true
  fi
  [[ -n ${E2E_DEBUG:-} ]] && cp -r "${WORK}" /tmp/e2e-debug
  rm -rf "${WORK}"
}
trap cleanup EXIT

check() {  # name, command...
  local name=$1
  shift
  if "$@" >"${WORK}/out" 2>&1; then
    echo "PASS ${name}"
    pass=$((pass + 1))
  else
    echo "FAIL ${name}"
    sed 's/^/    /' "${WORK}/out" | tail -20
    fail=$((fail + 1))
  fi
}

in_ns() { local ns=$1; shift; ip netns exec "${ns}" "$@"; }

# --- topology: client 10.0.1.10/24 -- [inside | NAT | outside] -- 203.0.113.254 router+servers
for ns in "${CLI}" "${NAT}" "${NET}" "${SRV}"; do ip netns add "${ns}"; in_ns "${ns}" ip link set lo up; done
ip link add c0 netns "${CLI}" type veth peer name nin netns "${NAT}"
ip link add nout netns "${NAT}" type veth peer name i0 netns "${NET}"
# veth offloads would hand af_packet partial checksums and 64 KiB super-frames: a NIC never does.
for pair in "${CLI}:c0" "${NAT}:nin" "${NAT}:nout" "${NET}:i0"; do
  ns=${pair%%:*} dev=${pair##*:}
  in_ns "${ns}" ethtool -K "${dev}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  in_ns "${ns}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1" || true
  in_ns "${ns}" ip link set "${dev}" up
done
in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
in_ns "${CLI}" ip route add default via 10.0.1.1
in_ns "${NET}" ip addr add 203.0.113.254/24 dev i0
in_ns "${NET}" ip addr add 198.51.100.7/32 dev lo   # the "what is my IP" server
in_ns "${NET}" ip addr add 198.51.100.8/32 dev lo   # a second destination
# A server behind a 1280-MTU link (Path MTU Discovery through the NAT).
ip link add r0 netns "${NET}" mtu 1280 type veth peer name s0 netns "${SRV}" mtu 1280
in_ns "${NET}" ip link set r0 up
in_ns "${SRV}" ip link set s0 up
in_ns "${NET}" ip addr add 192.0.2.1/24 dev r0
in_ns "${SRV}" ip addr add 192.0.2.9/24 dev s0
in_ns "${SRV}" ip route add default via 192.0.2.1
in_ns "${NET}" sysctl -qw net.ipv4.ip_forward=1

if [[ ${MODE} == af_xdp ]]; then
  IN_DEV="net_af_xdp0,iface=nin,start_queue=0,queue_count=1"
  OUT_DEV="net_af_xdp1,iface=nout,start_queue=0,queue_count=1"
else
  IN_DEV="net_af_packet0,iface=nin"
  OUT_DEV="net_af_packet1,iface=nout"
fi
cat >"${WORK}/dp.yaml" <<YAML
mode: two-armed
ports:
  - name: inside
    device: ${IN_DEV}
  - name: outside
    device: ${OUT_DEV}
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
  enabled: false
admin:
  socket: ${WORK}/dp.sock
logging:
  level: info
YAML

# A server that answers with the caller's address (what-is-my-IP).
cat >"${WORK}/whoami.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.7 8080 &
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.8 8080 &

# Started directly (not through a shell function) so that $! is the dataplane itself.
ip netns exec "${NAT}" "${DP}" --config "${WORK}/dp.yaml" >"${WORK}/dp.log" 2>&1 &
DP_PID=$!
for _ in $(seq 50); do
  grep -q "dataplane ready" "${WORK}/dp.log" && break
  kill -0 "${DP_PID}" 2>/dev/null || { cat "${WORK}/dp.log"; echo "FAIL dataplane exited at start"; exit 1; }
  sleep 0.2
done

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
sleep 0.3
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
sleep 0.3
[[ -n ${E2E_DEBUG:-} ]] && { in_ns "${NET}" tcpdump -n -i i0 -w "${WORK}/i0.pcap" & in_ns "${CLI}" tcpdump -n -i c0 -w "${WORK}/c0.pcap" & sleep 1; }
# DPDK 22.11's af_packet PMD always joins a PACKET_FANOUT group with FLAG_DEFRAG, so the kernel
# reassembles fragments before the dataplane sees them (and the result exceeds the frame size):
# fragments can only be exercised through af_xdp (or a real NIC).
if [[ ${MODE} == af_xdp ]]; then
  check "fragmented UDP both ways" in_ns "${CLI}" /usr/bin/python3 "${WORK}/udpclient.py" 198.51.100.7 7007
else
  echo "NOTE fragmented UDP: not run on af_packet (the PMD reassembles via PACKET_FANOUT_FLAG_DEFRAG)"
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
sleep 0.3
check "PMTUD through the NAT (upload over a 1280-MTU path)" in_ns "${CLI}" /usr/bin/python3 "${WORK}/upload.py" 192.0.2.9 8000
# Nothing unsolicited gets in: from the internet side, to the outside address.
in_ns "${CLI}" /usr/bin/python3 "${WORK}/whoami.py" 10.0.1.10 9090 &
check "unsolicited TCP from outside is not delivered" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 http://203.0.113.1:9090/"
check "unsolicited TCP to the inside address is not routed" bash -c \
  "! ip netns exec ${NET} curl -s --max-time 2 --interface 203.0.113.254 http://10.0.1.10:9090/"
# The admin socket and eipgatectl.
check "admin socket is root-only (0600)" bash -c "[[ \$(stat -c %a ${WORK}/dp.sock) == 600 ]]"
check "eipgatectl health" "${CTL}" --socket "${WORK}/dp.sock" health
check "eipgatectl stats (table) shows NAT Gateway counters" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' stats | tee /dev/stderr | grep -q ConnectionAttemptCount"
check "eipgatectl flows lists the client's flows with the outside address" bash -c \
  "'${CTL}' --socket '${WORK}/dp.sock' --json flows --inside 10.0.1.10 | /usr/bin/python3 -c \
   'import json,sys; r=json.load(sys.stdin); f=r[\"flows\"]; assert f and all(x[\"outside_ip\"]==\"203.0.113.1\" for x in f), r'"
# Connection flood toward one destination until its 256 ports run out.
cat >"${WORK}/flood.py" <<'PY'
import socket, sys, time
socks = []
for i in range(int(sys.argv[3])):
    s = socket.socket(); s.setblocking(False); s.connect_ex((sys.argv[1], int(sys.argv[2]))); socks.append(s)
time.sleep(3)
PY
stat_of() {
  "${CTL}" --socket "${WORK}/dp.sock" --json stats |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nat_gateway']['$1'])"
}
before=$(stat_of ErrorPortAllocation)
in_ns "${CLI}" /usr/bin/python3 "${WORK}/flood.py" 198.51.100.8 8080 400
sleep 0.5
after=$(stat_of ErrorPortAllocation)
check "port exhaustion counted (ErrorPortAllocation ${before} -> ${after})" test "${after}" -gt "${before}"
check "other destinations still work after exhaustion" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 http://198.51.100.7:8080/) == 203.0.113.1 ]]"
check "the dataplane is still running" kill -0 "${DP_PID}"

kill -TERM "${DP_PID}"
check "clean shutdown on SIGTERM" bash -c "for i in \$(seq 50); do kill -0 ${DP_PID} 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
wait "${DP_PID}" 2>/dev/null && rc=0 || rc=$?
DP_PID=""
check "exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0

echo "${pass} passed, ${fail} failed"
((fail == 0))

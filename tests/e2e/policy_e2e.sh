#!/usr/bin/env bash
# End-to-end egress allowlists through eipgate-dataplane in namespaces:
#  - a host name allowed by SNI passes (TLS, openssl s_server); a name not allowed on the SAME
#    address is reset; HTTP Host decides on port 80;
#  - a destination no rule allows gets the configured deny action (reject: RST at once);
#  - a reload during a running iperf3 stream keeps the stream;
#  - denial log lines and per-rule counters appear.
# Usage: policy_e2e.sh <eipgate-dataplane> [af_packet|af_xdp_steer] [eipgatectl]. Root.
set -euo pipefail
DP=${1:?path to eipgate-dataplane}
MODE=${2:-af_packet}
CTL=${3:-$(dirname "${DP}")/../control/eipgatectl}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init ep
e2e_topology "${MODE}"
ctl() { "${CTL}" --socket "${WORK}/dp.sock" "$@"; }

POLICY='policy:
  groups:
    - name: lambdas
      sources: [10.0.1.0/24]
      default: reject
  rules:
    - name: allowed-api
      from: lambdas
      hosts: [api.allowed.example]
      proto: tcp
      ports: 443
    - name: allowed-web
      from: lambdas
      hosts: ["*.allowed.example"]
      proto: tcp
      ports: 80
    - name: iperf
      from: lambdas
      dst: 198.51.100.7/32
      proto: tcp
      ports: 5201
    - name: udp-by-name
      from: lambdas
      hosts: [udp.allowed.example]
      proto: udp
      ports: 7000'
e2e_config "${WORK}/dp.yaml" "${POLICY}"
# --check (and the start-up log) say how many inside prefixes no group governs: a copy of the
# config whose group covers half of the inside prefix.
sed 's|sources: \[10.0.1.0/24\]|sources: [10.0.1.0/25]|' "${WORK}/dp.yaml" >"${WORK}/half.yaml"
check "--check says how many inside prefixes no group governs" bash -c \
  "'${DP}' -c '${WORK}/half.yaml' --check | tee /dev/stderr | grep -q '1 of 1 inside prefixes (10.0.1.0/24) hold 128 addresses in no group'"

# Servers: TLS on 198.51.100.7:443 (any name: the NAT decides), HTTP on :80, iperf3, and a
# second host 198.51.100.8 that no rule allows.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "${WORK}/k.pem" -out "${WORK}/c.pem" -days 1 \
  -subj /CN=server >/dev/null 2>&1
in_ns "${NET}" openssl s_server -accept 198.51.100.7:443 -cert "${WORK}/c.pem" -key "${WORK}/k.pem" \
  -www -quiet >/dev/null 2>&1 &
e2e_whoami_script
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.7 80 &
in_ns "${NET}" /usr/bin/python3 "${WORK}/whoami.py" 198.51.100.8 8080 &
in_ns "${NET}" iperf3 -s -B 198.51.100.7 -D --logfile "${WORK}/iperf.log"
# DNS for the resolver (udp-by-name): dnsmasq on 198.51.100.53 in the internet namespace, the
# NAT namespace's resolv.conf (ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf) points at
# it. The query leaves from the NAT namespace's kernel: only in af_xdp_steer mode do its
# interfaces hold addresses (af_packet drops their ingress), so the check runs there only; in
# af_packet mode the lookup fails at once (no route) and is retried with backoff.
in_ns "${NET}" ip addr add 198.51.100.53/32 dev lo
in_ns "${NET}" dnsmasq --keep-in-foreground --listen-address=198.51.100.53 --bind-interfaces \
  --conf-file=/dev/null --no-resolv --no-hosts --address=/udp.allowed.example/198.51.100.7 --local-ttl=30 \
  --pid-file="${WORK}/dnsmasq.pid" --user=root >"${WORK}/dnsmasq.log" 2>&1 &
mkdir -p "/etc/netns/${NAT}"
echo "nameserver 198.51.100.53" >"/etc/netns/${NAT}/resolv.conf"
[[ ${MODE} == af_xdp_steer ]] && in_ns "${NAT}" ip route add 198.51.100.53/32 via 203.0.113.254 dev nout
cat >"${WORK}/udpecho.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
PY
cat >"${WORK}/udpping.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.send(b"ping")
    sys.exit(0 if s.recv(64) == b"ping" else 1)
except OSError as e:
    print("udp", sys.argv[1], type(e).__name__, file=sys.stderr)
    sys.exit(1)
PY
in_ns "${NET}" /usr/bin/python3 "${WORK}/udpecho.py" 198.51.100.7 7000 &
in_ns "${NET}" /usr/bin/python3 "${WORK}/udpecho.py" 198.51.100.8 7000 &
e2e_start_dataplane "${DP}" "${WORK}/dp.yaml"
sleep 0.5

curl_rc() {  # curl exit status (0 = success); args go to curl
  local rc=0
  in_ns "${CLI}" curl -s -o /dev/null --max-time 5 "$@" || rc=$?
  echo "${rc}"
}
https() { curl_rc -k --resolve "$1:443:198.51.100.7" "https://$1/"; }

check "allowed name by SNI passes (api.allowed.example)" test "$(https api.allowed.example)" -eq 0
rc=$(https evil.example.net)
check "a name not allowed on the same address is reset (curl exit ${rc})" test "${rc}" -ne 0 -a "${rc}" -ne 28
check "wildcard name over HTTP Host passes (www.allowed.example:80)" bash -c \
  "[[ \$(ip netns exec ${CLI} curl -s --max-time 5 -H 'Host: www.allowed.example' http://198.51.100.7/) == 203.0.113.1 ]]"
rc=$(curl_rc -H 'Host: www.denied.example' http://198.51.100.7/)
check "HTTP Host not allowed is reset (curl exit ${rc})" test "${rc}" -ne 0 -a "${rc}" -ne 28
# A ClientHello split over two segments: while the name is pending nothing passes, so the first
# segment is dropped and the kernel retransmits it once the second has allowed the connection (the
# cost: one retransmission timeout, printed). A refused name split the same way is reset.
cat >"${WORK}/split_hello.py" <<'PY'
import socket, ssl, sys, time
name = sys.argv[1]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname=name)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
s = socket.create_connection(("198.51.100.7", 443), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
start = time.monotonic()
s.send(hello[:40])
time.sleep(0.02)
s.send(hello[40:])
try:
    first = s.recv(1)
except OSError as e:
    print("split hello %s: %s" % (name, type(e).__name__))
    sys.exit(2)
print("split hello %s: server answered after %.0f ms" % (name, (time.monotonic() - start) * 1000))
sys.exit(0 if first == b"\x16" else 1)
PY
split_out=$(in_ns "${CLI}" /usr/bin/python3 "${WORK}/split_hello.py" api.allowed.example 2>&1) &&
  rc=0 || rc=$?
check "a split ClientHello with an allowed name gets its answer (${split_out})" test "${rc}" -eq 0
check "a split ClientHello with a refused name is reset" bash -c \
  "ip netns exec ${CLI} /usr/bin/python3 ${WORK}/split_hello.py evil.example.net; test \$? -eq 2"
start=$(date +%s%N)
rc=$(curl_rc http://198.51.100.8:8080/)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
# Exit 7 (connection refused) is the RST; a silent drop would end in a timeout (28). The time is
# printed, and bounded only against a hang.
check "a destination no rule allows is rejected with a RST (curl exit ${rc} after ${ms} ms)" \
  test "${rc}" -eq 7 -a "${ms}" -lt 20000

if [[ ${MODE} == af_xdp_steer ]]; then
  for _ in $(seq 50); do grep -q 'resolver: policy updated' "${WORK}/dp.log" && break; sleep 0.2; done
  check "the resolver resolved udp.allowed.example (dnsmasq)" grep -q \
    'resolver: udp.allowed.example -> 198.51.100.7 (ttl 30 s)' "${WORK}/dp.log"
  check "UDP by host name (udp.allowed.example:7000) passes" \
    in_ns "${CLI}" /usr/bin/python3 "${WORK}/udpping.py" 198.51.100.7 7000
  check "UDP to another address on the same port is rejected" bash -c \
    "! ip netns exec ${CLI} /usr/bin/python3 ${WORK}/udpping.py 198.51.100.8 7000"
else
  echo "SKIP: UDP by host name needs DNS from the NAT namespace's kernel (af_xdp_steer only)"
fi

# Reload while an iperf3 stream runs: the new policy (an extra rule) keeps established flows.
in_ns "${CLI}" iperf3 -c 198.51.100.7 -t 6 -J --connect-timeout 3000 >"${WORK}/iperf.json" 2>&1 &
IPERF=$!
sleep 2
sed 's/^      ports: 5201$/      ports: 5201\n    - name: extra\n      from: lambdas\n      dst: 192.0.2.0\/24/' "${WORK}/dp.yaml" >"${WORK}/reload.yaml"
check "reload of a changed policy during the stream" ctl reload "${WORK}/reload.yaml"
iperf_rc=0
wait "${IPERF}" || iperf_rc=$?
check "the iperf3 stream survived the reload (exit ${iperf_rc})" bash -c \
  "test ${iperf_rc} -eq 0 && /usr/bin/python3 -c \"import json; r=json.load(open('${WORK}/iperf.json')); assert 'error' not in r, r['error']; assert r['end']['sum_received']['bytes'] > 0\""

# Audit: log lines and counters.
# Egress probes through the NAT (eipgatectl probe): a SYN from probe.source (default 10.0.1.3,
# the AWS-reserved +3 of the inside prefix) leaves translated like a Lambda's; the answer is
# caught before the inside and the connection closed with an RST.
out=$(ctl probe 198.51.100.7 5201 2>&1) && rc=0 || rc=$?
check "probe to an allowed destination is answered (exit ${rc}: ${out})" bash -c "[[ ${rc} -eq 0 && '${out}' == *syn-ack* && '${out}' == *10.0.1.3* ]]"
# The internet side loses its way back to the EIP (its answers are dropped on the way out, after
# routing, so the server keeps retransmitting them): no answer, exit 5; restored, answered again.
in_ns "${NET}" nft -f - <<'NFT'
table ip eg_noway {
  chain out { type filter hook output priority 0; ip daddr 203.0.113.1 drop; }
}
NFT
out=$(ctl probe 198.51.100.7 5201 --wait 0.5 2>&1) && rc=0 || rc=$?
in_ns "${NET}" nft delete table ip eg_noway
check "probe without a way back reports no answer (exit ${rc}: ${out})" bash -c "[[ ${rc} -eq 5 && '${out}' == *'no answer'* ]]"
check "probe answered again once the path is back" ctl probe 198.51.100.7 5201
# The server retransmits its SYN-ACK to the probe that had no way back (1 s after the first, then
# 3 s): it comes back through the NAT to the probe source but matches no probe in flight (another
# source port), so it is dropped and counted as a stray, not taken for an answer.
check "a late SYN-ACK of an earlier probe is counted as a stray" /usr/bin/python3 -c "
import json, subprocess, sys, time
for _ in range(40):
    r = json.loads(subprocess.run(['${CTL}', '--socket', '${WORK}/dp.sock', '--json', 'probe', '198.51.100.7', '5201'],
                                  capture_output=True, text=True).stdout)
    if r.get('strays', 0) >= 1:
        sys.exit(0)
    time.sleep(0.25)
print(r, file=sys.stderr); sys.exit(1)"
check "probe --json gives the state and the round trip" /usr/bin/python3 -c "
import json, subprocess, sys
r = json.loads(subprocess.run(['${CTL}', '--socket', '${WORK}/dp.sock', '--json', 'probe', '198.51.100.7', '5201'],
                              capture_output=True, text=True).stdout)
sys.exit(0 if r.get('state') == 'syn-ack' and r.get('rtt_us', -1) >= 0 else 1)"
check "denials are logged with name, group and rule" bash -c \
  "grep 'policy deny:' ${WORK}/dp.log | tee /dev/stderr | grep -q 'name=evil.example.net group=lambdas rule=lambdas#default action=reject'"
stats=$(ctl --json stats)
check "per-rule hits in the statistics" /usr/bin/python3 -c "
import json, sys
s = json.loads(sys.argv[1]); hits = {r['rule']: r['hits'] for r in s['policy']['rules']}
assert hits['allowed-api'] >= 1 and hits['allowed-web'] >= 1 and hits['lambdas#default'] >= 3, hits
assert hits['iperf'] >= 1, hits
assert s['drops']['policy_denied'] >= 3, s['drops']
" "${stats}"
check "eipgatectl stats shows the policy table" bash -c "'${CTL}' --socket '${WORK}/dp.sock' stats | tee /dev/stderr | grep -q 'allowed-api'"

# A bad policy is refused with file:line and the running one stays.
sed 's/^      ports: 443$/      ports: 70000/' "${WORK}/dp.yaml" >"${WORK}/bad.yaml"
line=$(grep -n 'ports: 70000' "${WORK}/bad.yaml" | cut -d: -f1)
out=$(ctl reload "${WORK}/bad.yaml" 2>&1) && rc=0 || rc=$?
check "a bad policy is refused with bad.yaml:${line} (exit ${rc})" bash -c "[[ ${rc} -ne 0 && '${out//\'/}' == *bad.yaml:${line}:* ]]"
check "the running policy still applies" test "$(https api.allowed.example)" -eq 0

e2e_summary

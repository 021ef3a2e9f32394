#!/usr/bin/env bash
# End-to-end egress allowlists (issue 4) through eipgate-dataplane in namespaces:
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
      ports: 5201'
e2e_config "${WORK}/dp.yaml" "${POLICY}"

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
start=$(date +%s%N)
rc=$(curl_rc http://198.51.100.8:8080/)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "a destination no rule allows is rejected at once (curl exit ${rc} after ${ms} ms)" \
  test "${rc}" -eq 7 -a "${ms}" -lt 2000

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

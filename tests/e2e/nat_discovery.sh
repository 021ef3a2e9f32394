#!/usr/bin/env bash
# End-to-end NAT behaviour discovery (RFC 5780) through eipgate-dataplane with coturn:
# `turnserver` listens on two addresses in the "internet" namespace, `turnutils_natdiscovery`
# runs from the client namespace. Run twice:
#   default config (endpoint-dependent mapping, as NAT Gateway) -> mapping "address and port
#     dependent", filtering "address and port dependent";
#   nat.endpoint_independent_udp: true -> mapping "endpoint independent", filtering still
#     "address and port dependent" (RFC 4787 REQ-1; REQ-8 allows that stricter filtering).
# Every STUN response must report the NAT's outside address as the mapped address.
# Usage: nat_discovery.sh <path to eipgate-dataplane> [af_packet|af_xdp]. Needs root and the
# Debian package coturn. Tears everything down on exit.
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
MODE=${2:-af_packet}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init nd
TURN_PID=""
CHECK_TAIL=40
E2E_DEBUG_DIR=nat-discovery-debug
E2E_SUMMARY_AT_EXIT=1  # last, after the logs, also when the script stopped early

CLIENT=10.0.1.10
OUTSIDE=203.0.113.1          # nat.outside_addresses (lib.sh e2e_config): every mapped address
STUN1=198.51.100.20 STUN2=198.51.100.21
STUN_PORT=3478 STUN_ALT_PORT=3479
START_TIMEOUT_S=${NAT_DISCOVERY_START_TIMEOUT_S:-100}  # per dataplane start

e2e_on_exit() {
  if [[ -n ${TURN_PID} ]]; then
    kill -TERM "${TURN_PID}" 2>/dev/null || true
    wait "${TURN_PID}" 2>/dev/null || true
  fi
}
e2e_show_logs() {
  local f
  for f in "${WORK}"/dp-*.log "${WORK}/turn.log"; do
    [[ -e ${f} ]] || continue
    echo "--- ${f##*/} ---"
    tail -60 "${f}"
  done
}

for tool in turnserver turnutils_natdiscovery; do
  command -v "${tool}" >/dev/null || { echo "FAIL ${tool} not found (Debian package coturn)"; exit 1; }
done

# --- topology: client 10.0.1.10/24 -- [inside | NAT | outside] -- 203.0.113.254 + STUN server
e2e_topology "${MODE}"
in_ns "${NET}" ip addr add "${STUN1}/32" dev lo
in_ns "${NET}" ip addr add "${STUN2}/32" dev lo

# --- the STUN server: two listening addresses (primary and alternate in the RFC 5780 sense,
# each also on the alternate port), UDP only, no TLS, no database, no CLI, anonymous binding.
cat >"${WORK}/turnserver.conf" <<CONF
listening-ip=${STUN1}
listening-ip=${STUN2}
listening-port=${STUN_PORT}
alt-listening-port=${STUN_ALT_PORT}
stun-only
no-tcp
no-tls
no-dtls
no-cli
no-tcp-relay
userdb=${WORK}/turndb
log-file=${WORK}/turn.log
simple-log
no-stdout-log
pidfile=${WORK}/turn.pid
CONF
ip netns exec "${NET}" turnserver -c "${WORK}/turnserver.conf" >"${WORK}/turn.out" 2>&1 &
TURN_PID=$!
ready=""
for _ in $(seq 150); do
  kill -0 "${TURN_PID}" 2>/dev/null || break
  # Ready when all four sockets (2 addresses x 2 ports) are bound.
  if (($(in_ns "${NET}" ss -Hlun 2>/dev/null | grep -cE "198\.51\.100\.2[01]:(${STUN_PORT}|${STUN_ALT_PORT})\b") >= 4)); then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ -z ${ready} ]]; then
  echo "FAIL turnserver did not start"
  cat "${WORK}/turn.out" "${WORK}/turn.log" 2>/dev/null | tail -40
  fail=1
  exit 1
fi
echo "PASS turnserver listening on ${STUN1} and ${STUN2}, ports ${STUN_PORT}/${STUN_ALT_PORT}"
pass=$((pass + 1))

start_dp() {  # name, endpoint_independent_udp (true|false|"" for the default)
  local name=$1 eim=$2
  e2e_config "${WORK}/dp-${name}.yaml" "logging:
  level: info" "${eim:+  endpoint_independent_udp: ${eim}}"
  # Each run meets the hosts as a freshly started NAT would (they ARP for it again).
  in_ns "${CLI}" ip neigh flush all
  in_ns "${NET}" ip neigh flush all
  E2E_START_TIMEOUT_S=${START_TIMEOUT_S} \
    e2e_start_dataplane "${DP}" "${WORK}/dp-${name}.yaml" "${WORK}/dp-${name}.log"
}

# "dataplane ready" comes before the next hops are resolved, and a packet whose next hop (the
# gateway outward, the on-link client inward) is not resolved yet is dropped (counted as
# no_neighbour), not queued. natdiscovery sends every request once, without the retransmissions
# of RFC 5389 clients, so a lost first request reads as "no RFC 5780 server". Ping through the
# NAT (ICMP: no UDP mapping is made) until both directions are resolved.
warm_up() {  # name
  check "$1: ping through the NAT (resolves the next hops)" bash -c \
    "for i in \$(seq 20); do ip netns exec ${CLI} ping -c 1 -W 1 ${STUN1} && exit 0; done; exit 1"
}

stop_dp() {  # name
  local name=$1 rc
  check "${name}: the dataplane is still running" kill -0 "${DP_PID}"
  kill -TERM "${DP_PID}"
  wait "${DP_PID}" 2>/dev/null && rc=0 || rc=$?
  rm -rf "/var/run/dpdk/eipgate${DP_PID}"  # its EAL runtime dir (--file-prefix eipgate<pid>)
  DP_PID=""
  check "${name}: exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0
}

# natdiscovery's verdict: the line between the "=====" rules that names a behaviour, e.g.
# "NAT with Address and Port Dependent Mapping!" -> "address and port dependent mapping".
verdict() {  # file, kind (mapping|filtering)
  grep -ioE "(no nat|nat with [a-z ]+ ${2})" "$1" | tail -1 | tr '[:upper:]' '[:lower:]' | sed 's/^nat with //'
}

# Every reflexive (XOR-MAPPED) address natdiscovery printed is the NAT's outside address, and
# there is at least one.
mapped_is_outside() {  # natdiscovery output files...
  local addrs
  addrs=$(grep -ih "reflexive addr" "$@" | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}(:[0-9]+)?' | sort -u)
  echo "reflexive addresses: $(tr '\n' ' ' <<<"${addrs:-none}")"
  if [[ -n ${addrs} ]] && ! grep -vqE "^${OUTSIDE//./\\.}:[0-9]+$" <<<"${addrs}"; then
    return 0
  fi
  echo "--- natdiscovery output ---"
  cat "$@"
  return 1
}

expect_verdict() {  # file, kind, expected
  local got
  got=$(verdict "$1" "$2")
  echo "natdiscovery says: '${got:-nothing}', expected '$3'"
  [[ ${got} == "$3" ]] || { echo "--- natdiscovery output ---"; cat "$1"; return 1; }
}

discover() {  # name, expected mapping, expected filtering
  local name=$1 mapping=$2 filtering=$3
  # -L: natdiscovery binds the same local address and port for every request of a test only
  # when it is given a local address; without it each request would leave from a new port.
  in_ns "${CLI}" timeout 60 turnutils_natdiscovery -m -L "${CLIENT}" -p "${STUN_PORT}" "${STUN1}" \
    >"${WORK}/${name}-m.out" 2>&1 || true
  in_ns "${CLI}" timeout 60 turnutils_natdiscovery -f -L "${CLIENT}" -p "${STUN_PORT}" "${STUN1}" \
    >"${WORK}/${name}-f.out" 2>&1 || true
  [[ -n ${E2E_VERBOSE:-} ]] && cat "${WORK}/${name}-m.out" "${WORK}/${name}-f.out"
  check "${name}: the STUN server answers with RFC 5780 attributes (OTHER-ADDRESS)" bash -c \
    "grep -q 'RFC 5780 response' '${WORK}/${name}-m.out' || { cat '${WORK}/${name}-m.out'; exit 1; }"
  check "${name}: mapping behaviour is ${mapping}" expect_verdict "${WORK}/${name}-m.out" mapping "${mapping}"
  check "${name}: filtering behaviour is ${filtering}" \
    expect_verdict "${WORK}/${name}-f.out" filtering "${filtering}"
  check "${name}: the mapped address is the NAT's outside address ${OUTSIDE}" \
    mapped_is_outside "${WORK}/${name}-m.out" "${WORK}/${name}-f.out"
  check "${name}: no ALG (MAPPED-ADDRESS == XOR-MAPPED-ADDRESS)" bash -c \
    "! grep -q 'ALG detected' '${WORK}/${name}-m.out' '${WORK}/${name}-f.out'"
}

# 1. Defaults: endpoint-dependent mapping, as NAT Gateway.
start_dp edm ""
warm_up edm
discover edm "address and port dependent mapping" "address and port dependent filtering"
stop_dp edm

# 2. nat.endpoint_independent_udp: true -> RFC 4787 endpoint-independent mapping for UDP,
#    filtering stays address-and-port dependent.
start_dp eim true
warm_up eim
discover eim "endpoint independent mapping" "address and port dependent filtering"
stop_dp eim

((fail == 0))  # the summary line is printed by cleanup

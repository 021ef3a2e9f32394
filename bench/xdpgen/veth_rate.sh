#!/usr/bin/env bash
# The generator's own ceiling: eipgate-xdpgen into a veth pair whose other end only runs
# eipgate-xdpsink, nothing in between. Prints the generator's JSON line, the generator veth's
# XDP transmit counters on stderr (xdp_xmit_errors: frames the peer's full ring dropped), then
# the sink's JSON line.
# Usage (root): bench/xdpgen/veth_rate.sh [eipgate-xdpgen options], e.g. --keep 10 --duration 2.
# Environment: BUILD_DIR (default build), GEN_CPU (0), SINK_CPU (empty: the sink runs where veth
# runs it, in the softirq of the generator's CPU after each batch; a CPU number: the sink veth's
# NAPI is made threaded and its kthread pinned there).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ ${BUILD_DIR} == /* ]] || BUILD_DIR=${ROOT}/${BUILD_DIR}
GEN=${BUILD_DIR}/bench/xdpgen/eipgate-xdpgen
SINK=${BUILD_DIR}/bench/xdpgen/eipgate-xdpsink
GEN_CPU=${GEN_CPU:-0}
SINK_CPU=${SINK_CPU:-}
((EUID == 0)) || { echo "veth_rate: run as root" >&2; exit 1; }
[[ -x ${GEN} && -x ${SINK} ]] || { echo "veth_rate: build eipgate-xdpgen and eipgate-xdpsink in ${BUILD_DIR}" >&2; exit 1; }

NS=xr$$
G=${NS}g S=${NS}s  # unique names: the NAPI kthread is found by name
WORK=$(mktemp -d)
SINK_PID=""
cleanup() {
  [[ -n ${SINK_PID} ]] && { kill -INT "${SINK_PID}" 2>/dev/null; wait "${SINK_PID}" || true; }
  ip netns del "${NS}" 2>/dev/null || true
  rm -rf "${WORK}"
}
trap cleanup EXIT

ip netns add "${NS}"
ip -n "${NS}" link add "${G}" type veth peer name "${S}"
for dev in "${G}" "${S}"; do
  ip netns exec "${NS}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1"
  ip -n "${NS}" link set "${dev}" up
done
ip netns exec "${NS}" "${SINK}" --dev "${S}" --json >"${WORK}/sink.json" 2>"${WORK}/sink.err" &
SINK_PID=$!
for _ in $(seq 100); do grep -q attached "${WORK}/sink.err" && break; sleep 0.1; done
grep -q attached "${WORK}/sink.err" || { cat "${WORK}/sink.err" >&2; exit 1; }
if [[ -n ${SINK_CPU} ]]; then
  # veth has NAPI only while an XDP program (or GRO) is on: threaded after the sink attached.
  ip netns exec "${NS}" sh -c "echo 1 > /sys/class/net/${S}/threaded"
  pids=$(pgrep "^napi/${S}-" || true)
  [[ -n ${pids} ]] || { echo "veth_rate: no napi/${S}-* kthread" >&2; exit 1; }
  for pid in ${pids}; do taskset -pc "${SINK_CPU}" "${pid}" >/dev/null; done
fi
ip netns exec "${NS}" "${GEN}" --dev "${G}" --cpu "${GEN_CPU}" --json "$@"
sleep 0.2
ip netns exec "${NS}" ethtool -S "${G}" | grep xdp_xmit >&2 || true  # _errors: ring full
kill -INT "${SINK_PID}"
wait "${SINK_PID}"
SINK_PID=""
cat "${WORK}/sink.json"

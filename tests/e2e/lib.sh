# Shared by the end-to-end scripts and the namespace benchmarks (source it): namespaces, veth
# pairs, checks, the two-armed topology and the dataplane's start. Everything made is torn down by
# e2e_cleanup (installed as the EXIT trap).
#
#   client ns (10.0.1.10/24) --c0|nin-- NAT ns (eipgate-dataplane) --nout|i0-- internet ns
#                                                                       203.0.113.254, servers on lo
# Variables after e2e_topology: CLI NAT NET (namespace names), WORK (temp dir), DP_PID.
# Hooks a script may set or redefine after sourcing: e2e_on_exit (runs first in the cleanup, for
# the script's own daemons), e2e_show_logs (what a failed run prints), CHECK_TAIL (lines of a
# failed check's output shown), E2E_DEBUG_DIR (where E2E_DEBUG=1 keeps WORK), E2E_SUMMARY_AT_EXIT
# (print the pass/fail line last, also when the script stops early).

e2e_init() {  # prefix
  # Root-only tests fail without root, they never skip (tests/README.md).
  if [[ ${EUID} -ne 0 ]]; then
    echo "FAIL: $0 needs root (namespaces, veth, DPDK): run it as root, as CI does" >&2
    exit 1
  fi
  S=$1$$
  CLI=${S}c NAT=${S}n NET=${S}i
  E2E_NAMESPACES=()
  WORK=$(mktemp -d)
  DP_PID=""
  pass=0 fail=0
  trap e2e_cleanup EXIT
}

e2e_show_logs() {
  echo "--- dataplane log ---"
  cat "${WORK}/dp.log" 2>/dev/null || true
}

e2e_cleanup() {
  if declare -F e2e_on_exit >/dev/null; then e2e_on_exit || true; fi
  if [[ -n ${DP_PID} ]]; then
    kill -TERM "${DP_PID}" 2>/dev/null && wait "${DP_PID}" 2>/dev/null || true
    rm -rf "/var/run/dpdk/eipgate${DP_PID}"  # its EAL runtime dir (--file-prefix eipgate<pid>)
  fi
  local ns
  for ns in "${E2E_NAMESPACES[@]}"; do
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "${ns}" 2>/dev/null || true
  done
  if ((fail > 0)) || [[ -n ${E2E_VERBOSE:-} ]]; then e2e_show_logs; fi
  [[ -n ${NAT:-} && -d /etc/netns/${NAT} ]] && rm -rf "/etc/netns/${NAT}"
  [[ -n ${E2E_DEBUG:-} ]] && cp -r "${WORK}" "/tmp/${E2E_DEBUG_DIR:-e2e-debug}"
  rm -rf "${WORK}"
  if [[ -n ${E2E_SUMMARY_AT_EXIT:-} ]]; then echo "${pass} passed, ${fail} failed"; fi
  return 0
}

check() {  # name, command...
  local name=$1
  shift
  if "$@" >"${WORK}/out" 2>&1; then
    echo "PASS ${name}"
    pass=$((pass + 1))
  else
    echo "FAIL ${name}"
    sed 's/^/    /' "${WORK}/out" | tail -"${CHECK_TAIL:-20}"
    fail=$((fail + 1))
  fi
}

in_ns() { local ns=$1; shift; ip netns exec "${ns}" "$@"; }

e2e_summary() {
  echo "${pass} passed, ${fail} failed"
  ((fail == 0))
}

# eipgatectl on the dataplane's admin socket (CTL: its path), retried: on a loaded 2-core CI
# machine one answer can miss the client's deadline.
ctl() {
  local i
  for i in 1 2 3; do "${CTL}" --socket "${WORK}/dp.sock" "$@" && return 0; sleep 1; done
  return 1
}

# Namespaces with loopback up, deleted by e2e_cleanup.
e2e_netns() {  # name...
  local ns
  for ns in "$@"; do
    E2E_NAMESPACES+=("${ns}")
    ip netns add "${ns}"
    in_ns "${ns}" ip link set lo up
  done
}

# A veth pair between two namespaces, up, without IPv6, and without offloads: they would hand the
# PMD partial checksums and 64 KiB super-frames, which a NIC never does.
e2e_veth() {  # ns:dev ns:dev
  local a_ns=${1%%:*} a_dev=${1##*:} b_ns=${2%%:*} b_dev=${2##*:} pair ns dev
  ip link add "${a_dev}" netns "${a_ns}" type veth peer name "${b_dev}" netns "${b_ns}"
  for pair in "$1" "$2"; do
    ns=${pair%%:*} dev=${pair##*:}
    in_ns "${ns}" ethtool -K "${dev}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "${ns}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1" || true
    in_ns "${ns}" ip link set "${dev}" up
  done
}

# The two-armed topology. MODE: af_packet | af_xdp (DPDK's default XDP program: every frame to the
# dataplane) | af_xdp_steer (eipgate's steering program: the kernel's interfaces keep the
# instance's addresses). Sets IN_DEV and OUT_DEV.
e2e_topology() {  # mode
  local mode=$1 dev
  e2e_netns "${CLI}" "${NAT}" "${NET}"
  e2e_veth "${CLI}:c0" "${NAT}:nin"
  e2e_veth "${NAT}:nout" "${NET}:i0"
  in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
  in_ns "${CLI}" ip route add default via 10.0.1.1
  in_ns "${NET}" ip addr add 203.0.113.254/24 dev i0
  in_ns "${NET}" ip addr add 198.51.100.7/32 dev lo
  in_ns "${NET}" ip addr add 198.51.100.8/32 dev lo
  case ${mode} in
    af_xdp_steer)
      in_ns "${NAT}" ip addr add 10.0.1.1/24 dev nin
      in_ns "${NAT}" ip addr add 203.0.113.2/24 dev nout
      in_ns "${NAT}" ip addr add 203.0.113.1/32 dev nout
      # The XDP fast path sends translated frames with XDP_TX / XDP_REDIRECT; a veth hands such
      # frames to its peer only when the peer runs NAPI (an XDP program, or GRO on). The far ends
      # are hosts, whose own receive GRO does not change what the NAT sees.
      in_ns "${CLI}" ethtool -K c0 gro on >/dev/null
      in_ns "${NET}" ethtool -K i0 gro on >/dev/null
      ;;
    af_packet)
      # af_packet only copies frames: the NAT namespace's kernel would also receive everything on
      # nin and nout and answer the NAT's reply traffic with RSTs. Drop it in the kernel after
      # the af_packet taps have seen it (netdev ingress runs after packet taps).
      for dev in nin nout; do
        in_ns "${NAT}" nft add table netdev eg_${dev}
        in_ns "${NAT}" nft add chain netdev eg_${dev} in "{ type filter hook ingress device ${dev} priority 0; policy drop; }"
      done
      ;;
    af_xdp) ;;  # the frames are redirected before the kernel sees them
    *) echo "FAIL unknown port mode ${mode}"; exit 1 ;;
  esac
  if [[ ${mode} == af_xdp* ]]; then
    IN_DEV="net_af_xdp0,iface=nin,start_queue=0,queue_count=1"
    OUT_DEV="net_af_xdp1,iface=nout,start_queue=0,queue_count=1"
  else
    IN_DEV="net_af_packet0,iface=nin"
    OUT_DEV="net_af_packet1,iface=nout"
  fi
}

# The dataplane config for the topology, with extra YAML appended (policy:, polling:, ...) and
# extra keys for the nat: section (indented two spaces).
e2e_config() {  # file, extra yaml [, extra nat: keys]
  cat >"$1" <<YAML
mode: two-armed
ports:
  - name: inside
    device: ${IN_DEV}
    $([[ ${IN_DEV} == net_af_packet* ]] && echo "af_packet_fragments: drop")
  - name: outside
    device: ${OUT_DEV}
    $([[ ${OUT_DEV} == net_af_packet* ]] && echo "af_packet_fragments: drop")
interface:
  address: 203.0.113.2/24
  inside_address: 10.0.1.1/24
next_hop:
  gateway: 203.0.113.254
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [203.0.113.1]
  max_flows: 64K${3:+
$3}
workers:
  lcores: [1]
  main_lcore: 0
eal:
  extra_args: "--no-huge -m 256"
exception_path:
  enabled: false
admin:
  socket: ${WORK}/dp.sock
$2
YAML
}

# Starts the dataplane in the NAT namespace and waits until it is ready (E2E_START_TIMEOUT_S,
# default 100 s: af_xdp's start was seen taking 90 s on a loaded 2-core machine). Started directly
# (not through a subshell) so that DP_PID is the dataplane itself. A failed start counts as a
# failure and ends the script; e2e_cleanup shows the log.
e2e_start_dataplane() {  # binary, config [, log file (default WORK/dp.log)]
  local log=${3:-${WORK}/dp.log} _
  ip netns exec "${NAT}" "$1" --config "$2" >"${log}" 2>&1 &
  DP_PID=$!
  for _ in $(seq $((${E2E_START_TIMEOUT_S:-100} * 5))); do
    grep -q "dataplane ready" "${log}" && return 0
    kill -0 "${DP_PID}" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "${DP_PID}" 2>/dev/null; then
    echo "FAIL dataplane not ready after ${E2E_START_TIMEOUT_S:-100} s (${log##*/})"
  else
    echo "FAIL dataplane exited at start (${log##*/})"
  fi
  fail=$((fail + 1))
  exit 1
}

# A what-is-my-IP HTTP server: answers with the caller's address; optional Host check.
e2e_whoami_script() {
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
}

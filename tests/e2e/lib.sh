# Shared by the end-to-end scripts (source it): namespaces, checks, the two-armed topology and the
# dataplane's start. Everything made is torn down by e2e_cleanup (installed as the EXIT trap).
#
#   client ns (10.0.1.10/24) --c0|nin-- NAT ns (eipgate-dataplane) --nout|i0-- internet ns
#                                                                       203.0.113.254, servers on lo
# Variables after e2e_topology: CLI NAT NET (namespace names), WORK (temp dir), DP_PID.

e2e_init() {  # prefix
  S=$1$$
  CLI=${S}c NAT=${S}n NET=${S}i
  WORK=$(mktemp -d)
  DP_PID=""
  pass=0 fail=0
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  [[ -n ${DP_PID} ]] && kill -TERM "${DP_PID}" 2>/dev/null && wait "${DP_PID}" 2>/dev/null || true
  for ns in "${CLI}" "${NAT}" "${NET}"; do
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "${ns}" 2>/dev/null || true
  done
  if ((fail > 0)) || [[ -n ${E2E_VERBOSE:-} ]]; then
    echo "--- dataplane log ---"
    cat "${WORK}/dp.log" 2>/dev/null || true
  fi
  [[ -n ${NAT:-} && -d /etc/netns/${NAT} ]] && rm -rf "/etc/netns/${NAT}"
  rm -rf "${WORK}"
}

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

e2e_summary() {
  echo "${pass} passed, ${fail} failed"
  ((fail == 0))
}

# The two-armed topology. MODE: af_packet | af_xdp_steer. Sets IN_DEV and OUT_DEV.
e2e_topology() {  # mode
  local mode=$1 ns dev pair
  for ns in "${CLI}" "${NAT}" "${NET}"; do ip netns add "${ns}"; in_ns "${ns}" ip link set lo up; done
  ip link add c0 netns "${CLI}" type veth peer name nin netns "${NAT}"
  ip link add nout netns "${NAT}" type veth peer name i0 netns "${NET}"
  # veth offloads would hand the PMD partial checksums and 64 KiB super-frames: a NIC never does.
  for pair in "${CLI}:c0" "${NAT}:nin" "${NAT}:nout" "${NET}:i0"; do
    ns=${pair%%:*} dev=${pair##*:}
    in_ns "${ns}" ethtool -K "${dev}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "${ns}" sysctl -qw "net.ipv6.conf.${dev}.disable_ipv6=1" || true
    in_ns "${ns}" ip link set "${dev}" up
  done
  in_ns "${CLI}" ip addr add 10.0.1.10/24 dev c0
  in_ns "${CLI}" ip route add default via 10.0.1.1
  in_ns "${NET}" ip addr add 203.0.113.254/24 dev i0
  in_ns "${NET}" ip addr add 198.51.100.7/32 dev lo
  in_ns "${NET}" ip addr add 198.51.100.8/32 dev lo
  if [[ ${mode} == af_xdp_steer ]]; then
    in_ns "${NAT}" ip addr add 10.0.1.1/24 dev nin
    in_ns "${NAT}" ip addr add 203.0.113.2/24 dev nout
    in_ns "${NAT}" ip addr add 203.0.113.1/32 dev nout
    IN_DEV="net_af_xdp0,iface=nin,start_queue=0,queue_count=1"
    OUT_DEV="net_af_xdp1,iface=nout,start_queue=0,queue_count=1"
  else
    # af_packet copies frames: the NAT namespace's kernel must not also answer them.
    for dev in nin nout; do
      in_ns "${NAT}" nft add table netdev eg_${dev}
      in_ns "${NAT}" nft add chain netdev eg_${dev} in "{ type filter hook ingress device ${dev} priority 0; policy drop; }"
    done
    IN_DEV="net_af_packet0,iface=nin"
    OUT_DEV="net_af_packet1,iface=nout"
  fi
}

# The dataplane config for the topology, with extra YAML appended (policy:, polling:, ...).
e2e_config() {  # file, extra yaml
  cat >"$1" <<YAML
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
$2
YAML
}

# Starts the dataplane in the NAT namespace and waits until it is ready (up to 100 s).
e2e_start_dataplane() {  # binary, config
  ip netns exec "${NAT}" "$1" --config "$2" >"${WORK}/dp.log" 2>&1 &
  DP_PID=$!
  local _
  for _ in $(seq 500); do
    grep -q "dataplane ready" "${WORK}/dp.log" && return 0
    kill -0 "${DP_PID}" 2>/dev/null || { cat "${WORK}/dp.log"; echo "FAIL dataplane exited at start"; exit 1; }
    sleep 0.2
  done
  cat "${WORK}/dp.log"
  echo "FAIL dataplane not ready after 100 s"
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

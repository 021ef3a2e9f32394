# Shared by vpc.sh, ha_e2e.sh, scripts/demo.sh and bench/failover.sh: the simulated VPC's layout
# and helpers. Source it after setting VPC_DIR (the run's directory; it holds the prefix).
#
# Layout (AZ a shown; AZ b is the same with 10.2.x and EIP 203.0.113.20):
#
#   Lambda ns la (10.1.1.10) -- VPC router ra -- e1 -- instance a1 eth1 (data ENI, DPDK af_packet)
#                                 |  table 101   \- e2 -- instance a2 eth1
#                                 | (private rt)
#                                 +-- g0 10.254.1.2 -- igw ns (EIP 1:1 NAT) -- 192.0.2.1 -- inet ns
#   services ns svc: bridge 10.255.0.1/24 -- eth0 of every instance (management ENI: heartbeats,
#                    EC2 + IMDS at fake_aws 10.255.0.1:8080)
#
# Internet hosts (inet ns, on lo): 198.51.100.7 what-is-my-IP :8080 and a byte stream :9000,
# 198.51.100.8 the EIP-only API :8080, 198.51.100.9 a host not on the allowlist :8080.
# shellcheck shell=bash

SIM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "${SIM_DIR}/../.." && pwd)
PY=/usr/bin/python3
VPC_DIR=${VPC_DIR:-/tmp/eipgate-vpc}
BUILD_DIR=${BUILD_DIR:-build-sim}
[[ ${BUILD_DIR} == /* ]] || BUILD_DIR=${REPO_ROOT}/${BUILD_DIR}
DP_BIN=${DP_BIN:-${BUILD_DIR}/dataplane/eipgate-dataplane}
CONTROL_BIN=${CONTROL_BIN:-${BUILD_DIR}/control/daemon/eipgate-control}
CTL_BIN=${CTL_BIN:-${BUILD_DIR}/control/eipgatectl}
VPC_DATA_PATH=${VPC_DATA_PATH:-af_xdp}
VPC_XDP_OBJ=${VPC_XDP_OBJ:-$(dirname "${DP_BIN}")/../bpf/xdp_steer.bpf.o}
# The data ENI as the dataplane opens it.
data_device() {
  case ${VPC_DATA_PATH} in
    af_xdp) echo "net_af_xdp0,iface=eth1,start_queue=0,queue_count=1" ;;
    af_packet) echo "net_af_packet0,iface=eth1" ;;
    *) echo "VPC_DATA_PATH must be af_xdp or af_packet, not ${VPC_DATA_PATH}" >&2; return 1 ;;
  esac
}

INSTANCES=(a1 a2 b1 b2)
AWS_ADDR=10.255.0.1
AWS_PORT=8080
# VPC_MGMT=ipv6: the instances reach the fake EC2/IMDS only over IPv6 (the dual-stack endpoint
# through an egress-only gateway on AWS); IPv4 to AWS_ADDR is dropped in their namespaces.
VPC_MGMT=${VPC_MGMT:-ipv4}
AWS_ADDR6=fd00:255::1
WHOAMI=198.51.100.7 EIPAPI=198.51.100.8 DENIED=198.51.100.9
ECHO_HOST=198.51.100.10 ECHO_PORT=7000  # many_conns.sh's echo server (allowed to the Lambdas)
declare -A EIP=([a]=203.0.113.10 [b]=203.0.113.20 [x]=203.0.113.31)  # x: the baseline (VPC_BASELINE)
declare -A SERVICE_IP=([a]=10.1.0.100 [b]=10.2.0.100)
declare -A AZNUM=([a]=1 [b]=2)
# Service addresses per pair (VPC_EIPS, 1..8, default 1; `vpc.sh up` keeps the run's value in
# VPC_DIR/eips): secondary IPs 10.N.0.100.. of the active's data ENI, each with its own EIP,
# 203.0.113.10.. (AZ a) and .20.. (AZ b). EIP[az] and SERVICE_IP[az] are the first of each.
VPC_EIPS=${VPC_EIPS:-$(cat "${VPC_DIR}/eips" 2>/dev/null || echo 1)}
service_ips() { local k; for ((k = 0; k < VPC_EIPS; k++)); do echo "10.${AZNUM[$1]}.0.$((100 + k))"; done; }  # az
eips() { local k; for ((k = 0; k < VPC_EIPS; k++)); do echo "203.0.113.$((10 * AZNUM[$1] + k))"; done; }  # az
# eipalloc_of az [k]: the allocation id of the AZ's k-th EIP (k from 1; 1 = the one of old)
eipalloc_of() { printf 'eipalloc-0%s%s000000000000%02x\n' "$1" "$1" "${2:-1}"; }

vpc_prefix() { cat "${VPC_DIR}/prefix" 2>/dev/null; }
ns_of() { echo "$(vpc_prefix)-$1"; }           # ns_of a1 | ra | la | igw | inet | svc
in_ns() { local ns; ns=$(ns_of "$1"); shift; ip netns exec "${ns}" "$@"; }
az_of() { echo "${1:0:1}"; }                   # a1 -> a
peer_of() { case $1 in a1) echo a2 ;; a2) echo a1 ;; b1) echo b2 ;; b2) echo b1 ;; esac; }
inst_id() { local z=$1; z=${z:0:1}; printf 'i-0%s%s' "$(printf "${z}%.0s" {1..15})" "${1:1:1}"; }
data_eni() { local z=${1:0:1}; printf 'eni-0%sd0%s' "$(printf "${z}%.0s" {1..13})" "${1:1:1}"; }
mgmt_eni() { local z=${1:0:1}; printf 'eni-0%se0%s' "$(printf "${z}%.0s" {1..13})" "${1:1:1}"; }
rtb_of() { printf 'rtb-0%s%s00000000000001' "$1" "$1"; }      # rtb_of a
data_mac() { printf '0e:00:00:0%s:00:%d%d' "${1:0:1}" "${AZNUM[${1:0:1}]}" "${1:1:1}"; }
mgmt_mac() { printf '0e:00:00:0%s:01:%d%d' "${1:0:1}" "${AZNUM[${1:0:1}]}" "${1:1:1}"; }
router_mac() { printf '0e:00:00:0%s:00:01' "$1"; }
data_ip() { echo "10.${AZNUM[${1:0:1}]}.0.1${1:1:1}"; }         # a1 -> 10.1.0.11
mgmt_ip() { echo "10.255.0.${AZNUM[${1:0:1}]}${1:1:1}"; }       # a1 -> 10.255.0.11, b2 -> .22
mgmt_ip6() { echo "fd00:255::${AZNUM[${1:0:1}]}${1:1:1}"; }      # a1 -> fd00:255::11 (ULA)
# the fake AWS as an instance sees it: the IPv4 address, or the IPv6 one under VPC_MGMT=ipv6
aws_url() { if [[ ${VPC_MGMT} == ipv6 ]]; then echo "http://[${AWS_ADDR6}]:${AWS_PORT}"; else echo "http://${AWS_ADDR}:${AWS_PORT}"; fi; }
lambda_ip() { echo "10.${AZNUM[$1]}.1.10"; }

# eipgatectl against an instance's dataplane / control daemon.
dpctl() { local i=$1; shift; "${CTL_BIN}" --socket "${VPC_DIR}/$i/dataplane.sock" "$@"; }
hactl() { local i=$1; shift; "${CTL_BIN}" --control-socket "${VPC_DIR}/$i/control.sock" "$@"; }

# The control daemon's status (JSON) or nothing.
ha_json() {
  "${PY}" - "${VPC_DIR}/$1/control.sock" <<'PY' 2>/dev/null
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n'); buf = b""
while b"\n" not in buf:
    d = s.recv(65536)
    if not d: break
    buf += d
r = json.loads(buf.split(b"\n")[0]); print(json.dumps(r.get("result", {})))
PY
}
ha_role() { ha_json "$1" | "${PY}" -c 'import json,sys; print(json.load(sys.stdin).get("role",""))' 2>/dev/null || true; }

# The instance the AZ's private route table points at (from the fake EC2 model).
route_target() {
  in_ns svc curl -s --max-time 2 "http://${AWS_ADDR}:${AWS_PORT}/_fake/state" |
    "${PY}" -c '
import json, sys
st = json.load(sys.stdin); rtb = sys.argv[1]
eni = {e["id"]: e for e in st["network_interfaces"]}
for rt in st["route_tables"]:
    if rt["id"] == rtb:
        for r in rt["routes"]:
            if r["destination"] == "0.0.0.0/0":
                e = eni.get(r.get("network_interface_id"))
                print(e["instance_id"] if e else "none")' "$(rtb_of "$1")"
}
inst_name() { local i; for i in "${INSTANCES[@]}"; do [[ $(inst_id "$i") == "$1" ]] && echo "$i"; done; }

# Wait until the AZ has exactly one active instance and it is the route target; prints it.
wait_az_active() {  # az timeout_s
  local az=$1 t=${2:-60} i n target
  for ((n = 0; n < t * 5; n++)); do
    target=$(inst_name "$(route_target "${az}")")
    if [[ -n ${target} && $(ha_role "${target}") == active &&
      $(ha_role "$(peer_of "${target}")") != active ]]; then
      echo "${target}"
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# Wait until the instance is standby and its receiver is in sync.
wait_standby_in_sync() {  # inst timeout_s
  local n
  for ((n = 0; n < ${2:-60} * 5; n++)); do
    ha_json "$1" | "${PY}" -c '
import json, sys
s = json.load(sys.stdin)
sync = s.get("sync", {})
sys.exit(0 if s.get("role") == "standby" and sync.get("in_sync") else 1)' 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# Start (or restart) one instance's processes (vpc.sh up, and the tests after a kill).
# Scheduled above the rest of a shared build machine (SCHED_RR 1; VPC_SCHED=nice: nice -10): the
# control daemon demotes an active whose dataplane worker did not loop within the dataplane's
# 50 ms health window, which a loaded 2-vCPU VM misses under CFS (see the README's known issues).
# Idle dataplane workers sleep, so real-time priority costs nothing when idle.
VPC_SCHED=${VPC_SCHED:-rr}
sched_prefix() { if [[ ${VPC_SCHED} == rr ]]; then echo "chrt -r 1"; else echo "nice -n -10"; fi; }
instance_start_dp() {
  local i=$1
  rm -f "${VPC_DIR}/$i/dataplane.sock" "${VPC_DIR}/$i/sync.sock"
  : >>"${VPC_DIR}/$i/dp.log"
  echo "--- start $(date +%T.%N)" >>"${VPC_DIR}/$i/dp.log"
  # shellcheck disable=SC2046
  ip netns exec "$(ns_of "$i")" $(sched_prefix) setsid "${DP_BIN}" --config "${VPC_DIR}/$i/eipgate.yaml" \
    >>"${VPC_DIR}/$i/dp.log" 2>&1 </dev/null &
  echo $! >"${VPC_DIR}/$i/dp.pid"
}
instance_wait_dp() {
  local i=$1 n
  for ((n = 0; n < 600; n++)); do
    [[ -S ${VPC_DIR}/$i/dataplane.sock ]] && dpctl "$i" health >/dev/null 2>&1 && return 0
    kill -0 "$(cat "${VPC_DIR}/$i/dp.pid")" 2>/dev/null || { tail -20 "${VPC_DIR}/$i/dp.log" >&2; return 1; }
    sleep 0.2
  done
  return 1
}
instance_start_ctl() {
  local i=$1
  # shellcheck disable=SC2046
  ip netns exec "$(ns_of "$i")" $(sched_prefix) setsid "${CONTROL_BIN}" --config "${VPC_DIR}/$i/eipgate.yaml" \
    >>"${VPC_DIR}/$i/ctl.log" 2>&1 </dev/null &
  echo $! >"${VPC_DIR}/$i/ctl.pid"
}

lambda_get() { in_ns "l$1" "${PY}" "${SIM_DIR}/traffic.py" get "$2"; }  # az url

# Traffic from the AZ's Lambda for DURATION s while a fault happens: a long-lived download at
# 200 kB/s plus FAILOVER_CONNS-1 (default 19) slower long-lived connections (every byte checked),
# and a new short connection every 50 ms; LEAD s after all are connected, the command is
# run (the fault). Writes OUTDIR/{probe.jsonl,fetch.json,t_fault,summary.json} (failover_report.py).
failover_run() {  # az outdir lead_s duration_s cmd...
  local az=$1 out=$2 lead=$3 dur=$4 rate=200000 fpid ppid
  shift 4
  mkdir -p "${out}"
  in_ns "l${az}" "${PY}" "${SIM_DIR}/traffic.py" fetch "${WHOAMI}" 9000 "seed-${RANDOM}" \
    $((rate * dur)) "${rate}" "${out}/fetch.json" "${FAILOVER_CONNS:-20}" >/dev/null 2>&1 &
  fpid=$!
  in_ns "l${az}" "${PY}" "${SIM_DIR}/traffic.py" probe "http://${WHOAMI}:8080/" "${dur}" 0.05 \
    "${out}/probe.jsonl" &
  ppid=$!
  local n
  for ((n = 0; n < 100; n++)); do [[ -f ${out}/fetch.json.started ]] && break; sleep 0.1; done
  sleep "${lead}"
  date +%s.%N >"${out}/t_fault"
  "$@" || true
  wait "${ppid}" || true
  wait "${fpid}" || true
  "${PY}" "${SIM_DIR}/failover_report.py" "${out}" "${EIP[${az}]}" "${VPC_DIR}/changes.jsonl" \
    >"${out}/summary.json"
}
# Read one field of a JSON file.
jget() { "${PY}" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v,(list,dict,bool)) else v)' "$1" "$2"; }

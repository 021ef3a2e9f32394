#!/usr/bin/env bash
# The simulated VPC: two AZs, an eipgate HA pair in each (eipgate-dataplane + eipgate-control per
# instance), Lambdas, VPC routers that follow the private route tables, an internet gateway that
# maps EIPs 1:1, internet hosts, and fake EC2/IMDS (vpc_aws.py) reprogramming the namespaces.
#
#   vpc.sh up | down | status | mgmt-check
# Environment: VPC_DIR (run directory, default /tmp/eipgate-vpc), VPC_PREFIX (namespace prefix,
# default a fresh "v<pid>"), BUILD_DIR (default build-sim) or DP_BIN/CONTROL_BIN/CTL_BIN,
# VPC_HEARTBEAT (default 150ms), VPC_MISS (default 4), VPC_VERBOSE=1 for progress lines,
# VPC_CLOUDWATCH (full, default or off: eipgate-control's CloudWatch metrics to the fake),
# VPC_CLOUDWATCH_INTERVAL (default 10s),
# VPC_DATA_PATH (af_xdp: the XDP steering program and the kernel fast path, the default; or
# af_packet), VPC_XDP_OBJ (the XDP object for the routers' ends in af_xdp, default the build's),
# VPC_MGMT (ipv4, the default; or ipv6: the instances reach the fake EC2/IMDS only over IPv6,
# eipgate-control runs with aws.ip_family: ipv6; `vpc.sh mgmt-check` proves it),
# VPC_EIPS (1..8, default 1: service addresses per pair, each a secondary IP with its own EIP;
# VPC_CONTROL_ADDRESSES=first gives eipgate-control only the first), VPC_MAX_FLOWS (the
# dataplanes' nat.max_flows, default 64K), VPC_TCP_ESTABLISHED (their timeouts.tcp_established,
# default the dataplane's).
# Idempotent: `up` on a running VPC only checks it; `down` removes everything `up` made (all
# namespaces with the prefix and every process in them) and is safe to repeat. A failed `up`
# tears down what it made. Layout and addresses: vpc_lib.sh, tests/sim/README.md. Needs root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/vpc_lib.sh"

say() { [[ -n ${VPC_VERBOSE:-} ]] && printf '[vpc] %s\n' "$*" >&2 || true; }
die() { printf '[vpc] ERROR: %s\n' "$*" >&2; exit 1; }

# --- down -----------------------------------------------------------------------------------------
vpc_down() {
  local p ns pidf
  p=$(vpc_prefix || true)
  [[ -n ${p} ]] || { say "nothing to tear down in ${VPC_DIR}"; return 0; }
  for pidf in "${VPC_DIR}"/*/*.pid "${VPC_DIR}"/*.pid; do
    [[ -f ${pidf} ]] && kill -TERM "$(cat "${pidf}")" 2>/dev/null || true
  done
  sleep 0.3
  for ns in $(ip netns list | awk '{print $1}' | grep "^${p}-" || true); do
    ip netns pids "${ns}" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  sleep 0.2
  for ns in $(ip netns list | awk '{print $1}' | grep "^${p}-" || true); do
    ip netns del "${ns}" 2>/dev/null || true
  done
  rm -f "${VPC_DIR}"/*/*.pid "${VPC_DIR}"/*.pid "${VPC_DIR}/up"
  say "down (${p})"
}

# --- status ---------------------------------------------------------------------------------------
vpc_status() {
  [[ -f ${VPC_DIR}/up ]] || { echo "not up (${VPC_DIR})"; return 1; }
  local az i rc=0
  echo "prefix $(vpc_prefix), dir ${VPC_DIR}"
  for az in a b; do
    local k ips=() pubs=() map=""
    mapfile -t ips < <(service_ips "${az}")
    mapfile -t pubs < <(eips "${az}")
    for k in "${!ips[@]}"; do map+="${map:+, }${pubs[k]} -> ${ips[k]}"; done
    echo "AZ ${az}: route target $(inst_name "$(route_target "${az}")"), EIP ${map}"
    for i in "${INSTANCES[@]}"; do
      [[ $(az_of "$i") == "${az}" ]] || continue
      local role
      role=$(ha_role "$i")
      echo "  ${i} $(inst_id "$i") data $(data_ip "$i") mgmt $(mgmt_ip "$i"): ${role:-down}"
      [[ -n ${role} ]] || rc=1
    done
  done
  return "${rc}"
}

# --- up -------------------------------------------------------------------------------------------
veth() {  # ns1 dev1 ns2 dev2 [mac1] [mac2]
  ip link add "$2" netns "$(ns_of "$1")" ${5:+address $5} type veth peer name "$4" \
    netns "$(ns_of "$3")" ${6:+address $6}
  local pair
  for pair in "$1:$2" "$3:$4"; do
    # veth offloads would hand af_packet partial checksums and 64 KiB super-frames: a NIC never does.
    in_ns "${pair%%:*}" ethtool -K "${pair##*:}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "${pair%%:*}" sysctl -qw "net.ipv6.conf.${pair##*:}.disable_ipv6=1" 2>/dev/null || true
    in_ns "${pair%%:*}" ip link set "${pair##*:}" up
  done
}

router_sysctls() {
  in_ns "$1" sysctl -qw net.ipv4.ip_forward=1
  local k
  for k in all default; do
    in_ns "$1" sysctl -qw "net.ipv4.conf.${k}.rp_filter=0" "net.ipv4.conf.${k}.send_redirects=0"
  done
}

write_state() {
  "${PY}" - "${VPC_DIR}" <<PY
import json, sys
d = sys.argv[1]
inst = {$(for i in "${INSTANCES[@]}"; do printf '"%s": {"id": "%s", "data_eni": "%s", "mgmt_eni": "%s", "data_mac": "%s", "mgmt_mac": "%s", "data_ip": "%s", "mgmt_ip": "%s"}, ' \
  "$i" "$(inst_id "$i")" "$(data_eni "$i")" "$(mgmt_eni "$i")" "$(data_mac "$i")" "$(mgmt_mac "$i")" "$(data_ip "$i")" "$(mgmt_ip "$i")"; done)}
# per AZ its service addresses (VPC_EIPS): secondary IP, EIP and allocation id of each
azs = {z: {"num": n, "rtb": r, "mgmt": m, "svc": s.split(), "eip": e.split(), "alloc": al.split()}
       for z, n, r, m, s, e, al in [
           ("a", 1, "$(rtb_of a)", "10.255.0.0/28", "$(service_ips a | xargs)", "$(eips a | xargs)",
            "$(for ((k = 1; k <= VPC_EIPS; k++)); do eipalloc_of a "$k"; done | xargs)"),
           ("b", 2, "$(rtb_of b)", "10.255.0.16/28", "$(service_ips b | xargs)", "$(eips b | xargs)",
            "$(for ((k = 1; k <= VPC_EIPS; k++)); do eipalloc_of b "$k"; done | xargs)")]}
state = {"region": "us-east-1", "account_id": "123456789012",
         "credentials": [{"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}],
         "vpcs": [{"id": "vpc-0e1a0000000000001", "cidr": "10.0.0.0/8"}],
         "subnets": [], "instances": [], "network_interfaces": [], "route_tables": [], "addresses": []}
topo = {"enis": {}, "route_tables": {}, "igw": {"ns": "$(ns_of igw)", "public_dev": "i0"},
        # the VPC fabric between the AZs' routers (cross-AZ fallback: a table at another AZ's ENI)
        "cross": [{"from": "$(ns_of ra)", "to": "$(ns_of rb)", "dev": "xb", "via": "10.254.12.2", "table": 201},
                  {"from": "$(ns_of rb)", "to": "$(ns_of ra)", "dev": "xa", "via": "10.254.12.1", "table": 201}]}
for z, a in azs.items():
    n = a["num"]; az = "us-east-1" + z
    state["subnets"] += [
        {"id": f"subnet-0{z*2}00000000000001", "vpc_id": "vpc-0e1a0000000000001", "cidr": f"10.{n}.0.0/24", "availability_zone": az},
        {"id": f"subnet-0{z*2}00000000000002", "vpc_id": "vpc-0e1a0000000000001", "cidr": f"10.{n}.1.0/24", "availability_zone": az},
        {"id": f"subnet-0{z*2}00000000000003", "vpc_id": "vpc-0e1a0000000000001", "cidr": a["mgmt"], "availability_zone": az}]
    for name, i in inst.items():
        if name[0] != z:
            continue
        state["instances"].append({"id": i["id"], "availability_zone": az, "availability_zone_id": f"use1-az{n}",
                                   "role": "eipgate-nat", "imds_source_ips": [i["mgmt_ip"]]})
        state["network_interfaces"] += [
            {"id": i["mgmt_eni"], "subnet_id": f"subnet-0{z*2}00000000000003", "mac": i["mgmt_mac"],
             "instance_id": i["id"], "device_index": 0, "private_ips": [i["mgmt_ip"]]},
            {"id": i["data_eni"], "subnet_id": f"subnet-0{z*2}00000000000001", "mac": i["data_mac"],
             "instance_id": i["id"], "device_index": 1, "source_dest_check": False, "tags": {"eipgate:role": "data"},
             # the first instance of each AZ starts active: it holds the service addresses
             "private_ips": [i["data_ip"]] + (a["svc"] if name[1] == "1" else [])}]
        topo["enis"][i["data_eni"]] = {"router_ns": "$(vpc_prefix)-r" + z, "router_dev": "e" + name[1], "mac": i["data_mac"]}
    first = inst[z + "1"]
    state["route_tables"].append(
        {"id": a["rtb"], "vpc_id": "vpc-0e1a0000000000001", "subnets": [f"subnet-0{z*2}00000000000002"],
         "tags": {"Name": f"private-{z}", "eipgate:az": f"use1-az{n}"},
         "routes": [{"destination": "10.0.0.0/8", "gateway_id": "local"},
                    {"destination": "0.0.0.0/0", "network_interface_id": first["data_eni"], "instance_id": first["id"]}]})
    topo["route_tables"][a["rtb"]] = {"router_ns": "$(vpc_prefix)-r" + z, "table": 101}
    for k, (alloc, eip, svc) in enumerate(zip(a["alloc"], a["eip"], a["svc"])):
        state["addresses"].append({"allocation_id": alloc, "public_ip": eip,
                                   "network_interface_id": first["data_eni"], "private_ip": svc,
                                   "tags": {"Name": f"eipgate-use1-az{n}" + (f"-{k + 1}" if k else "")}})
if "${VPC_BASELINE:-}":
    # alterNAT-style baseline (bench/failover.sh): two plain Linux NAT instances in AZ b, each with
    # its own EIP and no state sync, serving their own private subnet 10.2.2.0/24 (route table
    # rtb-0cc...) that a failover swings from one to the other.
    state["subnets"].append({"id": "subnet-0cc00000000000002", "vpc_id": "vpc-0e1a0000000000001",
                             "cidr": "10.2.2.0/24", "availability_zone": "us-east-1b"})
    for k in (1, 2):
        iid, eni = f"i-0ccccccccccccccc{k}", f"eni-0cccccccccccccd0{k}"
        state["instances"].append({"id": iid, "availability_zone": "us-east-1b", "availability_zone_id": "use1-az2"})
        state["network_interfaces"].append({"id": eni, "subnet_id": "subnet-0bb00000000000001", "mac": f"0e:00:00:0c:00:3{k}",
                                            "instance_id": iid, "device_index": 0, "source_dest_check": False,
                                            "private_ips": [f"10.2.0.3{k}"]})
        state["addresses"].append({"allocation_id": f"eipalloc-0cc0000000000000{k}", "public_ip": f"203.0.113.3{k}",
                                   "network_interface_id": eni, "private_ip": f"10.2.0.3{k}"})
        topo["enis"][eni] = {"router_ns": "$(vpc_prefix)-rb", "router_dev": f"x{k}", "mac": f"0e:00:00:0c:00:3{k}"}
    state["route_tables"].append({"id": "rtb-0cc00000000000001", "vpc_id": "vpc-0e1a0000000000001",
                                  "subnets": ["subnet-0cc00000000000002"],
                                  "routes": [{"destination": "10.0.0.0/8", "gateway_id": "local"},
                                             {"destination": "0.0.0.0/0", "network_interface_id": "eni-0cccccccccccccd01",
                                              "instance_id": "i-0ccccccccccccccc1"}]})
    topo["route_tables"]["rtb-0cc00000000000001"] = {"router_ns": "$(vpc_prefix)-rb", "table": 102}
json.dump(state, open(f"{d}/state.json", "w"), indent=1)
json.dump(topo, open(f"{d}/topology.json", "w"), indent=1)
PY
}

write_instance_config() {  # inst
  local i=$1 az peer inside fallback=""
  az=$(az_of "$i") peer=$(peer_of "$i")
  inside="10.${AZNUM[${az}]}.1.0/24"
  if [[ ${az} == b ]]; then
    # AZ b rescues AZ a when both of a's instances are down (ha.fallback_for): a's private
    # subnet is inside here too, and may use the same allowlist.
    inside+=", 10.${AZNUM[a]}.1.0/24"
    fallback="  fallback_for:
    - route_tables: [$(rtb_of a)]
      instances: [$(inst_id a1), $(inst_id a2)]
      target: self
      after: ${VPC_FALLBACK_AFTER:-3s}
      check_interval: 1s"
  fi
  local prio=100
  [[ ${i:1:1} == 1 ]] && prio=200
  cat >"${VPC_DIR}/$i/eipgate.yaml" <<YAML
# eipgate instance ${i} ($(inst_id "$i")), AZ us-east-1${az}: written by tests/sim/vpc.sh
mode: one-armed
ports:
  - name: data
    device: $(data_device)
    $([[ ${VPC_DATA_PATH} == af_packet ]] && echo "af_packet_fragments: drop  # no fragments on af_packet")
interface:
  address: $(data_ip "$i")/24
next_hop:
  gateway: 10.${AZNUM[${az}]}.0.1
  mac: "$(router_mac "${az}")"
nat:
  inside_prefixes: [${inside}]
  outside_addresses: [$(service_ips "${az}" | paste -sd, | sed 's/,/, /g')]
  max_flows: ${VPC_MAX_FLOWS:-64K}
$([[ -n ${VPC_TCP_ESTABLISHED:-} ]] && printf 'timeouts:\n  tcp_established: %s\n' "${VPC_TCP_ESTABLISHED}")
workers:
  lcores: [1]
  main_lcore: 0
eal:
  extra_args: "--no-huge -m 256 --file-prefix $(vpc_prefix)-${i}"
exception_path:
  enabled: false   # management (heartbeats, EC2, IMDS) uses the instance's eth0, not the data ENI
admin:
  socket: ${VPC_DIR}/${i}/dataplane.sock
translation_log:  # a JSON line per connection opened/closed; eipgatectl who reads it
  enabled: true
  path: ${VPC_DIR}/${i}/translations.jsonl
logging:
  level: info
policy:
  groups:
    - name: lambdas
      sources: [${inside}]
      default: reject
  rules:
    - name: whoami
      from: lambdas
      dst: ${WHOAMI}/32
      proto: tcp
      ports: 8080
    - name: stream
      from: lambdas
      dst: ${WHOAMI}/32
      proto: tcp
      ports: 9000
    - name: eip-api
      from: lambdas
      dst: ${EIPAPI}/32
      proto: tcp
      ports: 8080
    - name: ping
      from: lambdas
      dst: [198.51.100.0/24]
      proto: icmp
    - name: hold  # many_conns.sh's echo server
      from: lambdas
      dst: ${ECHO_HOST}/32
      proto: tcp
      ports: ${ECHO_PORT}
aws:
  route_tables:
    ids: [$(rtb_of "${az}")]
  service_address:
    mode: secondary-ip
$(control_service_address "${az}")
$(if [[ ${VPC_MGMT} == ipv6 ]]; then echo "  ip_family: ipv6"; fi)
  endpoints:
    ec2: $(aws_url)
    imds: $(aws_url)/$(inst_id "$i")
    cloudwatch: $(aws_url)
  retry: {max_attempts: 10, base_delay: 50ms, max_delay: 400ms}
  timeouts: {connect: 1s, request: 3s}
ha:
  priority: ${prio}
  peers:
    - address: $(mgmt_ip "${peer}")
      port: 7410
  bind_address: $(mgmt_ip "$i")
  port: 7410
  secret_file: ${VPC_DIR}/ha-${az}.key
  heartbeat_interval: ${VPC_HEARTBEAT:-150ms}
  miss_count: ${VPC_MISS:-4}
  hold_down: 2s
  route_check_interval: 1s
  lease_interval: ${VPC_LEASE:-1s}
  takeover_timeout: 10s
  handover_timeout: 3s
  sync: {flush_interval: 5ms, resync_retry: 500ms}
  control_socket: ${VPC_DIR}/${i}/control.sock
  metrics_listen: 127.0.0.1:9410  # each instance has its own netns, so its own loopback
  data_mac: "$(data_mac "$i")"
  peer_eni: $(data_eni "${peer}")
${fallback}
cloudwatch:  # PutMetricData to fake_aws.py (GET /_fake/metrics); VPC_CLOUDWATCH=off disables it
  enabled: $([[ ${VPC_CLOUDWATCH:-full} == off ]] && echo false || echo true)
  metrics: $([[ ${VPC_CLOUDWATCH:-full} == default ]] && echo default || echo full)
  pair_name: pair-${az}
  interval: ${VPC_CLOUDWATCH_INTERVAL:-10s}
YAML
}

# aws.service_address's addresses: one as `private_ip` + `allocation_id`, what every
# eipgate-control accepts; several as `private_ips` + `allocation_ids` (paired by index; all moved
# in one AssignPrivateIpAddresses). VPC_CONTROL_ADDRESSES=first: only the first one even with
# VPC_EIPS > 1 (for an eipgate-control without `private_ips`: the others then stay where they are
# on a failover unless the test moves them, as many_conns.sh does in that mode).
control_service_address() {  # az
  local k allocs=""
  if ((VPC_EIPS == 1)) || [[ ${VPC_CONTROL_ADDRESSES:-all} == first ]]; then
    printf '    private_ip: %s\n    allocation_id: %s' "${SERVICE_IP[$1]}" "$(eipalloc_of "$1")"
  else
    for ((k = 1; k <= VPC_EIPS; k++)); do allocs+="${allocs:+, }$(eipalloc_of "$1" "$k")"; done
    printf '    private_ips: [%s]\n    allocation_ids: [%s]' \
      "$(service_ips "$1" | paste -sd, | sed 's/,/, /g')" "${allocs}"
  fi
}

# The alterNAT-style baseline's namespaces (VPC_BASELINE=1): x1, x2 (iptables-style masquerade,
# nftables) behind router rb, and Lambda lx in 10.2.2.0/24 whose route table is rb's table 102.
baseline_up() {
  local k
  for k in x1 x2 lx; do ip netns add "$(vpc_prefix)-$k"; in_ns "$k" ip link set lo up; done
  veth rb l1 lx eth0
  in_ns rb ip addr add 10.2.2.1/24 dev l1
  in_ns lx ip addr add 10.2.2.10/24 dev eth0
  in_ns lx ip route add default via 10.2.2.1
  in_ns rb ip rule add iif l1 lookup 102 pref 101
  in_ns rb ip route add throw 10.0.0.0/8 table 102
  for k in 1 2; do
    veth rb "x$k" "x$k" eth1 "$(router_mac b)" "0e:00:00:0c:00:3$k"
    in_ns rb ip addr add 10.2.0.1/32 dev "x$k"
    in_ns "x$k" ip addr add "10.2.0.3$k/24" dev eth1
    in_ns "x$k" ip route add default via 10.2.0.1
    router_sysctls "x$k"
    in_ns "x$k" sysctl -qw net.ipv4.conf.eth1.send_redirects=0
    in_ns "x$k" nft -f - <<NFT
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    ip saddr 10.2.2.0/24 masquerade
  }
}
NFT
  done
}

vpc_up() {
  [[ ${EUID} -eq 0 ]] || die "needs root"
  [[ ${VPC_EIPS} =~ ^[1-8]$ ]] || die "VPC_EIPS must be 1..8, not ${VPC_EIPS}"
  for b in "${DP_BIN}" "${CONTROL_BIN}" "${CTL_BIN}"; do [[ -x ${b} ]] || die "missing ${b} (build it: scripts/build.sh)"; done
  if [[ -f ${VPC_DIR}/up ]]; then
    if vpc_status >/dev/null 2>&1; then say "already up"; return 0; fi
    vpc_down
  fi
  mkdir -p "${VPC_DIR}"
  chmod 700 "${VPC_DIR}"
  rm -rf "${VPC_DIR:?}"/{a1,a2,b1,b2} "${VPC_DIR}"/*.log "${VPC_DIR}"/changes.jsonl "${VPC_DIR}/aws.port"
  echo "${VPC_PREFIX:-v$$}" >"${VPC_DIR}/prefix"
  echo "${VPC_EIPS}" >"${VPC_DIR}/eips"
  trap 'echo "[vpc] up failed; tearing down" >&2; vpc_down' ERR
  local p z n i
  p=$(vpc_prefix)
  say "prefix ${p}, dir ${VPC_DIR}"
  for n in svc igw inet ra rb la lb "${INSTANCES[@]}"; do
    ip netns add "${p}-${n}"
    in_ns "${n}" ip link set lo up
  done
  # management network
  in_ns svc ip link add br0 type bridge
  in_ns svc ip addr add "${AWS_ADDR}/24" dev br0
  in_ns svc ip link set br0 up
  for i in "${INSTANCES[@]}"; do
    mkdir -p "${VPC_DIR}/$i"
    veth "$i" eth0 svc "m$i" "$(mgmt_mac "$i")"
    in_ns svc ip link set "m$i" master br0
    in_ns "$i" ip addr add "$(mgmt_ip "$i")/24" dev eth0
  done
  if [[ ${VPC_MGMT} == ipv6 ]]; then mgmt_ipv6_up; fi
  # internet: igw <-> inet, servers on inet's lo
  veth igw i0 inet g0
  in_ns igw ip addr add 192.0.2.1/24 dev i0
  in_ns inet ip addr add 192.0.2.2/24 dev g0
  in_ns inet ip route add default via 192.0.2.1
  for a in "${WHOAMI}" "${EIPAPI}" "${DENIED}" "${ECHO_HOST}"; do in_ns inet ip addr add "$a/32" dev lo; done
  in_ns igw ip route add 198.51.100.0/24 via 192.0.2.2
  router_sysctls igw
  for z in a b; do
    n=${AZNUM[${z}]}
    router_sysctls "r${z}"
    veth "r${z}" g0 igw "r${z}"
    in_ns "r${z}" ip addr add "10.254.${n}.2/30" dev g0
    in_ns igw ip addr add "10.254.${n}.1/30" dev "r${z}"
    in_ns "r${z}" ip route add default via "10.254.${n}.1"
    in_ns igw ip route add "10.${n}.0.0/16" via "10.254.${n}.2"
    # private subnet with its Lambda; its route table is the router's table 101
    veth "r${z}" l0 "l${z}" eth0
    in_ns "r${z}" ip addr add "10.${n}.1.1/24" dev l0
    in_ns "l${z}" ip addr add "$(lambda_ip "${z}")/24" dev eth0
    in_ns "l${z}" ip route add default via "10.${n}.1.1"
    in_ns "r${z}" ip rule add iif l0 lookup 101 pref 100
    in_ns "r${z}" ip route add throw 10.0.0.0/8 table 101
    # what arrives over the cross-AZ link is a private table's traffic sent to one of our ENIs:
    # table 201 (vpc_aws.py) delivers it
    in_ns "r${z}" ip rule add iif "x$([[ ${z} == a ]] && echo b || echo a)" lookup 201 pref 100
    in_ns "r${z}" ip route add throw 10.0.0.0/8 table 201
    # data ENIs: one point-to-point veth per instance; the router holds 10.N.0.1 on each and
    # delivers to an ENI's addresses by /32 routes (vpc_aws.py keeps them following EC2)
    for i in "${INSTANCES[@]}"; do
      [[ $(az_of "$i") == "${z}" ]] || continue
      veth "r${z}" "e${i:1:1}" "$i" eth1 "$(router_mac "${z}")" "$(data_mac "$i")"
      in_ns "r${z}" ip addr add "10.${n}.0.1/32" dev "e${i:1:1}"
      if [[ ${VPC_DATA_PATH} == af_packet ]]; then
        # af_packet only copies frames: keep the instance's kernel off the data ENI (no RSTs)
        in_ns "$i" nft add table netdev dataeni
        in_ns "$i" nft add chain netdev dataeni in "{ type filter hook ingress device eth1 priority 0; policy drop; }"
      else
        # af_xdp: the fast path sends established flows back out of eth1 with XDP_TX, which a veth
        # delivers only to a peer running an XDP program (an ENA does it itself): the router's end
        # gets xdp_steer unconfigured, which passes every frame to the kernel.
        in_ns "r${z}" ip link set dev "e${i:1:1}" xdpdrv obj "${VPC_XDP_OBJ}" sec xdp
      fi
    done
  done
  # the VPC fabric between the AZs: ra xb 10.254.12.1 <-> rb xa 10.254.12.2 (cross-AZ fallback;
  # replies to the other AZ's private subnet go back over it)
  veth ra xb rb xa
  in_ns ra ip addr add 10.254.12.1/30 dev xb
  in_ns rb ip addr add 10.254.12.2/30 dev xa
  in_ns ra ip route add 10.2.1.0/24 via 10.254.12.2
  in_ns rb ip route add 10.1.1.0/24 via 10.254.12.1
  [[ -n ${VPC_BASELINE:-} ]] && baseline_up
  # secrets (root-only) and configuration
  for z in a b; do
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${VPC_DIR}/ha-${z}.key"
    chmod 600 "${VPC_DIR}/ha-${z}.key"
  done
  write_state
  for i in "${INSTANCES[@]}"; do write_instance_config "$i"; done
  # fake AWS in the services namespace; it programs the routers and the IGW from its model
  ip netns exec "${p}-svc" setsid "${PY}" "${SIM_DIR}/vpc_aws.py" --state "${VPC_DIR}/state.json" \
    --topology "${VPC_DIR}/topology.json" --host "${AWS_ADDR}" --port "${AWS_PORT}" \
    --port-file "${VPC_DIR}/aws.port" --changes-log "${VPC_DIR}/changes.jsonl" \
    ${AWS_HOST6:+--host6 "${AWS_HOST6}"} \
    >>"${VPC_DIR}/aws.log" 2>&1 </dev/null &
  echo $! >"${VPC_DIR}/aws.pid"
  # internet servers
  local srv=("whoami ${WHOAMI} 8080" "stream ${WHOAMI} 9000" "eipapi ${EIPAPI} 8080 $(eips a | paste -sd,),$(eips b | paste -sd,)"
    "whoami ${DENIED} 8080")
  n=0
  for s in "${srv[@]}"; do
    # shellcheck disable=SC2086
    ip netns exec "${p}-inet" setsid "${PY}" "${SIM_DIR}/traffic.py" ${s} >>"${VPC_DIR}/inet.log" 2>&1 </dev/null &
    echo $! >"${VPC_DIR}/inet${n}.pid"
    n=$((n + 1))
  done
  for ((n = 0; n < 100; n++)); do [[ -s ${VPC_DIR}/aws.port ]] && break; sleep 0.1; done
  [[ -s ${VPC_DIR}/aws.port ]] || die "fake AWS did not start: $(tail -5 "${VPC_DIR}/aws.log")"
  for s in "${WHOAMI}:8080" "${WHOAMI}:9000" "${EIPAPI}:8080" "${DENIED}:8080"; do
    for ((n = 0; n < 100; n++)); do
      in_ns inet bash -c "exec 3<>/dev/tcp/${s%:*}/${s#*:}" 2>/dev/null && break
      sleep 0.1
    done
    ((n < 100)) || die "internet server ${s} did not start: $(tail -5 "${VPC_DIR}/inet.log")"
  done
  say "fake AWS on ${AWS_ADDR}:${AWS_PORT}; starting dataplanes"
  for i in "${INSTANCES[@]}"; do instance_start_dp "$i"; done
  for i in "${INSTANCES[@]}"; do instance_wait_dp "$i" || die "dataplane $i not ready"; done
  say "dataplanes ready; starting control daemons"
  for i in "${INSTANCES[@]}"; do instance_start_ctl "$i"; done
  for z in a b; do
    wait_az_active "${z}" 60 >/dev/null || die "AZ ${z}: no active instance"
  done
  for i in a2 b2; do wait_standby_in_sync "$i" 60 || die "$i: not a standby in sync"; done
  touch "${VPC_DIR}/up"
  trap - ERR
  say "up"
}

# VPC_MGMT=ipv6: an IPv6 address on the management bridge for the fake (the dual-stack endpoint),
# one per instance, and IPv4 to the fake dropped in every instance (heartbeats between the pair
# stay on the private IPv4 management addresses: no public IPv4 is involved in them).
AWS_HOST6=""
mgmt_ipv6_up() {
  local i
  AWS_HOST6=${AWS_ADDR6}
  in_ns svc sysctl -qw net.ipv6.conf.br0.disable_ipv6=0
  in_ns svc ip addr add "${AWS_ADDR6}/64" dev br0 nodad
  for i in "${INSTANCES[@]}"; do
    # veth() turned IPv6 off on every veth; the management ENI gets it back (no SLAAC, no DAD).
    # keep_addr_on_down: the address survives a scenario taking eth0 down and up (partition).
    in_ns "$i" sysctl -qw net.ipv6.conf.eth0.accept_ra=0 net.ipv6.conf.eth0.autoconf=0 \
      net.ipv6.conf.eth0.keep_addr_on_down=1 net.ipv6.conf.eth0.disable_ipv6=0
    in_ns "$i" ip addr add "$(mgmt_ip6 "$i")/64" dev eth0 nodad
    in_ns "$i" nft add table ip mgmt6
    in_ns "$i" nft add chain ip mgmt6 out "{ type filter hook output priority 0; policy accept; }"
    in_ns "$i" nft add rule ip mgmt6 out ip daddr "${AWS_ADDR}" counter drop
  done
}

# Proof for VPC_MGMT=ipv6: from every instance the fake answers over IPv6 and not over IPv4, and
# every EC2 call the fake recorded came from an instance's IPv6 address.
vpc_mgmt_check() {
  [[ ${VPC_MGMT} == ipv6 ]] || { echo "VPC_MGMT is not ipv6"; return 1; }
  local i bad=0
  for i in "${INSTANCES[@]}"; do
    if ! in_ns "$i" curl -sf -6 --max-time 2 "$(aws_url)/_fake/health" >/dev/null; then
      echo "$i: no answer from the fake over IPv6"; bad=1
    fi
    if in_ns "$i" curl -sf --max-time 1 "http://${AWS_ADDR}:${AWS_PORT}/_fake/health" >/dev/null; then
      echo "$i: the fake answered over IPv4"; bad=1
    fi
  done
  in_ns svc curl -sf --max-time 5 "http://${AWS_ADDR}:${AWS_PORT}/_fake/calls" |
    "${PY}" -c '
import ipaddress, json, sys
calls = json.load(sys.stdin)
net = ipaddress.ip_network("fd00:255::/64")
v6 = [c for c in calls if ipaddress.ip_address(c["client"]) in net]
other = sorted({c["client"] for c in calls} - {c["client"] for c in v6})
acts = sorted({c["action"] for c in v6})
print(f"{len(calls)} AWS calls recorded (EC2, CloudWatch), {len(v6)} from instance IPv6 addresses: {acts}; others: {other}")
sys.exit(0 if calls and not other else 1)' || bad=1
  for i in "${INSTANCES[@]}"; do
    echo "$i: IPv4 packets to ${AWS_ADDR} dropped: $(in_ns "$i" nft list chain ip mgmt6 out | grep -o 'packets [0-9]*' || echo none)"
  done
  return "${bad}"
}

case ${1:-} in
  up) vpc_up ;;
  mgmt-check) vpc_mgmt_check ;;
  down) vpc_down ;;
  status) vpc_status ;;
  *) echo "usage: $0 up|down|status|mgmt-check" >&2; exit 2 ;;
esac

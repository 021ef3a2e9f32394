#!/usr/bin/env bash
# HA end-to-end tests on the simulated VPC (vpc.sh): real eipgate-dataplane + eipgate-control
# pairs in two AZs, fake EC2/IMDS moving real routes. One VPC is brought up and the scenarios run
# in order on it (each starts from "one active, one standby in sync" in its AZ):
#   basic            1. Lambdas leave with their AZ's EIP; the EIP-only API accepts them
#   deny             2. a destination not on the allowlist is refused, logged and counted
#   kill_dataplane   3. kill -9 of AZ a's active dataplane during a long transfer + new connections:
#                       gap <= 2 s, transfer intact, same EIP; af_xdp (VPC_DATA_PATH, the default):
#                       the new active's kernel fast path carries the synced transfer
#   rejoin           8. the old active comes back: standby, full table received
#   observe          9. CloudWatch and translation logs across a kill -9 failover: both pairs'
#                       metrics reach the fake CloudWatch, the new active publishes
#                       FailoverCount >= 1, and its translation log answers `eipgatectl who` for
#                       a connection opened before the failover and closed after it
#   freeze_dataplane 3b. SIGSTOP of AZ a's active dataplane: its control sees the workers' shared
#                       progress counters stand still (ha.dataplane_stall) and fails at once:
#                       gap <= 2 s; resumed, the old dataplane becomes a standby in sync
#   planned          5. eipgatectl failover: zero loss
#   instance_failure 4. the active instance cut off entirely (links down, every process killed)
#   partition        6. AZ b's heartbeat link partitioned: the route target is active at every
#                       sample, no flapping, one active after the heal
#   cross_az         7. both instances of AZ a down: AZ b's active takes AZ a's private table
#                       (ha.fallback_for); AZ a egresses with EIP b; AZ a back takes it back
#   cross_az_procs   7b. only the processes of both AZ a instances die (EC2 still says running):
#                       AZ a's lease runs out and AZ b rescues it; while the AZs are cut apart
#                       (the cross-AZ link down) a live AZ a is left alone
# Usage: ha_e2e.sh [scenario...] (default: all). Environment: BUILD_DIR or DP_BIN/CONTROL_BIN/
# CTL_BIN (vpc_lib.sh), VPC_MGMT=ipv6 (management over IPv6 only, checked at the end). Needs
# root. Tears everything down, also on failure. Timings are printed as METRIC lines; the only
# timing asserted is the <= 2 s gap (the design's requirement).
set -euo pipefail

VPC_DIR=$(mktemp -d /tmp/eipgate-ha-e2e.XXXXXX)
export VPC_DIR VPC_PREFIX=h$$
# CloudWatch datapoints every 2 s (1 min on AWS) so scenario 9 sees the failover metric quickly.
export VPC_CLOUDWATCH_INTERVAL=${VPC_CLOUDWATCH_INTERVAL:-2s}
source "$(dirname "${BASH_SOURCE[0]}")/vpc_lib.sh"
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(basic deny kill_dataplane rejoin observe freeze_dataplane planned instance_failure partition cross_az cross_az_procs)
pass=0 fail=0
RUN=${VPC_DIR}/runs

cleanup() {
  local rc=$?
  if ((fail > 0)) || [[ -n ${E2E_VERBOSE:-} ]] || ((rc != 0)); then
    for f in "${VPC_DIR}"/*/ctl.log "${VPC_DIR}"/*/dp.log "${VPC_DIR}/aws.log"; do
      [[ -f $f ]] && { echo "--- ${f#"${VPC_DIR}"/} (last 40 lines)"; tail -40 "$f"; }
    done
  fi
  bash "${SIM_DIR}/vpc.sh" down || true
  [[ -n ${E2E_KEEP:-} ]] && echo "kept ${VPC_DIR}" || rm -rf "${VPC_DIR}"
}
trap cleanup EXIT

check() {  # name, command...
  local name=$1
  shift
  if "$@" >"${VPC_DIR}/out" 2>&1; then
    echo "PASS ${name}"
    pass=$((pass + 1))
  else
    echo "FAIL ${name}"
    sed 's/^/    /' "${VPC_DIR}/out" | tail -20
    fail=$((fail + 1))
  fi
}
eq() { [[ $1 == "$2" ]] || { echo "got '$1', want '$2'"; return 1; }; }
summary_ok() {  # summary.json python-expression
  "${PY}" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
metric() { echo "METRIC $1 $(cat "$2")"; }

# The flow tables of two dataplanes hold the same connections (and at least MIN of them).
same_tables() {  # inst inst min
  dpctl "$1" --json flows --limit 100000 >"${VPC_DIR}/flows1.json"
  dpctl "$2" --json flows --limit 100000 >"${VPC_DIR}/flows2.json"
  "${PY}" - "${VPC_DIR}/flows1.json" "${VPC_DIR}/flows2.json" "$3" <<'PY'
import json, sys
def keys(path):
    return {(f["proto"], f["inside_ip"], f["inside_port"], f["outside_ip"], f["outside_port"],
             f["remote_ip"], f["remote_port"]) for f in json.load(open(path))["flows"]}
a, b = keys(sys.argv[1]), keys(sys.argv[2])
print(f"{len(a)} and {len(b)} flows; only in the first {len(a - b)}, only in the second {len(b - a)}")
sys.exit(0 if a == b and len(a) >= int(sys.argv[3]) else 1)
PY
}

# --- scenarios ------------------------------------------------------------------------------------
s_basic() {
  local z
  for z in a b; do
    check "1. Lambda in AZ ${z} leaves with EIP ${EIP[${z}]}" eq "$(lambda_get "${z}" "http://${WHOAMI}:8080/")" "${EIP[${z}]}"
    check "1. the EIP-only API accepts the Lambda in AZ ${z}" eq "$(lambda_get "${z}" "http://${EIPAPI}:8080/")" "accepted ${EIP[${z}]}"
  done
  if [[ ${VPC_DATA_PATH} == af_xdp ]]; then
    local i
    for i in "${INSTANCES[@]}"; do
      check "1. ${i}'s dataplane runs the kernel fast path" grep -q "fast path on" "${VPC_DIR}/${i}/dp.log"
    done
  fi
  check "1. the EIP-only API refuses any other source (403)" eq \
    "$(in_ns inet "${PY}" "${SIM_DIR}/traffic.py" get "http://${EIPAPI}:8080/" || true)" 403
}

s_deny() {
  local active out before after
  active=$(wait_az_active a 10)
  before=$(dpctl "${active}" --json stats | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["drops"].get("policy_denied",0))')
  out=$(lambda_get a "http://${DENIED}:8080/" || true)
  check "2. a destination not on the allowlist is refused at once (RST: ${out})" eq "${out}" ConnectionRefusedError
  check "2. the host itself is up (reachable from the internet side)" \
    in_ns inet "${PY}" "${SIM_DIR}/traffic.py" get "http://${DENIED}:8080/"
  check "2. the denial is in the active's deny log" grep -q \
    "policy deny: src=$(lambda_ip a):[0-9]* dst=${DENIED}:8080 proto=tcp .*group=lambdas rule=lambdas#default action=reject" \
    "${VPC_DIR}/${active}/dp.log"
  after=$(dpctl "${active}" --json stats | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["drops"].get("policy_denied",0))')
  check "2. policy_denied counter rose (${before} -> ${after})" test "${after}" -gt "${before}"
  check "2. per-rule hits: lambdas#default counted, whoami counted" "${PY}" -c '
import json, sys
s = json.loads(sys.argv[1]); hits = {r["rule"]: r["hits"] for r in s["policy"]["rules"]}
print(hits); sys.exit(0 if hits["lambdas#default"] >= 1 and hits["whoami"] >= 1 else 1)' \
    "$(dpctl "${active}" --json stats)"
}

s_kill_dataplane() {
  local active standby
  active=$(wait_az_active a 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  failover_run a "${RUN}/kill" 2 8 kill -9 "$(cat "${VPC_DIR}/${active}/dp.pid")"
  metric kill_dataplane "${RUN}/kill/summary.json"
  check "3. kill -9 of ${active}'s dataplane: traffic gap <= 2 s" summary_ok "${RUN}/kill/summary.json" 's["gap_s"] <= 2.0'
  check "3. the long-lived transfer survived with every byte intact" summary_ok "${RUN}/kill/summary.json" 's["transfer_intact"]'
  check "3. the same EIP before and after" summary_ok "${RUN}/kill/summary.json" 's["same_ip"] and s["egress_ips"] == ["'"${EIP[a]}"'"]'
  check "3. ${standby} is active and the route target" eq "$(wait_az_active a 10)" "${standby}"
  if [[ ${VPC_DATA_PATH} == af_xdp ]]; then
    # The standby offloaded the flows the sync installed: after the takeover its kernel fast path
    # carried the surviving transfer (XDP_TX back out of the data ENI).
    local tx
    tx=$(dpctl "${standby}" --json stats | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["xdp_steer"]["data"]["fp_fwd_tx"])')
    check "3. ${standby}'s fast path carried the transfer after the takeover (fp_fwd_tx ${tx})" test "${tx}" -gt 100
  fi
}

s_freeze_dataplane() {
  local active standby pid
  active=$(wait_az_active a 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  pid=$(cat "${VPC_DIR}/${active}/dp.pid")
  failover_run a "${RUN}/freeze" 2 8 kill -STOP "${pid}"
  kill -CONT "${pid}"
  metric freeze_dataplane "${RUN}/freeze/summary.json"
  check "3b. SIGSTOP of ${active}'s dataplane: traffic gap <= 2 s" summary_ok "${RUN}/freeze/summary.json" 's["gap_s"] <= 2.0'
  check "3b. the long-lived transfer survived with every byte intact" summary_ok "${RUN}/freeze/summary.json" 's["transfer_intact"]'
  check "3b. the same EIP before and after" summary_ok "${RUN}/freeze/summary.json" 's["same_ip"]'
  check "3b. ${standby} is active and the route target" eq "$(wait_az_active a 10)" "${standby}"
  check "3b. ${active}'s control saw the stall in the shared progress counters" "${PY}" -c '
import json, sys
d = json.loads(sys.argv[1])["dataplane"]
print(d)
sys.exit(0 if d["progress_stalls"] >= 1 else 1)' "$(ha_json "${active}")"
  check "3b. ${active} resumed: a standby in sync" wait_standby_in_sync "${active}" 30
}

s_rejoin() {
  local active old
  active=$(wait_az_active a 30) old=$(peer_of "${active}")
  if ! kill -0 "$(cat "${VPC_DIR}/${old}/dp.pid")" 2>/dev/null; then
    instance_start_dp "${old}"
    instance_wait_dp "${old}"
  fi
  check "8. ${old} rejoins as standby and gets in sync" wait_standby_in_sync "${old}" 30
  check "8. ${old}'s table holds every flow of ${active}" same_tables "${active}" "${old}" 100
  check "8. ${active} stays the active and the route target" eq "$(wait_az_active a 5)" "${active}"
}

# Every datum the fake CloudWatch accepted (fake_aws.py GET /_fake/metrics).
fake_metrics() { in_ns svc curl -sf --max-time 5 "http://${AWS_ADDR}:${AWS_PORT}/_fake/metrics"; }

# A datum named NAME for pair-AZ, received after T (unix s), whose value satisfies EXPR (on v).
wait_metric() {  # az name after_t expr timeout_s
  local k
  for ((k = 0; k < $5 * 2; k++)); do
    fake_metrics | "${PY}" -c '
import json, sys
pair, name, after, expr = sys.argv[1:5]
hits = [d for d in json.load(sys.stdin) if d["metric_name"] == name and d["received_at"] > float(after)
        and d["dimensions"].get("PairName") == pair and d["dimensions"].get("AvailabilityZone")
        and eval(expr, {"v": d["value"]})]
if hits:
    print(name, hits[-1]["dimensions"], hits[-1]["value"], "from", hits[-1]["instance_id"])
sys.exit(0 if hits else 1)' "pair-$1" "$2" "$3" "$4" && return 0
    sleep 0.5
  done
  echo "no ${2} datum for pair-${1} with ${4} after ${3} within ${5} s"
  return 1
}

s_observe() {
  local active standby lip t0 k port out t_mid kill_t
  active=$(wait_az_active a 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  t0=$(date +%s.%N)
  local z
  for z in a b; do
    check "9. pair-${z}'s metrics reach the fake CloudWatch (HaActive 1, PairName/AvailabilityZone)" \
      wait_metric "${z}" HaActive "${t0}" "v == 1" 20
  done
  check "9. pair-a's traffic metrics too (BytesOutToDestination > 0 in an interval)" \
    wait_metric a BytesOutToDestination 0 "v > 0" 20
  # A connection opened now, through ${active}, that lasts past the failover: 240 kB at 40 kB/s.
  lip=$(lambda_ip a)
  rm -f "${RUN}/hold.port" "${RUN}/hold.json"
  mkdir -p "${RUN}"
  in_ns la "${PY}" -c '
import json, socket, sys, time
lip, srv, port_file, out = sys.argv[1:5]
s = socket.socket()
s.bind((lip, 0))
s.connect((srv, 9000))
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os; os.replace(port_file + ".tmp", port_file)
s.sendall(b"9 240000 40000\n")
n = 0
while True:
    d = s.recv(65536)
    if not d:
        break
    n += len(d)
s.close()
json.dump({"bytes": n, "closed_at": time.time()}, open(out, "w"))' "${lip}" "${WHOAMI}" "${RUN}/hold.port" "${RUN}/hold.json" &
  local holder=$!
  for ((k = 0; k < 50; k++)); do [[ -s ${RUN}/hold.port ]] && break; sleep 0.1; done
  port=$(cat "${RUN}/hold.port" 2>/dev/null || echo 0)
  sleep 1.2
  t_mid=$(date +%s)  # the connection is open at this second (opened more than 1 s before)
  out=$(dpctl "${active}" --json flows --proto tcp --inside "${lip}" | "${PY}" -c '
import json, sys
f = [f for f in json.load(sys.stdin)["flows"] if f["inside_port"] == int(sys.argv[1])]
print("%s:%s" % (f[0]["outside_ip"], f[0]["outside_port"]) if f else "")' "${port}")
  check "9. ${active} translates the held connection ${lip}:${port} as ${out:-nothing}" test -n "${out}"
  check "9. ${standby} holds it from the sync" bash -c "'${CTL_BIN}' --socket '${VPC_DIR}/${standby}/dataplane.sock' --json flows --proto tcp --inside '${lip}' | grep -q '\"inside_port\": *${port}\b'"
  kill_t=$(date +%s.%N)
  kill -9 "$(cat "${VPC_DIR}/${active}/dp.pid")"
  check "9. ${standby} is active after kill -9 of ${active}'s dataplane" eq "$(wait_az_active a 10)" "${standby}"
  wait "${holder}" || true
  check "9. the held connection got all 240000 bytes and closed after the failover" "${PY}" -c '
import json, sys
r = json.load(open(sys.argv[1])); print(r, "kill at", sys.argv[2])
sys.exit(0 if r["bytes"] == 240000 and r["closed_at"] > float(sys.argv[2]) else 1)' "${RUN}/hold.json" "${kill_t}"
  check "9. ${standby}'s translation log: eipgatectl who ${out} --at ${t_mid} names ${lip}:${port}" bash -c \
    "'${CTL_BIN}' who '${out}' --at '${t_mid}' --log '${VPC_DIR}/${standby}/translations.jsonl' | tee /dev/stderr | grep -q '^${lip}:${port} -> ${WHOAMI}:9000'"
  check "9. the new active ${standby} publishes FailoverCount >= 1" \
    wait_metric a FailoverCount "${kill_t}" "v >= 1" 20
  # Back to one active and one standby in sync for the next scenario.
  instance_start_dp "${active}"
  instance_wait_dp "${active}"
  check "9. ${active} rejoins as standby in sync" wait_standby_in_sync "${active}" 30
}

s_planned() {
  local active standby
  active=$(wait_az_active a 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  failover_run a "${RUN}/planned" 2 8 hactl "${active}" failover --wait 10
  metric planned "${RUN}/planned/summary.json"
  check "5. planned handover ${active} -> ${standby}: no connection lost" summary_ok "${RUN}/planned/summary.json" 's["probes_not_completed"] == 0'
  check "5. no gap: new connections kept being answered within 0.4 s" summary_ok "${RUN}/planned/summary.json" 's["gap_s"] <= 0.5'
  check "5. the long-lived transfer never stalled (longest silence < 0.5 s)" summary_ok "${RUN}/planned/summary.json" 's["transfer_longest_silence_s"] < 0.5'
  check "5. the transfer is intact" summary_ok "${RUN}/planned/summary.json" 's["transfer_intact"]'
  check "5. the same EIP" summary_ok "${RUN}/planned/summary.json" 's["same_ip"]'
  check "5. ${standby} is the active and the route target" eq "$(wait_az_active a 10)" "${standby}"
  check "5. ${active} is a standby in sync" wait_standby_in_sync "${active}" 20
}

cut_off() {  # inst: the instance fails: its links go down and every process in it dies
  local i=$1
  in_ns "$i" ip link set eth1 down
  in_ns "$i" ip link set eth0 down
  ip netns pids "$(ns_of "$i")" | xargs -r kill -9
}

s_instance_failure() {
  local active standby
  active=$(wait_az_active a 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  failover_run a "${RUN}/instance" 2 8 cut_off "${active}"
  metric instance_failure "${RUN}/instance/summary.json"
  check "4. instance ${active} cut off: traffic gap <= 2 s" summary_ok "${RUN}/instance/summary.json" 's["gap_s"] <= 2.0'
  check "4. the transfer is intact" summary_ok "${RUN}/instance/summary.json" 's["transfer_intact"]'
  check "4. the same EIP" summary_ok "${RUN}/instance/summary.json" 's["same_ip"]'
  check "4. ${standby} is active and the route target" eq "$(wait_az_active a 10)" "${standby}"
  # the instance comes back (reboot): links up, processes started
  in_ns "${active}" ip link set eth0 up
  in_ns "${active}" ip link set eth1 up
  instance_start_dp "${active}"
  instance_wait_dp "${active}"
  instance_start_ctl "${active}"
  check "4. ${active} back: standby in sync" wait_standby_in_sync "${active}" 30
  check "4. ${active}'s table holds every flow of ${standby}" same_tables "${standby}" "${active}" 100
}

# Partition the heartbeat link of a pair in the management network (the bridge drops their HA
# datagrams; EC2/IMDS still work). Done in the "network", not with a local firewall in the
# instances: a local output drop makes sendmmsg fail with EPERM, which eipgate-control's
# send_sync_datagrams() retries forever (see the README's known issues).
partition() {  # on|off inst inst
  if [[ $1 == on ]]; then
    in_ns svc nft -f - <<NFT
table bridge hbpart {
  chain forward {
    type filter hook forward priority 0;
    ip saddr { $(mgmt_ip "$2"), $(mgmt_ip "$3") } ip daddr { $(mgmt_ip "$2"), $(mgmt_ip "$3") } udp dport 7410 drop
  }
}
NFT
  else
    in_ns svc nft delete table bridge hbpart
  fi
}

s_partition() {
  local active standby wpid
  active=$(wait_az_active b 30) standby=$(peer_of "${active}")
  wait_standby_in_sync "${standby}" 30
  ip netns exec "$(ns_of svc)" "${PY}" "${SIM_DIR}/partition_watch.py" "http://${AWS_ADDR}:${AWS_PORT}" \
    "$(rtb_of b)" 14 0.05 "${RUN}/partition.jsonl" \
    "b1=$(inst_id b1):${VPC_DIR}/b1/control.sock" "b2=$(inst_id b2):${VPC_DIR}/b2/control.sock" &
  wpid=$!
  mkdir -p "${RUN}"
  sleep 1
  date +%s.%N >"${RUN}/t_partition"
  failover_run b "${RUN}/partition" 1 10 partition on b1 b2
  partition off b1 b2
  date +%s.%N >"${RUN}/t_heal"
  wait "${wpid}"
  check "6. partition: the route target is active at every 50 ms sample; one route change at most" \
    "${PY}" - "${RUN}/partition.jsonl" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])]
bad = [x for x in s if x["target"] not in x["roles"] or x["roles"][x["target"]][0] != "active"]
targets = [x["target"] for x in s]
changes = sum(1 for a, b in zip(targets, targets[1:]) if a != b)
both = sum(1 for x in s if all(r[0] == "active" for r in x["roles"].values()))
print(f"{len(s)} samples, {len(bad)} with the target not active, {changes} route change(s), "
      f"{both} samples with both active (the old one until its route check)")
for x in bad[:5]: print(x)
sys.exit(0 if s and not bad and changes <= 1 else 1)
PY
  metric partition "${RUN}/partition/summary.json"
  check "6. traffic keeps flowing through the route target (gap <= 2 s, transfer intact, same EIP)" \
    summary_ok "${RUN}/partition/summary.json" 's["gap_s"] <= 2.0 and s["transfer_intact"] and s["same_ip"]'
  check "6. after the heal: one active (the route target), the other a standby in sync" \
    bash -c "a=\$(source '${SIM_DIR}/vpc_lib.sh'; wait_az_active b 20) && source '${SIM_DIR}/vpc_lib.sh' && wait_standby_in_sync \$(peer_of \$a) 30"
}

mark_instance() {  # inst state: what EC2 reports for it (routes at a stopped one are blackholes)
  in_ns svc curl -sf --max-time 5 -X POST -d "{\"id\": \"$(inst_id "$1")\", \"state\": \"$2\"}" \
    "http://${AWS_ADDR}:${AWS_PORT}/_fake/instance" >/dev/null
}

# Both of AZ a's instances go down; AZ b's active (ha.fallback_for, vpc.sh) points AZ a's private
# table at its own ENI, so AZ a's Lambdas egress again, with AZ b's EIP. Then AZ a comes back and
# its own control takes the table back; AZ b leaves it alone.
s_cross_az() {
  local a_active b_active b_standby i out
  a_active=$(wait_az_active a 30) b_active=$(wait_az_active b 30) b_standby=$(peer_of "${b_active}")
  check "7. before: the Lambda in AZ a leaves with EIP a" eq "$(lambda_get a "http://${WHOAMI}:8080/")" "${EIP[a]}"
  out=${RUN}/cross_az
  mkdir -p "${out}"
  in_ns la "${PY}" "${SIM_DIR}/traffic.py" probe "http://${WHOAMI}:8080/" 16 0.1 "${out}/probe.jsonl" &
  local ppid=$!
  sleep 1
  date +%s.%N >"${out}/t_fault"
  for i in a1 a2; do
    cut_off "$i"
    mark_instance "$i" stopped
  done
  wait "${ppid}" || true
  check "7. AZ a's Lambda egresses again through AZ b (EIP b) after both AZ a instances stopped" \
    "${PY}" - "${out}/probe.jsonl" "$(cat "${out}/t_fault")" "${EIP[b]}" "${out}/fallback_s" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
t_fault, eip_b = float(sys.argv[2]), sys.argv[3]
after = [r for r in recs if r["start"] >= t_fault]
back = [r for r in after if r["completed"] and r["ip"] == eip_b]
other = sorted({r["ip"] for r in after if r["completed"]} - {eip_b})
print(f"{len(after)} probes after the fault, {len(back)} answered with EIP b, other IPs {other}")
if not back:
    sys.exit(1)
first = min(r["end"] for r in back) - t_fault
open(sys.argv[4], "w").write(f"{first:.2f}\n")
print(f"first answer with EIP b {first:.2f} s after the fault")
# Liveness bound only (the design's figure is measured, not asserted): 15 s.
sys.exit(0 if first <= 15.0 else 1)
PY
  [[ -f ${out}/fallback_s ]] && echo "METRIC cross_az_fallback_s $(cat "${out}/fallback_s")"
  # AZ b's own pair may fail over meanwhile (a loaded VM has caused spurious ones): then its new
  # active takes AZ a's table from its peer (designed), and the checks follow the current active.
  local b_now
  b_now=$(wait_az_active b 10 || true)
  check "7. AZ a's table points at AZ b's active (${b_now:-none})" eq "$(inst_name "$(route_target a)" || true)" "${b_now:-none}"
  if [[ ${b_now} == "${b_active}" ]]; then
    check "7. ${b_active} reports the fallback as rescuing; ${b_standby} (standby) replaced nothing" \
      "${PY}" -c '
import json, sys
a, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
fa, fs = a["fallback"][0], s["fallback"][0]
print(fa["phase"], fa["replacements"], "|", fs["phase"], fs["replacements"], "|", fa["reason"])
sys.exit(0 if fa["phase"] == "rescuing" and fa["replacements"] >= 1 and fs["replacements"] == 0 else 1)' \
      "$(ha_json "${b_active}")" "$(ha_json "${b_standby}")"
  else
    echo "NOTE 7. AZ b failed over during the scenario (${b_active} -> ${b_now:-none}); its new active took AZ a's table from its peer"
    check "7. ${b_now:-none} reports the fallback as rescuing" "${PY}" -c '
import json, sys
f = json.loads(sys.argv[1])["fallback"][0]
print(f["phase"], f["replacements"], f["reason"])
sys.exit(0 if f["phase"] == "rescuing" and f["replacements"] >= 1 else 1)' "$(ha_json "${b_now}")"
    b_active=${b_now}
  fi
  check "7. AZ b's own egress is unchanged (EIP b)" eq "$(lambda_get b "http://${WHOAMI}:8080/")" "${EIP[b]}"
  check "7. AZ b's pair is one active + one standby (its fencing ignores AZ a's table)" test -n "$(wait_az_active b 5 || true)"

  # AZ a comes back: EC2 says running, links up, processes started.
  date +%s.%N >"${out}/t_back"
  for i in a1 a2; do
    mark_instance "$i" running
    in_ns "$i" ip link set eth0 up
    in_ns "$i" ip link set eth1 up
    instance_start_dp "$i"
  done
  for i in a1 a2; do instance_wait_dp "$i"; done
  for i in a1 a2; do instance_start_ctl "$i"; done
  # wait_az_active would accept b's active (the table's target until AZ a takes it back)
  local back="" n
  for ((n = 0; n < 200; n++)); do
    back=$(inst_name "$(route_target a)" || true)  # inst_name returns 1 unless the last matches
    [[ ${back} == a? && $(ha_role "${back}") == active ]] && break
    back=""
    sleep 0.2
  done
  [[ -n ${back} ]] && echo "METRIC cross_az_take_back_s $("${PY}" -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$(cat "${out}/t_back")") (from marking AZ a running, incl. starting its processes)"
  check "7. AZ a back: its own active (${back:-none}) holds AZ a's table again" test -n "${back}"
  check "7. the Lambda in AZ a leaves with EIP a again" eq "$(lambda_get a "http://${WHOAMI}:8080/")" "${EIP[a]}"
  sleep 3  # a few of AZ b's checks (every 1 s)
  check "7. AZ b did not touch AZ a's table once AZ a was back (owners_back/watching, no ReplaceRoute to b)" \
    "${PY}" - "${VPC_DIR}/changes.jsonl" "$(cat "${out}/t_back")" "$(rtb_of a)" "$(data_eni b1)" "$(data_eni b2)" \
    "$(ha_json "${b_active}")" "$(inst_name "$(route_target a)")" <<'PY'
import json, sys
path, t_back, rtb, eb1, eb2, status, target = sys.argv[1:8]
ch = [json.loads(l) for l in open(path)]
to_b = [c for c in ch if c["t"] >= float(t_back) and c.get("action") == "ReplaceRoute"
        and c.get("route_table_id") == rtb and c["new"].get("network_interface_id") in (eb1, eb2)]
fb = json.loads(status)["fallback"][0]
print(f"ReplaceRoutes of {rtb} to AZ b since AZ a came back: {len(to_b)}; b: {fb['phase']} ({fb['reason']}); target {target}")
sys.exit(0 if not to_b and fb["phase"] in ("owners_back", "watching") and target.startswith("a") else 1)
PY
}

# Only the processes of both AZ a instances die (kill -9 of every process in them); their links
# stay up and EC2 keeps reporting them running, so only AZ a's liveness lease (ha.lease_interval,
# renewed by its active while its dataplane is healthy) tells AZ b. Before that, the AZs are cut
# apart (the routers' cross-AZ link down) for a while: a live AZ a keeps its table.
s_cross_az_procs() {
  local a_active b_active i out n0
  a_active=$(wait_az_active a 30) b_active=$(wait_az_active b 30)
  check "7b. before: the Lambda in AZ a leaves with EIP a" eq "$(lambda_get a "http://${WHOAMI}:8080/")" "${EIP[a]}"
  out=${RUN}/cross_az_procs
  mkdir -p "${out}"
  n0=0
  [[ -f ${VPC_DIR}/changes.jsonl ]] && n0=$(wc -l <"${VPC_DIR}/changes.jsonl")
  in_ns ra ip link set xb down
  sleep 6  # two lease limits (3 x 1 s) and AZ b's after (3 s)
  in_ns ra ip link set xb up
  check "7b. AZs cut apart for 6 s: AZ a's table untouched, still at ${a_active}" \
    "${PY}" - "${VPC_DIR}/changes.jsonl" "${n0}" "$(rtb_of a)" "$(inst_name "$(route_target a)")" <<'PY'
import json, os, sys
path, n0, rtb, target = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ch = [json.loads(l) for l in open(path)][n0:] if os.path.exists(path) else []
moved = [c for c in ch if c.get("action") == "ReplaceRoute" and c.get("route_table_id") == rtb]
print(f"ReplaceRoutes of {rtb} meanwhile: {len(moved)}; target {target}")
sys.exit(0 if not moved and target.startswith("a") else 1)
PY
  in_ns la "${PY}" "${SIM_DIR}/traffic.py" probe "http://${WHOAMI}:8080/" 20 0.1 "${out}/probe.jsonl" &
  local ppid=$!
  sleep 1
  date +%s.%N >"${out}/t_fault"
  for i in a1 a2; do ip netns pids "$(ns_of "$i")" | xargs -r kill -9; done
  wait "${ppid}" || true
  in_ns svc curl -sf --max-time 5 "http://${AWS_ADDR}:${AWS_PORT}/_fake/state" >"${out}/state.json"
  check "7b. EC2 still reports both AZ a instances running" "${PY}" -c '
import json, sys
st = {i["id"]: i["state"] for i in json.load(open(sys.argv[1]))["instances"]}
print(st)
sys.exit(0 if st[sys.argv[2]] == st[sys.argv[3]] == "running" else 1)' "${out}/state.json" "$(inst_id a1)" "$(inst_id a2)"
  check "7b. AZ a's Lambda egresses again through AZ b (EIP b) after AZ a's processes died" \
    "${PY}" - "${out}/probe.jsonl" "$(cat "${out}/t_fault")" "${EIP[b]}" "${out}/fallback_s" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
t_fault, eip_b = float(sys.argv[2]), sys.argv[3]
after = [r for r in recs if r["start"] >= t_fault]
back = [r for r in after if r["completed"] and r["ip"] == eip_b]
print(f"{len(after)} probes after the fault, {len(back)} answered with EIP b")
if not back:
    sys.exit(1)
first = min(r["end"] for r in back) - t_fault
open(sys.argv[4], "w").write(f"{first:.2f}\n")
print(f"first answer with EIP b {first:.2f} s after the processes died")
sys.exit(0 if first <= 15.0 else 1)  # the issue's bound; the figure itself is reported
PY
  [[ -f ${out}/fallback_s ]] && echo "METRIC cross_az_procs_fallback_s $(cat "${out}/fallback_s")"
  local b_now
  b_now=$(wait_az_active b 10 || true)
  check "7b. AZ a's table points at AZ b's active (${b_now:-none}); its status names the lease" \
    "${PY}" -c '
import json, sys
f = json.loads(sys.argv[1])["fallback"][0]
print(f["phase"], f["replacements"], f["lease_age_ms"], f["lease_ttl_ms"], "|", sys.argv[2], sys.argv[3])
sys.exit(0 if f["phase"] == "rescuing" and f["replacements"] >= 1 and sys.argv[2] == sys.argv[3] else 1)' \
    "$(ha_json "${b_now:-b1}")" "$(inst_name "$(route_target a)" || true)" "${b_now:-none}"

  # The processes come back (systemd restarts them): AZ a takes its table back.
  date +%s.%N >"${out}/t_back"
  for i in a1 a2; do instance_start_dp "$i"; done
  for i in a1 a2; do instance_wait_dp "$i"; done
  for i in a1 a2; do instance_start_ctl "$i"; done
  local back="" k
  for ((k = 0; k < 200; k++)); do
    back=$(inst_name "$(route_target a)" || true)
    [[ ${back} == a? && $(ha_role "${back}") == active ]] && break
    back=""
    sleep 0.2
  done
  check "7b. AZ a's processes back: its own active (${back:-none}) holds AZ a's table again" test -n "${back}"
  check "7b. the Lambda in AZ a leaves with EIP a again" eq "$(lambda_get a "http://${WHOAMI}:8080/")" "${EIP[a]}"
  check "7b. ${a_active}'s peer is a standby again" wait_standby_in_sync "$(peer_of "${back:-a1}")" 30
}

start=$(date +%s)
bash "${SIM_DIR}/vpc.sh" up
echo "VPC up in $(($(date +%s) - start)) s (${VPC_PREFIX})"
for s in "${SCENARIOS[@]}"; do
  t0=$(date +%s)
  "s_${s}"
  echo "  (${s}: $(($(date +%s) - t0)) s)"
done
if [[ ${VPC_MGMT:-ipv4} == ipv6 ]]; then
  check "management over IPv6 only: no IPv4 to the fake AWS, every EC2 and CloudWatch call from an IPv6 address" \
    bash "${SIM_DIR}/vpc.sh" mgmt-check
  sed 's/^/    /' "${VPC_DIR}/out"
fi
echo "${pass} passed, ${fail} failed ($(($(date +%s) - start)) s)"
((fail == 0))

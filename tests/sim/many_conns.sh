#!/usr/bin/env bash
# Many simultaneous connections through one HA pair with several EIPs, kept across a failover
# (issue 15: NAT Gateway's 8 addresses × 55,000 = 440,000 connections to one destination).
#
# The simulated VPC (vpc.sh) with VPC_EIPS (default 8) service addresses + EIPs per pair; AZ a's
# Lambda namespace gets MANY_SOURCES (default 96) extra addresses; CONNS (default 440000) TCP
# connections from them to ONE echo server address:port on the simulated internet
# (198.51.100.10:7000, conn_hold serve) are opened and held (conn_hold hold). Paired pooling maps
# each inside address to one outside address, and one outside address carries at most 64,512
# connections to one destination, so the connections are planned per outside address: a probe
# connection from every source address shows (eipgatectl flows) which outside address it got,
# then each outside address gets CONNS/VPC_EIPS connections spread over its sources.
# Checks: every connection open; the server sees all VPC_EIPS EIPs; the active's flows per outside
# address and in all >= CONNS; the standby holds them too; then kill -9 of the active dataplane,
# the standby takes over, a random SAMPLE (default 2000) of the held connections echo end to end,
# none was reset, and the new active holds >= CONNS flows.
#
# Environment: CONNS, SAMPLE, VPC_EIPS, MANY_SOURCES, CONN_HOLD_BIN (default
# BUILD_DIR/tests/sim_conn_hold), BUILD_DIR or DP_BIN/CONTROL_BIN/CTL_BIN (vpc_lib.sh),
# VPC_CONTROL_ADDRESSES=first (an eipgate-control without `private_ips`: it moves only the first
# address and this script moves the others through the EC2 API after the takeover), E2E_KEEP=1.
# One process holds at most RLIMIT_NOFILE connections (raised as far as allowed; without
# CAP_SYS_RESOURCE only to the hard limit), so the holders and servers are several processes.
# Raises net.netfilter.nf_conntrack_max (the IGW's 1:1 NAT tracks every connection) and fs.file-max
# when too low, and restores them on exit. Needs root. Tears everything down, also on failure.
set -euo pipefail

VPC_DIR=$(mktemp -d /tmp/eipgate-many.XXXXXX)
export VPC_DIR VPC_PREFIX=m$$
export VPC_EIPS=${VPC_EIPS:-8}
CONNS=${CONNS:-440000}
SAMPLE=${SAMPLE:-2000}
SOURCES=${MANY_SOURCES:-96}
# New connections per second in all (0: as fast as the holders go). Flat out on the 2-vCPU VM the
# standby's worker falls behind and the sync stream drops records (README, "Issues").
RATE=${MANY_RATE:-3000}
# Room for CONNS + 25 % in each dataplane's table; connections stay idle while held.
export VPC_MAX_FLOWS=${VPC_MAX_FLOWS:-$(((CONNS * 5 / 4 + 65535) / 65536 * 64))K}
export VPC_TCP_ESTABLISHED=${VPC_TCP_ESTABLISHED:-7200s}
export VPC_CLOUDWATCH=${VPC_CLOUDWATCH:-off}
source "$(dirname "${BASH_SOURCE[0]}")/vpc_lib.sh"
HOLD_BIN=${CONN_HOLD_BIN:-${BUILD_DIR}/tests/sim_conn_hold}
pass=0 fail=0
declare -A SAVED=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" -v f="${2:-%.1f}" 'BEGIN { printf f, b - a }'; }  # t0 [fmt]
cleanup() {
  local rc=$? k
  if ((fail > 0)) || ((rc != 0)); then
    for f in "${VPC_DIR}"/a?/ctl.log "${VPC_DIR}"/a?/dp.log "${VPC_DIR}"/hold/*.err "${VPC_DIR}"/srv/*.err; do
      [[ -s $f ]] && { echo "--- ${f#"${VPC_DIR}"/} (last 20 lines)"; tail -20 "$f"; }
    done
  fi
  bash "${SIM_DIR}/vpc.sh" down || true
  for k in "${!SAVED[@]}"; do sysctl -qw "${k}=${SAVED[${k}]}" || true; done
  [[ -n ${E2E_KEEP:-} ]] && echo "kept ${VPC_DIR}" || rm -rf "${VPC_DIR}"
}
trap cleanup EXIT

check() {  # name, command...
  local name=$1
  shift
  if "$@" >"${VPC_DIR}/out" 2>&1; then
    echo "PASS ${name}"
    sed 's/^/    /' "${VPC_DIR}/out" | tail -3
    pass=$((pass + 1))
  else
    echo "FAIL ${name}"
    sed 's/^/    /' "${VPC_DIR}/out" | tail -20
    fail=$((fail + 1))
  fi
}
raise_sysctl() {  # key minimum: raised for this run only
  local cur
  cur=$(sysctl -n "$1")
  if ((cur < $2)); then
    SAVED[$1]=${cur}
    sysctl -qw "$1=$2"
  fi
}
dp_stats() { dpctl "$1" --json stats; }
active_tcp() { dp_stats "$1" | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["totals"]["active_tcp_flows"])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "${VPC_DIR}/$1/$2.pid")/status"; }

# --- holders: one FIFO + events file each ---------------------------------------------------------
HOLDERS=()
start_holder() {  # name spec inflight
  local d=${VPC_DIR}/hold
  mkdir -p "${d}"
  mkfifo "${d}/$1.ctl"
  : >"${d}/$1.ev"
  in_ns la env CONN_HOLD_INFLIGHT="$3" CONN_HOLD_RATE="${CONN_HOLD_RATE:-0}" setsid "${HOLD_BIN}" hold "${ECHO_HOST}" "${ECHO_PORT}" "$2" \
    "${d}/$1.ctl" "${d}/$1.ev" 2>"${d}/$1.err" </dev/null &
  echo $! >"${VPC_DIR}/hold-$1.pid"
  HOLDERS+=("$1")
}
events() { grep -c "\"event\": \"$2\"" "${VPC_DIR}/hold/$1.ev" || true; }
# Wait until every named holder wrote one more EVENT line than BEFORE (or timeout); 0 if all did.
wait_event() {  # event timeout_s names...
  local ev=$1 t=$2 h n
  shift 2
  for ((n = 0; n < t * 5; n++)); do
    for h in "$@"; do
      (($(events "${h}" "${ev}") > ${BEFORE[${h}]:-0})) || { sleep 0.2; continue 2; }
    done
    return 0
  done
  return 1
}
declare -A BEFORE=()
# Send a command to every holder and wait for its answer; prints the sum of the answers.
holders_cmd() {  # event timeout_s command
  local h
  for h in "${HOLDERS[@]}"; do BEFORE[${h}]=$(events "${h}" "$1"); done
  for h in "${HOLDERS[@]}"; do echo "$3" >"${VPC_DIR}/hold/${h}.ctl"; done
  wait_event "$1" "$2" "${HOLDERS[@]}" || { echo "holders did not answer '$3' within $2 s" >&2; return 1; }
  sum_events "$1"
}
sum_events() {  # event: the last such line of every holder, numeric fields summed
  local h
  for h in "${HOLDERS[@]}"; do grep "\"event\": \"$1\"" "${VPC_DIR}/hold/${h}.ev" | tail -1; done |
    "${PY}" -c '
import json, sys
tot = {}
for line in sys.stdin:
    for k, v in json.loads(line).items():
        if isinstance(v, (int, float)):
            tot[k] = max(tot.get(k, 0), v) if k == "seconds" else tot.get(k, 0) + v
        elif v and k != "event":
            tot.setdefault(k, v)
print(json.dumps(tot))'
}
jfield() { "${PY}" -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

# --- start ---------------------------------------------------------------------------------------
[[ ${EUID} -eq 0 ]] || { echo "needs root" >&2; exit 1; }
[[ -x ${HOLD_BIN} ]] || { echo "missing ${HOLD_BIN} (ninja sim_conn_hold)" >&2; exit 1; }
NOFILE=$(ulimit -Hn)
[[ ${NOFILE} == unlimited ]] && NOFILE=1048576
PER_HOLDER=$((NOFILE - 500 < 60000 ? NOFILE - 500 : 60000))
# Servers share the port (SO_REUSEPORT hashes each connection to one): at 70 % of a process's
# descriptors on average none runs out.
SERVERS=$(((CONNS + NOFILE * 7 / 10 - 1) / (NOFILE * 7 / 10)))
log "CONNS=${CONNS} over VPC_EIPS=${VPC_EIPS} (max_flows ${VPC_MAX_FLOWS}); ${SERVERS} server and" \
  "about $(((CONNS + PER_HOLDER - 1) / PER_HOLDER)) holder processes (RLIMIT_NOFILE ${NOFILE})"
raise_sysctl net.netfilter.nf_conntrack_max $((CONNS * 6 / 5 + 65536))
raise_sysctl fs.file-max $((CONNS * 3 + 200000))
mem0=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)
t_up=$(date +%s.%N)
bash "${SIM_DIR}/vpc.sh" up
log "VPC up in $(since "${t_up}") s"
active=$(wait_az_active a 30) standby=$(peer_of "${active}")
mapfile -t SVC < <(service_ips a)
mapfile -t PUB < <(eips a)

# Echo servers on one address:port; the Lambda's extra source addresses.
in_ns inet sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
mkdir -p "${VPC_DIR}/srv"
for ((k = 0; k < SERVERS; k++)); do
  in_ns inet setsid "${HOLD_BIN}" serve "${ECHO_HOST}" "${ECHO_PORT}" "${VPC_DIR}/srv/${k}.json" \
    2>"${VPC_DIR}/srv/${k}.err" </dev/null &
  echo $! >"${VPC_DIR}/srv-${k}.pid"
done
for ((k = 0; k < SOURCES; k++)); do in_ns la ip addr add "10.1.1.$((100 + k))/24" dev eth0; done
for ((n = 0; n < 50; n++)); do (($(ls "${VPC_DIR}"/srv/*.json 2>/dev/null | wc -l) == SERVERS)) && break; sleep 0.2; done

# Probe: one connection from every source; which outside address did each get?
spec=$(for ((k = 0; k < SOURCES; k++)); do printf '10.1.1.%d:1,' $((100 + k)); done)
start_holder probe "${spec%,}" 256
wait_event open 60 probe || { echo "probe connections did not open" >&2; exit 1; }
dpctl "${active}" --json flows --remote "${ECHO_HOST}" --limit 1000 >"${VPC_DIR}/probe.json"
holders_cmd quit 10 quit >/dev/null
HOLDERS=()

# The plan: per outside address CONNS/VPC_EIPS connections over its sources, source ports from 2000;
# holders of at most PER_HOLDER connections each.
"${PY}" - "${VPC_DIR}/probe.json" "${CONNS}" "${PER_HOLDER}" "${VPC_DIR}/plan" "${SVC[@]}" <<'PY'
import json, sys
flows = json.load(open(sys.argv[1]))["flows"]
conns, per_holder, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
svc = sys.argv[5:]
by_out = {o: sorted({f["inside_ip"] for f in flows if f["outside_ip"] == o},
                    key=lambda a: tuple(map(int, a.split(".")))) for o in svc}
missing = [o for o, ips in by_out.items() if not ips]
if missing:
    sys.exit(f"no source address maps to {missing}: raise MANY_SOURCES")
quota = {o: conns // len(svc) + (1 if i < conns % len(svc) else 0) for i, o in enumerate(svc)}
chunks = []  # (src, count, first_port)
for o, ips in by_out.items():
    if quota[o] > 64000:
        sys.exit(f"{quota[o]} connections for {o}: more than one outside address holds to one destination")
    each = [quota[o] // len(ips) + (1 if i < quota[o] % len(ips) else 0) for i in range(len(ips))]
    for ip, n in zip(ips, each):
        if n > 63000:
            sys.exit(f"{n} connections from {ip}: more than its source ports (raise MANY_SOURCES)")
        port = 2000
        while n > 0:
            chunks.append([ip, min(n, per_holder), port])
            port += chunks[-1][1]
            n -= chunks[-1][1]
holders, cur, room = [], [], per_holder  # pack the chunks into holders, splitting where needed
for ip, n, port in chunks:
    while n > 0:
        take = min(n, room)
        cur.append(f"{ip}:{take}:{port}")
        n, port, room = n - take, port + take, room - take
        if room == 0:
            holders.append(",".join(cur)); cur, room = [], per_holder
if cur:
    holders.append(",".join(cur))
open(out + ".holders", "w").write("\n".join(holders) + "\n")
json.dump({"quota": quota, "sources": by_out}, open(out + ".json", "w"), indent=1)
print(" ".join(f"{o}: {len(ips)} sources" for o, ips in by_out.items()))
PY
mapfile -t PLAN <"${VPC_DIR}/plan.holders"

# --- open ----------------------------------------------------------------------------------------
log "opening ${CONNS} connections with ${#PLAN[@]} holders"
slab0=$(awk '/^Slab/ {print $2}' /proc/meminfo)
t_open=$(date +%s.%N)
inflight=$((4096 / ${#PLAN[@]} > 64 ? 4096 / ${#PLAN[@]} : 64))
export CONN_HOLD_RATE=$(awk -v r="${RATE}" -v n="${#PLAN[@]}" 'BEGIN { print r / n }')
for ((k = 0; k < ${#PLAN[@]}; k++)); do start_holder "h${k}" "${PLAN[k]}" "${inflight}"; done
for h in "${HOLDERS[@]}"; do BEFORE[${h}]=0; done
OPEN_TIMEOUT=${OPEN_TIMEOUT:-$((CONNS / 100 + 120))}
for ((n = 0; n < OPEN_TIMEOUT / 10; n++)); do
  wait_event open 10 "${HOLDERS[@]}" && break
  log "  $(sum_events progress)"
done
opened=$(sum_events open)
open_s=$(since "${t_open}")
echo "METRIC open_s ${open_s} ${opened}"
check "${CONNS} connections open (${open_s} s)" "${PY}" -c '
import json, sys; s = json.loads(sys.argv[1]); print(s)
sys.exit(0 if s.get("open") == int(sys.argv[2]) and not s.get("failed") else 1)' "${opened}" "${CONNS}"

# Every EIP seen by the server; no server ran out of descriptors.
sleep 1.5
check "the server holds >= ${CONNS} connections from all ${VPC_EIPS} EIPs" "${PY}" - "${CONNS}" \
  "${VPC_DIR}/srv" "${PUB[@]}" <<'PY'
import glob, json, sys
conns, pubs = int(sys.argv[1]), sys.argv[3:]
files = glob.glob(sys.argv[2] + "/*.json")
st = [json.load(open(f)) for f in files]
peers = {}
for s in st:
    for p, n in s["peers"].items():
        peers[p] = peers.get(p, 0) + n
total = sum(s["open"] for s in st)
print(f"open {total} over {len(st)} servers (max {max(s['open'] for s in st)}), per EIP {peers}")
ok = total >= conns and all(peers.get(p, 0) > 0 for p in pubs) and set(peers) <= set(pubs)
sys.exit(0 if ok and not any(s["full"] for s in st) else 1)
PY

# The active's flows, per outside address (its sources' flows to the server), and in all.
t_q=$(date +%s.%N)
"${PY}" - "${VPC_DIR}/plan.json" <<'PY' | while read -r o ip; do echo "${o} $(dpctl "${active}" --json flows --inside "${ip}" --remote "${ECHO_HOST}" --proto tcp --limit 1 | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["matched"])')"; done >"${VPC_DIR}/per_outside"
import json, sys
for o, ips in json.load(open(sys.argv[1]))["sources"].items():
    for ip in ips:
        print(o, ip)
PY
echo "METRIC flow_queries_s $(since "${t_q}") ($(wc -l <"${VPC_DIR}/per_outside") queries)"
check "${active} (active): every outside address carries its share, >= ${CONNS} in all" "${PY}" - \
  "${VPC_DIR}/per_outside" "${VPC_DIR}/plan.json" "$(active_tcp "${active}")" "${CONNS}" <<'PY'
import json, sys
per = {}
for line in open(sys.argv[1]):
    o, n = line.split()
    per[o] = per.get(o, 0) + int(n)
quota = json.load(open(sys.argv[2]))["quota"]
tcp, conns = int(sys.argv[3]), int(sys.argv[4])
print(f"per outside address {per}; active_tcp_flows {tcp}; most on one address {max(per.values())}")
sys.exit(0 if all(per.get(o, 0) >= q for o, q in quota.items()) and sum(per.values()) >= conns
         and tcp >= conns else 1)
PY

# The standby holds them too (flow sync).
t_sync=$(date +%s.%N)
for ((n = 0; n < 60 + CONNS / 10000; n++)); do (($(active_tcp "${standby}") >= CONNS)) && break; sleep 1; done
sync_stat() { dp_stats "$1" | "${PY}" -c 'import json,sys; s=json.load(sys.stdin)["sync"]; print(s["records_dropped"], s["records_refused"])'; }
echo "METRIC sync records_dropped/refused active $(sync_stat "${active}") standby $(sync_stat "${standby}");" \
  "standby demotions $(grep -c 'standby -> failed' "${VPC_DIR}/${standby}/ctl.log" || true)"
check "${standby} (standby) holds >= ${CONNS} flows ($(active_tcp "${standby}"); waited $(since "${t_sync}" %.0f) s)" \
  test "$(active_tcp "${standby}")" -ge "${CONNS}"
check "${standby} is a standby in sync" wait_standby_in_sync "${standby}" 60

# Memory and a first echo sample.
for i in "${active}" "${standby}"; do
  echo "METRIC rss_kb ${i} dataplane $(rss_kb "${i}" dp) control $(rss_kb "${i}" ctl)" \
    "engine_memory_bytes $(dp_stats "${i}" | "${PY}" -c 'import json,sys; print(json.load(sys.stdin)["totals"]["memory_bytes"])')"
done
echo "METRIC kernel slab_delta_kb $(($(awk '/^Slab/ {print $2}' /proc/meminfo) - slab0))" \
  "mem_available_delta_kb $((mem0 - $(awk '/^MemAvailable/ {print $2}' /proc/meminfo)))"
per=$((SAMPLE / ${#HOLDERS[@]} > 0 ? SAMPLE / ${#HOLDERS[@]} : 1))
r=$(holders_cmd check 60 "check $((per / 4 + 1)) 1")
check "before the failover: a sample echoes ($(jfield "${r}" echoed)/$(jfield "${r}" sampled))" \
  test "$(jfield "${r}" failed)" -eq 0 -a "$(jfield "${r}" sampled)" -gt 0

# --- kill -9 of the active dataplane -------------------------------------------------------------
log "kill -9 ${active}'s dataplane"
t_kill=$(date +%s.%N)
kill -9 "$(cat "${VPC_DIR}/${active}/dp.pid")"
new=$(wait_az_active a 60 || true)
takeover_s=$(since "${t_kill}" %.2f)
echo "METRIC takeover_s ${takeover_s}"
check "${standby} took over (${takeover_s} s)" test "${new}" == "${standby}"
if [[ ${VPC_CONTROL_ADDRESSES:-all} == first && ${VPC_EIPS} -gt 1 ]]; then
  # eipgate-control moved only the first address: move the others as it would (one call).
  in_ns svc "${PY}" - "http://${AWS_ADDR}:${AWS_PORT}" "$(data_eni "${standby}")" "${SVC[@]:1}" <<'PY'
import sys, botocore.session
ec2 = botocore.session.get_session().create_client(
    "ec2", region_name="us-east-1", endpoint_url=sys.argv[1], aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
ec2.assign_private_ip_addresses(NetworkInterfaceId=sys.argv[2], PrivateIpAddresses=sys.argv[3:],
                                AllowReassignment=True)
PY
  log "moved ${SVC[*]:1} to $(data_eni "${standby}") (VPC_CONTROL_ADDRESSES=first)"
fi
check "every service address is on ${standby}'s data ENI in EC2" in_ns svc "${PY}" -c '
import json, sys, urllib.request
st = json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/state"))
ips = next(e for e in st["network_interfaces"] if e["id"] == sys.argv[2])["private_ips"]
missing = [ip for ip in sys.argv[3:] if ip not in ips]
print(sys.argv[2], ips, "missing", missing); sys.exit(1 if missing else 0)' \
  "http://${AWS_ADDR}:${AWS_PORT}" "$(data_eni "${standby}")" "${SVC[@]}"
r=$(holders_cmd check 90 "check ${per} 2")
echo "METRIC after_failover_check ${r}"
check "after the failover: ${SAMPLE} random held connections echo end to end ($(jfield "${r}" echoed)/$(jfield "${r}" sampled) in $(jfield "${r}" seconds) s)" \
  test "$(jfield "${r}" failed)" -eq 0 -a "$(jfield "${r}" sampled)" -ge $((per * ${#HOLDERS[@]}))
r=$(holders_cmd count 30 count)
check "no held connection was reset or closed (${r})" test "$(jfield "${r}" open)" -eq "${CONNS}" -a "$(jfield "${r}" closed)" -eq 0
check "${standby} (new active) holds >= ${CONNS} flows ($(active_tcp "${standby}"))" \
  test "$(active_tcp "${standby}")" -ge "${CONNS}"
echo "METRIC rss_kb ${standby} dataplane_after $(rss_kb "${standby}" dp)"
echo "${pass} passed, ${fail} failed"
((fail == 0))

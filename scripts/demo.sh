#!/usr/bin/env bash
# Demo: the simulated VPC. Sets up, builds the three binaries, brings up two AZs with an eipgate
# HA pair each (tests/sim/vpc.sh: network namespaces, fake EC2/IMDS that really moves routes),
# shows each Lambda's egress IP, the EIP-only API, a denied destination, then kills the active
# dataplane of AZ a during a transfer and prints the measured gap. Tears everything down.
#   scripts/demo.sh           the VPC demo (a few minutes once packages are installed)
#   scripts/demo.sh --bench   the engine micro-benchmark instead (bench/engine_demo.sh)
#   BUILD_DIR  build directory (default: build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"
if [[ ${1:-} == --bench ]]; then
  shift
  exec bash bench/engine_demo.sh "$@"
fi

export BUILD_DIR=${BUILD_DIR:-build}
bash scripts/setup.sh
BUILD_TYPE=RelWithDebInfo TARGETS="eipgate-dataplane eipgate-control eipgatectl" bash scripts/build.sh

VPC_DIR=$(mktemp -d /tmp/eipgate-demo.XXXXXX)
export VPC_DIR VPC_PREFIX=d$$
source tests/sim/vpc_lib.sh
finish() {
  bash tests/sim/vpc.sh down || true
  rm -rf "${VPC_DIR}"
}
trap finish EXIT

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
row() { printf '  %-46s %s\n' "$1" "$2"; }

bold "Bringing up the simulated VPC (2 AZs x HA pair, Lambdas, VPC routers, IGW, internet hosts)"
t0=$(date +%s)
bash tests/sim/vpc.sh up
bash tests/sim/vpc.sh status | sed 's/^/  /'
echo "  (up in $(($(date +%s) - t0)) s; every instance: eipgate-dataplane on its data ENI (${VPC_DATA_PATH}"
echo "   with the kernel fast path) + eipgate-control on its management ENI, heartbeats + EC2/IMDS at fake AWS ${AWS_ADDR})"

bold "1. Each Lambda leaves through its AZ's Elastic IP (what-is-my-IP server ${WHOAMI})"
for z in a b; do row "Lambda $(lambda_ip "${z}") in AZ ${z} is seen as" "$(lambda_get "${z}" "http://${WHOAMI}:8080/")   (EIP ${EIP[${z}]})"; done

bold "2. The third-party API ${EIPAPI} accepts only the EIPs"
for z in a b; do row "Lambda in AZ ${z}" "$(lambda_get "${z}" "http://${EIPAPI}:8080/")"; done
row "anyone else (from 192.0.2.2)" "HTTP $(in_ns inet "${PY}" tests/sim/traffic.py get "http://${EIPAPI}:8080/" || true)"

bold "3. A destination not on the allowlist (${DENIED}) is refused by the NAT"
row "Lambda in AZ a -> ${DENIED}:8080" "$(lambda_get a "http://${DENIED}:8080/" || true) (reset at once)"
active=$(wait_az_active a 10)
row "deny log on ${active}" ""
grep 'policy deny:' "${VPC_DIR}/${active}/dp.log" | tail -1 | sed 's/.*\(policy deny:.*\)/    \1/'
row "counters on ${active}" "$(dpctl "${active}" --json stats | "${PY}" -c '
import json, sys
s = json.load(sys.stdin)
hits = {r["rule"]: r["hits"] for r in s["policy"]["rules"]}
denied = s["drops"].get("policy_denied", 0)
print(f"policy_denied={denied}, rule hits: " + ", ".join(f"{k}={v}" for k, v in hits.items() if v))')"

standby=$(peer_of "${active}")
bold "4. kill -9 of AZ a's active dataplane (${active}) during 20 long-lived transfers + a new connection every 50 ms"
wait_standby_in_sync "${standby}" 30 || true
failover_run a "${VPC_DIR}/run" 2 8 kill -9 "$(cat "${VPC_DIR}/${active}/dp.pid")"
S=${VPC_DIR}/run/summary.json
echo "  after: route target $(inst_name "$(route_target a)"), ${active}: $(ha_role "${active}"), ${standby}: $(ha_role "${standby}")"

bold "Summary (AZ a, kill -9 of the active dataplane)"
"${PY}" - "${S}" "${EIP[a]}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rows = [
    ("traffic gap for new connections (<= 2 s required)", f"{s['gap_s']:.2f} s"),
    ("first EC2 change after the kill (secondary IP, route)", f"{s.get('first_ec2_change_after_fault_s', '?')} s"),
    ("long-lived connections kept, every byte checked", f"{s['connections_kept']} of {s['connections']}"),
    ("longest stall of the main transfer", f"{s['transfer_longest_silence_s']:.2f} s"),
    ("new connections answered within 0.4 s / completed", f"{s['probes'] - s['probes_failed']} / {s['probes'] - s['probes_not_completed']} of {s['probes']}"),
    ("egress IP before and after", ", ".join(s["egress_ips"]) + (" (same EIP)" if s["same_ip"] else " (CHANGED)")),
]
w = max(len(r[0]) for r in rows)
print("  " + "-" * (w + 20))
for k, v in rows:
    print(f"  {k:<{w}}  {v}")
print("  " + "-" * (w + 20))
ok = s["gap_s"] <= 2.0 and s["transfer_intact"] and s["same_ip"]
print("\n  " + ("PASS: failover within the design's budget, established connections survived, same EIP"
              if ok else "FAIL: see above"))
sys.exit(0 if ok else 1)
PY
echo "  (tests: ctest -L e2e -R sim_ha_e2e; failover statistics vs an alterNAT-style baseline: bench/failover.sh)"

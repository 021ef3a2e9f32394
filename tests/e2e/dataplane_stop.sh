#!/usr/bin/env bash
# A clean stop gives everything back: eipgate-dataplane with hugepages (the default EAL
# arguments), stopped with SIGTERM, leaves no hugepage files (/dev/hugepages/eipgate<pid>map_*),
# no EAL runtime directory, and every hugepage free again. Its port is af_packet on a veth whose
# kernel ingress nobody drops, so the start must warn about that (dataplane_e2e.sh checks the
# opposite: no warning when the drop is in place).
# Usage: dataplane_stop.sh <path to eipgate-dataplane>. Needs root and free 2 MiB hugepages
# (scripts/setup.sh reserves them).
set -euo pipefail

DP=${1:?path to eipgate-dataplane}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init ds
HP=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
free_before=$(cat "${HP}" 2>/dev/null || echo 0)
if ((free_before == 0)); then
  echo "FAIL no free 2 MiB hugepages: run scripts/setup.sh (it reserves them and mounts hugetlbfs)"
  exit 1
fi

e2e_netns "${NAT}"
ip -n "${NAT}" link add v0 type veth peer name v1
ip -n "${NAT}" link set v0 up
ip -n "${NAT}" link set v1 up

cat >"${WORK}/dp.yaml" <<YAML
mode: one-armed
ports:
  - name: data
    device: net_af_packet0,iface=v0
    af_packet_fragments: drop
interface:
  address: 203.0.113.2/24
next_hop:
  gateway: 203.0.113.254
  mac: "02:00:00:00:00:01"
nat:
  inside_prefixes: [10.0.1.0/24]
  outside_addresses: [203.0.113.1]
  max_flows: 64K
workers:
  lcores: [1]
  main_lcore: 0
exception_path:
  enabled: true
  tap_name: ${S}t
admin:
  socket: ${WORK}/dp.sock
YAML

ip netns exec "${NAT}" "${DP}" --config "${WORK}/dp.yaml" >"${WORK}/dp.log" 2>&1 &
DP_PID=$!
for _ in $(seq 500); do
  grep -q "dataplane ready" "${WORK}/dp.log" && break
  kill -0 "${DP_PID}" 2>/dev/null || break
  sleep 0.2
done
check "the dataplane started with hugepages" grep -q "dataplane ready" "${WORK}/dp.log"
check "af_packet without a kernel ingress drop: the start warns" \
  grep -q "no nftables netdev ingress chain with policy drop on v0" "${WORK}/dp.log"
check "it holds hugepages while running (free ${free_before} -> $(cat "${HP}"))" \
  test "$(cat "${HP}")" -lt "${free_before}"
pid=${DP_PID}
kill -TERM "${pid}"
rc=0
wait "${pid}" || rc=$?
DP_PID=""
check "exit status 0 after SIGTERM (got ${rc})" test "${rc}" -eq 0
check "no hugepage files left" bash -c "! compgen -G '/dev/hugepages/eipgate${pid}map_*'"
check "no EAL runtime directory left" test ! -e "/var/run/dpdk/eipgate${pid}"
check "every hugepage is free again (${free_before} before, $(cat "${HP}") after)" \
  test "$(cat "${HP}")" -eq "${free_before}"
# Whatever a failed run left is not ours to keep.
rm -f "/dev/hugepages/eipgate${pid}map_"*
rm -rf "/var/run/dpdk/eipgate${pid}"
e2e_summary

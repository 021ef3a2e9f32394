// An engine's offload record as fast-path map entries: one for the packets the inside host sends
// (in the inside port's fp_flows) and one for the answers (in the outside port's). Pure: no DPDK,
// no syscalls, so the glue and the differential test (engine versus XDP) share it.
#pragma once

#include <array>
#include <cstdint>

#include "bpf/fastpath.h"
#include "dataplane/engine/engine.h"

namespace eipgate::dataplane {

// The ports as the fast path sees them.
struct OffloadLayout {
  std::array<uint8_t, 6> inside_mac{};   // the inside port's own MAC (source of inbound frames)
  std::array<uint8_t, 6> outside_mac{};  // the outside port's (source of outbound frames)
  uint16_t inside_mtu = 1500;
  uint16_t outside_mtu = 1500;
  bool one_armed = true;     // XDP_TX; else redirect to the other port's fp_tx_ports slot
  uint32_t inside_slot = 0;  // fp_tx_ports slots (the ports' indexes) in the two-armed layout
  uint32_t outside_slot = 1;
};

// The packets of the flow each way as they arrive, before translation.
struct OffloadTuples {
  bpf::FpTuple outbound;  // inside host -> remote
  bpf::FpTuple inbound;   // remote -> outside address
};
OffloadTuples offload_tuples(const engine::OffloadRecord& r);

// Builds the entries of an Offload record. A direction whose next hop has no MAC (nullptr) is not
// built: it stays in the slow path, which resolves it.
struct OffloadEntries {
  bool has_outbound = false;
  bool has_inbound = false;
  bpf::FastPathEntry outbound;  // for the inside port's fp_flows
  bpf::FastPathEntry inbound;   // for the outside port's fp_flows
};
OffloadEntries offload_entries(const engine::OffloadRecord& r, const OffloadLayout& layout,
                               const std::array<uint8_t, 6>* gateway_mac,
                               const std::array<uint8_t, 6>* inside_hop_mac);

}  // namespace eipgate::dataplane

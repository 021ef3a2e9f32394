// The engine's view of a packet: a byte buffer it may rewrite in place, and the verdict it returns.
// The DPDK glue maps an rte_mbuf onto PacketBuf; tests and benchmarks build them from bytes.
#pragma once

#include <cstdint>

#include "dataplane/engine/counters.h"

namespace eipgate::engine {

// Metadata that travels with a packet between workers (handoff) and from the NIC.
struct PacketMeta {
  // Set by a worker that handed off a non-first fragment whose L4 ports it learnt from the first
  // fragment; the receiving worker uses them instead of parsing (there is no L4 header).
  uint16_t frag_sport = 0;
  uint16_t frag_dport = 0;
  bool frag_ports_valid = false;
};

struct PacketBuf {
  uint8_t* data = nullptr;  // start of the Ethernet header
  uint32_t len = 0;         // bytes of frame present
  uint32_t cap = 0;         // bytes writable from data (>= len); generated replies may grow len
  PacketMeta meta{};
};

enum class Verdict : uint8_t {
  Drop,       // free the packet; Result::reason says why (already counted)
  ToOutside,  // transmit towards the internet (next hop: the VPC router)
  ToInside,   // transmit towards the inside host (next hop: the VPC router / inside subnet)
  ToHost,     // not NAT traffic: the instance's own (ARP, SSH, health checks, ping to itself)
  Handoff,    // another worker owns this flow: enqueue to Result::worker
  Held,  // the engine keeps the packet (fragment waiting for its first); see Engine::pop_released
};

struct Result {
  Verdict verdict = Verdict::Drop;
  DropReason reason = DropReason::Count;  // meaningful for Drop only
  uint16_t worker = 0;                    // meaningful for Handoff only
};

}  // namespace eipgate::engine

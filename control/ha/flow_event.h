// One connection-table change as the active instance streams it to its standby: a fixed-layout
// record, host byte order in memory and network byte order on the wire (encode/decode below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace eipgate::ha {

enum class FlowEventKind : uint8_t {
  Create = 1,   // a new mapping: the standby installs it
  Refresh = 2,  // the flow saw traffic or changed TCP state: new lifetime and state
  Delete = 3,   // expired, closed or evicted: the standby removes it
};

// Flag bits of FlowEvent::flags.
inline constexpr uint8_t kFlowFlagEndpointIndependent = 0x01;  // EIM UDP mapping
inline constexpr uint8_t kFlowFlagSeenReply = 0x02;            // traffic seen both ways

// Layout (offsets in bytes) is the wire layout too; the struct is 4-byte aligned with no
// implicit padding so that the two can never drift apart (static_asserts below).
struct FlowEvent {
  uint32_t inside_addr = 0;   //  0: the private host
  uint32_t outside_addr = 0;  //  4: the translated (service) address
  uint32_t remote_addr = 0;   //  8: the internet peer
  uint16_t inside_port = 0;   // 12: port, or ICMP echo id
  uint16_t outside_port = 0;  // 14
  uint16_t remote_port = 0;   // 16
  uint8_t protocol = 0;       // 18: IPPROTO_TCP/UDP/ICMP
  uint8_t tcp_state = 0;      // 19: the engine's TCP state number (0 for UDP/ICMP)
  uint32_t lifetime_s = 0;    // 20: remaining lifetime in seconds when the event was made
  FlowEventKind kind = FlowEventKind::Create;  // 24
  uint8_t flags = 0;                           // 25: kFlowFlag* bits
  uint16_t worker_hint = 0;                    // 26: worker that owned the flow (RSS/port slice)

  friend bool operator==(const FlowEvent&, const FlowEvent&) = default;
};

inline constexpr size_t kFlowEventWireSize = 28;
static_assert(sizeof(FlowEvent) == kFlowEventWireSize, "FlowEvent must have no implicit padding");
static_assert(offsetof(FlowEvent, protocol) == 18 && offsetof(FlowEvent, lifetime_s) == 20 &&
                  offsetof(FlowEvent, kind) == 24 && offsetof(FlowEvent, worker_hint) == 26,
              "FlowEvent layout is the wire layout");

// Writes exactly kFlowEventWireSize bytes in network byte order.
void encode_flow_event(const FlowEvent& event, std::span<uint8_t, kFlowEventWireSize> out);
// Reads one record; false for a kind outside FlowEventKind (the caller counts it).
[[nodiscard]] bool decode_flow_event(std::span<const uint8_t, kFlowEventWireSize> in,
                                     FlowEvent* out);

}  // namespace eipgate::ha

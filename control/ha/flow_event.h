// One connection-table change as the active instance streams it to its standby: the sync record
// of proto/ (proto/README.md), under the names the HA code uses. The peer protocol (wire.h)
// carries the same 28-byte records as the dataplane's sync socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/sync.h"

namespace eipgate::ha {

using FlowEvent = proto::SyncRecord;
using FlowEventKind = proto::SyncKind;

inline constexpr size_t kFlowEventWireSize = proto::kRecordSize;

inline void encode_flow_event(const FlowEvent& event, std::span<uint8_t, kFlowEventWireSize> out) {
  proto::encode_record(event, out);
}
// False for a kind outside FlowEventKind (the caller counts it).
[[nodiscard]] inline bool decode_flow_event(std::span<const uint8_t, kFlowEventWireSize> in,
                                            FlowEvent* out) {
  return proto::decode_record(in, out) == proto::SyncError::Ok;
}

}  // namespace eipgate::ha

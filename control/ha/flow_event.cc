// FlowEvent <-> its 28-byte network-order record.
#include "control/ha/flow_event.h"

#include "common/byte_order.h"

namespace eipgate::ha {

void encode_flow_event(const FlowEvent& e, std::span<uint8_t, kFlowEventWireSize> out) {
  uint8_t* p = out.data();
  be::put32(p + 0, e.inside_addr);
  be::put32(p + 4, e.outside_addr);
  be::put32(p + 8, e.remote_addr);
  be::put16(p + 12, e.inside_port);
  be::put16(p + 14, e.outside_port);
  be::put16(p + 16, e.remote_port);
  p[18] = e.protocol;
  p[19] = e.tcp_state;
  be::put32(p + 20, e.lifetime_s);
  p[24] = static_cast<uint8_t>(e.kind);
  p[25] = e.flags;
  be::put16(p + 26, e.worker_hint);
}

bool decode_flow_event(std::span<const uint8_t, kFlowEventWireSize> in, FlowEvent* out) {
  const uint8_t* p = in.data();
  const uint8_t kind = p[24];
  if (kind < static_cast<uint8_t>(FlowEventKind::Create) ||
      kind > static_cast<uint8_t>(FlowEventKind::Delete)) {
    return false;
  }
  out->inside_addr = be::get32(p + 0);
  out->outside_addr = be::get32(p + 4);
  out->remote_addr = be::get32(p + 8);
  out->inside_port = be::get16(p + 12);
  out->outside_port = be::get16(p + 14);
  out->remote_port = be::get16(p + 16);
  out->protocol = p[18];
  out->tcp_state = p[19];
  out->lifetime_s = be::get32(p + 20);
  out->kind = static_cast<FlowEventKind>(kind);
  out->flags = p[25];
  out->worker_hint = be::get16(p + 26);
  return true;
}

}  // namespace eipgate::ha

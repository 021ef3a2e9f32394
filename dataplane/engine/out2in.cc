// The outside -> inside slow path: what may come in (flows only; pings to us go to the host).
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

Result Engine::Impl::slow_in(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up) {
  if (p.proto != kProtoTcp && p.proto != kProtoUdp && p.proto != kProtoIcmp) {
    return drop(DropReason::UnsupportedProtocol);
  }
  if (p.icmp == IcmpKind::Error) return icmp_error(pkt, p, false);
  if (p.icmp == IcmpKind::EchoRequest) {  // ping to our public address: the kernel answers
    counters.add(Event::PacketsToHost);
    return Result{Verdict::ToHost, DropReason::Count, 0};
  }
  if (p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoReply) {
    return drop(DropReason::IcmpUnsupportedType);
  }
  if (i == kNone && !looked_up)
    i = find(FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyOutside, 0});
  if (i == kNone) {
    if (cfg.worker_count > 1) {
      const uint16_t w = owner_in(p.src, p.dst, p.sport, p.dport, p.proto);
      if (w != cfg.worker_id) return handoff(w);
    }
    return drop(DropReason::NoFlowOutside);
  }
  if (p.ttl <= 1) return time_exceeded(pkt, p, p.dst, false);
  Result r;
  forward(i, pkt, p, false, r);
  return r;
}

}  // namespace eipgate::engine

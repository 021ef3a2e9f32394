// ICMP errors both ways (RFC 5508): the embedded packet and the outer header are translated.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

Result Engine::Impl::icmp_error(PacketBuf& pkt, const Parsed& p, bool out) {
  (void)pkt;
  uint8_t* icmp = p.l4;
  InnerParsed in;
  if (!parse_inner(icmp + 8, p.l4_len() - 8u, in)) return drop(in.reason);
  // The embedded packet travelled the other way: reverse it to get this direction's key.
  const FlowKey k{in.dst,   in.src,   in.dport,
                  in.sport, in.proto, static_cast<uint8_t>(out ? kKeyInside : kKeyOutside),
                  0};
  const uint32_t i = find(k);
  if (i == kNone) {
    if (cfg.worker_count > 1) {
      const uint16_t w = out ? owner_out(k.src, k.dst, k.sport, k.dport, k.proto)
                             : owner_in(k.src, k.dst, k.sport, k.dport, k.proto);
      if (w != cfg.worker_id) return handoff(w);
    }
    return drop(DropReason::IcmpErrorNoFlow);
  }
  if (p.ttl <= 1) return drop(DropReason::TtlExpired);  // never an error about an error
  Flow& f = pool[i];
  const L4Offsets o = l4_offsets(f.proto);
  const uint32_t span = in.ihl + std::min<uint32_t>(in.avail_l4, 20);
  const uint32_t before = csum::partial(in.l3, span);
  // Inner packet: the side of it that names us changes, as it would have on the way out.
  const uint32_t new_addr = out ? f.outside_ip : f.inside_ip;
  const uint16_t new_port = out ? f.outside_port : f.inside_port;
  const uint16_t ip_d = out ? address_delta(f) : csum::negate(address_delta(f));
  const uint16_t l4_d = out ? f.csum_l4 : csum::negate(f.csum_l4);
  // Outbound error: inner is remote -> inside host (its destination changes);
  // inbound error: inner is outside address -> remote (its source changes).
  store32(in.l3 + (out ? 16 : 12), new_addr);
  store16(in.l3 + 10, csum::apply(load16(in.l3 + 10), ip_d));
  const uint8_t port_off = f.proto == kProtoIcmp ? o.out_port : (out ? o.in_port : o.out_port);
  store16(in.l4 + port_off, new_port);
  if (in.avail_l4 >= o.csum + 2u) {
    const uint16_t c = load16(in.l4 + o.csum);
    if (!(f.proto == kProtoUdp && c == 0)) {
      const uint16_t n = csum::apply(c, l4_d);
      store16(in.l4 + o.csum, (f.proto == kProtoUdp && n == 0) ? 0xffff : n);
    }
  }
  const uint32_t after = csum::partial(in.l3, span);
  store16(icmp + 2, csum::apply(load16(icmp + 2), csum::delta_sums(before, after)));
  // Outer header: the address that names us changes.
  uint8_t* ip = p.l3;
  const uint16_t ttl_d = ttl_decrement(ip);
  const uint32_t old_outer = load32(ip + (out ? 12 : 16));
  store32(ip + (out ? 12 : 16), new_addr);
  store16(ip + 10,
          csum::apply(load16(ip + 10), csum::add(csum::delta32(old_outer, new_addr), ttl_d)));
  if (out) {
    counters.add(Event::PacketsOutToDestination);
    counters.add(Event::BytesOutToDestination, p.ip_len);
    counters.add(Event::IcmpErrorsTranslatedOut);
  } else {
    counters.add(Event::PacketsOutToSource);
    counters.add(Event::BytesOutToSource, p.ip_len);
    counters.add(Event::IcmpErrorsTranslatedIn);
  }
  return Result{out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
}

}  // namespace eipgate::engine

// Packets the engine writes itself: ICMP Time Exceeded, TCP RSTs (to the sender, to the server
// of a refused name), ICMP administratively prohibited.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

namespace {

void swap_macs(uint8_t* eth) {
  uint8_t tmp[6];
  std::memcpy(tmp, eth, 6);
  std::memcpy(eth, eth + 6, 6);
  std::memcpy(eth + 6, tmp, 6);
}

void write_ip_header(uint8_t* ip, uint16_t total, uint16_t id, uint8_t ttl, uint8_t proto,
                     uint32_t src, uint32_t dst) {
  ip[0] = 0x45;
  ip[1] = 0;
  store16(ip + 2, to_net16(total));
  store16(ip + 4, id);
  store16(ip + 6, to_net16(0x4000));  // DF
  ip[8] = ttl;
  ip[9] = proto;
  store16(ip + 10, 0);
  store32(ip + 12, src);
  store32(ip + 16, dst);
  store16(ip + 10, csum::finish(csum::partial(ip, 20)));
}

// A bare IPv4+TCP segment of 40 bytes (no options, no payload) with both checksums: every RST the
// engine sends. Addresses and ports in network order as they sit in packets; seq/ack host order.
void write_tcp_rst(uint8_t* ip, uint16_t ip_id, uint32_t src, uint32_t dst, uint16_t sport,
                   uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags) {
  write_ip_header(ip, 40, ip_id, 64, kProtoTcp, src, dst);
  uint8_t* t = ip + 20;
  store16(t, sport);
  store16(t + 2, dport);
  be::put32(t + 4, seq);
  be::put32(t + 8, ack);
  t[12] = 5 << 4;
  t[13] = flags;
  store16(t + 14, 0);
  store16(t + 16, 0);
  store16(t + 18, 0);
  const uint32_t acc = csum::words32(src) + csum::words32(dst) + to_net16(kProtoTcp) + to_net16(20);
  store16(t + 16, csum::finish(csum::partial(t, 20, acc)));
}

}  // namespace

// Turns the packet into ICMP Time Exceeded to its sender, from `src`.
Result Engine::Impl::time_exceeded(PacketBuf& pkt, const Parsed& p, uint32_t src, bool out) {
  counters.drop(DropReason::TtlExpired);
  const bool is_error =
      p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply;
  if (is_error || (p.fragment && !p.first_fragment)) {
    return Result{Verdict::Drop, DropReason::TtlExpired, 0};
  }
  // RFC 1812 §4.3.2.3: as much of the original as fits in 576 bytes.
  uint32_t orig = std::min<uint32_t>(p.ip_len, 576 - 28);
  if (pkt.cap < p.l3_off + 28 + orig) orig = pkt.cap > p.l3_off + 28 ? pkt.cap - p.l3_off - 28 : 0;
  if (orig < p.ihl + 8u) return Result{Verdict::Drop, DropReason::TtlExpired, 0};
  uint8_t* ip = p.l3;
  std::memmove(ip + 28, ip, orig);
  write_ip_header(ip, static_cast<uint16_t>(28 + orig), static_cast<uint16_t>(rand64()), 64,
                  kProtoIcmp, src, p.src);
  uint8_t* icmp = ip + 20;
  icmp[0] = kIcmpTimeExceeded;
  icmp[1] = 0;
  store16(icmp + 2, 0);
  store32(icmp + 4, 0);
  store16(icmp + 2, csum::finish(csum::partial(icmp, 8 + orig)));
  swap_macs(pkt.data);
  pkt.len = p.l3_off + 28 + orig;
  counters.add(Event::IcmpTimeExceededSent);
  return Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::Count, 0};
}

// Turns a TCP segment into the RST its sender would get from the destination (RFC 793 §3.4).
Result Engine::Impl::reset_to_sender(PacketBuf& pkt, const Parsed& p) {
  counters.drop(DropReason::TcpNoFlowNonSyn);
  if (!cfg.tcp_rst_unknown) return Result{Verdict::Drop, DropReason::TcpNoFlowNonSyn, 0};
  if (!build_rst(pkt, p)) return Result{Verdict::Drop, DropReason::TcpNoFlowNonSyn, 0};
  counters.add(Event::TcpRstSentToInside);
  return Result{Verdict::ToInside, DropReason::Count, 0};
}

// The RST answering segment p, written over it (addresses swapped: it goes back to the sender).
bool Engine::Impl::build_rst(PacketBuf& pkt, const Parsed& p) {
  if ((p.tcp_flags & kTcpRst) || pkt.cap < p.l3_off + 40) return false;
  const uint8_t* tcp = p.l4;
  const uint16_t doff = static_cast<uint16_t>((tcp[12] >> 4) * 4);
  const uint32_t seq = be::get32(tcp + 4);
  const uint32_t ack = be::get32(tcp + 8);
  const uint16_t sport = load16(tcp);
  const uint16_t dport = load16(tcp + 2);
  uint32_t seg_len = p.l4_len() - doff;
  if (p.tcp_flags & kTcpSyn) ++seg_len;
  if (p.tcp_flags & kTcpFin) ++seg_len;
  // Everything needed is read above: the new header overwrites the segment (and any options).
  if (p.tcp_flags & kTcpAck) {
    write_tcp_rst(p.l3, 0, p.dst, p.src, dport, sport, ack, 0, kTcpRst);
  } else {
    write_tcp_rst(p.l3, 0, p.dst, p.src, dport, sport, 0, seq + seg_len, kTcpRst | kTcpAck);
  }
  swap_macs(pkt.data);
  pkt.len = p.l3_off + 40;
  return true;
}

// A RST from the flow's outside tuple to the remote host, in sequence with the client's segment
// p: written into a spare buffer and queued for pop_released. False when none is available.
bool Engine::Impl::rst_to_server(const Flow& f, const Parsed& p) {
  if (spares.empty() || released.full()) return false;
  PacketBuf* b = spares.back();
  if (b->cap < p.l3_off + 40u) return false;
  spares.pop_back();
  std::memcpy(b->data, p.l3 - p.l3_off, p.l3_off);  // Ethernet (+VLAN): MACs are set on send
  // The client's seq and ack: inside the server's window.
  write_tcp_rst(b->data + p.l3_off, static_cast<uint16_t>(rand64()), f.outside_ip, f.remote_ip,
                f.outside_port, f.remote_port, be::get32(p.l4 + 4), be::get32(p.l4 + 8),
                kTcpRst | kTcpAck);
  b->len = p.l3_off + 40;
  b->meta = {};
  released.push(Released{b, Result{Verdict::ToOutside, DropReason::Count, 0}});
  counters.add(Event::PolicyRejectsSent);
  return true;
}

// ICMP destination unreachable, administratively prohibited (type 3 code 13), to the sender.
bool Engine::Impl::build_admin_prohibited(PacketBuf& pkt, const Parsed& p) {
  const bool is_error =
      p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply;
  if (is_error || (p.fragment && !p.first_fragment)) return false;
  uint32_t orig = std::min<uint32_t>(p.ip_len, 576 - 28);
  if (pkt.cap < p.l3_off + 28 + orig) orig = pkt.cap > p.l3_off + 28 ? pkt.cap - p.l3_off - 28 : 0;
  if (orig < p.ihl + 8u) return false;
  uint8_t* ip = p.l3;
  std::memmove(ip + 28, ip, orig);
  write_ip_header(ip, static_cast<uint16_t>(28 + orig), static_cast<uint16_t>(rand64()), 64,
                  kProtoIcmp, icmp_src_net, p.src);
  uint8_t* icmp = ip + 20;
  icmp[0] = 3;
  icmp[1] = 13;
  store16(icmp + 2, 0);
  store32(icmp + 4, 0);
  store16(icmp + 2, csum::finish(csum::partial(icmp, 8 + orig)));
  swap_macs(pkt.data);
  pkt.len = p.l3_off + 28 + orig;
  return true;
}

}  // namespace eipgate::engine

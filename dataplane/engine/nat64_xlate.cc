// RFC 7915 header translation, in place (see nat64_xlate.h for the buffer layout).
#include "dataplane/engine/nat64_xlate.h"

#include <algorithm>
#include <cstring>

#include "common/byte_order.h"
#include "dataplane/engine/checksum.h"

namespace eipgate::engine::nat64 {

namespace {

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kIcmp4 = 1;
constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragment = 44;
constexpr uint8_t kDestOpts = 60;
constexpr uint32_t kIpv6MinMtu = 1280;
constexpr uint16_t kDfMaxSmall = 1260;  // RFC 7915 5.1: DF set only above this size

// Raw 16-bit words as stored (what the csum helpers add).
uint16_t raw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void put_raw16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
// The raw word a big-endian value is stored as.
uint16_t raw_of(uint16_t host) {
  uint8_t b[2];
  be::put16(b, host);
  return raw16(b);
}

uint32_t sum_addr4(uint32_t a) { return csum::words32(a); }
uint32_t sum_addr6(const uint8_t* a) { return csum::partial(a, 16); }
// IPv6 pseudo-header sum (RFC 8200 section 8.1): addresses, 32-bit length, next header.
uint32_t pseudo6(const uint8_t* src, const uint8_t* dst, uint32_t len, uint8_t nh) {
  return sum_addr6(src) + sum_addr6(dst) + raw_of(static_cast<uint16_t>(len >> 16)) +
         raw_of(static_cast<uint16_t>(len)) + raw_of(nh);
}

uint16_t l4_csum_off(uint8_t proto) { return proto == kTcp ? 16 : proto == kUdp ? 6 : 2; }

bool is_ext_unsupported(uint8_t nh) {
  // ESP, AH, Mobility, HIP, Shim6, experimental: not translated (RFC 7915 5.1 names only
  // Hop-by-Hop, Destination Options, Routing and Fragment).
  return nh == 50 || nh == 51 || nh == 135 || nh == 139 || nh == 140 || nh == 253 || nh == 254;
}

// Walks IPv6 extension headers from off (next header nh) up to end. On success off/nh point at the
// upper layer and frag_off at the Fragment header (0 when none).
Drop walk_ext(const uint8_t* l3, uint32_t end, uint32_t& off, uint8_t& nh, uint32_t& frag_off,
              bool outer) {
  frag_off = 0;
  for (int n = 0; n < 8; ++n) {
    switch (nh) {
      case kTcp:
      case kUdp:
      case kProtoIcmp6:
        return Drop::None;
      case kHopByHop:
        if (off != 40) return Drop::V6ExtHeaderUnsupported;  // only right after the header
        [[fallthrough]];
      case kDestOpts:
      case kRouting: {
        if (off + 8 > end) return Drop::V6ExtHeaderTruncated;
        const uint32_t hlen = (uint32_t{l3[off + 1]} + 1) * 8;
        if (off + hlen > end) return Drop::V6ExtHeaderTruncated;
        if (nh == kRouting && outer && l3[off + 3] != 0) return Drop::V6RoutingHeader;
        nh = l3[off];
        off += hlen;
        break;
      }
      case kFragment:
        if (off + 8 > end) return Drop::V6ExtHeaderTruncated;
        if (frag_off != 0) return Drop::V6FragmentHeaderBad;
        frag_off = off;
        nh = l3[off];
        off += 8;
        break;
      default:
        return is_ext_unsupported(nh) ? Drop::V6ExtHeaderUnsupported : Drop::UnsupportedProtocol;
    }
  }
  return Drop::V6ExtHeaderUnsupported;  // a chain this long is not worth translating
}

// Quoted IPv6 packet of an ICMPv6 error.
Drop parse_inner6(const uint8_t* l3, uint32_t at, uint32_t end, Info6& out) {
  if (end - at < 40) return Drop::IcmpErrorInnerTruncated;
  const uint8_t* ip = l3 + at;
  if ((ip[0] >> 4) != 6) return Drop::IcmpErrorInnerBad;
  uint32_t off = at + 40;
  uint8_t nh = ip[6];
  uint32_t frag_off = 0;
  // The quoted packet may be cut anywhere: walk within what is there, relative to its header.
  for (int n = 0; n < 8 && nh != kTcp && nh != kUdp && nh != kProtoIcmp6; ++n) {
    if (nh == kHopByHop || nh == kDestOpts || nh == kRouting) {
      if (off + 8 > end) return Drop::IcmpErrorInnerTruncated;
      const uint32_t hlen = (uint32_t{l3[off + 1]} + 1) * 8;
      if (off + hlen > end) return Drop::IcmpErrorInnerTruncated;
      nh = l3[off];
      off += hlen;
    } else if (nh == kFragment && frag_off == 0) {
      if (off + 8 > end) return Drop::IcmpErrorInnerTruncated;
      if ((be::get16(l3 + off + 2) >> 3) != 0) return Drop::IcmpErrorInnerBad;  // no ports
      frag_off = off;
      nh = l3[off];
      off += 8;
    } else {
      return Drop::IcmpErrorInnerBad;
    }
  }
  if (nh != kTcp && nh != kUdp && nh != kProtoIcmp6) return Drop::IcmpErrorInnerBad;
  if (end - off < 8) return Drop::IcmpErrorInnerTruncated;
  const uint8_t* l4 = l3 + off;
  Inner6& in = out.inner;
  std::memcpy(in.src.data(), ip + 8, 16);
  std::memcpy(in.dst.data(), ip + 24, 16);
  in.proto = nh;
  if (nh == kProtoIcmp6) {
    if (l4[0] < 128) return Drop::IcmpErrorNested;
    if (l4[0] != kIcmp6EchoRequest && l4[0] != kIcmp6EchoReply) return Drop::IcmpErrorInnerBad;
    const uint16_t id = raw16(l4 + 4);
    in.sport = l4[0] == kIcmp6EchoRequest ? id : 0;
    in.dport = l4[0] == kIcmp6EchoReply ? id : 0;
  } else {
    in.sport = raw16(l4);
    in.dport = raw16(l4 + 2);
  }
  out.inner_l3_off = static_cast<uint16_t>(at);
  out.inner_l4_off = static_cast<uint16_t>(off);
  out.inner_frag_off = static_cast<uint16_t>(frag_off);
  return Drop::None;
}

Drop parse_inner4(const uint8_t* l3, uint32_t at, uint32_t end, Info4& out) {
  if (end - at < 20) return Drop::IcmpErrorInnerTruncated;
  const uint8_t* ip = l3 + at;
  if ((ip[0] >> 4) != 4) return Drop::IcmpErrorInnerBad;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  if (ihl < 20) return Drop::IcmpErrorInnerBad;
  if (ihl > end - at) return Drop::IcmpErrorInnerTruncated;
  if ((be::get16(ip + 6) & 0x1fff) != 0) return Drop::IcmpErrorInnerBad;  // ports only in first
  const uint8_t proto = ip[9];
  if (proto != kTcp && proto != kUdp && proto != kIcmp4) return Drop::IcmpErrorInnerBad;
  if (end - at - ihl < 8) return Drop::IcmpErrorInnerTruncated;
  const uint8_t* l4 = ip + ihl;
  Inner4& in = out.inner;
  std::memcpy(&in.src, ip + 12, 4);
  std::memcpy(&in.dst, ip + 16, 4);
  in.proto = proto;
  if (proto == kIcmp4) {
    if (l4[0] == 3 || l4[0] == 11 || l4[0] == 12 || l4[0] == 4 || l4[0] == 5)
      return Drop::IcmpErrorNested;
    if (l4[0] != 8 && l4[0] != 0) return Drop::IcmpErrorInnerBad;
    const uint16_t id = raw16(l4 + 4);
    in.sport = l4[0] == 8 ? id : 0;
    in.dport = l4[0] == 0 ? id : 0;
  } else {
    in.sport = raw16(l4);
    in.dport = raw16(l4 + 2);
  }
  out.inner_l3_off = static_cast<uint16_t>(at);
  out.inner_l4_off = static_cast<uint16_t>(at + ihl);
  return Drop::None;
}

// IPv4 options: validated, ignored; an unexpired source route refuses the packet.
Drop check_options(const uint8_t* opt, uint32_t n) {
  uint32_t i = 0;
  while (i < n) {
    const uint8_t type = opt[i];
    if (type == 0) return Drop::None;
    if (type == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return Drop::V4BadOptions;
    const uint8_t len = opt[i + 1];
    if (len < 2 || i + len > n) return Drop::V4BadOptions;
    if (type == 131 || type == 137) {  // LSRR, SSRR: pointer (1-based) within the route
      if (len < 3) return Drop::V4BadOptions;
      if (opt[i + 2] <= len) return Drop::V4SourceRoute;
    }
    i += len;
  }
  return Drop::None;
}

// Writes a 20-byte IPv4 header (no options) with a full checksum.
void write_ipv4(uint8_t* h, uint8_t tos, uint16_t total, uint16_t id_raw, uint16_t frag_host,
                uint8_t ttl, uint8_t proto, uint32_t src, uint32_t dst) {
  h[0] = 0x45;
  h[1] = tos;
  be::put16(h + 2, total);
  put_raw16(h + 4, id_raw);
  be::put16(h + 6, frag_host);
  h[8] = ttl;
  h[9] = proto;
  h[10] = h[11] = 0;
  std::memcpy(h + 12, &src, 4);
  std::memcpy(h + 16, &dst, 4);
  put_raw16(h + 10, csum::finish(csum::partial(h, 20)));
}

void write_ipv6(uint8_t* h, uint8_t tclass, uint16_t plen, uint8_t nh, uint8_t hop,
                const uint8_t* src, const uint8_t* dst) {
  h[0] = static_cast<uint8_t>(0x60 | (tclass >> 4));
  h[1] = static_cast<uint8_t>(tclass << 4);  // flow label 0
  h[2] = h[3] = 0;
  be::put16(h + 4, plen);
  h[6] = nh;
  h[7] = hop;
  std::memcpy(h + 8, src, 16);
  std::memcpy(h + 24, dst, 16);
}

void write_frag6(uint8_t* f, uint8_t nh, uint16_t offset_units, bool mf, uint16_t id_raw) {
  f[0] = nh;
  f[1] = 0;
  be::put16(f + 2, static_cast<uint16_t>((offset_units << 3) | (mf ? 1 : 0)));
  f[4] = f[5] = 0;
  put_raw16(f + 6, id_raw);
}

uint8_t tclass_of(const uint8_t* ip6) {
  return static_cast<uint8_t>(((ip6[0] & 0x0f) << 4) | (ip6[1] >> 4));
}

// Rewrites the transport header of a TCP/UDP/ICMP-echo packet for IPv6 -> IPv4: ports (echo id),
// ICMP type, checksum by the difference of the sums before and after. avail: bytes of L4 present
// (a quoted packet may lack the checksum). ul_len: the upper-layer length for the ICMPv6
// pseudo-header.
void l4_6to4(uint8_t* l4, uint32_t avail, uint8_t proto, const uint8_t* src6, const uint8_t* dst6,
             uint32_t ul_len, uint32_t src4, uint32_t dst4, uint16_t sport, uint16_t dport) {
  uint32_t old_sum = 0, new_sum = 0;
  if (proto == kProtoIcmp6) {
    const bool req = l4[0] == kIcmp6EchoRequest;
    old_sum = pseudo6(src6, dst6, ul_len, kProtoIcmp6) + raw16(l4) + raw16(l4 + 4);
    l4[0] = req ? 8 : 0;
    put_raw16(l4 + 4, req ? sport : dport);
    new_sum = raw16(l4) + raw16(l4 + 4);
  } else {
    old_sum = sum_addr6(src6) + sum_addr6(dst6) + raw16(l4) + raw16(l4 + 2);
    put_raw16(l4, sport);
    put_raw16(l4 + 2, dport);
    new_sum = sum_addr4(src4) + sum_addr4(dst4) + sport + dport;
  }
  const uint16_t co = l4_csum_off(proto);
  if (avail < co + 2u) return;
  const uint16_t c = raw16(l4 + co);
  if (proto == kUdp && c == 0) return;  // only in a quoted packet: leave it
  const uint16_t n = csum::apply(c, csum::delta_sums(old_sum, new_sum));
  put_raw16(l4 + co, (proto == kUdp && n == 0) ? 0xffff : n);
}

// IPv4 -> IPv6 counterpart. Returns false for a UDP zero checksum (the caller computes it).
bool l4_4to6(uint8_t* l4, uint32_t avail, uint8_t proto, uint32_t src4, uint32_t dst4,
             const uint8_t* src6, const uint8_t* dst6, uint32_t ul_len, uint16_t sport,
             uint16_t dport) {
  uint32_t old_sum = 0, new_sum = 0;
  if (proto == kIcmp4) {
    const bool req = l4[0] == 8;
    old_sum = raw16(l4) + raw16(l4 + 4);
    l4[0] = req ? kIcmp6EchoRequest : kIcmp6EchoReply;
    put_raw16(l4 + 4, req ? sport : dport);
    new_sum = pseudo6(src6, dst6, ul_len, kProtoIcmp6) + raw16(l4) + raw16(l4 + 4);
  } else {
    old_sum = sum_addr4(src4) + sum_addr4(dst4) + raw16(l4) + raw16(l4 + 2);
    put_raw16(l4, sport);
    put_raw16(l4 + 2, dport);
    new_sum = sum_addr6(src6) + sum_addr6(dst6) + sport + dport;
  }
  const uint16_t co = l4_csum_off(proto);
  if (avail < co + 2u) return true;
  const uint16_t c = raw16(l4 + co);
  if (proto == kUdp && c == 0) return false;
  const uint16_t n = csum::apply(c, csum::delta_sums(old_sum, new_sum));
  put_raw16(l4 + co, (proto == kUdp && n == 0) ? 0xffff : n);
  return true;
}

}  // namespace

Drop parse6(const uint8_t* l3, uint32_t len, Info6& out) {
  if (len < 40) return Drop::V6TooShort;
  if ((l3[0] >> 4) != 6) return Drop::V6BadVersion;
  const uint32_t plen = be::get16(l3 + 4);
  if (plen == 0 || 40 + plen > len) return Drop::V6BadPayloadLength;  // jumbograms included
  const uint32_t end = 40 + plen;
  uint32_t off = 40;
  uint8_t nh = l3[6];
  uint32_t frag_off = 0;
  if (Drop d = walk_ext(l3, end, off, nh, frag_off, true); d != Drop::None) return d;
  std::memcpy(out.src.data(), l3 + 8, 16);
  std::memcpy(out.dst.data(), l3 + 24, 16);
  out.hop_limit = l3[7];
  out.tclass = tclass_of(l3);
  out.proto = nh;
  out.l4_off = static_cast<uint16_t>(off);
  out.l4_len = static_cast<uint16_t>(end - off);
  if (out.l4_len > 0xffff - 20) return Drop::V6BadPayloadLength;  // IPv4 total length overflow
  out.has_frag = frag_off != 0;
  out.mf = false;
  out.frag_offset = 0;
  out.frag_id = 0;
  out.sport = out.dport = 0;
  out.icmp_type = out.icmp_code = 0;
  if (out.has_frag) {
    const uint16_t fo = be::get16(l3 + frag_off + 2);
    out.frag_offset = static_cast<uint16_t>(fo >> 3);
    out.mf = (fo & 1) != 0;
    std::memcpy(&out.frag_id, l3 + frag_off + 4, 4);
    // The ICMPv6 checksum covers a pseudo-header with the whole message's length: unknown for a
    // fragment, so it cannot be translated without reassembly.
    if (nh == kProtoIcmp6 && (out.mf || out.frag_offset != 0)) return Drop::IcmpFragmented;
    if (out.frag_offset != 0) {
      out.kind = L4Kind::Fragment;
      return Drop::None;
    }
  }
  const uint8_t* l4 = l3 + off;
  const uint32_t l4len = out.l4_len;
  switch (nh) {
    case kTcp: {
      if (l4len < 20) return Drop::L4Truncated;
      const uint32_t doff = (l4[12] >> 4) * 4u;
      if (doff < 20 || doff > l4len) return Drop::TcpBadDataOffset;
      out.kind = L4Kind::Tcp;
      out.sport = raw16(l4);
      out.dport = raw16(l4 + 2);
      return Drop::None;
    }
    case kUdp:
      if (l4len < 8) return Drop::L4Truncated;
      if (raw16(l4 + 6) == 0) return Drop::UdpZeroChecksumV6;  // invalid in IPv6
      out.kind = L4Kind::Udp;
      out.sport = raw16(l4);
      out.dport = raw16(l4 + 2);
      return Drop::None;
    default: {  // ICMPv6
      if (l4len < 8) return Drop::L4Truncated;
      out.icmp_type = l4[0];
      out.icmp_code = l4[1];
      if (l4[0] == kIcmp6EchoRequest || l4[0] == kIcmp6EchoReply) {
        out.kind = L4Kind::IcmpEcho;
        const uint16_t id = raw16(l4 + 4);
        out.sport = l4[0] == kIcmp6EchoRequest ? id : 0;
        out.dport = l4[0] == kIcmp6EchoReply ? id : 0;
        return Drop::None;
      }
      if (l4[0] >= 128) return Drop::IcmpTypeUntranslatable;  // MLD, ND, unknown informational
      if (!map_icmp6_error(l4[0], l4[1]).ok) return Drop::IcmpErrorUnmapped;
      if (l4[0] == 4 && l4[1] == 0 && map_pointer_6to4(be::get32(l4 + 4)) < 0) {
        return Drop::IcmpPointerUnmapped;
      }
      out.kind = L4Kind::IcmpError;
      return parse_inner6(l3, off + 8, end, out);
    }
  }
}

Drop parse4(const uint8_t* l3, uint32_t len, Info4& out) {
  if (len < 20) return Drop::V4TooShort;
  if ((l3[0] >> 4) != 4) return Drop::V4BadVersion;
  const uint32_t ihl = (l3[0] & 0x0fu) * 4;
  if (ihl < 20) return Drop::V4BadIhl;
  const uint32_t total = be::get16(l3 + 2);
  if (total < ihl || total > len) return Drop::V4BadTotalLength;
  if (ihl > 20) {
    if (Drop d = check_options(l3 + 20, ihl - 20); d != Drop::None) return d;
  }
  out.ihl = static_cast<uint16_t>(ihl);
  out.total_len = static_cast<uint16_t>(total);
  out.tos = l3[1];
  out.ttl = l3[8];
  out.proto = l3[9];
  std::memcpy(&out.src, l3 + 12, 4);
  std::memcpy(&out.dst, l3 + 16, 4);
  std::memcpy(&out.frag_id, l3 + 4, 2);
  const uint16_t fl = be::get16(l3 + 6);
  out.df = (fl & 0x4000) != 0;
  out.mf = (fl & 0x2000) != 0;
  out.frag_offset = fl & 0x1fff;
  out.sport = out.dport = 0;
  out.icmp_type = out.icmp_code = 0;
  const uint8_t proto = out.proto;
  if (proto != kTcp && proto != kUdp && proto != kIcmp4) return Drop::UnsupportedProtocol;
  const bool frag = out.mf || out.frag_offset != 0;
  // Without reassembly the ICMPv6 pseudo-header length of a fragmented message is unknown.
  if (proto == kIcmp4 && frag) return Drop::IcmpFragmented;
  if (out.frag_offset != 0) {
    out.kind = L4Kind::Fragment;
    return Drop::None;
  }
  const uint8_t* l4 = l3 + ihl;
  const uint32_t l4len = total - ihl;
  switch (proto) {
    case kTcp: {
      if (l4len < 20) return Drop::L4Truncated;
      const uint32_t doff = (l4[12] >> 4) * 4u;
      if (doff < 20 || doff > l4len) return Drop::TcpBadDataOffset;
      out.kind = L4Kind::Tcp;
      break;
    }
    case kUdp:
      if (l4len < 8) return Drop::L4Truncated;
      // RFC 7915 4.5: a zero checksum can be computed for a whole datagram, not for a fragment.
      if (frag && raw16(l4 + 6) == 0) return Drop::UdpZeroChecksumFragment;
      out.kind = L4Kind::Udp;
      break;
    default: {
      if (l4len < 8) return Drop::L4Truncated;
      out.icmp_type = l4[0];
      out.icmp_code = l4[1];
      if (l4[0] == 8 || l4[0] == 0) {
        out.kind = L4Kind::IcmpEcho;
        const uint16_t id = raw16(l4 + 4);
        out.sport = l4[0] == 8 ? id : 0;
        out.dport = l4[0] == 0 ? id : 0;
        return Drop::None;
      }
      if (l4[0] != 3 && l4[0] != 11 && l4[0] != 12) return Drop::IcmpTypeUntranslatable;
      if (!map_icmp4_error(l4[0], l4[1]).ok) return Drop::IcmpErrorUnmapped;
      if (l4[0] == 12 && map_pointer_4to6(l4[4]) < 0) return Drop::IcmpPointerUnmapped;
      out.kind = L4Kind::IcmpError;
      return parse_inner4(l3, ihl + 8, total, out);
    }
  }
  out.sport = raw16(l4);
  out.dport = raw16(l4 + 2);
  return Drop::None;
}

Drop xlate_6to4(uint8_t* l3, uint32_t len, const Info6& in, const To4& to, const Config& cfg,
                Output& out) {
  (void)len;
  if (in.hop_limit <= 1) return Drop::HopLimitExceeded;
  uint8_t* l4 = l3 + in.l4_off;
  const uint8_t proto4 = in.proto == kProtoIcmp6 ? kIcmp4 : in.proto;
  out.udp_checksum_computed = false;
  if (in.kind != L4Kind::IcmpError) {
    if (in.kind != L4Kind::Fragment) {
      l4_6to4(l4, in.l4_len, in.proto, in.src.data(), in.dst.data(), in.l4_len, to.src, to.dst,
              to.sport, to.dport);
    }
    const uint16_t total = static_cast<uint16_t>(20 + in.l4_len);
    uint16_t id = to.ip_id;
    uint16_t frag = 0;
    if (in.has_frag) {  // RFC 7915 5.1.1: low-order 16 bits of the id, offset and M; DF clear
      std::memcpy(&id, reinterpret_cast<const uint8_t*>(&in.frag_id) + 2, 2);
      frag = static_cast<uint16_t>(in.frag_offset | (in.mf ? 0x2000 : 0));
    } else if (total > kDfMaxSmall) {
      frag = 0x4000;
    }
    uint8_t* h = l4 - 20;
    write_ipv4(h, in.tclass, total, id, frag, static_cast<uint8_t>(in.hop_limit - 1), proto4,
               to.src, to.dst);
    out.l3 = h;
    out.len = total;
    out.exceeds_mtu = total > cfg.ipv4_mtu;
    out.fragment_needed = false;
    return Drop::None;
  }
  // ICMPv6 error -> ICMPv4 error: read everything first, then write back to front, anchored at
  // the quoted packet's transport header (which stays where it is).
  const IcmpMap m = map_icmp6_error(in.icmp_type, in.icmp_code);
  const uint32_t param = be::get32(l4 + 4);
  uint8_t rest[4] = {0, 0, 0, 0};
  if (in.icmp_type == 2) {
    be::put16(rest + 2, mtu_6to4(param, in.inner_frag_off != 0, cfg));
  } else if (in.icmp_type == 4 && in.icmp_code == 0) {
    rest[0] = static_cast<uint8_t>(map_pointer_6to4(param));
  }
  const uint8_t* ip6 = l3 + in.inner_l3_off;
  uint8_t* il4 = l3 + in.inner_l4_off;
  const uint32_t end = in.l4_off + in.l4_len;
  const uint32_t avail = end - in.inner_l4_off;
  const uint8_t itclass = tclass_of(ip6);
  const uint8_t ihop = ip6[7];
  const uint32_t iplen = be::get16(ip6 + 4);
  const uint32_t iext = in.inner_l4_off - in.inner_l3_off - 40u;
  const uint32_t iul = iplen > iext ? iplen - iext : 0;  // quoted upper-layer length
  uint16_t iid = 0;
  uint16_t ifrag = 0;
  if (in.inner_frag_off != 0) {
    std::memcpy(&iid, l3 + in.inner_frag_off + 6, 2);
    ifrag = (be::get16(l3 + in.inner_frag_off + 2) & 1) ? 0x2000 : 0;
  }
  const Inner6& q = in.inner;
  l4_6to4(il4, avail, q.proto, q.src.data(), q.dst.data(), iul, to.inner.src, to.inner.dst,
          to.inner.sport, to.inner.dport);
  const uint16_t itotal = static_cast<uint16_t>(std::min<uint32_t>(20 + iul, 0xffff));
  if (in.inner_frag_off == 0 && itotal > kDfMaxSmall) ifrag = 0x4000;
  write_ipv4(il4 - 20, itclass, itotal, iid, ifrag, ihop, q.proto == kProtoIcmp6 ? kIcmp4 : q.proto,
             to.inner.src, to.inner.dst);
  uint8_t* icmp = il4 - 28;
  icmp[0] = m.type;
  icmp[1] = m.code;
  icmp[2] = icmp[3] = 0;
  std::memcpy(icmp + 4, rest, 4);
  put_raw16(icmp + 2, csum::finish(csum::partial(icmp, 28 + avail)));
  const uint16_t total = static_cast<uint16_t>(48 + avail);
  write_ipv4(il4 - 48, in.tclass, total, to.ip_id, total > kDfMaxSmall ? 0x4000 : 0,
             static_cast<uint8_t>(in.hop_limit - 1), kIcmp4, to.src, to.dst);
  out.l3 = il4 - 48;
  out.len = total;
  out.exceeds_mtu = total > cfg.ipv4_mtu;
  out.fragment_needed = false;
  return Drop::None;
}

Drop xlate_4to6(uint8_t* l3, uint32_t len, uint32_t headroom, const Info4& in, const To6& to,
                const Config& cfg, Output& out) {
  (void)len;
  if (in.ttl <= 1) return Drop::HopLimitExceeded;
  uint8_t* l4 = l3 + in.ihl;
  const uint32_t l4len = in.total_len - in.ihl;
  const uint8_t proto6 = in.proto == kIcmp4 ? kProtoIcmp6 : in.proto;
  out.udp_checksum_computed = false;
  if (in.kind != L4Kind::IcmpError) {
    const bool frag = in.mf || in.frag_offset != 0;
    const uint32_t hdr = 40 + (frag ? 8u : 0u);
    if (hdr > in.ihl + headroom) return Drop::NoHeadroom;
    if (in.kind != L4Kind::Fragment) {
      if (!l4_4to6(l4, l4len, in.proto, in.src, in.dst, to.src.data(), to.dst.data(), l4len,
                   to.sport, to.dport)) {
        // Unfragmented UDP with checksum 0: compute it (RFC 7915 4.5).
        const uint16_t c = csum::finish(pseudo6(to.src.data(), to.dst.data(), l4len, kUdp) +
                                        csum::partial(l4, l4len));
        put_raw16(l4 + 6, c == 0 ? 0xffff : c);
        out.udp_checksum_computed = true;
      }
    }
    uint8_t* h = l4 - hdr;
    write_ipv6(h, in.tos, static_cast<uint16_t>(l4len + (frag ? 8 : 0)), frag ? kFragment : proto6,
               static_cast<uint8_t>(in.ttl - 1), to.src.data(), to.dst.data());
    if (frag) write_frag6(h + 40, proto6, in.frag_offset, in.mf, in.frag_id);
    out.l3 = h;
    out.len = hdr + l4len;
    out.fragment_needed = !in.df && out.len > kIpv6MinMtu;
    out.exceeds_mtu = !out.fragment_needed && out.len > cfg.ipv6_mtu;
    return Drop::None;
  }
  // ICMPv4 error -> ICMPv6 error, anchored at the quoted transport header.
  const IcmpMap m = map_icmp4_error(in.icmp_type, in.icmp_code);
  const uint8_t* ip4 = l3 + in.inner_l3_off;
  uint8_t* il4 = l3 + in.inner_l4_off;
  uint32_t avail = in.total_len - in.inner_l4_off;
  uint8_t rest[4] = {0, 0, 0, 0};
  if (m.type == 2) {
    be::put32(rest, mtu_4to6(be::get16(l4 + 6), be::get16(ip4 + 2), cfg));
  } else if (m.type == 4) {
    be::put32(rest, m.code == 1 ? 6u : static_cast<uint32_t>(map_pointer_4to6(l4[4])));
  }
  const uint8_t itos = ip4[1];
  const uint8_t ittl = ip4[8];
  const uint16_t iid = raw16(ip4 + 4);
  const uint16_t ifl = be::get16(ip4 + 6);
  const bool imf = (ifl & 0x2000) != 0;
  const uint32_t iihl = in.inner_l4_off - in.inner_l3_off;
  const uint32_t itotal = be::get16(ip4 + 2);
  const uint32_t iul = itotal > iihl ? itotal - iihl : 0;
  const Inner4& q = in.inner;
  const uint8_t iproto6 = q.proto == kIcmp4 ? kProtoIcmp6 : q.proto;
  l4_4to6(il4, avail, q.proto, q.src, q.dst, to.inner.src.data(), to.inner.dst.data(), iul,
          to.inner.sport, to.inner.dport);  // a quoted UDP zero checksum stays zero
  const uint32_t ifr = imf ? 8 : 0;
  const uint32_t grow = 40 + 8 + 40 + ifr;
  if (grow > in.inner_l4_off + headroom) return Drop::NoHeadroom;
  uint8_t* start = il4 - grow;
  if (grow + avail > kIpv6MinMtu) avail = kIpv6MinMtu - grow;  // ICMPv6 errors fit 1280 bytes
  uint8_t* ih = il4 - 40 - ifr;
  write_ipv6(ih, itos, static_cast<uint16_t>(std::min<uint32_t>(iul + ifr, 0xffff)),
             imf ? kFragment : iproto6, ittl, to.inner.src.data(), to.inner.dst.data());
  if (imf) write_frag6(ih + 40, iproto6, 0, true, iid);
  uint8_t* icmp = ih - 8;
  icmp[0] = m.type;
  icmp[1] = m.code;
  icmp[2] = icmp[3] = 0;
  std::memcpy(icmp + 4, rest, 4);
  const uint32_t plen = 8 + 40 + ifr + avail;
  put_raw16(icmp + 2, csum::finish(pseudo6(to.src.data(), to.dst.data(), plen, kProtoIcmp6) +
                                   csum::partial(icmp, plen)));
  write_ipv6(start, in.tos, static_cast<uint16_t>(plen), kProtoIcmp6,
             static_cast<uint8_t>(in.ttl - 1), to.src.data(), to.dst.data());
  out.l3 = start;
  out.len = 40 + plen;
  out.exceeds_mtu = out.len > cfg.ipv6_mtu;
  out.fragment_needed = false;
  return Drop::None;
}

uint32_t fragment6(const uint8_t* pkt, uint32_t len, uint32_t mtu, uint16_t ipv4_id,
                   uint8_t* const* bufs, uint32_t cap, uint32_t nbufs, uint32_t* lens) {
  if (len < 40 || (pkt[0] >> 4) != 6 || 40u + be::get16(pkt + 4) != len) return 0;
  uint8_t upper = pkt[6];
  uint16_t base = 0;  // offset of the first byte, 8-byte units
  bool last_m = false;
  uint8_t id[4] = {0, 0, 0, 0};
  std::memcpy(id + 2, &ipv4_id, 2);
  uint32_t hdr = 40;
  if (upper == kFragment) {
    if (len < 48) return 0;
    upper = pkt[40];
    const uint16_t fo = be::get16(pkt + 42);
    base = static_cast<uint16_t>(fo >> 3);
    last_m = (fo & 1) != 0;
    std::memcpy(id, pkt + 44, 4);
    hdr = 48;
  }
  const uint32_t chunk = ((std::max(mtu, kIpv6MinMtu) - 48) / 8) * 8;
  const uint32_t data = len - hdr;
  const uint32_t n = data == 0 ? 1 : (data + chunk - 1) / chunk;
  if (n > nbufs || cap < 48 + std::min(chunk, data)) return 0;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t at = k * chunk;
    const uint32_t piece = std::min(chunk, data - at);
    uint8_t* b = bufs[k];
    std::memcpy(b, pkt, 40);
    be::put16(b + 4, static_cast<uint16_t>(8 + piece));
    b[6] = kFragment;
    b[40] = upper;
    b[41] = 0;
    be::put16(b + 42,
              static_cast<uint16_t>(((base + at / 8) << 3) | ((k + 1 < n || last_m) ? 1 : 0)));
    std::memcpy(b + 44, id, 4);
    std::memcpy(b + 48, pkt + hdr + at, piece);
    lens[k] = 48 + piece;
  }
  return n;
}

}  // namespace eipgate::engine::nat64

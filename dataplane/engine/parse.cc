// Parser: Ethernet/VLAN -> IPv4 (+options) -> TCP/UDP/ICMP, bounds-checked at every step.
#include "dataplane/engine/parse.h"

#include <cstring>

namespace eipgate::engine {

namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthArp = 0x0806;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEthVlan = 0x8100;
constexpr uint16_t kEthQinQ = 0x88a8;

uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

bool options_ok(const uint8_t* opt, uint32_t n) {
  uint32_t i = 0;
  while (i < n) {
    const uint8_t type = opt[i];
    if (type == 0) return true;  // end of option list; rest is padding
    if (type == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return false;
    const uint8_t len = opt[i + 1];
    if (len < 2 || i + len > n) return false;
    i += len;
  }
  return true;
}

IcmpKind icmp_kind(uint8_t type) {
  switch (type) {
    case kIcmpEchoRequest:
      return IcmpKind::EchoRequest;
    case kIcmpEchoReply:
      return IcmpKind::EchoReply;
    case kIcmpDestUnreach:
    case kIcmpTimeExceeded:
    case kIcmpParamProblem:
      return IcmpKind::Error;
    default:
      return IcmpKind::Other;
  }
}

// Extracts ports (or the echo id) from an L4 header with at least 8 bytes.
void l4_ports(uint8_t proto, IcmpKind icmp, const uint8_t* l4, uint16_t& sport, uint16_t& dport) {
  if (proto == kProtoIcmp) {
    uint16_t id;
    std::memcpy(&id, l4 + 4, 2);
    sport = icmp == IcmpKind::EchoRequest ? id : 0;
    dport = icmp == IcmpKind::EchoReply ? id : 0;
  } else {
    std::memcpy(&sport, l4, 2);
    std::memcpy(&dport, l4 + 2, 2);
  }
}

}  // namespace

L3Kind parse(const PacketBuf& pkt, Parsed& out) {
  // Reset only what later code reads before this parse sets it (no full re-initialisation).
  out.l4 = nullptr;
  out.sport = out.dport = 0;
  out.tcp_flags = 0;
  out.icmp_type = 0;
  out.icmp = IcmpKind::None;
  out.fragment = out.first_fragment = false;
  const uint8_t* d = pkt.data;
  const uint32_t len = pkt.len;
  // Fast path for the bulk of traffic: untagged IPv4 without options, not a fragment, TCP or UDP
  // with a complete header. Anything else, valid or not, takes the general path below.
  if (len >= 34 && d[12] == 0x08 && d[13] == 0x00 && d[14] == 0x45) {
    uint8_t* ip = pkt.data + 14;
    const uint16_t tot = load_be16(ip + 2);
    const uint8_t proto = ip[9];
    const bool frag = (load_be16(ip + 6) & 0x3fff) != 0;
    uint8_t* l4 = ip + 20;
    bool ok = false;
    if (!frag && tot <= len - 14) {
      if (proto == kProtoTcp && tot >= 40) {  // the TCP header is inside the buffer
        const uint16_t doff = static_cast<uint16_t>((l4[12] >> 4) * 4);
        ok = doff >= 20 && doff <= tot - 20;
      } else if (proto == kProtoUdp) {
        ok = tot >= 28;
      }
    }
    if (ok) {
      out.l3 = ip;
      out.l4 = l4;
      out.l3_off = 14;
      out.ihl = 20;
      out.ip_len = tot;
      out.ttl = ip[8];
      out.proto = proto;
      std::memcpy(&out.frag_id, ip + 4, 2);
      std::memcpy(&out.src, ip + 12, 4);
      std::memcpy(&out.dst, ip + 16, 4);
      std::memcpy(&out.sport, l4, 2);
      std::memcpy(&out.dport, l4 + 2, 2);
      if (proto == kProtoTcp) out.tcp_flags = l4[13];
      return L3Kind::Ipv4;
    }
  }
  auto fail = [&out](DropReason r) {
    out.reason = r;
    return L3Kind::Drop;
  };
  if (len < 14) return fail(DropReason::TooShort);
  uint32_t off = 12;
  uint16_t et = load_be16(d + off);
  for (int tags = 0; (et == kEthVlan || et == kEthQinQ) && tags < 2; ++tags) {
    off += 4;
    if (len < off + 2) return fail(DropReason::TooShort);
    et = load_be16(d + off);
  }
  off += 2;
  if (et == kEthArp) return L3Kind::Arp;
  if (et == kEthIpv6) return fail(DropReason::Ipv6Unsupported);
  if (et != kEthIpv4) return fail(DropReason::UnsupportedEthertype);

  if (len < off + 20) return fail(DropReason::TooShort);
  uint8_t* ip = pkt.data + off;
  if ((ip[0] >> 4) != 4) return fail(DropReason::IpBadVersion);
  const uint16_t ihl = static_cast<uint16_t>((ip[0] & 0x0f) * 4);
  if (ihl < 20) return fail(DropReason::IpBadIhl);
  const uint16_t tot = load_be16(ip + 2);
  if (tot < ihl || off + tot > len) return fail(DropReason::IpBadTotalLength);
  if (ihl > 20 && !options_ok(ip + 20, ihl - 20u)) return fail(DropReason::IpBadOptions);

  out.l3 = ip;
  out.l3_off = off;
  out.ihl = ihl;
  out.ip_len = tot;
  out.ttl = ip[8];
  out.proto = ip[9];
  std::memcpy(&out.frag_id, ip + 4, 2);
  std::memcpy(&out.src, ip + 12, 4);
  std::memcpy(&out.dst, ip + 16, 4);
  const uint16_t frag = load_be16(ip + 6);
  const uint16_t frag_off = static_cast<uint16_t>((frag & 0x1fff) * 8);
  const bool mf = (frag & 0x2000) != 0;
  out.fragment = mf || frag_off != 0;
  out.first_fragment = out.fragment && frag_off == 0;

  if (out.proto != kProtoTcp && out.proto != kProtoUdp && out.proto != kProtoIcmp) {
    return L3Kind::Ipv4;  // the engine decides (host traffic or unsupported)
  }
  if (out.fragment && !out.first_fragment) return L3Kind::Ipv4;  // no L4 header here

  const uint16_t l4len = out.l4_len();
  uint8_t* l4 = ip + ihl;
  const DropReason short_reason =
      out.first_fragment ? DropReason::FragFirstTooShort : DropReason::L4Truncated;
  switch (out.proto) {
    case kProtoTcp: {
      if (l4len < 20) return fail(short_reason);
      const uint16_t doff = static_cast<uint16_t>((l4[12] >> 4) * 4);
      if (doff < 20 || doff > l4len) return fail(DropReason::TcpBadDataOffset);
      out.tcp_flags = l4[13];
      break;
    }
    case kProtoUdp:
      if (l4len < 8) return fail(short_reason);
      break;
    default:  // ICMP
      if (l4len < 8) return fail(short_reason);
      out.icmp_type = l4[0];
      out.icmp = icmp_kind(l4[0]);
      break;
  }
  out.l4 = l4;
  l4_ports(out.proto, out.icmp, l4, out.sport, out.dport);
  return L3Kind::Ipv4;
}

bool parse_inner(uint8_t* p, uint32_t avail, InnerParsed& out) {
  if (avail < 20) {
    out.reason = DropReason::IcmpErrorInnerTruncated;
    return false;
  }
  if ((p[0] >> 4) != 4) {
    out.reason = DropReason::IcmpErrorInnerBad;
    return false;
  }
  const uint16_t ihl = static_cast<uint16_t>((p[0] & 0x0f) * 4);
  if (ihl < 20 || ihl > avail) {
    out.reason = ihl < 20 ? DropReason::IcmpErrorInnerBad : DropReason::IcmpErrorInnerTruncated;
    return false;
  }
  if ((load_be16(p + 6) & 0x1fff) != 0) {  // ports only exist in a first fragment
    out.reason = DropReason::IcmpErrorInnerBad;
    return false;
  }
  out.l3 = p;
  out.ihl = ihl;
  out.proto = p[9];
  std::memcpy(&out.src, p + 12, 4);
  std::memcpy(&out.dst, p + 16, 4);
  if (out.proto != kProtoTcp && out.proto != kProtoUdp && out.proto != kProtoIcmp) {
    out.reason = DropReason::IcmpErrorInnerBad;
    return false;
  }
  const uint32_t l4avail = avail - ihl;
  if (l4avail < 8) {  // RFC 792: at least 64 bits of the original datagram
    out.reason = DropReason::IcmpErrorInnerTruncated;
    return false;
  }
  out.l4 = p + ihl;
  out.avail_l4 = static_cast<uint16_t>(l4avail > 0xffff ? 0xffff : l4avail);
  if (out.proto == kProtoIcmp) {
    out.icmp = icmp_kind(out.l4[0]);
    if (out.icmp == IcmpKind::Error) {
      out.reason = DropReason::IcmpErrorNested;  // never translate an error about an error
      return false;
    }
    if (out.icmp != IcmpKind::EchoRequest && out.icmp != IcmpKind::EchoReply) {
      out.reason = DropReason::IcmpErrorInnerBad;
      return false;
    }
  }
  l4_ports(out.proto, out.icmp, out.l4, out.sport, out.dport);
  return true;
}

}  // namespace eipgate::engine

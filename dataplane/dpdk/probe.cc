// Egress probe frames; see probe.h.
#include "dataplane/dpdk/probe.h"

#include <cstring>

#include "common/byte_order.h"

namespace eipgate::dataplane {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;

// RFC 1071 sum of big-endian 16-bit words.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += be::get16(p + i);
  if (n % 2) acc += uint32_t{p[n - 1]} << 8;
  return acc;
}
uint16_t finish(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// Offset of the IPv4 header after up to one VLAN tag, or 0.
size_t ipv4_at(const uint8_t* f, size_t len) {
  if (len < 14) return 0;
  size_t off = 12;
  uint16_t type = be::get16(f + off);
  if (type == 0x8100) {
    if (len < 18) return 0;
    off += 4;
    type = be::get16(f + off);
  }
  return type == 0x0800 ? off + 2 : 0;
}

}  // namespace

std::string_view probe_answer_name(ProbeAnswer a) {
  switch (a) {
    case ProbeAnswer::SynAck:
      return "syn-ack";
    case ProbeAnswer::Rst:
      return "rst";
    case ProbeAnswer::Unreachable:
      return "unreachable";
    case ProbeAnswer::None:
      break;
  }
  return "none";
}

size_t build_probe_frame(const ProbeFrame& f, uint8_t* out) {
  std::memset(out, 0, kProbeFrameLen);
  std::memcpy(out, f.dst_mac.data(), 6);
  std::memcpy(out + 6, f.src_mac.data(), 6);
  be::put16(out + 12, 0x0800);
  uint8_t* ip = out + 14;
  ip[0] = 0x45;
  be::put16(ip + 2, 40);                                      // total length: 20 + 20
  be::put16(ip + 4, static_cast<uint16_t>(f.sport ^ f.seq));  // identification
  be::put16(ip + 6, 0x4000);                                  // DF
  ip[8] = 64;
  ip[9] = kProtoTcp;
  be::put32(ip + 12, f.src);
  be::put32(ip + 16, f.dst);
  be::put16(ip + 10, finish(sum16(ip, 20)));
  uint8_t* tcp = ip + 20;
  be::put16(tcp, f.sport);
  be::put16(tcp + 2, f.dport);
  be::put32(tcp + 4, f.seq);
  be::put32(tcp + 8, f.ack);
  tcp[12] = 5 << 4;
  tcp[13] = f.flags;
  be::put16(tcp + 14, (f.flags & kTcpRst) ? 0 : 64240);
  uint32_t pseudo = sum16(ip + 12, 8);
  pseudo += kProtoTcp;
  pseudo += 20;
  be::put16(tcp + 16, finish(sum16(tcp, 20, pseudo)));
  return kProbeFrameLen;
}

std::optional<ProbeReply> parse_probe_reply(const uint8_t* f, size_t len, uint32_t probe_src) {
  const size_t ip = ipv4_at(f, len);
  if (ip == 0 || len < ip + 20 || (f[ip] >> 4) != 4) return std::nullopt;
  const size_t ihl = size_t{f[ip] & 0x0fu} * 4;
  if (ihl < 20 || len < ip + ihl) return std::nullopt;
  if (be::get32(f + ip + 16) != probe_src) return std::nullopt;
  if ((be::get16(f + ip + 6) & 0x1fff) != 0) return std::nullopt;  // a later fragment
  const size_t l4 = ip + ihl;
  ProbeReply r;
  if (f[ip + 9] == kProtoTcp) {
    if (len < l4 + 20) return std::nullopt;
    const uint8_t flags = f[l4 + 13];
    r.remote = be::get32(f + ip + 12);
    r.remote_port = be::get16(f + l4);
    r.local_port = be::get16(f + l4 + 2);
    r.seq = be::get32(f + l4 + 4);
    r.ack = be::get32(f + l4 + 8);
    if ((flags & kTcpRst) != 0) {
      r.answer = ProbeAnswer::Rst;
    } else if ((flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
      r.answer = ProbeAnswer::SynAck;
    } else {
      return std::nullopt;
    }
    return r;
  }
  if (f[ip + 9] == kProtoIcmp) {
    // Destination unreachable (3) or time exceeded (11), quoting our TCP segment.
    if (len < l4 + 8) return std::nullopt;
    const uint8_t type = f[l4];
    if (type != 3 && type != 11) return std::nullopt;
    const size_t in = l4 + 8;
    if (len < in + 20 || (f[in] >> 4) != 4) return std::nullopt;
    const size_t in_ihl = size_t{f[in] & 0x0fu} * 4;
    if (in_ihl < 20 || len < in + in_ihl + 8) return std::nullopt;
    if (f[in + 9] != kProtoTcp || be::get32(f + in + 12) != probe_src) return std::nullopt;
    r.answer = ProbeAnswer::Unreachable;
    r.remote = be::get32(f + in + 16);
    r.local_port = be::get16(f + in + in_ihl);
    r.remote_port = be::get16(f + in + in_ihl + 2);
    return r;
  }
  return std::nullopt;
}

}  // namespace eipgate::dataplane

// A tiny IPv4/IPv6 packet builder for the NAT64 translator tests. Independent of the engine: its
// checksums are full sums computed here, byte by byte, never the engine's incremental helpers.
// Packets start at the IP header (no Ethernet). Values are host order unless named _raw.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// Cases spell headers as brace lists of their leading fields ({src, dst, proto, ttl}).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace eipgate::testing::nat64b {

using Bytes = std::vector<uint8_t>;
using A6 = std::array<uint8_t, 16>;

inline A6 v6(const char* text) {
  A6 a{};
  if (inet_pton(AF_INET6, text, a.data()) != 1) throw std::invalid_argument(text);
  return a;
}
// Network-order uint32_t, as the translator takes it.
inline uint32_t v4(const char* text) {
  in_addr a{};
  if (inet_pton(AF_INET, text, &a) != 1) throw std::invalid_argument(text);
  return a.s_addr;
}
inline uint16_t net16(uint16_t host) { return htons(host); }

inline void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
inline void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, static_cast<uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<uint16_t>(v));
}
inline uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

// RFC 1071 sum over big-endian 16-bit words, from scratch.
inline uint32_t sum_be(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
inline uint16_t fin(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}
inline uint32_t pseudo4(uint32_t src_raw, uint32_t dst_raw, uint8_t proto, uint32_t len) {
  uint8_t b[12];
  std::memcpy(b, &src_raw, 4);
  std::memcpy(b + 4, &dst_raw, 4);
  b[8] = 0;
  b[9] = proto;
  b[10] = static_cast<uint8_t>(len >> 8);
  b[11] = static_cast<uint8_t>(len);
  return sum_be(b, 12);
}
inline uint32_t pseudo6(const A6& src, const A6& dst, uint8_t nh, uint32_t len) {
  uint8_t b[40] = {};
  std::memcpy(b, src.data(), 16);
  std::memcpy(b + 16, dst.data(), 16);
  b[32] = static_cast<uint8_t>(len >> 24);
  b[33] = static_cast<uint8_t>(len >> 16);
  b[34] = static_cast<uint8_t>(len >> 8);
  b[35] = static_cast<uint8_t>(len);
  b[39] = nh;
  return sum_be(b, 40);
}

inline Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Transport headers (checksum 0 until a fix_* call).
inline Bytes tcp(uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags, const Bytes& data) {
  Bytes b(20, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put32(b, 4, seq);
  b[12] = 5 << 4;
  b[13] = flags;
  put16(b, 14, 65535);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
inline Bytes udp(uint16_t sport, uint16_t dport, const Bytes& data) {
  Bytes b(8, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put16(b, 4, static_cast<uint16_t>(8 + data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
// ICMP / ICMPv6: type, code, the 32-bit word after the checksum, then data.
inline Bytes icmp(uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
  Bytes b(8, 0);
  b[0] = type;
  b[1] = code;
  put32(b, 4, rest);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
inline uint32_t echo_rest(uint16_t id, uint16_t seq) { return (uint32_t{id} << 16) | seq; }

inline size_t csum_off(uint8_t proto) { return proto == 6 ? 16 : proto == 17 ? 6 : 2; }

// Full transport checksum for IPv4 (ICMP: no pseudo-header). ul_len: the whole datagram's
// upper-layer length (differs from l4.size() only when l4 is the start of a fragmented datagram
// whose checksum was computed elsewhere).
inline void fix_l4_v4(Bytes& l4, uint8_t proto, uint32_t src, uint32_t dst) {
  const size_t o = csum_off(proto);
  l4[o] = l4[o + 1] = 0;
  uint32_t acc = sum_be(l4.data(), l4.size());
  if (proto != 1) acc += pseudo4(src, dst, proto, static_cast<uint32_t>(l4.size()));
  uint16_t c = fin(acc);
  if (proto == 17 && c == 0) c = 0xffff;
  put16(l4, o, c);
}
inline void fix_l4_v6(Bytes& l4, uint8_t proto, const A6& src, const A6& dst) {
  const size_t o = csum_off(proto);
  l4[o] = l4[o + 1] = 0;
  uint16_t c = fin(sum_be(l4.data(), l4.size()) +
                   pseudo6(src, dst, proto, static_cast<uint32_t>(l4.size())));
  if (proto == 17 && c == 0) c = 0xffff;
  put16(l4, o, c);
}

struct Ip4 {
  uint32_t src = 0, dst = 0;
  uint8_t proto = 6;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool df = false, mf = false;
  uint16_t offset = 0;  // 8-byte units
  Bytes options;        // multiple of 4
  // total_len_override: for a quoted (truncated) packet, the original's total length.
  uint32_t total_len_override = 0;
};
inline Bytes ip4(const Ip4& h, const Bytes& payload) {
  const size_t ihl = 20 + h.options.size();
  Bytes b(ihl, 0);
  b[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
  b[1] = h.tos;
  put16(b, 2,
        static_cast<uint16_t>(h.total_len_override ? h.total_len_override : ihl + payload.size()));
  put16(b, 4, h.id);
  put16(b, 6, static_cast<uint16_t>((h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0) | h.offset));
  b[8] = h.ttl;
  b[9] = h.proto;
  std::memcpy(&b[12], &h.src, 4);
  std::memcpy(&b[16], &h.dst, 4);
  std::copy(h.options.begin(), h.options.end(), b.begin() + 20);
  put16(b, 10, fin(sum_be(b.data(), ihl)));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

struct Ip6 {
  A6 src{}, dst{};
  uint8_t nh = 6;
  uint8_t hop = 64;
  uint8_t tclass = 0;
  uint32_t flow = 0;
  uint32_t plen_override = 0;
};
// payload: extension headers (if any) + upper layer.
inline Bytes ip6(const Ip6& h, const Bytes& payload) {
  Bytes b(40, 0);
  b[0] = static_cast<uint8_t>(0x60 | (h.tclass >> 4));
  b[1] = static_cast<uint8_t>((h.tclass << 4) | ((h.flow >> 16) & 0x0f));
  put16(b, 2, static_cast<uint16_t>(h.flow));
  put16(b, 4, static_cast<uint16_t>(h.plen_override ? h.plen_override : payload.size()));
  b[6] = h.nh;
  b[7] = h.hop;
  std::memcpy(&b[8], h.src.data(), 16);
  std::memcpy(&b[24], h.dst.data(), 16);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
inline Bytes frag6(uint8_t nh, uint16_t offset_units, bool mf, uint32_t id) {
  Bytes b(8, 0);
  b[0] = nh;
  put16(b, 2, static_cast<uint16_t>((offset_units << 3) | (mf ? 1 : 0)));
  put32(b, 4, id);
  return b;
}
// Hop-by-Hop / Destination Options / Routing header of 8 bytes (PadN / type 0 fields).
inline Bytes ext8(uint8_t nh, uint8_t kind, uint8_t segments_left = 0) {
  Bytes b(8, 0);
  b[0] = nh;
  b[1] = 0;
  if (kind == 43) {
    b[2] = 0;
    b[3] = segments_left;
  } else {
    b[2] = 1;  // PadN, 4 bytes of padding
    b[3] = 4;
  }
  return b;
}

inline Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace eipgate::testing::nat64b

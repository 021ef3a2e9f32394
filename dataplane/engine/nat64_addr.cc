// RFC 6052 address embedding and extraction.
#include "dataplane/engine/nat64_addr.h"

#include <cstring>

namespace eipgate::engine::nat64 {

namespace {

bool valid_length(uint8_t len) {
  return len == 32 || len == 40 || len == 48 || len == 56 || len == 64 || len == 96;
}

// Byte positions of the four IPv4 octets for a prefix length (the u octet, byte 8, is skipped).
struct Layout {
  uint8_t pos[4];
};
Layout layout(uint8_t len) {
  Layout l{};
  uint8_t at = static_cast<uint8_t>(len / 8);
  for (uint8_t& p : l.pos) {
    if (at == 8) ++at;
    p = at++;
  }
  return l;
}

struct Block {
  uint32_t net;
  uint8_t len;
};
constexpr Block kNonGlobal[] = {
    {0x00000000, 8},   // 0.0.0.0/8 this network
    {0x0a000000, 8},   // 10.0.0.0/8 private
    {0x64400000, 10},  // 100.64.0.0/10 shared address space (RFC 6598)
    {0x7f000000, 8},   // 127.0.0.0/8 loopback
    {0xa9fe0000, 16},  // 169.254.0.0/16 link local
    {0xac100000, 12},  // 172.16.0.0/12 private
    {0xc0000000, 24},  // 192.0.0.0/24 IETF protocol assignments
    {0xc0000200, 24},  // 192.0.2.0/24 TEST-NET-1
    {0xc0586300, 24},  // 192.88.99.0/24 6to4 relay anycast
    {0xc0a80000, 16},  // 192.168.0.0/16 private
    {0xc6120000, 15},  // 198.18.0.0/15 benchmarking
    {0xc6336400, 24},  // 198.51.100.0/24 TEST-NET-2
    {0xcb007100, 24},  // 203.0.113.0/24 TEST-NET-3
    {0xe0000000, 4},   // 224.0.0.0/4 multicast
    {0xf0000000, 4},   // 240.0.0.0/4 reserved, and 255.255.255.255
};

}  // namespace

std::string_view prefix_error_name(PrefixError e) {
  switch (e) {
    case PrefixError::None:
      return "none";
    case PrefixError::BadLength:
      return "prefix length must be 32, 40, 48, 56, 64 or 96";
    case PrefixError::HostBitsSet:
      return "bits past the prefix length are set";
    case PrefixError::ReservedOctetSet:
      return "bits 64-71 of a /96 prefix must be zero";
    case PrefixError::WellKnownNotSlash96:
      return "the well-known prefix 64:ff9b:: is a /96";
  }
  return "unknown";
}

std::string_view map_error_name(MapError e) {
  switch (e) {
    case MapError::None:
      return "none";
    case MapError::PrefixMismatch:
      return "prefix_mismatch";
    case MapError::ReservedBitsSet:
      return "reserved_bits_set";
    case MapError::NonGlobalWithWkp:
      return "non_global_with_wkp";
  }
  return "unknown";
}

PrefixError validate_prefix(const Prefix& p) {
  if (!valid_length(p.len)) return PrefixError::BadLength;
  for (unsigned i = p.len / 8u; i < 16; ++i) {
    if (p.addr[i] != 0) return PrefixError::HostBitsSet;
  }
  if (p.len == 96 && p.addr[8] != 0) return PrefixError::ReservedOctetSet;
  if (p.len != 96 && std::memcmp(p.addr.data(), kWellKnownPrefix.addr.data(), 4) == 0 &&
      std::memcmp(p.addr.data() + 4, kWellKnownPrefix.addr.data() + 4, 12) == 0) {
    return PrefixError::WellKnownNotSlash96;
  }
  return PrefixError::None;
}

bool is_well_known(const Prefix& p) { return p.len == 96 && p.addr == kWellKnownPrefix.addr; }

bool is_global_ipv4(uint32_t a) {
  for (const Block& b : kNonGlobal) {
    const uint32_t mask = ~uint32_t{0} << (32 - b.len);
    if ((a & mask) == b.net) return false;
  }
  return true;
}

bool in_prefix(const Prefix& p, const uint8_t a[16]) {
  return std::memcmp(a, p.addr.data(), p.len / 8u) == 0;
}

MapError embed(const Prefix& p, uint32_t v4, uint8_t out[16]) {
  uint8_t b[4];
  std::memcpy(b, &v4, 4);
  const bool wkp = is_well_known(p);
  if (wkp) {
    const uint32_t host =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    if (!is_global_ipv4(host)) return MapError::NonGlobalWithWkp;
  }
  if (p.len == 96) {
    std::memcpy(out, p.addr.data(), 12);
    std::memcpy(out + 12, b, 4);
    return MapError::None;
  }
  std::memset(out, 0, 16);
  std::memcpy(out, p.addr.data(), p.len / 8u);
  const Layout l = layout(p.len);
  for (int i = 0; i < 4; ++i) out[l.pos[i]] = b[i];
  return MapError::None;
}

MapError extract(const Prefix& p, const uint8_t in[16], uint32_t& v4) {
  if (!in_prefix(p, in)) return MapError::PrefixMismatch;
  uint8_t b[4];
  if (p.len == 96) {
    std::memcpy(b, in + 12, 4);
  } else {
    const Layout l = layout(p.len);
    // Everything after the prefix that is not an IPv4 octet (u octet, suffix) must be zero.
    uint8_t used[16] = {};
    for (int i = 0; i < 4; ++i) {
      b[i] = in[l.pos[i]];
      used[l.pos[i]] = 1;
    }
    for (unsigned i = p.len / 8u; i < 16; ++i) {
      if (!used[i] && in[i] != 0) return MapError::ReservedBitsSet;
    }
  }
  if (is_well_known(p)) {
    const uint32_t host =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    if (!is_global_ipv4(host)) return MapError::NonGlobalWithWkp;
  }
  std::memcpy(&v4, b, 4);
  return MapError::None;
}

}  // namespace eipgate::engine::nat64

// NAT64 address mapping (RFC 6052): IPv4 addresses embedded in IPv6 under the well-known prefix
// 64:ff9b::/96 or a network-specific prefix of length 32, 40, 48, 56, 64 or 96. Bits 64-71 (the
// "u" octet) and the suffix are zero. Standard library only, no allocation; IPv4 addresses are
// kept in network order (as stored in a packet), IPv6 addresses as 16 bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace eipgate::engine::nat64 {

using Addr6 = std::array<uint8_t, 16>;

struct Prefix {
  Addr6 addr{};
  uint8_t len = 0;  // 32, 40, 48, 56, 64 or 96
};

// 64:ff9b::/96 (RFC 6052 section 2.1).
inline constexpr Prefix kWellKnownPrefix{
    {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 96};

enum class PrefixError : uint8_t {
  None,
  BadLength,            // not one of 32, 40, 48, 56, 64, 96
  HostBitsSet,          // bits past the prefix length are not zero
  ReservedOctetSet,     // a /96 prefix with bits 64-71 ("u") not zero (RFC 6052 section 2.2)
  WellKnownNotSlash96,  // 64:ff9b:: with a length other than 96 (the WKP is a /96)
};
std::string_view prefix_error_name(PrefixError e);

// Checks a configured (network-specific or well-known) prefix.
PrefixError validate_prefix(const Prefix& p);

bool is_well_known(const Prefix& p);

// False for the addresses RFC 6052 section 3.1 says the well-known prefix must not represent:
// the special-use blocks of RFC 5735 section 3 (this network, private, loopback, link local,
// IETF protocol assignments, the TEST-NETs, 6to4 relay anycast, benchmarking, multicast, reserved,
// limited broadcast) and the shared address space 100.64.0.0/10 (RFC 6598). Host order.
bool is_global_ipv4(uint32_t host_order);

enum class MapError : uint8_t {
  None,
  PrefixMismatch,    // the IPv6 address is not under the prefix
  ReservedBitsSet,   // "u" octet or suffix not zero: not an address this prefix produces
  NonGlobalWithWkp,  // well-known prefix with a non-global IPv4 address: MUST be dropped
};
std::string_view map_error_name(MapError e);

// IPv4 (network order) -> IPv6 under the prefix. With the well-known prefix a non-global IPv4
// address is refused (RFC 6052 section 3.1: translators MUST NOT translate such packets).
MapError embed(const Prefix& p, uint32_t v4, uint8_t out[16]);

// IPv6 under the prefix -> IPv4 (network order). Strict: the u octet and the suffix must be zero
// (what embed() writes), so a reply maps back to exactly the address the host used.
MapError extract(const Prefix& p, const uint8_t in[16], uint32_t& v4);

inline MapError extract(const Prefix& p, const Addr6& in, uint32_t& v4) {
  return extract(p, in.data(), v4);
}

// True when the first len bits of a equal the prefix (a quick membership test).
bool in_prefix(const Prefix& p, const uint8_t a[16]);
inline bool in_prefix(const Prefix& p, const Addr6& a) { return in_prefix(p, a.data()); }

}  // namespace eipgate::engine::nat64

// RFC 7915's ICMP tables (type/code both ways, Parameter Problem pointers) and the Packet Too
// Big <-> Fragmentation Needed MTU arithmetic, apart from the per-packet code in nat64_xlate.cc.
#include <algorithm>

#include "dataplane/engine/nat64_xlate.h"

namespace eipgate::engine::nat64 {

namespace {

constexpr uint32_t kIpv6MinMtu = 1280;
// RFC 1191 section 7: the plateau table, for a router that reports an MTU of 0.
constexpr uint16_t kPlateaus[] = {65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};

}  // namespace

IcmpMap map_icmp4_error(uint8_t type, uint8_t code) {
  switch (type) {
    case 3:  // Destination Unreachable
      switch (code) {
        case 0:
        case 1:
        case 5:
        case 6:
        case 7:
        case 8:
        case 11:
        case 12:
          return {1, 0, true};  // no route to destination
        case 2:
          return {4, 1, true};  // protocol unreachable -> unrecognized Next Header (pointer 6)
        case 3:
          return {1, 4, true};  // port unreachable
        case 4:
          return {2, 0, true};  // fragmentation needed -> Packet Too Big
        case 9:
        case 10:
        case 13:
        case 15:
          return {1, 1, true};  // administratively prohibited
        default:
          return {};  // 14 (host precedence violation) and unknown codes
      }
    case 11:  // Time Exceeded: code unchanged
      return code <= 1 ? IcmpMap{3, code, true} : IcmpMap{};
    case 12:  // Parameter Problem: pointer translated; code 1 (missing option) dropped
      return (code == 0 || code == 2) ? IcmpMap{4, 0, true} : IcmpMap{};
    default:
      return {};  // source quench, redirect, alternate host address and anything unknown
  }
}

IcmpMap map_icmp6_error(uint8_t type, uint8_t code) {
  switch (type) {
    case 1:  // Destination Unreachable
      switch (code) {
        case 0:
        case 2:
        case 3:
          return {3, 1, true};  // host unreachable
        case 1:
          return {3, 10, true};  // communication with destination host administratively prohibited
        case 4:
          return {3, 3, true};  // port unreachable
        default:
          return {};
      }
    case 2:  // Packet Too Big
      return {3, 4, true};
    case 3:  // Time Exceeded
      return code <= 1 ? IcmpMap{11, code, true} : IcmpMap{};
    case 4:  // Parameter Problem
      if (code == 0) return {12, 0, true};
      if (code == 1) return {3, 2, true};  // unrecognized Next Header -> protocol unreachable
      return {};                           // unrecognized option and unknown codes
    default:
      return {};
  }
}

int map_pointer_4to6(uint8_t ptr) {
  switch (ptr) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
    case 3:
      return 4;
    case 8:
      return 7;
    case 9:
      return 6;
    default:
      if (ptr >= 12 && ptr <= 15) return 8;
      if (ptr >= 16 && ptr <= 19) return 24;
      return -1;  // identification, flags/offset, header checksum, options
  }
}

int map_pointer_6to4(uint32_t ptr) {
  if (ptr == 0) return 0;
  if (ptr == 1) return 1;
  if (ptr == 4 || ptr == 5) return 2;
  if (ptr == 6) return 9;
  if (ptr == 7) return 8;
  if (ptr >= 8 && ptr <= 23) return 12;
  if (ptr >= 24 && ptr <= 39) return 16;
  return -1;  // flow label, extension headers
}

uint32_t mtu_4to6(uint16_t mtu4, uint16_t quoted_total_len, const Config& cfg) {
  uint32_t m = mtu4;
  if (m == 0) {  // RFC 1191 router: the greatest plateau below the quoted total length
    m = 68;
    for (uint16_t p : kPlateaus) {
      if (p < quoted_total_len) {
        m = p;
        break;
      }
    }
  }
  uint32_t r = std::min({m + 20, uint32_t{cfg.ipv6_mtu}, uint32_t{cfg.ipv4_mtu} + 20});
  // Below the IPv6 minimum an IPv6 host does not go (RFC 8200 section 5): it sends at most 1280,
  // which the translator sends with DF clear (<= 1260 + 20), so the IPv4 path fragments it.
  return std::max(r, kIpv6MinMtu);
}

uint16_t mtu_6to4(uint32_t mtu6, bool inner_frag, const Config& cfg) {
  // An IPv6 link is never below 1280 (a smaller or zero value is bogus: use the minimum).
  const uint32_t m = std::max(mtu6, kIpv6MinMtu);
  const uint32_t r = std::min({m - 20 - (inner_frag ? 8u : 0u), uint32_t{cfg.ipv4_mtu},
                               uint32_t{cfg.ipv6_mtu} > 20 ? cfg.ipv6_mtu - 20u : 0u});
  return static_cast<uint16_t>(std::min<uint32_t>(r, 0xffff));
}

}  // namespace eipgate::engine::nat64

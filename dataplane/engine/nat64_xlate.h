// Stateless IP/ICMP header translation (RFC 7915), the per-packet building block of NAT64.
// The caller (the engine's NAT64 path) owns the state: it parses the packet with parse6()/parse4(),
// looks up or creates the flow (the outside IPv4 address/port from the NAT44 port allocation, the
// remote address from the RFC 6052 prefix, nat64_addr.h) and hands the new addresses and ports to
// xlate_6to4()/xlate_4to6(), which rewrite the packet.
//
// In place, with headroom. Only headers change size, so the payload never moves: the new headers
// are written right before the (unmoved) transport header and the packet's start moves instead.
// IPv6 -> IPv4 shrinks (40 B header + extension headers -> 20 B) and needs nothing; IPv4 -> IPv6
// grows by 20 B (28 B when a Fragment header is added; 40-48 B for an ICMP error, which has two
// IP headers) and needs that much writable headroom before the IPv4 header (a DPDK mbuf has 128 B;
// the engine moves or rebuilds the Ethernet header in front of the returned start). No copy of
// the payload, no allocation; a caller buffer would cost a copy of every byte per packet.
//
// Checksums: the IPv4 header checksum is computed over the new 20 bytes; TCP/UDP and ICMP echo
// checksums are updated incrementally (RFC 1624) for the pseudo-header, port/id and ICMP type
// changes; ICMP errors (rare, and restructured) get their ICMP checksum recomputed in full.
//
// Everything is in network order as stored in the packet: IPv4 addresses as uint32_t, ports as
// uint16_t, IPv6 addresses as 16 bytes. ICMP echo identifiers travel in the port fields the way
// the NAT44 parser puts them: a request's id in sport, a reply's id in dport.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "dataplane/engine/nat64_addr.h"

namespace eipgate::engine::nat64 {

// X(enum_name, "exported_name"): every packet the translator refuses names one of these.
#define EIPGATE_NAT64_DROPS(X)                                   \
  X(V6TooShort, "nat64_v6_too_short")                            \
  X(V6BadVersion, "nat64_v6_bad_version")                        \
  X(V6BadPayloadLength, "nat64_v6_bad_payload_length")           \
  X(V6ExtHeaderTruncated, "nat64_v6_ext_header_truncated")       \
  X(V6RoutingHeader, "nat64_v6_routing_segments_left")           \
  X(V6ExtHeaderUnsupported, "nat64_v6_ext_header_unsupported")   \
  X(V6FragmentHeaderBad, "nat64_v6_fragment_header_bad")         \
  X(V4TooShort, "nat64_v4_too_short")                            \
  X(V4BadVersion, "nat64_v4_bad_version")                        \
  X(V4BadIhl, "nat64_v4_bad_ihl")                                \
  X(V4BadTotalLength, "nat64_v4_bad_total_length")               \
  X(V4BadOptions, "nat64_v4_bad_options")                        \
  X(V4SourceRoute, "nat64_v4_source_route")                      \
  X(UnsupportedProtocol, "nat64_unsupported_protocol")           \
  X(L4Truncated, "nat64_l4_truncated")                           \
  X(TcpBadDataOffset, "nat64_tcp_bad_data_offset")               \
  X(UdpZeroChecksumV6, "nat64_udp_zero_checksum_v6")             \
  X(UdpZeroChecksumFragment, "nat64_udp_zero_checksum_fragment") \
  X(IcmpFragmented, "nat64_icmp_fragmented")                     \
  X(IcmpTypeUntranslatable, "nat64_icmp_type_untranslatable")    \
  X(IcmpErrorUnmapped, "nat64_icmp_error_unmapped")              \
  X(IcmpPointerUnmapped, "nat64_icmp_pointer_unmapped")          \
  X(IcmpErrorInnerTruncated, "nat64_icmp_error_inner_truncated") \
  X(IcmpErrorInnerBad, "nat64_icmp_error_inner_bad")             \
  X(IcmpErrorNested, "nat64_icmp_error_nested")                  \
  X(HopLimitExceeded, "nat64_hop_limit_exceeded")                \
  X(NoHeadroom, "nat64_no_headroom")

enum class Drop : uint8_t {
#define EIPGATE_X(name, str) name,
  EIPGATE_NAT64_DROPS(EIPGATE_X)
#undef EIPGATE_X
      None  // not a drop
};

inline constexpr std::size_t kDropCount = static_cast<std::size_t>(Drop::None);

inline constexpr std::array<std::string_view, kDropCount> kDropNames = {
#define EIPGATE_X(name, str) std::string_view{str},
    EIPGATE_NAT64_DROPS(EIPGATE_X)
#undef EIPGATE_X
};

constexpr std::string_view drop_name(Drop d) {
  return d == Drop::None ? std::string_view{"none"} : kDropNames[static_cast<std::size_t>(d)];
}

inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;

// Translator settings (per engine, read-only per packet).
struct Config {
  // MTUs of the translator's own next hops, for Packet Too Big <-> Fragmentation Needed.
  uint16_t ipv4_mtu = 1500;
  uint16_t ipv6_mtu = 1500;
};

enum class L4Kind : uint8_t { Tcp, Udp, IcmpEcho, IcmpError, Fragment /* non-first: no L4 */ };

// The transport tuple of the packet quoted in an ICMP error.
struct Inner6 {
  Addr6 src{}, dst{};
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;  // 6, 17 or 58 (echo)
};
struct Inner4 {
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;  // 6, 17 or 1 (echo)
};

// An IPv6 packet (from its IPv6 header on) as parse6() found it.
struct Info6 {
  Addr6 src{}, dst{};
  uint16_t l4_off = 0;  // from the IPv6 header: 40 + extension headers (+ Fragment header)
  uint16_t l4_len = 0;  // upper-layer bytes in this packet
  uint8_t proto = 0;    // upper-layer protocol: 6, 17, 58
  uint8_t hop_limit = 0;
  uint8_t tclass = 0;
  L4Kind kind = L4Kind::Tcp;
  uint16_t sport = 0, dport = 0;  // network order; echo id as in the file comment
  uint8_t icmp_type = 0, icmp_code = 0;
  bool has_frag = false;  // a Fragment header is present
  bool mf = false;
  uint16_t frag_offset = 0;     // in 8-byte units
  uint32_t frag_id = 0;         // network order
  Inner6 inner{};               // kind == IcmpError: the quoted packet's tuple
  uint16_t inner_l3_off = 0;    // from the outer IPv6 header: the quoted IPv6 header
  uint16_t inner_l4_off = 0;    // the quoted upper-layer header
  uint16_t inner_frag_off = 0;  // the quoted Fragment header, 0 when none
};

// An IPv4 packet (from its IPv4 header on) as parse4() found it.
struct Info4 {
  uint32_t src = 0, dst = 0;
  uint16_t ihl = 0;
  uint16_t total_len = 0;
  uint8_t proto = 0;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  L4Kind kind = L4Kind::Tcp;
  uint16_t sport = 0, dport = 0;
  uint8_t icmp_type = 0, icmp_code = 0;
  bool df = false, mf = false;
  uint16_t frag_offset = 0;  // in 8-byte units
  uint16_t frag_id = 0;      // network order
  Inner4 inner{};
  uint16_t inner_l3_off = 0;  // from the outer IPv4 header: the quoted IPv4 header
  uint16_t inner_l4_off = 0;  // the quoted upper-layer header
};

// What the IPv4 packet gets (in2out: the flow's outside source and the remote taken from the
// prefix). For an ICMP error, `inner` is the quoted packet's new tuple (it travelled the other
// way: typically inner.src = outer.dst, inner.dst = outer.src).
struct To4 {
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  // Identification for a packet without a Fragment header that leaves with DF clear (<= 1260
  // bytes, RFC 7915 section 5.1); the caller's per-worker counter. Fragments keep their own id.
  uint16_t ip_id = 0;
  Inner4 inner{};
};

// What the IPv6 packet gets (out2in: the remote embedded under the prefix, the inside host).
struct To6 {
  Addr6 src{}, dst{};
  uint16_t sport = 0, dport = 0;
  Inner6 inner{};
};

struct Output {
  uint8_t* l3 = nullptr;  // start of the translated packet (inside the caller's buffer)
  uint32_t len = 0;       // its length
  bool udp_checksum_computed = false;  // an IPv4 UDP zero checksum was filled in (count these)
  // IPv4 -> IPv6 of a packet with DF clear (or an IPv4 fragment) that came out over 1280 bytes:
  // RFC 7915 4.1 has the translator fragment it to 1280: send fragment6(..., 1280, ...) instead.
  bool fragment_needed = false;
  // Otherwise, larger than the next hop's MTU (Config): the caller answers with Packet Too Big /
  // Fragmentation Needed (the translator is a router) and drops it.
  bool exceeds_mtu = false;
};

// Parses an IPv6 packet of len bytes (header, extension headers, upper layer; for an ICMPv6 error,
// the quoted packet too). Hop-by-Hop, Destination Options and a Routing header with Segments Left
// 0 are skipped; a Routing header with Segments Left != 0 and every other extension header are
// refused (RFC 7915 section 5.1). Returns Drop::None or the reason.
Drop parse6(const uint8_t* l3, uint32_t len, Info6& out);

// Parses an IPv4 packet of len bytes (its total length may be less: trailing bytes are ignored).
// Options are validated and ignored; an unexpired source route is refused (RFC 7915 section 4.1).
Drop parse4(const uint8_t* l3, uint32_t len, Info4& out);

// IPv6 -> IPv4 in place. l3/len: the packet parse6() saw. Hop Limit is decremented (<= 1 ->
// HopLimitExceeded: the caller answers with ICMPv6 Time Exceeded). On success out.l3 = l3 + k
// for some k >= 20 and out.len = len - k.
Drop xlate_6to4(uint8_t* l3, uint32_t len, const Info6& in, const To4& to, const Config& cfg,
                Output& out);

// IPv4 -> IPv6 in place. headroom: bytes writable before l3. TTL is decremented (<= 1 ->
// HopLimitExceeded). A Fragment header is added when the IPv4 packet is a fragment. ICMPv6 errors
// are cut to 1280 bytes (the IPv6 minimum MTU).
Drop xlate_4to6(uint8_t* l3, uint32_t len, uint32_t headroom, const Info4& in, const To6& to,
                const Config& cfg, Output& out);

// Splits an IPv6 packet that xlate_4to6() produced (whole, or already a fragment) into fragments
// of at most mtu bytes (raised to 1280 if lower), for an IPv4 packet with DF clear that is too big
// for the IPv6 next hop (RFC 7915 section 4.1). Fragment i is written to bufs[i] (cap bytes each)
// and its length to lens[i]. A whole packet gets the IPv4 identification (ipv4_id, network order)
// zero-extended; a fragment keeps its Fragment header's id and offsets, and its M flag stays on
// the last piece. The transport checksum is already final (computed over the whole datagram).
// Returns the number of fragments, or 0 when nbufs or cap are too small or the input is not a
// translated packet.
uint32_t fragment6(const uint8_t* pkt, uint32_t len, uint32_t mtu, uint16_t ipv4_id,
                   uint8_t* const* bufs, uint32_t cap, uint32_t nbufs, uint32_t* lens);

// The pieces of the mapping, exposed for tests and for the engine's own errors.
struct IcmpMap {
  uint8_t type = 0, code = 0;
  bool ok = false;
};
// ICMPv4 error type/code -> ICMPv6 (RFC 7915 section 4.2). Echo is not an error: not mapped here.
IcmpMap map_icmp4_error(uint8_t type, uint8_t code);
// ICMPv6 error type/code -> ICMPv4 (RFC 7915 section 5.2).
IcmpMap map_icmp6_error(uint8_t type, uint8_t code);
// Parameter Problem pointers (RFC 7915 figures 3 and 6); -1 when the field has no counterpart.
int map_pointer_4to6(uint8_t ptr);
int map_pointer_6to4(uint32_t ptr);
// Fragmentation Needed (MTU may be 0: RFC 1191 plateaus below the quoted total length) -> the
// Packet Too Big MTU; and the reverse (inner_frag: the quoted IPv6 packet has a Fragment header).
uint32_t mtu_4to6(uint16_t mtu4, uint16_t quoted_total_len, const Config& cfg);
uint16_t mtu_6to4(uint32_t mtu6, bool inner_frag, const Config& cfg);

}  // namespace eipgate::engine::nat64

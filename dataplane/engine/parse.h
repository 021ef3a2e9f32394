// Header parsing into a small metadata block. Never reads past PacketBuf::len; every rejection
// names a DropReason. Fields are kept in network order, as stored in the packet.
#pragma once

#include <cstdint>

#include "dataplane/engine/counters.h"
#include "dataplane/engine/packet.h"

namespace eipgate::engine {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreach = 3;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParamProblem = 12;

enum class L3Kind : uint8_t { Ipv4, Arp, Drop };

enum class IcmpKind : uint8_t { None, EchoRequest, EchoReply, Error, Other };

struct Parsed {
  uint8_t* l3 = nullptr;  // IPv4 header
  uint8_t* l4 = nullptr;  // L4 header; nullptr for non-first fragments
  uint32_t l3_off = 0;
  uint16_t ihl = 0;     // header bytes
  uint16_t ip_len = 0;  // total length
  uint32_t src = 0;     // network order
  uint32_t dst = 0;
  uint16_t sport = 0;  // network order; ICMP query: id in sport (request) or dport (reply)
  uint16_t dport = 0;
  uint8_t proto = 0;
  uint8_t ttl = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  IcmpKind icmp = IcmpKind::None;
  bool fragment = false;  // MF set or offset != 0
  bool first_fragment = false;
  uint16_t frag_id = 0;  // network order
  DropReason reason = DropReason::Count;

  [[nodiscard]] uint16_t l4_len() const { return static_cast<uint16_t>(ip_len - ihl); }
};

// Parses Ethernet (up to two VLAN tags), IPv4 (options validated) and the L4 header.
L3Kind parse(const PacketBuf& pkt, Parsed& out);

// Parses an IPv4 header + the first bytes of L4 found inside an ICMP error (may be truncated to
// 8 bytes of L4). Returns false (and sets reason) when ports cannot be recovered.
struct InnerParsed {
  uint8_t* l3 = nullptr;
  uint8_t* l4 = nullptr;
  uint16_t ihl = 0;
  uint16_t avail_l4 = 0;  // L4 bytes present in the error message
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  IcmpKind icmp = IcmpKind::None;
  DropReason reason = DropReason::Count;
};
bool parse_inner(uint8_t* p, uint32_t avail, InnerParsed& out);

}  // namespace eipgate::engine

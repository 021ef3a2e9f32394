// Egress probes through the NAT: the dataplane
// originates a TCP SYN from a probe source address inside the private prefixes, so the packet
// takes exactly the path a Lambda's would (engine, policy, outside port, VPC router, EIP); the
// answer is caught before it would be sent to the inside and closed with an RST. Pure code: no
// DPDK, tested on byte buffers (tests/unit/dpdk/probe_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/dpdk/arp.h"  // MacAddr

namespace eipgate::dataplane {

struct ProbeFrame {
  MacAddr dst_mac{};
  MacAddr src_mac{};
  uint32_t src = 0;  // host order
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // TCP flags: kTcpSyn, kTcpRst | kTcpAck, ...
};

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;
// Ethernet + IPv4 + TCP (20 bytes, no options) = 54, padded to the Ethernet minimum.
inline constexpr size_t kProbeFrameLen = 60;

// Writes the frame (checksums filled in) into out (>= kProbeFrameLen bytes); returns its length.
size_t build_probe_frame(const ProbeFrame& f, uint8_t* out);

enum class ProbeAnswer : uint8_t {
  None = 0,
  SynAck,       // the destination accepted: the path works
  Rst,          // the destination refused the port: the path works
  Unreachable,  // ICMP destination unreachable / time exceeded about the probe
};
std::string_view probe_answer_name(ProbeAnswer a);

struct ProbeReply {
  ProbeAnswer answer = ProbeAnswer::None;
  uint32_t remote = 0;  // the probed address (host order)
  uint16_t remote_port = 0;
  uint16_t local_port = 0;  // the probe's source port
  uint32_t seq = 0;         // TCP: the segment's sequence and acknowledgement numbers
  uint32_t ack = 0;
};

// A frame (after NAT back to the inside) addressed to probe_src: a TCP segment or an ICMP error
// about a TCP segment from probe_src. nullopt for anything else or a truncated frame.
std::optional<ProbeReply> parse_probe_reply(const uint8_t* frame, size_t len, uint32_t probe_src);

}  // namespace eipgate::dataplane

// ARP encoding and decoding (RFC 826) for IPv4 over Ethernet.
#include "dataplane/dpdk/arp.h"

#include <cstring>

#include "common/byte_order.h"

namespace eipgate::dataplane {

namespace {
constexpr MacAddr kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
}  // namespace

std::optional<ArpPacket> parse_arp(const uint8_t* frame, size_t len) {
  size_t off = 12;
  if (len < off + 2) return std::nullopt;
  uint16_t et = be::get16(frame + off);
  if (et == 0x8100) {
    off += 4;
    if (len < off + 2) return std::nullopt;
    et = be::get16(frame + off);
  }
  off += 2;
  if (et != 0x0806 || len < off + 28) return std::nullopt;
  const uint8_t* a = frame + off;
  // Ethernet hardware (1), IPv4 protocol, 6-byte and 4-byte addresses only.
  if (be::get16(a) != 1 || be::get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4)
    return std::nullopt;
  ArpPacket p;
  p.op = be::get16(a + 6);
  if (p.op != kArpRequest && p.op != kArpReply) return std::nullopt;
  std::memcpy(p.sender_mac.data(), a + 8, 6);
  p.sender_ip = be::get32(a + 14);
  std::memcpy(p.target_mac.data(), a + 18, 6);
  p.target_ip = be::get32(a + 24);
  return p;
}

size_t build_arp(uint8_t* out, uint16_t op, const MacAddr& src_mac, uint32_t src_ip,
                 const MacAddr& dst_mac, uint32_t dst_ip) {
  std::memset(out, 0, kArpFrameLen);
  const MacAddr& eth_dst = op == kArpRequest && dst_mac == MacAddr{} ? kBroadcast : dst_mac;
  std::memcpy(out, eth_dst.data(), 6);
  std::memcpy(out + 6, src_mac.data(), 6);
  be::put16(out + 12, 0x0806);
  uint8_t* a = out + 14;
  be::put16(a, 1);
  be::put16(a + 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  be::put16(a + 6, op);
  std::memcpy(a + 8, src_mac.data(), 6);
  be::put32(a + 14, src_ip);
  std::memcpy(a + 18, dst_mac.data(), 6);
  be::put32(a + 24, dst_ip);
  return kArpFrameLen;
}

size_t build_arp_request(uint8_t* out, const MacAddr& src_mac, uint32_t src_ip,
                         uint32_t target_ip) {
  return build_arp(out, kArpRequest, src_mac, src_ip, MacAddr{}, target_ip);
}

size_t build_garp(uint8_t* out, const MacAddr& mac, uint32_t ip) {
  return build_arp(out, kArpRequest, mac, ip, MacAddr{}, ip);
}

}  // namespace eipgate::dataplane

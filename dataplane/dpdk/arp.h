// ARP for the dataplane: parse requests/replies, build replies, requests and gratuitous ARP, and
// a small neighbour table (IP -> MAC with expiry). Pure code: no DPDK, tested on byte buffers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>

namespace eipgate::dataplane {

using MacAddr = std::array<uint8_t, 6>;

struct ArpPacket {
  uint16_t op = 0;  // 1 request, 2 reply
  MacAddr sender_mac{};
  uint32_t sender_ip = 0;  // host order
  MacAddr target_mac{};
  uint32_t target_ip = 0;
};

inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;
inline constexpr size_t kArpFrameLen = 60;  // 14 + 28, padded to the Ethernet minimum

// Parses an Ethernet frame carrying ARP for IPv4 over Ethernet (untagged or one VLAN tag).
std::optional<ArpPacket> parse_arp(const uint8_t* frame, size_t len);

// Writes a 60-byte frame into out (>= kArpFrameLen bytes); returns the length written.
size_t build_arp(uint8_t* out, uint16_t op, const MacAddr& src_mac, uint32_t src_ip,
                 const MacAddr& dst_mac, uint32_t dst_ip);
size_t build_arp_request(uint8_t* out, const MacAddr& src_mac, uint32_t src_ip, uint32_t target_ip);
// Gratuitous ARP (a request for our own address, broadcast): announces that ip moved to mac.
size_t build_garp(uint8_t* out, const MacAddr& mac, uint32_t ip);

// Neighbour table owned by one thread (the main lcore); workers read published copies.
class NeighbourTable {
 public:
  explicit NeighbourTable(uint64_t ttl_ms = 60'000) : ttl_ms_(ttl_ms) {}
  void learn(uint32_t ip, const MacAddr& mac, uint64_t now_ms) {
    table_[ip] = {mac, now_ms + ttl_ms_};
  }
  [[nodiscard]] std::optional<MacAddr> lookup(uint32_t ip, uint64_t now_ms) const {
    auto it = table_.find(ip);
    if (it == table_.end() || it->second.expires <= now_ms) return std::nullopt;
    return it->second.mac;
  }
  // Entries that expire within `margin_ms` (to refresh before they lapse).
  template <typename Fn>
  void for_each_due(uint64_t now_ms, uint64_t margin_ms, Fn&& fn) const {
    for (const auto& [ip, e] : table_) {
      if (e.expires <= now_ms + margin_ms) fn(ip);
    }
  }
  void expire(uint64_t now_ms, uint64_t grace_ms) {
    std::erase_if(table_, [&](const auto& kv) { return kv.second.expires + grace_ms <= now_ms; });
  }
  [[nodiscard]] size_t size() const { return table_.size(); }

 private:
  struct Entry {
    MacAddr mac;
    uint64_t expires;
  };
  uint64_t ttl_ms_;
  std::unordered_map<uint32_t, Entry> table_;
};

}  // namespace eipgate::dataplane

// Toeplitz RSS hash as NICs compute it (Microsoft RSS spec), and the per-port contribution table
// that makes RSS-aware port choice one XOR per candidate (the idea behind rte_thash_adjust_tuple).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace eipgate::engine {

class Toeplitz {
 public:
  explicit Toeplitz(const std::array<uint8_t, 40>& key);
  // Hash of input bytes in wire order (src ip, dst ip, src port, dst port), up to 36 bytes.
  [[nodiscard]] uint32_t hash(const uint8_t* in, size_t len) const;
  // IPv4 tuple helpers; addresses and ports in network order as stored in packets.
  [[nodiscard]] uint32_t hash_l3(uint32_t src, uint32_t dst) const;
  [[nodiscard]] uint32_t hash_l4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) const;
  // Contribution of the destination port (network order) at its position in the L4 tuple, so
  // hash_l4(s, d, sp, p) == hash_l4(s, d, sp, 0) ^ dport_contrib(p).
  [[nodiscard]] uint32_t dport_contrib(uint16_t dport_net) const {
    return dport_contrib_[dport_net];
  }

 private:
  std::array<uint32_t, std::size_t{36} * 8> window_{};  // key bits [i, i+32) for every input bit i
  std::vector<uint32_t> dport_contrib_;  // 64 Ki entries, indexed by the port as stored
};

}  // namespace eipgate::engine

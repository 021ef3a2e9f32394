// Toeplitz hash: for every set bit i of the input, XOR in the 32 key bits starting at bit i.
#include "dataplane/engine/rss.h"

#include <cstring>

namespace eipgate::engine {

namespace {
uint32_t key_window(const std::array<uint8_t, 40>& key, size_t bit) {
  // 32 bits of the key starting at bit offset `bit` (MSB first).
  uint64_t v = 0;
  const size_t byte = bit / 8;
  for (size_t i = 0; i < 5; ++i) {
    v = (v << 8) | (byte + i < key.size() ? key[byte + i] : 0);
  }
  return static_cast<uint32_t>(v >> (8 - bit % 8));
}
}  // namespace

Toeplitz::Toeplitz(const std::array<uint8_t, 40>& key) : dport_contrib_(65536) {
  for (size_t i = 0; i < window_.size(); ++i) window_[i] = key_window(key, i);
  for (uint32_t p = 0; p < 65536; ++p) {
    uint8_t tuple[12] = {};
    const auto port = static_cast<uint16_t>(p);
    std::memcpy(tuple + 10, &port, 2);
    dport_contrib_[p] = hash(tuple, sizeof tuple);
  }
}

uint32_t Toeplitz::hash(const uint8_t* in, size_t len) const {
  uint32_t h = 0;
  if (len > 36) len = 36;
  for (size_t i = 0; i < len; ++i) {
    for (int b = 0; b < 8; ++b) {
      if (in[i] & (0x80u >> b)) h ^= window_[i * 8 + static_cast<size_t>(b)];
    }
  }
  return h;
}

uint32_t Toeplitz::hash_l3(uint32_t src, uint32_t dst) const {
  uint8_t t[8];
  std::memcpy(t, &src, 4);
  std::memcpy(t + 4, &dst, 4);
  return hash(t, sizeof t);
}

uint32_t Toeplitz::hash_l4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) const {
  uint8_t t[12];
  std::memcpy(t, &src, 4);
  std::memcpy(t + 4, &dst, 4);
  std::memcpy(t + 8, &sport, 2);
  std::memcpy(t + 10, &dport, 2);
  return hash(t, sizeof t);
}

}  // namespace eipgate::engine

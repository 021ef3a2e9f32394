// Internet checksum helpers: full sums for generated packets and RFC 1624 incremental updates
// (HC' = ~(~HC + ~m + m')) for translation. All values are the raw 16-bit words as stored
// in the packet (network order bytes read as host uint16), so no byte swapping is needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace eipgate::engine::csum {

// One's complement sum of a byte range into a 32-bit accumulator (not folded).
inline uint32_t partial(const uint8_t* p, size_t n, uint32_t acc = 0) {
  while (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);  // odd trailing byte is the high byte in network order
    acc += w;
  }
  return acc;
}

inline uint16_t fold(uint64_t acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}
// Fold of a sum known to fit in 32 bits (the incremental-update case): two steps suffice.
inline uint16_t fold32(uint32_t acc) {
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// Final checksum value to store.
inline uint16_t finish(uint32_t acc) { return static_cast<uint16_t>(~fold(acc)); }

// Sum of the words of a 32-bit value as stored in memory.
inline uint32_t words32(uint32_t v) { return (v & 0xffff) + (v >> 16); }

// Delta for replacing old words by new ones: ~old + new, folded (RFC 1624 eqn. 3).
inline uint16_t delta32(uint32_t old_v, uint32_t new_v) {
  return fold(words32(~old_v) + words32(new_v));
}
inline uint16_t delta16(uint16_t old_v, uint16_t new_v) {
  return fold32(uint32_t{static_cast<uint16_t>(~old_v)} + new_v);
}
inline uint16_t add(uint16_t a, uint16_t b) { return fold32(uint32_t{a} + b); }
inline uint16_t negate(uint16_t d) { return static_cast<uint16_t>(~d); }

// Applies a delta to a stored checksum.
inline uint16_t apply(uint16_t stored, uint16_t delta) {
  return static_cast<uint16_t>(~fold32(uint32_t{static_cast<uint16_t>(~stored)} + delta));
}

// Delta a pseudo-header-free change of a byte range: given the range's sums before and after.
inline uint16_t delta_sums(uint32_t old_sum, uint32_t new_sum) {
  return fold(uint64_t{static_cast<uint16_t>(~fold(old_sum))} + fold(new_sum));
}

}  // namespace eipgate::engine::csum

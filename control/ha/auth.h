// Message authentication for the HA link: HMAC-SHA256 (OpenSSL EVP_MAC) with the pair's shared
// secret, and the anti-replay window that accepts each (incarnation, sequence) at most once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace eipgate::ha {

inline constexpr size_t kMacSize = 32;  // HMAC-SHA256

// Holds a keyed HMAC context. Not thread-safe (the context is reused for speed): one per thread.
// The key is never exposed or logged; OpenSSL keeps its own copy, cleansed on destruction.
class Authenticator {
 public:
  // nullptr with *error set when OpenSSL cannot build the context or the key is empty.
  static std::unique_ptr<Authenticator> create(std::span<const uint8_t> key, std::string* error);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // False only on an internal OpenSSL failure (the caller must not send the message).
  [[nodiscard]] bool sign(std::span<const uint8_t> data, std::span<uint8_t, kMacSize> mac);
  // Constant-time comparison (CRYPTO_memcmp) of the expected and given tags.
  [[nodiscard]] bool verify(std::span<const uint8_t> data, std::span<const uint8_t> mac);

 private:
  struct Impl;
  explicit Authenticator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A sender incarnation: unix time in ms at boot in the high 48 bits and 16 random bits, so a
// restarted peer's identifier is larger than its previous one (see ReplayWindow).
[[nodiscard]] uint64_t make_boot_id(uint64_t unix_ms);

// Sliding anti-replay window (as in IPsec, RFC 4303 appendix A) for one peer. Sequence numbers are
// per incarnation (boot id) and start at 1. A larger boot id starts a new window; a smaller one
// is an old incarnation's message and is refused, so recorded traffic of an earlier run cannot be
// replayed. check() does not change state: record only after the message authenticated and
// parsed, so forged or broken datagrams cannot move the window.
class ReplayWindow {
 public:
  static constexpr uint64_t kSize = 1024;
  enum class Verdict : uint8_t { Accept, Replay, TooOld, StaleIncarnation };

  [[nodiscard]] Verdict check(uint64_t boot_id, uint64_t seq) const;
  void record(uint64_t boot_id, uint64_t seq);

  [[nodiscard]] uint64_t boot_id() const { return boot_id_; }
  [[nodiscard]] uint64_t highest() const { return highest_; }

 private:
  bool bit(uint64_t seq) const;
  void set_bit(uint64_t seq);
  void clear_bit(uint64_t seq);

  bool started_ = false;
  uint64_t boot_id_ = 0;
  uint64_t highest_ = 0;
  std::array<uint64_t, kSize / 64> bits_{};  // bit (seq % kSize) set: seq seen
};

}  // namespace eipgate::ha

// Message authentication for the HA link: HMAC-SHA256 (OpenSSL EVP_MAC) under a key derived from
// the pair's shared secret, random run identifiers, and the per-run anti-replay window.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace eipgate::ha {

inline constexpr size_t kMacSize = 32;  // HMAC-SHA256

// Holds a keyed HMAC context. Not thread-safe (the context is reused for speed): one per thread.
// The key is never exposed or logged; OpenSSL keeps its own copy, cleansed on destruction.
class Authenticator {
 public:
  // Keys HMAC-SHA256 with `key` as given. nullptr with *error set when OpenSSL cannot build the
  // context or the key is empty.
  static std::unique_ptr<Authenticator> create(std::span<const uint8_t> key, std::string* error);
  // The HA link's authenticator: keys HMAC-SHA256 with derive_link_key(secret), then wipes the
  // derived key and `secret` (OPENSSL_cleanse), so neither the shared secret nor a copy of it
  // stays in memory; only OpenSSL's keyed context (the derived key) does. `secret` is wiped on
  // failure too.
  static std::unique_ptr<Authenticator> create_link(std::span<uint8_t> secret, std::string* error);
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

// The wire's HMAC key: HKDF-SHA256 (RFC 5869) of the shared secret, salt "eipgate-ha", info
// "wire v2 hmac". nullopt on an OpenSSL failure or an empty secret.
[[nodiscard]] std::optional<std::array<uint8_t, kMacSize>> derive_link_key(
    std::span<const uint8_t> secret);

// A run identifier: 64 random bits (RAND_bytes), never 0. A new one at every start; runs are not
// ordered (no clock is involved), freshness comes from the exchange in Codec (wire.h).
[[nodiscard]] uint64_t make_run_id();

// Sliding anti-replay window (as in IPsec, RFC 4303 appendix A) over one sender run's message
// sequence numbers, which start at 1. check() does not change state: record only after the
// message authenticated and parsed, so forged or broken datagrams cannot move the window.
class ReplayWindow {
 public:
  static constexpr uint64_t kSize = 1024;
  enum class Verdict : uint8_t { Accept, Replay, TooOld };

  [[nodiscard]] Verdict check(uint64_t seq) const;
  void record(uint64_t seq);
  void reset();

  [[nodiscard]] uint64_t highest() const { return highest_; }

 private:
  bool bit(uint64_t seq) const;
  void set_bit(uint64_t seq);
  void clear_bit(uint64_t seq);

  uint64_t highest_ = 0;
  std::array<uint64_t, kSize / 64> bits_{};  // bit (seq % kSize) set: seq seen
};

}  // namespace eipgate::ha

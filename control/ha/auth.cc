// HMAC-SHA256 over OpenSSL 3's EVP_MAC, the link key derivation (HKDF), run ids and the
// anti-replay window.
#include "control/ha/auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace eipgate::ha {

struct Authenticator::Impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* keyed = nullptr;  // initialised once with the key; re-init with a null key reuses it

  ~Impl() {
    EVP_MAC_CTX_free(keyed);
    EVP_MAC_free(mac);
  }
};

Authenticator::Authenticator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authenticator::~Authenticator() = default;

std::unique_ptr<Authenticator> Authenticator::create(std::span<const uint8_t> key,
                                                     std::string* error) {
  auto fail = [&](const char* why) -> std::unique_ptr<Authenticator> {
    if (error != nullptr) *error = why;
    return nullptr;
  };
  if (key.empty()) return fail("empty HMAC key");
  auto impl = std::make_unique<Impl>();
  impl->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (impl->mac == nullptr) return fail("OpenSSL: HMAC not available");
  impl->keyed = EVP_MAC_CTX_new(impl->mac);
  if (impl->keyed == nullptr) return fail("OpenSSL: cannot create a MAC context");
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(impl->keyed, key.data(), key.size(), params) != 1) {
    return fail("OpenSSL: cannot key HMAC-SHA256");
  }
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(impl)));
}

std::unique_ptr<Authenticator> Authenticator::create_link(std::span<uint8_t> secret,
                                                          std::string* error) {
  std::optional<std::array<uint8_t, kMacSize>> key = derive_link_key(secret);
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  if (!key) {
    if (error != nullptr) *error = "OpenSSL: cannot derive the HMAC key (HKDF-SHA256)";
    return nullptr;
  }
  auto auth = create(*key, error);
  OPENSSL_cleanse(key->data(), key->size());
  return auth;
}

bool Authenticator::sign(std::span<const uint8_t> data, std::span<uint8_t, kMacSize> mac) {
  size_t len = 0;
  if (EVP_MAC_init(impl_->keyed, nullptr, 0, nullptr) != 1) return false;
  if (EVP_MAC_update(impl_->keyed, data.data(), data.size()) != 1) return false;
  if (EVP_MAC_final(impl_->keyed, mac.data(), &len, mac.size()) != 1) return false;
  return len == kMacSize;
}

bool Authenticator::verify(std::span<const uint8_t> data, std::span<const uint8_t> mac) {
  if (mac.size() != kMacSize) return false;
  std::array<uint8_t, kMacSize> expected{};
  if (!sign(data, expected)) return false;
  return CRYPTO_memcmp(expected.data(), mac.data(), kMacSize) == 0;
}

std::optional<std::array<uint8_t, kMacSize>> derive_link_key(std::span<const uint8_t> secret) {
  if (secret.empty()) return std::nullopt;
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return std::nullopt;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return std::nullopt;
  char digest[] = "SHA256";
  unsigned char salt[] = "eipgate-ha";
  unsigned char info[] = "wire v2 hmac";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info - 1),
      OSSL_PARAM_construct_end(),
  };
  std::array<uint8_t, kMacSize> key{};
  const bool ok = EVP_KDF_derive(ctx, key.data(), key.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);  // cleanses its copy of the secret
  if (!ok) return std::nullopt;
  return key;
}

uint64_t make_run_id() {
  uint64_t id = 0;
  while (id == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) {
      // No entropy source: OpenSSL's CSPRNG is required for the exchange to mean anything.
      std::abort();
    }
  }
  return id;
}

bool ReplayWindow::bit(uint64_t seq) const {
  const uint64_t i = seq % kSize;
  return (bits_[i / 64] >> (i % 64)) & 1U;
}
void ReplayWindow::set_bit(uint64_t seq) {
  const uint64_t i = seq % kSize;
  bits_[i / 64] |= uint64_t{1} << (i % 64);
}
void ReplayWindow::clear_bit(uint64_t seq) {
  const uint64_t i = seq % kSize;
  bits_[i / 64] &= ~(uint64_t{1} << (i % 64));
}

ReplayWindow::Verdict ReplayWindow::check(uint64_t seq) const {
  if (seq == 0) return Verdict::TooOld;  // sequences start at 1
  if (seq > highest_) return Verdict::Accept;
  if (highest_ - seq >= kSize) return Verdict::TooOld;
  return bit(seq) ? Verdict::Replay : Verdict::Accept;
}

void ReplayWindow::record(uint64_t seq) {
  if (seq > highest_) {
    // Slots between the old and the new highest now stand for sequences not yet seen.
    const uint64_t advance = seq - highest_;
    if (advance >= kSize) {
      bits_.fill(0);
    } else {
      for (uint64_t s = highest_ + 1; s <= seq; ++s) clear_bit(s);
    }
    highest_ = seq;
  }
  set_bit(seq);
}

void ReplayWindow::reset() {
  highest_ = 0;
  bits_.fill(0);
}

}  // namespace eipgate::ha

// Toeplitz RSS hash: the Microsoft RSS verification suite (IPv4 rows, values cross-checked with
// DPDK's rte_softrss) and the per-port contribution identity the port allocator relies on.
#include "dataplane/engine/rss.h"

#include <array>
#include <cstdint>
#include <random>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::Toeplitz;

// The key from the Microsoft RSS specification ("Verifying the RSS Hash Calculation").
constexpr std::array<uint8_t, 40> kMsKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

uint32_t net32(uint32_t host) { return __builtin_bswap32(host); }
uint16_t net16(uint16_t host) { return __builtin_bswap16(host); }

struct MsVector {
  const char* src;
  uint16_t sport;
  const char* dst;
  uint16_t dport;
  uint32_t l3;  // "IPv4 only"
  uint32_t l4;  // "IPv4 with TCP"
};

// All five IPv4 rows of the verification suite.
constexpr MsVector kMsVectors[] = {
    {"66.9.149.187", 2794, "161.142.100.80", 1766, 0x323e8fc2, 0x51ccc178},
    {"199.92.111.2", 14230, "65.69.140.83", 4739, 0xd718262a, 0xc626b0ea},
    {"24.19.198.95", 12898, "12.22.207.184", 38024, 0xd2d0a5de, 0x5c2b394a},
    {"38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xafc7327f},
    {"153.39.163.191", 44251, "202.188.127.2", 1303, 0x5d1809c5, 0x10e828a2},
};

class MsRssVectors : public ::testing::TestWithParam<MsVector> {};

TEST_P(MsRssVectors, Ipv4Only) {
  const MsVector& v = GetParam();
  const Toeplitz t(kMsKey);
  EXPECT_EQ(t.hash_l3(net32(ip(v.src)), net32(ip(v.dst))), v.l3);
}

TEST_P(MsRssVectors, Ipv4Tcp) {
  const MsVector& v = GetParam();
  const Toeplitz t(kMsKey);
  EXPECT_EQ(t.hash_l4(net32(ip(v.src)), net32(ip(v.dst)), net16(v.sport), net16(v.dport)), v.l4);
}

TEST_P(MsRssVectors, RawBytesMatchTupleHelpers) {
  const MsVector& v = GetParam();
  const Toeplitz t(kMsKey);
  const uint32_t s = ip(v.src);
  const uint32_t d = ip(v.dst);
  const uint8_t in[12] = {static_cast<uint8_t>(s >> 24),      static_cast<uint8_t>(s >> 16),
                          static_cast<uint8_t>(s >> 8),       static_cast<uint8_t>(s),
                          static_cast<uint8_t>(d >> 24),      static_cast<uint8_t>(d >> 16),
                          static_cast<uint8_t>(d >> 8),       static_cast<uint8_t>(d),
                          static_cast<uint8_t>(v.sport >> 8), static_cast<uint8_t>(v.sport),
                          static_cast<uint8_t>(v.dport >> 8), static_cast<uint8_t>(v.dport)};
  EXPECT_EQ(t.hash(in, 8), v.l3);
  EXPECT_EQ(t.hash(in, 12), v.l4);
}

INSTANTIATE_TEST_SUITE_P(Microsoft, MsRssVectors, ::testing::ValuesIn(kMsVectors));

TEST(Toeplitz, ZeroInputHashesToZero) {
  const Toeplitz t(kMsKey);
  EXPECT_EQ(t.hash_l4(0, 0, 0, 0), 0u);
  EXPECT_EQ(t.hash_l3(0, 0), 0u);
  EXPECT_EQ(t.dport_contrib(0), 0u);
}

TEST(Toeplitz, FirstInputBitSelectsFirstKeyWord) {
  // Input bit 0 set alone XORs in key bits [0, 32).
  const Toeplitz t(kMsKey);
  const uint8_t in[1] = {0x80};
  EXPECT_EQ(t.hash(in, 1), 0x6d5a56dau);
  const uint8_t in2[1] = {0x01};  // bit 7: key bits [7, 39)
  EXPECT_EQ(t.hash(in2, 1), static_cast<uint32_t>((0x6d5a56da25ull >> 1) & 0xffffffffu));
}

TEST(Toeplitz, HashIsLinearInTheInput) {
  const Toeplitz t(kMsKey);
  std::mt19937_64 rng(7);
  for (int n = 0; n < 1000; ++n) {
    const auto a = static_cast<uint32_t>(rng()), b = static_cast<uint32_t>(rng());
    const auto c = static_cast<uint32_t>(rng()), d = static_cast<uint32_t>(rng());
    EXPECT_EQ(t.hash_l3(a ^ c, b ^ d), t.hash_l3(a, b) ^ t.hash_l3(c, d));
  }
}

TEST(Toeplitz, DportContributionIdentity) {
  const Toeplitz t(kMsKey);
  std::mt19937_64 rng(42);
  for (int n = 0; n < 20000; ++n) {
    const auto s = static_cast<uint32_t>(rng());
    const auto d = static_cast<uint32_t>(rng());
    const auto sp = static_cast<uint16_t>(rng());
    const auto p = static_cast<uint16_t>(rng());
    ASSERT_EQ(t.hash_l4(s, d, sp, p), t.hash_l4(s, d, sp, 0) ^ t.dport_contrib(p))
        << "s=" << s << " d=" << d << " sp=" << sp << " p=" << p;
  }
}

TEST(Toeplitz, DportContributionIdentityEveryPort) {
  // Every port value, on one of the documented tuples.
  const Toeplitz t(kMsKey);
  const uint32_t s = net32(ip("66.9.149.187"));
  const uint32_t d = net32(ip("161.142.100.80"));
  const uint16_t sp = net16(2794);
  const uint32_t base = t.hash_l4(s, d, sp, 0);
  for (uint32_t p = 0; p < 65536; ++p) {
    ASSERT_EQ(t.hash_l4(s, d, sp, static_cast<uint16_t>(p)),
              base ^ t.dport_contrib(static_cast<uint16_t>(p)))
        << p;
  }
  EXPECT_EQ(base ^ t.dport_contrib(net16(1766)), 0x51ccc178u);
}

TEST(Toeplitz, OtherKeyDiffers) {
  std::array<uint8_t, 40> key = kMsKey;
  key[1] ^= 0x01;  // key bit 15: used by every set input bit among bits 0..15 (66.9.x.x)
  const Toeplitz a(kMsKey), b(key);
  EXPECT_NE(a.hash_l3(net32(ip("66.9.149.187")), net32(ip("161.142.100.80"))),
            b.hash_l3(net32(ip("66.9.149.187")), net32(ip("161.142.100.80"))));
}

TEST(Toeplitz, InputLongerThan36BytesIsCappedAt36) {
  const Toeplitz t(kMsKey);
  uint8_t in[40] = {};
  for (size_t i = 0; i < sizeof in; ++i) in[i] = static_cast<uint8_t>(i * 37 + 1);
  EXPECT_EQ(t.hash(in, 40), t.hash(in, 36));
}

}  // namespace
}  // namespace eipgate::testing

// Property test (fixed seed): a random IPv6 packet from an inside host to a remote under a random
// RFC 6052 prefix, translated IPv6 -> IPv4, then a reply built to the translated tuple and
// translated IPv4 -> IPv6, gives back the original tuple reversed; every checksum on the way is
// valid by a from-scratch recompute.
#include <gtest/gtest.h>

#include <random>

#include "dataplane/engine/nat64_addr.h"
#include "dataplane/engine/nat64_xlate.h"
#include "tests/unit/engine/nat64_builder.h"

namespace eipgate::testing {
namespace {

namespace n64 = engine::nat64;
using namespace nat64b;  // NOLINT(build/namespaces)
using n64::Drop;

constexpr uint32_t kSeed = 0x6464ff9b;
constexpr int kIterations = 2000;
constexpr uint32_t kHeadroom = 128;

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Checksum of an L4 segment with its pseudo-header is valid when the full sum folds to 0xffff.
bool l4_valid_v4(const uint8_t* l4, size_t n, uint8_t proto, uint32_t src, uint32_t dst) {
  uint32_t acc = sum_be(l4, n);
  if (proto != 1) acc += pseudo4(src, dst, proto, static_cast<uint32_t>(n));
  return fin(acc) == 0;
}
bool l4_valid_v6(const uint8_t* l4, size_t n, uint8_t proto, const A6& src, const A6& dst) {
  return fin(sum_be(l4, n) + pseudo6(src, dst, proto, static_cast<uint32_t>(n))) == 0;
}

TEST(Nat64Property, RoundTripGivesBackTheTupleWithValidChecksums) {
  std::mt19937 rng(kSeed);
  auto u8 = [&] { return static_cast<uint8_t>(rng()); };
  auto u16 = [&] { return static_cast<uint16_t>(rng()); };
  const uint8_t lens[] = {32, 40, 48, 56, 64, 96};
  const n64::Config cfg{};
  int counts[3] = {};
  for (int it = 0; it < kIterations; ++it) {
    SCOPED_TRACE("iteration " + std::to_string(it));
    // A network-specific prefix under 2001:db8::/32.
    n64::Prefix pfx{v6("2001:db8::"), lens[rng() % 6]};
    for (unsigned i = 4; i < pfx.len / 8u; ++i) pfx.addr[i] = u8();
    if (pfx.len == 96) pfx.addr[8] = 0;
    ASSERT_EQ(n64::validate_prefix(pfx), n64::PrefixError::None);
    const uint32_t remote4 = static_cast<uint32_t>(rng());
    A6 remote6{};
    ASSERT_EQ(n64::embed(pfx, remote4, remote6.data()), n64::MapError::None);
    A6 host6 = v6("2001:db8:ffff:1::");
    for (int i = 8; i < 16; ++i) host6[i] = u8();
    const uint32_t outside4 = static_cast<uint32_t>(rng());

    const int kind = static_cast<int>(rng() % 3);  // 0 TCP, 1 UDP, 2 echo
    ++counts[kind];
    const uint16_t hport = static_cast<uint16_t>(1 + rng() % 65535);
    const uint16_t rport = static_cast<uint16_t>(1 + rng() % 65535);
    const uint16_t oport = static_cast<uint16_t>(1 + rng() % 65535);
    Bytes data(rng() % 300);
    for (uint8_t& b : data) b = u8();
    const uint8_t proto6 = kind == 0 ? 6 : kind == 1 ? 17 : 58;
    const uint8_t proto4 = kind == 2 ? 1 : proto6;
    Bytes l4 = kind == 0   ? tcp(hport, rport, static_cast<uint32_t>(rng()), u8() | 0x02, data)
               : kind == 1 ? udp(hport, rport, data)
                           : icmp(128, 0, echo_rest(hport, u16()), data);
    fix_l4_v6(l4, proto6, host6, remote6);
    const uint8_t hop = static_cast<uint8_t>(2 + rng() % 254);
    const uint8_t tclass = u8();
    const bool ext = rng() % 4 == 0;
    const Bytes pkt6 = ip6({host6, remote6, ext ? uint8_t{60} : proto6, hop, tclass,
                            static_cast<uint32_t>(rng() & 0xfffff)},
                           ext ? cat(ext8(proto6, 60), l4) : l4);

    // IPv6 -> IPv4, in place.
    Bytes buf(kHeadroom + 1600);
    std::copy(pkt6.begin(), pkt6.end(), buf.begin() + kHeadroom);
    uint8_t* l3 = buf.data() + kHeadroom;
    n64::Info6 i6;
    ASSERT_EQ(n64::parse6(l3, static_cast<uint32_t>(pkt6.size()), i6), Drop::None);
    EXPECT_EQ(i6.src, host6);
    EXPECT_EQ(i6.dst, remote6);
    EXPECT_EQ(i6.sport, net16(hport));  // echo request: the id
    EXPECT_EQ(i6.dport, kind == 2 ? 0 : net16(rport));
    uint32_t dst4 = 0;
    ASSERT_EQ(n64::extract(pfx, i6.dst, dst4), n64::MapError::None);
    ASSERT_EQ(dst4, remote4);
    n64::To4 to4;
    to4.src = outside4;
    to4.dst = dst4;
    to4.sport = net16(oport);
    to4.dport = i6.dport;
    to4.ip_id = u16();
    n64::Output o;
    ASSERT_EQ(n64::xlate_6to4(l3, static_cast<uint32_t>(pkt6.size()), i6, to4, cfg, o), Drop::None);
    const uint8_t* h4 = o.l3;
    ASSERT_EQ(o.len, 20 + l4.size());
    EXPECT_EQ(h4[0], 0x45);
    EXPECT_EQ(h4[1], tclass);
    EXPECT_EQ(rd16(h4 + 2), o.len);
    EXPECT_EQ(h4[8], hop - 1);
    EXPECT_EQ(h4[9], proto4);
    EXPECT_EQ(fin(sum_be(h4, 20)), 0) << "IPv4 header checksum";
    EXPECT_EQ(std::memcmp(h4 + 12, &outside4, 4), 0);
    EXPECT_EQ(std::memcmp(h4 + 16, &remote4, 4), 0);
    const uint8_t* l4out = h4 + 20;
    EXPECT_TRUE(l4_valid_v4(l4out, l4.size(), proto4, outside4, remote4)) << "L4 checksum v4";
    if (kind == 2) {
      EXPECT_EQ(l4out[0], 8);
      EXPECT_EQ(rd16(l4out + 4), oport);
    } else {
      EXPECT_EQ(rd16(l4out), oport);
      EXPECT_EQ(rd16(l4out + 2), rport);
    }
    // The payload did not move or change.
    const size_t hdr = kind == 0 ? 20 : 8;
    EXPECT_EQ(std::memcmp(l4out + hdr, l4.data() + hdr, l4.size() - hdr), 0);

    // The remote's reply to the translated tuple.
    Bytes rdata(rng() % 300);
    for (uint8_t& b : rdata) b = u8();
    Bytes r4 = kind == 0   ? tcp(rport, oport, static_cast<uint32_t>(rng()), 0x12, rdata)
               : kind == 1 ? udp(rport, oport, rdata)
                           : icmp(0, 0, echo_rest(oport, u16()), rdata);
    const bool zero_udp = kind == 1 && rng() % 2 == 0;
    if (!zero_udp) fix_l4_v4(r4, proto4, remote4, outside4);
    const uint8_t ttl = static_cast<uint8_t>(2 + rng() % 254);
    const uint8_t tos = u8();
    Ip4 rh{remote4, outside4, proto4, ttl, tos, u16(), rng() % 2 == 0};
    const Bytes reply4 = ip4(rh, r4);
    Bytes buf2(kHeadroom + 1600);
    std::copy(reply4.begin(), reply4.end(), buf2.begin() + kHeadroom);
    uint8_t* l3b = buf2.data() + kHeadroom;
    n64::Info4 i4;
    ASSERT_EQ(n64::parse4(l3b, static_cast<uint32_t>(reply4.size()), i4), Drop::None);
    // The engine's out2in lookup: the flow keyed by (remote, outside port) gives the host back.
    EXPECT_EQ(i4.src, remote4);
    EXPECT_EQ(i4.dst, outside4);
    EXPECT_EQ(i4.dport, net16(oport));  // echo reply: the id
    n64::To6 to6;
    ASSERT_EQ(n64::embed(pfx, i4.src, to6.src.data()), n64::MapError::None);
    to6.dst = i6.src;
    to6.sport = i4.sport;
    to6.dport = i6.sport;  // the host's port / echo id
    ASSERT_EQ(
        n64::xlate_4to6(l3b, static_cast<uint32_t>(reply4.size()), kHeadroom, i4, to6, cfg, o),
        Drop::None);
    const uint8_t* h6 = o.l3;
    ASSERT_EQ(o.len, 40 + r4.size());
    EXPECT_EQ(h6[0] >> 4, 6);
    EXPECT_EQ(static_cast<uint8_t>(((h6[0] & 15) << 4) | (h6[1] >> 4)), tos);
    EXPECT_EQ(h6[1] & 15, 0);
    EXPECT_EQ(rd16(h6 + 2), 0) << "flow label";
    EXPECT_EQ(rd16(h6 + 4), r4.size());
    EXPECT_EQ(h6[6], proto6);
    EXPECT_EQ(h6[7], ttl - 1);
    A6 s{}, d{};
    std::memcpy(s.data(), h6 + 8, 16);
    std::memcpy(d.data(), h6 + 24, 16);
    EXPECT_EQ(s, remote6) << "reply source is the original destination";
    EXPECT_EQ(d, host6) << "reply destination is the original source";
    const uint8_t* l4b = h6 + 40;
    EXPECT_TRUE(l4_valid_v6(l4b, r4.size(), proto6, remote6, host6)) << "L4 checksum v6";
    if (kind == 2) {
      EXPECT_EQ(l4b[0], 129);
      EXPECT_EQ(rd16(l4b + 4), hport) << "echo id back to the host's";
    } else {
      EXPECT_EQ(rd16(l4b), rport);
      EXPECT_EQ(rd16(l4b + 2), hport);
    }
    EXPECT_EQ(o.udp_checksum_computed, zero_udp);
  }
  // Each kind was exercised many times.
  for (int c : counts) EXPECT_GT(c, kIterations / 5);
}

}  // namespace
}  // namespace eipgate::testing

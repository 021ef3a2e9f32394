// Checksums: the RFC 1624 helpers of engine/checksum.h against full recomputes, and a property
// test that every incremental update the engine makes, both directions, equals a recompute.
#include "dataplane/engine/checksum.h"

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

namespace csum = engine::csum;
using engine::Verdict;

constexpr uint32_t kSeed = 0x5eed1624;

// Raw 16-bit word as stored at p (what the csum helpers work on).
uint16_t raw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void put_raw16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint32_t raw32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void put_raw32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Full recompute of the checksum stored at `at` (the field counts as zero), as stored bytes.
uint16_t recompute(Bytes b, size_t at) {
  b[at] = 0;
  b[at + 1] = 0;
  const uint16_t be = inet_checksum(b);  // reference implementation, big-endian value
  const uint8_t bytes[2] = {static_cast<uint8_t>(be >> 8), static_cast<uint8_t>(be)};
  return raw16(bytes);
}

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// --- the helpers ------------------------------------------------------------------------------

TEST(EngineChecksum, FullSumMatchesTheReferenceForAllLengths) {
  std::mt19937 rng(kSeed);
  for (size_t n = 0; n < 300; ++n) {
    for (int rep = 0; rep < 10; ++rep) {
      const Bytes b = random_bytes(rng, n);
      const uint16_t be = inet_checksum(b);
      const uint8_t want[2] = {static_cast<uint8_t>(be >> 8), static_cast<uint8_t>(be)};
      EXPECT_EQ(csum::finish(csum::partial(b.data(), b.size())), raw16(want)) << "length " << n;
    }
  }
}

TEST(EngineChecksum, PartialSumsChainAcrossEvenSplits) {
  std::mt19937 rng(kSeed + 1);
  for (int rep = 0; rep < 1000; ++rep) {
    const Bytes b = random_bytes(rng, 1 + rng() % 200);
    const size_t split = (rng() % (b.size() / 2 + 1)) * 2;
    const uint32_t whole = csum::partial(b.data(), b.size());
    const uint32_t chained =
        csum::partial(b.data() + split, b.size() - split, csum::partial(b.data(), split));
    EXPECT_EQ(csum::fold(whole), csum::fold(chained));
  }
}

TEST(EngineChecksum, Delta16MatchesRecompute) {
  std::mt19937 rng(kSeed + 2);
  for (int rep = 0; rep < 20000; ++rep) {
    const size_t words = 3 + rng() % 40;
    Bytes b = random_bytes(rng, words * 2);
    const size_t at = (rng() % words) * 2;
    size_t w = (rng() % words) * 2;
    if (w == at) w = (w + 2) % (words * 2);
    // Real headers are never all zero; with every other word zero, a recompute gives the
    // other zero (0xFFFF) than any incremental update can.
    size_t k = 0;
    while (k == at || k == w) k += 2;
    if (raw16(&b[k]) == 0) b[k] = 0x45;
    put_raw16(&b[at], recompute(b, at));
    const uint16_t old_w = raw16(&b[w]);
    // Corner values a third of the time: 0x0000 and 0xFFFF are the two zeros.
    const auto pick = rng() % 6;
    const uint16_t new_w = pick == 0 ? 0 : pick == 1 ? 0xffff : static_cast<uint16_t>(rng());
    put_raw16(&b[w], new_w);
    const uint16_t inc = csum::apply(raw16(&b[at]), csum::delta16(old_w, new_w));
    put_raw16(&b[at], inc);
    ASSERT_EQ(csum::fold(csum::partial(b.data(), b.size())), 0xffff) << "rep " << rep;
    ASSERT_EQ(inc, recompute(b, at)) << "rep " << rep << " old " << old_w << " new " << new_w;
  }
}

TEST(EngineChecksum, Delta32AndAddMatchRecompute) {
  std::mt19937 rng(kSeed + 3);
  for (int rep = 0; rep < 20000; ++rep) {
    Bytes b = random_bytes(rng, 40);  // an IPv4 header + 20 bytes
    const size_t at = 10;
    put_raw16(&b[at], recompute(b, at));
    // An address change (offset 12 or 16) and a 16-bit change elsewhere, folded into one delta.
    const size_t a = rng() % 2 ? 12 : 16;
    const uint32_t old_a = raw32(&b[a]);
    const uint32_t new_a = rng() % 8 == 0 ? old_a : static_cast<uint32_t>(rng());
    put_raw32(&b[a], new_a);
    const size_t w = 20 + (rng() % 10) * 2;
    const uint16_t old_w = raw16(&b[w]);
    const uint16_t new_w = static_cast<uint16_t>(rng());
    put_raw16(&b[w], new_w);
    const uint16_t d = csum::add(csum::delta32(old_a, new_a), csum::delta16(old_w, new_w));
    const uint16_t inc = csum::apply(raw16(&b[at]), d);
    put_raw16(&b[at], inc);
    ASSERT_EQ(inc, recompute(b, at)) << "rep " << rep;
  }
}

TEST(EngineChecksum, NegatedDeltaUndoesTheChange) {
  std::mt19937 rng(kSeed + 4);
  for (int rep = 0; rep < 20000; ++rep) {
    const uint16_t c = static_cast<uint16_t>(rng() % 0xffff);  // never 0xFFFF (see below)
    const uint32_t a = static_cast<uint32_t>(rng());
    const uint32_t b = static_cast<uint32_t>(rng());
    const uint16_t d = csum::delta32(a, b);
    EXPECT_EQ(csum::apply(csum::apply(c, d), csum::negate(d)), c);
    EXPECT_EQ(csum::apply(csum::apply(c, d), csum::delta32(b, a)), c);
  }
}

TEST(EngineChecksum, DeltaSumsMatchesRecompute) {
  std::mt19937 rng(kSeed + 5);
  for (int rep = 0; rep < 5000; ++rep) {
    Bytes b = random_bytes(rng, 2 * (10 + rng() % 30));
    const size_t at = 2;
    put_raw16(&b[at], recompute(b, at));
    // A range after the checksum changes arbitrarily (odd length included).
    const size_t from = 4 + (rng() % 4) * 2;
    const size_t len = 1 + rng() % (b.size() - from - 1);
    const uint32_t before = csum::partial(&b[from], len);
    for (size_t i = from; i < from + len; ++i) b[i] = static_cast<uint8_t>(rng());
    const uint32_t after = csum::partial(&b[from], len);
    const uint16_t inc = csum::apply(raw16(&b[at]), csum::delta_sums(before, after));
    put_raw16(&b[at], inc);
    ASSERT_EQ(csum::fold(csum::partial(b.data(), b.size())), 0xffff) << "rep " << rep;
    ASSERT_EQ(inc, recompute(b, at)) << "rep " << rep;
  }
}

// RFC 1624 section 4: m = 0x5555 -> 0x3285 with the rest summing to 0xCD7A. Recomputing gives
// 0x0000; eqn. 2 (HC - ~m - m') gives the wrong 0xFFFF; eqn. 3 (what apply() does) gives 0x0000.
TEST(EngineChecksum, Rfc1624ExampleGivesPositiveZero) {
  EXPECT_EQ(csum::apply(0xdd2f, csum::delta16(0x5555, 0x3285)), 0x0000);
  // The same in a buffer: words [rest, m, checksum].
  uint8_t b[6];
  put_raw16(b, 0xcd7a);
  put_raw16(b + 2, 0x5555);
  put_raw16(b + 4, csum::finish(csum::partial(b, 4)));
  EXPECT_EQ(raw16(b + 4), 0xdd2f);
  put_raw16(b + 2, 0x3285);
  const uint16_t inc = csum::apply(raw16(b + 4), csum::delta16(0x5555, 0x3285));
  EXPECT_EQ(inc, 0x0000);
  put_raw16(b + 4, 0);
  EXPECT_EQ(csum::finish(csum::partial(b, 6)), inc);
}

TEST(EngineChecksum, TheTwoZerosAreInterchangeable) {
  // 0x0000 -> 0xFFFF changes nothing in one's complement arithmetic.
  EXPECT_EQ(csum::apply(0x1234, csum::delta16(0x0000, 0xffff)), 0x1234);
  EXPECT_EQ(csum::apply(0x1234, csum::delta16(0xffff, 0x0000)), 0x1234);
  // An unchanged value is a no-op, whichever zero the delta comes out as.
  for (uint32_t c = 0; c < 0xffff; c += 0x1111) {
    EXPECT_EQ(csum::apply(static_cast<uint16_t>(c), csum::delta32(0xc0a80001, 0xc0a80001)), c);
    EXPECT_EQ(csum::apply(static_cast<uint16_t>(c), csum::delta16(0xabcd, 0xabcd)), c);
  }
  // A stored 0xFFFF (never produced by a computation over non-zero data, but UDP's "computed
  // zero") becomes 0x0000 under the negative-zero delta of an unchanged value: equivalent, but 0
  // means "no checksum" to UDP, which is why the engine maps a UDP result of 0 back to 0xFFFF.
  EXPECT_EQ(csum::apply(0xffff, csum::delta16(0xabcd, 0xabcd)), 0x0000);
  EXPECT_EQ(csum::apply(0xffff, 0x0000), 0xffff);
}

// --- the engine, end to end -------------------------------------------------------------------

struct Gen {
  std::mt19937 rng{kSeed + 100};
  uint32_t range(uint32_t lo, uint32_t hi) {
    return lo + static_cast<uint32_t>(rng() % (uint64_t{hi} - lo + 1));
  }
  bool chance(uint32_t one_in) { return rng() % one_in == 0; }
  Bytes bytes(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  }
  Bytes options() {
    switch (range(0, 4)) {
      case 0:
        return Bytes(range(1, 40), 1);  // NOPs
      case 1: {                         // record route with k empty slots
        const uint8_t k = static_cast<uint8_t>(range(1, 9));
        Bytes o{7, static_cast<uint8_t>(3 + 4 * k), 4};
        o.resize(3 + 4 * k, 0);
        return o;
      }
      case 2:
        return {0x94, 4, 0, 0};  // router alert
      case 3: {                  // timestamps with random data
        Bytes o{0x44, 12, 5, 0};
        const Bytes t = bytes(8);
        o.insert(o.end(), t.begin(), t.end());
        return o;
      }
      default:
        return {1, 0};  // NOP, EOL
    }
  }
  // Common IP-level randomness: TTL >= 2, TOS, ID, DF, options, a VLAN tag.
  void ip_extras(Packet& p) {
    p.ttl(static_cast<uint8_t>(range(2, 255)))
        .tos(static_cast<uint8_t>(rng()))
        .id(static_cast<uint16_t>(rng()))
        .df(chance(2));
    if (chance(4)) p.ip_options(options());
    if (chance(6)) p.vlan(static_cast<uint16_t>(range(1, 4094)));
  }
};

// Asserts the checksums of a forwarded frame equal a full recompute; UDP "no checksum" stays 0.
void expect_recomputed(const Bytes& out, bool udp_zero) {
  EXPECT_TRUE(ip_checksum_ok(out));
  const Parsed o = parse(out);
  EXPECT_EQ(o.ip_checksum, expected_ip_checksum(out));
  if (udp_zero) {
    EXPECT_EQ(o.l4_checksum, 0);
    return;
  }
  EXPECT_TRUE(l4_checksum_ok(out));
  const auto want = expected_l4_checksum(out);
  ASSERT_TRUE(want.has_value());
  // ICMP has no pseudo header, so a message can sum to +0 and then verifies only with 0xFFFF;
  // the engine writes 0xFFFF for every ICMP zero, which is valid wherever 0x0000 is.
  if (o.proto == kProtoIcmp && *want == 0) {
    EXPECT_EQ(o.l4_checksum, 0xffff);
  } else {
    EXPECT_EQ(o.l4_checksum, *want);
  }
}

TEST(EngineChecksumProperty, IncrementalUpdatesEqualFullRecomputeBothWays) {
  constexpr int kFlows = 5000;
  auto cfg = default_config();
  cfg.max_flows = 1 << 13;
  EngineHarness h(cfg);
  Gen g;
  int checked = 0;
  for (int i = 0; i < kFlows && !::testing::Test::HasFailure(); ++i) {
    const uint8_t proto = std::array<uint8_t, 3>{kProtoUdp, kProtoTcp, kProtoIcmp}[g.range(0, 2)];
    const uint32_t inside = ip("10.0.0.0") | g.range(0x0100, 0xfffe);
    const uint32_t remote = ip("8.0.0.0") | g.range(1, 0xfffffe);
    const uint16_t iport = static_cast<uint16_t>(g.range(1, 65535));
    const uint16_t rport = static_cast<uint16_t>(g.range(1, 65535));
    const bool zero_out = proto == kProtoUdp && g.chance(5);
    const bool zero_in = proto == kProtoUdp && g.chance(5);

    auto outbound = [&](uint8_t tcp_flags) {
      Packet p;
      p.ipv4(inside, remote);
      if (proto == kProtoUdp) p.udp(iport, rport);
      if (proto == kProtoTcp)
        p.tcp(iport, rport, tcp_flags)
            .seq(static_cast<uint32_t>(g.rng()))
            .ack(static_cast<uint32_t>(g.rng()))
            .window(static_cast<uint16_t>(g.rng()));
      if (proto == kProtoIcmp)
        p.icmp_echo(kIcmpEchoRequest, 0, iport, static_cast<uint16_t>(g.rng()));
      if (zero_out) p.udp_zero_checksum();
      g.ip_extras(p);
      p.payload(g.bytes(g.range(0, 300)));
      return p;
    };
    SCOPED_TRACE("flow " + std::to_string(i) + " proto " + std::to_string(proto));

    // 1: creates the flow (slow path).
    const Packet p1 = outbound(kTcpSyn);
    Sent s1 = h.send(p1.build());
    ASSERT_EQ(s1.res.verdict, Verdict::ToOutside) << hexdump(p1.build());
    const Parsed o1 = parse(s1.out);
    EXPECT_EQ(o1.ip_src, ip(kOutside));
    expect_recomputed(s1.out, zero_out);
    const uint16_t oport = proto == kProtoIcmp ? o1.icmp_id : o1.sport;

    // 2: the reply (fast path, outside -> inside).
    Packet r;
    r.ipv4(remote, kOutside);
    if (proto == kProtoUdp) r.udp(rport, oport);
    if (proto == kProtoTcp)
      r.tcp(rport, oport, kTcpSyn | kTcpAck)
          .seq(static_cast<uint32_t>(g.rng()))
          .ack(static_cast<uint32_t>(g.rng()));
    if (proto == kProtoIcmp) r.icmp_echo(kIcmpEchoReply, 0, oport, static_cast<uint16_t>(g.rng()));
    if (zero_in) r.udp_zero_checksum();
    g.ip_extras(r);
    r.payload(g.bytes(g.range(0, 300)));
    Sent s2 = h.send(r.build());
    ASSERT_EQ(s2.res.verdict, Verdict::ToInside) << hexdump(r.build());
    const Parsed o2 = parse(s2.out);
    EXPECT_EQ(o2.ip_dst, inside);
    EXPECT_EQ(proto == kProtoIcmp ? o2.icmp_id : o2.dport, iport);
    expect_recomputed(s2.out, zero_in);

    // 3: more from inside on the established flow (fast path, inside -> outside).
    const Packet p3 = outbound(kTcpAck);
    Sent s3 = h.send(p3.build());
    ASSERT_EQ(s3.res.verdict, Verdict::ToOutside);
    const Parsed o3 = parse(s3.out);
    EXPECT_EQ(proto == kProtoIcmp ? o3.icmp_id : o3.sport, oport);
    expect_recomputed(s3.out, zero_out);
    checked += 3;
  }
  EXPECT_EQ(checked, 3 * kFlows);
}

// Bursts of mixed directions through the staged fast path (prefetch, bulk lookup, rewrite).
TEST(EngineChecksumProperty, BurstsOfRepliesEqualFullRecompute) {
  auto cfg = default_config();
  cfg.max_flows = 1 << 12;
  EngineHarness h(cfg);
  Gen g;
  g.rng.seed(kSeed + 200);
  struct FlowT {
    uint32_t inside, remote;
    uint16_t iport, rport, oport;
  };
  std::vector<FlowT> flows;
  for (int i = 0; i < 256; ++i) {
    FlowT f{ip("10.0.0.0") | g.range(0x0100, 0xfffe), ip("8.0.0.0") | g.range(1, 0xfffffe),
            static_cast<uint16_t>(g.range(1, 65535)), static_cast<uint16_t>(g.range(1, 65535)), 0};
    Sent s = h.send(Packet().ipv4(f.inside, f.remote).udp(f.iport, f.rport).payload("x").build());
    ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
    f.oport = parse(s.out).sport;
    flows.push_back(f);
  }
  for (int round = 0; round < 40; ++round) {
    std::vector<Bytes> bufs;
    std::vector<bool> zero;
    for (int k = 0; k < 64; ++k) {
      const FlowT& f = flows[g.range(0, 255)];
      Packet p;
      if (g.chance(2)) {
        p.ipv4(f.inside, f.remote).udp(f.iport, f.rport);
      } else {
        p.ipv4(f.remote, kOutside).udp(f.rport, f.oport);
      }
      const bool z = g.chance(5);
      if (z) p.udp_zero_checksum();
      g.ip_extras(p);
      p.payload(g.bytes(g.range(0, 200)));
      bufs.push_back(p.build());
      bufs.back().resize(bufs.back().size() + 16);
      zero.push_back(z);
    }
    std::vector<engine::PacketBuf> pkts;
    std::vector<engine::PacketBuf*> ptrs;
    for (Bytes& b : bufs)
      pkts.push_back(
          {b.data(), static_cast<uint32_t>(b.size() - 16), static_cast<uint32_t>(b.size()), {}});
    for (auto& p : pkts) ptrs.push_back(&p);
    std::vector<engine::Result> res(ptrs.size());
    h.engine().process_burst(ptrs.data(), static_cast<uint32_t>(ptrs.size()), h.now_ns(),
                             res.data());
    for (size_t k = 0; k < bufs.size(); ++k) {
      ASSERT_NE(res[k].verdict, Verdict::Drop) << "round " << round << " packet " << k;
      const Bytes out(bufs[k].begin(), bufs[k].begin() + pkts[k].len);
      SCOPED_TRACE("round " + std::to_string(round) + " packet " + std::to_string(k));
      expect_recomputed(out, zero[k]);
    }
  }
}

}  // namespace
}  // namespace eipgate::testing

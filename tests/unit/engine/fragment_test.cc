// Fragments through the NAT: in order and out of order, both directions, UDP/TCP/ICMP (NAT
// Gateway drops TCP and ICMP fragments; we translate them), held fragments, their timeout and
// the hold limit.
#include <deque>
#include <optional>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Event;
using engine::PacketBuf;
using engine::Result;
using engine::Verdict;

// Keeps every packet buffer alive for the rig's lifetime, as a driver must for held packets.
// Buffers are declared before the engine so the engine goes first.
class FragRig {
 public:
  explicit FragRig(const engine::EngineConfig& cfg = default_config()) : h_(cfg) {}

  // Sends frames as one burst; returns the verdict of each. Index i of the rig's packets is
  // first_index() + i.
  std::vector<Result> burst(const std::vector<Bytes>& frames, size_t headroom = 64) {
    std::vector<PacketBuf*> ptrs;
    for (const Bytes& f : frames) {
      bufs_.emplace_back(f);
      bufs_.back().resize(f.size() + headroom);
      pkts_.push_back(PacketBuf{bufs_.back().data(),
                                static_cast<uint32_t>(f.size()),
                                static_cast<uint32_t>(bufs_.back().size()),
                                {}});
      ptrs.push_back(&pkts_.back());
    }
    std::vector<Result> res(frames.size());
    h_.engine().process_burst(ptrs.data(), static_cast<uint32_t>(ptrs.size()), h_.now_ns(),
                              res.data());
    return res;
  }
  Result send(const Bytes& frame) { return burst({frame})[0]; }

  struct Released {
    size_t index;  // which packet of the rig
    Result res;
  };
  std::vector<Released> pop(uint32_t max = 256) {
    std::vector<PacketBuf*> ptrs(max);
    std::vector<Result> res(max);
    const uint32_t n = h_.engine().pop_released(ptrs.data(), res.data(), max, h_.now_ns());
    std::vector<Released> out;
    for (uint32_t k = 0; k < n; ++k) out.push_back({index_of(ptrs[k]), res[k]});
    return out;
  }

  // The current bytes of packet i (after whatever the engine did to it).
  Bytes frame(size_t i) const { return Bytes(bufs_[i].begin(), bufs_[i].begin() + pkts_[i].len); }
  size_t count() const { return pkts_.size(); }
  EngineHarness& h() { return h_; }

 private:
  size_t index_of(const PacketBuf* p) const {
    for (size_t i = 0; i < pkts_.size(); ++i) {
      if (&pkts_[i] == p) return i;
    }
    ADD_FAILURE() << "pop_released returned a packet the rig never sent";
    return pkts_.size();
  }

  std::deque<Bytes> bufs_;
  std::deque<PacketBuf> pkts_;
  EngineHarness h_;
};

// 3000 bytes of position-dependent data: fragments of 1000 bytes give 4 pieces.
Packet big_udp_out() {
  return Packet().ipv4(kInsideHost, kServer).id(0x1111).udp(5000, 9000).payload_fill(3000);
}

std::vector<Bytes> frames_of(const FragRig& rig, size_t first, size_t n) {
  std::vector<Bytes> out;
  for (size_t i = first; i < first + n; ++i) out.push_back(rig.frame(i));
  return out;
}

void expect_same_frame(const Bytes& got, const Bytes& want) {
  EXPECT_EQ(hexdump(got), hexdump(want));
}

// --- in order ---------------------------------------------------------------------------------

TEST(EngineFragments, UdpOutboundInOrderAllTranslatedToTheSameAddress) {
  FragRig rig;
  const Packet orig = big_udp_out();
  const std::vector<Bytes> frags = fragment(orig.build(), 1000);
  ASSERT_EQ(frags.size(), 4u);
  const uint64_t translated0 = rig.h().events(Event::FragmentsTranslated);

  std::vector<Result> res;
  for (const Bytes& f : frags) res.push_back(rig.send(f));
  for (const Result& r : res) EXPECT_EQ(r.verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated) - translated0, 4u);
  EXPECT_EQ(rig.h().events(Event::PacketsDropCount), 0u);
  EXPECT_EQ(rig.h().engine().active_flows(), 1u);

  const std::vector<Bytes> out = frames_of(rig, 0, 4);
  const Parsed first = parse(out[0]);
  const uint16_t oport = first.sport;
  EXPECT_GE(oport, 1024);
  for (size_t i = 0; i < out.size(); ++i) {
    const Parsed o = parse(out[i]);
    EXPECT_EQ(o.ip_src, ip(kOutside)) << "fragment " << i;
    EXPECT_EQ(o.ip_dst, ip(kServer)) << "fragment " << i;
    EXPECT_EQ(o.ttl, 63) << "fragment " << i;
    EXPECT_EQ(o.ip_id, 0x1111) << "fragment " << i;
    EXPECT_TRUE(ip_checksum_ok(out[i])) << "fragment " << i;
    // Only the address, TTL and checksums change: offsets, lengths and data stay.
    const Parsed in = parse(frags[i]);
    EXPECT_EQ(o.frag_offset, in.frag_offset);
    EXPECT_EQ(o.mf, in.mf);
    EXPECT_EQ(o.total_length, in.total_length);
  }
  const std::optional<Bytes> whole = reassemble(out);
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(l4_checksum_ok(*whole));
  Packet want = orig;
  want.ip_src(kOutside).sport(oport).ttl(63);
  expect_same_frame(*whole, want.build());
}

TEST(EngineFragments, UdpInboundReplyFragmentsInOrder) {
  FragRig rig;
  ASSERT_EQ(
      rig.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 9000).payload("go").build()).verdict,
      Verdict::ToOutside);
  const uint16_t oport = parse(rig.frame(0)).sport;

  const Packet reply =
      Packet().ipv4(kServer, kOutside).id(0x2222).ttl(40).udp(9000, oport).payload_fill(2500);
  const std::vector<Bytes> frags = fragment(reply.build(), 800);
  ASSERT_EQ(frags.size(), 4u);
  const uint64_t translated0 = rig.h().events(Event::FragmentsTranslated);
  for (const Bytes& f : frags) EXPECT_EQ(rig.send(f).verdict, Verdict::ToInside);
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated) - translated0, 4u);

  const std::vector<Bytes> out = frames_of(rig, 1, 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const Parsed o = parse(out[i]);
    EXPECT_EQ(o.ip_src, ip(kServer)) << "fragment " << i;
    EXPECT_EQ(o.ip_dst, ip(kInsideHost)) << "fragment " << i;
    EXPECT_EQ(o.ttl, 39) << "fragment " << i;
    EXPECT_TRUE(ip_checksum_ok(out[i])) << "fragment " << i;
  }
  const std::optional<Bytes> whole = reassemble(out);
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(l4_checksum_ok(*whole));
  Packet want = reply;
  want.ip_dst(kInsideHost).dport(5000).ttl(39);
  expect_same_frame(*whole, want.build());
}

// --- out of order -----------------------------------------------------------------------------

TEST(EngineFragments, LastFragmentFirstIsHeldThenReleasedTranslated) {
  FragRig rig;
  const Packet orig = big_udp_out();
  const std::vector<Bytes> frags = fragment(orig.build(), 1000);
  ASSERT_EQ(frags.size(), 4u);

  // Last piece first: nothing to translate it with yet.
  const Result r_last = rig.send(frags[3]);
  EXPECT_EQ(r_last.verdict, Verdict::Held);
  EXPECT_EQ(rig.h().events(Event::FragmentsHeld), 1u);
  EXPECT_TRUE(rig.pop().empty());             // nothing released before the first arrives
  expect_same_frame(rig.frame(0), frags[3]);  // untouched while held

  // The first fragment creates the flow and releases the held one, translated.
  EXPECT_EQ(rig.send(frags[0]).verdict, Verdict::ToOutside);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].index, 0u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::ToOutside);
  EXPECT_TRUE(rig.pop().empty());  // released exactly once

  EXPECT_EQ(rig.send(frags[2]).verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.send(frags[1]).verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated), 4u);
  EXPECT_EQ(rig.h().events(Event::PacketsDropCount), 0u);

  const Parsed first = parse(rig.frame(1));
  const Parsed last = parse(rig.frame(0));
  EXPECT_EQ(last.ip_src, ip(kOutside));
  EXPECT_EQ(last.ttl, 63);
  EXPECT_TRUE(ip_checksum_ok(rig.frame(0)));
  const std::optional<Bytes> whole = reassemble(frames_of(rig, 0, 4));
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(l4_checksum_ok(*whole));
  Packet want = orig;
  want.ip_src(kOutside).sport(first.sport).ttl(63);
  expect_same_frame(*whole, want.build());
}

TEST(EngineFragments, HeldAndFirstInOneBurstAreReleasedInThatBurst) {
  FragRig rig;
  const std::vector<Bytes> frags = fragment(big_udp_out().build(), 1000);
  const std::vector<Result> res = rig.burst({frags[2], frags[1], frags[3], frags[0]});
  EXPECT_EQ(res[0].verdict, Verdict::Held);
  EXPECT_EQ(res[1].verdict, Verdict::Held);
  EXPECT_EQ(res[2].verdict, Verdict::Held);
  EXPECT_EQ(res[3].verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.h().events(Event::FragmentsHeld), 3u);
  auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 3u);
  std::vector<bool> seen(3, false);
  for (const auto& r : rel) {
    ASSERT_LT(r.index, 3u);
    EXPECT_FALSE(seen[r.index]);
    seen[r.index] = true;
    EXPECT_EQ(r.res.verdict, Verdict::ToOutside);
  }
  const std::optional<Bytes> whole = reassemble(frames_of(rig, 0, 4));
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(parse(*whole).ip_src, ip(kOutside));
  EXPECT_TRUE(l4_checksum_ok(*whole));
}

TEST(EngineFragments, InboundOutOfOrderReplyIsHeldThenTranslated) {
  FragRig rig;
  ASSERT_EQ(
      rig.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 9000).payload("go").build()).verdict,
      Verdict::ToOutside);
  const uint16_t oport = parse(rig.frame(0)).sport;
  const Packet reply =
      Packet().ipv4(kServer, kOutside).id(0x3333).udp(9000, oport).payload_fill(1500);
  const std::vector<Bytes> frags = fragment(reply.build(), 1000);
  ASSERT_EQ(frags.size(), 2u);
  EXPECT_EQ(rig.send(frags[1]).verdict, Verdict::Held);
  EXPECT_EQ(rig.send(frags[0]).verdict, Verdict::ToInside);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].index, 1u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::ToInside);
  const std::optional<Bytes> whole = reassemble({rig.frame(2), rig.frame(1)});
  ASSERT_TRUE(whole.has_value());
  Packet want = reply;
  want.ip_dst(kInsideHost).dport(5000).ttl(63);
  expect_same_frame(*whole, want.build());
}

// --- held fragments that never see their first ------------------------------------------------

TEST(EngineFragments, HeldFragmentWithoutFirstTimesOut) {
  auto cfg = default_config();
  cfg.timeouts.fragment_ms = 2000;
  FragRig rig(cfg);
  const std::vector<Bytes> frags = fragment(big_udp_out().build(), 1000);
  EXPECT_EQ(rig.send(frags[2]).verdict, Verdict::Held);
  const uint64_t drops0 = rig.h().events(Event::PacketsDropCount);

  rig.h().advance_ms(1999);
  EXPECT_TRUE(rig.pop().empty());
  rig.h().advance_ms(1);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].index, 0u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::Drop);
  EXPECT_EQ(rel[0].res.reason, DropReason::FragTimeout);
  EXPECT_EQ(rig.h().drops(DropReason::FragTimeout), 1u);
  EXPECT_EQ(rig.h().events(Event::PacketsDropCount) - drops0, 1u);
  EXPECT_TRUE(rig.pop().empty());

  // The slot is free again.
  EXPECT_EQ(rig.send(frags[3]).verdict, Verdict::Held);
}

TEST(EngineFragments, MoreHeldThanFragHoldIsFragBufferFull) {
  auto cfg = default_config();
  cfg.frag_hold = 4;
  FragRig rig(cfg);
  for (uint16_t id = 1; id <= 4; ++id) {
    Packet p = big_udp_out();
    p.id(id);
    EXPECT_EQ(rig.send(fragment(p.build(), 1000)[3]).verdict, Verdict::Held) << "id " << id;
  }
  EXPECT_EQ(rig.h().events(Event::FragmentsHeld), 4u);
  Packet p5 = big_udp_out();
  p5.id(5);
  const Result r = rig.send(fragment(p5.build(), 1000)[3]);
  EXPECT_EQ(r.verdict, Verdict::Drop);
  EXPECT_EQ(r.reason, DropReason::FragBufferFull);
  EXPECT_EQ(rig.h().drops(DropReason::FragBufferFull), 1u);
  EXPECT_EQ(rig.h().events(Event::PacketsDropCount), 1u);
  EXPECT_EQ(rig.h().events(Event::FragmentsHeld), 4u);

  // All four time out, each returned once.
  rig.h().advance_ms(cfg.timeouts.fragment_ms);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 4u);
  for (const auto& x : rel) EXPECT_EQ(x.res.reason, DropReason::FragTimeout);
  EXPECT_EQ(rig.h().drops(DropReason::FragTimeout), 4u);
}

// Packets released but not yet popped are still the engine's: they must count against the hold
// limit, or a burst that holds and releases more than frag_hold packets overruns the release
// queue (a packet returned twice, another never).
TEST(EngineFragments, EveryHeldPacketIsReturnedExactlyOnceWithinOneBurst) {
  auto cfg = default_config();
  cfg.frag_hold = 2;
  FragRig rig(cfg);
  Packet a = big_udp_out();
  a.id(0xa);
  Packet b = big_udp_out();
  b.id(0xb);
  const std::vector<Bytes> fa = fragment(a.build(), 1000);
  const std::vector<Bytes> fb = fragment(b.build(), 1000);
  const std::vector<Result> res =
      rig.burst({fa[3], fa[2], fa[0], fb[3], fb[2], fb[0], fa[1], fb[1]});

  std::vector<int> finals(res.size(), 0);  // how many final verdicts each packet got
  for (size_t i = 0; i < res.size(); ++i) {
    if (res[i].verdict != Verdict::Held) ++finals[i];
  }
  for (const auto& r : rig.pop()) {
    ASSERT_LT(r.index, res.size());
    EXPECT_EQ(res[r.index].verdict, Verdict::Held)
        << "packet " << r.index << " released but never held";
    ++finals[r.index];
  }
  rig.h().advance_ms(cfg.timeouts.fragment_ms);
  for (const auto& r : rig.pop()) ++finals[r.index];
  for (size_t i = 0; i < finals.size(); ++i) EXPECT_EQ(finals[i], 1) << "packet " << i;
  EXPECT_EQ(res[2].verdict, Verdict::ToOutside);
  EXPECT_EQ(res[5].verdict, Verdict::ToOutside);
}

// --- TCP and ICMP fragments (NAT Gateway drops these; we translate them) ----------------------

TEST(EngineFragments, TcpSegmentFragmentsAreTranslated) {
  FragRig rig;
  ASSERT_EQ(rig.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).build()).verdict,
            Verdict::ToOutside);
  const uint16_t oport = parse(rig.frame(0)).sport;
  ASSERT_EQ(
      rig.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).ack(2).build())
          .verdict,
      Verdict::ToInside);

  const Packet seg = Packet()
                         .ipv4(kInsideHost, kServer)
                         .id(0x4444)
                         .tcp(40000, 443, kTcpAck | kTcpPsh)
                         .seq(2)
                         .ack(2)
                         .payload_fill(2000);
  const std::vector<Bytes> frags = fragment(seg.build(), 600);
  ASSERT_EQ(frags.size(), 4u);
  const uint64_t translated0 = rig.h().events(Event::FragmentsTranslated);
  // Out of order for good measure: second piece first.
  EXPECT_EQ(rig.send(frags[1]).verdict, Verdict::Held);
  EXPECT_EQ(rig.send(frags[0]).verdict, Verdict::ToOutside);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.send(frags[2]).verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.send(frags[3]).verdict, Verdict::ToOutside);
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated) - translated0, 4u);

  const std::optional<Bytes> whole = reassemble(frames_of(rig, 2, 4));
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(l4_checksum_ok(*whole));
  Packet want = seg;
  want.ip_src(kOutside).sport(oport).ttl(63);
  expect_same_frame(*whole, want.build());
  EXPECT_EQ(rig.h().engine().active_flows(), 1u);
}

TEST(EngineFragments, IcmpEchoFragmentsAreTranslatedBothWays) {
  FragRig rig;
  const Packet req = Packet()
                         .ipv4(kInsideHost, kServer)
                         .id(0x5555)
                         .icmp_echo(kIcmpEchoRequest, 0, 99, 1)
                         .payload_fill(3000);
  const std::vector<Bytes> frags = fragment(req.build(), 1480);
  ASSERT_EQ(frags.size(), 3u);
  for (const Bytes& f : frags) EXPECT_EQ(rig.send(f).verdict, Verdict::ToOutside);
  const std::optional<Bytes> out = reassemble(frames_of(rig, 0, 3));
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(l4_checksum_ok(*out));
  const uint16_t oid = parse(*out).icmp_id;
  Packet want = req;
  want.ip_src(kOutside).icmp_id(oid).ttl(63);
  expect_same_frame(*out, want.build());

  const Packet rep = Packet()
                         .ipv4(kServer, kOutside)
                         .id(0x6666)
                         .icmp_echo(kIcmpEchoReply, 0, oid, 1)
                         .payload_fill(3000);
  const std::vector<Bytes> rf = fragment(rep.build(), 1480);
  EXPECT_EQ(rig.send(rf[2]).verdict, Verdict::Held);
  EXPECT_EQ(rig.send(rf[0]).verdict, Verdict::ToInside);
  EXPECT_EQ(rig.send(rf[1]).verdict, Verdict::ToInside);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::ToInside);
  const std::optional<Bytes> in = reassemble(frames_of(rig, 3, 3));
  ASSERT_TRUE(in.has_value());
  EXPECT_TRUE(l4_checksum_ok(*in));
  Packet want_in = rep;
  want_in.ip_dst(kInsideHost).icmp_id(99).ttl(63);
  expect_same_frame(*in, want_in.build());
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated), 6u);
  EXPECT_EQ(rig.h().events(Event::FragmentsHeld), 1u);
}

TEST(EngineFragments, FragmentedPingToOutsideAddressGoesToHostWhole) {
  FragRig rig;
  const Packet ping = Packet()
                          .ipv4(kServer, kOutside)
                          .id(0x7777)
                          .icmp_echo(kIcmpEchoRequest, 0, 5, 1)
                          .payload_fill(2000);
  const std::vector<Bytes> frags = fragment(ping.build(), 1000);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(rig.send(frags[2]).verdict, Verdict::Held);
  EXPECT_EQ(rig.send(frags[0]).verdict, Verdict::ToHost);
  EXPECT_EQ(rig.send(frags[1]).verdict, Verdict::ToHost);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::ToHost);
  for (size_t i = 0; i < 3; ++i)
    expect_same_frame(rig.frame(i), frags[i == 0 ? 2 : i == 1 ? 0 : 1]);
  EXPECT_EQ(rig.h().events(Event::PacketsDropCount), 0u);
}

TEST(EngineFragments, FragmentsOfAnUnsolicitedInboundDatagramAreDropped) {
  FragRig rig;
  const Packet stray =
      Packet().ipv4(kServer, kOutside).id(0x8888).udp(9000, 31337).payload_fill(2000);
  const std::vector<Bytes> frags = fragment(stray.build(), 1000);
  EXPECT_EQ(rig.send(frags[2]).verdict, Verdict::Held);
  const Result first = rig.send(frags[0]);
  EXPECT_EQ(first.verdict, Verdict::Drop);
  EXPECT_EQ(first.reason, DropReason::NoFlowOutside);
  const Result mid = rig.send(frags[1]);
  EXPECT_EQ(mid.verdict, Verdict::Drop);
  EXPECT_EQ(mid.reason, DropReason::FragNoFirst);
  const auto rel = rig.pop();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].res.verdict, Verdict::Drop);
  EXPECT_EQ(rel[0].res.reason, DropReason::FragNoFirst);
  EXPECT_EQ(rig.h().drops(DropReason::FragNoFirst), 2u);
  EXPECT_EQ(rig.h().engine().active_flows(), 0u);
  EXPECT_EQ(rig.h().events(Event::FragmentsTranslated), 0u);
}

}  // namespace
}  // namespace eipgate::testing

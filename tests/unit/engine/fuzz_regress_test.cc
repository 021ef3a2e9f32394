// Regressions found by tests/fuzz/engine_fuzz, each reduced to the smallest exchange that shows it.
#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::Verdict;

// An echo reply whose translated message is all zeros (inside id 0, seq 0, no payload) sums to
// +0, so its only valid checksum is 0xFFFF; the incremental update (RFC 1624 eqn. 3) yields 0x0000
// there, which receivers reject. Found by engine_fuzz (oracle "L4 checksum broken").
TEST(FuzzRegress, EchoReplyTranslatedToAllZerosKeepsAValidChecksum) {
  EngineHarness h;
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 0, 0).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  ASSERT_TRUE(l4_checksum_ok(s.out));
  const uint16_t oid = parse(s.out).icmp_id;
  ASSERT_NE(oid, 0);

  Sent r = h.send(Packet().ipv4(kServer, kOutside).icmp_echo(kIcmpEchoReply, 0, oid, 0).build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  const Parsed o = parse(r.out);
  EXPECT_EQ(o.icmp_id, 0);
  EXPECT_EQ(o.l4_checksum, 0xffff);
  EXPECT_TRUE(l4_checksum_ok(r.out));

  // Same with a zero payload, through a second reply (flow hit on the fast path).
  Sent r2 = h.send(Packet()
                       .ipv4(kServer, kOutside)
                       .icmp_echo(kIcmpEchoReply, 0, oid, 0)
                       .payload(Bytes(16, 0))
                       .build());
  ASSERT_EQ(r2.res.verdict, Verdict::ToInside);
  EXPECT_TRUE(l4_checksum_ok(r2.out));
}

}  // namespace
}  // namespace eipgate::testing

// ARP encoding/decoding and the neighbour table (pure code, no DPDK).
#include "dataplane/dpdk/arp.h"

#include <gtest/gtest.h>

#include "tests/support/packet_builder.h"

namespace eipgate::dataplane {
namespace {

constexpr MacAddr kMac = {0x02, 0, 0, 0, 0, 0x01};
constexpr MacAddr kPeer = {0x02, 0, 0, 0, 0, 0x02};

TEST(Arp, RequestRoundTrip) {
  uint8_t buf[kArpFrameLen];
  ASSERT_EQ(build_arp_request(buf, kMac, 0x0a000101, 0x0a00010a), kArpFrameLen);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(buf[i], 0xff);  // broadcast
  EXPECT_EQ(buf[12], 0x08);
  EXPECT_EQ(buf[13], 0x06);
  const auto p = parse_arp(buf, sizeof buf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->op, kArpRequest);
  EXPECT_EQ(p->sender_mac, kMac);
  EXPECT_EQ(p->sender_ip, 0x0a000101u);
  EXPECT_EQ(p->target_ip, 0x0a00010au);
}

TEST(Arp, ReplyIsUnicastToTheAsker) {
  uint8_t buf[kArpFrameLen];
  build_arp(buf, kArpReply, kMac, 0xcb007101, kPeer, 0xcb0071fe);
  EXPECT_EQ(MacAddr(std::to_array({buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]})), kPeer);
  const auto p = parse_arp(buf, sizeof buf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->op, kArpReply);
  EXPECT_EQ(p->target_mac, kPeer);
  EXPECT_EQ(p->sender_ip, 0xcb007101u);
}

TEST(Arp, GratuitousAnnouncesOwnAddress) {
  uint8_t buf[kArpFrameLen];
  build_garp(buf, kMac, 0xcb007101);
  const auto p = parse_arp(buf, sizeof buf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sender_ip, p->target_ip);
  EXPECT_EQ(p->sender_mac, kMac);
}

TEST(Arp, RejectsWhatIsNotIpv4OverEthernetArp) {
  uint8_t buf[kArpFrameLen];
  build_arp_request(buf, kMac, 1, 2);
  EXPECT_FALSE(parse_arp(buf, 41));  // truncated
  uint8_t bad[kArpFrameLen];
  std::copy(buf, buf + kArpFrameLen, bad);
  bad[14 + 5] = 16;  // protocol address length
  EXPECT_FALSE(parse_arp(bad, sizeof bad));
  std::copy(buf, buf + kArpFrameLen, bad);
  bad[14 + 7] = 9;  // opcode
  EXPECT_FALSE(parse_arp(bad, sizeof bad));
  const auto ip = testing::Packet().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build();
  EXPECT_FALSE(parse_arp(ip.data(), ip.size()));
}

TEST(Arp, VlanTaggedArpParses) {
  uint8_t plain[kArpFrameLen];
  build_arp_request(plain, kMac, 0x0a000001, 0x0a000002);
  std::vector<uint8_t> tagged(plain, plain + 12);
  for (const int b : {0x81, 0x00, 0x00, 0x07}) tagged.push_back(static_cast<uint8_t>(b));
  tagged.insert(tagged.end(), plain + 12, plain + kArpFrameLen);
  const auto p = parse_arp(tagged.data(), tagged.size());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->target_ip, 0x0a000002u);
}

TEST(NeighbourTable, LearnsExpiresAndReportsDueEntries) {
  NeighbourTable t(1000);
  t.learn(1, kPeer, 0);
  ASSERT_TRUE(t.lookup(1, 999));
  EXPECT_EQ(*t.lookup(1, 999), kPeer);
  EXPECT_FALSE(t.lookup(1, 1000));
  EXPECT_FALSE(t.lookup(2, 0));
  int due = 0;
  t.for_each_due(800, 300, [&](uint32_t) { ++due; });
  EXPECT_EQ(due, 1);
  t.learn(1, kMac, 900);  // refreshed with a new MAC
  EXPECT_EQ(*t.lookup(1, 1500), kMac);
  t.expire(5000, 0);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace eipgate::dataplane

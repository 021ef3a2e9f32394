// Egress probe frames (dataplane/dpdk/probe.h): the SYN is a valid frame with correct checksums;
// answers to it are recognised, anything else is not.
#include "dataplane/dpdk/probe.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace eipgate::dataplane {
namespace {

constexpr uint32_t kProbeSrc = 0x0a010003;  // 10.1.0.3
constexpr uint32_t kTarget = 0xcb00710a;    // 203.0.113.10

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += uint32_t{p[i]} << 8 | p[i + 1];
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}

ProbeFrame syn() {
  ProbeFrame f;
  f.dst_mac = {2, 0, 0, 0, 0, 1};
  f.src_mac = {2, 0, 0, 0, 0, 2};
  f.src = kProbeSrc;
  f.dst = kTarget;
  f.sport = 40001;
  f.dport = 443;
  f.seq = 0x12345678;
  f.flags = kTcpSyn;
  return f;
}

// What comes back after the NAT: the remote's segment to the probe source.
std::vector<uint8_t> answer(uint8_t flags, uint32_t dst = kProbeSrc) {
  ProbeFrame f;
  f.src = kTarget;
  f.dst = dst;
  f.sport = 443;
  f.dport = 40001;
  f.seq = 0xabcdef00;
  f.ack = 0x12345679;
  f.flags = flags;
  std::vector<uint8_t> b(kProbeFrameLen);
  build_probe_frame(f, b.data());
  return b;
}

TEST(ProbeFrame, SynHasValidChecksumsAndFields) {
  std::vector<uint8_t> b(kProbeFrameLen);
  ASSERT_EQ(build_probe_frame(syn(), b.data()), kProbeFrameLen);
  const uint8_t* ip = b.data() + 14;
  EXPECT_EQ(b[12], 0x08);
  EXPECT_EQ(b[13], 0x00);
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[9], 6);
  EXPECT_EQ(sum16(ip, 20), 0xffffu) << "IPv4 header checksum";
  uint32_t pseudo = sum16(ip + 12, 8) + 6 + 20;
  EXPECT_EQ(sum16(ip + 20, 20, pseudo), 0xffffu) << "TCP checksum";
  EXPECT_EQ(ip[20 + 13], kTcpSyn);
  EXPECT_EQ((ip[20] << 8) | ip[21], 40001);
  EXPECT_EQ((ip[22] << 8) | ip[23], 443);
  EXPECT_EQ(std::memcmp(b.data(), syn().dst_mac.data(), 6), 0);
}

TEST(ProbeFrame, SynAckAndRstAreAnswers) {
  auto sa = answer(kTcpSyn | kTcpAck);
  auto r = parse_probe_reply(sa.data(), sa.size(), kProbeSrc);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, ProbeAnswer::SynAck);
  EXPECT_EQ(r->remote, kTarget);
  EXPECT_EQ(r->remote_port, 443);
  EXPECT_EQ(r->local_port, 40001);
  EXPECT_EQ(r->seq, 0xabcdef00u);
  EXPECT_EQ(r->ack, 0x12345679u);
  auto rst = answer(kTcpRst | kTcpAck);
  r = parse_probe_reply(rst.data(), rst.size(), kProbeSrc);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, ProbeAnswer::Rst);
  EXPECT_EQ(probe_answer_name(r->answer), "rst");
}

TEST(ProbeFrame, OtherSegmentsAndAddressesAreNotAnswers) {
  auto ack = answer(kTcpAck);
  EXPECT_FALSE(parse_probe_reply(ack.data(), ack.size(), kProbeSrc)) << "a bare ACK";
  auto other = answer(kTcpSyn | kTcpAck, 0x0a010063);
  EXPECT_FALSE(parse_probe_reply(other.data(), other.size(), kProbeSrc)) << "another host's";
  auto sa = answer(kTcpSyn | kTcpAck);
  for (size_t n = 0; n < 14 + 20 + 20; ++n) {
    EXPECT_FALSE(parse_probe_reply(sa.data(), n, kProbeSrc)) << "truncated to " << n;
  }
}

TEST(ProbeFrame, IcmpUnreachableQuotingTheProbeIsAnAnswer) {
  std::vector<uint8_t> syn_frame(kProbeFrameLen);
  build_probe_frame(syn(), syn_frame.data());
  // Ethernet + IPv4 (router -> probe source, ICMP) + ICMP 3/1 + the quoted IP header + 8 bytes.
  std::vector<uint8_t> b(14 + 20 + 8 + 28, 0);
  b[12] = 0x08;
  uint8_t* ip = b.data() + 14;
  ip[0] = 0x45;
  ip[9] = 1;
  ip[12] = 198, ip[13] = 51, ip[14] = 100, ip[15] = 1;
  ip[16] = 10, ip[17] = 1, ip[18] = 0, ip[19] = 3;
  ip[20] = 3;
  ip[21] = 1;
  std::memcpy(ip + 28, syn_frame.data() + 14, 28);
  auto r = parse_probe_reply(b.data(), b.size(), kProbeSrc);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, ProbeAnswer::Unreachable);
  EXPECT_EQ(r->remote, kTarget);
  EXPECT_EQ(r->local_port, 40001);
  EXPECT_EQ(r->remote_port, 443);
  ip[20] = 0;  // an echo reply is not about the probe
  EXPECT_FALSE(parse_probe_reply(b.data(), b.size(), kProbeSrc));
}

}  // namespace
}  // namespace eipgate::dataplane

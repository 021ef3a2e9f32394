// make_fastpath_entry's checksum addends against full recomputation and the skeleton's fast-path
// maps (no privileges), and FastPathTable's batched and per-element operations on a loaded
// program: offload, withdraw, read_activity, dump, clear, a full map (root).
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/bpf/fastpath_test_support.h"
#include "xdp_steer.skel.h"

namespace fastpath_test {
namespace {

// ---- no privileges: make_fastpath_entry -------------------------------------------------------

// RFC 1624 eqn. 3 on host-order values, as the program does it on network-order ones.
uint16_t apply_delta(uint16_t check, uint16_t delta) {
  uint32_t s = static_cast<uint16_t>(~check) + static_cast<uint32_t>(delta);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

TEST(FastPathEntry, ChecksumAddendsMatchFullRecomputation) {
  std::mt19937 rng(1624);
  auto u32 = [&rng] { return static_cast<uint32_t>(rng()); };
  auto u16 = [&rng] { return static_cast<uint16_t>(rng()); };
  const uint8_t protos[] = {pb::kProtoTcp, pb::kProtoUdp, pb::kProtoIcmp};
  for (int i = 0; i < 3000; ++i) {
    const uint8_t proto = protos[i % 3];
    FpTuple o{u32(), u32(), u16(), u16(), proto};
    FpTuple n{u32(), u32(), u16(), u16(), proto};
    // Edge values now and then: unchanged words, all-ones and zero words.
    if (i % 7 == 0) n.saddr = o.saddr;
    if (i % 11 == 0) n.sport = o.sport;
    if (i % 13 == 0) o.daddr = 0xffffffff;
    if (i % 17 == 0) n.daddr = 0;
    if (proto == pb::kProtoIcmp) o.dport = n.dport = 0;
    Bytes payload(rng() % 64);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    const uint8_t type = (i % 2 == 0) ? kFpIcmpEchoRequest : kFpIcmpEchoReply;
    const Packet before = frame_of(o, pb::kTcpAck, type).payload(payload).ttl(9);
    const Packet after = translated(before, n, kGatewayMac, kEniMac, 9);  // same TTL: L3 only
    const pb::Parsed pb_before = pb::parse(before.build());
    const pb::Parsed pb_after = pb::parse(after.build());

    FastPathSpec s;
    s.original = o;
    s.translated = n;
    s.icmp_type = type;
    FastPathEntry e;
    ASSERT_EQ(make_fastpath_entry(s, e), "");
    SCOPED_TRACE("case " + std::to_string(i) + " proto " + std::to_string(proto));
    EXPECT_EQ(apply_delta(pb_before.ip_checksum, ntohs(e.value.l3_csum_delta)),
              pb_after.ip_checksum);
    uint16_t l4 = apply_delta(pb_before.l4_checksum, ntohs(e.value.l4_csum_delta));
    if (proto == pb::kProtoUdp && l4 == 0) l4 = 0xffff;  // RFC 768: a computed 0 is sent so
    EXPECT_EQ(l4, pb_after.l4_checksum);
  }
}

TEST(FastPathEntry, KeyValueAndFlagsInNetworkOrder) {
  FastPathEntry e;
  FastPathSpec s;
  s.original = kTcpIn;
  s.translated = kTcpOut;
  s.dmac = kGatewayMac;
  s.smac = kEniMac;
  s.mtu = 9001;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.key.saddr, htonl(kTcpIn.saddr));
  EXPECT_EQ(e.key.daddr, htonl(kTcpIn.daddr));
  EXPECT_EQ(e.key.sport, htons(40000));
  EXPECT_EQ(e.key.dport, htons(443));
  EXPECT_EQ(e.key.proto, pb::kProtoTcp);
  EXPECT_EQ(e.key.pad[0] | e.key.pad[1] | e.key.pad[2], 0);
  EXPECT_EQ(e.value.new_saddr, htonl(kTcpOut.saddr));
  EXPECT_EQ(e.value.new_sport, htons(50000));
  EXPECT_EQ(e.value.mtu, 9001);
  EXPECT_EQ(e.value.flags, FP_F_TX_SAME_PORT);
  EXPECT_EQ(Mac(std::to_array(e.value.dmac)), kGatewayMac);
  EXPECT_EQ(Mac(std::to_array(e.value.smac)), kEniMac);
  EXPECT_EQ(e.value.counter_slot, 0u);

  s.counter_slot = 77;
  s.inbound = true;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.value.counter_slot, 77u);
  EXPECT_EQ(e.value.flags, FP_F_TX_SAME_PORT | FP_F_INBOUND);
  s.counter_slot = 0;
  s.inbound = false;

  s.same_port = false;
  s.tx_slot = 5;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.value.flags, 0);
  EXPECT_EQ(e.value.tx_slot, 5);

  s = FastPathSpec{};
  s.original = eipgate::bpf::reversed(kIcmpOut);
  s.translated = eipgate::bpf::reversed(kIcmpIn);
  s.icmp_type = kFpIcmpEchoReply;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.key.sport, htons(4000));
  EXPECT_EQ(e.key.dport, 0);
  EXPECT_EQ(e.value.new_sport, htons(7));
  EXPECT_EQ(e.value.flags, FP_F_TX_SAME_PORT | FP_F_ICMP_ECHO_REPLY);

  // Nothing changes: addends are 0, so the checksum fields keep their bytes.
  s = FastPathSpec{};
  s.original = s.translated = kUdpIn;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.value.l3_csum_delta, 0);
  EXPECT_EQ(e.value.l4_csum_delta, 0);
}

TEST(FastPathEntry, ReversedSwapsEndsAndKeepsTheEchoIdentifier) {
  const FpTuple r = eipgate::bpf::reversed(kTcpOut);
  EXPECT_EQ(r, (FpTuple{kTcpOut.daddr, kTcpOut.saddr, 443, 50000, pb::kProtoTcp}));
  EXPECT_EQ(eipgate::bpf::reversed(r), kTcpOut);
  EXPECT_EQ(eipgate::bpf::reversed(kIcmpOut),
            (FpTuple{kIcmpOut.daddr, kIcmpOut.saddr, 4000, 0, pb::kProtoIcmp}));
}

TEST(FastPathEntry, RefusesWhatTheProgramCannotTranslate) {
  FastPathEntry e;
  FastPathSpec good;
  good.original = kUdpIn;
  good.translated = kUdpOut;
  ASSERT_EQ(make_fastpath_entry(good, e), "");
  auto refused = [](FastPathSpec s) {
    FastPathEntry out;
    out.value.mtu = 4242;  // untouched on refusal
    std::string err = make_fastpath_entry(s, out);
    EXPECT_EQ(out.value.mtu, 4242);
    return err;
  };
  FastPathSpec s = good;
  s.original.proto = s.translated.proto = 47;  // GRE
  EXPECT_NE(refused(s), "");
  s = good;
  s.translated.proto = pb::kProtoTcp;
  EXPECT_NE(refused(s), "");
  s = good;
  s.original = kIcmpIn;
  s.translated = kIcmpOut;
  s.translated.dport = 1;
  EXPECT_NE(refused(s), "");
  s.translated.dport = 0;
  s.icmp_type = pb::kIcmpDestUnreachable;
  EXPECT_NE(refused(s), "");
  s = good;
  s.mtu = 67;
  EXPECT_NE(refused(s), "");
  s = good;
  s.same_port = false;
  s.tx_slot = FP_MAX_TX_PORTS;
  EXPECT_NE(refused(s), "");
}

// ---- no privileges: the skeleton ------------------------------------------------------------

TEST(FastPathSkeleton, MapsMatchTheAbi) {
  xdp_steer* skel = xdp_steer__open();
  ASSERT_NE(skel, nullptr) << std::strerror(errno);
  const bpf_map* flows = bpf_object__find_map_by_name(skel->obj, STEER_MAP_FP_FLOWS);
  ASSERT_NE(flows, nullptr);
  EXPECT_EQ(bpf_map__type(flows), BPF_MAP_TYPE_HASH);
  EXPECT_EQ(bpf_map__key_size(flows), sizeof(fp_flow_key));
  EXPECT_EQ(bpf_map__value_size(flows), sizeof(fp_flow_value));
  EXPECT_EQ(bpf_map__max_entries(flows), FP_DEFAULT_MAX_ENTRIES);
  EXPECT_NE(bpf_map__map_flags(flows) & BPF_F_NO_PREALLOC, 0u)
      << "only the dataplane inserts: memory per entry offloaded, not per entry possible";
  const bpf_map* counters = bpf_object__find_map_by_name(skel->obj, STEER_MAP_FP_COUNTERS);
  ASSERT_NE(counters, nullptr);
  EXPECT_EQ(bpf_map__type(counters), BPF_MAP_TYPE_ARRAY);
  EXPECT_EQ(bpf_map__value_size(counters), sizeof(fp_flow_counters));
  EXPECT_EQ(bpf_map__max_entries(counters), FP_COUNTER_SLOTS);
  EXPECT_NE(bpf_map__map_flags(counters) & BPF_F_MMAPABLE, 0u) << "the engine reads it in place";
  const bpf_map* ports = bpf_object__find_map_by_name(skel->obj, STEER_MAP_FP_TX_PORTS);
  ASSERT_NE(ports, nullptr);
  EXPECT_EQ(bpf_map__type(ports), BPF_MAP_TYPE_DEVMAP);
  EXPECT_EQ(bpf_map__key_size(ports), 4u);
  EXPECT_EQ(bpf_map__value_size(ports), 4u);
  EXPECT_EQ(bpf_map__max_entries(ports), FP_MAX_TX_PORTS);
  xdp_steer__destroy(skel);
}

TEST(FastPathSkeleton, CounterNamesComeFromTheAbiList) {
  using eipgate::bpf::steer_stat_name;
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_FWD_TX), "fp_fwd_tx");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_FWD_REDIRECT), "fp_fwd_redirect");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_MISS), "fp_miss");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_PUNT_TCP_FLAGS), "fp_punt_tcp_flags");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_PUNT_NO_TX_PORT), "fp_punt_no_tx_port");
}

TEST(FastPathTableTest, WithoutMapsEveryOperationFailsCleanly) {
  FastPathTable t;
  EXPECT_FALSE(t.usable());
  const FastPathEntry e{};
  EXPECT_NE(t.offload({&e, 1}).error, "");
  const fp_flow_key k{};
  EXPECT_NE(t.withdraw({&k, 1}).error, "");
  std::vector<FastPathEntry> all;
  EXPECT_NE(t.dump(all), "");
  EXPECT_NE(t.set_tx_port(0, 1), "");
}

// ---- the map operations (root) ----------------------------------------------------------------

std::vector<FastPathEntry> random_entries(size_t flows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<FastPathEntry> out;
  for (size_t i = 0; i < flows; ++i) {
    // Distinct by construction: the inside port is the flow's number.
    const FpTuple in{static_cast<uint32_t>(pb::ip("10.0.0.0") + rng() % 65536),
                     static_cast<uint32_t>(pb::ip("203.0.113.0") + rng() % 256),
                     static_cast<uint16_t>(1024 + i), 443, pb::kProtoTcp};
    const FpTuple tr{pb::ip(kOutside), in.daddr, static_cast<uint16_t>(20000 + i), 443,
                     pb::kProtoTcp};
    out.push_back(entry_of(in, tr, kGatewayMac, kEniMac));
    out.push_back(
        entry_of(eipgate::bpf::reversed(tr), eipgate::bpf::reversed(in), kInsideHopMac, kEniMac));
  }
  return out;
}

bool same_entry(const FastPathEntry& a, const FastPathEntry& b) {
  return std::memcmp(&a.key, &b.key, sizeof a.key) == 0 &&
         std::memcmp(&a.value, &b.value, sizeof a.value) == 0;
}

class FastPathOps : public FastPathProgram, public ::testing::WithParamInterface<bool> {
 protected:
  void load_ops(uint32_t max_entries) {
    load(max_entries);
    if (!GetParam()) fp_.use_per_element_ops_for_test();
  }
};

TEST_P(FastPathOps, OffloadDumpReadWithdrawClear) {
  REQUIRE_ROOT();
  load_ops(4096);
  const std::vector<FastPathEntry> entries = random_entries(1000, 7);
  const auto off = fp_.offload(entries);
  ASSERT_EQ(off.error, "");
  EXPECT_EQ(off.offloaded, 2000u);
  EXPECT_EQ(off.full, 0u);

  std::vector<FastPathEntry> dumped;
  ASSERT_EQ(fp_.dump(dumped), "");
  ASSERT_EQ(dumped.size(), entries.size());
  auto by_key = [](const FastPathEntry& a, const FastPathEntry& b) {
    return std::memcmp(&a.key, &b.key, sizeof a.key) < 0;
  };
  std::vector<FastPathEntry> sorted = entries;
  std::sort(sorted.begin(), sorted.end(), by_key);
  std::sort(dumped.begin(), dumped.end(), by_key);
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_TRUE(same_entry(sorted[i], dumped[i])) << i;

  // Withdraw the first half and some keys that were never there.
  std::vector<fp_flow_key> keys;
  for (size_t i = 0; i < 1000; ++i) keys.push_back(entries[i].key);
  for (uint16_t p = 1; p <= 10; ++p) {
    keys.push_back(eipgate::bpf::fastpath_key({1, 2, p, p, pb::kProtoUdp}));
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937(3));
  const auto wd = fp_.withdraw(keys);
  ASSERT_EQ(wd.error, "");
  EXPECT_EQ(wd.withdrawn, 1000u);
  EXPECT_EQ(wd.missing, 10u);
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_EQ(dumped.size(), 1000u);

  std::vector<fp_flow_key> probe = {entries[0].key, entries[1999].key};
  std::vector<FastPathActivity> act(2);
  ASSERT_EQ(fp_.read_activity(probe, act), "");
  EXPECT_FALSE(act[0].present);
  EXPECT_TRUE(act[1].present);

  EXPECT_EQ(fp_.stats().offloaded, 2000u);
  EXPECT_EQ(fp_.stats().withdrawn, 1000u);
  ASSERT_EQ(fp_.clear(), "");
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_TRUE(dumped.empty());
  EXPECT_EQ(fp_.withdraw({}).withdrawn, 0u);
  EXPECT_EQ(fp_.offload({}).offloaded, 0u);
  EXPECT_EQ(fp_.uses_batch_ops(), GetParam()) << "this kernel has batch operations (>= 5.6)";
}

TEST_P(FastPathOps, AFullMapIsReportedAndCountedNotFatal) {
  REQUIRE_ROOT();
  load_ops(8);
  const std::vector<FastPathEntry> entries = random_entries(6, 11);  // 12 directions
  auto r = fp_.offload(entries);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.offloaded, 8u);
  EXPECT_EQ(r.full, 4u);
  EXPECT_EQ(fp_.stats().refused_full, 4u);

  // Full, it still replaces what it holds; a new key is refused again.
  std::vector<FastPathEntry> mixed = {entries[0], entries[11], entries[7]};
  r = fp_.offload(mixed);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.offloaded, 2u);
  EXPECT_EQ(r.full, 1u);
  EXPECT_EQ(fp_.stats().refused_full, 5u);

  // Room again after a withdrawal.
  ASSERT_EQ(fp_.withdraw({&entries[0].key, 1}).withdrawn, 1u);
  r = fp_.offload({&entries[11], 1});
  EXPECT_EQ(r.offloaded, 1u);
  EXPECT_EQ(r.full, 0u);
  std::vector<FastPathEntry> dumped;
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_EQ(dumped.size(), 8u);
  EXPECT_EQ(fp_.uses_batch_ops(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Ops, FastPathOps, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("Batched") : std::string("PerElement");
                         });

}  // namespace
}  // namespace fastpath_test

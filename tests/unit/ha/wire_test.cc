// HMAC accept/reject, the replay window, and wire encode/decode round trips and malformed input.
#include "control/ha/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "common/byte_order.h"
#include "control/ha/auth.h"

namespace eipgate::ha {
namespace {

std::vector<uint8_t> key(const char* text) {
  return std::vector<uint8_t>(text, text + std::strlen(text));
}

class WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    auth_a_ = Authenticator::create(key("0123456789abcdef-shared"), &error);
    auth_b_ = Authenticator::create(key("0123456789abcdef-shared"), &error);
    wrong_ = Authenticator::create(key("0123456789abcdef-WRONG!"), &error);
    ASSERT_TRUE(auth_a_ && auth_b_ && wrong_) << error;
  }
  std::unique_ptr<Authenticator> auth_a_, auth_b_, wrong_;
};

FlowEvent sample_event(uint32_t i) {
  FlowEvent e;
  e.inside_ip = 0x0a008001 + i;
  e.outside_ip = 0x0a000064;
  e.remote_ip = 0xc6336401;
  e.inside_port = static_cast<uint16_t>(40000 + i);
  e.outside_port = static_cast<uint16_t>(1024 + i);
  e.remote_port = 443;
  e.proto = 6;
  e.tcp_bits = 3;
  e.remaining_ms = (350 - i) * 1000;
  e.kind = FlowEventKind::Refresh;
  e.endpoint_independent = (i % 2) == 1;
  e.worker_hint = static_cast<uint16_t>(i % 2);
  return e;
}

TEST(FlowEventTest, NetworkOrderOnTheWire) {
  FlowEvent e = sample_event(0);
  std::array<uint8_t, kFlowEventWireSize> b{};
  encode_flow_event(e, b);
  EXPECT_EQ(b[0], 0x0a);
  EXPECT_EQ(b[3], 0x01);
  EXPECT_EQ(be::get16(&b[12]), 40000);
  EXPECT_EQ(be::get16(&b[16]), 443);
  EXPECT_EQ(b[18], 6);
  EXPECT_EQ(be::get32(&b[20]), 350U);
  EXPECT_EQ(b[24], static_cast<uint8_t>(FlowEventKind::Refresh));
  FlowEvent back;
  ASSERT_TRUE(decode_flow_event(b, &back));
  EXPECT_EQ(back, e);
  b[24] = 9;
  EXPECT_FALSE(decode_flow_event(b, &back));
  b[24] = 0;
  EXPECT_FALSE(decode_flow_event(b, &back));
}

TEST_F(WireTest, HmacAcceptsAndRejects) {
  const std::vector<uint8_t> data = key("some message bytes");
  std::array<uint8_t, kMacSize> mac{};
  ASSERT_TRUE(auth_a_->sign(data, mac));
  EXPECT_TRUE(auth_b_->verify(data, mac));
  EXPECT_FALSE(wrong_->verify(data, mac));
  auto tampered = data;
  tampered[3] ^= 0x01;
  EXPECT_FALSE(auth_b_->verify(tampered, mac));
  auto bad_mac = mac;
  bad_mac[31] ^= 0x80;
  EXPECT_FALSE(auth_b_->verify(data, bad_mac));
  EXPECT_FALSE(auth_b_->verify(data, std::span<const uint8_t>(mac).first(31)));
  std::string error;
  EXPECT_EQ(Authenticator::create({}, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

TEST_F(WireTest, HmacMatchesKnownVector) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  std::string error;
  auto auth = Authenticator::create(key("Jefe"), &error);
  ASSERT_TRUE(auth);
  std::array<uint8_t, kMacSize> mac{};
  ASSERT_TRUE(auth->sign(key("what do ya want for nothing?"), mac));
  const uint8_t expected[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
                              0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
                              0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_EQ(0, std::memcmp(mac.data(), expected, kMacSize));
  // Signing twice with the reused context gives the same tag.
  std::array<uint8_t, kMacSize> again{};
  ASSERT_TRUE(auth->sign(key("what do ya want for nothing?"), again));
  EXPECT_EQ(mac, again);
}

TEST(ReplayWindowTest, AcceptsEachSequenceOnce) {
  ReplayWindow w;
  EXPECT_EQ(w.check(100, 0), ReplayWindow::Verdict::TooOld);
  for (uint64_t s : {1, 2, 5, 4, 3}) {
    ASSERT_EQ(w.check(100, s), ReplayWindow::Verdict::Accept) << s;
    w.record(100, s);
  }
  for (uint64_t s : {1, 2, 3, 4, 5}) EXPECT_EQ(w.check(100, s), ReplayWindow::Verdict::Replay);
  EXPECT_EQ(w.check(100, 6), ReplayWindow::Verdict::Accept);
}

TEST(ReplayWindowTest, SlidesAndForgetsOnlyBeyondTheWindow) {
  ReplayWindow w;
  w.record(7, 10);
  w.record(7, 10 + ReplayWindow::kSize - 1);
  EXPECT_EQ(w.check(7, 10), ReplayWindow::Verdict::Replay);
  EXPECT_EQ(w.check(7, 11), ReplayWindow::Verdict::Accept);  // never seen, still in the window
  w.record(7, 10 + ReplayWindow::kSize);
  EXPECT_EQ(w.check(7, 10), ReplayWindow::Verdict::TooOld);
  EXPECT_EQ(w.check(7, 11), ReplayWindow::Verdict::Accept);
  // A jump far ahead clears everything; old slots must not read as seen.
  w.record(7, 100000);
  EXPECT_EQ(w.check(7, 100000 - 5), ReplayWindow::Verdict::Accept);
  EXPECT_EQ(w.check(7, 100000), ReplayWindow::Verdict::Replay);
}

TEST(ReplayWindowTest, IncarnationsAreOrdered) {
  ReplayWindow w;
  w.record(make_boot_id(1000), 50);
  const uint64_t restarted = make_boot_id(2000);
  EXPECT_EQ(w.check(restarted, 1), ReplayWindow::Verdict::Accept);  // new run, counts from 1
  w.record(restarted, 1);
  EXPECT_EQ(w.check(make_boot_id(1000), 51), ReplayWindow::Verdict::StaleIncarnation);
  EXPECT_EQ(w.boot_id(), restarted);
  EXPECT_GT(make_boot_id(2), make_boot_id(1));
}

TEST_F(WireTest, RoundTripsEveryMessageType) {
  Codec tx(auth_a_.get(), 111);
  Codec rx(auth_b_.get(), 222);
  ReplayWindow window;
  SyncBatch batch{77, {}};
  for (uint32_t i = 0; i < kMaxBatchEvents; ++i) batch.events.push_back(sample_event(i));
  SyncBulk bulk{9, 3, 1234, true, {sample_event(1), sample_event(2)}};
  const std::vector<Message> messages = {
      Heartbeat{HaState::Active, 200, kHealthDataplaneOk | kHealthEgressOk, 99, 0},
      batch,
      SyncRequest{42, ResyncMode::FromSeq},
      SyncRequest{0, ResyncMode::Full},
      bulk,
      SyncBulk{10, 0, 5, true, {}},
      HandoverRequest{5, 1000},
      HandoverAck{5, true},
      HandoverAck{6, false},
  };
  uint64_t seq = 0;
  for (const Message& m : messages) {
    const auto d = tx.encode(m, 17);
    ASSERT_FALSE(d.empty());
    ASSERT_LE(d.size(), kMaxDatagram);
    auto got = rx.decode(d, window);
    ASSERT_TRUE(got) << "type index " << m.index();
    EXPECT_EQ(got->message, m);
    EXPECT_EQ(got->header.boot_id, 111U);
    EXPECT_EQ(got->header.seq, ++seq);
    EXPECT_EQ(got->header.epoch, 17U);
  }
  EXPECT_EQ(rx.counters().accepted, messages.size());
  EXPECT_EQ(rx.counters().dropped(), 0U);
}

TEST_F(WireTest, HeaderLayoutIsExplicit) {
  Codec tx(auth_a_.get(), 0x0102030405060708);
  const auto d = tx.encode(Heartbeat{HaState::Standby, 7, 3, 0x11, 0x22}, 0x99);
  ASSERT_EQ(d.size(), kHeaderSize + kHeartbeatSize + kMacSize);
  EXPECT_EQ(be::get32(&d[0]), kWireMagic);
  EXPECT_EQ(d[4], kWireVersion);
  EXPECT_EQ(d[5], static_cast<uint8_t>(MessageType::Heartbeat));
  EXPECT_EQ(be::get16(&d[6]), kHeartbeatSize);
  EXPECT_EQ(be::get64(&d[8]), 0x0102030405060708U);
  EXPECT_EQ(be::get64(&d[16]), 1U);
  EXPECT_EQ(be::get64(&d[24]), 0x99U);
  EXPECT_EQ(d[32], static_cast<uint8_t>(HaState::Standby));
  EXPECT_EQ(d[33], 7);
  EXPECT_EQ(be::get64(&d[40]), 0x11U);
  EXPECT_EQ(be::get64(&d[48]), 0x22U);
  EXPECT_EQ(kMaxBatchEvents, 47U);
  EXPECT_EQ(kMaxBulkEvents, 46U);
}

TEST_F(WireTest, OversizedBatchIsNotEncoded) {
  Codec tx(auth_a_.get(), 1);
  SyncBatch batch{1, std::vector<FlowEvent>(kMaxBatchEvents + 1, sample_event(0))};
  EXPECT_TRUE(tx.encode(batch, 0).empty());
}

// Re-signs a datagram after a test altered it, so checks behind the MAC can be reached.
void resign(Authenticator& auth, std::vector<uint8_t>& d) {
  const size_t body = d.size() - kMacSize;
  ASSERT_TRUE(auth.sign(std::span<const uint8_t>(d.data(), body),
                        std::span<uint8_t, kMacSize>(d.data() + body, kMacSize)));
}

struct MalformedCase {
  const char* name;
  std::function<void(std::vector<uint8_t>&, Authenticator&)> mutate;
  DropReason expected;
};

TEST_F(WireTest, MalformedAndUnauthenticatedAreDroppedByReason) {
  const std::vector<MalformedCase> cases = {
      {"empty", [](auto& d, auto&) { d.clear(); }, DropReason::too_short},
      {"truncated", [](auto& d, auto&) { d.resize(d.size() - 1); }, DropReason::length_mismatch},
      {"truncated to header", [](auto& d, auto&) { d.resize(kHeaderSize + 10); },
       DropReason::too_short},
      {"too long", [](auto& d, auto&) { d.resize(kMaxDatagram + 1); }, DropReason::too_long},
      {"bad magic", [](auto& d, auto&) { d[0] ^= 0xff; }, DropReason::bad_magic},
      {"version 2", [](auto& d, auto&) { d[4] = 2; }, DropReason::bad_version},
      {"length field", [](auto& d, auto&) { be::put16(&d[6], 8); }, DropReason::length_mismatch},
      {"tampered payload", [](auto& d, auto&) { d[kHeaderSize + 1] ^= 1; }, DropReason::bad_mac},
      {"tampered epoch", [](auto& d, auto&) { d[31] ^= 1; }, DropReason::bad_mac},
      {"tampered mac", [](auto& d, auto&) { d.back() ^= 1; }, DropReason::bad_mac},
      {"wrong key", [](auto&, Authenticator&) {}, DropReason::bad_mac},
      {"unknown type",
       [](auto& d, auto& a) {
         d[5] = 42;
         resign(a, d);
       },
       DropReason::unknown_type},
      {"bad state",
       [](auto& d, auto& a) {
         d[kHeaderSize] = 9;
         resign(a, d);
       },
       DropReason::bad_payload},
      {"type/length disagree",
       [](auto& d, auto& a) {
         d[5] = 6;
         resign(a, d);
       },
       DropReason::bad_payload},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const bool wrong_key = std::string(c.name) == "wrong key";
    Codec tx(wrong_key ? wrong_.get() : auth_a_.get(), 1);
    Codec rx(auth_b_.get(), 2);
    ReplayWindow window;
    auto d = tx.encode(Heartbeat{HaState::Active, 1, 0, 0, 0}, 1);
    c.mutate(d, *auth_a_);
    DropReason why = DropReason::count;
    EXPECT_FALSE(rx.decode(d, window, &why));
    EXPECT_EQ(why, c.expected) << to_string(why);
    EXPECT_EQ(rx.counters()[c.expected], 1U);
    EXPECT_EQ(rx.counters().dropped(), 1U);
    EXPECT_EQ(window.highest(), 0U) << "a dropped message must not move the window";
  }
}

TEST_F(WireTest, MalformedSyncPayloads) {
  Codec tx(auth_a_.get(), 1);
  Codec rx(auth_b_.get(), 2);
  ReplayWindow window;
  auto d = tx.encode(SyncBatch{5, {sample_event(0), sample_event(1)}}, 1);
  // Count says 3 but only two records follow.
  be::put16(&d[kHeaderSize + 8], 3);
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d, window));
  // A record with an unknown kind.
  d = tx.encode(SyncBatch{5, {sample_event(0)}}, 1);
  d[kHeaderSize + kSyncBatchFixed + 24] = 0;
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d, window));
  // Unknown bulk flag bits.
  d = tx.encode(SyncBulk{1, 0, 0, true, {}}, 1);
  d[kHeaderSize + 18] = 0x80;
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d, window));
  EXPECT_EQ(rx.counters()[DropReason::bad_payload], 3U);
}

TEST_F(WireTest, ReplaysAndReflectionsAreDropped) {
  Codec tx(auth_a_.get(), 1000);
  Codec rx(auth_b_.get(), 2000);
  ReplayWindow window;
  const auto first = tx.encode(Heartbeat{}, 1);
  const auto second = tx.encode(Heartbeat{}, 1);
  ASSERT_TRUE(rx.decode(second, window));
  ASSERT_TRUE(rx.decode(first, window));  // reordered but new: accepted
  EXPECT_FALSE(rx.decode(first, window));
  EXPECT_FALSE(rx.decode(second, window));
  EXPECT_EQ(rx.counters()[DropReason::replay], 2U);

  // Our own datagram looped back.
  Codec self(auth_b_.get(), 2000);
  EXPECT_FALSE(rx.decode(self.encode(Heartbeat{}, 1), window));
  EXPECT_EQ(rx.counters()[DropReason::own_message], 1U);

  // The peer restarted (larger boot id); its old run's messages are now refused.
  Codec restarted(auth_a_.get(), 5000);
  EXPECT_TRUE(rx.decode(restarted.encode(Heartbeat{}, 2), window));
  EXPECT_FALSE(rx.decode(tx.encode(Heartbeat{}, 1), window));
  EXPECT_EQ(rx.counters()[DropReason::stale_incarnation], 1U);
  EXPECT_EQ(rx.counters().accepted, 3U);
}

TEST(DropReasonTest, NamesComeFromOneList) {
  EXPECT_EQ(to_string(DropReason::bad_mac), "bad_mac");
  EXPECT_EQ(to_string(DropReason::unknown_source), "unknown_source");
  EXPECT_NE(description(DropReason::replay).find("already"), std::string_view::npos);
  EXPECT_EQ(to_string(MessageType::SyncBulk), "sync_bulk");
}

}  // namespace
}  // namespace eipgate::ha

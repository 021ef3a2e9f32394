// HMAC accept/reject, the replay window, and wire encode/decode round trips and malformed input.
#include "control/ha/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>

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

TEST_F(WireTest, LinkKeyIsDerivedAndTheSecretWiped) {
  std::vector<uint8_t> secret = key("0123456789abcdef-shared");
  const std::vector<uint8_t> copy = secret;
  std::string error;
  auto link = Authenticator::create_link(secret, &error);
  ASSERT_TRUE(link) << error;
  EXPECT_EQ(secret, std::vector<uint8_t>(copy.size(), 0)) << "the raw secret must be wiped";
  // The wire's MAC key is HKDF(secret), not the secret: both peers derive the same one.
  const auto derived = derive_link_key(copy);
  ASSERT_TRUE(derived);
  EXPECT_NE(std::vector<uint8_t>(derived->begin(), derived->end()), copy);
  auto by_derived = Authenticator::create(*derived, &error);
  const std::vector<uint8_t> data = key("heartbeat bytes");
  std::array<uint8_t, kMacSize> mac{};
  ASSERT_TRUE(link->sign(data, mac));
  EXPECT_TRUE(by_derived->verify(data, mac));
  EXPECT_FALSE(auth_a_->verify(data, mac)) << "keyed with the raw secret: must differ";
  std::vector<uint8_t> other = key("0123456789abcdef-shared");
  auto peer = Authenticator::create_link(other, &error);
  EXPECT_TRUE(peer->verify(data, mac));
  std::vector<uint8_t> empty;
  EXPECT_EQ(Authenticator::create_link(empty, &error), nullptr);
}

TEST(ReplayWindowTest, AcceptsEachSequenceOnce) {
  ReplayWindow w;
  EXPECT_EQ(w.check(0), ReplayWindow::Verdict::TooOld);
  for (uint64_t s : {1, 2, 5, 4, 3}) {
    ASSERT_EQ(w.check(s), ReplayWindow::Verdict::Accept) << s;
    w.record(s);
  }
  for (uint64_t s : {1, 2, 3, 4, 5}) EXPECT_EQ(w.check(s), ReplayWindow::Verdict::Replay);
  EXPECT_EQ(w.check(6), ReplayWindow::Verdict::Accept);
  w.reset();
  EXPECT_EQ(w.check(1), ReplayWindow::Verdict::Accept);
}

TEST(ReplayWindowTest, SlidesAndForgetsOnlyBeyondTheWindow) {
  ReplayWindow w;
  w.record(10);
  w.record(10 + ReplayWindow::kSize - 1);
  EXPECT_EQ(w.check(10), ReplayWindow::Verdict::Replay);
  EXPECT_EQ(w.check(11), ReplayWindow::Verdict::Accept);  // never seen, still in the window
  w.record(10 + ReplayWindow::kSize);
  EXPECT_EQ(w.check(10), ReplayWindow::Verdict::TooOld);
  EXPECT_EQ(w.check(11), ReplayWindow::Verdict::Accept);
  // A jump far ahead clears everything; old slots must not read as seen.
  w.record(100000);
  EXPECT_EQ(w.check(100000 - 5), ReplayWindow::Verdict::Accept);
  EXPECT_EQ(w.check(100000), ReplayWindow::Verdict::Replay);
}

TEST(RunIdTest, RandomNeverZeroAndNotFromTheClock) {
  std::set<uint64_t> ids;
  for (int i = 0; i < 64; ++i) {
    const uint64_t id = make_run_id();
    EXPECT_NE(id, 0U);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 64U);
}

// `tx` learns `rx`'s run and time, as from rx's first heartbeat: tx's messages are then bound to
// rx (the exchange). rx's heartbeat does not echo tx yet, so tx drops it as unbound.
void introduce(Codec& tx, Codec& rx) {
  DropReason why = DropReason::count;
  EXPECT_FALSE(tx.decode(rx.encode(Heartbeat{}, 0), &why));
  EXPECT_EQ(why, DropReason::unbound);
  (void)tx.take_answer_due();
}

TEST_F(WireTest, RoundTripsEveryMessageType) {
  ManualClock clock;
  Codec tx(auth_a_.get(), 111, clock);
  Codec rx(auth_b_.get(), 222, clock);
  introduce(tx, rx);
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
    clock.advance(Millis{10});
    const auto d = tx.encode(m, 17);
    ASSERT_FALSE(d.empty());
    ASSERT_LE(d.size(), kMaxDatagram);
    auto got = rx.decode(d);
    ASSERT_TRUE(got) << "type index " << m.index();
    EXPECT_EQ(got->message, m);
    EXPECT_EQ(got->header.boot_id, 111U);
    EXPECT_EQ(got->header.seq, ++seq);
    EXPECT_EQ(got->header.epoch, 17U);
    EXPECT_EQ(got->header.sent_ms, static_cast<uint64_t>(clock.now().count()));
    EXPECT_EQ(got->header.echo_run, 222U);
  }
  EXPECT_EQ(rx.counters().accepted, messages.size());
  EXPECT_EQ(rx.counters().dropped(), 0U);
  EXPECT_EQ(rx.peer_run(), 111U);
}

TEST_F(WireTest, HeaderLayoutIsExplicit) {
  ManualClock clock;
  Codec tx(auth_a_.get(), 0x0102030405060708, clock);
  const auto d = tx.encode(Heartbeat{HaState::Standby, 7, 3, 0x11, 0x22}, 0x99);
  ASSERT_EQ(d.size(), kHeaderSize + kHeartbeatSize + kMacSize);
  EXPECT_EQ(be::get32(&d[0]), kWireMagic);
  EXPECT_EQ(d[4], kWireVersion);
  EXPECT_EQ(d[5], static_cast<uint8_t>(MessageType::Heartbeat));
  EXPECT_EQ(be::get16(&d[6]), kHeartbeatSize);
  EXPECT_EQ(be::get64(&d[8]), 0x0102030405060708U);
  EXPECT_EQ(be::get64(&d[16]), 1U);
  EXPECT_EQ(be::get64(&d[24]), 0x99U);
  EXPECT_EQ(be::get64(&d[32]), 1'000'000U) << "sender time";
  EXPECT_EQ(be::get64(&d[40]), 0U) << "echo run: none heard yet";
  EXPECT_EQ(be::get64(&d[48]), 0U) << "echo time";
  EXPECT_EQ(d[56], static_cast<uint8_t>(HaState::Standby));
  EXPECT_EQ(d[57], 7);
  EXPECT_EQ(be::get64(&d[64]), 0x11U);
  EXPECT_EQ(be::get64(&d[72]), 0x22U);
  EXPECT_EQ(kMaxBatchEvents, 46U);
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
      {"version 1", [](auto& d, auto&) { d[4] = 1; }, DropReason::bad_version},
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
    auto d = tx.encode(Heartbeat{HaState::Active, 1, 0, 0, 0}, 1);
    c.mutate(d, *auth_a_);
    DropReason why = DropReason::count;
    EXPECT_FALSE(rx.decode(d, &why));
    EXPECT_EQ(why, c.expected) << to_string(why);
    EXPECT_EQ(rx.counters()[c.expected], 1U);
    EXPECT_EQ(rx.counters().dropped(), 1U);
    EXPECT_FALSE(rx.peer_run()) << "a dropped message must not start a session";
    EXPECT_FALSE(rx.take_answer_due()) << "nor call for an answer";
  }
}

TEST_F(WireTest, MalformedSyncPayloads) {
  Codec tx(auth_a_.get(), 1);
  Codec rx(auth_b_.get(), 2);
  auto d = tx.encode(SyncBatch{5, {sample_event(0), sample_event(1)}}, 1);
  // Count says 3 but only two records follow.
  be::put16(&d[kHeaderSize + 8], 3);
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d));
  // A record with an unknown kind.
  d = tx.encode(SyncBatch{5, {sample_event(0)}}, 1);
  d[kHeaderSize + kSyncBatchFixed + 24] = 0;
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d));
  // Unknown bulk flag bits.
  d = tx.encode(SyncBulk{1, 0, 0, true, {}}, 1);
  d[kHeaderSize + 18] = 0x80;
  resign(*auth_a_, d);
  EXPECT_FALSE(rx.decode(d));
  EXPECT_EQ(rx.counters()[DropReason::bad_payload], 3U);
}

TEST_F(WireTest, ReplaysAndReflectionsAreDropped) {
  ManualClock clock;
  Codec tx(auth_a_.get(), 1000, clock);
  Codec rx(auth_b_.get(), 2000, clock);
  introduce(tx, rx);
  const auto first = tx.encode(Heartbeat{}, 1);
  const auto second = tx.encode(Heartbeat{}, 1);
  ASSERT_TRUE(rx.decode(second));
  ASSERT_TRUE(rx.decode(first));  // reordered but new: accepted
  EXPECT_FALSE(rx.decode(first));
  EXPECT_FALSE(rx.decode(second));
  EXPECT_EQ(rx.counters()[DropReason::replay], 2U);

  // Our own datagram looped back.
  Codec self(auth_b_.get(), 2000, clock);
  EXPECT_FALSE(rx.decode(self.encode(Heartbeat{}, 1)));
  EXPECT_EQ(rx.counters()[DropReason::own_message], 1U);
  EXPECT_EQ(rx.counters().accepted, 2U);
}

// A peer whose clock stepped back restarts with a "smaller" run id; run ids are random
// and unordered, so it is accepted after the exchange, and its previous run is refused from then.
TEST_F(WireTest, RestartedPeerWithSmallerRunIdIsAcceptedAndItsOldRunRefused) {
  ManualClock clock;
  Codec old_run(auth_a_.get(), 5000, clock);
  Codec rx(auth_b_.get(), 2000, clock);
  introduce(old_run, rx);
  ASSERT_TRUE(rx.decode(old_run.encode(Heartbeat{}, 3)));
  const auto late = old_run.encode(Heartbeat{}, 3);  // sent, delivered after the restart

  Codec restarted(auth_a_.get(), 4000, clock);
  DropReason why = DropReason::count;
  EXPECT_FALSE(rx.decode(restarted.encode(Heartbeat{}, 3), &why));
  EXPECT_EQ(why, DropReason::unbound) << "a new run is not trusted before the exchange";
  EXPECT_TRUE(rx.take_answer_due());
  introduce(restarted, rx);
  auto got = rx.decode(restarted.encode(Heartbeat{}, 3));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->header.boot_id, 4000U);
  EXPECT_EQ(rx.peer_run(), 4000U);
  EXPECT_TRUE(rx.take_answer_due()) << "tell the new run at once";
  EXPECT_EQ(rx.echo(), (Echo{4000, static_cast<uint64_t>(clock.now().count())}));
  EXPECT_FALSE(rx.decode(late, &why));
  EXPECT_EQ(why, DropReason::stale_incarnation);
}

// The exchange between two fresh instances completes with answers alone.
TEST_F(WireTest, ExchangeBindsBothSidesWithinARoundTrip) {
  ManualClock clock;
  Codec a(auth_a_.get(), 0xaaaa, clock);
  Codec b(auth_b_.get(), 0xbbbb, clock);
  DropReason why = DropReason::count;
  EXPECT_FALSE(b.decode(a.encode(Heartbeat{}, 0), &why));  // echoes nothing yet
  EXPECT_EQ(why, DropReason::unbound);
  ASSERT_TRUE(b.take_answer_due());
  clock.advance(Millis{1});
  EXPECT_TRUE(a.decode(b.encode(Heartbeat{}, 0)));  // b echoes a: a binds to b
  EXPECT_EQ(a.peer_run(), 0xbbbbU);
  ASSERT_TRUE(a.take_answer_due());
  clock.advance(Millis{1});
  EXPECT_TRUE(b.decode(a.encode(Heartbeat{}, 0)));
  EXPECT_EQ(b.peer_run(), 0xaaaaU);
  // Answers are rate limited per sender run.
  Codec c(auth_a_.get(), 0xcccc, clock);
  EXPECT_FALSE(b.decode(c.encode(Heartbeat{}, 0)));
  EXPECT_TRUE(b.take_answer_due());
  EXPECT_FALSE(b.decode(c.encode(Heartbeat{}, 0)));
  EXPECT_FALSE(b.take_answer_due());
  clock.advance(Codec::kAnswerInterval);
  EXPECT_FALSE(b.decode(c.encode(Heartbeat{}, 0)));
  EXPECT_TRUE(b.take_answer_due());
  EXPECT_EQ(b.peer_run(), 0xaaaaU) << "c never echoed b: it replaces nothing";
}

// A state-changing message withheld longer than the validity time is refused; sync traffic only
// needs the binding; after a partition both sides rebind within a round trip.
TEST_F(WireTest, StateChangingMessagesExpire) {
  ManualClock clock;
  Codec a(auth_a_.get(), 0xaaaa, clock);
  Codec b(auth_b_.get(), 0xbbbb, clock);
  introduce(a, b);
  ASSERT_TRUE(b.decode(a.encode(Heartbeat{}, 1)));
  ASSERT_TRUE(a.decode(b.encode(Heartbeat{}, 1)));
  const auto handover = a.encode(HandoverRequest{9, 0}, 1);
  const auto failed = a.encode(Heartbeat{HaState::Failed, 1, 0, 0, 0}, 1);
  const auto ack = a.encode(HandoverAck{9, true}, 1);
  const auto batch = a.encode(SyncBatch{1, {sample_event(0)}}, 1);
  clock.advance(kMaxMessageAge + Millis{1});
  DropReason why = DropReason::count;
  for (const auto* d : {&handover, &failed, &ack}) {
    EXPECT_FALSE(b.decode(*d, &why));
    EXPECT_EQ(why, DropReason::expired);
  }
  EXPECT_EQ(b.counters()[DropReason::expired], 3U);
  EXPECT_TRUE(b.decode(batch)) << "bound to our run; sync needs no freshness";
  EXPECT_TRUE(b.take_answer_due());
  // The partition heals: a's next heartbeat still echoes an old time of b's and is refused, but
  // b learns a's time from it, so b's answer is accepted, and then a's next heartbeat.
  EXPECT_FALSE(b.decode(a.encode(Heartbeat{}, 1), &why));
  EXPECT_EQ(why, DropReason::expired);
  ASSERT_TRUE(a.decode(b.encode(Heartbeat{}, 1)));
  EXPECT_TRUE(b.decode(a.encode(Heartbeat{}, 1)));
  EXPECT_EQ(b.peer_run(), 0xaaaaU);
}

// A restarted receiver accepts nothing captured before its restart, whatever the type
// and however much later it arrives; the live peer is accepted after the exchange.
TEST_F(WireTest, RestartedReceiverRefusesEverythingCapturedBefore) {
  ManualClock clock;
  Codec active(auth_a_.get(), 0xaaaa, clock);
  std::vector<std::vector<uint8_t>> captured;
  {
    Codec standby(auth_b_.get(), 0xbbbb, clock);
    introduce(active, standby);
    for (int i = 0; i < 20; ++i) {
      clock.advance(Millis{150});
      captured.push_back(active.encode(Heartbeat{HaState::Active, 1, 3, 0, 0}, 4));
      ASSERT_TRUE(standby.decode(captured.back()));
      (void)active.decode(standby.encode(Heartbeat{HaState::Standby, 1, 3, 0, 0}, 4));
    }
    captured.push_back(active.encode(HandoverRequest{1, 0}, 4));
    captured.push_back(active.encode(Heartbeat{HaState::Failed, 1, 0, 0, 0}, 4));
    captured.push_back(active.encode(SyncBatch{1, {sample_event(0)}}, 4));
  }
  for (Millis later : {Millis{0}, Millis{500}, Millis{11'000}}) {
    clock.advance(later);
    Codec restarted(auth_b_.get(), 0xb2b2, clock);
    DropReason why = DropReason::count;
    for (const auto& d : captured) {
      EXPECT_FALSE(restarted.decode(d, &why));
      EXPECT_EQ(why, DropReason::unbound);
    }
    EXPECT_EQ(restarted.counters().accepted, 0U);
    EXPECT_FALSE(restarted.peer_run());
  }
}

TEST(DropReasonTest, NamesComeFromOneList) {
  EXPECT_EQ(to_string(DropReason::bad_mac), "bad_mac");
  EXPECT_EQ(to_string(DropReason::unknown_source), "unknown_source");
  EXPECT_NE(description(DropReason::replay).find("already"), std::string_view::npos);
  EXPECT_EQ(to_string(MessageType::SyncBulk), "sync_bulk");
}

}  // namespace
}  // namespace eipgate::ha

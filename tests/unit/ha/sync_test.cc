// SyncSender / SyncReceiver: batching boundaries, ordering and dedup, gap -> resync request,
// bulk resync (join, lost chunk, live events during the snapshot), tail loss, sender change.
#include "control/ha/sync.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>

namespace eipgate::ha {
namespace {

using namespace std::chrono_literals;

FlowEvent flow(uint32_t i, FlowEventKind kind = FlowEventKind::Create) {
  FlowEvent e;
  e.inside_ip = 0x0a800000 + i;
  e.outside_ip = 0x0a000064;
  e.remote_ip = 0x01010101;
  e.inside_port = static_cast<uint16_t>(1000 + i % 60000);
  e.outside_port = static_cast<uint16_t>(1024 + i % 60000);
  e.remote_port = 443;
  e.proto = 17;
  e.remaining_ms = 300000;
  e.kind = kind;
  return e;
}

// The standby's table, keyed by inside tuple, with mark-and-sweep for snapshots.
class TableSink : public SyncSink {
 public:
  void apply(const FlowEvent& e) override {
    const auto key = std::make_tuple(e.inside_ip, e.inside_port, e.remote_ip, e.proto);
    if (e.kind == FlowEventKind::Delete) {
      table.erase(key);
    } else {
      table[key] = {e, generation};
    }
    ++applied;
  }
  void snapshot_begin(uint32_t) override {
    ++generation;
    ++begins;
  }
  void snapshot_end(uint32_t) override {
    ++ends;
    std::erase_if(table, [this](const auto& kv) { return kv.second.second != generation; });
  }
  std::map<std::tuple<uint32_t, uint16_t, uint32_t, uint8_t>, std::pair<FlowEvent, int>> table;
  int generation = 0;
  int begins = 0;
  int ends = 0;
  uint64_t applied = 0;
};

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<uint8_t> key(32, 0x5a);
    std::string error;
    auth_tx_ = Authenticator::create(key, &error);
    auth_rx_ = Authenticator::create(key, &error);
    ASSERT_TRUE(auth_tx_ && auth_rx_);
    tx_codec_ = std::make_unique<Codec>(auth_tx_.get(), 1000);
    rx_codec_ = std::make_unique<Codec>(auth_rx_.get(), 2000);
    // The exchange: the sender learns the receiver's run from its heartbeat (wire.h).
    (void)tx_codec_->decode(rx_codec_->encode(Heartbeat{}, 0));
    sender_ = std::make_unique<SyncSender>(tx_codec_.get());
    receiver_ = std::make_unique<SyncReceiver>(clock_, &sink_, 2s);
  }

  // Decodes one datagram on the standby and feeds the receiver.
  std::optional<SyncRequest> deliver(const std::vector<uint8_t>& d) {
    auto m = rx_codec_->decode(d);
    EXPECT_TRUE(m);
    if (!m) return std::nullopt;
    if (const auto* b = std::get_if<SyncBatch>(&m->message)) {
      return receiver_->on_batch(m->header.boot_id, *b);
    }
    if (const auto* b = std::get_if<SyncBulk>(&m->message)) {
      return receiver_->on_bulk(m->header.boot_id, *b);
    }
    ADD_FAILURE() << "unexpected message";
    return std::nullopt;
  }
  // Delivers everything queued, collecting requests.
  std::vector<SyncRequest> deliver_all(const std::vector<std::vector<uint8_t>>& ds) {
    std::vector<SyncRequest> requests;
    for (const auto& d : ds) {
      if (auto r = deliver(d)) requests.push_back(*r);
    }
    return requests;
  }
  // The sender's own view of the table, as the active would snapshot it.
  std::vector<FlowEvent> snapshot_of(uint32_t n) {
    std::vector<FlowEvent> v;
    for (uint32_t i = 0; i < n; ++i) v.push_back(flow(i));
    return v;
  }
  // Joins: full resync answered with a snapshot of n flows.
  void join_with(uint32_t n) {
    auto r = receiver_->start();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->mode, ResyncMode::Full);
    sender_->send_snapshot(snapshot_of(n));
    EXPECT_TRUE(deliver_all(sender_->take()).empty());
    ASSERT_TRUE(receiver_->in_sync());
  }

  ManualClock clock_;
  std::unique_ptr<Authenticator> auth_tx_, auth_rx_;
  std::unique_ptr<Codec> tx_codec_, rx_codec_;
  TableSink sink_;
  std::unique_ptr<SyncSender> sender_;
  std::unique_ptr<SyncReceiver> receiver_;
};

TEST_F(SyncTest, BatchingBoundaries) {
  sender_->flush();
  EXPECT_EQ(sender_->pending_datagrams(), 0U) << "an empty flush sends nothing";
  for (uint32_t i = 0; i < kMaxBatchEvents - 1; ++i) sender_->add(flow(i));
  EXPECT_EQ(sender_->pending_datagrams(), 0U);
  EXPECT_EQ(sender_->last_sent_seq(), 0U) << "events still in the open batch are not 'sent'";
  sender_->add(flow(46));
  EXPECT_EQ(sender_->pending_datagrams(), 1U) << "a full batch leaves at once";
  EXPECT_EQ(sender_->last_sent_seq(), kMaxBatchEvents);
  sender_->add(flow(47));
  sender_->flush();
  auto ds = sender_->take();
  ASSERT_EQ(ds.size(), 2U);
  EXPECT_LE(ds[0].size(), kMaxDatagram);
  EXPECT_EQ(ds[0].size(), kHeaderSize + kSyncBatchFixed + kMaxBatchEvents * 28 + kMacSize);
  EXPECT_EQ(ds[1].size(), kHeaderSize + kSyncBatchFixed + 28 + kMacSize);
  EXPECT_EQ(sender_->stats().batches, 2U);
  EXPECT_EQ(sender_->last_sent_seq(), kMaxBatchEvents + 1);
  EXPECT_EQ(sender_->pending_datagrams(), 0U);
}

TEST_F(SyncTest, LiveStreamInOrderAfterJoin) {
  join_with(0);
  for (uint32_t i = 0; i < 500; ++i) sender_->add(flow(i));
  sender_->add(flow(3, FlowEventKind::Delete));
  sender_->flush();
  EXPECT_TRUE(deliver_all(sender_->take()).empty());
  EXPECT_EQ(receiver_->applied_seq(), 501U);
  EXPECT_EQ(sink_.table.size(), 499U);
  EXPECT_EQ(receiver_->stats().gaps, 0U);
}

TEST_F(SyncTest, DuplicatesAndOverlapsAreDeduplicated) {
  join_with(0);
  const uint64_t sender = tx_codec_->boot_id();
  EXPECT_FALSE(receiver_->on_batch(sender, SyncBatch{1, {flow(1), flow(2), flow(3)}}));
  EXPECT_FALSE(receiver_->on_batch(sender, SyncBatch{1, {flow(1), flow(2), flow(3)}}));
  EXPECT_FALSE(receiver_->on_batch(sender, SyncBatch{3, {flow(3), flow(4)}}));
  EXPECT_EQ(receiver_->applied_seq(), 4U);
  EXPECT_EQ(receiver_->stats().applied, 4U);
  EXPECT_EQ(receiver_->stats().duplicates, 4U);
}

TEST_F(SyncTest, GapTriggersResyncThenBufferedEventsApply) {
  join_with(10);
  for (uint32_t i = 100; i < 100 + 2 * kMaxBatchEvents + 5; ++i) sender_->add(flow(i));
  sender_->flush();
  auto ds = sender_->take();
  ASSERT_EQ(ds.size(), 3U);
  EXPECT_FALSE(deliver(ds[0]));
  // ds[1] is lost.
  auto req = deliver(ds[2]);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->mode, ResyncMode::FromSeq);
  EXPECT_EQ(req->from_seq, kMaxBatchEvents + 1);
  EXPECT_FALSE(receiver_->in_sync());
  EXPECT_NE(receiver_->last_reason().find("gap"), std::string::npos);
  EXPECT_EQ(receiver_->stats().gaps, 1U);

  // The active answers with a snapshot of its whole table; new live events follow it.
  std::vector<FlowEvent> table = snapshot_of(10);
  for (uint32_t i = 100; i < 100 + 2 * kMaxBatchEvents + 5; ++i) table.push_back(flow(i));
  sender_->send_snapshot(table);
  sender_->add(flow(9000));
  sender_->flush();
  EXPECT_TRUE(deliver_all(sender_->take()).empty());
  EXPECT_TRUE(receiver_->in_sync());
  EXPECT_EQ(receiver_->applied_seq(), sender_->last_sent_seq());
  EXPECT_EQ(sink_.table.size(), table.size() + 1);
  EXPECT_EQ(sink_.ends, 2);
}

TEST_F(SyncTest, BulkResyncOnJoinReplacesStaleEntries) {
  // A standby that had stale flows from before drops them when the snapshot ends.
  sink_.apply(flow(999999));
  join_with(5000);
  EXPECT_EQ(sink_.table.size(), 5000U);
  EXPECT_EQ(sink_.table.count({flow(999999).inside_ip, flow(999999).inside_port,
                               flow(999999).remote_ip, flow(999999).proto}),
            0U);
  EXPECT_EQ(sender_->stats().bulk_chunks, (5000 + kMaxBulkEvents - 1) / kMaxBulkEvents);
  EXPECT_EQ(receiver_->stats().snapshots_completed, 1U);
  EXPECT_EQ(sink_.begins, 1);
  EXPECT_EQ(sink_.ends, 1);
}

TEST_F(SyncTest, EmptyTableSnapshotIsOneChunk) {
  join_with(0);
  EXPECT_EQ(sender_->stats().bulk_chunks, 1U);
  EXPECT_TRUE(receiver_->in_sync());
  EXPECT_EQ(receiver_->applied_seq(), 0U);
}

TEST_F(SyncTest, LostBulkChunkRestartsAndRetryIsRateLimited) {
  ASSERT_TRUE(receiver_->start());
  sender_->send_snapshot(snapshot_of(200));  // 5 chunks
  auto ds = sender_->take();
  ASSERT_EQ(ds.size(), 5U);
  EXPECT_FALSE(deliver(ds[0]));
  EXPECT_FALSE(deliver(ds[1]));
  // chunk 2 lost; chunk 3 reveals it, but a request went out just now (start): rate-limited.
  EXPECT_FALSE(deliver(ds[3]));
  EXPECT_FALSE(deliver(ds[4]));
  EXPECT_EQ(receiver_->stats().bulk_out_of_order, 2U);
  EXPECT_EQ(sink_.ends, 0) << "an incomplete snapshot never sweeps the table";
  clock_.advance(1s);
  EXPECT_FALSE(receiver_->tick());
  clock_.advance(1s);
  auto r = receiver_->tick();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mode, ResyncMode::Full);
  sender_->send_snapshot(snapshot_of(200));
  EXPECT_TRUE(deliver_all(sender_->take()).empty());
  EXPECT_TRUE(receiver_->in_sync());
  EXPECT_EQ(sink_.table.size(), 200U);
}

TEST_F(SyncTest, LiveEventsDuringSnapshotAreKeptInOrder) {
  ASSERT_TRUE(receiver_->start());
  // Before the request reached the active: events 1..3 (covered by the snapshot).
  sender_->add(flow(1));
  sender_->add(flow(2));
  sender_->add(flow(3));
  sender_->flush();
  auto early = sender_->take();
  sender_->send_snapshot(snapshot_of(4));  // base_seq 3
  auto bulk = sender_->take();
  sender_->add(flow(2, FlowEventKind::Delete));  // seq 4, after the snapshot
  sender_->flush();
  auto late = sender_->take();
  // Arrival order: early, late (overtook the bulk), bulk.
  EXPECT_TRUE(deliver_all(early).empty());
  EXPECT_TRUE(deliver_all(late).empty());
  EXPECT_TRUE(deliver_all(bulk).empty());
  EXPECT_TRUE(receiver_->in_sync());
  EXPECT_EQ(receiver_->applied_seq(), 4U);
  EXPECT_EQ(sink_.table.size(), 3U) << "the delete after the snapshot was applied after it";
  EXPECT_EQ(receiver_->stats().duplicates, 3U) << "events 1..3 were in the snapshot";
}

TEST_F(SyncTest, TailLossIsFoundThroughHeartbeats) {
  join_with(0);
  const uint64_t sender = tx_codec_->boot_id();
  sender_->add(flow(1));
  sender_->flush();
  (void)sender_->take();  // lost, and nothing follows it
  EXPECT_FALSE(receiver_->on_heartbeat(sender, sender_->last_sent_seq()))
      << "the batch may still be in flight";
  auto r = receiver_->on_heartbeat(sender, sender_->last_sent_seq());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from_seq, 1U);
  EXPECT_NE(receiver_->last_reason().find("tail"), std::string::npos);
}

TEST_F(SyncTest, HeartbeatCaughtUpIsQuiet) {
  join_with(0);
  const uint64_t sender = tx_codec_->boot_id();
  sender_->add(flow(1));
  sender_->flush();
  EXPECT_TRUE(deliver_all(sender_->take()).empty());
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(receiver_->on_heartbeat(sender, 1));
}

TEST_F(SyncTest, NewSenderStartsOver) {
  join_with(20);
  // The peer restarted (or the other instance became active): its sequences restart at 1.
  Codec other(auth_tx_.get(), 5000);
  (void)other.decode(rx_codec_->encode(Heartbeat{}, 0));  // the exchange (wire.h)
  SyncSender fresh(&other);
  fresh.add(flow(77));
  fresh.flush();
  auto ds = fresh.take();
  auto r = deliver(ds[0]);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mode, ResyncMode::Full);
  fresh.send_snapshot(snapshot_of(3));
  EXPECT_TRUE(deliver_all(fresh.take()).empty());
  EXPECT_TRUE(receiver_->in_sync());
  EXPECT_EQ(sink_.table.size(), 3U);
}

TEST_F(SyncTest, UnstartedReceiverAsksForFullResync) {
  sender_->add(flow(1));
  sender_->flush();
  auto r = deliver(sender_->take()[0]);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mode, ResyncMode::Full);
}

// The requirement: "a standby that receives a stream of 1M flow events holds exactly the active's
// table". The active's table is a model mutated by 1M random creates, refreshes and deletes over
// 50k keys; every event goes through the real codec (HMAC, replay window) and the receiver.
// `loss_one_in` > 0 drops datagrams (live and snapshot alike) at that rate, so gaps, tail loss,
// lost snapshot chunks and retries are all exercised; the active answers each request with a
// snapshot of its table at that moment, as the daemon does.
class MillionEvents : public SyncTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(MillionEvents, StandbyEndsWithTheActivesExactTable) {
  const uint32_t loss_one_in = GetParam();
  constexpr uint32_t kEvents = 1'000'000;
  constexpr uint32_t kKeys = 50'000;
  join_with(0);
  const uint64_t sender_id = tx_codec_->boot_id();
  using Key = std::tuple<uint32_t, uint16_t, uint32_t, uint8_t>;  // the sink's key
  std::map<Key, FlowEvent> active;
  std::mt19937_64 rng(20261121);
  uint64_t dropped = 0;
  uint64_t snapshots_sent = 0;

  auto handle = [&](const std::optional<SyncRequest>& r) {
    if (!r) return;
    std::vector<FlowEvent> table;
    table.reserve(active.size());
    for (const auto& [k, e] : active) {
      FlowEvent c = e;
      c.kind = FlowEventKind::Create;
      table.push_back(c);
    }
    sender_->send_snapshot(table);
    ++snapshots_sent;
  };
  auto pump = [&](bool lossy) {
    sender_->flush();
    for (const auto& d : sender_->take()) {
      if (lossy && loss_one_in != 0 && rng() % loss_one_in == 0) {
        ++dropped;
        continue;
      }
      handle(deliver(d));
    }
    clock_.advance(std::chrono::milliseconds(150));  // one heartbeat interval per round
    handle(receiver_->on_heartbeat(sender_id, sender_->last_sent_seq()));
    handle(receiver_->tick());
  };

  for (uint32_t i = 0; i < kEvents; ++i) {
    const uint32_t k = static_cast<uint32_t>(rng() % kKeys);
    FlowEvent e = flow(k);
    const Key key{e.inside_ip, e.inside_port, e.remote_ip, e.proto};
    const auto it = active.find(key);
    if (it == active.end()) {
      e.kind = FlowEventKind::Create;
      e.outside_port = static_cast<uint16_t>(1024 + rng() % 64000);
      e.remaining_ms = (30 + static_cast<uint32_t>(rng() % 300)) * 1000;
      active[key] = e;
    } else if (rng() % 10 < 7) {
      e = it->second;
      e.kind = FlowEventKind::Refresh;
      e.remaining_ms = (30 + static_cast<uint32_t>(rng() % 300)) * 1000;
      e.tcp_bits = static_cast<uint8_t>(rng() % 8);
      it->second = e;
    } else {
      e = it->second;
      e.kind = FlowEventKind::Delete;
      active.erase(it);
    }
    sender_->add(e);
    if (i % 4096 == 4095) pump(true);
  }
  pump(true);
  // The stream stops; heartbeats keep coming and the network heals.
  for (int round = 0; round < 50 && !(receiver_->in_sync() &&
                                      receiver_->applied_seq() == sender_->last_sent_seq());
       ++round) {
    pump(false);
  }

  EXPECT_EQ(sender_->stats().events, kEvents);
  ASSERT_TRUE(receiver_->in_sync()) << receiver_->last_reason();
  EXPECT_EQ(receiver_->applied_seq(), sender_->last_sent_seq());
  ASSERT_EQ(sink_.table.size(), active.size());
  size_t differ = 0;
  for (const auto& [k, e] : active) {
    const auto it = sink_.table.find(k);
    if (it == sink_.table.end()) {
      ++differ;
      continue;
    }
    FlowEvent got = it->second.first;
    FlowEvent want = e;
    got.kind = want.kind = FlowEventKind::Create;
    if (!(got == want)) ++differ;
  }
  EXPECT_EQ(differ, 0U) << "flows missing or different on the standby";
  if (loss_one_in == 0) {
    EXPECT_EQ(dropped, 0U);
    EXPECT_EQ(receiver_->stats().applied, kEvents) << "every live event applied exactly once";
    EXPECT_EQ(receiver_->stats().gaps, 0U);
    EXPECT_EQ(snapshots_sent, 0U);
  } else {
    EXPECT_GT(dropped, 0U) << "the lossy run must lose something";
    EXPECT_GT(receiver_->stats().gaps + receiver_->stats().bulk_out_of_order, 0U);
    EXPECT_GT(receiver_->stats().snapshots_completed, 1U) << "the join's plus at least one repair";
  }
}

INSTANTIATE_TEST_SUITE_P(Sync, MillionEvents, ::testing::Values(0U, 2000U),
                         [](const ::testing::TestParamInfo<uint32_t>& p) {
                           return p.param == 0 ? std::string("NoLoss")
                                               : "LossOneIn" + std::to_string(p.param);
                         });

}  // namespace
}  // namespace eipgate::ha

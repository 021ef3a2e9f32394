// UdpTransport over loopback (127.0.0.1, port 0), and the whole path: sender -> sign -> UDP ->
// verify -> receiver.
#include "control/ha/udp_transport.h"

#include <gtest/gtest.h>

#include "control/ha/sync.h"

namespace eipgate::ha {
namespace {

constexpr uint32_t kLoopback = 0x7f000001;

UdpTransport open_loopback() {
  std::string error;
  auto t = UdpTransport::open(Endpoint{kLoopback, 0}, &error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

TEST(UdpTransportTest, SendAndReceiveOne) {
  UdpTransport a = open_loopback();
  UdpTransport b = open_loopback();
  EXPECT_NE(b.local().port, 0);
  EXPECT_EQ(to_string(Endpoint{kLoopback, 7410}), "127.0.0.1:7410");
  EXPECT_FALSE(b.receive(0)) << "nothing queued";
  const std::vector<uint8_t> payload = {1, 2, 3, 4};
  ASSERT_TRUE(a.send(b.local(), payload));
  auto d = b.receive(1000);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->bytes, payload);
  EXPECT_EQ(d->from, a.local());
}

TEST(UdpTransportTest, BindConflictIsAnError) {
  UdpTransport a = open_loopback();
  std::string error;
  EXPECT_FALSE(UdpTransport::open(a.local(), &error));
  EXPECT_NE(error.find("bind 127.0.0.1"), std::string::npos) << error;
}

TEST(UdpTransportTest, SendManyReceiveMany) {
  UdpTransport a = open_loopback();
  UdpTransport b = open_loopback();
  b.set_buffer_sizes(1 << 20);
  std::vector<std::vector<uint8_t>> ds;
  for (uint8_t i = 0; i < 150; ++i) ds.push_back(std::vector<uint8_t>(100 + i, i));
  EXPECT_EQ(a.send_many(b.local(), ds), ds.size());
  std::vector<Datagram> got;
  while (got.size() < ds.size()) {
    auto batch = b.receive_many(64, 1000);
    ASSERT_FALSE(batch.empty());
    for (auto& d : batch) got.push_back(std::move(d));
  }
  for (size_t i = 0; i < ds.size(); ++i) EXPECT_EQ(got[i].bytes, ds[i]) << i;
}

// Receives until `want` datagrams were returned or dropped as oversized (or a few seconds pass).
std::vector<Datagram> receive_up_to(UdpTransport& t, size_t want, size_t max_size) {
  std::vector<Datagram> got;
  for (int i = 0; i < 3 && got.size() + t.oversized() < want; ++i) {
    for (auto& d : t.receive_many(8, 1000, max_size)) got.push_back(std::move(d));
  }
  return got;
}

TEST(UdpTransportTest, OversizedDatagramIsDropped) {
  UdpTransport a = open_loopback();
  UdpTransport b = open_loopback();
  ASSERT_TRUE(a.send(b.local(), std::vector<uint8_t>(3000, 7)));
  ASSERT_TRUE(a.send(b.local(), std::vector<uint8_t>(10, 8)));
  // Everything that arrives must be whole: the oversized one neither whole nor cut short.
  const std::vector<Datagram> got = receive_up_to(b, 2, kMaxDatagram);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].bytes, std::vector<uint8_t>(10, 8));
  EXPECT_EQ(b.oversized(), 1U) << "counted, not silently lost";
  EXPECT_EQ(b.take_oversized(), 1U);
  EXPECT_EQ(b.oversized(), 0U);
}

// The daemon's receive size (2048): a datagram of 2048 bytes arrives, one of 2049 is counted.
TEST(UdpTransportTest, DefaultLimitIs2048Bytes) {
  UdpTransport a = open_loopback();
  UdpTransport b = open_loopback();
  ASSERT_TRUE(a.send(b.local(), std::vector<uint8_t>(2049, 1)));
  ASSERT_TRUE(a.send(b.local(), std::vector<uint8_t>(2048, 2)));
  const std::vector<Datagram> got = receive_up_to(b, 2, 2048);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].bytes, std::vector<uint8_t>(2048, 2));
  EXPECT_EQ(b.oversized(), 1U);
}

class CountingSink : public SyncSink {
 public:
  void apply(const FlowEvent&) override { ++applied; }
  void snapshot_begin(uint32_t) override {}
  void snapshot_end(uint32_t) override { ++snapshots; }
  uint64_t applied = 0;
  int snapshots = 0;
};

TEST(UdpTransportTest, SyncOverLoopbackEndToEnd) {
  UdpTransport active = open_loopback();
  UdpTransport standby = open_loopback();
  standby.set_buffer_sizes(4 << 20);
  const std::vector<uint8_t> key(32, 0x42);
  std::string error;
  auto auth_a = Authenticator::create(key, &error);
  auto auth_s = Authenticator::create(key, &error);
  ManualClock clock;
  Codec codec_a(auth_a.get(), 10, clock), codec_s(auth_s.get(), 20, clock);
  CountingSink sink;
  SyncSender sender(&codec_a);
  SyncReceiver receiver(clock, &sink, std::chrono::seconds(2));

  // The standby joins and asks for a full resync over the wire.
  auto req = receiver.start();
  ASSERT_TRUE(req);
  ASSERT_TRUE(standby.send(active.local(), codec_s.encode(*req, 1)));
  auto got = active.receive(1000);
  ASSERT_TRUE(got);
  // The request does not echo the active yet (the exchange): dropped, and the active answers.
  DropReason why = DropReason::count;
  ASSERT_FALSE(codec_a.decode(got->bytes, &why));
  EXPECT_EQ(why, DropReason::unbound);
  ASSERT_TRUE(codec_a.take_answer_due());
  ASSERT_TRUE(
      active.send(standby.local(), codec_a.encode(Heartbeat{HaState::Active, 1, 3, 0, 0}, 1)));
  auto answer = standby.receive(1000);
  ASSERT_TRUE(answer);
  ASSERT_TRUE(codec_s.decode(answer->bytes));
  ASSERT_TRUE(standby.send(active.local(), codec_s.encode(*req, 1)));
  got = active.receive(1000);
  ASSERT_TRUE(got);
  auto decoded = codec_a.decode(got->bytes);
  ASSERT_TRUE(decoded);
  ASSERT_TRUE(std::holds_alternative<SyncRequest>(decoded->message));

  std::vector<FlowEvent> table(1000);
  for (uint32_t i = 0; i < table.size(); ++i) table[i].inside_ip = i;
  sender.send_snapshot(table);
  for (uint32_t i = 0; i < 500; ++i) sender.add(table[i]);
  sender.flush();
  const auto ds = sender.take();
  ASSERT_EQ(active.send_many(standby.local(), ds), ds.size());

  size_t received = 0;
  while (received < ds.size()) {
    auto batch = standby.receive_many(64, 2000);
    ASSERT_FALSE(batch.empty()) << "lost datagrams on loopback";
    for (const auto& d : batch) {
      ++received;
      ASSERT_EQ(d.from, active.local());
      auto m = codec_s.decode(d.bytes);
      ASSERT_TRUE(m);
      std::optional<SyncRequest> r;
      if (const auto* b = std::get_if<SyncBulk>(&m->message)) r = receiver.on_bulk(10, *b);
      if (const auto* b = std::get_if<SyncBatch>(&m->message)) r = receiver.on_batch(10, *b);
      EXPECT_FALSE(r) << receiver.last_reason();
    }
  }
  EXPECT_TRUE(receiver.in_sync());
  EXPECT_EQ(sink.snapshots, 1);
  EXPECT_EQ(sink.applied, 1500U);
  EXPECT_EQ(receiver.applied_seq(), 500U);
  EXPECT_EQ(codec_s.counters().dropped(), 0U);
}

}  // namespace
}  // namespace eipgate::ha

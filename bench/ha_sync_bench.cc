// HA connection-table sync throughput: encode + HMAC-SHA256 + verify + decode of full sync
// batches (flows/s, one core), and sync events through a loopback UDP socket pair (flows/s).
#include <benchmark/benchmark.h>

#include "control/ha/sync.h"
#include "control/ha/udp_transport.h"

namespace eipgate::ha {
namespace {

FlowEvent bench_flow(uint32_t i) {
  FlowEvent e;
  e.inside_ip = 0x0a800000 + (i & 0xffff);
  e.outside_ip = 0x0a000064;
  e.remote_ip = 0x34000000 + i;
  e.inside_port = static_cast<uint16_t>(i);
  e.outside_port = static_cast<uint16_t>(1024 + (i % 64000));
  e.remote_port = 443;
  e.proto = 6;
  e.tcp_bits = 3;
  e.remaining_ms = 350000;
  e.kind = FlowEventKind::Refresh;
  return e;
}

class NullSink : public SyncSink {
 public:
  void apply(const FlowEvent& e) override { benchmark::DoNotOptimize(e); }
  void snapshot_begin(uint32_t) override {}
  void snapshot_end(uint32_t) override {}
};

struct Keys {
  std::unique_ptr<Authenticator> tx, rx;
  Keys() {
    const std::vector<uint8_t> key(32, 0x61);
    std::string error;
    tx = Authenticator::create(key, &error);
    rx = Authenticator::create(key, &error);
  }
};

// Batches of kMaxBatchEvents (46) flows: SyncSender -> Codec (sign) -> Codec (verify, parse) ->
// SyncReceiver -> sink. Counts flows.
void BM_SyncEncodeHmacDecode(benchmark::State& state) {
  Keys keys;
  Codec tx(keys.tx.get(), 1), rx(keys.rx.get(), 2);
  (void)tx.decode(rx.encode(Heartbeat{}, 0));  // the exchange: tx's messages echo rx's run
  ManualClock clock;
  NullSink sink;
  SyncSender sender(&tx);
  SyncReceiver receiver(clock, &sink, std::chrono::seconds(2));
  sender.send_snapshot({});
  for (const auto& d : sender.take()) {
    auto m = rx.decode(d);
    (void)receiver.on_bulk(1, std::get<SyncBulk>(m->message));
  }
  uint32_t i = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kMaxBatchEvents; ++k) sender.add(bench_flow(i++));
    for (const auto& d : sender.take()) {
      auto m = rx.decode(d);
      auto r = receiver.on_batch(1, std::get<SyncBatch>(m->message));
      benchmark::DoNotOptimize(r);
    }
  }
  if (!receiver.in_sync() || receiver.stats().gaps != 0) state.SkipWithError("sync broke");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kMaxBatchEvents));
  state.counters["bytes_per_flow"] =
      static_cast<double>(kHeaderSize + kSyncBatchFixed + kMaxBatchEvents * kFlowEventWireSize +
                          kMacSize) /
      static_cast<double>(kMaxBatchEvents);
}
BENCHMARK(BM_SyncEncodeHmacDecode);

// The HMAC alone on one full datagram (what authentication costs per batch).
void BM_HmacSha256FullDatagram(benchmark::State& state) {
  Keys keys;
  std::vector<uint8_t> data(kMaxDatagram - kMacSize, 0x33);
  std::array<uint8_t, kMacSize> mac{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(keys.tx->sign(data, mac));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_HmacSha256FullDatagram);

// Sync events over 127.0.0.1: the active thread encodes and sends batches with sendmmsg, the
// same thread then drains the standby socket (recvmmsg), verifies and applies. One core for both
// sides, so the figure is a lower bound for two machines. Lost datagrams (socket buffer
// overflow) would show as gaps; the standby socket gets a large buffer and each round trip is
// drained before the next.
void BM_SyncLoopbackUdp(benchmark::State& state) {
  const auto batches_per_round = static_cast<size_t>(state.range(0));
  Keys keys;
  std::string error;
  auto a = UdpTransport::open(Endpoint{0x7f000001, 0}, &error);
  auto b = UdpTransport::open(Endpoint{0x7f000001, 0}, &error);
  if (!a || !b) {
    state.SkipWithError(error.c_str());
    return;
  }
  b->set_buffer_sizes(8 << 20);
  a->set_buffer_sizes(8 << 20);
  Codec tx(keys.tx.get(), 1), rx(keys.rx.get(), 2);
  (void)tx.decode(rx.encode(Heartbeat{}, 0));  // the exchange: tx's messages echo rx's run
  ManualClock clock;
  NullSink sink;
  SyncSender sender(&tx);
  SyncReceiver receiver(clock, &sink, std::chrono::seconds(2));
  sender.send_snapshot({});
  for (const auto& d : sender.take()) {
    auto m = rx.decode(d);
    (void)receiver.on_bulk(1, std::get<SyncBulk>(m->message));
  }
  uint32_t i = 0;
  uint64_t flows = 0;
  for (auto _ : state) {
    for (size_t n = 0; n < batches_per_round * kMaxBatchEvents; ++n) sender.add(bench_flow(i++));
    const auto ds = sender.take();
    a->send_many(b->local(), ds);
    size_t got = 0;
    while (got < ds.size()) {
      auto in = b->receive_many(64, 1000, kMaxDatagram);
      if (in.empty()) break;
      for (const auto& d : in) {
        ++got;
        auto m = rx.decode(d.bytes);
        if (!m) continue;
        auto r = receiver.on_batch(1, std::get<SyncBatch>(m->message));
        benchmark::DoNotOptimize(r);
        flows += std::get<SyncBatch>(m->message).events.size();
      }
    }
  }
  if (receiver.stats().gaps != 0) state.SkipWithError("datagrams lost on loopback");
  state.SetItemsProcessed(static_cast<int64_t>(flows));
  state.counters["datagrams_per_round"] = static_cast<double>(batches_per_round);
}
BENCHMARK(BM_SyncLoopbackUdp)->Arg(1)->Arg(16)->Arg(64);

}  // namespace
}  // namespace eipgate::ha

BENCHMARK_MAIN();

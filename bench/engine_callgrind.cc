// Repeatable instruction counts for the established fast path: run under
//   valgrind --tool=callgrind --instr-atstart=no build/bench/engine_callgrind [flows] [packets]
//   valgrind --tool=callgrind --instr-atstart=no build/bench/engine_callgrind new [connections]
//   ... engine_callgrind new-log [connections]: the same with the translation log on, its records
//   drained after every burst (as the dataplane's worker does) inside the counted region.
// Only the engine calls are instrumented; Ir / packets = instructions per packet (or per new
// connection: one SYN through flow creation).
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "bench/workload.h"

namespace {
int new_connections(uint32_t conns, bool txlog) {
  using namespace eipgate;
  engine::Engine eng(bench::bench_config(2 * conns));
  eng.set_translation_log(txlog);
  static engine::TxLogRecord logged[64];
  uint64_t records = 0;
  constexpr uint32_t kBurst = 32;
  alignas(64) static uint8_t bufs[kBurst][bench::kBufLen];
  engine::PacketBuf pkts[kBurst];
  engine::PacketBuf* ptrs[kBurst];
  engine::Result res[kBurst];
  for (uint32_t j = 0; j < kBurst; ++j) ptrs[j] = &pkts[j];
  uint64_t created = 0;
  CALLGRIND_START_INSTRUMENTATION;
  for (uint32_t pos = 0; pos < conns; pos += kBurst) {
    for (uint32_t j = 0; j < kBurst; ++j) {
      bench::write_tcp(bufs[j], bench::inside_tuple(pos + j), 0x02, 1, 0);
      pkts[j] = engine::PacketBuf{bufs[j], bench::kFrameLen, bench::kBufLen, {}};
    }
    CALLGRIND_TOGGLE_COLLECT;
    eng.process_burst(ptrs, kBurst, 1'000'000'000ull, res);
    if (txlog) records += eng.drain_translations(logged, 64);
    CALLGRIND_TOGGLE_COLLECT;
    for (uint32_t j = 0; j < kBurst; ++j) created += res[j].verdict == engine::Verdict::ToOutside;
  }
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("new connections=%u created=%llu log records=%llu lost=%llu\n", conns,
              static_cast<unsigned long long>(created), static_cast<unsigned long long>(records),
              static_cast<unsigned long long>(eng.translations_lost()));
  return created == conns && (!txlog || records == conns) ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace eipgate;
  if (argc > 1 && (std::string_view(argv[1]) == "new" || std::string_view(argv[1]) == "new-log")) {
    return new_connections(
        argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 320000,
        std::string_view(argv[1]) == "new-log");
  }
  const uint32_t flows =
      argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 1000;
  const uint32_t packets =
      argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 320000;
  bench::EstablishedWorkload w(flows, 65536);
  constexpr uint32_t kBurst = 32;
  alignas(64) static uint8_t bufs[kBurst][bench::kBufLen];
  engine::PacketBuf pkts[kBurst];
  engine::PacketBuf* ptrs[kBurst];
  engine::Result res[kBurst];
  for (uint32_t j = 0; j < kBurst; ++j) ptrs[j] = &pkts[j];
  uint64_t forwarded = 0;
  // The template copy is measured separately so it can be subtracted.
  CALLGRIND_START_INSTRUMENTATION;
  for (uint32_t pos = 0; pos < packets; pos += kBurst) {
    for (uint32_t j = 0; j < kBurst; ++j) {
      std::memcpy(bufs[j], &w.templates[((pos + j) % w.count) * bench::kBufLen], 64);
      pkts[j] = engine::PacketBuf{bufs[j], bench::kFrameLen, bench::kBufLen, {}};
    }
    CALLGRIND_TOGGLE_COLLECT;
    w.eng->process_burst(ptrs, kBurst, w.now_ns, res);
    w.now_ns += bench::kSimulatedBurstNs;
    CALLGRIND_TOGGLE_COLLECT;
    for (uint32_t j = 0; j < kBurst; ++j) {
      forwarded += res[j].verdict == engine::Verdict::ToOutside ||
                   res[j].verdict == engine::Verdict::ToInside;
    }
  }
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("flows=%u packets=%u forwarded=%llu\n", flows, packets,
              static_cast<unsigned long long>(forwarded));
  return forwarded == packets ? 0 : 1;
}

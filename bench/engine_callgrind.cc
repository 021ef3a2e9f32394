// Repeatable instruction counts for the established fast path: run under
//   valgrind --tool=callgrind --instr-atstart=no build/bench/engine_callgrind [flows] [packets]
// Only the measured loop is instrumented; Ir / packets = instructions per packet.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>

#include "workload.h"

int main(int argc, char** argv) {
  using namespace eipgate;
  const uint32_t flows = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 1000;
  const uint32_t packets = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 320000;
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
  CALLGRIND_TOGGLE_COLLECT;
  for (uint32_t pos = 0; pos < packets; pos += kBurst) {
    for (uint32_t j = 0; j < kBurst; ++j) {
      std::memcpy(bufs[j], &w.templates[((pos + j) % w.count) * bench::kBufLen], 64);
      pkts[j] = engine::PacketBuf{bufs[j], bench::kFrameLen, bench::kBufLen, {}};
    }
    CALLGRIND_TOGGLE_COLLECT;
    w.eng->process_burst(ptrs, kBurst, w.now_ns, res);
    CALLGRIND_TOGGLE_COLLECT;
    for (uint32_t j = 0; j < kBurst; ++j) {
      forwarded += res[j].verdict == engine::Verdict::ToOutside || res[j].verdict == engine::Verdict::ToInside;
    }
  }
  CALLGRIND_TOGGLE_COLLECT;
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("flows=%u packets=%u forwarded=%llu\n", flows, packets,
              static_cast<unsigned long long>(forwarded));
  return forwarded == packets ? 0 : 1;
}

// Engine micro-benchmarks (one core): established-flow fast path at 1k / 1M / 16M active flows,
// new connections per second, memory per connection. Figures go in the issue notes and README.
#include <benchmark/benchmark.h>

#include <map>
#include <random>
#include <string>

#include "bench/workload.h"
#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/policy_config.h"

namespace eipgate::bench {
namespace {

constexpr uint32_t kBurst = 32;

EstablishedWorkload& workload(uint32_t flows) {
  static std::map<uint32_t, std::unique_ptr<EstablishedWorkload>> cache;
  auto& w = cache[flows];
  if (!w) {
    cache.clear();  // keep one at a time: 16M flows take ~1.6 GB
    auto& fresh = cache[flows];
    fresh = std::make_unique<EstablishedWorkload>(
        flows, std::min<uint32_t>(std::max<uint32_t>(flows, 65536), 1u << 20));
    return *fresh;
  }
  return *w;
}

void BM_EstablishedFastPath(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  EstablishedWorkload& w = workload(flows);
  alignas(64) uint8_t bufs[kBurst][kBufLen];
  engine::PacketBuf pkts[kBurst];
  engine::PacketBuf* ptrs[kBurst];
  engine::Result res[kBurst];
  for (uint32_t j = 0; j < kBurst; ++j) ptrs[j] = &pkts[j];
  uint64_t pos = 0;
  uint64_t bad = 0;
  for (auto _ : state) {
    for (uint32_t j = 0; j < kBurst; ++j) {
      std::memcpy(bufs[j], &w.templates[((pos + j) % w.count) * kBufLen], 64);
      pkts[j] = engine::PacketBuf{bufs[j], kFrameLen, kBufLen, {}};
    }
    w.eng->process_burst(ptrs, kBurst, w.now_ns, res);
    w.now_ns += kSimulatedBurstNs;
    for (uint32_t j = 0; j < kBurst; ++j) {
      bad += res[j].verdict != engine::Verdict::ToOutside &&
             res[j].verdict != engine::Verdict::ToInside;
    }
    pos += kBurst;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
  state.counters["Mpps"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBurst / 1e6, benchmark::Counter::kIsRate);
  state.counters["ns_per_pkt"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kBurst * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["active_flows"] = static_cast<double>(w.eng->active_flows());
  state.counters["bytes_per_flow"] =
      static_cast<double>(w.eng->memory_bytes()) / static_cast<double>(flows);
  state.counters["not_forwarded"] = static_cast<double>(bad);
}
BENCHMARK(BM_EstablishedFastPath)
    ->Arg(1000)
    ->Arg(1 << 20)
    ->Arg(1 << 24)
    ->Unit(benchmark::kNanosecond)
    ->MinTime(2.0);

// New connections: 1M distinct SYNs through one engine built from cfg (rebuilt, untimed, when
// the SYNs run out). Shared by the plain and the policy variants so they measure the same loop.
void run_new_connections(benchmark::State& state, const engine::EngineConfig& cfg) {
  constexpr uint32_t kFlows = 1 << 20;
  static std::vector<uint8_t> syns = [] {
    std::vector<uint8_t> v(uint64_t{kFlows} * kBufLen);
    for (uint32_t k = 0; k < kFlows; ++k)
      write_tcp(&v[uint64_t{k} * kBufLen], inside_tuple(k), 0x02, 1, 0);
    return v;
  }();
  auto eng = std::make_unique<engine::Engine>(cfg);
  alignas(64) uint8_t bufs[kBurst][kBufLen];
  engine::PacketBuf pkts[kBurst];
  engine::PacketBuf* ptrs[kBurst];
  engine::Result res[kBurst];
  for (uint32_t j = 0; j < kBurst; ++j) ptrs[j] = &pkts[j];
  uint32_t pos = 0;
  uint64_t bad = 0;
  for (auto _ : state) {
    if (pos == kFlows) {
      state.PauseTiming();
      eng = std::make_unique<engine::Engine>(cfg);
      pos = 0;
      state.ResumeTiming();
    }
    for (uint32_t j = 0; j < kBurst; ++j) {
      std::memcpy(bufs[j], &syns[uint64_t{pos + j} * kBufLen], 64);
      pkts[j] = engine::PacketBuf{bufs[j], kFrameLen, kBufLen, {}};
    }
    eng->process_burst(ptrs, kBurst, 1'000'000'000ull, res);
    for (uint32_t j = 0; j < kBurst; ++j) bad += res[j].verdict != engine::Verdict::ToOutside;
    pos += kBurst;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
  state.counters["Mconn_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBurst / 1e6, benchmark::Counter::kIsRate);
  state.counters["not_created"] = static_cast<double>(bad);
}

void BM_NewConnections(benchmark::State& state) {
  run_new_connections(state, bench_config(2u << 20));
}
BENCHMARK(BM_NewConnections)->Unit(benchmark::kNanosecond)->MinTime(2.0);

// An egress policy of `rules` rules over 64 source groups (10.0.g.0/24, which the benchmark's
// inside hosts fill): random destination prefixes in 100.64.0.0/10 with ports, a sixth of them
// denies, and as each group's last rule the benchmark's destinations (198.51.100.0/24, 443-446)
// allowed — so every SYN is classified through its group's table and allowed.
std::shared_ptr<const policy::CompiledPolicy> bench_policy(uint32_t rules) {
  std::mt19937 gen(7);
  auto rng = [&gen] { return static_cast<uint32_t>(gen()); };
  std::string y = "policy:\n  groups:\n";
  constexpr uint32_t kGroups = 64;
  for (uint32_t g = 0; g < kGroups; ++g) {
    y += "    - {name: g" + std::to_string(g) + ", sources: [10.0." + std::to_string(g) +
         ".0/24], default: drop}\n";
  }
  y += "  rules:\n";
  const uint32_t per_group = rules / kGroups;
  for (uint32_t g = 0; g < kGroups; ++g) {
    for (uint32_t r = 0; r + 1 < per_group; ++r) {
      const uint32_t len = 16 + rng() % 17;
      const uint32_t addr = (0x64400000u | (rng() & 0x003fffffu)) & (len ? ~0u << (32 - len) : 0);
      const uint32_t lo = 1 + rng() % 60000;
      y += "    - {from: g" + std::to_string(g) + ", dst: " + std::to_string(addr >> 24) + "." +
           std::to_string((addr >> 16) & 255) + "." + std::to_string((addr >> 8) & 255) + "." +
           std::to_string(addr & 255) + "/" + std::to_string(len) +
           ", proto: " + (rng() % 2 ? "tcp" : "udp") + ", ports: " + std::to_string(lo) + "-" +
           std::to_string(lo + rng() % 100) + (rng() % 6 == 0 ? ", action: drop}" : "}") + "\n";
    }
    y += "    - {from: g" + std::to_string(g) +
         ", dst: 198.51.100.0/24, proto: tcp, ports: 443-446}\n";
  }
  auto parsed = policy::parse_policy_text(y, "bench.yaml");
  if (!parsed.config) return nullptr;
  std::string err;
  return policy::CompiledPolicy::compile(*parsed.config, &err);
}

// New connections with an egress policy of state.range(0) rules: the budget is +20% at
// 10,000 rules over BM_NewConnections (same workload, same run).
void BM_NewConnectionsPolicy(benchmark::State& state) {
  auto cfg = bench_config(2u << 20);
  cfg.policy = bench_policy(static_cast<uint32_t>(state.range(0)));
  if (!cfg.policy) {
    state.SkipWithError("policy did not compile");
    return;
  }
  run_new_connections(state, cfg);
  state.counters["rules"] = static_cast<double>(cfg.policy->rule_count());
}
BENCHMARK(BM_NewConnectionsPolicy)->Arg(0)->Arg(10000)->Unit(benchmark::kNanosecond)->MinTime(2.0);

void BM_MemoryPerConnection(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  uint64_t bytes = 0;
  for (auto _ : state) {
    engine::Engine eng(bench_config(flows));
    bytes = eng.memory_bytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes_per_flow"] = static_cast<double>(bytes) / flows;
  state.counters["total_MiB"] = static_cast<double>(bytes) / (1 << 20);
}
BENCHMARK(BM_MemoryPerConnection)
    ->Arg(1 << 20)
    ->Arg(1 << 24)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace eipgate::bench

BENCHMARK_MAIN();

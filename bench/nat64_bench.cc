// NAT64 header translation per packet (dataplane/engine/nat64_xlate.h), one core, no flow table:
// parse + translate in place, both directions, for TCP ACKs, UDP datagrams, ICMP echo and an ICMP
// error. Each packet is first copied from one of 256 templates (different ports) into a buffer
// with headroom, as a NIC would have left it; BM_CopyOnly measures that copy alone.
//   build/bench/nat64_bench --benchmark_counters_tabular=true
// Instruction counts (repeatable on any machine), only the parse + translate calls counted:
//   valgrind --tool=callgrind --instr-atstart=no build/bench/nat64_bench callgrind [packets]
#include <benchmark/benchmark.h>
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>

#include "dataplane/engine/nat64_xlate.h"
#include "tests/unit/engine/nat64_builder.h"

namespace {

namespace n64 = eipgate::engine::nat64;
using namespace eipgate::testing::nat64b;  // NOLINT(build/namespaces)

constexpr uint32_t kTemplates = 256;
constexpr uint32_t kHeadroom = 128;
constexpr uint32_t kBuf = 2048;

const A6 kHost6 = v6("2001:db8:1::10");
const A6 kRemote6 = v6("64:ff9b::5db8:d822");
const A6 kRouter6 = v6("64:ff9b:1::c000:2fe");
const uint32_t kRemote4 = v4("93.184.216.34");
const uint32_t kOutside4 = v4("198.51.100.7");
const uint32_t kRouter4 = v4("192.0.2.254");

enum Kind : int { kTcp, kUdp, kEcho, kError };
enum Dir : int { k6to4, k4to6 };

struct Workload {
  std::vector<Bytes> pkts;
  std::vector<uint16_t> ports;  // the translated port / id per template (network order)
};

Workload make(Kind kind, Dir dir) {
  std::mt19937 rng(64);
  Workload w;
  for (uint32_t i = 0; i < kTemplates; ++i) {
    const uint16_t port = static_cast<uint16_t>(1024 + rng() % 60000);
    w.ports.push_back(net16(static_cast<uint16_t>(1024 + rng() % 60000)));
    Bytes l4;
    const Bytes data(kind == kUdp ? 100 : kind == kEcho ? 56 : 0, 0x5a);
    const uint8_t p6 = kind == kTcp ? 6 : kind == kUdp ? 17 : 58;
    const uint8_t p4 = kind == kTcp ? 6 : kind == kUdp ? 17 : 1;
    if (dir == k6to4) {
      l4 = kind == kTcp   ? tcp(port, 443, 1, 0x10, data)
           : kind == kUdp ? udp(port, 53, data)
                          : icmp(128, 0, echo_rest(port, 1), data);
      fix_l4_v6(l4, p6, kHost6, kRemote6);
      w.pkts.push_back(ip6({kHost6, kRemote6, p6, 64}, l4));
    } else if (kind != kError) {
      l4 = kind == kTcp   ? tcp(443, port, 1, 0x10, data)
           : kind == kUdp ? udp(53, port, data)
                          : icmp(0, 0, echo_rest(port, 1), data);
      fix_l4_v4(l4, p4, kRemote4, kOutside4);
      w.pkts.push_back(ip4({kRemote4, kOutside4, p4, 64}, l4));
    } else {  // Fragmentation Needed quoting a TCP segment (IP + 20 bytes of TCP)
      Bytes seg = tcp(port, 443, 1, 0x10, Bytes(1452, 1));
      fix_l4_v4(seg, 6, kOutside4, kRemote4);
      Ip4 q{kOutside4, kRemote4, 6, 5};
      q.df = true;
      const Bytes full = ip4(q, seg);
      Bytes e = icmp(3, 4, 1400, Bytes(full.begin(), full.begin() + 40));
      fix_l4_v4(e, 1, 0, 0);
      w.pkts.push_back(ip4({kRouter4, kOutside4, 1, 250}, e));
    }
  }
  return w;
}

inline void copy_in(const Workload& w, uint32_t i, uint8_t* buf) {
  std::memcpy(buf + kHeadroom, w.pkts[i].data(), w.pkts[i].size());
}

// One packet already in buf: parse, translate. Returns false if it was not translated.
inline bool one(const Workload& w, uint32_t i, uint8_t* buf, Kind kind, Dir dir,
                const n64::Config& cfg, n64::Output& o) {
  const Bytes& p = w.pkts[i];
  uint8_t* l3 = buf + kHeadroom;
  const auto len = static_cast<uint32_t>(p.size());
  if (dir == k6to4) {
    n64::Info6 info;
    if (n64::parse6(l3, len, info) != n64::Drop::None) return false;
    n64::To4 to;
    to.src = kOutside4;
    to.dst = kRemote4;
    to.sport = w.ports[i];
    to.dport = info.dport;
    to.ip_id = static_cast<uint16_t>(i);
    return n64::xlate_6to4(l3, len, info, to, cfg, o) == n64::Drop::None;
  }
  n64::Info4 info;
  if (n64::parse4(l3, len, info) != n64::Drop::None) return false;
  n64::To6 to;
  to.src = kind == kError ? kRouter6 : kRemote6;
  to.dst = kHost6;
  to.sport = info.sport;
  to.dport = w.ports[i];
  to.inner = {kHost6, kRemote6, w.ports[i], net16(443), 6};
  return n64::xlate_4to6(l3, len, kHeadroom, info, to, cfg, o) == n64::Drop::None;
}

void BM_Translate(benchmark::State& state) {
  const auto kind = static_cast<Kind>(state.range(0));
  const auto dir = static_cast<Dir>(state.range(1));
  const Workload w = make(kind, dir);
  alignas(64) static uint8_t buf[kBuf];
  const n64::Config cfg{};
  n64::Output o;
  uint32_t i = 0;
  uint64_t bad = 0;
  for (auto _ : state) {
    copy_in(w, i, buf);
    bad += !one(w, i, buf, kind, dir, cfg, o);
    benchmark::DoNotOptimize(o.l3);
    i = (i + 1) & (kTemplates - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["not_translated"] = static_cast<double>(bad);
  state.counters["bytes_in"] = static_cast<double>(w.pkts[0].size());
  state.counters["bytes_out"] = static_cast<double>(o.len);
  static const char* kinds[] = {"tcp_ack", "udp_100B", "echo_56B", "frag_needed"};
  state.SetLabel(std::string(kinds[kind]) + (dir == k6to4 ? " 6to4" : " 4to6"));
}
BENCHMARK(BM_Translate)
    ->ArgsProduct({{kTcp, kUdp, kEcho}, {k6to4, k4to6}})
    ->Args({kError, k4to6})
    ->Unit(benchmark::kNanosecond)
    ->MinTime(1.0);

void BM_CopyOnly(benchmark::State& state) {
  const Workload w = make(kTcp, k6to4);
  alignas(64) static uint8_t buf[kBuf];
  uint32_t i = 0;
  for (auto _ : state) {
    copy_in(w, i, buf);
    benchmark::DoNotOptimize(buf);
    i = (i + 1) & (kTemplates - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_CopyOnly)->Unit(benchmark::kNanosecond)->MinTime(1.0);

// Callgrind: instructions of parse + translate only (the copy is outside the collected span).
int callgrind(uint32_t packets) {
  alignas(64) static uint8_t buf[kBuf];
  const n64::Config cfg{};
  int rc = 0;
  const std::pair<Kind, Dir> runs[] = {{kTcp, k6to4},  {kTcp, k4to6},  {kUdp, k6to4},
                                       {kUdp, k4to6},  {kEcho, k6to4}, {kEcho, k4to6},
                                       {kError, k4to6}};
  for (const auto& [kind, dir] : runs) {
    const Workload w = make(kind, dir);
    n64::Output o;
    uint64_t ok = 0;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
    for (uint32_t n = 0; n < packets; ++n) {
      const uint32_t i = n & (kTemplates - 1);
      copy_in(w, i, buf);
      CALLGRIND_TOGGLE_COLLECT;
      ok += one(w, i, buf, kind, dir, cfg, o);
      CALLGRIND_TOGGLE_COLLECT;
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    char name[64];
    std::snprintf(name, sizeof(name), "kind%d_dir%d", static_cast<int>(kind),
                  static_cast<int>(dir));
    CALLGRIND_DUMP_STATS_AT(name);
    std::printf("%s packets=%u translated=%llu\n", name, packets,
                static_cast<unsigned long long>(ok));
    if (ok != packets) rc = 1;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "callgrind") {
    return callgrind(argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 100000);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// Egress policy costs on the flow-create path: classify() with no policy, with groups but no
// rules, and with 100..10,000 random CIDR/port rules over 50 groups (and all in one group); the
// burst variant; the compile (ACL build) time; classify_name() and the SNI/Host parsers.
// Figures and how they compare with the engine's new-connection cost: dataplane/policy/README.md.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/eal_for_test.h"
#include "dataplane/policy/name_parsers.h"
#include "tests/unit/policy/client_hello.h"

namespace {

using namespace eipgate::policy;

constexpr int kGroups = 50;

uint32_t rand_public(std::mt19937& rng) {
  return ((11 + static_cast<uint32_t>(rng() % 200)) << 24) |
         (static_cast<uint32_t>(rng()) & 0xffffff);
}

// Random rules: destination prefixes /12../32 over public space, a third of them with a
// single port, a third with a range, tcp/udp/any/icmp, one in six a deny.
PolicyConfig random_policy(int nrules, int ngroups, uint32_t seed) {
  std::mt19937 rng(seed);
  PolicyConfig c;
  for (int g = 0; g < ngroups; ++g) {
    SourceGroup sg;
    sg.name = "g" + std::to_string(g);
    sg.sources.push_back(Prefix{(10u << 24) | (static_cast<uint32_t>(g) << 16), 16});
    c.groups.push_back(std::move(sg));
  }
  for (int i = 0; i < nrules; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    const auto len = static_cast<uint8_t>(12 + rng() % 21);
    r.dst.push_back(Prefix{rand_public(rng) & Prefix::mask(len), len});
    r.proto = static_cast<Proto>(rng() % 4);
    if (r.proto != Proto::Icmp) {
      switch (rng() % 3) {
        case 0:
          r.has_ports = true;
          r.port_lo = r.port_hi = static_cast<uint16_t>(1 + rng() % 65535);
          break;
        case 1:
          r.has_ports = true;
          r.port_lo = static_cast<uint16_t>(1 + rng() % 60000);
          r.port_hi = static_cast<uint16_t>(r.port_lo + rng() % 5000);
          break;
        default:
          break;
      }
    }
    r.allow = rng() % 6 != 0;
    c.groups[static_cast<size_t>(i % ngroups)].rules.push_back(std::move(r));
  }
  return c;
}

struct Flow {
  uint32_t src, dst;
  uint8_t proto;
  uint16_t port;
};

// Half the flows aimed inside some rule's prefix, half anywhere.
std::vector<Flow> random_flows(const PolicyConfig& c, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Flow> out(n);
  for (auto& f : out) {
    const auto g = static_cast<uint32_t>(rng() % (c.groups.empty() ? kGroups : c.groups.size()));
    f.src = (10u << 24) | (g << 16) | (rng() & 0xffff);
    f.dst = rand_public(rng);
    if (!c.groups.empty() && !c.groups[g].rules.empty() && rng() % 2 == 0) {
      const auto& rules = c.groups[g].rules;
      const Rule& r = rules[rng() % rules.size()];
      f.dst = r.dst[0].addr | (static_cast<uint32_t>(rng()) & ~Prefix::mask(r.dst[0].len));
    }
    f.proto = std::array<uint8_t, 3>{6, 17, 1}[rng() % 3];
    f.port = static_cast<uint16_t>(rng() % 2 ? 443 : 1 + rng() % 65535);
  }
  return out;
}

// Benchmark argument -> backend: 0 segment table (the default), 1 rte_acl.
Backend backend_arg(int64_t v) { return v == 1 ? Backend::Acl : Backend::Segments; }

std::unique_ptr<CompiledPolicy> compile_or_die(const PolicyConfig& c,
                                               Backend backend = Backend::Segments) {
  std::string err;
  auto p = CompiledPolicy::compile(c, &err, {}, backend);
  if (!p) {
    std::fprintf(stderr, "compile: %s\n", err.c_str());
    std::abort();
  }
  return p;
}

void run_classify(benchmark::State& state, const CompiledPolicy& p,
                  const std::vector<Flow>& flows) {
  size_t i = 0;
  uint64_t allowed = 0;
  for (auto _ : state) {
    const Flow& f = flows[i++ & (flows.size() - 1)];
    const Decision d = p.classify(f.src, f.dst, f.proto, f.port);
    allowed += d.verdict == Decision::Verdict::Allow;
    benchmark::DoNotOptimize(d);
  }
  state.counters["allowed_pct"] =
      100.0 * static_cast<double>(allowed) / static_cast<double>(state.iterations());
}

void BM_ClassifyNoPolicy(benchmark::State& state) {
  const PolicyConfig c;
  auto p = compile_or_die(c);
  run_classify(state, *p, random_flows(random_policy(0, kGroups, 1), 4096, 2));
}
BENCHMARK(BM_ClassifyNoPolicy);

// 50 groups with range(0) rules spread over them (0 = groups with no rules: default deny);
// range(1): backend (0 segment table, 1 rte_acl).
void BM_Classify(benchmark::State& state) {
  const PolicyConfig c = random_policy(static_cast<int>(state.range(0)), kGroups, 1);
  auto p = compile_or_die(c, backend_arg(state.range(1)));
  run_classify(state, *p, random_flows(c, 4096, 2));
}
BENCHMARK(BM_Classify)->ArgsProduct({{0, 100, 1000, 10000}, {0, 1}});

// Every rule in one group: the largest table.
void BM_ClassifyOneGroup(benchmark::State& state) {
  const PolicyConfig c = random_policy(static_cast<int>(state.range(0)), 1, 1);
  auto p = compile_or_die(c, backend_arg(state.range(1)));
  run_classify(state, *p, random_flows(c, 4096, 2));
}
BENCHMARK(BM_ClassifyOneGroup)->ArgsProduct({{10000}, {0, 1}});

void BM_ClassifyBulk32(benchmark::State& state) {
  const PolicyConfig c = random_policy(static_cast<int>(state.range(0)), kGroups, 1);
  auto p = compile_or_die(c, backend_arg(state.range(1)));
  const auto flows = random_flows(c, 4096, 2);
  std::vector<uint32_t> src, dst;
  std::vector<uint8_t> proto;
  std::vector<uint16_t> port;
  for (const auto& f : flows) {
    src.push_back(f.src);
    dst.push_back(f.dst);
    proto.push_back(f.proto);
    port.push_back(f.port);
  }
  std::array<Decision, 32> out{};
  size_t i = 0;
  for (auto _ : state) {
    const size_t o = (i += 32) & (flows.size() - 1);
    p->classify_bulk(&src[o], &dst[o], &proto[o], &port[o], out.data(), 32);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
}
BENCHMARK(BM_ClassifyBulk32)->ArgsProduct({{10000}, {0, 1}});

// range(0) rules over range(1) groups; range(2): backend.
void BM_Compile(benchmark::State& state) {
  const PolicyConfig c =
      random_policy(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 1);
  for (auto _ : state) {
    auto p = compile_or_die(c, backend_arg(state.range(2)));
    benchmark::DoNotOptimize(p.get());
  }
}
BENCHMARK(BM_Compile)
    ->ArgsProduct({{10000}, {kGroups, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// The name decision after SNI: a linear pass over the group's rules (200 here, 10,000 below).
void BM_ClassifyName(benchmark::State& state) {
  PolicyConfig c =
      random_policy(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 1);
  Rule named;
  named.name = "named";
  named.dst.push_back(Prefix{0, 0});
  named.proto = Proto::Tcp;
  named.has_ports = true;
  named.port_lo = named.port_hi = 443;
  named.hosts = {"api.example.com", "*.example.org"};
  for (auto& g : c.groups) g.rules.push_back(named);  // last: the worst case
  auto p = compile_or_die(c);
  for (auto _ : state) {
    const Decision d = p->classify_name(0, "x.example.org", 0x0b000001, 6, 443);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_ClassifyName)->Args({10000, kGroups})->Args({10000, 1});

void BM_ParseSni(benchmark::State& state) {
  const auto hello = eipgate::policy::testing::ClientHello()
                         .grease()
                         .extension(0x0033, 1250)
                         .extension(0x002b, 7)
                         .sni("api.example.com")
                         .sni_position_last()
                         .bytes();
  std::string name;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parse_tls_sni(hello.data(), hello.size(), &name));
  }
}
BENCHMARK(BM_ParseSni);

void BM_ParseHttpHost(benchmark::State& state) {
  const std::string req =
      "GET /v1/items?id=42 HTTP/1.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
      "Host: api.example.com\r\nX-Request-Id: 0123456789abcdef\r\n\r\n";
  std::string name;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        parse_http_host(reinterpret_cast<const uint8_t*>(req.data()), req.size(), &name));
  }
}
BENCHMARK(BM_ParseHttpHost);

}  // namespace

int main(int argc, char** argv) {
  if (!init_eal_for_test()) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// Why the engine has its own flow index: lookup cost and memory of FlowIndex (one index, two
// keys per flow, 64 B buckets, the key verified against the 64 B flow record the engine needs
// anyway) against DPDK's rte_hash (cuckoo, 16-byte keys in its own key store, data = record
// index, then the record is read) on the same keys, bulk lookups of 32 as the engine does them.
// Run: build/bench/table_bench
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <cstdio>
#include <random>
#include <vector>

#include "dataplane/engine/flow_table.h"

namespace {

using eipgate::engine::FlowIndex;
using eipgate::engine::FlowKey;
using eipgate::engine::hash_key;
using eipgate::engine::kNone;

std::vector<FlowKey> make_keys(uint32_t n) {
  std::mt19937_64 rng(1);
  std::vector<FlowKey> keys(n);
  for (uint32_t i = 0; i < n; ++i) {
    keys[i] = FlowKey{static_cast<uint32_t>(rng()),
                      static_cast<uint32_t>(rng()),
                      static_cast<uint16_t>(rng()),
                      static_cast<uint16_t>(rng()),
                      6,
                      0,
                      0};
  }
  return keys;
}

// Stand-in for the engine's 64-byte flow record (which holds the key).
struct alignas(64) Record {
  FlowKey key;
  uint64_t bytes;
  uint8_t pad[40];
};
static_assert(sizeof(Record) == 64);

std::vector<Record> make_records(const std::vector<FlowKey>& keys) {
  std::vector<Record> r(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) r[i].key = keys[i];
  return r;
}

std::vector<uint32_t> make_order(uint32_t n) {
  std::mt19937_64 rng(2);
  std::vector<uint32_t> order(1u << 20);
  for (auto& o : order) o = static_cast<uint32_t>(rng() % n);
  return order;
}

void BM_FlowIndexLookup(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const auto keys = make_keys(n);
  const auto order = make_order(n);
  auto records = make_records(keys);
  FlowIndex index(n);
  for (uint32_t i = 0; i < n; ++i) index.insert(hash_key(keys[i]), i);
  uint64_t pos = 0;
  uint64_t found = 0;
  uint64_t h[32];
  uint32_t cand[32];
  for (auto _ : state) {
    // The engine's stages: hash + prefetch bucket; first tag match + prefetch record; verify.
    for (uint32_t j = 0; j < 32; ++j) {
      h[j] = hash_key(keys[order[(pos + j) & (order.size() - 1)]]);
      index.prefetch(h[j]);
    }
    for (uint32_t j = 0; j < 32; ++j) {
      cand[j] = index.find(h[j], [](uint32_t) { return true; });
      if (cand[j] != kNone) __builtin_prefetch(&records[cand[j]]);
    }
    for (uint32_t j = 0; j < 32; ++j) {
      const FlowKey& k = keys[order[(pos + j) & (order.size() - 1)]];
      uint32_t v = cand[j];
      if (v == kNone || !(records[v].key == k)) {
        v = index.find(h[j], [&](uint32_t x) { return records[x].key == k; });
      }
      if (v != kNone) {
        ++found;
        records[v].bytes += 64;
      }
    }
    pos += 32;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
  state.counters["bytes_per_key"] = static_cast<double>(index.memory_bytes()) / n;
  state.counters["miss"] = static_cast<double>(state.iterations() * 32 - found);
}

void BM_RteHashLookup(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const auto keys = make_keys(n);
  const auto order = make_order(n);
  rte_malloc_socket_stats before{};
  rte_malloc_get_socket_stats(SOCKET_ID_ANY == -1 ? 0 : 0, &before);
  char name[32];
  std::snprintf(name, sizeof name, "bench%u", n);
  rte_hash_parameters p{};
  p.name = name;
  p.entries = n + n / 4;  // headroom: cuckoo inserts fail near 100% load
  p.key_len = sizeof(FlowKey);
  p.hash_func = rte_hash_crc;
  p.socket_id = 0;
  rte_hash* h = rte_hash_create(&p);
  if (h == nullptr) {
    state.SkipWithError("rte_hash_create failed");
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    rte_hash_add_key_data(h, &keys[i], reinterpret_cast<void*>(uintptr_t{i}));
  }
  auto records = make_records(keys);
  rte_malloc_socket_stats after{};
  rte_malloc_get_socket_stats(0, &after);
  uint64_t pos = 0;
  uint64_t found = 0;
  const void* kp[32];
  void* data[32];
  for (auto _ : state) {
    for (uint32_t j = 0; j < 32; ++j) kp[j] = &keys[order[(pos + j) & (order.size() - 1)]];
    uint64_t hits = 0;
    rte_hash_lookup_bulk_data(h, kp, 32, &hits, data);
    found += static_cast<uint64_t>(__builtin_popcountll(hits));
    for (uint32_t j = 0; j < 32; ++j)
      __builtin_prefetch(&records[reinterpret_cast<uintptr_t>(data[j])]);
    for (uint32_t j = 0; j < 32; ++j) {
      if (hits & (uint64_t{1} << j)) records[reinterpret_cast<uintptr_t>(data[j])].bytes += 64;
    }
    pos += 32;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
  state.counters["bytes_per_key"] =
      static_cast<double>(after.heap_allocsz_bytes - before.heap_allocsz_bytes) / n;
  state.counters["miss"] = static_cast<double>(state.iterations() * 32 - found);
  rte_hash_free(h);
}

BENCHMARK(BM_FlowIndexLookup)->Arg(2 << 20)->Unit(benchmark::kNanosecond)->MinTime(1.0);
BENCHMARK(BM_RteHashLookup)->Arg(2 << 20)->Unit(benchmark::kNanosecond)->MinTime(1.0);

}  // namespace

int main(int argc, char** argv) {
  // rte_hash allocates from DPDK's heap; no hugepages or devices are needed for this.
  const char* eal_args[] = {"table_bench",
                            "--no-huge",
                            "-m",
                            "1024",
                            "--no-pci",
                            "--no-telemetry",
                            "--log-level=lib.*:error",
                            "-l",
                            "0"};
  if (rte_eal_init(static_cast<int>(std::size(eal_args)), const_cast<char**>(eal_args)) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}

// FlowIndex and FlowPool on their own: bucket overflow and probing under forced collisions, erase
// in the middle of a probe chain, LRU list order, pool exhaustion, and memory per flow.
#include "dataplane/engine/flow_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "dataplane/engine/engine.h"

namespace eipgate::engine {
namespace {

// Hash with a chosen home bucket (low bits) and tag (high 32 bits).
constexpr uint64_t make_hash(uint32_t tag_bits, uint64_t bucket) {
  return (uint64_t{tag_bits} << 32) | bucket;
}

bool has(const FlowIndex& ix, uint64_t h, uint32_t v) {
  return ix.find(h, [v](uint32_t got) { return got == v; }) == v;
}

// ---------------------------------------------------------------------------------------------
// FlowIndex

TEST(FlowIndex, SizingRule) {
  // Buckets: the smallest power of two >= max_keys / (7 * 0.8), at least 2.
  struct Case {
    uint64_t keys;
    uint64_t buckets;
  };
  for (const Case c : {Case{1, 2}, Case{8, 2}, Case{12, 4}, Case{100, 32}, Case{1000, 256},
                       Case{1u << 21, 1u << 19}}) {
    FlowIndex ix(c.keys);
    EXPECT_EQ(ix.buckets(), c.buckets) << c.keys;
    EXPECT_EQ(ix.memory_bytes(), c.buckets * sizeof(FlowIndex::Bucket));
    const double load =
        static_cast<double>(c.keys) / static_cast<double>(c.buckets * FlowIndex::kSlots);
    if (c.keys >= 100) {
      EXPECT_GE(load, 0.4) << c.keys;
      EXPECT_LE(load, 0.8) << c.keys;
    }
  }
}

TEST(FlowIndex, InsertFindEraseDistinctHashes) {
  FlowIndex ix(4096);
  std::vector<uint64_t> hs;
  for (uint32_t v = 0; v < 4096; ++v) {
    hs.push_back(hash_key(FlowKey{v, ~v, static_cast<uint16_t>(v), 80, 6, kKeyInside, 0}));
    ASSERT_TRUE(ix.insert(hs.back(), v));
  }
  for (uint32_t v = 0; v < 4096; ++v) ASSERT_TRUE(has(ix, hs[v], v)) << v;
  for (uint32_t v = 0; v < 4096; v += 2) ASSERT_TRUE(ix.erase(hs[v], v));
  for (uint32_t v = 0; v < 4096; ++v) EXPECT_EQ(has(ix, hs[v], v), v % 2 == 1) << v;
  EXPECT_FALSE(ix.erase(hs[0], 0));  // already gone
}

TEST(FlowIndex, CollisionsOverflowIntoFollowingBuckets) {
  FlowIndex ix(1000);  // 256 buckets
  const uint64_t h = make_hash(0xabcd, 17);
  constexpr uint32_t kN = 3 * FlowIndex::kSlots + 4;  // spills over three following buckets
  for (uint32_t v = 0; v < kN; ++v) ASSERT_TRUE(ix.insert(h, 100 + v));
  for (uint32_t v = 0; v < kN; ++v) EXPECT_TRUE(has(ix, h, 100 + v)) << v;
  // A key homed in a bucket the chain passes through is still found, and so are the others.
  const uint64_t neighbour = make_hash(0x1234, 18);
  ASSERT_TRUE(ix.insert(neighbour, 7));
  EXPECT_TRUE(has(ix, neighbour, 7));
  for (uint32_t v = 0; v < kN; ++v) EXPECT_TRUE(has(ix, h, 100 + v)) << v;
  // Absent keys: same bucket other tag, same tag other value, and a quiet bucket.
  EXPECT_EQ(ix.find(make_hash(0x9999, 17), [](uint32_t) { return true; }), kNone);
  EXPECT_FALSE(has(ix, h, 99));
  EXPECT_EQ(ix.find(make_hash(0xabcd, 200), [](uint32_t) { return true; }), kNone);
}

TEST(FlowIndex, TagFiltersBeforeTheEqualityCallback) {
  FlowIndex ix(100);
  ASSERT_TRUE(ix.insert(make_hash(1, 3), 11));
  int calls = 0;
  EXPECT_EQ(ix.find(make_hash(2, 3), [&](uint32_t) { return ++calls, true; }), kNone);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(ix.find(make_hash(1, 3), [&](uint32_t) { return ++calls, true; }), 11u);
  EXPECT_EQ(calls, 1);
}

TEST(FlowIndex, EraseInTheMiddleOfAProbeChainKeepsLaterKeysFindable) {
  FlowIndex ix(1000);
  const uint64_t h = make_hash(0x55, 40);
  constexpr uint32_t kN = 30;
  for (uint32_t v = 0; v < kN; ++v) ASSERT_TRUE(ix.insert(h, v));
  // Erase from the home bucket, the middle buckets and the tail, checking every survivor each
  // time.
  std::set<uint32_t> live;
  for (uint32_t v = 0; v < kN; ++v) live.insert(v);
  for (uint32_t v : {3u, 10u, 11u, 0u, 20u, 29u, 15u, 16u, 17u, 18u}) {
    ASSERT_TRUE(ix.erase(h, v)) << v;
    live.erase(v);
    for (uint32_t w = 0; w < kN; ++w)
      ASSERT_EQ(has(ix, h, w), live.count(w) == 1) << "after " << v << ": " << w;
  }
  // Holes are refilled and everything stays reachable.
  for (uint32_t v = 100; v < 110; ++v) {
    ASSERT_TRUE(ix.insert(h, v));
    live.insert(v);
  }
  for (uint32_t w : live) EXPECT_TRUE(has(ix, h, w)) << w;
  // Erase everything: the chain collapses and lookups stop at the home bucket again.
  for (uint32_t w : live) ASSERT_TRUE(ix.erase(h, w)) << w;
  for (uint32_t w : live) EXPECT_FALSE(has(ix, h, w)) << w;
  int visited = 0;
  EXPECT_EQ(ix.find(make_hash(0x77, 41), [&](uint32_t) { return ++visited, true; }), kNone);
  EXPECT_EQ(visited, 0);
  // The emptied area behaves like new.
  ASSERT_TRUE(ix.insert(make_hash(0x77, 41), 5));
  EXPECT_TRUE(has(ix, make_hash(0x77, 41), 5));
}

TEST(FlowIndex, ChainWrapsAroundTheEndOfTheTable) {
  FlowIndex ix(100);  // 32 buckets
  ASSERT_EQ(ix.buckets(), 32u);
  const uint64_t h = make_hash(0x42, 31);  // the last bucket
  for (uint32_t v = 0; v < 20; ++v) ASSERT_TRUE(ix.insert(h, v));
  // Bucket 0 and 1 now hold part of the chain; keys homed there coexist with it.
  ASSERT_TRUE(ix.insert(make_hash(0x43, 0), 500));
  ASSERT_TRUE(ix.insert(make_hash(0x44, 1), 501));
  for (uint32_t v = 0; v < 20; ++v) EXPECT_TRUE(has(ix, h, v)) << v;
  EXPECT_TRUE(has(ix, make_hash(0x43, 0), 500));
  EXPECT_TRUE(has(ix, make_hash(0x44, 1), 501));
  ASSERT_TRUE(ix.erase(h, 2));
  ASSERT_TRUE(ix.erase(h, 19));
  for (uint32_t v = 0; v < 20; ++v) EXPECT_EQ(has(ix, h, v), v != 2 && v != 19) << v;
}

TEST(FlowIndex, FullTableRejectsInsertWithoutCorruption) {
  FlowIndex ix(8);  // 2 buckets, 14 slots
  ASSERT_EQ(ix.buckets(), 2u);
  const uint64_t h = make_hash(0x10, 1);
  for (uint32_t v = 0; v < 2 * FlowIndex::kSlots; ++v) ASSERT_TRUE(ix.insert(h, v)) << v;
  EXPECT_FALSE(ix.insert(h, 99));
  EXPECT_FALSE(ix.insert(make_hash(0x11, 0), 98));
  for (uint32_t v = 0; v < 2 * FlowIndex::kSlots; ++v) EXPECT_TRUE(has(ix, h, v)) << v;
  EXPECT_FALSE(has(ix, h, 99));
  EXPECT_EQ(ix.find(make_hash(0x12, 0), [](uint32_t) { return true; }), kNone);  // terminates
  ASSERT_TRUE(ix.erase(h, 5));
  ASSERT_TRUE(ix.insert(make_hash(0x11, 0), 98));
  EXPECT_TRUE(has(ix, make_hash(0x11, 0), 98));
  for (uint32_t v = 0; v < 2 * FlowIndex::kSlots; ++v) EXPECT_EQ(has(ix, h, v), v != 5) << v;
}

TEST(FlowIndex, EraseNeedsTheMatchingHashAndValue) {
  FlowIndex ix(100);
  const uint64_t h = make_hash(0x20, 9);
  ASSERT_TRUE(ix.insert(h, 1));
  EXPECT_FALSE(ix.erase(make_hash(0x40, 9), 1));   // other tag (the low tag bit is forced to 1)
  EXPECT_FALSE(ix.erase(make_hash(0x20, 10), 1));  // other home
  EXPECT_FALSE(ix.erase(h, 2));                    // other value
  EXPECT_TRUE(has(ix, h, 1));
  EXPECT_TRUE(ix.erase(h, 1));
}

TEST(FlowKeys, InsideAndOutsideKeysNeverCompareEqual) {
  Flow f{};
  f.inside_ip = 1;
  f.remote_ip = 2;
  f.outside_ip = 1;
  f.inside_port = 3;
  f.remote_port = 4;
  f.outside_port = 3;
  f.proto = 6;
  // Same bytes in every field but the kind.
  FlowKey in = f.inside_key();
  FlowKey out = f.outside_key();
  out.src = in.src;
  out.dst = in.dst;
  out.sport = in.sport;
  out.dport = in.dport;
  EXPECT_FALSE(in == out);
  EXPECT_NE(hash_key(in), hash_key(out));
  EXPECT_EQ(f.inside_key(), (FlowKey{1, 2, 3, 4, 6, kKeyInside, 0}));
  EXPECT_EQ(f.outside_key(), (FlowKey{2, 1, 4, 3, 6, kKeyOutside, 0}));
}

// ---------------------------------------------------------------------------------------------
// FlowPool

std::vector<uint32_t> lru(const FlowPool& p, uint8_t cls) {
  std::vector<uint32_t> order;
  uint32_t prev = kNone;
  for (uint32_t i = p.lru_head(cls); i != kNone; i = p[i].next) {
    EXPECT_EQ(p[i].prev, prev) << "broken back link at " << i;
    EXPECT_EQ(p[i].tclass, cls);
    order.push_back(i);
    prev = i;
    if (order.size() > p.capacity()) {
      ADD_FAILURE() << "cycle";
      break;
    }
  }
  return order;
}

TEST(FlowPool, AllocUntilFullThenReuseFreed) {
  FlowPool pool(5);
  std::set<uint32_t> got;
  for (int k = 0; k < 5; ++k) {
    const uint32_t i = pool.alloc();
    ASSERT_NE(i, kNone);
    ASSERT_LT(i, 5u);
    EXPECT_TRUE(got.insert(i).second);
    EXPECT_EQ(pool[i].prev, kNone);
    EXPECT_EQ(pool[i].next, kNone);
    EXPECT_EQ(pool[i].eim, kNone);
    EXPECT_EQ(pool[i].flags, 0);
  }
  EXPECT_EQ(pool.used(), 5u);
  EXPECT_EQ(pool.alloc(), kNone);
  EXPECT_EQ(pool.alloc(), kNone);
  EXPECT_EQ(pool.used(), 5u);
  pool[3].bytes_out = 123;
  pool[3].flags = kFlowLive;
  pool.free(3);
  EXPECT_EQ(pool.used(), 4u);
  EXPECT_EQ(pool[3].flags, 0);  // not live any more (dumps skip it)
  EXPECT_EQ(pool.alloc(), 3u);
  EXPECT_EQ(pool[3].bytes_out, 0u);  // a reused record starts clean
  EXPECT_EQ(pool.alloc(), kNone);
  EXPECT_EQ(pool.memory_bytes(), 5 * sizeof(Flow));
}

TEST(FlowPool, LruPushRemoveRequeueOrder) {
  FlowPool pool(8);
  for (uint32_t k = 0; k < 8; ++k) ASSERT_EQ(pool.alloc(), k);  // fresh pool hands out 0..7
  for (uint8_t c = 0; c < kClassCount; ++c) EXPECT_EQ(pool.lru_head(c), kNone);

  for (uint32_t i : {0u, 1u, 2u, 3u}) pool.lru_push(i, kClassUdp, 1000 + i);
  pool.lru_push(4, kClassIcmp, 2000);
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(lru(pool, kClassIcmp), (std::vector<uint32_t>{4}));
  EXPECT_EQ(pool[2].lru_time, 1002u);

  pool.lru_remove(1);  // middle
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{0, 2, 3}));
  pool.lru_remove(0);  // head
  EXPECT_EQ(pool.lru_head(kClassUdp), 2u);
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{2, 3}));
  pool.lru_remove(3);  // tail
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{2}));
  pool.lru_push(1, kClassUdp, 3000);  // appended after the new tail
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{2, 1}));

  pool.lru_requeue(2, kClassUdp, 4000);  // head to tail, same class
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(pool[2].lru_time, 4000u);
  pool.lru_requeue(1, kClassTcpEstablished, 5000);  // moves to another class
  EXPECT_EQ(lru(pool, kClassUdp), (std::vector<uint32_t>{2}));
  EXPECT_EQ(lru(pool, kClassTcpEstablished), (std::vector<uint32_t>{1}));
  pool.lru_requeue(4, kClassTcpEstablished, 6000);  // the only member of its list
  EXPECT_EQ(pool.lru_head(kClassIcmp), kNone);
  EXPECT_EQ(lru(pool, kClassTcpEstablished), (std::vector<uint32_t>{1, 4}));

  pool.lru_remove(2);
  pool.lru_remove(1);
  pool.lru_remove(4);
  for (uint8_t c = 0; c < kClassCount; ++c) EXPECT_EQ(pool.lru_head(c), kNone);
  // Lists still work after being emptied.
  pool.lru_push(7, kClassTcpClosing, 1);
  pool.lru_push(6, kClassTcpClosing, 2);
  EXPECT_EQ(lru(pool, kClassTcpClosing), (std::vector<uint32_t>{7, 6}));
}

TEST(FlowPool, EvictionOrderIsTheClassOrder) {
  // The engine evicts the head of the first non-empty class; the enum order is the policy.
  EXPECT_LT(kClassTcpClosing, kClassTcpTransitory);
  EXPECT_LT(kClassTcpTransitory, kClassIcmp);
  EXPECT_LT(kClassIcmp, kClassUdp);
  EXPECT_LT(kClassUdp, kClassTcpEstablished);
  EXPECT_EQ(kClassCount, 5);
}

// ---------------------------------------------------------------------------------------------
// Memory per flow: record + index for two keys per flow.

uint64_t bytes_per_flow_rule(uint64_t flows) {
  // Mirrors FlowIndex's sizing rule (checked against the real constructor in SizingRule and
  // below) so the 16M case needs no 512 MiB allocation in a unit test.
  const uint64_t want = (2 * flows * 10 + 55) / 56;
  uint64_t n = 2;
  while (n < want) n <<= 1;
  return (n * sizeof(FlowIndex::Bucket) + flows * sizeof(Flow)) / flows;
}

TEST(FlowMemory, AtMost128BytesPerFlow) {
  static_assert(sizeof(Flow) == 64);
  static_assert(sizeof(FlowIndex::Bucket) == 64);
  constexpr uint64_t k1M = 1u << 20;
  FlowIndex ix(2 * k1M);
  const uint64_t per_flow_1m = (ix.memory_bytes() + k1M * sizeof(Flow)) / k1M;
  EXPECT_EQ(per_flow_1m, bytes_per_flow_rule(k1M));
  EXPECT_LE(per_flow_1m, 128u);
  for (uint64_t n : {uint64_t{1000}, uint64_t{50000}, uint64_t{300000}}) {
    FlowIndex small(2 * n);
    EXPECT_EQ((small.memory_bytes() + n * sizeof(Flow)) / n, bytes_per_flow_rule(n)) << n;
  }
  EXPECT_LE(bytes_per_flow_rule(16u << 20), 128u);  // the validated maximum, 16M flows
  // Every size in between, including the worst case just past a power of two.
  for (uint64_t n = 1024; n <= (16u << 20); n = n * 3 / 2 + 1)
    EXPECT_LE(bytes_per_flow_rule(n), 128u) << n;
}

TEST(FlowMemory, EngineAtOneMillionFlows) {
  EngineConfig cfg;
  cfg.inside_prefixes = {{0x0a000000, 8}};
  cfg.outside_addrs = {0xcb007101};
  cfg.max_flows = 1u << 20;
  Engine e(cfg);
  EXPECT_LE(e.memory_bytes() / cfg.max_flows, 128u);
  EXPECT_EQ(e.stats().max_flows, cfg.max_flows);
}

}  // namespace
}  // namespace eipgate::engine

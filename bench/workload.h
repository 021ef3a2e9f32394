// Benchmark workload: synthetic TCP flows (documentation-range servers, 10/8 inside hosts, 16
// outside addresses) established through the engine, then 64-byte ACK frames in both directions.
// Shared by engine_bench (Google Benchmark) and engine_callgrind (instruction counts).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "common/byte_order.h"
#include "dataplane/engine/engine.h"

namespace eipgate::bench {

inline constexpr uint32_t kFrameLen = 60;  // 14 + 20 + 20 + 6 pad: a minimum Ethernet frame
inline constexpr uint32_t kBufLen = 128;
inline constexpr uint32_t kOutsideCount = 16;
// The injected clock advances as if packets arrived at 20 Mpps (32 per 1.6 us), so per-flow
// timer work (LRU re-queues once a second per flow) happens at a realistic rate.
inline constexpr uint64_t kSimulatedBurstNs = 1600;

inline engine::EngineConfig bench_config(uint32_t max_flows) {
  engine::EngineConfig c;
  c.inside_prefixes = {{0x0a000000u, 8}};  // 10.0.0.0/8
  for (uint32_t i = 0; i < kOutsideCount; ++i)
    c.outside_addrs.push_back(0xcb007101u + i);  // 203.0.113.1+
  c.host_addrs = {0x0a0000feu};
  c.max_flows = max_flows;
  c.random_seed = 42;
  return c;
}

// Flow k: inside 10.x.y.z:10000+(k%64) -> 198.51.100.(k%256):443+((k/256)%4)
struct Tuple {
  uint32_t src, dst;
  uint16_t sport, dport;
};
inline Tuple inside_tuple(uint32_t k) {
  return Tuple{0x0a000001u + k / 64, 0xc6336400u + (k % 256), static_cast<uint16_t>(10000 + k % 64),
               static_cast<uint16_t>(443 + (k / 256) % 4)};
}

inline uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}
inline uint32_t sum_be(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
  return s;
}
using be::put16;
using be::put32;

// Writes a 60-byte Ethernet/IPv4/TCP frame with valid checksums.
inline void write_tcp(uint8_t* f, const Tuple& t, uint8_t flags, uint32_t seq, uint32_t ack) {
  std::memset(f, 0, kFrameLen);
  const uint8_t dmac[6] = {2, 0, 0, 0, 0, 1}, smac[6] = {2, 0, 0, 0, 0, 2};
  std::memcpy(f, dmac, 6);
  std::memcpy(f + 6, smac, 6);
  put16(f + 12, 0x0800);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  put16(ip + 2, 40);
  put16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = 6;
  put32(ip + 12, t.src);
  put32(ip + 16, t.dst);
  put16(ip + 10, static_cast<uint16_t>(~fold(sum_be(ip, 20))));
  uint8_t* tcp = ip + 20;
  put16(tcp, t.sport);
  put16(tcp + 2, t.dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  put16(tcp + 14, 65535);
  uint32_t ps = (t.src >> 16) + (t.src & 0xffff) + (t.dst >> 16) + (t.dst & 0xffff) + 6 + 20;
  put16(tcp + 16, static_cast<uint16_t>(~fold(sum_be(tcp, 20, ps))));
}

// An engine holding `flows` established TCP connections plus one template frame per direction
// for `templates` of them (random flows, alternating directions).
struct EstablishedWorkload {
  std::unique_ptr<engine::Engine> eng;
  std::vector<uint8_t> templates;  // kBufLen each
  uint32_t count = 0;
  uint64_t now_ns = 1'000'000'000ull;

  EstablishedWorkload(uint32_t flows, uint32_t templates_wanted) {
    eng = std::make_unique<engine::Engine>(bench_config(flows));
    std::vector<uint32_t> out_port(flows);
    std::vector<uint32_t> out_addr(flows);
    constexpr uint32_t kB = 32;
    std::vector<uint8_t> bufs(kB * kBufLen);
    engine::PacketBuf pkts[kB];
    engine::PacketBuf* ptrs[kB];
    engine::Result res[kB];
    for (uint32_t base = 0; base < flows; base += kB) {
      const uint32_t n = std::min(kB, flows - base);
      for (uint32_t j = 0; j < n; ++j) {
        write_tcp(&bufs[j * kBufLen], inside_tuple(base + j), 0x02, 1, 0);
        pkts[j] = engine::PacketBuf{&bufs[j * kBufLen], kFrameLen, kBufLen, {}};
        ptrs[j] = &pkts[j];
      }
      eng->process_burst(ptrs, n, now_ns, res);
      for (uint32_t j = 0; j < n; ++j) {
        const uint8_t* ip = &bufs[j * kBufLen] + 14;
        out_addr[base + j] =
            static_cast<uint32_t>(ip[12] << 24 | ip[13] << 16 | ip[14] << 8 | ip[15]);
        out_port[base + j] = static_cast<uint32_t>(ip[20] << 8 | ip[21]);
        if (res[j].verdict != engine::Verdict::ToOutside) out_port[base + j] = 0;
        const Tuple t = inside_tuple(base + j);
        write_tcp(
            &bufs[j * kBufLen],
            Tuple{t.dst, out_addr[base + j], t.dport, static_cast<uint16_t>(out_port[base + j])},
            0x12, 100, 2);
        pkts[j] = engine::PacketBuf{&bufs[j * kBufLen], kFrameLen, kBufLen, {}};
      }
      eng->process_burst(ptrs, n, now_ns, res);
    }
    count = templates_wanted;
    templates.resize(uint64_t{count} * kBufLen);
    std::mt19937_64 rng(7);
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t k = flows >= count ? static_cast<uint32_t>(rng() % flows) : i % flows;
      const Tuple t = inside_tuple(k);
      uint8_t* f = &templates[uint64_t{i} * kBufLen];
      if (i % 2 == 0) {
        write_tcp(f, t, 0x10, 2, 101);
      } else {
        write_tcp(f, Tuple{t.dst, out_addr[k], t.dport, static_cast<uint16_t>(out_port[k])}, 0x10,
                  101, 2);
      }
    }
  }
};

}  // namespace eipgate::bench

// libFuzzer target: arbitrary frames through persistent engines (state accumulates across inputs,
// bounded by small tables), with oracles for what must hold whatever the bytes: no memory errors,
// translated packets leave with our address and valid checksums, handoffs go to the other worker
// exactly once and untouched, held fragments come back only once and only from their holder.
// Input layout: fuzz_input.h.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/engine/counters.h"
#include "dataplane/engine/engine.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using eipgate::engine::drop_reason_name;
using eipgate::engine::DropReason;
using eipgate::engine::Engine;
using eipgate::engine::EngineConfig;
using eipgate::engine::Event;
using eipgate::engine::PacketBuf;
using eipgate::engine::Result;
using eipgate::engine::Verdict;
namespace fz = eipgate::fuzz;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "engine_fuzz oracle failed: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond, what) \
  do {                         \
    if (!(cond)) fail(what);   \
  } while (0)

// --- addresses (host order) --------------------------------------------------------------------

constexpr uint32_t kInsideNet = 0x0a000000;  // 10.0.0.0/16
constexpr uint32_t kHostAddr = 0x0a000005;   // 10.0.0.5
constexpr uint32_t kOutside1 = 0xcb007101;   // 203.0.113.1
constexpr uint32_t kOutside2 = 0xcb007102;   // 203.0.113.2
constexpr uint32_t kInternet = 0xc6120000;   // 198.18.0.0/15
constexpr uint32_t kRouterNet = 0xc0000200;  // 192.0.2.0/24

bool is_inside(uint32_t a) { return (a & 0xffff0000u) == kInsideNet; }

constexpr std::array<uint8_t, 40> kMsKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

// --- byte helpers ------------------------------------------------------------------------------

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (; n >= 2; p += 2, n -= 2) acc += be16(p);
  if (n) acc += uint32_t{p[0]} << 8;
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// Offset of the IPv4 header as the engine's parser finds it (up to two VLAN tags), or -1.
int locate_ip(const uint8_t* d, size_t len) {
  if (len < 14) return -1;
  size_t off = 12;
  uint16_t et = be16(d + off);
  for (int tags = 0; (et == 0x8100 || et == 0x88a8) && tags < 2; ++tags) {
    off += 4;
    if (len < off + 2) return -1;
    et = be16(d + off);
  }
  off += 2;
  if (et != 0x0800 || len < off + 20 || (d[off] >> 4) != 4) return -1;
  const size_t ihl = size_t{d[off] & 0x0fu} * 4;
  if (ihl < 20 || len < off + ihl) return -1;
  return static_cast<int>(off);
}

struct IpView {
  int off = -1;
  size_t ihl = 0;
  size_t tot = 0;
  bool complete = false;  // Total Length within the frame
  bool fragment = false;
  bool later_fragment = false;  // offset != 0
  uint8_t proto = 0;
  uint32_t src = 0, dst = 0;
};
IpView view(const uint8_t* d, size_t len) {
  IpView v;
  v.off = locate_ip(d, len);
  if (v.off < 0) return v;
  const uint8_t* ip = d + v.off;
  v.ihl = size_t{ip[0] & 0x0fu} * 4;
  v.tot = be16(ip + 2);
  v.complete = v.tot >= v.ihl && static_cast<size_t>(v.off) + v.tot <= len;
  const uint16_t ff = be16(ip + 6);
  v.fragment = (ff & 0x3fff) != 0;
  v.later_fragment = (ff & 0x1fff) != 0;
  v.proto = ip[9];
  v.src = be32(ip + 12);
  v.dst = be32(ip + 16);
  return v;
}

bool ip_csum_ok(const uint8_t* d, const IpView& v) {
  return fold(sum16(d + v.off, v.ihl)) == 0xffff;
}

// Checksum field offset within L4 and whether the pseudo header counts; -1 when not applicable.
int l4_csum_at(uint8_t proto, size_t l4len) {
  switch (proto) {
    case 6:
      return l4len >= 20 ? 16 : -1;
    case 17:
      return l4len >= 8 ? 6 : -1;
    case 1:
      return l4len >= 8 ? 2 : -1;
    default:
      return -1;
  }
}
uint32_t pseudo(const IpView& v, size_t l4len) {
  return (v.src >> 16) + (v.src & 0xffff) + (v.dst >> 16) + (v.dst & 0xffff) + v.proto +
         static_cast<uint32_t>(l4len);
}
// L4 checksum verdict of a complete unfragmented datagram; nullopt when it cannot be judged
// (fragment, truncated, UDP without checksum, other protocol).
std::optional<bool> l4_csum_ok(const uint8_t* d, const IpView& v) {
  if (v.off < 0 || !v.complete || v.fragment) return std::nullopt;
  const size_t l4len = v.tot - v.ihl;
  const int at = l4_csum_at(v.proto, l4len);
  if (at < 0) return std::nullopt;
  const uint8_t* l4 = d + v.off + v.ihl;
  if (v.proto == 17 && be16(l4 + 6) == 0) return std::nullopt;
  const uint32_t acc = v.proto == 1 ? 0 : pseudo(v, l4len);
  return fold(sum16(l4, l4len, acc)) == 0xffff;
}

void fix_checksums(uint8_t* d, size_t len) {
  const IpView v = view(d, len);
  if (v.off < 0) return;
  uint8_t* ip = d + v.off;
  if (v.complete && !v.fragment) {
    const size_t l4len = v.tot - v.ihl;
    uint8_t* l4 = ip + v.ihl;
    // ICMP error: the quoted header's checksum first (it is part of the ICMP checksum).
    if (v.proto == 1 && l4len >= 8 + 20 && (l4[0] == 3 || l4[0] == 11 || l4[0] == 12)) {
      uint8_t* in = l4 + 8;
      const size_t iihl = size_t{in[0] & 0x0fu} * 4;
      if (iihl >= 20 && 8 + iihl <= l4len) {
        put16(in + 10, 0);
        put16(in + 10, static_cast<uint16_t>(~fold(sum16(in, iihl))));
      }
    }
    const int at = l4_csum_at(v.proto, l4len);
    if (at >= 0 && !(v.proto == 17 && be16(l4 + 6) == 0)) {
      put16(l4 + at, 0);
      const uint32_t acc = v.proto == 1 ? 0 : pseudo(v, l4len);
      uint16_t c = static_cast<uint16_t>(~fold(sum16(l4, l4len, acc)));
      if (v.proto == 17 && c == 0) c = 0xffff;
      put16(l4 + at, c);
    }
  }
  put16(ip + 10, 0);
  put16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, v.ihl))));
}

// --- the world: engines, buffers, remembered flows ---------------------------------------------

constexpr int kEngines = 5;  // default, EIM, clamp, pair worker 0, pair worker 1
constexpr size_t kSlots = 256;
constexpr size_t kMaxFramesPerInput = 80;
constexpr size_t kHeadroom = 600;
constexpr uint32_t kFragHold = 8;

struct Slot {
  PacketBuf pkt{};
  uint8_t* mem = nullptr;   // exactly pkt.cap bytes, so ASan sees any write past cap
  std::vector<uint8_t> in;  // the frame as given to the engine (after the harness's rewrite)
  uint32_t in_len = 0;
  bool busy = false;
  bool held = false;
  int holder = -1;  // engine holding it
  int hops = 0;     // handoffs so far
};

struct Flow {  // a translated flow, host order
  uint32_t in_ip, remote, out_ip;
  uint16_t iport, rport, oport;
  uint8_t proto;
};

struct World {
  std::array<std::unique_ptr<Engine>, kEngines> eng;
  std::array<EngineConfig, kEngines> cfg;
  std::array<Slot, kSlots> slots;
  std::array<std::array<Flow, 16>, 4> flows{};
  std::array<uint32_t, 4> flow_count{};
  std::array<uint32_t, 4> flow_next{};
  uint64_t now_ns = 1'000'000'000ull;

  World() {
    EngineConfig base;
    base.inside_prefixes = {{kInsideNet, 16}};
    base.outside_addrs = {kOutside1};
    base.host_addrs = {kHostAddr};
    base.max_flows = 4096;
    base.frag_contexts = 64;
    base.frag_hold = kFragHold;
    base.random_seed = 1;
    cfg[0] = base;

    cfg[1] = base;
    cfg[1].udp_endpoint_independent = true;
    cfg[1].outside_addrs = {kOutside1, kOutside2};
    cfg[1].port_min = 40000;
    cfg[1].port_max = 40255;

    cfg[2] = base;
    cfg[2].tcp_mss_clamp = 1200;
    cfg[2].verify_ip_checksum = true;
    cfg[2].tcp_rst_unknown = false;
    cfg[2].max_flows = 64;
    cfg[2].expire_per_burst = 1;
    cfg[2].timeouts.tcp_established_s = 30;
    cfg[2].timeouts.tcp_transitory_s = 10;
    cfg[2].timeouts.tcp_time_wait_s = 2;
    cfg[2].timeouts.udp_s = 5;
    cfg[2].timeouts.icmp_s = 3;
    cfg[2].timeouts.fragment_ms = 100;
    cfg[2].frag_contexts = 4;

    EngineConfig pair = base;
    pair.udp_endpoint_independent = true;
    pair.port_min = 1024;
    pair.port_max = 2047;
    pair.worker_count = 2;
    pair.rss.key = kMsKey;
    pair.rss.reta.resize(128);
    for (size_t i = 0; i < 128; ++i) pair.rss.reta[i] = static_cast<uint16_t>(i % 2);
    cfg[3] = pair;
    cfg[4] = pair;
    cfg[4].worker_id = 1;
    for (int e = 0; e < kEngines; ++e) eng[e] = std::make_unique<Engine>(cfg[e]);
  }

  Slot* alloc(const uint8_t* f, uint32_t len, uint32_t cap) {
    for (Slot& s : slots) {
      if (s.busy) continue;
      s.mem = new uint8_t[cap == 0 ? 1 : cap];
      std::memset(s.mem, 0xa5, cap);
      if (len) std::memcpy(s.mem, f, len);
      s.pkt = PacketBuf{s.mem, len, cap, {}};
      s.busy = true;
      s.held = false;
      s.holder = -1;
      s.hops = 0;
      return &s;
    }
    return nullptr;
  }
  void release(Slot* s) {
    delete[] s->mem;
    s->mem = nullptr;
    s->busy = false;
    s->held = false;
    s->in.clear();
  }
  Slot* slot_of(PacketBuf* p) {
    for (Slot& s : slots) {
      if (&s.pkt == p) return &s;
    }
    return nullptr;
  }
};

World& world() {
  static World* w = new World();  // lives for the process: engines hold buffers across inputs
  return *w;
}

int group_of(int e) { return e >= 3 ? 3 : e; }
bool is_outside(const EngineConfig& c, uint32_t a) {
  return std::find(c.outside_addrs.begin(), c.outside_addrs.end(), a) != c.outside_addrs.end();
}

// --- the harness's rewrites (sel byte) ---------------------------------------------------------

void write_ports(uint8_t* d, size_t len, size_t l4off, uint8_t proto, uint16_t sp, uint16_t dp,
                 uint8_t icmp_type) {
  if (proto == 1) {
    if (len < l4off + 8) return;
    d[l4off] = icmp_type;
    d[l4off + 1] = 0;
    put16(d + l4off + 4, icmp_type == 8 ? sp : dp);
  } else if (len >= l4off + 4) {
    put16(d + l4off, sp);
    put16(d + l4off + 2, dp);
  }
}

// Points an ICMP error's quote at a flow; inner src/dst/ports as given.
void write_error(uint8_t* d, size_t len, size_t l4off, const Flow& f, uint32_t isrc, uint32_t idst,
                 uint16_t isp, uint16_t idp, uint8_t echo_type) {
  if (len < l4off + 8 + 20 + 8) return;
  uint8_t* icmp = d + l4off;
  if (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12) icmp[0] = 3;
  uint8_t* in = icmp + 8;
  size_t iihl = size_t{in[0] & 0x0fu} * 4;
  if ((in[0] >> 4) != 4 || iihl < 20 || len < l4off + 8 + iihl + 8) {
    in[0] = 0x45;
    iihl = 20;
  }
  in[9] = f.proto;
  put16(in + 6, static_cast<uint16_t>(be16(in + 6) & 0xe000));  // offset 0: ports present
  put32(in + 12, isrc);
  put32(in + 16, idst);
  write_ports(d, len, l4off + 8 + iihl, f.proto, isp, idp, echo_type);
}

void rewrite(World& w, int group, uint8_t* d, size_t len, uint8_t s) {
  const IpView v = view(d, len);
  if (v.off < 0) return;
  uint8_t* ip = d + v.off;
  const size_t l4off = static_cast<size_t>(v.off) + v.ihl;
  const uint8_t mode = s & 7;
  const uint8_t variant = (s >> 3) & 15;
  const EngineConfig& c = w.cfg[group];
  switch (mode) {
    case fz::kMakeOut: {
      uint32_t dst = v.dst;
      if (is_inside(dst) || is_outside(c, dst) || dst == kHostAddr)
        dst = kInternet | (dst & 0x1ffff);
      put32(ip + 12, kInsideNet | (v.src & 0xffff));
      put32(ip + 16, dst);
      break;
    }
    case fz::kMakeIn:
      put32(ip + 12, kInternet | (v.src & 0x1ffff));
      put32(ip + 16, c.outside_addrs[variant % c.outside_addrs.size()]);
      break;
    case fz::kMakeHost:
      put32(ip + 16, kHostAddr);
      break;
    case fz::kReplyTo:
    case fz::kAgainOut:
    case fz::kErrorIn:
    case fz::kErrorOut: {
      if (w.flow_count[group] == 0) break;
      // variant 0 is the flow remembered last, 1 the one before, ...
      const uint32_t back = variant % w.flow_count[group];
      const Flow& f = w.flows[group][(w.flow_next[group] + 16 - 1 - back) % 16];
      if (mode == fz::kReplyTo || mode == fz::kAgainOut) {
        const bool reply = mode == fz::kReplyTo;
        put32(ip + 12, reply ? f.remote : f.in_ip);
        put32(ip + 16, reply ? f.out_ip : f.remote);
        ip[9] = f.proto;
        if (!v.later_fragment) {
          write_ports(d, len, l4off, f.proto, reply ? f.rport : f.iport, reply ? f.oport : f.rport,
                      reply ? 0 : 8);
        }
      } else if (mode == fz::kErrorIn) {
        put32(ip + 12, (variant & 1) ? f.remote : (kRouterNet | variant));
        put32(ip + 16, f.out_ip);
        ip[9] = 1;
        write_error(d, len, l4off, f, f.out_ip, f.remote, f.oport, f.rport, 8);
      } else {
        put32(ip + 12, f.in_ip);
        put32(ip + 16, (variant & 1) ? f.remote : (kRouterNet | variant));
        ip[9] = 1;
        write_error(d, len, l4off, f, f.remote, f.in_ip, f.rport, f.iport, 0);
      }
      break;
    }
    default:
      break;
  }
  if (s & fz::kSelFixChecksums) fix_checksums(d, len);
}

// Remembers a flow from an outbound packet the engine translated (input and output tuples).
void remember(World& w, int group, const Slot& s) {
  const IpView iv = view(s.in.data(), s.in_len);
  const IpView ov = view(s.pkt.data, s.pkt.len);
  if (iv.off < 0 || ov.off < 0 || iv.fragment || !iv.complete || !is_inside(iv.src)) return;
  if (iv.proto != ov.proto || iv.dst != ov.dst) return;
  const uint8_t* il4 = s.in.data() + iv.off + iv.ihl;
  const uint8_t* ol4 = s.pkt.data + ov.off + ov.ihl;
  Flow f{iv.src, iv.dst, ov.src, 0, 0, 0, iv.proto};
  if (iv.proto == 6 || iv.proto == 17) {
    if (s.in_len < iv.off + iv.ihl + 4 || s.pkt.len < ov.off + ov.ihl + 4) return;
    f.iport = be16(il4);
    f.rport = be16(il4 + 2);
    f.oport = be16(ol4);
  } else if (iv.proto == 1) {
    if (s.in_len < iv.off + iv.ihl + 8 || s.pkt.len < ov.off + ov.ihl + 8 || il4[0] != 8) return;
    f.iport = be16(il4 + 4);
    f.oport = be16(ol4 + 4);
  } else {
    return;
  }
  w.flows[group][w.flow_next[group]] = f;
  w.flow_next[group] = (w.flow_next[group] + 1) % 16;
  w.flow_count[group] = std::min<uint32_t>(w.flow_count[group] + 1, 16);
}

// --- verdict oracles -----------------------------------------------------------------------------

struct Pending {
  Slot* slot;
  int engine;
};

// ENGINE_FUZZ_TRACE=1 prints every verdict (to see what a seed or a crash input exercises).
bool tracing() {
  static const bool on = std::getenv("ENGINE_FUZZ_TRACE") != nullptr;
  return on;
}
void trace(int e, const Slot& s, const Result& r) {
  static constexpr const char* kVerdicts[] = {"Drop",   "ToOutside", "ToInside",
                                              "ToHost", "Handoff",   "Held"};
  const IpView v = view(s.pkt.data, s.pkt.len);
  std::fprintf(stderr, "  engine %d: %-9s %-22s len %u->%u proto %u %08x -> %08x hops %d\n", e,
               kVerdicts[static_cast<int>(r.verdict)],
               r.verdict == Verdict::Drop      ? std::string(drop_reason_name(r.reason)).c_str()
               : r.verdict == Verdict::Handoff ? (r.worker ? "worker 1" : "worker 0")
                                               : "",
               s.in_len, s.pkt.len, v.proto, v.src, v.dst, s.hops);
}

// Checks one verdict; returns true when the slot stays in use (held or handed off).
bool judge(World& w, int e, Slot& s, const Result& r, std::vector<Pending>& handoffs) {
  if (tracing()) trace(e, s, r);
  const EngineConfig& c = w.cfg[e];
  PacketBuf& p = s.pkt;
  FUZZ_CHECK(p.data == s.mem, "engine moved the buffer");
  FUZZ_CHECK(p.len <= p.cap, "len past cap");
  FUZZ_CHECK(static_cast<uint8_t>(r.verdict) <= static_cast<uint8_t>(Verdict::Held), "bad verdict");
  const IpView iv = view(s.in.data(), s.in_len);
  const bool same =
      p.len == s.in_len && (s.in_len == 0 || std::memcmp(p.data, s.in.data(), s.in_len) == 0);
  switch (r.verdict) {
    case Verdict::Drop:
      FUZZ_CHECK(r.reason < DropReason::Count, "drop without a reason");
      return false;
    case Verdict::Held:
      FUZZ_CHECK(iv.off >= 0 && iv.later_fragment, "held something that is not a later fragment");
      s.held = true;
      s.holder = e;
      return true;
    case Verdict::Handoff:
      FUZZ_CHECK(c.worker_count > 1, "handoff from a single worker");
      FUZZ_CHECK(r.worker < c.worker_count && r.worker != c.worker_id, "handoff to a bad worker");
      FUZZ_CHECK(s.hops == 0, "packet handed off twice");
      FUZZ_CHECK(same, "handed-off packet was modified");
      ++s.hops;
      handoffs.push_back({&s, 3 + r.worker});
      return true;
    case Verdict::ToHost:
      FUZZ_CHECK(same, "packet to host was modified");
      return false;
    case Verdict::ToOutside:
    case Verdict::ToInside: {
      const bool out = r.verdict == Verdict::ToOutside;
      const IpView ov = view(p.data, p.len);
      FUZZ_CHECK(ov.off >= 0, "forwarded packet is not IPv4");
      if (out) {
        FUZZ_CHECK(is_outside(c, ov.src), "packet leaves with a source that is not ours");
      } else {
        FUZZ_CHECK(is_inside(ov.dst), "packet to the inside for an outside destination");
      }
      if (iv.off >= 0 && ip_csum_ok(s.in.data(), iv)) {
        FUZZ_CHECK(ip_csum_ok(p.data, ov), "IP checksum broken by the engine");
      }
      const auto in_ok = iv.off >= 0 ? l4_csum_ok(s.in.data(), iv) : std::nullopt;
      const auto out_ok = l4_csum_ok(p.data, ov);
      if (in_ok.value_or(false) && out_ok.has_value()) {
        FUZZ_CHECK(*out_ok, "L4 checksum broken by the engine");
      }
      if (out) remember(w, group_of(e), s);
      return false;
    }
  }
  return false;
}

void run(World& w, int e, std::vector<Slot*>& batch, bool one_by_one,
         std::vector<Pending>& handoffs) {
  Engine& eng = *w.eng[e];
  if (batch.empty()) return;
  if (one_by_one) {
    for (Slot* s : batch) {
      const IpView iv = view(s->in.data(), s->in_len);
      const bool inbound = iv.off >= 0 && is_outside(w.cfg[e], iv.dst);
      const uint64_t created = eng.counters().get(Event::FlowsCreated);
      PacketBuf* p = &s->pkt;
      Result r;
      eng.process_burst(&p, 1, w.now_ns, &r);
      FUZZ_CHECK(!inbound || eng.counters().get(Event::FlowsCreated) == created,
                 "a packet from outside created a flow");
      if (!judge(w, e, *s, r, handoffs)) w.release(s);
    }
    return;
  }
  std::vector<PacketBuf*> pkts;
  for (Slot* s : batch) pkts.push_back(&s->pkt);
  std::vector<Result> res(pkts.size());
  eng.process_burst(pkts.data(), static_cast<uint32_t>(pkts.size()), w.now_ns, res.data());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!judge(w, e, *batch[i], res[i], handoffs)) w.release(batch[i]);
  }
}

// Delivers handoffs to their worker and drains every engine's released packets.
void settle(World& w, std::vector<Pending>& handoffs, bool one_by_one) {
  for (int round = 0; round < 8; ++round) {
    while (!handoffs.empty()) {
      std::vector<Pending> now;
      now.swap(handoffs);
      for (int e = 3; e < kEngines; ++e) {
        std::vector<Slot*> batch;
        for (const Pending& h : now) {
          if (h.engine == e) batch.push_back(h.slot);
        }
        run(w, e, batch, one_by_one, handoffs);
      }
    }
    bool any = false;
    for (int e = 0; e < kEngines; ++e) {
      PacketBuf* rel[16];
      Result res[16];
      uint32_t n;
      while ((n = w.eng[e]->pop_released(rel, res, 16, w.now_ns)) > 0) {
        any = true;
        for (uint32_t i = 0; i < n; ++i) {
          Slot* s = w.slot_of(rel[i]);
          FUZZ_CHECK(s != nullptr && s->busy, "released a buffer nobody gave it");
          FUZZ_CHECK(s->held && s->holder == e, "released a packet it did not hold");
          s->held = false;
          FUZZ_CHECK(res[i].verdict != Verdict::Held, "released as held");
          if (!judge(w, e, *s, res[i], handoffs)) w.release(s);
        }
      }
    }
    if (!any && handoffs.empty()) break;
  }
  std::array<uint32_t, kEngines> held{};
  for (const Slot& s : w.slots) {
    FUZZ_CHECK(!s.busy || s.held, "a buffer is neither free nor held after settling");
    if (s.busy) ++held[s.holder];
  }
  for (int e = 0; e < kEngines; ++e) FUZZ_CHECK(held[e] <= kFragHold, "more held than frag_hold");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  if (size < 2) return 0;
  const uint8_t ctl = data[0];
  const uint8_t clk = data[1];
  switch (ctl & 0xc0) {
    case fz::kClockMs:
      w.now_ns += uint64_t{clk} * 1'000'000ull;
      break;
    case fz::kClock64Ms:
      w.now_ns += uint64_t{clk} * 64'000'000ull;
      break;
    case fz::kClock8S:
      w.now_ns += uint64_t{clk} * 8'000'000'000ull;
      break;
    default:
      break;
  }
  const int group = ctl & 3;
  const int e = group == fz::kEnginePair ? 3 + ((ctl & fz::kCtlPairWorker1) ? 1 : 0) : group;
  const bool exact = (ctl & fz::kCtlExactCap) != 0;
  const bool one_by_one = (ctl & fz::kCtlOneByOne) != 0;

  // One by one: each frame is rewritten, processed and settled (handoffs delivered, releases
  // drained) before the next, so a reply can refer to the flow its predecessor created.
  // Otherwise all frames are rewritten first and go through the engine as one burst.
  std::vector<Slot*> batch;
  std::vector<Pending> handoffs;
  size_t pos = 2;
  size_t frames = 0;
  while (pos + 3 <= size && frames < kMaxFramesPerInput) {
    const uint8_t s = data[pos];
    size_t len = (size_t{data[pos + 1]} << 8 | data[pos + 2]) % (fz::kMaxFrame + 1);
    pos += 3;
    len = std::min(len, size - pos);
    const auto len32 = static_cast<uint32_t>(len);
    Slot* slot =
        w.alloc(data + pos, len32, exact ? len32 : len32 + static_cast<uint32_t>(kHeadroom));
    pos += len;
    ++frames;
    if (slot == nullptr) break;
    rewrite(w, group, slot->mem, len, s);
    slot->in.assign(slot->mem, slot->mem + len);
    slot->in_len = len32;
    batch.push_back(slot);
    if (one_by_one) {
      run(w, e, batch, true, handoffs);
      settle(w, handoffs, true);
      batch.clear();
    }
  }
  run(w, e, batch, false, handoffs);
  settle(w, handoffs, one_by_one);
  if (ctl & fz::kCtlExpire) {
    for (int k = 0; k < kEngines; ++k) w.eng[k]->expire(w.now_ns, 1u + clk * 16u);
  }
  return 0;
}

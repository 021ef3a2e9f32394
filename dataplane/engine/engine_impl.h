// Private to the engine (never included outside dataplane/engine): Engine::Impl, its state and its
// inline helpers, shared by the files that hold its code. The code is cut the way VPP cuts
// nat44-ed: a packet from Engine::process_burst goes through fast_path.cc (staged lookup and
// rewrite), then, when it needs judgement, in2out.cc or out2in.cc (slow paths: flow creation,
// port allocation in ports.cc, the policy gate in policy_gate.cc, ICMP errors in icmp_errors.cc,
// fragments in fragments.cc, generated packets in replies.cc); sync_expiry.cc holds the flow life
// cycle (delete, evict, expire) and the HA sync, engine.cc the public API and construction.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_order.h"
#include "dataplane/engine/checksum.h"
#include "dataplane/engine/engine.h"
#include "dataplane/engine/flow_table.h"
#include "dataplane/engine/parse.h"
#include "dataplane/engine/ring.h"
#include "dataplane/engine/rss.h"
#include "dataplane/policy/compiled_policy.h"

namespace eipgate::engine {

inline constexpr uint32_t kRandomPortTries = 32;
inline constexpr uint32_t kEimPortTries = 64;
inline constexpr uint32_t kLruRequeueMs = 1000;
// Flow records whose fast-path counts process_burst takes each call (offload_harvest).
inline constexpr uint32_t kHarvestPerBurst = 64;

inline uint32_t to_net(uint32_t host) { return __builtin_bswap32(host); }
inline uint32_t to_host(uint32_t net) { return __builtin_bswap32(net); }
inline uint16_t to_net16(uint16_t host) { return __builtin_bswap16(host); }
inline uint16_t to_host16(uint16_t net) { return __builtin_bswap16(net); }

inline uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// Offsets of the rewritten port / id and of the checksum within the L4 header.
struct L4Offsets {
  uint8_t out_port;  // inside -> outside: source port / echo id
  uint8_t in_port;   // outside -> inside: destination port / echo id
  uint8_t csum;
};
inline L4Offsets l4_offsets(uint8_t proto) {
  switch (proto) {
    case kProtoTcp:
      return {0, 2, 16};
    case kProtoUdp:
      return {0, 2, 6};
    default:
      return {4, 4, 2};
  }
}

// Decrements the TTL and folds the change into the IP checksum delta.
inline uint16_t ttl_decrement(uint8_t* ip) {
  const uint16_t old_w = load16(ip + 8);
  ip[8] = static_cast<uint8_t>(ip[8] - 1);
  return csum::delta16(old_w, load16(ip + 8));
}

// Checksum delta of a TTL decrement: the TTL is one byte of a 16-bit word, so decrementing a
// TTL > 0 changes that word by the same amount whatever its value (depends on byte order only).
inline const uint16_t kTtlDelta = [] {
  const uint8_t before[2] = {2, 6};
  const uint8_t after[2] = {1, 6};
  return csum::delta16(load16(before), load16(after));
}();

inline uint8_t tcp_class(uint8_t bits) {
  if ((bits & kRstSeen) || (bits & (kFinIn | kFinOut)) == (kFinIn | kFinOut)) {
    return kClassTcpClosing;
  }
  if ((bits & (kSynIn | kSynOut)) == (kSynIn | kSynOut) && !(bits & (kFinIn | kFinOut))) {
    return kClassTcpEstablished;
  }
  return kClassTcpTransitory;
}

inline TcpState tcp_state_of(uint8_t bits) {
  if (bits & kRstSeen) return TcpState::Reset;
  if ((bits & (kFinIn | kFinOut)) == (kFinIn | kFinOut)) return TcpState::TimeWait;
  if (bits & (kFinIn | kFinOut)) return TcpState::FinWait;
  if ((bits & (kSynIn | kSynOut)) == (kSynIn | kSynOut)) return TcpState::Established;
  if (bits & kSynOut) return TcpState::SynReceived;
  if (bits & kSynIn) return TcpState::SynSent;
  return TcpState::None;
}

enum class Dir : uint8_t { Out, In, Host, NotNat };

struct Engine::Impl {
  struct EimMap {
    uint32_t inside_ip;
    uint16_t inside_port;
    uint16_t outside_port;
    uint32_t outside_ip;
    uint32_t refs;  // flows using it; free-list link when 0
  };

  struct FragKey {
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto;
    bool operator==(const FragKey&) const = default;
  };
  enum class FragAction : uint8_t { Empty, Translate, Handoff, ToHost, Drop };
  struct FragCtx {
    FragKey key{};
    FragAction action = FragAction::Empty;
    Dir dir = Dir::Out;
    uint16_t worker = 0;
    uint32_t new_addr = 0;  // network order
    uint16_t csum_ip = 0;   // delta for the address change in this direction
    uint16_t sport = 0, dport = 0;
    uint32_t expires = 0;
  };
  struct Held {
    PacketBuf* pkt = nullptr;
    FragKey key{};
    uint32_t since = 0;
  };
  struct Released {
    PacketBuf* pkt = nullptr;
    Result res{};
  };

  static constexpr uint32_t kAddrSetBits = 10;
  static constexpr uint32_t kAddrSetSize = 1u << kAddrSetBits;

  EngineConfig cfg;
  std::vector<uint32_t> outside_net;
  std::vector<uint32_t> outside_set = std::vector<uint32_t>(kAddrSetSize, 0);
  std::vector<std::pair<uint32_t, uint32_t>> inside;  // (address, mask), host order
  std::vector<uint32_t> host_net;
  uint32_t icmp_src_net = 0;
  uint32_t timeout_ms[kClassCount]{};
  FlowPool pool;
  uint32_t tcp_flows = 0;  // of pool.used(): ActiveConnectionCount counts TCP only, as AWS does
  FlowIndex index;
  std::vector<EimMap> eim;
  uint32_t eim_free_head = kNone;
  std::vector<uint64_t> udp_port_bitmap;  // EIM: one bit per (outside addr, port)
  std::unique_ptr<Toeplitz> rss;
  uint32_t reta_mask = 0;
  std::vector<FragCtx> frag_contexts;
  uint32_t frag_index_mask = 0;
  std::vector<Held> held_fragments;
  uint32_t held_fragment_count = 0;
  FixedRing<Released> released;  // frag_hold entries: fragments let go, RSTs to servers
  Counters counters;
  uint64_t rng_state;
  uint32_t now = 0;  // ms
  uint8_t expire_class = 0;
  uint32_t last_flow = kNone;  // flow the last forward() used (first fragments learn from it)
  uint32_t port_range;
  // Egress policy: pending connections (waiting for SNI/Host) in a fixed pool of contexts with
  // their byte buffers, the denial ring for the audit log, per-rule hit counters.
  struct PendingCtx {
    uint32_t flow = kNone;
    uint32_t next_free = kNone;
    uint32_t len = 0;
    uint32_t since = 0;  // the handshake (SYN-ACK) or, before it, the SYN: timeout_ms runs from it
    uint32_t next_seq = 0;  // the client's next byte (host order): retransmissions are not re-read
    uint16_t group = 0;
    uint16_t packets = 0;
    bool tls = false;
  };
  const policy::CompiledPolicy* active_policy = nullptr;  // cfg.policy.get(), null when empty
  std::vector<PendingCtx> pending;
  std::vector<uint8_t> pending_data;
  uint32_t pending_capacity = 0;  // per context
  uint32_t pending_free = kNone;
  static constexpr uint32_t kDenyRing = 256;
  FixedRing<DenyRecord> denials{kDenyRing};
  uint64_t denials_lost = 0;
  std::vector<uint64_t> rule_hits;
  // Tuples recently refused at their first packet (4-way sets, reserved at construction): their
  // retransmissions within the protocol's idle time count as repeats, not as new denials.
  struct DeniedTuple {
    uint32_t src = 0, dst = 0;
    uint16_t sport = 0, dport = 0;
    uint8_t proto = 0;
    bool used = false;
    uint32_t last = 0;  // ms
  };
  static constexpr uint32_t kDeniedWays = 4;
  static constexpr uint32_t kDeniedSets = 256;
  std::vector<DeniedTuple> denied_recent = std::vector<DeniedTuple>(kDeniedWays * kDeniedSets);
  // Buffers the caller lends for packets the engine sends in addition to the one it was given
  // (the server's RST when a host name is refused); returned through pop_released.
  static constexpr uint32_t kSpareMax = 8;
  std::vector<PacketBuf*> spares = [] {
    std::vector<PacketBuf*> v;
    v.reserve(kSpareMax);
    return v;
  }();

  // Translation log (set_translation_log): a ring of records, reserved at construction, and per
  // flow record its open time and deciding rule (reserved when first turned on).
  static constexpr uint32_t kTxLogRing = 4096;
  struct TxMeta {
    uint32_t opened = 0;  // ms
    uint32_t rule = kTxNoRule;
  };
  FixedRing<TxLogRecord> txlog{kTxLogRing};
  std::vector<TxMeta> txmeta;
  bool txlog_on = false;
  uint64_t txlog_lost = 0;
  // Every field set once (no zeroing first): this runs for every new connection.
  void txlog_emit(uint32_t i, TxEvent ev, TxEnd end, bool synced) {
    TxLogRecord* r = txlog.push_slot_uninit();
    if (r == nullptr) {
      ++txlog_lost;
      return;
    }
    const Flow& f = pool[i];
    const TxMeta& m = txmeta[i];
    r->time_ms = now;
    r->inside_ip = to_host(f.inside_ip);
    r->outside_ip = to_host(f.outside_ip);
    r->remote_ip = to_host(f.remote_ip);
    r->inside_port = to_host16(f.inside_port);
    r->outside_port = to_host16(f.outside_port);
    r->remote_port = to_host16(f.remote_port);
    r->proto = f.proto;
    r->event = ev;
    r->end = end;
    r->synced = synced;
    r->rule_id = m.rule;
    const bool close = ev == TxEvent::Close;
    r->bytes_out = close ? f.bytes_out : 0;
    r->bytes_in = close ? f.bytes_in : 0;
    r->duration_ms = close ? now - m.opened : 0;
  }
  [[gnu::noinline]] void txlog_open(uint32_t i, uint32_t rule, bool synced) {
    txmeta[i] = TxMeta{now, rule};
    txlog_emit(i, TxEvent::Open, TxEnd::None, synced);
  }
  void txlog_rule(uint32_t i, uint32_t rule) {
    if (txlog_on) txmeta[i].rule = rule;
  }

  // Connection-table sync (set_sync): a ring of records, reserved at construction.
  static constexpr uint32_t kSyncRing = 1u << 15;
  FixedRing<SyncRecord> sync_records{kSyncRing};
  bool sync_on = false;
  uint32_t sync_refresh_ms = 30000;
  uint64_t sync_overflow_count = 0;

  SyncRecord sync_record(const Flow& f, SyncKind kind) const {
    SyncRecord r;
    r.inside_ip = to_host(f.inside_ip);
    r.outside_ip = to_host(f.outside_ip);
    r.remote_ip = to_host(f.remote_ip);
    r.inside_port = to_host16(f.inside_port);
    r.outside_port = to_host16(f.outside_port);
    r.remote_port = to_host16(f.remote_port);
    r.proto = f.proto;
    r.tcp_bits = f.tcp;
    const uint32_t idle = now - f.last_seen;
    const uint32_t tmo = timeout_ms[f.tclass];
    r.remaining_ms = idle >= tmo ? 0 : tmo - idle;
    r.kind = kind;
    r.endpoint_independent = (f.flags & kFlowEim) != 0;
    return r;
  }
  void sync_emit(const Flow& f, SyncKind kind) {
    if (!sync_records.push(sync_record(f, kind))) ++sync_overflow_count;
  }

  // Kernel fast path (set_offload): records for the glue, reserved at construction. After an
  // overflow nothing more is offloaded until drain_offload hands out a Flush.
  static constexpr uint32_t kOffloadRing = 1u << 14;
  FixedRing<OffloadRecord> offload_records{kOffloadRing};
  bool offload_on = false;
  bool offload_stalled = false;  // ring overflowed: a Flush is owed
  uint64_t offload_overflow_count = 0;
  uint64_t offloaded_count = 0;
  OffloadCounters* offload_out = nullptr;  // the shared arrays, already offset by the slot base
  OffloadCounters* offload_in = nullptr;
  uint32_t offload_slot_base = 0;
  uint32_t offload_slots = 0;  // flow records below this index may be offloaded
  uint32_t harvest_cursor = 0;

  uint32_t slot_of(const Flow& f) const { return static_cast<uint32_t>(&f - &pool[0]); }
  void offload_emit(const Flow& f, OffloadKind kind);
  // A flow the fast path may carry: nothing left to judge and no state change it would miss.
  static bool offloadable(const Flow& f);
  // Offloads f if it may be (flow state and policy, ring space, a counter slot).
  void maybe_offload(Flow& f);
  // Takes what the fast path carried for offloaded flow i: idle time, counters.
  void offload_take(uint32_t i, Flow& f);
  // Withdraws f from the fast path if it is there (its last counts taken first).
  void withdraw(Flow& f);
  // Every flow back to the slow path: the ring's records are superseded by one Flush.
  void offload_flush();
  void offload_harvest(uint32_t budget);

  explicit Impl(const EngineConfig& c);

  // The fields reconfigure() may change on a running engine (config.h, restart_field): derived
  // tables are rebuilt from cfg. Flows keep their translation; timeouts apply to them at once
  // (expiry compares last_seen with the class timeout of the moment).
  void apply_live_fields(const policy::CompiledPolicy* previous_policy);

  // A new policy (or the first). Rule hit counters follow rule names: a kept rule keeps its count,
  // a new one starts at 0. Pending connections keep their context and bytes (re-sized to the new
  // byte budget) and are judged again by the new policy (reclassify_pending): a reload never lets
  // a waiting connection through unjudged, and never judges it by another group's rules.
  void apply_policy(const policy::CompiledPolicy* previous);

  void remap_rule_hits(const policy::CompiledPolicy* previous, const policy::CompiledPolicy* next);

  // New pool size or byte budget: live contexts move (compacted) with their bytes, cut to the new
  // budget (the next client segment then decides). Without a policy every pending flow is allowed
  // (the new policy allows everything); contexts that no longer fit are refused (fail closed).
  void resize_pending(uint32_t count, uint32_t bytes);

  // Pending connections under a new policy: classified again from their addresses. Still waiting
  // for a name: the new group (by the new policy's own ids) and inspection; else decided now.
  void reclassify_pending();

  // The flow leaves the pending state (decided).
  void end_pending(uint32_t i);

  // A decided flow the policy refuses: logged; every later packet of it is answered with a RST
  // (both ways) until it expires.
  void deny_flow(uint32_t i, const policy::Decision& d, std::string_view name);

  void hit(uint32_t rule_id) {
    if (rule_id < rule_hits.size()) ++rule_hits[rule_id];
  }

  void record_denial(const Parsed& p, const policy::Decision& d, std::string_view name);
  // Addresses and ports in network order.
  void record_denial(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                     const policy::Decision& d, std::string_view name);

  void pending_release(uint32_t c) {
    pending[c].flow = kNone;
    pending[c].next_free = pending_free;
    pending_free = c;
  }

  // A re-check after a reload (recheck_on_reload): flows the new policy denies are closed.
  void recheck_flows();

  uint64_t rand64() {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
  }

  // --- classification -------------------------------------------------------------------------

  // Outside addresses: a small open-addressing set, so the common "not ours" answer costs one
  // probe however many addresses are configured.
  static uint32_t addr_slot(uint32_t a) { return (a * 0x9e3779b1u) >> (32 - kAddrSetBits); }
  bool is_outside(uint32_t a) const {
    for (uint32_t s = addr_slot(a);; s = (s + 1) & (kAddrSetSize - 1)) {
      const uint32_t v = outside_set[s];
      if (v == a) return true;
      if (v == 0) return false;
    }
  }
  bool is_host(uint32_t a) const {
    for (uint32_t h : host_net) {
      if (h == a) return true;
    }
    return false;
  }
  bool is_inside(uint32_t a_net) const {
    const uint32_t a = to_host(a_net);
    for (const auto& [addr, mask] : inside) {
      if ((a & mask) == addr) return true;
    }
    return false;
  }
  Dir classify(const Parsed& p) const {
    if (is_outside(p.dst)) return Dir::In;
    if (is_host(p.dst)) return Dir::Host;
    if (is_inside(p.src) && !is_inside(p.dst)) return Dir::Out;
    return Dir::NotNat;
  }

  // "Paired" pooling: a host always maps to the same outside address, on every worker and on
  // the HA peer, because the choice depends only on the host's address.
  uint32_t paired_outside(uint32_t inside_net) const {
    return outside_net[mix64(inside_net) % outside_net.size()];
  }
  uint32_t outside_slot(uint32_t out_net) const {
    for (uint32_t i = 0; i < outside_net.size(); ++i) {
      if (outside_net[i] == out_net) return i;
    }
    return 0;
  }

  // --- ownership (multiple workers) -----------------------------------------------------------

  bool eim_udp(uint8_t proto) const { return proto == kProtoUdp && cfg.udp_endpoint_independent; }
  uint16_t reta(uint32_t h) const { return cfg.rss.reta[h & reta_mask]; }
  uint16_t eim_owner(uint32_t inside_net, uint16_t port_net) const {
    return static_cast<uint16_t>(mix64((uint64_t{inside_net} << 16) | port_net) % cfg.worker_count);
  }
  // Owner of a reply packet remote -> outside address.
  uint16_t owner_in(uint32_t remote, uint32_t out, uint16_t rport, uint16_t oport,
                    uint8_t proto) const {
    if (cfg.worker_count == 1) return 0;
    if (eim_udp(proto)) return static_cast<uint16_t>(to_host16(oport) % cfg.worker_count);
    if (proto == kProtoIcmp) return reta(rss->hash_l3(remote, out));
    return reta(rss->hash_l4(remote, out, rport, oport));
  }
  // Owner of a new flow seen inside -> outside.
  uint16_t owner_out(uint32_t in_ip, uint32_t remote, uint16_t iport, uint16_t rport,
                     uint8_t proto) const {
    if (cfg.worker_count == 1) return 0;
    if (eim_udp(proto)) return eim_owner(in_ip, iport);
    if (proto == kProtoIcmp) return reta(rss->hash_l3(remote, paired_outside(in_ip)));
    return reta(rss->hash_l4(in_ip, remote, iport, rport));
  }

  // --- flow lookup ----------------------------------------------------------------------------

  uint32_t find(const FlowKey& k, uint64_t h) const {
    const uint32_t v = index.find(h, [&](uint32_t val) {
      const Flow& f = pool[val >> 2];
      return (val & 3) == k.kind && f.matches(k);
    });
    return v == kNone ? kNone : v >> 2;
  }
  uint32_t find(const FlowKey& k) const { return find(k, hash_key(k)); }

  // --- flow life cycle ------------------------------------------------------------------------

  void delete_flow(uint32_t i, TxEnd why = TxEnd::None);

  bool evict_one();

  uint32_t expire_flows(uint32_t budget);

  // EIM mappings (UDP only): one outside port per (inside ip, inside port), owned exclusively.
  FlowKey eim_key(uint32_t in_ip, uint16_t in_port) const {
    return FlowKey{in_ip, 0, in_port, 0, kProtoUdp, kKeyEim, 0};
  }
  uint32_t eim_find(uint32_t in_ip, uint16_t in_port) const;
  bool udp_port_used(uint32_t slot, uint16_t port_host) const {
    return (udp_port_bitmap[slot * 1024 + port_host / 64] >> (port_host % 64)) & 1;
  }
  void udp_port_set(uint32_t slot, uint16_t port_host, bool used) {
    uint64_t& w = udp_port_bitmap[slot * 1024 + port_host / 64];
    const uint64_t bit = uint64_t{1} << (port_host % 64);
    w = used ? (w | bit) : (w & ~bit);
  }
  void eim_release(uint32_t m);
  // Returns the mapping index or kNone when no port is free.
  uint32_t eim_acquire(uint32_t in_ip, uint16_t in_port, uint32_t out_ip);

  // Endpoint-dependent port choice (RFC 6056 random, then a full scan so capacity per
  // destination is the whole range). With several workers only ports whose reply hashes to this
  // worker qualify.
  bool pick_port(uint8_t proto, uint32_t remote, uint32_t out, uint16_t rport, uint16_t& port_net);

  // The precomputed rewrite: checksum deltas for both directions, TTL decrement included.
  static void fill_deltas(Flow& f) {
    const uint16_t ip_d = address_delta(f);
    const uint16_t port_d = csum::delta16(f.inside_port, f.outside_port);
    f.csum_ip_out = csum::add(ip_d, kTtlDelta);
    f.csum_ip_in = csum::add(csum::negate(ip_d), kTtlDelta);
    f.csum_l4 = f.proto == kProtoIcmp ? port_d : csum::add(ip_d, port_d);
  }
  static uint16_t address_delta(const Flow& f) { return csum::delta32(f.inside_ip, f.outside_ip); }

  // Creates a flow for an inside -> outside packet. Returns kNone (reason set) on failure.
  uint32_t create_flow(const Parsed& p, DropReason& reason, uint32_t rule);

  // TCP state from flags (only called for segments carrying SYN, FIN or RST).
  void tcp_update(uint32_t i, uint8_t flags, bool from_inside) {
    Flow& f = pool[i];
    const uint8_t old_cls = f.tclass;
    if (flags & kTcpRst) {
      f.tcp |= kRstSeen;
    } else {
      if (flags & kTcpSyn) {
        if (from_inside && !(flags & kTcpAck) && old_cls == kClassTcpClosing) {
          // Reopen of a closed connection reusing the mapping (RFC 7857 §2.1).
          f.tcp = 0;
          f.flags &= static_cast<uint8_t>(~kFlowReplySeen);
          counters.add(Event::TcpReopened);
          counters.add(Event::ConnectionAttemptCount);
        }
        f.tcp |= from_inside ? kSynIn : kSynOut;
      }
      if (flags & kTcpFin) f.tcp |= from_inside ? kFinIn : kFinOut;
    }
    if ((f.tcp & (kSynIn | kSynOut)) == (kSynIn | kSynOut) && !(f.flags & kFlowReplySeen)) {
      f.flags |= kFlowReplySeen;
      counters.add(Event::ConnectionEstablishedCount);
    }
    if (f.tcp & (kFinIn | kFinOut | kRstSeen)) withdraw(f);
    const uint8_t cls = tcp_class(f.tcp);
    if (cls != old_cls) {
      pool.lru_requeue(i, cls, now);
      if (sync_on) sync_emit(f, SyncKind::Refresh);
    }
  }

  // Standby side of the sync: install or refresh a peer's flow with its outside tuple.
  SyncRefusal apply_sync(const SyncRecord& r);

  // --- translation ----------------------------------------------------------------------------

  // MSS clamping on SYN segments (slow: SYNs only).
  void clamp_mss(uint8_t* tcp, uint16_t l4len);

  // Rewrites a packet of flow i. Fragments after the first carry no L4 header (l4 == nullptr).
  [[gnu::always_inline]] void rewrite(Flow& f, const Parsed& p, bool out) {
    uint8_t* ip = p.l3;
    ip[8] = static_cast<uint8_t>(ip[8] - 1);  // callers checked TTL > 1; kTtlDelta covers it
    if (out) {
      store32(ip + 12, f.outside_ip);
      store16(ip + 10, csum::apply(load16(ip + 10), f.csum_ip_out));
    } else {
      store32(ip + 16, f.inside_ip);
      store16(ip + 10, csum::apply(load16(ip + 10), f.csum_ip_in));
    }
    if (p.l4 == nullptr) return;
    const L4Offsets o = l4_offsets(f.proto);
    uint8_t* l4 = p.l4;
    store16(l4 + (out ? o.out_port : o.in_port), out ? f.outside_port : f.inside_port);
    const uint16_t d = out ? f.csum_l4 : csum::negate(f.csum_l4);
    const uint16_t c = load16(l4 + o.csum);
    if (f.proto == kProtoUdp) {
      if (c != 0) {  // zero = no checksum, kept (RFC 768)
        const uint16_t n = csum::apply(c, d);
        store16(l4 + o.csum, n == 0 ? 0xffff : n);
      }
    } else {
      // A message that sums to +0 (an echo reply of zeros) only verifies with 0xFFFF; the
      // incremental update yields 0x0000 there. 0xFFFF is valid whenever 0x0000 is.
      const uint16_t n = csum::apply(c, d);
      store16(l4 + o.csum, (f.proto == kProtoIcmp && n == 0) ? 0xffff : n);
    }
  }

  [[gnu::always_inline]] void account_forward(uint32_t i, Flow& f, const Parsed& p, bool out) {
    f.last_seen = now;
    // Coarse LRU: move to the tail at most once per kLruRequeueMs, so expiry is exact to that
    // granularity while a busy flow touches its list neighbours rarely.
    if (now - f.lru_time >= kLruRequeueMs) {
      // Sync refresh: once per sync_refresh_ms window in which the flow was active.
      if (sync_on && f.lru_time / sync_refresh_ms != now / sync_refresh_ms) {
        sync_emit(f, SyncKind::Refresh);
      }
      pool.lru_requeue(i, f.tclass, now);
    }
    if (out) {
      f.bytes_out += p.ip_len;
      counters.add(Event::PacketsOutToDestination);
      counters.add(Event::BytesOutToDestination, p.ip_len);
    } else {
      f.bytes_in += p.ip_len;
      counters.add(Event::PacketsOutToSource);
      counters.add(Event::BytesOutToSource, p.ip_len);
      if (!(f.flags & kFlowReplySeen) && f.proto != kProtoTcp) {
        f.flags |= kFlowReplySeen;
        counters.add(Event::ConnectionEstablishedCount);
      }
    }
    if (offload_on) maybe_offload(f);
  }

  // Fast path for a flow hit. Returns false when the packet needs the slow path.
  bool forward(uint32_t i, PacketBuf& pkt, const Parsed& p, bool out, Result& r) {
    if (p.ttl <= 1) return false;
    Flow& f = pool[i];
    if ((f.flags & (kFlowPending | kFlowDenied)) && policy_gate(i, pkt, p, out, r)) [[unlikely]] {
      return true;
    }
    if (p.proto == kProtoTcp) {
      if (p.tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) {
        tcp_update(i, p.tcp_flags, out);
        if (out && (p.tcp_flags & kTcpSyn) && cfg.tcp_mss_clamp) clamp_mss(p.l4, p.l4_len());
      }
      if (!out && (p.tcp_flags & kTcpSyn) && cfg.tcp_mss_clamp) clamp_mss(p.l4, p.l4_len());
    }
    rewrite(f, p, out);
    account_forward(i, f, p, out);
    if (p.fragment) counters.add(Event::FragmentsTranslated);
    last_flow = i;
    (void)pkt;
    r.verdict = out ? Verdict::ToOutside : Verdict::ToInside;
    return true;
  }

  // --- generated replies ----------------------------------------------------------------------

  Result drop(DropReason reason) {
    counters.drop(reason);
    return Result{Verdict::Drop, reason, 0};
  }

  // Turns the packet into ICMP Time Exceeded to its sender, from `src`.
  Result time_exceeded(PacketBuf& pkt, const Parsed& p, uint32_t src, bool out);

  // Turns a TCP segment into the RST its sender would get from the destination (RFC 793 §3.4).
  Result reset_to_sender(PacketBuf& pkt, const Parsed& p);

  // The RST answering segment p, written over it (addresses swapped: it goes back to the sender).
  bool build_rst(PacketBuf& pkt, const Parsed& p);

  // A RST from the flow's outside tuple to the remote host, in sequence with the client's segment
  // p: written into a spare buffer and queued for pop_released. False when none is available.
  bool rst_to_server(const Flow& f, const Parsed& p);

  // ICMP destination unreachable, administratively prohibited (type 3 code 13), to the sender.
  bool build_admin_prohibited(PacketBuf& pkt, const Parsed& p);

  // A new flow the policy denies: dropped, or (reject) answered with a RST / ICMP prohibited.
  // True when p's tuple was refused within its protocol's idle time (a retransmission); else
  // remembers it (replacing the set's oldest entry).
  bool denied_again(const Parsed& p);

  // A new flow the policy denies: dropped, or (reject) answered with a RST / ICMP prohibited.
  // Counted (rule hit) and logged once per tuple; its retransmissions count as repeats.
  Result deny_new(PacketBuf& pkt, const Parsed& p, const policy::Decision& d,
                  std::string_view name = {});

  // Pending (host-name rules) and denied flows; called from forward() for flagged flows only.
  // Returns true when r holds the final result, false to translate the packet normally.
  // While a flow is pending no payload passes either way (the handshake and pure ACKs do): the
  // client's segments are copied for the parser and dropped, so the client retransmits what the
  // server has not acknowledged once the name has allowed the connection.
  bool policy_gate(uint32_t i, PacketBuf& pkt, const Parsed& p, bool out, Result& r);

  // --- ICMP errors (RFC 5508) -----------------------------------------------------------------

  Result icmp_error(PacketBuf& pkt, const Parsed& p, bool out);

  Result handoff(uint16_t w) {
    counters.add(Event::PacketsHandedOff);
    return Result{Verdict::Handoff, DropReason::Count, w};
  }

  // --- slow path ------------------------------------------------------------------------------

  Result slow_out(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up = false);

  Result slow_in(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up = false);

  // --- fragments ------------------------------------------------------------------------------

  static FragKey frag_key(const Parsed& p) { return FragKey{p.src, p.dst, p.frag_id, p.proto}; }
  uint32_t frag_slot(const FragKey& k) const {
    return static_cast<uint32_t>(
        mix64((uint64_t{k.src} << 32 | k.dst) ^ (uint64_t{k.id} << 8 | k.proto)));
  }
  FragCtx* frag_find(const FragKey& k);
  FragCtx& frag_insert(const FragKey& k);

  // Applies a context to a non-first fragment.
  Result frag_apply(const FragCtx& c, PacketBuf& pkt, Parsed& p);

  // A first fragment was processed with result r: remember what to do with the rest and release
  // any that arrived early.
  void frag_learn(const Parsed& p, Dir dir, const Result& r, uint32_t flow);

  Result fragment(PacketBuf& pkt, Parsed& p, Dir dir);

  // --- per packet -----------------------------------------------------------------------------

  // looked_up: the fast path already searched this packet's key and found nothing.
  Result process_one(PacketBuf& pkt, Parsed& p, L3Kind kind, uint32_t i, bool looked_up = false);

  // Inside-key hashes of flows created during the current burst (a 256-bit Bloom filter), so a
  // miss found by the fast path's early lookup is trusted unless this burst may have created it.
  std::array<uint64_t, 4> burst_created{};
  void burst_created_add(uint64_t h) { burst_created[(h >> 6) & 3] |= uint64_t{1} << (h & 63); }
  bool burst_created_maybe(uint64_t h) const {
    return (burst_created[(h >> 6) & 3] >> (h & 63)) & 1;
  }

  // Per-burst scratch, kept here so a burst costs no initialisation.
  Parsed parsed[kMaxBurst];
  L3Kind l3_kinds[kMaxBurst];
  FlowKey keys[kMaxBurst];
  uint64_t hashes[kMaxBurst];
  uint32_t candidate[kMaxBurst];
  uint8_t fast_dir[kMaxBurst];  // 0 = slow, 1 = out, 2 = in

  void process(PacketBuf* const* pkts, uint32_t n, Result* out);
};

}  // namespace eipgate::engine

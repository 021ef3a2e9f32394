// Engine implementation. Fast path: parse -> classify -> bulk lookup -> precomputed rewrite.
// Everything else (flow creation, ICMP errors, fragments, TTL expiry, RST generation, handoff)
// lives in the slow-path functions below the fast path.
#include "dataplane/engine/engine.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/engine/checksum.h"
#include "dataplane/engine/flow_table.h"
#include "dataplane/engine/parse.h"
#include "dataplane/engine/rss.h"
#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/name_parsers.h"

namespace eipgate::engine {

namespace {

constexpr uint32_t kRandomPortTries = 32;
constexpr uint32_t kEimPortTries = 64;
constexpr uint32_t kLruRequeueMs = 1000;

uint32_t to_net(uint32_t host) { return __builtin_bswap32(host); }
uint32_t to_host(uint32_t net) { return __builtin_bswap32(net); }
uint16_t to_net16(uint16_t host) { return __builtin_bswap16(host); }
uint16_t to_host16(uint16_t net) { return __builtin_bswap16(net); }

uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint32_t load_be32(const uint8_t* p) { return to_host(load32(p)); }
void store_be32(uint8_t* p, uint32_t v) { store32(p, to_net(v)); }

uint64_t mix64(uint64_t x) {
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
L4Offsets l4_offsets(uint8_t proto) {
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
uint16_t ttl_decrement(uint8_t* ip) {
  const uint16_t old_w = load16(ip + 8);
  ip[8] = static_cast<uint8_t>(ip[8] - 1);
  return csum::delta16(old_w, load16(ip + 8));
}

// Checksum delta of a TTL decrement: the TTL is one byte of a 16-bit word, so decrementing a
// TTL > 0 changes that word by the same amount whatever its value (depends on byte order only).
const uint16_t kTtlDelta = [] {
  const uint8_t before[2] = {2, 6};
  const uint8_t after[2] = {1, 6};
  return csum::delta16(load16(before), load16(after));
}();

void swap_macs(uint8_t* eth) {
  uint8_t tmp[6];
  std::memcpy(tmp, eth, 6);
  std::memcpy(eth, eth + 6, 6);
  std::memcpy(eth + 6, tmp, 6);
}

void write_ip_header(uint8_t* ip, uint16_t total, uint16_t id, uint8_t ttl, uint8_t proto,
                     uint32_t src, uint32_t dst) {
  ip[0] = 0x45;
  ip[1] = 0;
  store16(ip + 2, to_net16(total));
  store16(ip + 4, id);
  store16(ip + 6, to_net16(0x4000));  // DF
  ip[8] = ttl;
  ip[9] = proto;
  store16(ip + 10, 0);
  store32(ip + 12, src);
  store32(ip + 16, dst);
  store16(ip + 10, csum::finish(csum::partial(ip, 20)));
}

// A bare IPv4+TCP segment of 40 bytes (no options, no payload) with both checksums: every RST the
// engine sends. Addresses and ports in network order as they sit in packets; seq/ack host order.
void write_tcp_rst(uint8_t* ip, uint16_t ip_id, uint32_t src, uint32_t dst, uint16_t sport,
                   uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags) {
  write_ip_header(ip, 40, ip_id, 64, kProtoTcp, src, dst);
  uint8_t* t = ip + 20;
  store16(t, sport);
  store16(t + 2, dport);
  store_be32(t + 4, seq);
  store_be32(t + 8, ack);
  t[12] = 5 << 4;
  t[13] = flags;
  store16(t + 14, 0);
  store16(t + 16, 0);
  store16(t + 18, 0);
  const uint32_t acc = csum::words32(src) + csum::words32(dst) + to_net16(kProtoTcp) + to_net16(20);
  store16(t + 16, csum::finish(csum::partial(t, 20, acc)));
}

uint8_t tcp_class(uint8_t bits) {
  if ((bits & kRstSeen) || (bits & (kFinIn | kFinOut)) == (kFinIn | kFinOut)) {
    return kClassTcpClosing;
  }
  if ((bits & (kSynIn | kSynOut)) == (kSynIn | kSynOut) && !(bits & (kFinIn | kFinOut))) {
    return kClassTcpEstablished;
  }
  return kClassTcpTransitory;
}

TcpState tcp_state_of(uint8_t bits) {
  if (bits & kRstSeen) return TcpState::Reset;
  if ((bits & (kFinIn | kFinOut)) == (kFinIn | kFinOut)) return TcpState::TimeWait;
  if (bits & (kFinIn | kFinOut)) return TcpState::FinWait;
  if ((bits & (kSynIn | kSynOut)) == (kSynIn | kSynOut)) return TcpState::Established;
  if (bits & kSynOut) return TcpState::SynReceived;
  if (bits & kSynIn) return TcpState::SynSent;
  return TcpState::None;
}

enum class Dir : uint8_t { Out, In, Host, NotNat };

}  // namespace

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
  uint32_t tmo_ms[kClassCount]{};
  FlowPool pool;
  FlowIndex index;
  std::vector<EimMap> eim;
  uint32_t eim_free = kNone;
  std::vector<uint64_t> udp_port_bitmap;  // EIM: one bit per (outside addr, port)
  std::unique_ptr<Toeplitz> rss;
  uint32_t reta_mask = 0;
  std::vector<FragCtx> frag;
  uint32_t frag_mask = 0;
  std::vector<Held> held;
  uint32_t held_count = 0;
  std::vector<Released> released;
  uint32_t rel_head = 0, rel_count = 0;
  Counters ctr;
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
  const policy::CompiledPolicy* pol = nullptr;  // cfg.policy.get(), null when empty
  std::vector<PendingCtx> pend;
  std::vector<uint8_t> pend_buf;
  uint32_t pend_bytes = 0;  // per context
  uint32_t pend_free = kNone;
  static constexpr uint32_t kDenyRing = 256;
  std::vector<DenyRecord> deny_ring = std::vector<DenyRecord>(kDenyRing);
  uint32_t deny_head = 0, deny_count = 0;
  uint64_t deny_lost = 0;
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

  // Connection-table sync (set_sync): a ring of records, reserved at construction.
  static constexpr uint32_t kSyncRing = 1u << 15;
  std::vector<SyncRecord> sync_ring = std::vector<SyncRecord>(kSyncRing);
  uint32_t sync_head = 0, sync_count = 0;
  bool sync_on = false;
  uint32_t sync_refresh_ms = 30000;
  uint64_t sync_lost = 0;

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
    const uint32_t tmo = tmo_ms[f.tclass];
    r.remaining_ms = idle >= tmo ? 0 : tmo - idle;
    r.kind = kind;
    r.endpoint_independent = (f.flags & kFlowEim) != 0;
    return r;
  }
  void sync_emit(const Flow& f, SyncKind kind) {
    if (sync_count == kSyncRing) {
      ++sync_lost;
      return;
    }
    sync_ring[(sync_head + sync_count) & (kSyncRing - 1)] = sync_record(f, kind);
    ++sync_count;
  }

  explicit Impl(const EngineConfig& c)
      : cfg(c),
        pool(c.max_flows),
        index(uint64_t{c.max_flows} * (c.udp_endpoint_independent ? 3 : 2)),
        rng_state(c.random_seed ? c.random_seed
                                : 0x2545f4914f6cdd1dull * (uint64_t{c.worker_id} + 1)),
        port_range(uint32_t{c.port_max} - c.port_min + 1) {
    for (uint32_t a : cfg.outside_addrs) {
      outside_net.push_back(to_net(a));
      uint32_t s = addr_slot(to_net(a));
      while (outside_set[s] != 0) s = (s + 1) & (kAddrSetSize - 1);
      outside_set[s] = to_net(a);
    }
    apply_live_fields(nullptr);
    if (cfg.udp_endpoint_independent) {
      eim.resize(cfg.max_flows);
      for (uint32_t i = 0; i < cfg.max_flows; ++i)
        eim[i].refs = i + 1 < cfg.max_flows ? i + 1 : kNone;
      eim_free = 0;
      udp_port_bitmap.assign(outside_net.size() * 1024, 0);
    }
    if (cfg.worker_count > 1) {
      rss = std::make_unique<Toeplitz>(cfg.rss.key);
      reta_mask = static_cast<uint32_t>(cfg.rss.reta.size() - 1);
    }
    uint32_t fc = 1;
    while (fc < cfg.frag_contexts) fc <<= 1;
    frag.resize(fc);
    frag_mask = fc - 1;
    held.resize(cfg.frag_hold);
    released.resize(cfg.frag_hold);
  }

  // The fields reconfigure() may change on a running engine (config.h, restart_field): derived
  // tables are rebuilt from cfg. Flows keep their translation; timeouts apply to them at once
  // (expiry compares last_seen with the class timeout of the moment).
  void apply_live_fields(const policy::CompiledPolicy* previous_policy) {
    inside.clear();
    for (const auto& p : cfg.inside_prefixes) {
      const uint32_t mask = p.len == 0 ? 0 : ~uint32_t{0} << (32 - p.len);
      inside.emplace_back(p.addr & mask, mask);
    }
    host_net.clear();
    for (uint32_t a : cfg.host_addrs) host_net.push_back(to_net(a));
    icmp_src_net = to_net(cfg.icmp_source_addr      ? cfg.icmp_source_addr
                          : !cfg.host_addrs.empty() ? cfg.host_addrs[0]
                                                    : cfg.outside_addrs[0]);
    const auto& t = cfg.timeouts;
    tmo_ms[kClassTcpClosing] = t.tcp_time_wait_s * 1000;
    tmo_ms[kClassTcpTransitory] = t.tcp_transitory_s * 1000;
    tmo_ms[kClassIcmp] = t.icmp_s * 1000;
    tmo_ms[kClassUdp] = t.udp_s * 1000;
    tmo_ms[kClassTcpEstablished] = t.tcp_established_s * 1000;
    apply_policy(previous_policy);
  }

  // A new policy (or the first). Rule hit counters follow rule names: a kept rule keeps its count,
  // a new one starts at 0. Pending connections keep their context and bytes (re-sized to the new
  // byte budget) and are judged again by the new policy (reclassify_pending): a reload never lets
  // a waiting connection through unjudged, and never judges it by another group's rules.
  void apply_policy(const policy::CompiledPolicy* previous) {
    const policy::CompiledPolicy* next = cfg.policy.get();
    pol = next && !next->empty() ? next : nullptr;
    if (next != previous) remap_rule_hits(previous, next);
    if (next != previous && previous != nullptr && pol != nullptr) reclassify_pending();
    const uint32_t bytes = pol ? pol->config().name_max_bytes : 0;
    const uint32_t count = pol ? cfg.policy_pending_max : 0;
    if (bytes != pend_bytes || count != pend.size()) resize_pending(count, bytes);
  }

  void remap_rule_hits(const policy::CompiledPolicy* previous, const policy::CompiledPolicy* next) {
    std::vector<uint64_t> hits(next ? next->rule_count() : 0, 0);
    if (previous != nullptr && next != nullptr) {
      std::unordered_map<std::string_view, uint32_t> old_ids;
      for (uint32_t id = 0; id < previous->rule_count() && id < rule_hits.size(); ++id) {
        old_ids.emplace(previous->rule_name(id), id);
      }
      for (uint32_t id = 0; id < hits.size(); ++id) {
        if (auto it = old_ids.find(next->rule_name(id)); it != old_ids.end()) {
          hits[id] = rule_hits[it->second];
        }
      }
    }
    rule_hits = std::move(hits);
  }

  // New pool size or byte budget: live contexts move (compacted) with their bytes, cut to the new
  // budget (the next client segment then decides). Without a policy every pending flow is allowed
  // (the new policy allows everything); contexts that no longer fit are refused (fail closed).
  void resize_pending(uint32_t count, uint32_t bytes) {
    std::vector<PendingCtx> next(count);
    std::vector<uint8_t> next_buf(size_t{count} * bytes, 0);
    uint32_t used = 0;
    for (uint32_t k = 0; k < pend.size(); ++k) {
      PendingCtx c = pend[k];
      if (c.flow == kNone) continue;
      Flow& f = pool[c.flow];
      f.flags &= static_cast<uint8_t>(~kFlowPending);
      f.eim = kNone;
      if (pol == nullptr) continue;  // no policy: allowed
      if (used == count) {
        deny_flow(c.flow, pol->no_name(c.group), {});
        continue;
      }
      c.len = std::min(c.len, bytes);
      std::memcpy(next_buf.data() + size_t{used} * bytes, pend_buf.data() + size_t{k} * pend_bytes,
                  c.len);
      next[used] = c;
      f.flags |= kFlowPending;
      f.eim = used++;
    }
    pend = std::move(next);
    pend_buf = std::move(next_buf);
    pend_bytes = bytes;
    pend_free = kNone;
    for (uint32_t k = count; k-- > used;) {
      pend[k].next_free = pend_free;
      pend_free = k;
    }
  }

  // Pending connections under a new policy: classified again from their addresses. Still waiting
  // for a name: the new group (by the new policy's own ids) and inspection; else decided now.
  void reclassify_pending() {
    for (uint32_t k = 0; k < pend.size(); ++k) {
      PendingCtx& c = pend[k];
      if (c.flow == kNone) continue;
      const uint32_t i = c.flow;
      const Flow& f = pool[i];
      const uint16_t dport = to_host16(f.remote_port);
      const policy::Decision d =
          pol->classify(to_host(f.inside_ip), to_host(f.remote_ip), f.proto, dport);
      if (d.verdict == policy::Decision::Verdict::NeedName) {
        c.group = d.group_id;
        c.tls = pol->inspects_tls(dport);
        continue;
      }
      hit(d.rule_id);
      end_pending(i);
      if (d.verdict == policy::Decision::Verdict::Deny) deny_flow(i, d, {});
    }
  }

  // The flow leaves the pending state (decided).
  void end_pending(uint32_t i) {
    Flow& f = pool[i];
    pending_release(f.eim);
    f.eim = kNone;
    f.flags &= static_cast<uint8_t>(~kFlowPending);
  }

  // A decided flow the policy refuses: logged; every later packet of it is answered with a RST
  // (both ways) until it expires.
  void deny_flow(uint32_t i, const policy::Decision& d, std::string_view name) {
    Flow& f = pool[i];
    record_denial(f.inside_ip, f.remote_ip, f.inside_port, f.remote_port, f.proto, d, name);
    f.flags |= kFlowDenied;
    f.tcp |= kRstSeen;
    pool.lru_requeue(i, tcp_class(f.tcp), now);
  }

  void hit(uint32_t rule_id) {
    if (rule_id < rule_hits.size()) ++rule_hits[rule_id];
  }

  void record_denial(const Parsed& p, const policy::Decision& d, std::string_view name) {
    record_denial(p.src, p.dst, p.sport, p.dport, p.proto, d, name);
  }
  // Addresses and ports in network order.
  void record_denial(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                     const policy::Decision& d, std::string_view name) {
    if (deny_count == kDenyRing) {
      ++deny_lost;
      return;
    }
    DenyRecord& r = deny_ring[(deny_head + deny_count++) & (kDenyRing - 1)];
    r = DenyRecord{};
    r.time_ms = now;
    r.src = to_host(src);
    r.dst = to_host(dst);
    r.sport = to_host16(sport);
    r.dport = to_host16(dport);
    r.proto = proto;
    r.reject = d.deny_action == policy::DenyAction::Reject;
    r.group_id = d.group_id;
    r.rule_id = d.rule_id;
    const size_t n = std::min(name.size(), sizeof r.name - 1);
    if (n != 0) std::memcpy(r.name, name.data(), n);  // an empty view may have no data()
  }

  void pending_release(uint32_t c) {
    pend[c].flow = kNone;
    pend[c].next_free = pend_free;
    pend_free = c;
  }

  // A re-check after a reload (recheck_on_reload): flows the new policy denies are closed.
  void recheck_flows() {
    for (uint32_t i = 0; i < pool.capacity(); ++i) {
      const Flow& f = pool[i];
      if (!(f.flags & kFlowLive) || (f.flags & (kFlowPending | kFlowDenied))) continue;
      const policy::Decision d = pol->classify(to_host(f.inside_ip), to_host(f.remote_ip), f.proto,
                                               to_host16(f.remote_port));
      if (d.verdict == policy::Decision::Verdict::Deny) {
        delete_flow(i);
        ctr.add(Event::PolicyFlowsRechecked);
      }
    }
  }

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

  void delete_flow(uint32_t i) {
    Flow& f = pool[i];
    if (sync_on) sync_emit(f, SyncKind::Delete);
    index.erase(hash_key(f.inside_key()), (i << 2) | kKeyInside);
    index.erase(hash_key(f.outside_key()), (i << 2) | kKeyOutside);
    pool.lru_remove(i);
    if (f.flags & kFlowPending) {
      pending_release(f.eim);
    } else if (f.eim != kNone) {
      eim_release(f.eim);
    }
    pool.free(i);
  }

  bool evict_one() {
    for (uint8_t c = 0; c < kClassCount; ++c) {
      const uint32_t i = pool.lru_head(c);
      if (i != kNone) {
        delete_flow(i);
        ctr.add(Event::FlowsEvicted);
        return true;
      }
    }
    return false;
  }

  uint32_t expire_flows(uint32_t budget) {
    uint32_t removed = 0;
    uint32_t examined = 0;
    for (uint8_t n = 0; n < kClassCount && examined < budget; ++n) {
      const uint8_t c = static_cast<uint8_t>((expire_class + n) % kClassCount);
      while (examined < budget) {
        const uint32_t i = pool.lru_head(c);
        if (i == kNone) break;
        ++examined;
        Flow& f = pool[i];
        if (now - f.last_seen >= tmo_ms[c]) {
          delete_flow(i);
          // IdleTimeoutCount (NAT Gateway) counts connections that went idle without closing;
          // a TCP flow that closed (both FINs or a RST) ends its time-wait as flows_closed.
          ctr.add(c == kClassTcpClosing ? Event::FlowsClosed : Event::IdleTimeoutCount);
          ctr.add(Event::FlowsExpired);
          ++removed;
        } else {
          // Lists are ordered by queue time and a flow is re-queued at most kLruRequeueMs after
          // its last packet, so nothing behind the head is due more than that early.
          break;
        }
      }
    }
    expire_class = static_cast<uint8_t>((expire_class + 1) % kClassCount);
    return removed;
  }

  // EIM mappings (UDP only): one outside port per (inside ip, inside port), owned exclusively.
  FlowKey eim_key(uint32_t in_ip, uint16_t in_port) const {
    return FlowKey{in_ip, 0, in_port, 0, kProtoUdp, kKeyEim, 0};
  }
  uint32_t eim_find(uint32_t in_ip, uint16_t in_port) const {
    const FlowKey k = eim_key(in_ip, in_port);
    const uint32_t v = index.find(hash_key(k), [&](uint32_t val) {
      if ((val & 3) != kKeyEim) return false;
      const EimMap& m = eim[val >> 2];
      return m.inside_ip == in_ip && m.inside_port == in_port;
    });
    return v == kNone ? kNone : v >> 2;
  }
  bool udp_port_used(uint32_t slot, uint16_t port_host) const {
    return (udp_port_bitmap[slot * 1024 + port_host / 64] >> (port_host % 64)) & 1;
  }
  void udp_port_set(uint32_t slot, uint16_t port_host, bool used) {
    uint64_t& w = udp_port_bitmap[slot * 1024 + port_host / 64];
    const uint64_t bit = uint64_t{1} << (port_host % 64);
    w = used ? (w | bit) : (w & ~bit);
  }
  void eim_release(uint32_t m) {
    EimMap& e = eim[m];
    if (--e.refs > 0) return;
    index.erase(hash_key(eim_key(e.inside_ip, e.inside_port)), (m << 2) | kKeyEim);
    udp_port_set(outside_slot(e.outside_ip), to_host16(e.outside_port), false);
    e.refs = eim_free;
    eim_free = m;
  }
  // Returns the mapping index or kNone when no port is free.
  uint32_t eim_acquire(uint32_t in_ip, uint16_t in_port, uint32_t out_ip) {
    uint32_t m = eim_find(in_ip, in_port);
    if (m != kNone) {
      ++eim[m].refs;
      return m;
    }
    if (eim_free == kNone) return kNone;
    const uint32_t slot = outside_slot(out_ip);
    const uint16_t owner = eim_owner(in_ip, in_port);
    const uint32_t n = cfg.worker_count;
    auto usable = [&](uint32_t p) {
      return p % n == owner && !udp_port_used(slot, static_cast<uint16_t>(p));
    };
    uint32_t port = 0;
    for (uint32_t t = 0; t < kEimPortTries && port == 0; ++t) {
      const uint32_t p = cfg.port_min + static_cast<uint32_t>(rand64() % port_range);
      if (usable(p)) port = p;
    }
    if (port == 0) {
      const uint32_t start = static_cast<uint32_t>(rand64() % port_range);
      for (uint32_t k = 0; k < port_range && port == 0; ++k) {
        const uint32_t p = cfg.port_min + (start + k) % port_range;
        if (usable(p)) port = p;
      }
    }
    if (port == 0) return kNone;
    m = eim_free;
    eim_free = eim[m].refs;
    eim[m] = EimMap{in_ip, in_port, to_net16(static_cast<uint16_t>(port)), out_ip, 1};
    if (!index.insert(hash_key(eim_key(in_ip, in_port)), (m << 2) | kKeyEim)) {
      eim[m].refs = eim_free;
      eim_free = m;
      return kNone;
    }
    udp_port_set(slot, static_cast<uint16_t>(port), true);
    return m;
  }

  // Endpoint-dependent port choice (RFC 6056 random, then a full scan so capacity per
  // destination is the whole range). With several workers only ports whose reply hashes to this
  // worker qualify.
  bool pick_port(uint8_t proto, uint32_t remote, uint32_t out, uint16_t rport, uint16_t& port_net) {
    const bool need_rss = cfg.worker_count > 1 && proto != kProtoIcmp;
    const uint32_t base = need_rss ? rss->hash_l4(remote, out, rport, 0) : 0;
    auto usable = [&](uint32_t p) {
      const uint16_t pn = to_net16(static_cast<uint16_t>(p));
      if (need_rss && reta(base ^ rss->dport_contrib(pn)) != cfg.worker_id) return false;
      const FlowKey k{remote, out, rport, pn, proto, kKeyOutside, 0};
      return find(k) == kNone;
    };
    for (uint32_t t = 0; t < kRandomPortTries; ++t) {
      const uint32_t p = cfg.port_min + static_cast<uint32_t>(rand64() % port_range);
      if (usable(p)) {
        port_net = to_net16(static_cast<uint16_t>(p));
        return true;
      }
      ctr.add(Event::PortAllocRetries);
    }
    const uint32_t start = static_cast<uint32_t>(rand64() % port_range);
    for (uint32_t k = 0; k < port_range; ++k) {
      const uint32_t p = cfg.port_min + (start + k) % port_range;
      if (usable(p)) {
        port_net = to_net16(static_cast<uint16_t>(p));
        return true;
      }
    }
    return false;
  }

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
  uint32_t create_flow(const Parsed& p, DropReason& reason) {
    if (pool.used() >= pool.capacity() && !evict_one()) {
      reason = DropReason::TableFull;
      return kNone;
    }
    const uint32_t out_ip = paired_outside(p.src);
    uint16_t out_port = 0;
    uint32_t eim_idx = kNone;
    if (eim_udp(p.proto)) {
      eim_idx = eim_acquire(p.src, p.sport, out_ip);
      if (eim_idx != kNone) out_port = eim[eim_idx].outside_port;
    }
    if (eim_udp(p.proto) ? eim_idx == kNone
                         : !pick_port(p.proto, p.dst, out_ip, p.dport, out_port)) {
      ctr.add(Event::ErrorPortAllocation);
      reason = DropReason::PortAllocation;
      return kNone;
    }
    const uint32_t i = pool.alloc();
    Flow& f = pool[i];
    f.inside_ip = p.src;
    f.remote_ip = p.dst;
    f.outside_ip = out_ip;
    f.inside_port = p.sport;
    f.remote_port = p.dport;
    f.outside_port = out_port;
    f.proto = p.proto;
    f.flags = kFlowLive;
    f.eim = eim_idx;
    if (eim_idx != kNone) f.flags |= kFlowEim;
    f.last_seen = now;
    fill_deltas(f);
    const uint64_t h_in = hash_key(f.inside_key());
    burst_created_add(h_in);
    if (!index.insert(h_in, (i << 2) | kKeyInside)) {
      if (eim_idx != kNone) eim_release(eim_idx);
      pool.free(i);
      reason = DropReason::TableFull;
      return kNone;
    }
    if (!index.insert(hash_key(f.outside_key()), (i << 2) | kKeyOutside)) {
      index.erase(hash_key(f.inside_key()), (i << 2) | kKeyInside);
      if (eim_idx != kNone) eim_release(eim_idx);
      pool.free(i);
      reason = DropReason::TableFull;
      return kNone;
    }
    uint8_t cls = kClassUdp;
    if (p.proto == kProtoTcp) {
      f.tcp = kSynIn;
      cls = kClassTcpTransitory;
    } else if (p.proto == kProtoIcmp) {
      cls = kClassIcmp;
    }
    pool.lru_push(i, cls, now);
    ctr.add(Event::FlowsCreated);
    ctr.add(Event::ConnectionAttemptCount);
    if (sync_on) sync_emit(f, SyncKind::Create);
    return i;
  }

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
          ctr.add(Event::TcpReopened);
          ctr.add(Event::ConnectionAttemptCount);
        }
        f.tcp |= from_inside ? kSynIn : kSynOut;
      }
      if (flags & kTcpFin) f.tcp |= from_inside ? kFinIn : kFinOut;
    }
    if ((f.tcp & (kSynIn | kSynOut)) == (kSynIn | kSynOut) && !(f.flags & kFlowReplySeen)) {
      f.flags |= kFlowReplySeen;
      ctr.add(Event::ConnectionEstablishedCount);
    }
    const uint8_t cls = tcp_class(f.tcp);
    if (cls != old_cls) {
      pool.lru_requeue(i, cls, now);
      if (sync_on) sync_emit(f, SyncKind::Refresh);
    }
  }

  // Standby side of the sync: install or refresh a peer's flow with its outside tuple.
  std::string apply_sync(const SyncRecord& r) {
    if (r.proto != kProtoTcp && r.proto != kProtoUdp && r.proto != kProtoIcmp) {
      return "protocol " + std::to_string(r.proto) + " is not translated";
    }
    const FlowKey in_key{to_net(r.inside_ip),
                         to_net(r.remote_ip),
                         to_net16(r.inside_port),
                         to_net16(r.remote_port),
                         r.proto,
                         kKeyInside,
                         0};
    uint32_t i = find(in_key);
    if (r.kind == SyncKind::Delete) {
      if (i != kNone) delete_flow(i);
      return {};
    }
    if (r.endpoint_independent || eim_udp(r.proto)) {
      return "endpoint-independent UDP mappings are not synced";
    }
    const uint8_t cls = r.proto == kProtoTcp    ? tcp_class(r.tcp_bits)
                        : r.proto == kProtoIcmp ? uint8_t{kClassIcmp}
                                                : uint8_t{kClassUdp};
    const uint32_t tmo = tmo_ms[cls];
    const uint32_t remaining = std::min(r.remaining_ms, tmo);
    if (i != kNone && (pool[i].outside_ip != to_net(r.outside_ip) ||
                       pool[i].outside_port != to_net16(r.outside_port))) {
      delete_flow(i);  // the peer's mapping wins: it is the one the remote host knows
      i = kNone;
    }
    if (i == kNone) {
      if (!is_outside(to_net(r.outside_ip))) return "outside address is not ours";
      if (r.proto != kProtoIcmp &&
          (r.outside_port < cfg.port_min || r.outside_port > cfg.port_max)) {
        return "outside port outside the configured range";
      }
      const FlowKey out_key{to_net(r.remote_ip),
                            to_net(r.outside_ip),
                            to_net16(r.remote_port),
                            to_net16(r.outside_port),
                            r.proto,
                            kKeyOutside,
                            0};
      if (find(out_key) != kNone) return "outside tuple in use by another flow";
      if (pool.used() >= pool.capacity() && !evict_one()) return "flow table full";
      i = pool.alloc();
      Flow& f = pool[i];
      f.inside_ip = in_key.src;
      f.remote_ip = in_key.dst;
      f.outside_ip = to_net(r.outside_ip);
      f.inside_port = in_key.sport;
      f.remote_port = in_key.dport;
      f.outside_port = to_net16(r.outside_port);
      f.proto = r.proto;
      f.flags = kFlowLive | kFlowReplySeen;
      fill_deltas(f);
      if (!index.insert(hash_key(f.inside_key()), (i << 2) | kKeyInside)) {
        pool.free(i);
        return "flow index full";
      }
      if (!index.insert(hash_key(f.outside_key()), (i << 2) | kKeyOutside)) {
        index.erase(hash_key(f.inside_key()), (i << 2) | kKeyInside);
        pool.free(i);
        return "flow index full";
      }
      f.tcp = r.tcp_bits;
      f.last_seen = now - (tmo - remaining);
      pool.lru_push(i, cls, now);
      ctr.add(Event::FlowsSynced);
      return {};
    }
    Flow& f = pool[i];
    f.tcp = r.tcp_bits;
    f.last_seen = now - (tmo - remaining);
    pool.lru_requeue(i, cls, now);
    return {};
  }

  // --- translation ----------------------------------------------------------------------------

  // MSS clamping on SYN segments (slow: SYNs only).
  void clamp_mss(uint8_t* tcp, uint16_t l4len) {
    const uint16_t doff = static_cast<uint16_t>((tcp[12] >> 4) * 4);
    if (doff > l4len) return;
    uint16_t i = 20;
    while (i < doff) {
      const uint8_t kind = tcp[i];
      if (kind == 0) return;
      if (kind == 1) {
        ++i;
        continue;
      }
      if (i + 1 >= doff) return;
      const uint8_t len = tcp[i + 1];
      if (len < 2 || i + len > doff) return;
      if (kind == 2 && len == 4) {
        const uint16_t mss = static_cast<uint16_t>((tcp[i + 2] << 8) | tcp[i + 3]);
        if (mss > cfg.tcp_mss_clamp) {
          const uint16_t old_w = load16(tcp + i + 2);
          const uint16_t new_w = to_net16(cfg.tcp_mss_clamp);
          store16(tcp + i + 2, new_w);
          // After an odd number of 1-byte options (NOP) the value straddles two checksum
          // words, where its bytes count swapped.
          const bool odd = (i & 1) != 0;
          const uint16_t d =
              odd ? csum::delta16(to_host16(old_w), to_host16(new_w)) : csum::delta16(old_w, new_w);
          store16(tcp + 16, csum::apply(load16(tcp + 16), d));
          ctr.add(Event::MssClamped);
        }
        return;
      }
      i = static_cast<uint16_t>(i + len);
    }
  }

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
      ctr.add(Event::PacketsOutToDestination);
      ctr.add(Event::BytesOutToDestination, p.ip_len);
    } else {
      f.bytes_in += p.ip_len;
      ctr.add(Event::PacketsOutToSource);
      ctr.add(Event::BytesOutToSource, p.ip_len);
      if (!(f.flags & kFlowReplySeen) && f.proto != kProtoTcp) {
        f.flags |= kFlowReplySeen;
        ctr.add(Event::ConnectionEstablishedCount);
      }
    }
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
    if (p.fragment) ctr.add(Event::FragmentsTranslated);
    last_flow = i;
    (void)pkt;
    r.verdict = out ? Verdict::ToOutside : Verdict::ToInside;
    return true;
  }

  // --- generated replies ----------------------------------------------------------------------

  Result drop(DropReason reason) {
    ctr.drop(reason);
    return Result{Verdict::Drop, reason, 0};
  }

  // Turns the packet into ICMP Time Exceeded to its sender, from `src`.
  Result time_exceeded(PacketBuf& pkt, const Parsed& p, uint32_t src, bool out) {
    ctr.drop(DropReason::TtlExpired);
    const bool is_error =
        p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply;
    if (is_error || (p.fragment && !p.first_fragment)) {
      return Result{Verdict::Drop, DropReason::TtlExpired, 0};
    }
    // RFC 1812 §4.3.2.3: as much of the original as fits in 576 bytes.
    uint32_t orig = std::min<uint32_t>(p.ip_len, 576 - 28);
    if (pkt.cap < p.l3_off + 28 + orig)
      orig = pkt.cap > p.l3_off + 28 ? pkt.cap - p.l3_off - 28 : 0;
    if (orig < p.ihl + 8u) return Result{Verdict::Drop, DropReason::TtlExpired, 0};
    uint8_t* ip = p.l3;
    std::memmove(ip + 28, ip, orig);
    write_ip_header(ip, static_cast<uint16_t>(28 + orig), static_cast<uint16_t>(rand64()), 64,
                    kProtoIcmp, src, p.src);
    uint8_t* icmp = ip + 20;
    icmp[0] = kIcmpTimeExceeded;
    icmp[1] = 0;
    store16(icmp + 2, 0);
    store32(icmp + 4, 0);
    store16(icmp + 2, csum::finish(csum::partial(icmp, 8 + orig)));
    swap_macs(pkt.data);
    pkt.len = p.l3_off + 28 + orig;
    ctr.add(Event::IcmpTimeExceededSent);
    return Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::Count, 0};
  }

  // Turns a TCP segment into the RST its sender would get from the destination (RFC 793 §3.4).
  Result reset_to_sender(PacketBuf& pkt, const Parsed& p) {
    ctr.drop(DropReason::TcpNoFlowNonSyn);
    if (!cfg.tcp_rst_unknown) return Result{Verdict::Drop, DropReason::TcpNoFlowNonSyn, 0};
    if (!build_rst(pkt, p)) return Result{Verdict::Drop, DropReason::TcpNoFlowNonSyn, 0};
    ctr.add(Event::TcpRstSentToInside);
    return Result{Verdict::ToInside, DropReason::Count, 0};
  }

  // The RST answering segment p, written over it (addresses swapped: it goes back to the sender).
  bool build_rst(PacketBuf& pkt, const Parsed& p) {
    if ((p.tcp_flags & kTcpRst) || pkt.cap < p.l3_off + 40) return false;
    const uint8_t* tcp = p.l4;
    const uint16_t doff = static_cast<uint16_t>((tcp[12] >> 4) * 4);
    const uint32_t seq = load_be32(tcp + 4);
    const uint32_t ack = load_be32(tcp + 8);
    const uint16_t sport = load16(tcp);
    const uint16_t dport = load16(tcp + 2);
    uint32_t seg_len = p.l4_len() - doff;
    if (p.tcp_flags & kTcpSyn) ++seg_len;
    if (p.tcp_flags & kTcpFin) ++seg_len;
    // Everything needed is read above: the new header overwrites the segment (and any options).
    if (p.tcp_flags & kTcpAck) {
      write_tcp_rst(p.l3, 0, p.dst, p.src, dport, sport, ack, 0, kTcpRst);
    } else {
      write_tcp_rst(p.l3, 0, p.dst, p.src, dport, sport, 0, seq + seg_len, kTcpRst | kTcpAck);
    }
    swap_macs(pkt.data);
    pkt.len = p.l3_off + 40;
    return true;
  }

  // A RST from the flow's outside tuple to the remote host, in sequence with the client's segment
  // p: written into a spare buffer and queued for pop_released. False when none is available.
  bool rst_to_server(const Flow& f, const Parsed& p) {
    if (spares.empty() || rel_count >= released.size()) return false;
    PacketBuf* b = spares.back();
    if (b->cap < p.l3_off + 40u) return false;
    spares.pop_back();
    std::memcpy(b->data, p.l3 - p.l3_off, p.l3_off);  // Ethernet (+VLAN): MACs are set on send
    // The client's seq and ack: inside the server's window.
    write_tcp_rst(b->data + p.l3_off, static_cast<uint16_t>(rand64()), f.outside_ip, f.remote_ip,
                  f.outside_port, f.remote_port, load_be32(p.l4 + 4), load_be32(p.l4 + 8),
                  kTcpRst | kTcpAck);
    b->len = p.l3_off + 40;
    b->meta = {};
    released[(rel_head + rel_count) % released.size()] =
        Released{b, Result{Verdict::ToOutside, DropReason::Count, 0}};
    ++rel_count;
    ctr.add(Event::PolicyRejectsSent);
    return true;
  }

  // ICMP destination unreachable, administratively prohibited (type 3 code 13), to the sender.
  bool build_admin_prohibited(PacketBuf& pkt, const Parsed& p) {
    const bool is_error =
        p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply;
    if (is_error || (p.fragment && !p.first_fragment)) return false;
    uint32_t orig = std::min<uint32_t>(p.ip_len, 576 - 28);
    if (pkt.cap < p.l3_off + 28 + orig)
      orig = pkt.cap > p.l3_off + 28 ? pkt.cap - p.l3_off - 28 : 0;
    if (orig < p.ihl + 8u) return false;
    uint8_t* ip = p.l3;
    std::memmove(ip + 28, ip, orig);
    write_ip_header(ip, static_cast<uint16_t>(28 + orig), static_cast<uint16_t>(rand64()), 64,
                    kProtoIcmp, icmp_src_net, p.src);
    uint8_t* icmp = ip + 20;
    icmp[0] = 3;
    icmp[1] = 13;
    store16(icmp + 2, 0);
    store32(icmp + 4, 0);
    store16(icmp + 2, csum::finish(csum::partial(icmp, 8 + orig)));
    swap_macs(pkt.data);
    pkt.len = p.l3_off + 28 + orig;
    return true;
  }

  // A new flow the policy denies: dropped, or (reject) answered with a RST / ICMP prohibited.
  // True when p's tuple was refused within its protocol's idle time (a retransmission); else
  // remembers it (replacing the set's oldest entry).
  bool denied_again(const Parsed& p) {
    const uint32_t h =
        static_cast<uint32_t>(mix64((uint64_t{p.src} << 32 | p.dst) ^
                                    (uint64_t{p.sport} << 24 | uint64_t{p.dport} << 8 | p.proto)));
    DeniedTuple* set = &denied_recent[(h % kDeniedSets) * kDeniedWays];
    const uint8_t cls = p.proto == kProtoTcp    ? uint8_t{kClassTcpTransitory}
                        : p.proto == kProtoIcmp ? uint8_t{kClassIcmp}
                                                : uint8_t{kClassUdp};
    DeniedTuple* slot = &set[0];
    for (uint32_t w = 0; w < kDeniedWays; ++w) {
      DeniedTuple& e = set[w];
      if (e.used && e.src == p.src && e.dst == p.dst && e.sport == p.sport && e.dport == p.dport &&
          e.proto == p.proto) {
        const bool again = now - e.last < tmo_ms[cls];
        e.last = now;
        return again;
      }
      if (slot->used && (!e.used || now - e.last > now - slot->last)) slot = &e;
    }
    *slot = DeniedTuple{p.src, p.dst, p.sport, p.dport, p.proto, true, now};
    return false;
  }

  // A new flow the policy denies: dropped, or (reject) answered with a RST / ICMP prohibited.
  // Counted (rule hit) and logged once per tuple; its retransmissions count as repeats.
  Result deny_new(PacketBuf& pkt, const Parsed& p, const policy::Decision& d,
                  std::string_view name = {}) {
    if (denied_again(p)) {
      ctr.add(Event::PolicyDeniedRepeats);
    } else {
      hit(d.rule_id);
      record_denial(p, d, name);
    }
    ctr.drop(DropReason::PolicyDenied);
    if (d.deny_action == policy::DenyAction::Reject &&
        (p.proto == kProtoTcp ? build_rst(pkt, p) : build_admin_prohibited(pkt, p))) {
      ctr.add(Event::PolicyRejectsSent);
      return Result{Verdict::ToInside, DropReason::PolicyDenied, 0};
    }
    return Result{Verdict::Drop, DropReason::PolicyDenied, 0};
  }

  // Pending (host-name rules) and denied flows; called from forward() for flagged flows only.
  // Returns true when r holds the final result, false to translate the packet normally.
  // While a flow is pending no payload passes either way (the handshake and pure ACKs do): the
  // client's segments are copied for the parser and dropped, so the client retransmits what the
  // server has not acknowledged once the name has allowed the connection.
  bool policy_gate(uint32_t i, PacketBuf& pkt, const Parsed& p, bool out, Result& r) {
    Flow& f = pool[i];
    if (f.flags & kFlowDenied) {
      // Inside: RST to the client. Outside: RST back to the server (from our outside tuple, as
      // the segment's own addresses say): the connection ends both ways.
      if (build_rst(pkt, p)) {
        ctr.add(Event::PolicyRejectsSent);
        r = Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::PolicyDenied, 0};
      } else {
        r = drop(DropReason::PolicyDenied);
      }
      return true;
    }
    if (p.proto != kProtoTcp || pol == nullptr) return false;
    PendingCtx& c = pend[f.eim];
    const auto& pc = pol->config();
    if (!out && (p.tcp_flags & kTcpSyn)) c.since = now;  // the handshake: the clock starts
    const bool timed_out =
        now - c.since > pc.name_timeout_ms && !(p.tcp_flags & (kTcpSyn | kTcpRst));
    const uint16_t doff = static_cast<uint16_t>((p.l4[12] >> 4) * 4);
    const uint32_t payload = p.l4_len() > doff ? p.l4_len() - doff : 0;
    if (payload == 0 && !timed_out) return false;  // handshake, pure ACKs
    if (!out && !timed_out) {  // the server speaks first: held back until a name decides
      r = drop(DropReason::PolicyPendingHeld);
      return true;
    }
    policy::NameStatus st = policy::NameStatus::NeedMore;
    std::string name;
    if (!timed_out) {
      // Only the bytes that continue the stream: a retransmission (or the part of a segment
      // already read) and a segment beyond a gap add nothing.
      const uint32_t skip = c.next_seq - load_be32(p.l4 + 4);
      if (skip >= payload) {
        r = drop(DropReason::PolicyPendingHeld);
        return true;
      }
      uint8_t* buf = pend_buf.data() + size_t{f.eim} * pend_bytes;
      const uint32_t take = std::min(payload - skip, pend_bytes - c.len);
      std::memcpy(buf + c.len, p.l4 + doff + skip, take);
      c.len += take;
      c.next_seq += payload - skip;
      ++c.packets;
      st = c.tls ? policy::parse_tls_sni(buf, c.len, &name)
                 : policy::parse_http_host(buf, c.len, &name);
      if (st == policy::NameStatus::NeedMore && c.len < pend_bytes &&
          c.packets < pc.name_max_packets) {
        r = drop(DropReason::PolicyPendingHeld);  // the name is further on
        return true;
      }
    }
    ctr.add(Event::PolicyNamesChecked);
    const policy::Decision d = st == policy::NameStatus::Found
                                   ? pol->classify_name(c.group, name, to_host(f.remote_ip),
                                                        f.proto, to_host16(f.remote_port))
                                   : pol->no_name(c.group);
    hit(d.rule_id);
    end_pending(i);
    if (d.verdict == policy::Decision::Verdict::Allow) return false;
    // Refused: the server gets a RST from our outside tuple (in a spare buffer, when the caller
    // lent one; else at its next segment), and this segment becomes its sender's RST.
    deny_flow(i, d, name);
    if (out) rst_to_server(f, p);
    ctr.drop(DropReason::PolicyDenied);
    if (build_rst(pkt, p)) {
      ctr.add(Event::PolicyRejectsSent);
      r = Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::PolicyDenied, 0};
    } else {
      r = Result{Verdict::Drop, DropReason::PolicyDenied, 0};
    }
    return true;
  }

  // --- ICMP errors (RFC 5508) -----------------------------------------------------------------

  Result icmp_error(PacketBuf& pkt, const Parsed& p, bool out) {
    (void)pkt;
    uint8_t* icmp = p.l4;
    InnerParsed in;
    if (!parse_inner(icmp + 8, p.l4_len() - 8u, in)) return drop(in.reason);
    // The embedded packet travelled the other way: reverse it to get this direction's key.
    const FlowKey k{in.dst,   in.src,   in.dport,
                    in.sport, in.proto, static_cast<uint8_t>(out ? kKeyInside : kKeyOutside),
                    0};
    const uint32_t i = find(k);
    if (i == kNone) {
      if (cfg.worker_count > 1) {
        const uint16_t w = out ? owner_out(k.src, k.dst, k.sport, k.dport, k.proto)
                               : owner_in(k.src, k.dst, k.sport, k.dport, k.proto);
        if (w != cfg.worker_id) return handoff(w);
      }
      return drop(DropReason::IcmpErrorNoFlow);
    }
    if (p.ttl <= 1) return drop(DropReason::TtlExpired);  // never an error about an error
    Flow& f = pool[i];
    const L4Offsets o = l4_offsets(f.proto);
    const uint32_t span = in.ihl + std::min<uint32_t>(in.avail_l4, 20);
    const uint32_t before = csum::partial(in.l3, span);
    // Inner packet: the side of it that names us changes, as it would have on the way out.
    const uint32_t new_addr = out ? f.outside_ip : f.inside_ip;
    const uint16_t new_port = out ? f.outside_port : f.inside_port;
    const uint16_t ip_d = out ? address_delta(f) : csum::negate(address_delta(f));
    const uint16_t l4_d = out ? f.csum_l4 : csum::negate(f.csum_l4);
    // Outbound error: inner is remote -> inside host (its destination changes);
    // inbound error: inner is outside address -> remote (its source changes).
    store32(in.l3 + (out ? 16 : 12), new_addr);
    store16(in.l3 + 10, csum::apply(load16(in.l3 + 10), ip_d));
    const uint8_t port_off = f.proto == kProtoIcmp ? o.out_port : (out ? o.in_port : o.out_port);
    store16(in.l4 + port_off, new_port);
    if (in.avail_l4 >= o.csum + 2u) {
      const uint16_t c = load16(in.l4 + o.csum);
      if (!(f.proto == kProtoUdp && c == 0)) {
        const uint16_t n = csum::apply(c, l4_d);
        store16(in.l4 + o.csum, (f.proto == kProtoUdp && n == 0) ? 0xffff : n);
      }
    }
    const uint32_t after = csum::partial(in.l3, span);
    store16(icmp + 2, csum::apply(load16(icmp + 2), csum::delta_sums(before, after)));
    // Outer header: the address that names us changes.
    uint8_t* ip = p.l3;
    const uint16_t ttl_d = ttl_decrement(ip);
    const uint32_t old_outer = load32(ip + (out ? 12 : 16));
    store32(ip + (out ? 12 : 16), new_addr);
    store16(ip + 10,
            csum::apply(load16(ip + 10), csum::add(csum::delta32(old_outer, new_addr), ttl_d)));
    if (out) {
      ctr.add(Event::PacketsOutToDestination);
      ctr.add(Event::BytesOutToDestination, p.ip_len);
      ctr.add(Event::IcmpErrorsTranslatedOut);
    } else {
      ctr.add(Event::PacketsOutToSource);
      ctr.add(Event::BytesOutToSource, p.ip_len);
      ctr.add(Event::IcmpErrorsTranslatedIn);
    }
    return Result{out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
  }

  Result handoff(uint16_t w) {
    ctr.add(Event::PacketsHandedOff);
    return Result{Verdict::Handoff, DropReason::Count, w};
  }

  // --- slow path ------------------------------------------------------------------------------

  Result slow_out(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up = false) {
    if (p.proto != kProtoTcp && p.proto != kProtoUdp && p.proto != kProtoIcmp) {
      return drop(DropReason::UnsupportedProtocol);
    }
    if (p.ttl <= 1) return time_exceeded(pkt, p, icmp_src_net, true);
    if (p.icmp == IcmpKind::Error) return icmp_error(pkt, p, true);
    if (p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest) {
      return drop(DropReason::IcmpUnsupportedType);
    }
    if (i == kNone && !looked_up)
      i = find(FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyInside, 0});
    if (i == kNone) {
      if (cfg.worker_count > 1) {
        const uint16_t w = owner_out(p.src, p.dst, p.sport, p.dport, p.proto);
        if (w != cfg.worker_id) return handoff(w);
      }
      if (p.proto == kProtoTcp && (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn) {
        return reset_to_sender(pkt, p);
      }
      policy::Decision d{};
      if (pol != nullptr) {
        d = pol->classify(to_host(p.src), to_host(p.dst), p.proto,
                          p.proto == kProtoIcmp ? uint16_t{0} : to_host16(p.dport));
        if (d.verdict == policy::Decision::Verdict::Deny) return deny_new(pkt, p, d);
        if (d.verdict == policy::Decision::Verdict::Allow) hit(d.rule_id);  // else: at the name
        if (d.verdict == policy::Decision::Verdict::NeedName && pend_free == kNone) {
          return drop(DropReason::PolicyPendingFull);
        }
      }
      DropReason reason = DropReason::Count;
      i = create_flow(p, reason);
      if (i == kNone) return drop(reason);
      if (d.verdict == policy::Decision::Verdict::NeedName) {
        const uint32_t c = pend_free;
        pend_free = pend[c].next_free;
        pend[c] = PendingCtx{i,
                             kNone,
                             0,
                             now,
                             load_be32(p.l4 + 4) + 1,
                             d.group_id,
                             0,
                             pol->inspects_tls(to_host16(p.dport))};
        pool[i].eim = c;
        pool[i].flags |= kFlowPending;
      }
    }
    Result r;
    forward(i, pkt, p, true, r);
    return r;
  }

  Result slow_in(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up = false) {
    if (p.proto != kProtoTcp && p.proto != kProtoUdp && p.proto != kProtoIcmp) {
      return drop(DropReason::UnsupportedProtocol);
    }
    if (p.icmp == IcmpKind::Error) return icmp_error(pkt, p, false);
    if (p.icmp == IcmpKind::EchoRequest) {  // ping to our public address: the kernel answers
      ctr.add(Event::PacketsToHost);
      return Result{Verdict::ToHost, DropReason::Count, 0};
    }
    if (p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoReply) {
      return drop(DropReason::IcmpUnsupportedType);
    }
    if (i == kNone && !looked_up)
      i = find(FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyOutside, 0});
    if (i == kNone) {
      if (cfg.worker_count > 1) {
        const uint16_t w = owner_in(p.src, p.dst, p.sport, p.dport, p.proto);
        if (w != cfg.worker_id) return handoff(w);
      }
      return drop(DropReason::NoFlowOutside);
    }
    if (p.ttl <= 1) return time_exceeded(pkt, p, p.dst, false);
    Result r;
    forward(i, pkt, p, false, r);
    return r;
  }

  // --- fragments ------------------------------------------------------------------------------

  static FragKey frag_key(const Parsed& p) { return FragKey{p.src, p.dst, p.frag_id, p.proto}; }
  uint32_t frag_slot(const FragKey& k) const {
    return static_cast<uint32_t>(
        mix64((uint64_t{k.src} << 32 | k.dst) ^ (uint64_t{k.id} << 8 | k.proto)));
  }
  FragCtx* frag_find(const FragKey& k) {
    const uint32_t h = frag_slot(k);
    for (uint32_t n = 0; n < 8; ++n) {
      FragCtx& c = frag[(h + n) & frag_mask];
      if (c.action != FragAction::Empty && c.key == k && static_cast<int32_t>(c.expires - now) > 0)
        return &c;
    }
    return nullptr;
  }
  FragCtx& frag_insert(const FragKey& k) {
    const uint32_t h = frag_slot(k);
    FragCtx* victim = &frag[h & frag_mask];
    for (uint32_t n = 0; n < 8; ++n) {
      FragCtx& c = frag[(h + n) & frag_mask];
      if (c.action == FragAction::Empty || c.key == k ||
          static_cast<int32_t>(c.expires - now) <= 0) {
        victim = &c;
        break;
      }
      if (static_cast<int32_t>(c.expires - victim->expires) < 0) victim = &c;
    }
    *victim = FragCtx{};
    victim->key = k;
    victim->expires = now + cfg.timeouts.fragment_ms;
    return *victim;
  }

  // Applies a context to a non-first fragment.
  Result frag_apply(const FragCtx& c, PacketBuf& pkt, Parsed& p) {
    switch (c.action) {
      case FragAction::Translate: {
        if (p.ttl <= 1) return drop(DropReason::TtlExpired);
        uint8_t* ip = p.l3;
        const uint16_t ttl_d = ttl_decrement(ip);
        store32(ip + (c.dir == Dir::Out ? 12 : 16), c.new_addr);
        store16(ip + 10, csum::apply(load16(ip + 10), csum::add(c.csum_ip, ttl_d)));
        ctr.add(Event::FragmentsTranslated);
        if (c.dir == Dir::Out) {
          ctr.add(Event::PacketsOutToDestination);
          ctr.add(Event::BytesOutToDestination, p.ip_len);
          return Result{Verdict::ToOutside, DropReason::Count, 0};
        }
        ctr.add(Event::PacketsOutToSource);
        ctr.add(Event::BytesOutToSource, p.ip_len);
        return Result{Verdict::ToInside, DropReason::Count, 0};
      }
      case FragAction::ToHost:  // e.g. a large ping to our public address: the kernel reassembles
        ctr.add(Event::PacketsToHost);
        return Result{Verdict::ToHost, DropReason::Count, 0};
      case FragAction::Handoff:
        pkt.meta.frag_sport = c.sport;
        pkt.meta.frag_dport = c.dport;
        pkt.meta.frag_ports_valid = true;
        return handoff(c.worker);
      default:
        return drop(DropReason::FragNoFirst);
    }
  }

  // A first fragment was processed with result r: remember what to do with the rest and release
  // any that arrived early.
  void frag_learn(const Parsed& p, Dir dir, const Result& r, uint32_t flow) {
    FragCtx& c = frag_insert(frag_key(p));
    c.dir = dir;
    c.sport = p.sport;
    c.dport = p.dport;
    if (r.verdict == Verdict::Handoff) {
      c.action = FragAction::Handoff;
      c.worker = r.worker;
    } else if (flow != kNone &&
               (r.verdict == Verdict::ToOutside || r.verdict == Verdict::ToInside)) {
      const Flow& f = pool[flow];
      c.action = FragAction::Translate;
      c.new_addr = dir == Dir::Out ? f.outside_ip : f.inside_ip;
      c.csum_ip = dir == Dir::Out ? address_delta(f) : csum::negate(address_delta(f));
    } else if (r.verdict == Verdict::ToHost) {
      c.action = FragAction::ToHost;
    } else {
      c.action = FragAction::Drop;
    }
    for (uint32_t h = 0; h < held.size() && held_count > 0; ++h) {
      Held& e = held[h];
      if (e.pkt == nullptr || !(e.key == c.key)) continue;
      Parsed hp;
      parse(*e.pkt, hp);
      Result hr = frag_apply(c, *e.pkt, hp);
      released[(rel_head + rel_count) % released.size()] = Released{e.pkt, hr};
      ++rel_count;
      e.pkt = nullptr;
      --held_count;
    }
  }

  Result fragment(PacketBuf& pkt, Parsed& p, Dir dir) {
    if (p.proto != kProtoTcp && p.proto != kProtoUdp && p.proto != kProtoIcmp) {
      return drop(DropReason::UnsupportedProtocol);
    }
    const bool out = dir == Dir::Out;
    if (p.first_fragment) {
      last_flow = kNone;
      Result r = out ? slow_out(pkt, p, kNone) : slow_in(pkt, p, kNone);
      const bool translated = r.verdict == Verdict::ToOutside || r.verdict == Verdict::ToInside;
      const uint32_t flow = translated ? last_flow : kNone;
      frag_learn(p, dir, r, flow);
      return r;
    }
    if (pkt.meta.frag_ports_valid) {  // handed off to us by the worker that saw the first fragment
      pkt.meta.frag_ports_valid = false;
      const FlowKey k{p.src,
                      p.dst,
                      pkt.meta.frag_sport,
                      pkt.meta.frag_dport,
                      p.proto,
                      static_cast<uint8_t>(out ? kKeyInside : kKeyOutside),
                      0};
      const uint32_t i = find(k);
      if (i == kNone) return drop(DropReason::FragNoFirst);
      if (p.ttl <= 1) return drop(DropReason::TtlExpired);
      Flow& f = pool[i];
      rewrite(f, p, out);
      account_forward(i, f, p, out);
      ctr.add(Event::FragmentsTranslated);
      return Result{out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
    }
    if (const FragCtx* c = frag_find(frag_key(p))) return frag_apply(*c, pkt, p);
    // Arrived before its first fragment: hold it a while.
    // Released packets not yet popped are still ours and share the release ring (frag_hold
    // entries): counting them keeps the ring from overrunning within one burst.
    if (held_count + rel_count >= held.size()) return drop(DropReason::FragBufferFull);
    for (Held& e : held) {
      if (e.pkt == nullptr) {
        e = Held{&pkt, frag_key(p), now};
        ++held_count;
        break;
      }
    }
    ctr.add(Event::FragmentsHeld);
    return Result{Verdict::Held, DropReason::Count, 0};
  }

  // --- per packet -----------------------------------------------------------------------------

  // looked_up: the fast path already searched this packet's key and found nothing.
  Result process_one(PacketBuf& pkt, Parsed& p, L3Kind kind, uint32_t i, bool looked_up = false) {
    if (kind == L3Kind::Arp) {
      ctr.add(Event::PacketsToHost);
      return Result{Verdict::ToHost, DropReason::Count, 0};
    }
    if (kind == L3Kind::Drop) return drop(p.reason);
    if (cfg.verify_ip_checksum && csum::fold(csum::partial(p.l3, p.ihl)) != 0xffff) {
      return drop(DropReason::IpBadChecksum);
    }
    const Dir dir = classify(p);
    switch (dir) {
      case Dir::Host:
        ctr.add(Event::PacketsToHost);
        return Result{Verdict::ToHost, DropReason::Count, 0};
      case Dir::NotNat:
        return drop(DropReason::NotForNat);
      case Dir::Out:
        ctr.add(Event::PacketsInFromSource);
        ctr.add(Event::BytesInFromSource, p.ip_len);
        break;
      case Dir::In:
        ctr.add(Event::PacketsInFromDestination);
        ctr.add(Event::BytesInFromDestination, p.ip_len);
        break;
    }
    if (p.fragment) return fragment(pkt, p, dir);
    return dir == Dir::Out ? slow_out(pkt, p, i, looked_up) : slow_in(pkt, p, i, looked_up);
  }

  // Inside-key hashes of flows created during the current burst (a 256-bit Bloom filter), so a
  // miss found by the fast path's early lookup is trusted unless this burst may have created it.
  std::array<uint64_t, 4> burst_created{};
  void burst_created_add(uint64_t h) { burst_created[(h >> 6) & 3] |= uint64_t{1} << (h & 63); }
  bool burst_created_maybe(uint64_t h) const {
    return (burst_created[(h >> 6) & 3] >> (h & 63)) & 1;
  }

  // Per-burst scratch, kept here so a burst costs no initialisation.
  Parsed ps[kMaxBurst];
  L3Kind kinds[kMaxBurst];
  FlowKey keys[kMaxBurst];
  uint64_t hashes[kMaxBurst];
  uint32_t cand[kMaxBurst];
  uint8_t fast[kMaxBurst];  // 0 = slow, 1 = out, 2 = in

  void process(PacketBuf* const* pkts, uint32_t n, Result* out) {
    // Stage 1: parse, classify, hash, prefetch the bucket.
    for (uint32_t k = 0; k < n; ++k) {
      kinds[k] = parse(*pkts[k], ps[k]);
      fast[k] = 0;
      const Parsed& p = ps[k];
      if (kinds[k] != L3Kind::Ipv4 || p.fragment || p.l4 == nullptr || cfg.verify_ip_checksum)
        continue;
      if (p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply)
        continue;
      if (is_outside(p.dst)) {
        if (p.icmp == IcmpKind::EchoRequest) continue;
        fast[k] = 2;
        keys[k] = FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyOutside, 0};
      } else if (is_inside(p.src) && !is_inside(p.dst) && !is_host(p.dst)) {
        if (p.icmp == IcmpKind::EchoReply) continue;
        fast[k] = 1;
        keys[k] = FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyInside, 0};
      } else {
        continue;
      }
      hashes[k] = hash_key(keys[k]);
      index.prefetch(hashes[k]);
    }
    // Stage 2: first tag match in the bucket; prefetch the flow record.
    for (uint32_t k = 0; k < n; ++k) {
      cand[k] = kNone;
      if (!fast[k]) continue;
      const uint32_t v = index.find(hashes[k], [](uint32_t) { return true; });
      if (v != kNone) {
        cand[k] = v;
        pool.prefetch(v >> 2);
      }
    }
    // Stage 3: verify and rewrite; everything else goes to the slow path.
    const uint64_t created0 = ctr.get(Event::FlowsCreated);
    burst_created = {};
    for (uint32_t k = 0; k < n; ++k) {
      Parsed& p = ps[k];
      PacketBuf& pkt = *pkts[k];
      if (fast[k]) {
        const bool is_out = fast[k] == 1;
        uint32_t i = kNone;
        if (cand[k] != kNone) {
          const uint32_t v = cand[k];
          const Flow& f = pool[v >> 2];
          // The candidate was read before earlier packets of this burst ran: re-check liveness.
          const bool match = (v & 3) == keys[k].kind && (f.flags & kFlowLive) &&
                             (is_out ? f.inside_key() == keys[k] : f.outside_key() == keys[k]);
          i = match ? (v >> 2) : find(keys[k], hashes[k]);
        }
        if (i != kNone) {
          if (is_out) {
            ctr.add(Event::PacketsInFromSource);
            ctr.add(Event::BytesInFromSource, p.ip_len);
          } else {
            ctr.add(Event::PacketsInFromDestination);
            ctr.add(Event::BytesInFromDestination, p.ip_len);
          }
          // Common case inline: no TCP control flags (tcp_flags is 0 for UDP/ICMP), TTL fine.
          if (p.ttl > 1 && !(p.tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) &&
              !(pool[i].flags & (kFlowPending | kFlowDenied))) {
            Flow& f = pool[i];
            rewrite(f, p, is_out);
            account_forward(i, f, p, is_out);
            out[k] = Result{is_out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
            continue;
          }
          if (forward(i, pkt, p, is_out, out[k])) continue;
          out[k] = is_out ? slow_out(pkt, p, i) : slow_in(pkt, p, i);
          continue;
        }
        // The miss is final unless an earlier packet of this burst may have created this flow.
        const bool final_miss =
            is_out ? !burst_created_maybe(hashes[k]) : ctr.get(Event::FlowsCreated) == created0;
        out[k] = process_one(pkt, p, kinds[k], kNone, final_miss);
        continue;
      }
      out[k] = process_one(pkt, p, kinds[k], kNone);
    }
  }
};

Engine::Engine(const EngineConfig& cfg) {
  const std::string err = validate(cfg);
  if (!err.empty()) throw std::invalid_argument("engine config: " + err);
  impl_ = std::make_unique<Impl>(cfg);
}

Engine::~Engine() = default;

std::string Engine::reconfigure(const EngineConfig& next) {
  if (std::string err = validate(next); !err.empty()) return err;
  if (std::string field = restart_field(impl_->cfg, next); !field.empty()) {
    return field + " cannot change on a running engine (restart needed)";
  }
  const bool new_policy = next.policy != impl_->cfg.policy;
  // Kept alive until the new policy has taken over the old one's counters and pending flows.
  const std::shared_ptr<const policy::CompiledPolicy> previous = impl_->cfg.policy;
  impl_->cfg = next;
  impl_->apply_live_fields(previous.get());
  if (new_policy && impl_->pol != nullptr && impl_->pol->config().recheck_on_reload) {
    impl_->recheck_flows();
  }
  return {};
}

const EngineConfig& Engine::config() const { return impl_->cfg; }

void Engine::process_burst(PacketBuf* const* pkts, uint32_t n, uint64_t now_ns, Result* out) {
  impl_->now = static_cast<uint32_t>(now_ns / 1000000);
  for (uint32_t done = 0; done < n; done += kMaxBurst) {
    impl_->process(pkts + done, std::min<uint32_t>(kMaxBurst, n - done), out + done);
  }
  impl_->expire_flows(impl_->cfg.expire_per_burst);
}

uint32_t Engine::pop_released(PacketBuf** pkts, Result* out, uint32_t max, uint64_t now_ns) {
  Impl& m = *impl_;
  m.now = static_cast<uint32_t>(now_ns / 1000000);
  uint32_t n = 0;
  while (n < max && m.rel_count > 0) {
    const Impl::Released& r = m.released[m.rel_head];
    pkts[n] = r.pkt;
    out[n] = r.res;
    ++n;
    m.rel_head = static_cast<uint32_t>((m.rel_head + 1) % m.released.size());
    --m.rel_count;
  }
  for (uint32_t h = 0; h < m.held.size() && n < max && m.held_count > 0; ++h) {
    Impl::Held& e = m.held[h];
    if (e.pkt == nullptr || m.now - e.since < m.cfg.timeouts.fragment_ms) continue;
    pkts[n] = e.pkt;
    out[n] = m.drop(DropReason::FragTimeout);
    ++n;
    e.pkt = nullptr;
    --m.held_count;
  }
  return n;
}

uint32_t Engine::expire(uint64_t now_ns, uint32_t budget) {
  impl_->now = static_cast<uint32_t>(now_ns / 1000000);
  return impl_->expire_flows(budget);
}

const Counters& Engine::counters() const { return impl_->ctr; }

EngineStats Engine::stats() const {
  EngineStats s;
  s.counters = impl_->ctr;
  s.active_flows = impl_->pool.used();
  s.max_flows = impl_->pool.capacity();
  s.memory_bytes = memory_bytes();
  return s;
}

uint64_t Engine::active_flows() const { return impl_->pool.used(); }

std::vector<std::pair<std::string_view, uint64_t>> named_counters(const EngineStats& s) {
  // Drop names are prefixed so they cannot collide with event names.
  static const std::array<std::string, kDropReasonCount> drop_names = [] {
    std::array<std::string, kDropReasonCount> n;
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
      n[i] = "drop." + std::string(kDropReasonNames[i]);
    return n;
  }();
  std::vector<std::pair<std::string_view, uint64_t>> out;
  out.reserve(1 + kEventCount + kDropReasonCount);
  out.emplace_back("ActiveConnectionCount", s.active_flows);
  for (std::size_t i = 0; i < kEventCount; ++i)
    out.emplace_back(kEventNames[i], s.counters.events[i]);
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    out.emplace_back(drop_names[i], s.counters.drops[i]);
  return out;
}

uint64_t Engine::memory_bytes() const {
  const Impl& m = *impl_;
  return m.pool.memory_bytes() + m.index.memory_bytes() + m.eim.size() * sizeof(Impl::EimMap) +
         m.udp_port_bitmap.size() * 8 + m.frag.size() * sizeof(Impl::FragCtx) +
         m.held.size() * (sizeof(Impl::Held) + sizeof(Impl::Released));
}

uint32_t Engine::drain_denials(DenyRecord* out, uint32_t max) {
  Impl& m = *impl_;
  const uint32_t n = std::min(max, m.deny_count);
  for (uint32_t k = 0; k < n; ++k) out[k] = m.deny_ring[(m.deny_head + k) & (Impl::kDenyRing - 1)];
  m.deny_head = (m.deny_head + n) & (Impl::kDenyRing - 1);
  m.deny_count -= n;
  return n;
}

uint64_t Engine::denials_lost() const { return impl_->deny_lost; }

uint32_t Engine::spares_wanted() const {
  return Impl::kSpareMax - static_cast<uint32_t>(impl_->spares.size());
}

void Engine::give_spare(PacketBuf* buf) {
  if (impl_->spares.size() < Impl::kSpareMax) impl_->spares.push_back(buf);
}

uint32_t Engine::take_spares(PacketBuf** out, uint32_t max) {
  uint32_t n = 0;
  while (n < max && !impl_->spares.empty()) {
    out[n++] = impl_->spares.back();
    impl_->spares.pop_back();
  }
  return n;
}

const std::vector<uint64_t>& Engine::rule_hits() const { return impl_->rule_hits; }

void Engine::set_sync(bool on, uint32_t refresh_s) {
  impl_->sync_on = on;
  impl_->sync_refresh_ms = std::max<uint32_t>(1, refresh_s) * 1000;
  if (!on) impl_->sync_count = 0;
}

bool Engine::sync_enabled() const { return impl_->sync_on; }

uint32_t Engine::drain_sync(SyncRecord* out, uint32_t max) {
  Impl& m = *impl_;
  const uint32_t n = std::min(max, m.sync_count);
  for (uint32_t k = 0; k < n; ++k) out[k] = m.sync_ring[(m.sync_head + k) & (Impl::kSyncRing - 1)];
  m.sync_head = (m.sync_head + n) & (Impl::kSyncRing - 1);
  m.sync_count -= n;
  return n;
}

uint64_t Engine::sync_overflows() const { return impl_->sync_lost; }

uint32_t Engine::snapshot_sync(uint32_t* cursor, SyncRecord* out, uint32_t max,
                               uint32_t scan_budget, uint64_t now_ns) const {
  const Impl& m = *impl_;
  const auto now = static_cast<uint32_t>(now_ns / 1000000);
  uint32_t n = 0;
  uint32_t i = *cursor;
  for (const uint32_t stop = std::min(m.pool.capacity(), i + scan_budget); i < stop && n < max;
       ++i) {
    const Flow& f = m.pool[i];
    if (!(f.flags & kFlowLive)) continue;
    SyncRecord r = m.sync_record(f, SyncKind::Create);
    const uint32_t idle = now - f.last_seen;
    const uint32_t tmo = m.tmo_ms[f.tclass];
    r.remaining_ms = idle >= tmo ? 0 : tmo - idle;
    out[n++] = r;
  }
  *cursor = i;
  return n;
}

uint32_t Engine::snapshot_end() const { return impl_->pool.capacity(); }

std::string Engine::apply_sync(const SyncRecord& rec, uint64_t now_ns) {
  impl_->now = static_cast<uint32_t>(now_ns / 1000000);
  return impl_->apply_sync(rec);
}

void Engine::for_each_flow(const std::function<void(const FlowView&)>& fn, uint64_t now_ns) const {
  const Impl& m = *impl_;
  const auto now = static_cast<uint32_t>(now_ns / 1000000);
  for (uint32_t i = 0; i < m.pool.capacity(); ++i) {
    const Flow& f = m.pool[i];
    if (!(f.flags & kFlowLive)) continue;
    FlowView v;
    v.proto = f.proto;
    v.inside_ip = to_host(f.inside_ip);
    v.inside_port = to_host16(f.inside_port);
    v.remote_ip = to_host(f.remote_ip);
    v.remote_port = to_host16(f.remote_port);
    v.outside_ip = to_host(f.outside_ip);
    v.outside_port = to_host16(f.outside_port);
    v.tcp_state = f.proto == kProtoTcp ? tcp_state_of(f.tcp) : TcpState::None;
    v.idle_ms = now - f.last_seen;
    v.bytes_out = f.bytes_out;
    v.bytes_in = f.bytes_in;
    v.tcp_bits = f.tcp;
    const uint32_t tmo = m.tmo_ms[f.tclass];
    v.remaining_ms = now - f.last_seen >= tmo ? 0 : tmo - (now - f.last_seen);
    fn(v);
  }
}

uint16_t Engine::rss_worker(uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                            uint8_t proto) const {
  return impl_->owner_in(to_net(src_ip), to_net(dst_ip), to_net16(sport), to_net16(dport), proto);
}

}  // namespace eipgate::engine

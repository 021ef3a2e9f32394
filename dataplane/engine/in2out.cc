// The inside -> outside slow path: checks, flow creation (the policy decision, port allocation),
// MSS clamping.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

// Creates a flow for an inside -> outside packet. Returns kNone (reason set) on failure.
uint32_t Engine::Impl::create_flow(const Parsed& p, DropReason& reason, uint32_t rule) {
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
  if (eim_udp(p.proto) ? eim_idx == kNone : !pick_port(p.proto, p.dst, out_ip, p.dport, out_port)) {
    counters.add(Event::ErrorPortAllocation);
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
  if (p.proto == kProtoTcp) ++tcp_flows;
  counters.add(Event::FlowsCreated);
  counters.add(Event::ConnectionAttemptCount);
  if (sync_on) sync_emit(f, SyncKind::Create);
  if (txlog_on) txlog_open(i, rule, false);
  return i;
}

// MSS clamping on SYN segments (slow: SYNs only).
void Engine::Impl::clamp_mss(uint8_t* tcp, uint16_t l4len) {
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
        counters.add(Event::MssClamped);
      }
      return;
    }
    i = static_cast<uint16_t>(i + len);
  }
}

Result Engine::Impl::slow_out(PacketBuf& pkt, Parsed& p, uint32_t i, bool looked_up) {
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
    if (active_policy != nullptr) {
      d = active_policy->classify(to_host(p.src), to_host(p.dst), p.proto,
                                  p.proto == kProtoIcmp ? uint16_t{0} : to_host16(p.dport));
      if (d.verdict == policy::Decision::Verdict::Deny) return deny_new(pkt, p, d);
      if (d.verdict == policy::Decision::Verdict::Allow) hit(d.rule_id);  // else: at the name
      if (d.verdict == policy::Decision::Verdict::NeedName && pending_free == kNone) {
        return drop(DropReason::PolicyPendingFull);
      }
    }
    DropReason reason = DropReason::Count;
    const bool decided = active_policy != nullptr && d.verdict == policy::Decision::Verdict::Allow;
    i = create_flow(p, reason, decided ? d.rule_id : kTxNoRule);
    if (i == kNone) return drop(reason);
    if (d.verdict == policy::Decision::Verdict::NeedName) {
      const uint32_t c = pending_free;
      pending_free = pending[c].next_free;
      pending[c] = PendingCtx{i,
                              kNone,
                              0,
                              now,
                              be::get32(p.l4 + 4) + 1,
                              d.group_id,
                              0,
                              active_policy->inspects_tls(to_host16(p.dport))};
      pool[i].eim = c;
      pool[i].flags |= kFlowPending;
    }
  }
  Result r;
  forward(i, pkt, p, true, r);
  return r;
}

}  // namespace eipgate::engine

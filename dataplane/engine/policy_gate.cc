// The egress policy in the engine: decisions at flow creation, pending connections waiting for
// their SNI/Host, the denial log, per-rule hits, and what a reload does to them.
#include <string>
#include <unordered_map>

#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

// A new policy (or the first). Rule hit counters follow rule names: a kept rule keeps its count,
// a new one starts at 0. Pending connections keep their context and bytes (re-sized to the new
// byte budget) and are judged again by the new policy (reclassify_pending): a reload never lets
// a waiting connection through unjudged, and never judges it by another group's rules.
void Engine::Impl::apply_policy(const policy::CompiledPolicy* previous) {
  const policy::CompiledPolicy* next = cfg.policy.get();
  active_policy = next && !next->empty() ? next : nullptr;
  if (next != previous) remap_rule_hits(previous, next);
  if (next != previous && previous != nullptr && active_policy != nullptr) reclassify_pending();
  const uint32_t bytes = active_policy ? active_policy->config().name_max_bytes : 0;
  const uint32_t count = active_policy ? cfg.policy_pending_max : 0;
  if (bytes != pending_capacity || count != pending.size()) resize_pending(count, bytes);
}

void Engine::Impl::remap_rule_hits(const policy::CompiledPolicy* previous,
                                   const policy::CompiledPolicy* next) {
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
void Engine::Impl::resize_pending(uint32_t count, uint32_t bytes) {
  std::vector<PendingCtx> next(count);
  std::vector<uint8_t> next_buf(size_t{count} * bytes, 0);
  uint32_t used = 0;
  for (uint32_t k = 0; k < pending.size(); ++k) {
    PendingCtx c = pending[k];
    if (c.flow == kNone) continue;
    Flow& f = pool[c.flow];
    f.flags &= static_cast<uint8_t>(~kFlowPending);
    f.eim = kNone;
    if (active_policy == nullptr) continue;  // no policy: allowed
    if (used == count) {
      deny_flow(c.flow, active_policy->no_name(c.group), {});
      continue;
    }
    c.len = std::min(c.len, bytes);
    std::memcpy(next_buf.data() + size_t{used} * bytes,
                pending_data.data() + size_t{k} * pending_capacity, c.len);
    next[used] = c;
    f.flags |= kFlowPending;
    f.eim = used++;
  }
  pending = std::move(next);
  pending_data = std::move(next_buf);
  pending_capacity = bytes;
  pending_free = kNone;
  for (uint32_t k = count; k-- > used;) {
    pending[k].next_free = pending_free;
    pending_free = k;
  }
}

// Pending connections under a new policy: classified again from their addresses. Still waiting
// for a name: the new group (by the new policy's own ids) and inspection; else decided now.
void Engine::Impl::reclassify_pending() {
  for (uint32_t k = 0; k < pending.size(); ++k) {
    PendingCtx& c = pending[k];
    if (c.flow == kNone) continue;
    const uint32_t i = c.flow;
    const Flow& f = pool[i];
    const uint16_t dport = to_host16(f.remote_port);
    const policy::Decision d =
        active_policy->classify(to_host(f.inside_ip), to_host(f.remote_ip), f.proto, dport);
    if (d.verdict == policy::Decision::Verdict::NeedName) {
      c.group = d.group_id;
      c.tls = active_policy->inspects_tls(dport);
      continue;
    }
    hit(d.rule_id);
    txlog_rule(i, d.rule_id);
    end_pending(i);
    if (d.verdict == policy::Decision::Verdict::Deny) deny_flow(i, d, {});
  }
}

// The flow leaves the pending state (decided).
void Engine::Impl::end_pending(uint32_t i) {
  Flow& f = pool[i];
  pending_release(f.eim);
  f.eim = kNone;
  f.flags &= static_cast<uint8_t>(~kFlowPending);
}

// A decided flow the policy refuses: logged; every later packet of it is answered with a RST
// (both ways) until it expires.
void Engine::Impl::deny_flow(uint32_t i, const policy::Decision& d, std::string_view name) {
  Flow& f = pool[i];
  record_denial(f.inside_ip, f.remote_ip, f.inside_port, f.remote_port, f.proto, d, name);
  f.flags |= kFlowDenied;
  f.tcp |= kRstSeen;
  pool.lru_requeue(i, tcp_class(f.tcp), now);
}

void Engine::Impl::record_denial(const Parsed& p, const policy::Decision& d,
                                 std::string_view name) {
  record_denial(p.src, p.dst, p.sport, p.dport, p.proto, d, name);
}

// Addresses and ports in network order.
void Engine::Impl::record_denial(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                                 uint8_t proto, const policy::Decision& d, std::string_view name) {
  DenyRecord* slot = denials.push_slot();
  if (slot == nullptr) {
    ++denials_lost;
    return;
  }
  DenyRecord& r = *slot;
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

// A re-check after a reload (recheck_on_reload): flows the new policy denies are closed.
void Engine::Impl::recheck_flows() {
  for (uint32_t i = 0; i < pool.capacity(); ++i) {
    const Flow& f = pool[i];
    if (!(f.flags & kFlowLive) || (f.flags & (kFlowPending | kFlowDenied))) continue;
    const policy::Decision d = active_policy->classify(to_host(f.inside_ip), to_host(f.remote_ip),
                                                       f.proto, to_host16(f.remote_port));
    if (d.verdict == policy::Decision::Verdict::Deny) {
      delete_flow(i, TxEnd::Policy);
      counters.add(Event::PolicyFlowsRechecked);
    }
  }
}

// A new flow the policy denies: dropped, or (reject) answered with a RST / ICMP prohibited.
// True when p's tuple was refused within its protocol's idle time (a retransmission); else
// remembers it (replacing the set's oldest entry).
bool Engine::Impl::denied_again(const Parsed& p) {
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
      const bool again = now - e.last < timeout_ms[cls];
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
Result Engine::Impl::deny_new(PacketBuf& pkt, const Parsed& p, const policy::Decision& d,
                              std::string_view name) {
  if (denied_again(p)) {
    counters.add(Event::PolicyDeniedRepeats);
  } else {
    hit(d.rule_id);
    record_denial(p, d, name);
  }
  counters.drop(DropReason::PolicyDenied);
  if (d.deny_action == policy::DenyAction::Reject &&
      (p.proto == kProtoTcp ? build_rst(pkt, p) : build_admin_prohibited(pkt, p))) {
    counters.add(Event::PolicyRejectsSent);
    return Result{Verdict::ToInside, DropReason::PolicyDenied, 0};
  }
  return Result{Verdict::Drop, DropReason::PolicyDenied, 0};
}

// Pending (host-name rules) and denied flows; called from forward() for flagged flows only.
// Returns true when r holds the final result, false to translate the packet normally.
// While a flow is pending no payload passes either way (the handshake and pure ACKs do): the
// client's segments are copied for the parser and dropped, so the client retransmits what the
// server has not acknowledged once the name has allowed the connection.
bool Engine::Impl::policy_gate(uint32_t i, PacketBuf& pkt, const Parsed& p, bool out, Result& r) {
  Flow& f = pool[i];
  if (f.flags & kFlowDenied) {
    // Inside: RST to the client. Outside: RST back to the server (from our outside tuple, as
    // the segment's own addresses say): the connection ends both ways.
    if (build_rst(pkt, p)) {
      counters.add(Event::PolicyRejectsSent);
      r = Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::PolicyDenied, 0};
    } else {
      r = drop(DropReason::PolicyDenied);
    }
    return true;
  }
  if (p.proto != kProtoTcp || active_policy == nullptr) return false;
  PendingCtx& c = pending[f.eim];
  const auto& policy_cfg = active_policy->config();
  if (!out && (p.tcp_flags & kTcpSyn)) c.since = now;  // the handshake: the clock starts
  const bool timed_out =
      now - c.since > policy_cfg.name_timeout_ms && !(p.tcp_flags & (kTcpSyn | kTcpRst));
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
    const uint32_t skip = c.next_seq - be::get32(p.l4 + 4);
    if (skip >= payload) {
      r = drop(DropReason::PolicyPendingHeld);
      return true;
    }
    uint8_t* buf = pending_data.data() + size_t{f.eim} * pending_capacity;
    const uint32_t take = std::min(payload - skip, pending_capacity - c.len);
    std::memcpy(buf + c.len, p.l4 + doff + skip, take);
    c.len += take;
    c.next_seq += payload - skip;
    ++c.packets;
    st = c.tls ? policy::parse_tls_sni(buf, c.len, &name)
               : policy::parse_http_host(buf, c.len, &name);
    if (st == policy::NameStatus::NeedMore && c.len < pending_capacity &&
        c.packets < policy_cfg.name_max_packets) {
      r = drop(DropReason::PolicyPendingHeld);  // the name is further on
      return true;
    }
  }
  counters.add(Event::PolicyNamesChecked);
  const policy::Decision d = st == policy::NameStatus::Found
                                 ? active_policy->classify_name(c.group, name, to_host(f.remote_ip),
                                                                f.proto, to_host16(f.remote_port))
                                 : active_policy->no_name(c.group);
  hit(d.rule_id);
  txlog_rule(i, d.rule_id);
  end_pending(i);
  if (d.verdict == policy::Decision::Verdict::Allow) return false;
  // Refused: the server gets a RST from our outside tuple (in a spare buffer, when the caller
  // lent one; else at its next segment), and this segment becomes its sender's RST.
  deny_flow(i, d, name);
  if (out) rst_to_server(f, p);
  counters.drop(DropReason::PolicyDenied);
  if (build_rst(pkt, p)) {
    counters.add(Event::PolicyRejectsSent);
    r = Result{out ? Verdict::ToInside : Verdict::ToOutside, DropReason::PolicyDenied, 0};
  } else {
    r = Result{Verdict::Drop, DropReason::PolicyDenied, 0};
  }
  return true;
}

}  // namespace eipgate::engine

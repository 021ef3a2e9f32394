// Flow life cycle (delete, evict, idle expiry) and connection-table sync with the HA peer
// (records out, peer records in, snapshots).
#include <string>

#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

void Engine::Impl::delete_flow(uint32_t i, TxEnd why) {
  Flow& f = pool[i];
  if (sync_on) sync_emit(f, SyncKind::Delete);
  withdraw(f);
  if (txlog_on) txlog_emit(i, TxEvent::Close, why, false);
  index.erase(hash_key(f.inside_key()), (i << 2) | kKeyInside);
  index.erase(hash_key(f.outside_key()), (i << 2) | kKeyOutside);
  pool.lru_remove(i);
  if (f.proto == kProtoTcp) --tcp_flows;
  if (f.flags & kFlowPending) {
    pending_release(f.eim);
  } else if (f.eim != kNone) {
    eim_release(f.eim);
  }
  pool.free(i);
}

bool Engine::Impl::evict_one() {
  for (uint8_t c = 0; c < kClassCount; ++c) {
    const uint32_t i = pool.lru_head(c);
    if (i != kNone) {
      delete_flow(i, TxEnd::Evicted);
      counters.add(Event::FlowsEvicted);
      return true;
    }
  }
  return false;
}

uint32_t Engine::Impl::expire_flows(uint32_t budget) {
  uint32_t removed = 0;
  uint32_t examined = 0;
  for (uint8_t n = 0; n < kClassCount && examined < budget; ++n) {
    const uint8_t c = static_cast<uint8_t>((expire_class + n) % kClassCount);
    while (examined < budget) {
      const uint32_t i = pool.lru_head(c);
      if (i == kNone) break;
      ++examined;
      Flow& f = pool[i];
      if ((f.flags & kFlowOffloaded) && now - f.last_seen >= timeout_ms[c]) {
        offload_take(i, f);                   // the fast path may have carried it since
        if (pool.lru_head(c) != i) continue;  // it was active: requeued, look at the next
      }
      if (now - f.last_seen >= timeout_ms[c]) {
        delete_flow(i, c != kClassTcpClosing ? TxEnd::Idle
                       : (f.tcp & kRstSeen)  ? TxEnd::Rst
                                             : TxEnd::Fin);
        // IdleTimeoutCount (NAT Gateway) counts connections that went idle without closing;
        // a TCP flow that closed (both FINs or a RST) ends its time-wait as flows_closed.
        counters.add(c == kClassTcpClosing ? Event::FlowsClosed : Event::IdleTimeoutCount);
        counters.add(Event::FlowsExpired);
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

// Standby side of the sync: install or refresh a peer's flow with its outside tuple.
SyncRefusal Engine::Impl::apply_sync(const SyncRecord& r) {
  if (r.proto != kProtoTcp && r.proto != kProtoUdp && r.proto != kProtoIcmp) {
    return SyncRefusal::protocol_not_translated;
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
    if (i != kNone) delete_flow(i, TxEnd::Sync);
    return SyncRefusal::none;
  }
  if (r.endpoint_independent || eim_udp(r.proto)) {
    return SyncRefusal::endpoint_independent;
  }
  const uint8_t cls = r.proto == kProtoTcp    ? tcp_class(r.tcp_bits)
                      : r.proto == kProtoIcmp ? uint8_t{kClassIcmp}
                                              : uint8_t{kClassUdp};
  const uint32_t tmo = timeout_ms[cls];
  const uint32_t remaining = std::min(r.remaining_ms, tmo);
  if (i != kNone && (pool[i].outside_ip != to_net(r.outside_ip) ||
                     pool[i].outside_port != to_net16(r.outside_port))) {
    delete_flow(i, TxEnd::Sync);  // the peer's mapping wins: it is the one the remote host knows
    i = kNone;
  }
  if (i == kNone) {
    if (!is_outside(to_net(r.outside_ip))) return SyncRefusal::outside_address_not_ours;
    if (r.proto != kProtoIcmp && (r.outside_port < cfg.port_min || r.outside_port > cfg.port_max)) {
      return SyncRefusal::outside_port_out_of_range;
    }
    const FlowKey out_key{to_net(r.remote_ip),
                          to_net(r.outside_ip),
                          to_net16(r.remote_port),
                          to_net16(r.outside_port),
                          r.proto,
                          kKeyOutside,
                          0};
    if (find(out_key) != kNone) return SyncRefusal::outside_tuple_in_use;
    if (pool.used() >= pool.capacity() && !evict_one()) return SyncRefusal::flow_table_full;
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
      return SyncRefusal::flow_index_full;
    }
    if (!index.insert(hash_key(f.outside_key()), (i << 2) | kKeyOutside)) {
      index.erase(hash_key(f.inside_key()), (i << 2) | kKeyInside);
      pool.free(i);
      return SyncRefusal::flow_index_full;
    }
    f.tcp = r.tcp_bits;
    f.last_seen = now - (tmo - remaining);
    pool.lru_push(i, cls, now);
    if (f.proto == kProtoTcp) ++tcp_flows;
    counters.add(Event::FlowsSynced);
    if (txlog_on) txlog_open(i, kTxNoRule, true);
    maybe_offload(f);  // a standby's fast path carries the flow as soon as traffic moves here
    return SyncRefusal::none;
  }
  Flow& f = pool[i];
  f.tcp = r.tcp_bits;
  f.last_seen = now - (tmo - remaining);
  pool.lru_requeue(i, cls, now);
  if (f.tcp & (kFinIn | kFinOut | kRstSeen)) withdraw(f);
  maybe_offload(f);
  return SyncRefusal::none;
}

bool Engine::sync_enabled() const { return impl_->sync_on; }

uint32_t Engine::drain_sync(SyncRecord* out, uint32_t max) {
  return impl_->sync_records.pop_into(out, max);
}

uint64_t Engine::sync_overflows() const { return impl_->sync_overflow_count; }

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
    const uint32_t tmo = m.timeout_ms[f.tclass];
    r.remaining_ms = idle >= tmo ? 0 : tmo - idle;
    out[n++] = r;
  }
  *cursor = i;
  return n;
}

uint32_t Engine::snapshot_end() const { return impl_->pool.capacity(); }

SyncRefusal Engine::apply_sync(const SyncRecord& rec, uint64_t now_ns) {
  impl_->now = static_cast<uint32_t>(now_ns / 1000000);
  return impl_->apply_sync(rec);
}

std::string_view sync_refusal_name(SyncRefusal r) {
  switch (r) {
    case SyncRefusal::none:
      return "none";
#define EIPGATE_SYNC_REFUSAL_NAME(name, text) \
  case SyncRefusal::name:                     \
    return #name;
      EIPGATE_SYNC_REFUSALS(EIPGATE_SYNC_REFUSAL_NAME)
#undef EIPGATE_SYNC_REFUSAL_NAME
    case SyncRefusal::count:
      break;
  }
  return "unknown";
}

std::string_view sync_refusal_text(SyncRefusal r) {
  switch (r) {
    case SyncRefusal::none:
      return "applied";
#define EIPGATE_SYNC_REFUSAL_TEXT(name, text) \
  case SyncRefusal::name:                     \
    return text;
      EIPGATE_SYNC_REFUSALS(EIPGATE_SYNC_REFUSAL_TEXT)
#undef EIPGATE_SYNC_REFUSAL_TEXT
    case SyncRefusal::count:
      break;
  }
  return "unknown";
}

}  // namespace eipgate::engine

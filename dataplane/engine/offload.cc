// The kernel fast path seen from the engine: which flows it may carry (offload and withdraw
// records, decided in engine_impl.h where the flow changes), flushes, and the counts the fast path
// leaves in the shared OffloadCounters array, taken in the expiry and harvest passes so that idle
// expiry, counters and HA sync stay exact.
#include <algorithm>
#include <atomic>

#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

void Engine::Impl::offload_emit(const Flow& f, OffloadKind kind) {
  OffloadRecord* r = offload_records.push_slot();
  if (r == nullptr) {
    ++offload_overflow_count;
    offload_stalled = true;
    return;
  }
  r->kind = kind;
  r->proto = f.proto;
  r->inside_ip = to_host(f.inside_ip);
  r->remote_ip = to_host(f.remote_ip);
  r->outside_ip = to_host(f.outside_ip);
  r->inside_port = to_host16(f.inside_port);
  r->remote_port = to_host16(f.remote_port);
  r->outside_port = to_host16(f.outside_port);
  r->slot = offload_slot_base + slot_of(f);
}

bool Engine::Impl::offloadable(const Flow& f) {
  if (f.flags & (kFlowPending | kFlowDenied | kFlowOffloaded)) return false;
  if (f.proto == kProtoTcp) {
    return (f.tcp & (kSynIn | kSynOut | kFinIn | kFinOut | kRstSeen)) == (kSynIn | kSynOut);
  }
  return (f.flags & kFlowReplySeen) != 0;
}

void Engine::Impl::maybe_offload(Flow& f) {
  if (!offload_on || offload_stalled || !offloadable(f)) return;
  const uint32_t i = slot_of(f);
  if (i >= offload_slots) return;
  // The slot may hold a late count of the record's previous flow: start from zero.
  for (OffloadCounters* c : {&offload_out[i], &offload_in[i]}) {
    std::atomic_ref<uint64_t>(c->packets_out).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(c->bytes_out).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(c->packets_in).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(c->bytes_in).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(c->last_seen_ns).store(0, std::memory_order_relaxed);
  }
  offload_emit(f, OffloadKind::Offload);
  if (offload_stalled) return;
  f.flags |= kFlowOffloaded;
  ++offloaded_count;
  counters.add(Event::FlowsOffloaded);
}

void Engine::Impl::withdraw(Flow& f) {
  if (!(f.flags & kFlowOffloaded)) return;
  offload_take(slot_of(f), f);  // the last counts before the entry goes
  f.flags &= static_cast<uint8_t>(~kFlowOffloaded);
  --offloaded_count;
  counters.add(Event::FlowsWithdrawn);
  offload_emit(f, OffloadKind::Withdraw);  // lost on overflow: the owed Flush covers it
}

void Engine::Impl::offload_flush() {
  for (uint32_t i = 0; i < pool.capacity(); ++i) {
    Flow& f = pool[i];
    if ((f.flags & kFlowLive) && (f.flags & kFlowOffloaded)) {
      f.flags &= static_cast<uint8_t>(~kFlowOffloaded);
    }
  }
  offloaded_count = 0;
  offload_records.clear();
  offload_stalled = false;
  OffloadRecord* r = offload_records.push_slot();  // the ring is empty: never null
  r->kind = OffloadKind::Flush;
  counters.add(Event::OffloadFlushes);
}

void Engine::Impl::offload_take(uint32_t i, Flow& f) {
  OffloadCounters& o = offload_out[i];
  OffloadCounters& n = offload_in[i];
  const auto take = [](uint64_t& v) {
    return std::atomic_ref<uint64_t>(v).exchange(0, std::memory_order_relaxed);
  };
  const uint64_t packets_out = take(o.packets_out);
  const uint64_t bytes_out = take(o.bytes_out);
  const uint64_t packets_in = take(n.packets_in);
  const uint64_t bytes_in = take(n.bytes_in);
  const uint64_t seen_ns =
      std::max(std::atomic_ref<uint64_t>(o.last_seen_ns).load(std::memory_order_relaxed),
               std::atomic_ref<uint64_t>(n.last_seen_ns).load(std::memory_order_relaxed));
  if (packets_out | packets_in) {
    f.bytes_out += bytes_out;
    f.bytes_in += bytes_in;
    counters.add(Event::PacketsInFromSource, packets_out);
    counters.add(Event::BytesInFromSource, bytes_out);
    counters.add(Event::PacketsOutToDestination, packets_out);
    counters.add(Event::BytesOutToDestination, bytes_out);
    counters.add(Event::PacketsInFromDestination, packets_in);
    counters.add(Event::BytesInFromDestination, bytes_in);
    counters.add(Event::PacketsOutToSource, packets_in);
    counters.add(Event::BytesOutToSource, bytes_in);
    counters.add(Event::FastPathPackets, packets_out + packets_in);
  }
  if (seen_ns == 0) return;
  const auto seen = static_cast<uint32_t>(seen_ns / 1000000);
  // Modulo 2^32 ms, as everywhere in the engine: later than the last packet the engine knows of,
  // and not ahead of the engine's clock (a stamp from another CPU may be a little ahead; one far
  // ahead is not trusted).
  if (static_cast<int32_t>(seen - f.last_seen) <= 0) return;
  if (static_cast<int32_t>(seen - now) > static_cast<int32_t>(kLruRequeueMs)) return;
  f.last_seen = static_cast<int32_t>(seen - now) > 0 ? now : seen;
  if (now - f.lru_time >= kLruRequeueMs) {
    if (sync_on && f.lru_time / sync_refresh_ms != now / sync_refresh_ms) {
      sync_emit(f, SyncKind::Refresh);
    }
    pool.lru_requeue(i, f.tclass, now);
  }
}

void Engine::Impl::offload_harvest(uint32_t budget) {
  if (offloaded_count == 0) return;
  const uint32_t cap = pool.capacity();
  for (uint32_t n = 0; n < budget && n < cap; ++n) {
    const uint32_t i = harvest_cursor;
    harvest_cursor = harvest_cursor + 1 == cap ? 0 : harvest_cursor + 1;
    Flow& f = pool[i];
    if ((f.flags & (kFlowLive | kFlowOffloaded)) == (kFlowLive | kFlowOffloaded)) {
      offload_take(i, f);
    }
  }
}

void Engine::set_offload(bool on, const OffloadShared& shared) {
  Impl& m = *impl_;
  // Nothing to read the fast path's activity from: a flow it carried would look idle.
  if (on && (shared.outbound == nullptr || shared.inbound == nullptr)) on = false;
  m.offload_flush();  // on: a clean map to start from; off: nothing stays in the fast path
  m.offload_on = on;
  m.offload_out = on ? shared.outbound + shared.slot_base : nullptr;
  m.offload_in = on ? shared.inbound + shared.slot_base : nullptr;
  m.offload_slot_base = on ? shared.slot_base : 0;
  m.offload_slots = !on                 ? 0
                    : shared.slots == 0 ? m.pool.capacity()
                                        : std::min(shared.slots, m.pool.capacity());
}

bool Engine::offload_enabled() const { return impl_->offload_on; }

uint32_t Engine::drain_offload(OffloadRecord* out, uint32_t max) {
  Impl& m = *impl_;
  if (m.offload_stalled) m.offload_flush();
  return m.offload_records.pop_into(out, max);
}

uint64_t Engine::offload_overflows() const { return impl_->offload_overflow_count; }

uint64_t Engine::offloaded_flows() const { return impl_->offloaded_count; }

void Engine::offload_harvest(uint32_t budget) { impl_->offload_harvest(budget); }

}  // namespace eipgate::engine

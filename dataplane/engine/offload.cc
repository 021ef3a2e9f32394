// The kernel fast path seen from the engine: which flows it may carry (offload and withdraw
// records, decided in engine_impl.h where the flow changes), flushes, and the activity the glue
// reads back from the fast path's map so that idle expiry, counters and HA sync stay exact.
#include <algorithm>

#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

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

void Engine::set_offload(bool on) {
  Impl& m = *impl_;
  if (m.offload_on == on) return;
  m.offload_flush();  // on: a clean map to start from; off: nothing stays in the fast path
  m.offload_on = on;
}

bool Engine::offload_enabled() const { return impl_->offload_on; }

uint32_t Engine::drain_offload(OffloadRecord* out, uint32_t max) {
  Impl& m = *impl_;
  if (m.offload_stalled) m.offload_flush();
  return m.offload_records.pop_into(out, max);
}

uint64_t Engine::offload_overflows() const { return impl_->offload_overflow_count; }

uint64_t Engine::offloaded_flows() const { return impl_->offloaded_count; }

bool Engine::offload_activity(const OffloadActivity& a, uint64_t now_ns) {
  Impl& m = *impl_;
  m.now = static_cast<uint32_t>(now_ns / 1000000);
  const FlowKey key{to_net(a.inside_ip),
                    to_net(a.remote_ip),
                    to_net16(a.inside_port),
                    to_net16(a.remote_port),
                    a.proto,
                    kKeyInside,
                    0};
  const uint32_t i = m.find(key);
  if (i == kNone || !(m.pool[i].flags & kFlowOffloaded)) return false;
  Flow& f = m.pool[i];
  const auto seen = static_cast<uint32_t>(a.last_seen_ns / 1000000);
  // Modulo 2^32 ms, as everywhere in the engine: later than the last packet the engine knows of,
  // and not in the future (a clock read before now on another CPU may not be ahead of it).
  if (static_cast<int32_t>(seen - f.last_seen) > 0 && static_cast<int32_t>(m.now - seen) >= 0) {
    f.last_seen = seen;
    if (m.now - f.lru_time >= kLruRequeueMs) {
      if (m.sync_on && f.lru_time / m.sync_refresh_ms != m.now / m.sync_refresh_ms) {
        m.sync_emit(f, SyncKind::Refresh);
      }
      m.pool.lru_requeue(i, f.tclass, m.now);
    }
  }
  f.bytes_out += a.bytes_out;
  f.bytes_in += a.bytes_in;
  Counters& c = m.counters;
  c.add(Event::PacketsInFromSource, a.packets_out);
  c.add(Event::BytesInFromSource, a.bytes_out);
  c.add(Event::PacketsOutToDestination, a.packets_out);
  c.add(Event::BytesOutToDestination, a.bytes_out);
  c.add(Event::PacketsInFromDestination, a.packets_in);
  c.add(Event::BytesInFromDestination, a.bytes_in);
  c.add(Event::PacketsOutToSource, a.packets_in);
  c.add(Event::BytesOutToSource, a.bytes_in);
  c.add(Event::FastPathPackets, a.packets_out + a.packets_in);
  return true;
}

}  // namespace eipgate::engine

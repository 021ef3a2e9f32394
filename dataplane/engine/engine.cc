// The engine's public API (engine.h) and its construction and live reconfiguration; the
// packet path starts in process_burst and continues in fast_path.cc.
#include <stdexcept>
#include <string>

#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

Engine::Impl::Impl(const EngineConfig& c)
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
    eim_free_head = 0;
    udp_port_bitmap.assign(outside_net.size() * 1024, 0);
  }
  if (cfg.worker_count > 1) {
    rss = std::make_unique<Toeplitz>(cfg.rss.key);
    reta_mask = static_cast<uint32_t>(cfg.rss.reta.size() - 1);
  }
  uint32_t fc = 1;
  while (fc < cfg.frag_contexts) fc <<= 1;
  frag_contexts.resize(fc);
  frag_index_mask = fc - 1;
  held_fragments.resize(cfg.frag_hold);
  released.reset(cfg.frag_hold);
}

// The fields reconfigure() may change on a running engine (config.h, restart_field): derived
// tables are rebuilt from cfg. Flows keep their translation; timeouts apply to them at once
// (expiry compares last_seen with the class timeout of the moment).
void Engine::Impl::apply_live_fields(const policy::CompiledPolicy* previous_policy) {
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
  timeout_ms[kClassTcpClosing] = t.tcp_time_wait_s * 1000;
  timeout_ms[kClassTcpTransitory] = t.tcp_transitory_s * 1000;
  timeout_ms[kClassIcmp] = t.icmp_s * 1000;
  timeout_ms[kClassUdp] = t.udp_s * 1000;
  timeout_ms[kClassTcpEstablished] = t.tcp_established_s * 1000;
  apply_policy(previous_policy);
}

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
  // Every offloaded flow is judged again on its next packet, by the new config and policy.
  if (impl_->offload_on) impl_->offload_flush();
  if (new_policy && impl_->active_policy != nullptr &&
      impl_->active_policy->config().recheck_on_reload) {
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
  impl_->offload_harvest(kHarvestPerBurst);
}

uint32_t Engine::pop_released(PacketBuf** pkts, Result* out, uint32_t max, uint64_t now_ns) {
  Impl& m = *impl_;
  m.now = static_cast<uint32_t>(now_ns / 1000000);
  uint32_t n = 0;
  while (n < max && !m.released.empty()) {
    const Impl::Released& r = m.released.front();
    pkts[n] = r.pkt;
    out[n] = r.res;
    ++n;
    m.released.pop();
  }
  for (uint32_t h = 0; h < m.held_fragments.size() && n < max && m.held_fragment_count > 0; ++h) {
    Impl::Held& e = m.held_fragments[h];
    if (e.pkt == nullptr || m.now - e.since < m.cfg.timeouts.fragment_ms) continue;
    pkts[n] = e.pkt;
    out[n] = m.drop(DropReason::FragTimeout);
    ++n;
    e.pkt = nullptr;
    --m.held_fragment_count;
  }
  return n;
}

uint32_t Engine::expire(uint64_t now_ns, uint32_t budget) {
  impl_->now = static_cast<uint32_t>(now_ns / 1000000);
  impl_->offload_harvest(budget);
  return impl_->expire_flows(budget);
}

const Counters& Engine::counters() const { return impl_->counters; }

EngineStats Engine::stats() const {
  EngineStats s;
  s.counters = impl_->counters;
  s.active_flows = impl_->pool.used();
  s.active_tcp_flows = impl_->tcp_flows;
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
  out.emplace_back("ActiveConnectionCount", s.active_tcp_flows);
  for (std::size_t i = 0; i < kEventCount; ++i)
    out.emplace_back(kEventNames[i], s.counters.events[i]);
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    out.emplace_back(drop_names[i], s.counters.drops[i]);
  return out;
}

uint64_t Engine::memory_bytes() const {
  const Impl& m = *impl_;
  return m.pool.memory_bytes() + m.index.memory_bytes() + m.eim.size() * sizeof(Impl::EimMap) +
         m.udp_port_bitmap.size() * 8 + m.frag_contexts.size() * sizeof(Impl::FragCtx) +
         m.held_fragments.size() * (sizeof(Impl::Held) + sizeof(Impl::Released));
}

uint32_t Engine::drain_denials(DenyRecord* out, uint32_t max) {
  return impl_->denials.pop_into(out, max);
}

uint64_t Engine::denials_lost() const { return impl_->denials_lost; }

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
  if (!on) impl_->sync_records.clear();
}

void Engine::set_translation_log(bool on) {
  Impl& m = *impl_;
  if (on && !m.txlog_on) {
    // Flows that exist already count from now, with no rule known.
    m.txmeta.assign(m.pool.capacity(), Impl::TxMeta{m.now, kTxNoRule});
  }
  m.txlog_on = on;
  if (!on) m.txlog.clear();
}

bool Engine::translation_log_enabled() const { return impl_->txlog_on; }

uint32_t Engine::drain_translations(TxLogRecord* out, uint32_t max) {
  return impl_->txlog.pop_into(out, max);
}

uint64_t Engine::translations_lost() const { return impl_->txlog_lost; }

std::string_view tx_end_name(TxEnd e) {
  switch (e) {
    case TxEnd::None:
      return "none";
    case TxEnd::Fin:
      return "fin";
    case TxEnd::Rst:
      return "rst";
    case TxEnd::Idle:
      return "idle";
    case TxEnd::Evicted:
      return "evicted";
    case TxEnd::Sync:
      return "sync";
    case TxEnd::Policy:
      return "policy";
  }
  return "unknown";
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
    const uint32_t tmo = m.timeout_ms[f.tclass];
    v.remaining_ms = now - f.last_seen >= tmo ? 0 : tmo - (now - f.last_seen);
    fn(v);
  }
}

uint16_t Engine::rss_worker(uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                            uint8_t proto) const {
  return impl_->owner_in(to_net(src_ip), to_net(dst_ip), to_net16(sport), to_net16(dport), proto);
}

}  // namespace eipgate::engine

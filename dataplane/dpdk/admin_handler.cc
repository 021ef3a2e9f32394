// The admin socket's view of the running process: stats, xstats, flows, reload, announce,
// probe, HA role and health, answered from the admin thread.
#include <thread>

#include "common/ipv4_text.h"
#include "dataplane/admin/dataplane_stats.h"
#include "dataplane/admin/stats_json.h"
#include "dataplane/dpdk/dataplane_impl.h"
#include "dataplane/dpdk/probe.h"

namespace eipgate::dataplane {

namespace {

// The admin socket's view of the running process.
class DataplaneAdminHandler final : public admin::AdminHandler {
 public:
  explicit DataplaneAdminHandler(Dataplane::Impl& m) : m_(m) {}

  admin::DataplaneStats gather() {
    const auto st = m_.snapshot();
    admin::DataplaneStats s;
    for (const auto& w : st) {
      s.engines.push_back(w.stats);
      s.io.push_back({w.rx_packets, w.tx_packets, w.tx_dropped, w.no_neighbour, w.loops,
                      w.idle_sleeps, w.rx_interrupt_waits, w.drops});
    }
    s.main = {m_.arp_replies_sent,
              m_.garps_sent,
              m_.arp_queued.load(std::memory_order_relaxed),
              m_.arp_queue_sent.load(std::memory_order_relaxed),
              m_.arp_queue_dropped.load(std::memory_order_relaxed),
              m_.host_dropped.load(std::memory_order_relaxed),
              m_.exception ? m_.exception->to_kernel_count() : 0,
              m_.exception ? m_.exception->from_kernel_count() : 0,
              m_.exception ? m_.exception->from_kernel_filtered() : 0,
              {}};
    for (size_t i = 0; i < admin::kGlueDropCount; ++i) {
      s.main.drops[i] = m_.main_drops[i].load(std::memory_order_relaxed);
    }
    for (const auto& p : m_.ports) {
      if (!p.steer) continue;
      admin::SteerCounters sc;
      sc.port = p.role;
      bpf::SteerStats ss;
      sc.error = p.steer->read_stats(ss);
      if (sc.error.empty()) {
        for (uint32_t i = 0; i < STEER_STAT_COUNT; ++i) {
          sc.counters.emplace_back(std::string(bpf::steer_stat_name(i)), ss.packets[i]);
        }
      }
      s.steer.push_back(std::move(sc));
    }
    s.ports = port_reports();
    uint64_t out_dropped = 0;
    for (const auto& w : st) {
      out_dropped += w.sync_out_dropped;
      s.sync.records_applied += w.sync_applied;
      for (size_t r = 1; r < engine::kSyncRefusalCount; ++r) {
        s.sync.records_refused += w.sync_refused[r];
        s.sync.refused_by_reason[r] += w.sync_refused[r];
      }
      s.sync.engine_overflows += w.sync_overflows;
      s.fastpath.glue += w.fastpath;
    }
    s.fastpath.on = m_.fastpath.on;
    s.fastpath.held = m_.fastpath.held.load(std::memory_order_relaxed);
    s.fastpath.off_reason = m_.fastpath.off_reason;
    const auto running_cfg = m_.running_config();
    if (const auto& pol = running_cfg->engine.policy; pol && !pol->empty()) {
      admin::PolicyReport pr;
      for (uint32_t id = 0; id < pol->rule_count(); ++id) {
        uint64_t hits = 0;
        for (const auto& w : st) hits += id < w.rule_hits.size() ? w.rule_hits[id] : 0;
        pr.rule_hits.emplace_back(std::string(pol->rule_name(id)), hits);
      }
      pr.denials_logged = m_.denials_logged.load(std::memory_order_relaxed);
      pr.denials_not_logged = m_.denials_unlogged.load(std::memory_order_relaxed);
      s.policy = std::move(pr);
    }
    const int role = m_.ha_role.load(std::memory_order_relaxed);
    s.sync.role = role == Dataplane::Impl::kRoleActive    ? "active"
                  : role == Dataplane::Impl::kRoleStandby ? "standby"
                                                          : "none";
    s.sync.epoch = m_.ha_epoch.load(std::memory_order_relaxed);
    s.sync.control_connected = m_.sync_connected.load(std::memory_order_relaxed);
    s.sync.records_sent = m_.sync_sent.load(std::memory_order_relaxed);
    s.sync.records_dropped = m_.sync_send_dropped.load(std::memory_order_relaxed) + out_dropped;
    s.sync.records_received = m_.sync_received.load(std::memory_order_relaxed);
    s.sync.malformed = m_.sync_malformed.load(std::memory_order_relaxed);
    s.sync.snapshots = m_.sync_snapshots.load(std::memory_order_relaxed);
    s.translation_log = m_.translation_log_report();
    return s;
  }

  // The ports with the main lcore's latest xstats reading (takes xstats_mu).
  std::vector<admin::PortReport> port_reports() {
    std::vector<admin::PortReport> out;
    std::lock_guard lock(m_.xstats_mu);
    for (size_t i = 0; i < m_.ports.size(); ++i) {
      const PortState& p = m_.ports[i];
      admin::PortReport r{p.role, p.id, p.device, false, {}, {}};
      if (i < m_.xstats.size()) {
        r.has_reading = true;
        r.xstats = m_.xstats[i].values;
        r.xstats_error = m_.xstats[i].error;
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  nlohmann::json stats() override { return admin::dataplane_stats_to_json(gather()); }

  nlohmann::json xstats() override {
    std::optional<uint64_t> age_ms;
    {
      std::lock_guard lock(m_.xstats_mu);
      if (m_.xstats_read_ms != 0) age_ms = now_ns() / 1000000 - m_.xstats_read_ms;
    }
    return admin::ports_xstats_to_json(port_reports(), age_ms);
  }

  nlohmann::json flows(const admin::FlowFilter& filter) override {
    std::lock_guard lock(m_.dump_mu);
    admin::FlowDump dump(filter);
    for (auto& w : m_.workers) w->dump_gen.fetch_add(1, std::memory_order_acq_rel);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (auto& w : m_.workers) {
      while (w->dump_done.load(std::memory_order_acquire) !=
             w->dump_gen.load(std::memory_order_relaxed)) {
        if (std::chrono::steady_clock::now() > deadline) {
          return {{"error", "worker " + std::to_string(w->index) + " did not answer (stalled?)"}};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      for (const auto& f : w->dump) dump.add(f, w->index);
    }
    return dump.result();
  }

  // Atomic reload: the new file is parsed and validated completely, and checked for changes that
  // only a restart can make, before anything is published; then the main lcore and every worker
  // switch at a loop boundary (each engine keeps its flows) and the reply waits for all of them.
  admin::ReloadResult reload(const std::string& path) override {
    admin::ReloadResult r;
    const auto running_cfg = m_.running_config();
    const auto& running = *running_cfg;
    const std::string file = path.empty() ? running.source_file : path;
    ConfigResult loaded = load_config(file);
    if (loaded.error) {
      r.error = loaded.error->to_string() + " (running configuration unchanged)";
      m_.log->warn("reload rejected: {}", r.error);
      return r;
    }
    if (const std::string field = restart_required(running, *loaded.config); !field.empty()) {
      r.error = file + ": " + field +
                " cannot change while running: restart eipgate-dataplane to apply it (running "
                "configuration unchanged)";
      m_.log->warn("reload rejected: {}", r.error);
      return r;
    }
    for (const auto& w : loaded.config->warnings) m_.log->warn("{}", w);
    auto next = std::make_shared<const DataplaneConfig>(std::move(*loaded.config));
    uint64_t gen = 0;
    {
      std::lock_guard lock(m_.admin_mu);
      gen = m_.publish_config(next);
      m_.admin_running = next;
      m_.resolver_base = next->engine.policy;
      m_.probe_src.store(next->probe_source, std::memory_order_relaxed);
    }
    m_.retarget_resolver();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    auto acked = [&] {
      if (m_.main_cfg_acked.load(std::memory_order_acquire) < gen) return false;
      for (const auto& w : m_.workers) {
        if (w->cfg_acked.load(std::memory_order_acquire) < gen) return false;
      }
      return true;
    };
    while (!acked()) {
      if (std::chrono::steady_clock::now() > deadline) {
        r.error = "reload published but not every worker acknowledged it within 5 s (stalled?)";
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (const auto& w : m_.workers) {
      if (!w->cfg_error.empty()) {  // cannot happen after restart_required(); reported if it does
        r.error = "worker " + std::to_string(w->index) + ": " + w->cfg_error;
        return r;
      }
    }
    r.ok = true;
    r.result = {{"generation", gen}, {"file", file}};
    m_.log->info("configuration reloaded from {} (generation {})", file, gen);
    return r;
  }

  nlohmann::json announce() override {
    const uint64_t g = m_.announce_gen.fetch_add(1, std::memory_order_acq_rel) + 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (m_.announce_done.load(std::memory_order_acquire) < g) {
      if (std::chrono::steady_clock::now() > deadline) {
        return {{"error", "the main lcore did not answer within 2 s"}};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return {{"garps", m_.announce_count.load(std::memory_order_relaxed)}};
  }

  // One probe at a time: reports the previous one, then (with a target) sends the next SYN.
  nlohmann::json probe(const std::optional<admin::ProbeTarget>& start) override {
    nlohmann::json j;
    const uint64_t now = now_ns();
    if (probe_id_ != 0) {
      const uint64_t at = m_.probe_answered_ns.load(std::memory_order_acquire);
      nlohmann::json last = {{"id", probe_id_},
                             {"address", ipv4_to_string(probe_target_.address)},
                             {"port", probe_target_.port},
                             {"source", ipv4_to_string(probe_from_)},
                             {"age_ms", (now - probe_sent_ns_) / 1'000'000}};
      if (at != 0) {
        last["state"] = std::string(probe_answer_name(
            static_cast<ProbeAnswer>(m_.probe_answer.load(std::memory_order_relaxed))));
        last["rtt_us"] = (at - probe_sent_ns_) / 1000;
      } else {
        last["state"] = "pending";
      }
      j["last"] = std::move(last);
    }
    j["sent"] = m_.probes_sent.load(std::memory_order_relaxed);
    j["answered"] = m_.probes_answered.load(std::memory_order_relaxed);
    j["strays"] = m_.probe_strays.load(std::memory_order_relaxed);
    if (!start) return j;
    const uint32_t src = m_.probe_src.load(std::memory_order_relaxed);
    if (src == 0) {
      return {{"error",
               "no probe source: set probe.source to an unused address in "
               "nat.inside_prefixes"}};
    }
    rte_mbuf* m = rte_pktmbuf_alloc(m_.pool);
    if (m == nullptr) return {{"error", "no mbuf for the probe (pool exhausted)"}};
    ++probe_id_;
    probe_target_ = *start;
    probe_from_ = src;
    ProbeFrame f;
    f.dst_mac = m_.ports[static_cast<size_t>(m_.inside_port)].mac;
    f.src_mac = f.dst_mac;
    f.src = src;
    f.dst = start->address;
    f.sport = static_cast<uint16_t>(32768 + probe_id_ % 28000);
    f.dport = start->port;
    f.seq = static_cast<uint32_t>(now ^ (now >> 32));
    f.flags = kTcpSyn;
    engine::PacketBuf* p = pbuf(m);
    p->meta = {};
    p->data = rte_pktmbuf_mtod(m, uint8_t*);
    p->len = static_cast<uint32_t>(build_probe_frame(f, p->data));
    p->cap = p->len + rte_pktmbuf_tailroom(m);
    m->data_len = static_cast<uint16_t>(p->len);
    m->pkt_len = p->len;
    m->port = m_.ports[static_cast<size_t>(m_.inside_port)].id;
    // Arm the catch before the SYN can leave: answered = 0, then the port (release) it matches.
    m_.probe_answered_ns.store(0, std::memory_order_relaxed);
    m_.probe_dst.store(f.dst, std::memory_order_relaxed);
    m_.probe_sport.store(f.sport, std::memory_order_release);
    probe_sent_ns_ = now_ns();
    // Into a worker as if it had arrived from the inside: the engine hands it to the flow's
    // owner, applies the policy and translates it like any new connection.
    WorkerContext& w = *m_.workers[0];
    if (rte_ring_mp_enqueue(w.handoff, m) != 0) {
      rte_pktmbuf_free(m);
      return {{"error", "worker 0's ring is full; probe not sent"}};
    }
    Dataplane::Impl::wake_worker(w);
    m_.probes_sent.fetch_add(1, std::memory_order_relaxed);
    j["started"] = {{"id", probe_id_},
                    {"address", ipv4_to_string(f.dst)},
                    {"port", f.dport},
                    {"source", ipv4_to_string(src)}};
    return j;
  }

  std::optional<std::string> set_ha_role(const std::string& role, uint64_t epoch) override {
    const int r = role == "active" ? Dataplane::Impl::kRoleActive : Dataplane::Impl::kRoleStandby;
    const int old = m_.ha_role.exchange(r, std::memory_order_acq_rel);
    m_.ha_epoch.store(epoch, std::memory_order_relaxed);
    if (m_.role_unconfirmed.exchange(false, std::memory_order_relaxed)) {
      m_.log->info("HA role {} (epoch {}) confirmed after the freeze", role, epoch);
    } else if (old != r) {
      m_.log->info("HA role {} (epoch {})", role, epoch);
    }
    return std::nullopt;
  }

  nlohmann::json health() override {
    // Alive when every worker's loop counter moves (workers publish at least every 10 ms idle).
    const auto a = m_.snapshot();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto b = m_.snapshot();
    nlohmann::json workers = nlohmann::json::array();
    bool ok = true;
    for (size_t i = 0; i < a.size(); ++i) {
      const bool moving = b[i].loops != a[i].loops;
      ok &= moving;
      workers.push_back({{"worker", i}, {"progressing", moving}, {"loops", b[i].loops}});
    }
    const bool confirmed = !m_.role_unconfirmed.load(std::memory_order_relaxed);
    return {{"status", ok && confirmed ? "ok" : "degraded"},
            {"workers", workers},
            {"ha_role_confirmed", confirmed}};
  }

 private:
  Dataplane::Impl& m_;
  // The probe in flight (admin thread only: one request at a time).
  uint64_t probe_id_ = 0;
  uint64_t probe_sent_ns_ = 0;
  admin::ProbeTarget probe_target_;
  uint32_t probe_from_ = 0;
};

}  // namespace

std::unique_ptr<admin::AdminHandler> make_admin_handler(Dataplane::Impl& impl) {
  return std::make_unique<DataplaneAdminHandler>(impl);
}

}  // namespace eipgate::dataplane

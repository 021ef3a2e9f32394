// The main lcore: configuration generations (reload, resolver), the host path to and from the
// kernel, the policy audit log, housekeeping and idle; Dataplane::run and its final statistics.
#include <poll.h>
#include <rte_lcore.h>

#include <thread>

#include "common/ipv4_text.h"
#include "common/log.h"
#include "dataplane/admin/stats_json.h"
#include "dataplane/dpdk/dataplane_impl.h"

namespace eipgate::dataplane {

void Dataplane::Impl::log_denials(uint64_t now_ms) {
  deny_tokens = std::min(
      kDenyLogBurst,
      deny_tokens + kDenyLogPerSec * static_cast<double>(now_ms - deny_tokens_ms) / 1000.0);
  deny_tokens_ms = now_ms;
  const policy::CompiledPolicy* pol = cfg.engine.policy.get();
  engine::DenyRecord d[16];
  for (const auto& w : workers) {
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst_elem(w->denials, d, sizeof d[0], 16, nullptr)) > 0) {
      for (unsigned i = 0; i < n; ++i) {
        if (deny_tokens < 1) {
          ++deny_suppressed_pending;
          denials_unlogged.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        deny_tokens -= 1;
        denials_logged.fetch_add(1, std::memory_order_relaxed);
        const auto& r = d[i];
        const std::string_view group =
            pol && r.group_id < pol->group_count() ? pol->group_name(r.group_id) : "-";
        const std::string_view rule =
            pol && r.rule_id < pol->rule_count() ? pol->rule_name(r.rule_id) : "-";
        log->warn("policy deny: src={}:{} dst={}:{} proto={} name={} group={} rule={} action={}",
                  ipv4_to_string(r.src), r.sport, ipv4_to_string(r.dst), r.dport,
                  admin::proto_name(r.proto), r.name[0] ? r.name : "-", group, rule,
                  r.reject ? "reject" : "drop");
      }
    }
  }
  if (deny_suppressed_pending && deny_tokens >= 1) {
    log->warn("policy deny: {} more denials not logged (rate limit {}/s)", deny_suppressed_pending,
              kDenyLogPerSec);
    deny_suppressed_pending = 0;
  }
}

// Points the resolver at resolver_base (created on first need; idle without names).
void Dataplane::Impl::retarget_resolver() {
  std::shared_ptr<const policy::CompiledPolicy> base;
  {
    std::lock_guard lock(admin_mu);
    base = resolver_base;
  }
  if (!resolver) {
    if (!base || base->names_to_resolve().empty()) return;
    resolver = std::make_unique<Resolver>(
        log,
        [this](const std::shared_ptr<const policy::CompiledPolicy>& b,
               std::shared_ptr<const policy::CompiledPolicy> r) { on_resolved(b, std::move(r)); });
  }
  resolver->retarget(std::move(base));
}

std::shared_ptr<const DataplaneConfig> Dataplane::Impl::running_config() {
  std::lock_guard lock(admin_mu);
  return admin_running;
}

// Publishes a new config generation (the main lcore and every worker pick it up at a loop
// boundary); returns the generation. Caller holds admin_mu and then sets admin_running.
uint64_t Dataplane::Impl::publish_config(std::shared_ptr<const DataplaneConfig> next) {
  std::lock_guard lock(next_mu);
  next_cfg = std::move(next);
  return cfg_gen.fetch_add(1, std::memory_order_acq_rel) + 1;
}

// Resolver callback: `resolved` replaces the running policy when `base` is still the policy
// being followed (a reload in between retargets the resolver and this result is dropped).
void Dataplane::Impl::on_resolved(const std::shared_ptr<const policy::CompiledPolicy>& base,
                                  std::shared_ptr<const policy::CompiledPolicy> resolved) {
  std::lock_guard lock(admin_mu);
  if (base != resolver_base) return;
  auto next = std::make_shared<DataplaneConfig>(*admin_running);
  next->engine.policy = std::move(resolved);
  const size_t n = next->engine.policy->resolved().size();
  admin_running = next;
  const uint64_t gen = publish_config(std::move(next));
  log->info("resolver: policy updated with {} resolved names (generation {})", n, gen);
}

std::shared_ptr<const DataplaneConfig> Dataplane::Impl::pending_config(uint64_t* gen) {
  std::lock_guard lock(next_mu);
  *gen = cfg_gen.load(std::memory_order_acquire);
  return next_cfg;
}

// The instance's own traffic: IPv4 for its addresses and ARP replies (the kernel resolves its
// own next hops) go to the kernel's TAP when the exception path is enabled; ARP requests were
// answered by handle_arp; everything else is counted and dropped.
void Dataplane::Impl::to_kernel(rte_mbuf* m) {
  const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint16_t type = m->data_len >= 14 ? static_cast<uint16_t>(d[12] << 8 | d[13]) : 0;
  const auto arp = type == 0x0806 ? parse_arp(d, m->data_len) : std::nullopt;
  if (!(arp && arp->op == kArpRequest)) {
    const bool wanted = type == 0x0800 || (arp && arp->op == kArpReply);
    if (!(wanted && exception && exception->to_kernel(m))) {
      host_dropped.fetch_add(1, std::memory_order_relaxed);
    }
  }
  rte_pktmbuf_free(m);
}

// The kernel's frames (replies, its own ARP) leave through their DPDK port via worker 0.
uint32_t Dataplane::Impl::from_kernel() {
  if (!exception) return 0;
  rte_mbuf* ms[kBurst];
  const uint32_t k = exception->from_kernel(ms, kBurst);
  for (uint32_t i = 0; i < k; ++i) inject(ms[i]);
  return k;
}

// The main lcore's idle: 200 us naps while any worker is awake; once every worker is deeply
// idle, a poll() on the TAPs, the ARP sockets and the workers' eventfd for up to
// deep_sleep_us, so an idle instance wakes rarely but a frame from the kernel or a worker's
// request is served at once.
void Dataplane::Impl::main_idle() {
  const bool all_deep =
      cfg.polling.adaptive && workers_deep_idle.load(std::memory_order_relaxed) == workers.size();
  if (!all_deep || !unresolved.empty()) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return;
  }
  std::vector<pollfd> fds;
  fds.push_back({main_wake_fd, POLLIN, 0});
  if (exception) {
    for (int fd : exception->fds()) fds.push_back({fd, POLLIN, 0});
  }
  for (const auto& p : ports) {
    if (p.arp_fd >= 0) fds.push_back({p.arp_fd, POLLIN, 0});
  }
  if (sync_listener.fd() >= 0) fds.push_back({sync_listener.fd(), POLLIN, 0});
  if (sync_client_fd >= 0) fds.push_back({sync_client_fd, POLLIN, 0});
  if (snapshot_open) {  // workers are walking their tables: keep collecting
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return;
  }
  main_sleeping.store(true, std::memory_order_seq_cst);
  // A worker that enqueued before it saw the flag did not write the eventfd: look first.
  bool pending = !rte_ring_empty(host_ring) || !rte_ring_empty(resolve_ring);
  for (const auto& w : workers) pending = pending || !rte_ring_empty(w->sync_out);
  if (!pending) {
    ::poll(fds.data(), fds.size(),
           static_cast<int>(std::max<uint32_t>(1, cfg.polling.deep_sleep_us / 1000)));
  }
  main_sleeping.store(false, std::memory_order_relaxed);
  uint64_t drained = 0;
  [[maybe_unused]] const ssize_t rd = ::read(main_wake_fd, &drained, sizeof drained);
}

void Dataplane::Impl::main_loop() {
  uint64_t last_refresh = 0;
  publish_neighbours(now_ns() / 1000000);
  announce();
  uint64_t loop_start = now_ns();
  bool frozen_logged = false;
  while (!stop->load(std::memory_order_relaxed)) {
    if (const uint64_t t = now_ns(); t - loop_start > kFreezeNs) note_freeze(t - loop_start);
    loop_start = now_ns();
    if (role_unconfirmed.load(std::memory_order_relaxed)) {
      if (!frozen_logged) {
        log->warn(
            "resumed after a {} ms freeze: nothing translated leaves until eipgate-control "
            "confirms the HA role",
            freeze_ms.load(std::memory_order_relaxed));
        frozen_logged = true;
      }
      drop_unresolved();  // translated packets that waited for a next hop: as stale
    } else {
      frozen_logged = false;
    }
    // The XDP fast path does not stop with the process: hold it while the role is stale.
    fastpath_hold(role_unconfirmed.load(std::memory_order_relaxed));
    const uint64_t now_ms = now_ns() / 1000000;
    bool changed = false;
    if (cfg_gen.load(std::memory_order_acquire) != main_cfg_gen) {
      uint64_t gen = 0;
      if (const auto next = pending_config(&gen)) {
        cfg = *next;  // restart_required() passed: ports, addresses and lcores are unchanged
        for (const auto& p : ports) {
          if (!p.steer) continue;
          if (std::string err = p.steer->configure(steer_config()); !err.empty()) {
            log->error("port {}: XDP steering maps not updated: {}", p.role, err);
          }
        }
        if (spdlog::level::level_enum lvl{}; log::parse_level(cfg.logging.level, &lvl)) {
          log->set_level(lvl);
        }
        changed = true;
      }
      main_cfg_gen = gen;
      main_cfg_acked.store(gen, std::memory_order_release);
    }
    rte_mbuf* ms[kBurst];
    uint32_t n =
        rte_ring_sc_dequeue_burst(host_ring, reinterpret_cast<void**>(ms), kBurst, nullptr);
    for (uint32_t i = 0; i < n; ++i) {
      changed |= handle_arp(ms[i], now_ms);
      to_kernel(ms[i]);
    }
    uint32_t k = from_kernel();
    changed |= poll_steered_arp(now_ms);
    if (sync_poll()) ++k;
    log_denials(now_ms);
    write_translations();
    if (const uint64_t g = announce_gen.load(std::memory_order_acquire);
        g != announce_done.load(std::memory_order_relaxed)) {
      const uint64_t before = garps_sent;
      announce();
      announce_count.store(garps_sent - before, std::memory_order_relaxed);
      announce_done.store(g, std::memory_order_release);
    }
    rte_mbuf* waiting[kBurst];
    const uint32_t r =
        rte_ring_sc_dequeue_burst(resolve_ring, reinterpret_cast<void**>(waiting), kBurst, nullptr);
    for (uint32_t i = 0; i < r; ++i) wait_for_neighbour(waiting[i], now_ms);
    if (!unresolved.empty()) flush_unresolved(now_ms);
    if (now_ms - last_refresh >= 1000) {
      last_refresh = now_ms;
      // Resolve the gateways before traffic needs them, and refresh entries before they lapse.
      if (!cfg.next_hop.static_mac && !table.lookup(cfg.next_hop.gateway, now_ms + 10'000)) {
        request(cfg.next_hop.gateway, now_ms);
      }
      if (cfg.next_hop.inside_gateway &&
          !table.lookup(cfg.next_hop.inside_gateway, now_ms + 10'000)) {
        request(cfg.next_hop.inside_gateway, now_ms);
      }
      table.expire(now_ms, 0);
      changed = true;
      refresh_xstats(now_ms);
    }
    if (changed) publish_neighbours(now_ms);
    reclaim();
    if (n == 0 && r == 0 && k == 0) main_idle();
  }
}

int Dataplane::run() {
  Impl& m = *impl_;
  for (auto& w : m.workers) {
    WorkerContext* wp = w.get();
    Impl* ip = &m;
    rte_eal_remote_launch(
        [](void* arg) -> int {
          auto* pair = static_cast<std::pair<Impl*, WorkerContext*>*>(arg);
          pair->first->worker_loop(*pair->second);
          delete pair;
          return 0;
        },
        new std::pair<Impl*, WorkerContext*>(ip, wp), wp->lcore);
  }
  {  // before the admin socket: from then on only the admin handler's reload retargets it
    std::lock_guard lock(m.admin_mu);
    m.resolver_base = m.admin_running->engine.policy;
  }
  m.retarget_resolver();
  const auto handler = make_admin_handler(m);
  admin::AdminServer server(m.cfg.admin.socket_path, *handler, "0.1.0");
  try {
    server.start();
    m.log->info("admin socket {}", m.cfg.admin.socket_path);
  } catch (const std::exception& e) {
    m.log->error("admin socket: {}", e.what());
    stop_.store(true);
  }
  m.main_loop();
  server.stop();
  if (m.resolver) m.resolver->stop();
  rte_eal_mp_wait_lcore();
  m.flush_translations();  // the workers have stopped: what they had not handed over yet
  // Final statistics, so a stopped instance still tells what it did.
  for (const auto& w : m.workers) {
    std::string line;
    for (const auto& [name, value] : engine::named_counters(w->published.stats)) {
      if (value) line += std::string(name) + "=" + std::to_string(value) + " ";
    }
    m.log->info("worker {}: rx={} tx={} tx_dropped={} no_neighbour={} {}", w->index,
                w->published.rx_packets, w->published.tx_packets, w->published.tx_dropped,
                w->published.no_neighbour, line);
  }
  m.log->info("main: arp_replies={} host_dropped={} host_to_kernel={} kernel_to_port={}",
              m.arp_replies_sent, m.host_dropped.load(),
              m.exception ? m.exception->to_kernel_count() : 0,
              m.exception ? m.exception->from_kernel_count() : 0);
  m.log->info("dataplane stopped");
  return 0;
}

std::vector<WorkerStatus> Dataplane::status() const { return impl_->snapshot(); }
}  // namespace eipgate::dataplane

// One worker lcore: rx bursts through the engine, dispatch by verdict (tx, handoff, host,
// next-hop queue), the probe catch, the worker side of the connection-table sync, idle backoff.
#include <poll.h>
#include <rte_lcore.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include "common/byte_order.h"
#include "dataplane/dpdk/dataplane_impl.h"
#include "dataplane/dpdk/probe.h"

namespace eipgate::dataplane {

std::vector<WorkerStatus> Dataplane::Impl::snapshot() const {
  std::vector<WorkerStatus> out;
  for (const auto& w : workers) {
    std::lock_guard lock(w->pub_mu);
    out.push_back(w->published);
  }
  return out;
}

const PortState& Dataplane::Impl::port_for(engine::Verdict v) const {
  return ports[static_cast<size_t>(v == engine::Verdict::ToOutside ? outside_port : inside_port)];
}

// Next hop for a translated packet: the gateway outward; inward the inside gateway or, when
// inside hosts are on-link, the packet's destination.
uint32_t Dataplane::Impl::next_hop(const WorkerContext& w, engine::Verdict v, const uint8_t* d,
                                   uint32_t len) {
  if (v == engine::Verdict::ToOutside) return w.next_hop.gateway;
  if (w.next_hop.inside_gateway) return w.next_hop.inside_gateway;
  const uint32_t off = ipv4_offset(d, len);
  return off && len >= off + 20 ? be::get32(d + off + 16) : 0;
}

void Dataplane::Impl::publish(WorkerContext& w) {
  w.local.stats = w.eng->stats();
  w.local.sync_out_dropped = w.sync_out_dropped;
  w.local.sync_applied = w.sync_applied;
  w.local.sync_refused = w.sync_refused;
  w.local.sync_overflows = w.eng->sync_overflows();
  w.local.txlog_lost = w.eng->translations_lost();
  w.local.rule_hits = w.eng->rule_hits();
  progress.store(w.index, w.local.loops);
  std::lock_guard lock(w.pub_mu);
  w.published = w.local;
}

void Dataplane::Impl::dispatch(WorkerContext& w, engine::PacketBuf* const* pbs,
                               const engine::Result* res, uint16_t n, const NeighSnapshot* nb,
                               std::array<TxBatch, 2>& tx) {
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = mbuf_of(pbs[i]);
    engine::PacketBuf& pb = *pbs[i];
    switch (res[i].verdict) {
      case engine::Verdict::ToOutside:
      case engine::Verdict::ToInside: {
        if (res[i].verdict == engine::Verdict::ToInside && probe_catch(w, pb)) break;
        if (role_unconfirmed.load(std::memory_order_relaxed)) {
          ++w.local.drops[static_cast<size_t>(admin::GlueDrop::RoleUnconfirmed)];
          rte_pktmbuf_free(m);
          break;
        }
        m->data_len = static_cast<uint16_t>(pb.len);
        m->pkt_len = pb.len;
        const PortState& out = port_for(res[i].verdict);
        const uint32_t nh = next_hop(w, res[i].verdict, pb.data, pb.len);
        const MacAddr* mac = nb ? nb->find(nh) : nullptr;
        if (mac == nullptr) {
          ++w.local.no_neighbour;
          std::memcpy(pb.data + 6, out.mac.data(), 6);
          m->port = out.id;
          m->hash.usr = nh;
          if (nh == 0 || rte_ring_mp_enqueue(resolve_ring, m) != 0) {
            if (nh != 0) ++w.local.drops[static_cast<size_t>(admin::GlueDrop::ResolveRingFull)];
            arp_queue_dropped.fetch_add(1, std::memory_order_relaxed);
            rte_pktmbuf_free(m);
          }
          w.wake_main = true;
          break;
        }
        std::memcpy(pb.data, mac->data(), 6);
        std::memcpy(pb.data + 6, out.mac.data(), 6);
        m->port = out.id;
        push_tx(w,
                tx[&out == &ports[static_cast<size_t>(outside_port)] && outside_port != inside_port
                       ? 1
                       : 0],
                m);
        break;
      }
      case engine::Verdict::ToHost:
        if (rte_ring_mp_enqueue(host_ring, m) != 0) {
          ++w.local.drops[static_cast<size_t>(admin::GlueDrop::HostRingFull)];
          rte_pktmbuf_free(m);
        }
        w.wake_main = true;
        break;
      case engine::Verdict::Handoff:
        // (An owner index out of range cannot come from the engine; counted with the full ring.)
        if (res[i].worker >= workers.size() ||
            rte_ring_mp_enqueue(workers[res[i].worker]->handoff, m) != 0) {
          ++w.local.drops[static_cast<size_t>(admin::GlueDrop::HandoffRingFull)];
          rte_pktmbuf_free(m);
        } else {
          wake_worker(*workers[res[i].worker]);
        }
        break;
      case engine::Verdict::Held:
        break;  // the engine keeps it; pop_released returns it later
      case engine::Verdict::Drop:
        rte_pktmbuf_free(m);
        break;
    }
  }
}

// A packet the NAT sends to the probe source is an answer to a probe (or a stray one): taken
// here, never transmitted. One relaxed load per inside-bound packet when probes are off.
bool Dataplane::Impl::probe_catch(WorkerContext& w, engine::PacketBuf& pb) {
  const uint32_t src = probe_src.load(std::memory_order_relaxed);
  if (src == 0) return false;
  const uint32_t off = ipv4_offset(pb.data, pb.len);
  if (off == 0 || pb.len < off + 20 || be::get32(pb.data + off + 16) != src) return false;
  rte_mbuf* m = mbuf_of(&pb);
  const auto r = parse_probe_reply(pb.data, pb.len, src);
  if (r && r->local_port == probe_sport.load(std::memory_order_acquire) &&
      r->remote == probe_dst.load(std::memory_order_relaxed) &&
      probe_answered_ns.load(std::memory_order_relaxed) == 0) {
    probe_answer.store(static_cast<uint8_t>(r->answer), std::memory_order_relaxed);
    probe_answered_ns.store(now_ns(), std::memory_order_release);
    probes_answered.fetch_add(1, std::memory_order_relaxed);
    if (r->answer == ProbeAnswer::SynAck && pb.cap >= kProbeFrameLen) {
      // Close it as the probe source's stack would: RST (seq = their ack) through the NAT.
      ProbeFrame f;
      f.dst_mac = ports[static_cast<size_t>(inside_port)].mac;
      f.src_mac = f.dst_mac;
      f.src = src;
      f.dst = r->remote;
      f.sport = r->local_port;
      f.dport = r->remote_port;
      f.seq = r->ack;
      f.flags = kTcpRst;
      pb.len = static_cast<uint32_t>(build_probe_frame(f, pb.data));
      pb.meta = {};
      m->data_len = static_cast<uint16_t>(pb.len);
      m->pkt_len = pb.len;
      if (rte_ring_mp_enqueue(w.handoff, m) == 0) return true;  // processed next loop
    }
  } else {
    probe_strays.fetch_add(1, std::memory_order_relaxed);
  }
  rte_pktmbuf_free(m);
  return true;
}

// Empty mbufs lent to the engine for packets it sends beyond the one it was given.
void Dataplane::Impl::lend_spares(WorkerContext& w) {
  for (uint32_t k = w.eng->spares_wanted(); k > 0; --k) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return;
    engine::PacketBuf* p = pbuf(m);
    p->meta = {};
    p->data = rte_pktmbuf_mtod(m, uint8_t*);
    p->len = 0;
    p->cap = rte_pktmbuf_tailroom(m);
    w.eng->give_spare(p);
  }
}

uint32_t Dataplane::Impl::sync_step(WorkerContext& w) {
  {
    engine::DenyRecord d[16];
    if (const uint32_t n = w.eng->drain_denials(d, 16)) {
      const unsigned q = rte_ring_sp_enqueue_burst_elem(w.denials, d, sizeof d[0], n, nullptr);
      denials_unlogged.fetch_add(n - q, std::memory_order_relaxed);
      w.wake_main = true;
    }
  }
  if (w.txlog != nullptr) {
    engine::TxLogRecord t[32];
    while (const uint32_t n = w.eng->drain_translations(t, 32)) {
      const unsigned q = rte_ring_sp_enqueue_burst_elem(w.txlog, t, sizeof t[0], n, nullptr);
      if (q < n) {
        txlog_ring_dropped.fetch_add(n - q, std::memory_order_relaxed);
        break;  // counted; the rest waits in the engine's ring
      }
      w.wake_main = true;
    }
  }
  const bool active = ha_role.load(std::memory_order_relaxed) == kRoleActive;
  if (active != w.eng->sync_enabled()) w.eng->set_sync(active);
  uint32_t did = 0;
  engine::SyncRecord recs[64];
  if (active) {
    const uint32_t n = w.eng->drain_sync(recs, 64);
    if (n) {
      const unsigned q =
          rte_ring_sp_enqueue_burst_elem(w.sync_out, recs, sizeof recs[0], n, nullptr);
      w.sync_out_dropped += n - q;
      w.wake_main = true;
    }
  }
  // Snapshot slices: the table walked a little per loop so forwarding never stalls.
  if (const uint64_t g = w.snap_gen.load(std::memory_order_acquire); g != w.snap_running) {
    w.snap_running = g;
    w.snap_cursor = 0;
  }
  if (w.snap_running != w.snap_done.load(std::memory_order_relaxed)) {
    const unsigned room = rte_ring_free_count(w.sync_out);
    if (room >= 64) {
      const uint32_t n = w.eng->snapshot_sync(&w.snap_cursor, recs, 64, 4096, now_ns());
      rte_ring_sp_enqueue_burst_elem(w.sync_out, recs, sizeof recs[0], n, nullptr);
      did += n;
      w.wake_main = true;
      if (w.snap_cursor >= w.eng->snapshot_end()) {
        w.snap_done.store(w.snap_running, std::memory_order_release);
      }
    }
  }
  const unsigned k = rte_ring_sc_dequeue_burst_elem(w.sync_in, recs, sizeof recs[0], 64, nullptr);
  for (unsigned i = 0; i < k; ++i) {
    const engine::SyncRefusal why = w.eng->apply_sync(recs[i], now_ns());
    if (why == engine::SyncRefusal::none) {
      ++w.sync_applied;
    } else {
      ++w.sync_refused[static_cast<size_t>(why)];
    }
  }
  return did + k;
}

// Rx interrupts (l3fwd-power style): each worker adds its queues to its own thread's epoll;
// a driver without them (af_xdp, af_packet) refuses and the worker sleeps instead.
bool Dataplane::Impl::register_rx_interrupts(WorkerContext& w) {
  if (!cfg.polling.adaptive || !cfg.polling.rx_interrupts) return false;
  for (const auto& p : ports) {
    if (!p.rx_intr || rte_eth_dev_rx_intr_ctl_q(p.id, w.index, RTE_EPOLL_PER_THREAD,
                                                RTE_INTR_EVENT_ADD, nullptr) != 0) {
      return false;
    }
  }
  // The wake eventfd joins the same epoll: handoffs and injected frames end the wait too.
  w.wake_ev.epdata.event = EPOLLIN;
  if (rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, w.wake_fd, &w.wake_ev) != 0) {
    return false;
  }
  log->info("worker {}: idle waits on Rx interrupts", w.index);
  return true;
}

void Dataplane::Impl::wait_rx_interrupt(const WorkerContext& w, uint32_t max_us) {
  for (const auto& p : ports) rte_eth_dev_rx_intr_enable(p.id, w.index);
  rte_epoll_event ev[8];
  rte_epoll_wait(RTE_EPOLL_PER_THREAD, ev, 8,
                 static_cast<int>(std::max<uint32_t>(1, max_us / 1000)));
  for (const auto& p : ports) rte_eth_dev_rx_intr_disable(p.id, w.index);
}

// A worker takes a new config between bursts: its engine keeps every flow (reconfigure), the
// worker-specific fields (id, RSS, seed) stay as built.
void Dataplane::Impl::apply_config(WorkerContext& w) {
  uint64_t gen = 0;
  const auto next = pending_config(&gen);
  if (next) {
    engine::EngineConfig ec = next->engine;
    const engine::EngineConfig& cur = w.eng->config();
    ec.worker_id = cur.worker_id;
    ec.worker_count = cur.worker_count;
    ec.rss = cur.rss;
    ec.random_seed = cur.random_seed;
    w.cfg_error = w.eng->reconfigure(ec);
    if (w.cfg_error.empty()) {
      w.next_hop = next->next_hop;
      w.polling = next->polling;
    }
  }
  w.cfg_gen = gen;
  w.cfg_acked.store(gen, std::memory_order_release);
}

void Dataplane::Impl::transmit(WorkerContext& w, TxBatch& b) {
  uint16_t sent = 0;
  const uint16_t n = b.n;
  for (int tries = 0; sent < n && tries < 4; ++tries) {
    sent = static_cast<uint16_t>(sent + rte_eth_tx_burst(b.port_id, w.index, b.m.data() + sent,
                                                         static_cast<uint16_t>(n - sent)));
  }
  w.local.tx_packets += sent;
  for (uint16_t i = sent; i < n; ++i) rte_pktmbuf_free(b.m[i]);
  w.local.tx_dropped += n - sent;
  b.n = 0;
}

void Dataplane::Impl::worker_loop(WorkerContext& w) {
  rte_rcu_qsbr_thread_register(qsbr, w.index);
  rte_rcu_qsbr_thread_online(qsbr, w.index);
  prctl(PR_SET_TIMERSLACK, 1UL);  // idle sleeps end when asked, not up to 50 us later
  w.rx_intr = register_rx_interrupts(w);
  uint64_t last_work = now_ns();
  bool deep = false;
  rte_mbuf* mbufs[kBurst];
  engine::PacketBuf* pbs[engine::Engine::kMaxBurst];
  engine::Result res[engine::Engine::kMaxBurst];
  std::array<TxBatch, 2> tx;
  tx[0].port_id = ports[static_cast<size_t>(inside_port)].id;
  tx[1].port_id = ports[static_cast<size_t>(outside_port)].id;
  uint32_t idle = 0;
  uint64_t last_expire = now_ns();
  uint64_t loop_start = now_ns();
  while (!stop->load(std::memory_order_relaxed)) {
    const NeighSnapshot* nb = neigh.load(std::memory_order_acquire);
    if (const uint64_t t = now_ns(); t - loop_start > kFreezeNs) note_freeze(t - loop_start);
    loop_start = now_ns();
    uint32_t work = 0;
    auto run = [&](uint16_t n, bool fresh) {
      for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = mbufs[i];
        engine::PacketBuf* p = pbuf(m);
        if (fresh) p->meta = {};
        p->data = rte_pktmbuf_mtod(m, uint8_t*);
        p->len = m->nb_segs == 1 ? m->data_len : 0;  // multi-segment: the engine drops it
        p->cap = p->len + rte_pktmbuf_tailroom(m);
        pbs[i] = p;
      }
      w.eng->process_burst(pbs, n, now_ns(), res);
      dispatch(w, pbs, res, n, nb, tx);
      work += n;
    };
    for (size_t pi = 0; pi < ports.size(); ++pi) {
      const uint16_t n = rte_eth_rx_burst(ports[pi].id, w.index, mbufs, kBurst);
      w.local.rx_packets += n;
      if (n) run(n, true);
    }
    if (const auto n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
            w.handoff, reinterpret_cast<void**>(mbufs), kBurst, nullptr))) {
      run(n, false);
    }
    {
      engine::PacketBuf* rel[kBurst];
      const uint32_t n = w.eng->pop_released(rel, res, kBurst, now_ns());
      if (n) dispatch(w, rel, res, static_cast<uint16_t>(n), nb, tx);
      work += n;
      lend_spares(w);
    }
    work += fastpath_step(w, nb);
    if (const auto n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
            w.inject, reinterpret_cast<void**>(mbufs), kBurst, nullptr))) {
      for (uint16_t i = 0; i < n; ++i) {
        push_tx(w, mbufs[i]->port == tx[1].port_id && outside_port != inside_port ? tx[1] : tx[0],
                mbufs[i]);
      }
      work += n;
    }
    // Frozen in the middle of this loop: what it collected is as stale as the role.
    if (const uint64_t t = now_ns(); t - loop_start > kFreezeNs) note_freeze(t - loop_start);
    if (role_unconfirmed.load(std::memory_order_relaxed)) {
      for (TxBatch& b : tx) {
        for (uint16_t i = 0; i < b.n; ++i) rte_pktmbuf_free(b.m[i]);
        w.local.drops[static_cast<size_t>(admin::GlueDrop::RoleUnconfirmed)] += b.n;
        b.n = 0;
      }
    }
    if (tx[0].n) transmit(w, tx[0]);
    if (tx[1].n) transmit(w, tx[1]);
    ++w.local.loops;
    if (w.local.loops % kPublishEveryLoops == 0) publish(w);
    if (const uint64_t g = w.dump_gen.load(std::memory_order_acquire);
        g != w.dump_done.load(std::memory_order_relaxed)) {
      w.dump.clear();
      w.eng->for_each_flow([&](const engine::FlowView& f) { w.dump.push_back(f); }, now_ns());
      w.dump_done.store(g, std::memory_order_release);
    }
    work += sync_step(w);
    if (cfg_gen.load(std::memory_order_acquire) != w.cfg_gen) apply_config(w);
    if (w.wake_main) {
      w.wake_main = false;
      wake_main();
    }
    rte_rcu_qsbr_quiescent(qsbr, w.index);
    if (work) {
      idle = 0;
      if (deep) {
        deep = false;
        workers_deep_idle.fetch_sub(1, std::memory_order_relaxed);
      }
      last_work = now_ns();
      continue;
    }
    // Idle: expire flows now and then (busy workers expire per burst), then back off so an
    // idle instance uses ~0% CPU (burstable instances would otherwise burn their credits).
    const uint64_t t = now_ns();
    if (t - last_expire > 10'000'000) {
      w.eng->expire(t, 1024);
      last_expire = t;
      publish(w);
    }
    if (w.polling.adaptive && ++idle > w.polling.busy_spins) {
      if (!deep && t - last_work >= uint64_t{w.polling.deep_idle_ms} * 1000000) {
        deep = true;
        workers_deep_idle.fetch_add(1, std::memory_order_relaxed);
      }
      ++w.local.idle_sleeps;
      w.sleeping.store(true, std::memory_order_seq_cst);
      // Packets handed over before the flag was visible did not wake us: look first.
      if (rte_ring_empty(w.handoff) && rte_ring_empty(w.inject)) {
        if (deep && w.rx_intr) {
          ++w.local.rx_interrupt_waits;
          wait_rx_interrupt(w, w.polling.deep_sleep_us);
        } else {
          const uint32_t us =
              deep ? w.polling.deep_sleep_us
                   : std::min<uint32_t>(w.polling.idle_sleep_max_us,
                                        1u << std::min<uint32_t>(idle - w.polling.busy_spins, 10));
          pollfd pfd{w.wake_fd, POLLIN, 0};
          const timespec ts{static_cast<time_t>(us / 1000000),
                            static_cast<long>(us % 1000000) * 1000};
          ::ppoll(&pfd, 1, &ts, nullptr);
        }
      }
      w.sleeping.store(false, std::memory_order_relaxed);
      uint64_t drained = 0;
      [[maybe_unused]] const ssize_t rd = ::read(w.wake_fd, &drained, sizeof drained);
    }
  }
  if (deep) workers_deep_idle.fetch_sub(1, std::memory_order_relaxed);
  publish(w);
  engine::PacketBuf* spare[16];
  for (uint32_t n = w.eng->take_spares(spare, 16), i = 0; i < n; ++i) {
    rte_pktmbuf_free(mbuf_of(spare[i]));
  }
  rte_rcu_qsbr_thread_offline(qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(qsbr, w.index);
}

}  // namespace eipgate::dataplane

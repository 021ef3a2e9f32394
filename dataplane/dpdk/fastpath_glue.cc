// The kernel fast path (bpf/fastpath.h) in the dataplane: whether it can run, the counter arrays
// it shares with the engines (memory-mapped BPF arrays), and each worker's step that turns its
// engine's offload records into fp_flows entries with batched map operations.
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>

#include "dataplane/dpdk/dataplane_impl.h"
#include "dataplane/dpdk/offload_entries.h"

namespace eipgate::dataplane {

namespace {

// The engine's view of the program's counter slots: the same layout (static_asserts below).
engine::OffloadCounters* as_offload_counters(fp_flow_counters* c) {
  return reinterpret_cast<engine::OffloadCounters*>(c);
}
static_assert(sizeof(engine::OffloadCounters) == sizeof(fp_flow_counters));
static_assert(offsetof(engine::OffloadCounters, last_seen_ns) ==
              offsetof(fp_flow_counters, last_seen_ns));
static_assert(offsetof(engine::OffloadCounters, packets_out) ==
              offsetof(fp_flow_counters, packets_out));
static_assert(offsetof(engine::OffloadCounters, bytes_out) ==
              offsetof(fp_flow_counters, bytes_out));
static_assert(offsetof(engine::OffloadCounters, packets_in) ==
              offsetof(fp_flow_counters, packets_in));
static_assert(offsetof(engine::OffloadCounters, bytes_in) == offsetof(fp_flow_counters, bytes_in));

// Native XDP (in the driver) on ifindex? Generic (skb) XDP is never used for speed.
std::string xdp_attach_mode(int ifindex, bool* native) {
  bpf_xdp_query_opts opts{};
  opts.sz = sizeof opts;
  if (int err = bpf_xdp_query(ifindex, 0, &opts); err != 0) {
    return std::string("bpf_xdp_query: ") + std::strerror(-err);
  }
  *native = opts.attach_mode == XDP_ATTACHED_DRV || opts.attach_mode == XDP_ATTACHED_HW;
  return {};
}

}  // namespace

// Decides whether the fast path runs and sets it up; on return fastpath.on says which, and
// fastpath.off_reason why not. Every failure leaves the dataplane as it runs without it.
void Dataplane::Impl::setup_fastpath() {
  FastPathState& fp = fastpath;
  auto off = [&](std::string why) {
    fp.on = false;
    fp.off_reason = std::move(why);
    log->info("fast path off: {}", fp.off_reason);
  };
  if (!cfg.fastpath.enabled) return off("fastpath.enabled is false");
  for (const PortState& p : ports) {
    if (!p.steer) {
      return off("port " + p.role +
                 " does not run the XDP steering program (af_xdp with xdp_steering only)");
    }
    const bpf::SteerMapFds& fds = p.steer->map_fds();
    if (fds.fp_flows < 0 || fds.fp_tx_ports < 0 || fds.fp_counters < 0) {
      return off("port " + p.role + ": its XDP program has no fast-path maps (an older object?)");
    }
    bool native = false;
    if (std::string err = xdp_attach_mode(p.ifindex, &native); !err.empty()) {
      return off("port " + p.role + ": " + err);
    }
    if (!native) {
      return off("port " + p.role +
                 ": XDP runs in generic (skb) mode on this device, which is slower than the "
                 "engine; the driver has no native XDP or refused it (MTU above its XDP limit?)");
    }
  }
  fp.ports.clear();
  uint32_t slots = UINT32_MAX;
  for (const PortState& p : ports) {
    FastPathState::PortMaps pm;
    pm.fds = p.steer->map_fds();
    if (std::string err = pm.counters.map(pm.fds.fp_counters); !err.empty()) {
      teardown_fastpath();
      return off("port " + p.role + ": " + err);
    }
    slots = std::min(slots, pm.counters.size());
    fp.ports.push_back(std::move(pm));
  }
  const auto nworkers = static_cast<uint32_t>(workers.size());
  const uint32_t per_worker = std::min<uint32_t>(cfg.engine.max_flows, slots / nworkers);
  if (per_worker == 0) {
    teardown_fastpath();
    return off("fp_counters has " + std::to_string(slots) + " slots for " +
               std::to_string(nworkers) + " workers");
  }
  // Two-armed: each port's program redirects to the other port (fp_tx_ports slot = port index).
  if (ports.size() > 1) {
    for (size_t i = 0; i < ports.size(); ++i) {
      bpf::FastPathTable t(fp.ports[i].fds);
      for (size_t j = 0; j < ports.size(); ++j) {
        if (j == i) continue;
        if (std::string err = t.set_tx_port(static_cast<uint32_t>(j), ports[j].ifindex);
            !err.empty()) {
          teardown_fastpath();
          return off("port " + ports[i].role + ": fp_tx_ports: " + err);
        }
      }
    }
  }
  const FastPathState::PortMaps& in_maps = fp.ports[static_cast<size_t>(inside_port)];
  const FastPathState::PortMaps& out_maps = fp.ports[static_cast<size_t>(outside_port)];
  for (auto& wp : workers) {
    WorkerContext& w = *wp;
    w.fp_inside = std::make_unique<bpf::FastPathTable>(in_maps.fds);
    w.fp_outside = std::make_unique<bpf::FastPathTable>(out_maps.fds);
    w.fp_add_in.reserve(kOffloadBatch);
    w.fp_add_out.reserve(kOffloadBatch);
    w.fp_del_in.reserve(kOffloadBatch);
    w.fp_del_out.reserve(kOffloadBatch);
    engine::OffloadShared shared;
    // Inside -> outside packets arrive on the inside port: its program counts them.
    shared.outbound = as_offload_counters(in_maps.counters.slots());
    shared.inbound = as_offload_counters(out_maps.counters.slots());
    shared.slot_base = w.index * per_worker;
    shared.slots = per_worker;
    w.eng->set_offload(true, shared);
  }
  fp.on = true;
  fp.off_reason.clear();
  // The programs translate from now on (the maps fill as the engines offload).
  for (PortState& p : ports) {
    if (std::string err = p.steer->configure(steer_config()); !err.empty()) {
      log->error("port {}: XDP steering maps not updated for the fast path: {}", p.role, err);
    }
  }
  log->info(
      "fast path on: {} port(s), {} counter slots per worker; established flows are "
      "translated in XDP",
      ports.size(), per_worker);
}

void Dataplane::Impl::teardown_fastpath() {
  for (auto& wp : workers) {
    if (wp->eng) wp->eng->set_offload(false);
    wp->fp_inside.reset();
    wp->fp_outside.reset();
  }
  fastpath.ports.clear();  // unmaps the counter arrays
  fastpath.on = false;
}

// Applies what is batched, in order: a withdrawal queued after an offload of the same flow must
// not run before it.
void Dataplane::Impl::fastpath_apply(WorkerContext& w) {
  auto add = [&](bpf::FastPathTable& t, std::vector<bpf::FastPathEntry>& v) {
    if (v.empty()) return;
    const bpf::OffloadResult r = t.offload(v);
    w.local.fastpath.entries_written += r.offloaded;
    w.local.fastpath.map_full += r.full;
    if (!r.error.empty()) ++w.local.fastpath.errors;
    v.clear();
  };
  auto del = [&](bpf::FastPathTable& t, std::vector<fp_flow_key>& v) {
    if (v.empty()) return;
    const bpf::WithdrawResult r = t.withdraw(v);
    w.local.fastpath.entries_removed += r.withdrawn;
    if (!r.error.empty()) ++w.local.fastpath.errors;
    v.clear();
  };
  add(*w.fp_inside, w.fp_add_in);
  add(*w.fp_outside, w.fp_add_out);
  del(*w.fp_inside, w.fp_del_in);
  del(*w.fp_outside, w.fp_del_out);
}

// One worker's offload records -> fp_flows. Returns the records handled.
uint32_t Dataplane::Impl::fastpath_step(WorkerContext& w, const NeighSnapshot* nb) {
  if (!w.fp_inside) return 0;
  const uint32_t n = w.eng->drain_offload(w.fp_recs.data(), kOffloadBatch);
  if (n == 0) return 0;
  OffloadLayout layout;
  layout.inside_mac = ports[static_cast<size_t>(inside_port)].mac;
  layout.outside_mac = ports[static_cast<size_t>(outside_port)].mac;
  layout.inside_mtu = ports[static_cast<size_t>(inside_port)].mtu;
  layout.outside_mtu = ports[static_cast<size_t>(outside_port)].mtu;
  layout.one_armed = inside_port == outside_port;
  layout.inside_slot = static_cast<uint32_t>(inside_port);
  layout.outside_slot = static_cast<uint32_t>(outside_port);
  bool adds = false;  // what the batches hold, to keep the records' order
  bool dels = false;
  for (uint32_t k = 0; k < n; ++k) {
    const engine::OffloadRecord& r = w.fp_recs[k];
    switch (r.kind) {
      case engine::OffloadKind::Flush:
        fastpath_apply(w);
        adds = dels = false;
        if (!w.fp_inside->clear().empty()) ++w.local.fastpath.errors;
        if (!layout.one_armed && !w.fp_outside->clear().empty()) ++w.local.fastpath.errors;
        ++w.local.fastpath.flushes;
        break;
      case engine::OffloadKind::Withdraw: {
        if (adds) {
          fastpath_apply(w);
          adds = false;
        }
        const OffloadTuples t = offload_tuples(r);
        w.fp_del_in.push_back(bpf::fastpath_key(t.outbound));
        w.fp_del_out.push_back(bpf::fastpath_key(t.inbound));
        dels = true;
        break;
      }
      case engine::OffloadKind::Offload: {
        // An egress probe's flow stays in the engine, where probe_catch() sees its answers and
        // counts late ones as strays.
        if (r.inside_ip == probe_src.load(std::memory_order_relaxed)) break;
        if (dels) {
          fastpath_apply(w);
          dels = false;
        }
        // Next hops as the slow path picks them (next_hop()): the gateway outward; inward the
        // inside gateway or the inside host itself.
        const MacAddr* gw = nb ? nb->find(w.next_hop.gateway) : nullptr;
        const uint32_t in_hop = w.next_hop.inside_gateway ? w.next_hop.inside_gateway : r.inside_ip;
        const MacAddr* host = nb ? nb->find(in_hop) : nullptr;
        const OffloadEntries e = offload_entries(r, layout, gw, host);
        if (e.has_outbound) w.fp_add_in.push_back(e.outbound);
        if (e.has_inbound) w.fp_add_out.push_back(e.inbound);
        w.local.fastpath.no_neighbour += (gw == nullptr) + (host == nullptr);
        adds = adds || e.has_outbound || e.has_inbound;
        break;
      }
    }
  }
  fastpath_apply(w);
  return n;
}

// While the role is unconfirmed (after a freeze) nothing translated may leave: the programs stop
// translating (their flag) until eipgate-control confirms the role; the entries stay.
void Dataplane::Impl::fastpath_hold(bool hold) {
  if (!fastpath.on || fastpath.held.load(std::memory_order_relaxed) == hold) return;
  fastpath.held.store(hold, std::memory_order_relaxed);
  for (PortState& p : ports) {
    if (std::string err = p.steer->configure(steer_config()); !err.empty()) {
      log->error("port {}: XDP steering maps not updated: {}", p.role, err);
    }
  }
  log->info("fast path {}", hold ? "held until the HA role is confirmed" : "resumed");
}

}  // namespace eipgate::dataplane

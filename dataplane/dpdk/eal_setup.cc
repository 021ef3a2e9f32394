// EAL set-up from the configuration (arguments, hugepages, mbuf pool), ports and workers with
// their rings, and the teardown that gives it all back.
#include <net/if.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <sys/eventfd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "dataplane/dpdk/dataplane_impl.h"
#include "dataplane/dpdk/ingress_check.h"

namespace eipgate::dataplane {

namespace {

// The iface= argument of a vdev string (net_af_packet0,iface=eth1,...), or "".
std::string vdev_iface(const std::string& device) {
  const size_t at = device.find("iface=");
  if (at == std::string::npos) return {};
  return device.substr(at + 6, device.find(',', at) - at - 6);
}

uint32_t read_free_hugepages() {
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  uint32_t n = 0;
  f >> n;
  return n;
}

}  // namespace

Dataplane::Dataplane() : impl_(std::make_unique<Impl>()) {}

Dataplane::~Dataplane() {
  Impl& m = *impl_;
  if (!m.eal_ready) return;
  m.exception.reset();  // frees its mbuf: before the EAL goes
  if (m.main_wake_fd >= 0) ::close(m.main_wake_fd);
  m.sync_close_client();
  m.sync_listener.close();
  for (auto& w : m.workers) {
    if (w->wake_fd >= 0) ::close(w->wake_fd);
  }
  m.teardown_fastpath();  // the counter arrays' mappings go before the programs' maps
  for (auto& p : m.ports) {
    if (p.arp_fd >= 0) ::close(p.arp_fd);
    p.steer.reset();
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
  for (auto& [ip, q] : m.unresolved) {
    for (auto& wt : q) rte_pktmbuf_free(wt.m);
  }
  m.unresolved.clear();
  delete m.neigh.load();
  for (auto& r : m.retired) delete r.first;
  rte_eal_cleanup();
  // In memory, the EAL leaves only its empty runtime directory behind; rmdir keeps a non-empty one.
  if (!m.runtime_dir.empty()) ::rmdir(m.runtime_dir.c_str());
}

std::string Dataplane::init(const DataplaneConfig& cfg, const std::string& program) {
  Impl& m = *impl_;
  m.cfg = cfg;
  m.admin_running = std::make_shared<const DataplaneConfig>(cfg);
  m.probe_src.store(cfg.probe_source, std::memory_order_relaxed);
  for (const auto& w : cfg.warnings) m.log->warn("{}", w);
  m.stop = &stop_;
  m.log = log::get();
  const auto nworkers = static_cast<uint16_t>(cfg.worker_lcores.size());
  if (nworkers == 0) return "no worker lcores configured";

  // EAL arguments from the config.
  std::vector<std::string> args = {program};
  std::string lcores = std::to_string(cfg.main_lcore);
  for (uint16_t l : cfg.worker_lcores) lcores += "," + std::to_string(l);
  args.insert(args.end(),
              {"-l", lcores, "--main-lcore", std::to_string(cfg.main_lcore), "--file-prefix",
               "eipgate" + std::to_string(::getpid()), "--no-telemetry"});
  // An af_xdp port's program a killed predecessor left attached (still steering to sockets that
  // are gone, still translating its fast-path flows) would make the PMD's attach fail: remove it.
  for (const auto& p : cfg.ports) {
    if (!p.device.starts_with("net_af_xdp")) continue;
    const std::string iface = vdev_iface(p.device);
    const unsigned ifindex = iface.empty() ? 0 : if_nametoindex(iface.c_str());
    if (ifindex == 0) continue;  // the PMD says what is wrong with the interface
    uint32_t removed = 0;
    if (std::string err = bpf::remove_stale_steer(static_cast<int>(ifindex), &removed);
        !err.empty()) {
      return "port '" + p.name + "': " + err;
    }
    if (removed != 0) {
      m.log->warn(
          "port {}: removed the xdp_steer program (id {}) a previous dataplane left "
          "attached to {}",
          p.name, removed, iface);
    }
  }
  bool any_pci = false;
  for (const auto& p : cfg.ports) {
    if (is_pci_address(p.device)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.device});
    } else if (p.xdp_steering) {
      std::string obj = p.xdp_program;
      if (obj.empty()) {
        obj = EIPGATE_XDP_STEER_OBJECT;
        if (::access(obj.c_str(), R_OK) != 0) obj = "/usr/lib/eipgate/xdp_steer.bpf.o";
      }
      if (::access(obj.c_str(), R_OK) != 0) {
        return "port '" + p.name + "': XDP steering program " + obj + " not readable (" +
               std::strerror(errno) + "); set ports[].xdp_program, or xdp_steering: false";
      }
      args.insert(args.end(), {"--vdev", p.device + ",xdp_prog=" + obj});
    } else {
      args.insert(args.end(), {"--vdev", p.device});
    }
  }
  if (!any_pci) args.emplace_back("--no-pci");
  std::istringstream extra(cfg.eal_extra);
  bool no_huge = false, no_shared_files = false;
  for (std::string a; extra >> a;) {
    no_huge |= a == "--no-huge";
    no_shared_files |= a == "--in-memory" || a == "--no-shconf";
    args.push_back(a);
  }
  // No hugepage files or runtime files that outlive the process (nothing here uses DPDK
  // secondary processes), so a stopped instance gives all its memory back. --no-huge implies
  // legacy memory, which in-memory mode refuses; it has no hugepage files to leave anyway.
  if (!no_shared_files) args.emplace_back(no_huge ? "--no-shconf" : "--in-memory");
  if (!no_huge && read_free_hugepages() == 0) {
    return "no free 2 MiB hugepages: run scripts/setup.sh (or echo 256 > "
           "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages and mount hugetlbfs), or set "
           "eal.extra_args: \"--no-huge -m 512\" for virtual devices";
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  m.log->info("EAL: {}", joined);
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    return std::string("EAL init failed: ") + rte_strerror(rte_errno) + " (arguments: " + joined +
           ")";
  }
  m.eal_ready = true;
  m.runtime_dir = rte_eal_get_runtime_dir();

  const unsigned nmbufs = 8192 * static_cast<unsigned>(cfg.ports.size()) * nworkers + 4096;
  const auto priv =
      static_cast<uint16_t>(RTE_ALIGN(sizeof(engine::PacketBuf), RTE_MBUF_PRIV_ALIGN));
  // The config's MTU bound is what one of these mbufs holds (multi-segment packets are dropped).
  static_assert(kMaxPortMtu + 14 + 8 <= RTE_MBUF_DEFAULT_DATAROOM);
  m.pool = rte_pktmbuf_pool_create("eipgate_mbufs", nmbufs, 256, priv, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
  if (!m.pool) return std::string("mbuf pool: ") + rte_strerror(rte_errno);

  for (const auto& pc : cfg.ports) {
    PortState ps;
    ps.role = pc.name;
    ps.device = device_name(pc.device);
    ps.addr = pc.name == "inside" ? cfg.inside_addr : cfg.interface_addr;
    if (std::string err = m.setup_port(ps, pc, nworkers); !err.empty()) return err;
    if (pc.xdp_steering) {
      if (std::string err = m.setup_steering(ps, pc); !err.empty()) return err;
    }
    m.ports.push_back(ps);
  }
  for (size_t i = 0; i < m.ports.size(); ++i) {
    if (m.ports[i].role == "inside") m.inside_port = static_cast<int>(i);
    if (m.ports[i].role == "outside") m.outside_port = static_cast<int>(i);
  }

  if (cfg.exception.enabled) {
    // One TAP per port with that port's MAC and address; the outside (or data) port's also holds
    // the outside addresses (the kernel answers their pings) and a fallback default route.
    std::vector<ExceptionInterface> ifs;
    for (size_t i = 0; i < m.ports.size(); ++i) {
      const PortState& ps = m.ports[i];
      if (ps.steer) continue;  // the kernel's own interface is the host path of a steered port
      ExceptionInterface e;
      e.port_id = ps.id;
      e.mac = ps.mac;
      e.ifname = TapExceptionPath::interface_name(cfg.exception.tap_name, i);
      e.mtu = ps.mtu;
      const bool inside = ps.role == "inside";
      e.addr = ps.addr;
      e.prefix_len = inside ? cfg.inside_prefix_len : cfg.interface_prefix_len;
      if (!inside) {
        e.extra_addrs = cfg.engine.outside_addrs;
        e.gateway = cfg.next_hop.gateway;
      }
      ifs.push_back(std::move(e));
      if (cfg.ports[i].device.starts_with("net_af_packet")) {
        const std::string iface = vdev_iface(cfg.ports[i].device);
        std::string why;
        switch (kernel_ingress_dropped(iface, &why)) {
          case IngressDrop::Present:
            m.log->info("port {}: the kernel's ingress on {} is dropped (nftables netdev chain)",
                        ps.role, iface);
            break;
          case IngressDrop::Missing:
          case IngressDrop::Unknown:
            m.log->warn(
                "port {}: af_packet leaves the kernel a copy of every frame and no nftables "
                "netdev ingress chain with policy drop on {} was found{}{}; drop the "
                "interface's kernel ingress, or the kernel will also answer for the exception "
                "path's addresses",
                ps.role, iface, why.empty() ? "" : " (", why.empty() ? "" : why + ")");
            break;
        }
      }
    }
    if (!ifs.empty()) {
      m.exception = std::make_unique<TapExceptionPath>();
      const uint32_t max_frame = rte_pktmbuf_data_room_size(m.pool) - RTE_PKTMBUF_HEADROOM;
      if (std::string err = m.exception->open(ifs, max_frame, m.pool); !err.empty()) return err;
    }
  }

  m.main_wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.main_wake_fd < 0) return std::string("eventfd: ") + std::strerror(errno);
  m.host_ring = rte_ring_create("eipgate_host", kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
  m.resolve_ring = rte_ring_create("eipgate_resolve", kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (!m.host_ring || !m.resolve_ring) return std::string("rings: ") + rte_strerror(rte_errno);
  const size_t qsz = rte_rcu_qsbr_get_memsize(nworkers);
  m.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("eipgate_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (!m.qsbr || rte_rcu_qsbr_init(m.qsbr, nworkers) != 0) return "rcu init failed";

  for (uint16_t w = 0; w < nworkers; ++w) {
    auto wk = std::make_unique<WorkerContext>();
    wk->index = w;
    wk->lcore = cfg.worker_lcores[w];
    wk->next_hop = cfg.next_hop;
    wk->polling = cfg.polling;
    wk->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wk->wake_fd < 0) return std::string("eventfd: ") + std::strerror(errno);
    engine::EngineConfig ec = cfg.engine;
    ec.worker_id = w;
    ec.worker_count = nworkers;
    if (nworkers > 1) {
      ec.rss.key = kRssKey;
      ec.rss.reta.resize(128);
      for (size_t i = 0; i < ec.rss.reta.size(); ++i)
        ec.rss.reta[i] = static_cast<uint16_t>(i % nworkers);
    }
    if (ec.random_seed == 0)
      ec.random_seed = now_ns() ^ (uint64_t{w} << 48) ^ static_cast<uint64_t>(::getpid());
    try {
      wk->eng = std::make_unique<engine::Engine>(ec);
    } catch (const std::exception& e) {
      return e.what();
    }
    const std::string hn = "eipgate_hand" + std::to_string(w);
    const std::string in = "eipgate_inj" + std::to_string(w);
    wk->handoff = rte_ring_create(hn.c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    wk->inject = rte_ring_create(in.c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (!wk->handoff || !wk->inject) return std::string("rings: ") + rte_strerror(rte_errno);
    const std::string so = "eipgate_so" + std::to_string(w);
    const std::string si = "eipgate_si" + std::to_string(w);
    wk->sync_out = rte_ring_create_elem(so.c_str(), sizeof(engine::SyncRecord), 1u << 16,
                                        SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    wk->sync_in = rte_ring_create_elem(si.c_str(), sizeof(engine::SyncRecord), 1u << 16,
                                       SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (!wk->sync_out || !wk->sync_in) return std::string("sync rings: ") + rte_strerror(rte_errno);
    const std::string dn = "eipgate_deny" + std::to_string(w);
    wk->denials = rte_ring_create_elem(dn.c_str(), sizeof(engine::DenyRecord), 1024, SOCKET_ID_ANY,
                                       RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!wk->denials) return std::string("deny ring: ") + rte_strerror(rte_errno);
    if (cfg.translation_log.enabled) {
      const std::string tn = "eipgate_txl" + std::to_string(w);
      wk->txlog = rte_ring_create_elem(tn.c_str(), sizeof(engine::TxLogRecord), 1u << 14,
                                       SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!wk->txlog) return std::string("translation log ring: ") + rte_strerror(rte_errno);
      wk->eng->set_translation_log(true);
    }
    m.workers.push_back(std::move(wk));
  }
  m.setup_fastpath();
  if (std::string err = m.open_sync_socket(); !err.empty()) return err;
  if (std::string err = m.progress.create(proto::progress_path_for(cfg.admin.socket_path),
                                          static_cast<uint32_t>(m.workers.size()));
      !err.empty()) {
    return err;
  }
  m.log->info("dataplane ready: {} port(s), {} worker(s), {} flows per worker", m.ports.size(),
              nworkers, cfg.engine.max_flows);
  return {};
}

}  // namespace eipgate::dataplane

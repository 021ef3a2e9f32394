// DPDK process: EAL and port setup, worker loops around the engine, handoff and inject rings,
// ARP (answer, resolve, refresh) and the host path on the main lcore, stats publication.
#include "dataplane/dpdk/dataplane.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/admin/admin_server.h"
#include "dataplane/admin/port_xstats.h"
#include "dataplane/admin/stats_json.h"
#include "common/byte_order.h"
#include "common/ipv4_text.h"
#include "common/log.h"
#include "dataplane/dpdk/arp.h"
#include "dataplane/dpdk/exception_path.h"
#include "dataplane/dpdk/probe.h"
#include "dataplane/dpdk/resolver.h"
#include "control/ha/flow_event.h"
#include "dataplane/policy/compiled_policy.h"
#include "bpf/steer_loader.h"

namespace eipgate::dataplane {

namespace {

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRingSize = 4096;
constexpr uint16_t kRxDesc = 1024;
constexpr uint16_t kTxDesc = 1024;
constexpr uint32_t kPublishEveryLoops = 1024;

// The Microsoft RSS reference key: any fixed key works as long as NIC and engine share it.
constexpr std::array<uint8_t, 40> kRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string mac_str(const MacAddr& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

// The ethdev name of a device argument: the PCI address, or the vdev name before the first ','.
std::string device_name(const std::string& dev) { return dev.substr(0, dev.find(',')); }

uint32_t read_free_hugepages() {
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  uint32_t n = 0;
  f >> n;
  return n;
}

// Packet metadata lives in the mbuf's private area so it survives handoff and holding.
engine::PacketBuf* pbuf(rte_mbuf* m) {
  return static_cast<engine::PacketBuf*>(rte_mbuf_to_priv(m));
}
rte_mbuf* mbuf_of(engine::PacketBuf* p) {
  return reinterpret_cast<rte_mbuf*>(reinterpret_cast<uint8_t*>(p) - sizeof(rte_mbuf));
}

// Offset of the IPv4 header (after up to two VLAN tags), or 0 when not IPv4.
uint32_t ipv4_offset(const uint8_t* d, uint32_t len) {
  uint32_t off = 12;
  for (int i = 0; i < 3 && len >= off + 2; ++i) {
    const uint16_t et = static_cast<uint16_t>(d[off] << 8 | d[off + 1]);
    if (et == 0x0800) return off + 2;
    if (et != 0x8100 && et != 0x88a8) return 0;
    off += 4;
  }
  return 0;
}

struct NeighSnapshot {
  std::unordered_map<uint32_t, MacAddr> macs;
};

}  // namespace

struct PortState {
  std::string role;  // "data", "inside", "outside"
  std::string device;  // ports[].device up to its first ','
  uint16_t id = 0;
  // The PMD's xstats names by id, read once (again only if the PMD's count changes).
  std::vector<std::string> xstat_names;
  MacAddr mac{};
  uint32_t addr = 0;  // host order
  // af_xdp with steering: the kernel keeps the non-NAT traffic (ARP included); the dataplane
  // configures the XDP program's maps and listens to the interface's ARP with a packet socket.
  std::shared_ptr<bpf::AttachedSteer> steer;
  int arp_fd = -1;
  bool rx_intr = false;  // configured with Rx queue interrupts (the driver may still refuse)
  uint16_t mtu = 1500;   // the MTU the PMD took (ports[].mtu unless it refused it)
};

struct alignas(64) Worker {
  uint16_t index = 0;
  unsigned lcore = 0;
  std::unique_ptr<engine::Engine> eng;
  rte_ring* handoff = nullptr;  // packets other workers hand to this one
  rte_ring* inject = nullptr;   // packets the main lcore wants transmitted (host path, ARP)
  WorkerStatus local;
  // Copy for the main lcore and the admin socket, refreshed every kPublishEveryLoops loops and
  // when idle; a mutex is cheap at that rate.
  mutable std::mutex pub_mu;
  WorkerStatus published;
  // Flow dump on request: the engine is single-threaded, so the worker copies its own flows
  // between bursts when the admin thread asks (dump_gen ahead of dump_done).
  std::atomic<uint64_t> dump_gen{0};
  std::atomic<uint64_t> dump_done{0};
  std::vector<engine::FlowView> dump;
  // The live-reloadable settings this worker reads, its own copies (Impl::cfg is the main
  // lcore's), and the config generation it applied (reload() waits for every worker's ack).
  NextHop next_hop;
  PollingConfig polling;
  uint64_t cfg_gen = 0;
  bool rx_intr = false;     // every polled queue registered in this thread's interrupt epoll
  bool wake_main = false;   // this loop handed the main lcore work (host or resolve ring)
  // An idle worker sleeps in ppoll()/epoll on this eventfd, so whoever hands it packets (the main
  // lcore's inject ring, another worker's handoff) can wake it at once.
  int wake_fd = -1;
  std::atomic<bool> sleeping{false};
  rte_epoll_event wake_ev{};
  // Connection-table sync: flow changes this worker's engine recorded (active role) -> main
  // lcore, and the peer's records for this worker to install (standby role). Rings of
  // engine::SyncRecord elements. A snapshot walks the table in slices (snap_gen ahead of
  // snap_done; snap_cursor is the position).
  rte_ring* sync_out = nullptr;
  rte_ring* sync_in = nullptr;
  std::atomic<uint64_t> snap_gen{0};
  std::atomic<uint64_t> snap_done{0};
  uint64_t snap_running = 0;
  uint32_t snap_cursor = 0;
  uint64_t sync_out_dropped = 0;
  uint64_t sync_applied = 0;
  uint64_t sync_refused = 0;
  rte_ring* denials = nullptr;  // engine::DenyRecord elements -> main lcore (audit log)
  std::atomic<uint64_t> cfg_acked{0};
  std::string cfg_error;  // written before cfg_acked is released
};

struct Dataplane::Impl {
  DataplaneConfig cfg;
  std::vector<PortState> ports;
  // The ports' xstats, read on the main lcore at most once a second and published here for the
  // admin thread: ENA fetches its ENI counters (the allowance limiters) over the device's admin
  // queue, which is neither cheap nor something two threads should drive at once.
  struct PortXstats {
    std::vector<admin::XstatValue> values;
    std::string error;
  };
  std::mutex xstats_mu;
  std::vector<PortXstats> xstats;  // by index into ports, under xstats_mu
  uint64_t xstats_read_ms = 0;     // under xstats_mu; 0 = not read yet
  int inside_port = 0;
  int outside_port = 0;
  rte_mempool* pool = nullptr;
  std::vector<std::unique_ptr<Worker>> workers;
  rte_ring* host_ring = nullptr;     // ToHost packets (ARP, the instance's own) -> main lcore
  // Translated packets whose next hop has no MAC yet -> main lcore, which queues them (as the
  // kernel's unresolved-neighbour queue does) until ARP answers, then sends them; the next hop
  // rides in mbuf->hash.usr.
  rte_ring* resolve_ring = nullptr;
  struct Waiting {
    rte_mbuf* m;
    uint64_t since_ms;
  };
  std::unordered_map<uint32_t, std::vector<Waiting>> unresolved;
  size_t unresolved_count = 0;
  static constexpr size_t kUnresolvedPerHop = 64;
  static constexpr size_t kUnresolvedTotal = 1024;
  static constexpr uint64_t kUnresolvedTimeoutMs = 3000;
  std::atomic<uint64_t> arp_queued{0}, arp_queue_sent{0}, arp_queue_dropped{0};
  // Egress policy audit: denials logged at most kDenyLogBurst at once and kDenyLogPerSec after,
  // the rest counted and summarised once a second.
  static constexpr double kDenyLogPerSec = 20, kDenyLogBurst = 100;
  double deny_tokens = kDenyLogBurst;
  uint64_t deny_tokens_ms = 0;
  uint64_t deny_suppressed_pending = 0;
  std::atomic<uint64_t> denials_logged{0}, denials_unlogged{0};

  void log_denials(uint64_t now_ms) {
    deny_tokens = std::min(kDenyLogBurst,
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
      log->warn("policy deny: {} more denials not logged (rate limit {}/s)",
                deny_suppressed_pending, kDenyLogPerSec);
      deny_suppressed_pending = 0;
    }
  }

  // HA role (admin ha_role) and the sync socket eipgate-control connects to (control/ha).
  enum : int { kRoleNone = 0, kRoleActive = 1, kRoleStandby = 2 };
  std::atomic<int> ha_role{kRoleNone};
  std::atomic<uint64_t> ha_epoch{0};
  std::atomic<uint64_t> announce_gen{0};
  std::atomic<uint64_t> announce_done{0};
  std::atomic<uint64_t> announce_count{0};
  // Egress probes (dpdk/probe.h): the admin thread starts one at a time (a SYN from probe_src
  // through the engine); the worker that sees the answer after NAT records it and, for a SYN-ACK,
  // closes the connection with an RST through the NAT. Whatever else reaches probe_src (stale or
  // repeated answers) is dropped: no host holds that address.
  std::atomic<uint32_t> probe_src{0};  // running config's probe.source; 0 = probes impossible
  std::atomic<uint16_t> probe_sport{0};
  std::atomic<uint32_t> probe_dst{0};
  std::atomic<uint8_t> probe_answer{0};
  std::atomic<uint64_t> probe_answered_ns{0};
  std::atomic<uint64_t> probes_sent{0}, probes_answered{0}, probe_strays{0};
  std::string sync_path;
  int sync_listen_fd = -1;
  int sync_client_fd = -1;
  std::atomic<bool> sync_connected{false};  // for the admin thread's stats
  bool snapshot_open = false;  // begin sent, end not yet
  uint64_t snapshot_gen = 0;
  std::atomic<uint64_t> sync_sent{0}, sync_send_dropped{0}, sync_received{0}, sync_malformed{0},
      sync_snapshots{0};
  // A deeply idle main lcore sleeps in poll(); workers that hand it work write this eventfd.
  int main_wake_fd = -1;
  std::atomic<bool> main_sleeping{false};
  std::atomic<uint64_t> workers_deep_idle{0};  // workers in deep idle (the main lcore follows)

  static void wake_worker(Worker& w) {
    if (w.sleeping.load(std::memory_order_seq_cst)) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(w.wake_fd, &one, sizeof one);
    }
  }

  void wake_main() {
    if (main_sleeping.load(std::memory_order_seq_cst)) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(main_wake_fd, &one, sizeof one);
    }
  }
  rte_rcu_qsbr* qsbr = nullptr;
  std::atomic<const NeighSnapshot*> neigh{nullptr};
  std::vector<std::pair<const NeighSnapshot*, uint64_t>> retired;
  NeighbourTable table;
  std::unordered_map<uint32_t, uint64_t> last_request_ms;
  std::atomic<bool>* stop = nullptr;
  bool eal_ready = false;
  std::shared_ptr<spdlog::logger> log;

  std::unique_ptr<TapExceptionPath> exception;  // null when exception_path.enabled is false
  std::atomic<uint64_t> host_dropped{0};        // the instance's own traffic the kernel did not get
  uint64_t arp_replies_sent = 0;
  uint64_t garps_sent = 0;
  std::mutex dump_mu;  // one flow dump at a time

  // Live reload (Handler::reload): the admin thread validates a new config and publishes it with
  // a generation; the main lcore and every worker apply it at a loop boundary and acknowledge.
  std::mutex next_mu;
  std::shared_ptr<const DataplaneConfig> next_cfg;  // guarded by next_mu
  std::atomic<uint64_t> cfg_gen{0};
  uint64_t main_cfg_gen = 0;
  std::atomic<uint64_t> main_cfg_acked{0};
  // The admin thread's copy; the resolver thread replaces it too (admin_mu).
  std::mutex admin_mu;
  std::shared_ptr<const DataplaneConfig> admin_running;  // guarded by admin_mu
  // The policy the resolver follows (as loaded, before resolved names): guarded by admin_mu.
  std::shared_ptr<const policy::CompiledPolicy> resolver_base;
  std::unique_ptr<Resolver> resolver;

  // Points the resolver at resolver_base (created on first need; idle without names).
  void retarget_resolver() {
    std::shared_ptr<const policy::CompiledPolicy> base;
    {
      std::lock_guard lock(admin_mu);
      base = resolver_base;
    }
    if (!resolver) {
      if (!base || base->names_to_resolve().empty()) return;
      resolver = std::make_unique<Resolver>(
          log, [this](const std::shared_ptr<const policy::CompiledPolicy>& b,
                      std::shared_ptr<const policy::CompiledPolicy> r) {
            on_resolved(b, std::move(r));
          });
    }
    resolver->retarget(std::move(base));
  }

  std::shared_ptr<const DataplaneConfig> running_config() {
    std::lock_guard lock(admin_mu);
    return admin_running;
  }

  // Publishes a new config generation (the main lcore and every worker pick it up at a loop
  // boundary); returns the generation. Caller holds admin_mu and then sets admin_running.
  uint64_t publish_config(std::shared_ptr<const DataplaneConfig> next) {
    std::lock_guard lock(next_mu);
    next_cfg = std::move(next);
    return cfg_gen.fetch_add(1, std::memory_order_acq_rel) + 1;
  }

  // Resolver callback: `resolved` replaces the running policy when `base` is still the policy
  // being followed (a reload in between retargets the resolver and this result is dropped).
  void on_resolved(const std::shared_ptr<const policy::CompiledPolicy>& base,
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

  std::vector<WorkerStatus> snapshot() const {
    std::vector<WorkerStatus> out;
    for (const auto& w : workers) {
      std::lock_guard lock(w->pub_mu);
      out.push_back(w->published);
    }
    return out;
  }

  [[nodiscard]] bool is_own_address(const PortState& p, uint32_t ip) const {
    if (ip == 0) return false;
    if (ip == p.addr || ip == cfg.interface_addr) return true;
    if (p.role == "inside") return false;  // service addresses live on the outside / data port
    for (uint32_t a : cfg.engine.outside_addrs) {
      if (a == ip) return true;
    }
    return false;
  }

  std::string setup_port(PortState& ps, const PortConfig& pc, uint16_t nworkers) {
    const std::string name = device_name(pc.device);
    if (rte_eth_dev_get_port_by_name(name.c_str(), &ps.id) != 0) {
      return "port '" + pc.name + "': device '" + pc.device +
             "' not found (wrong PCI address, driver not bound, or bad vdev string)";
    }
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(ps.id, &info); rc != 0) {
      return "port '" + pc.name + "': cannot read device info: " + rte_strerror(-rc);
    }
    rte_eth_conf conf{};
    if (nworkers > 1) {
      const uint64_t want =
          RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
      if ((info.flow_type_rss_offloads & want) == 0 || info.max_rx_queues < nworkers) {
        return "port '" + pc.name + "' (" + info.driver_name + ") has no RSS over " +
               std::to_string(nworkers) + " queues: configure one worker";
      }
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      static std::array<uint8_t, 40> key = kRssKey;
      conf.rx_adv_conf.rss_conf.rss_key = key.data();
      conf.rx_adv_conf.rss_conf.rss_key_len = 40;
      conf.rx_adv_conf.rss_conf.rss_hf = want & info.flow_type_rss_offloads;
    }
    // Rx interrupts where the driver has them: PCI devices (ENA, virtio) and tap.
    ps.rx_intr = cfg.polling.adaptive && cfg.polling.rx_interrupts &&
                 (is_pci_address(pc.device) || pc.device.starts_with("net_tap"));
    conf.intr_conf.rxq = ps.rx_intr ? 1 : 0;
    int conf_rc = rte_eth_dev_configure(ps.id, nworkers, nworkers, &conf);
    if (conf_rc != 0 && ps.rx_intr) {
      log->info("port {}: no Rx interrupts ({}); idle workers will sleep", pc.name,
                rte_strerror(-conf_rc));
      ps.rx_intr = false;
      conf.intr_conf.rxq = 0;
      conf_rc = rte_eth_dev_configure(ps.id, nworkers, nworkers, &conf);
    }
    if (conf_rc != 0) {
      return "port '" + pc.name + "': configure failed: " + rte_strerror(-conf_rc);
    }
    uint16_t nrx = kRxDesc;
    uint16_t ntx = kTxDesc;
    rte_eth_dev_adjust_nb_rx_tx_desc(ps.id, &nrx, &ntx);
    const int socket = rte_eth_dev_socket_id(ps.id);
    for (uint16_t q = 0; q < nworkers; ++q) {
      if (int rc = rte_eth_rx_queue_setup(ps.id, q, nrx, socket < 0 ? 0 : socket, nullptr, pool);
          rc != 0) {
        return "port '" + pc.name + "': rx queue setup failed: " + rte_strerror(-rc);
      }
      if (int rc = rte_eth_tx_queue_setup(ps.id, q, ntx, socket < 0 ? 0 : socket, nullptr);
          rc != 0) {
        return "port '" + pc.name + "': tx queue setup failed: " + rte_strerror(-rc);
      }
    }
    // A PMD may refuse the MTU (virtio: larger than an mbuf without Rx scatter): say so, and
    // keep what the port really has for the exception path's TAP.
    const int mtu_rc = pc.mtu != 1500 ? rte_eth_dev_set_mtu(ps.id, pc.mtu) : 0;
    if (rte_eth_dev_get_mtu(ps.id, &ps.mtu) != 0) ps.mtu = pc.mtu;
    if (mtu_rc != 0) {
      log->warn("port {} ({}): {} refused MTU {} ({}); the port keeps MTU {}", pc.name, pc.device,
                info.driver_name, pc.mtu, rte_strerror(-mtu_rc), ps.mtu);
    }
    if (pc.mac) {
      auto m = parse_mac(*pc.mac);
      if (!m) return "port '" + pc.name + "': bad mac '" + *pc.mac + "'";
      rte_ether_addr a;
      std::memcpy(a.addr_bytes, m->data(), 6);
      rte_eth_dev_default_mac_addr_set(ps.id, &a);
    }
    if (int rc = rte_eth_dev_start(ps.id); rc != 0) {
      return "port '" + pc.name + "': start failed: " + rte_strerror(-rc);
    }
    rte_ether_addr a;
    rte_eth_macaddr_get(ps.id, &a);
    std::memcpy(ps.mac.data(), a.addr_bytes, 6);
    if (nworkers > 1 && info.reta_size > 0) {
      std::vector<rte_eth_rss_reta_entry64> reta(info.reta_size / RTE_ETH_RETA_GROUP_SIZE);
      for (uint16_t i = 0; i < info.reta_size; ++i) {
        auto& g = reta[i / RTE_ETH_RETA_GROUP_SIZE];
        g.mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
        g.reta[i % RTE_ETH_RETA_GROUP_SIZE] = static_cast<uint16_t>(i % nworkers);
      }
      rte_eth_dev_rss_reta_update(ps.id, reta.data(), info.reta_size);
    }
    log->info("port {} ({}): id {} driver {} mac {} queues {}", pc.name, pc.device, ps.id,
              info.driver_name, mac_str(ps.mac), nworkers);
    return {};
  }

  // af_xdp with steering: DPDK attached xdp_steer (xdp_prog=) at port start; adopt its maps and
  // fill them, and listen to the interface's ARP (which the program leaves to the kernel).
  std::string setup_steering(PortState& ps, const PortConfig& pc) {
    const size_t at = pc.device.find("iface=");
    const std::string iface =
        at == std::string::npos ? "" : pc.device.substr(at + 6, pc.device.find(',', at) - at - 6);
    const unsigned ifindex = iface.empty() ? 0 : if_nametoindex(iface.c_str());
    if (ifindex == 0) {
      return "port '" + pc.name + "': XDP steering: interface '" + iface + "' not found";
    }
    auto steer = std::make_shared<bpf::AttachedSteer>();
    if (std::string err = steer->adopt(static_cast<int>(ifindex)); !err.empty()) {
      return "port '" + pc.name + "': XDP steering: " + err;
    }
    if (std::string err = steer->configure(steer_config()); !err.empty()) {
      return "port '" + pc.name + "': XDP steering maps: " + err;
    }
    ps.steer = std::move(steer);
    ps.arp_fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (ps.arp_fd < 0) {
      return "port '" + pc.name + "': ARP packet socket: " + std::strerror(errno);
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = static_cast<int>(ifindex);
    if (::bind(ps.arp_fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      return "port '" + pc.name + "': binding the ARP socket to " + iface + ": " +
             std::strerror(errno);
    }
    log->info("port {}: XDP steering program {} on {} configured; kernel keeps non-NAT traffic",
              pc.name, ps.steer->prog_id(), iface);
    return {};
  }

  // --- worker side ----------------------------------------------------------------------------

  const PortState& port_for(engine::Verdict v) const {
    return ports[static_cast<size_t>(v == engine::Verdict::ToOutside ? outside_port : inside_port)];
  }

  // Next hop for a translated packet: the gateway outward; inward the inside gateway or, when
  // inside hosts are on-link, the packet's destination.
  static uint32_t next_hop(const Worker& w, engine::Verdict v, const uint8_t* d, uint32_t len) {
    if (v == engine::Verdict::ToOutside) return w.next_hop.gateway;
    if (w.next_hop.inside_gateway) return w.next_hop.inside_gateway;
    const uint32_t off = ipv4_offset(d, len);
    return off && len >= off + 20 ? be::get32(d + off + 16) : 0;
  }

  void publish(Worker& w) {
    w.local.stats = w.eng->stats();
    w.local.sync_out_dropped = w.sync_out_dropped;
    w.local.sync_applied = w.sync_applied;
    w.local.sync_refused = w.sync_refused;
    w.local.sync_overflows = w.eng->sync_overflows();
    w.local.rule_hits = w.eng->rule_hits();
    std::lock_guard lock(w.pub_mu);
    w.published = w.local;
  }

  void dispatch(Worker& w, engine::PacketBuf* const* pbs, const engine::Result* res, uint16_t n,
                const NeighSnapshot* nb, std::array<std::vector<rte_mbuf*>, 2>& tx) {
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = mbuf_of(pbs[i]);
      engine::PacketBuf& pb = *pbs[i];
      switch (res[i].verdict) {
        case engine::Verdict::ToOutside:
        case engine::Verdict::ToInside: {
          if (res[i].verdict == engine::Verdict::ToInside && probe_catch(w, pb)) break;
          m->data_len = static_cast<uint16_t>(pb.len);
          m->pkt_len = pb.len;
          const PortState& out = port_for(res[i].verdict);
          const uint32_t nh = next_hop(w, res[i].verdict, pb.data, pb.len);
          const auto it = nb ? nb->macs.find(nh) : decltype(nb->macs)::const_iterator{};
          if (!nb || it == nb->macs.end()) {
            ++w.local.no_neighbour;
            std::memcpy(pb.data + 6, out.mac.data(), 6);
            m->port = out.id;
            m->hash.usr = nh;
            if (nh == 0 || rte_ring_mp_enqueue(resolve_ring, m) != 0) {
              arp_queue_dropped.fetch_add(1, std::memory_order_relaxed);
              rte_pktmbuf_free(m);
            }
            w.wake_main = true;
            break;
          }
          std::memcpy(pb.data, it->second.data(), 6);
          std::memcpy(pb.data + 6, out.mac.data(), 6);
          m->port = out.id;
          tx[&out == &ports[static_cast<size_t>(outside_port)] && outside_port != inside_port ? 1
                                                                                              : 0]
              .push_back(m);
          break;
        }
        case engine::Verdict::ToHost:
          if (rte_ring_mp_enqueue(host_ring, m) != 0) rte_pktmbuf_free(m);
          w.wake_main = true;
          break;
        case engine::Verdict::Handoff:
          if (res[i].worker >= workers.size() ||
              rte_ring_mp_enqueue(workers[res[i].worker]->handoff, m) != 0) {
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
  bool probe_catch(Worker& w, engine::PacketBuf& pb) {
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
  void lend_spares(Worker& w) {
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

  // --- connection-table sync, worker side ------------------------------------------------------

  uint32_t sync_step(Worker& w) {
    {
      engine::DenyRecord d[16];
      if (const uint32_t n = w.eng->drain_denials(d, 16)) {
        const unsigned q = rte_ring_sp_enqueue_burst_elem(w.denials, d, sizeof d[0], n, nullptr);
        denials_unlogged.fetch_add(n - q, std::memory_order_relaxed);
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
        const unsigned q = rte_ring_sp_enqueue_burst_elem(w.sync_out, recs, sizeof recs[0], n,
                                                          nullptr);
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
    const unsigned k =
        rte_ring_sc_dequeue_burst_elem(w.sync_in, recs, sizeof recs[0], 64, nullptr);
    for (unsigned i = 0; i < k; ++i) {
      if (w.eng->apply_sync(recs[i], now_ns()).empty()) {
        ++w.sync_applied;
      } else {
        ++w.sync_refused;
      }
    }
    return did + k;
  }

  // Rx interrupts (l3fwd-power style): each worker adds its queues to its own thread's epoll;
  // a driver without them (af_xdp, af_packet) refuses and the worker sleeps instead.
  bool register_rx_interrupts(Worker& w) {
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

  void wait_rx_interrupt(const Worker& w, uint32_t max_us) {
    for (const auto& p : ports) rte_eth_dev_rx_intr_enable(p.id, w.index);
    rte_epoll_event ev[8];
    rte_epoll_wait(RTE_EPOLL_PER_THREAD, ev, 8, static_cast<int>(std::max<uint32_t>(1, max_us / 1000)));
    for (const auto& p : ports) rte_eth_dev_rx_intr_disable(p.id, w.index);
  }

  std::shared_ptr<const DataplaneConfig> pending_config(uint64_t* gen) {
    std::lock_guard lock(next_mu);
    *gen = cfg_gen.load(std::memory_order_acquire);
    return next_cfg;
  }

  // A worker takes a new config between bursts: its engine keeps every flow (reconfigure), the
  // worker-specific fields (id, RSS, seed) stay as built.
  void apply_config(Worker& w) {
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

  void transmit(Worker& w, uint16_t port_id, std::vector<rte_mbuf*>& v) {
    uint16_t sent = 0;
    const auto n = static_cast<uint16_t>(v.size());
    for (int tries = 0; sent < n && tries < 4; ++tries) {
      sent = static_cast<uint16_t>(sent + rte_eth_tx_burst(port_id, w.index, v.data() + sent,
                                                           static_cast<uint16_t>(n - sent)));
    }
    w.local.tx_packets += sent;
    for (uint16_t i = sent; i < n; ++i) rte_pktmbuf_free(v[i]);
    w.local.tx_dropped += n - sent;
    v.clear();
  }

  void worker_loop(Worker& w) {
    rte_rcu_qsbr_thread_register(qsbr, w.index);
    rte_rcu_qsbr_thread_online(qsbr, w.index);
    prctl(PR_SET_TIMERSLACK, 1UL);  // idle sleeps end when asked, not up to 50 us later
    w.rx_intr = register_rx_interrupts(w);
    uint64_t last_work = now_ns();
    bool deep = false;
    rte_mbuf* mbufs[kBurst];
    engine::PacketBuf* pbs[engine::Engine::kMaxBurst];
    engine::Result res[engine::Engine::kMaxBurst];
    std::array<std::vector<rte_mbuf*>, 2> tx;
    tx[0].reserve(256);
    tx[1].reserve(256);
    uint32_t idle = 0;
    uint64_t last_expire = now_ns();
    while (!stop->load(std::memory_order_relaxed)) {
      const NeighSnapshot* nb = neigh.load(std::memory_order_acquire);
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
      if (const auto n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
              w.inject, reinterpret_cast<void**>(mbufs), kBurst, nullptr))) {
        for (uint16_t i = 0; i < n; ++i) {
          (mbufs[i]->port == ports[static_cast<size_t>(outside_port)].id &&
                   outside_port != inside_port
               ? tx[1]
               : tx[0])
              .push_back(mbufs[i]);
        }
        work += n;
      }
      if (!tx[0].empty()) transmit(w, ports[static_cast<size_t>(inside_port)].id, tx[0]);
      if (!tx[1].empty()) transmit(w, ports[static_cast<size_t>(outside_port)].id, tx[1]);
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

  // --- main lcore -----------------------------------------------------------------------------

  void inject(rte_mbuf* m) {
    if (rte_ring_mp_enqueue(workers[0]->inject, m) != 0) {
      rte_pktmbuf_free(m);
      return;
    }
    wake_worker(*workers[0]);
  }

  void send_arp(const PortState& p, uint16_t op, const MacAddr& dst_mac, uint32_t dst_ip,
                uint32_t src_ip) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return;
    auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kArpFrameLen));
    build_arp(d, op, p.mac, src_ip, dst_mac, dst_ip);
    m->port = p.id;
    inject(m);
  }

  void request(uint32_t ip, uint64_t now_ms) {
    if (ip == 0) return;
    auto& last = last_request_ms[ip];
    if (last && now_ms - last < 1000) return;  // at most one request per second per address
    last = now_ms;
    for (const auto& p : ports) {
      const uint32_t src = p.addr ? p.addr : cfg.interface_addr;
      send_arp(p, kArpRequest, MacAddr{}, ip, src);
    }
  }

  bool handle_arp(rte_mbuf* m, uint64_t now_ms) {
    return handle_arp(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, m->port, now_ms);
  }

  bool handle_arp(const uint8_t* d, uint32_t len, uint16_t port_id, uint64_t now_ms) {
    const auto arp = parse_arp(d, len);
    if (!arp) return false;
    const PortState* port = nullptr;
    for (const auto& p : ports) {
      if (p.id == port_id) port = &p;
    }
    if (!port) return false;
    bool learnt = false;
    if (arp->sender_ip != 0 && (arp->op == kArpReply || is_own_address(*port, arp->target_ip))) {
      table.learn(arp->sender_ip, arp->sender_mac, now_ms);
      learnt = true;
    }
    if (arp->op == kArpRequest && is_own_address(*port, arp->target_ip)) {
      send_arp(*port, kArpReply, arp->sender_mac, arp->sender_ip, arp->target_ip);
      ++arp_replies_sent;
    }
    return learnt;
  }

  void publish_neighbours(uint64_t now_ms) {
    auto* snap = new NeighSnapshot;
    table.for_each_due(now_ms, UINT64_MAX / 2, [&](uint32_t ip) {
      if (auto mac = table.lookup(ip, now_ms)) snap->macs[ip] = *mac;
    });
    if (cfg.next_hop.static_mac) {
      if (auto mac = parse_mac(*cfg.next_hop.static_mac)) snap->macs[cfg.next_hop.gateway] = *mac;
    }
    const NeighSnapshot* old = neigh.exchange(snap, std::memory_order_acq_rel);
    if (old) retired.emplace_back(old, rte_rcu_qsbr_start(qsbr));
  }

  void reclaim() {
    std::erase_if(retired, [&](auto& r) {
      if (rte_rcu_qsbr_check(qsbr, r.second, false) != 1) return false;
      delete r.first;
      return true;
    });
  }

  // Gratuitous ARP for every address this instance answers for, so switches and the VPC router
  // learn the new owner at once when an address moved here (start, failover).
  void announce() {
    for (const auto& p : ports) {
      std::vector<uint32_t> own = {p.addr};
      if (p.role != "inside")
        own.insert(own.end(), cfg.engine.outside_addrs.begin(), cfg.engine.outside_addrs.end());
      for (uint32_t ip : own) {
        if (ip == 0) continue;
        rte_mbuf* m = rte_pktmbuf_alloc(pool);
        if (!m) return;
        build_garp(reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kArpFrameLen)), p.mac, ip);
        m->port = p.id;
        inject(m);
        ++garps_sent;
      }
    }
  }

  // The instance's own traffic: IPv4 for its addresses and ARP replies (the kernel resolves its
  // own next hops) go to the kernel's TAP when the exception path is enabled; ARP requests were
  // answered by handle_arp; everything else is counted and dropped.
  void to_kernel(rte_mbuf* m) {
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
  uint32_t from_kernel() {
    if (!exception) return 0;
    rte_mbuf* ms[kBurst];
    const uint32_t k = exception->from_kernel(ms, kBurst);
    for (uint32_t i = 0; i < k; ++i) inject(ms[i]);
    return k;
  }

  bpf::SteerConfig steer_config() const {
    bpf::SteerConfig sc;
    for (const auto& pf : cfg.engine.inside_prefixes) sc.inside_prefixes.push_back({pf.addr, pf.len});
    sc.outside_addrs = cfg.engine.outside_addrs;
    sc.host_addrs = cfg.engine.host_addrs;
    sc.port_min = cfg.engine.port_min;
    sc.port_max = cfg.engine.port_max;
    return sc;
  }

  // --- connection-table sync, main side (the sync socket; control/daemon speaks the other end) --
  // Packet: {u8 type, u8 version 1, u16 count (network order), u32 0} + count x 28-byte
  // ha::FlowEvent records. Types: 1 events, 2 snapshot request, 3 snapshot begin, 4 snapshot end.
  static constexpr uint8_t kSyncEvents = 1, kSyncSnapshotRequest = 2, kSyncSnapshotBegin = 3,
                           kSyncSnapshotEnd = 4;
  static constexpr uint32_t kSyncMaxPerPacket = 64;

  std::string open_sync_socket() {
    const std::string& admin_path = cfg.admin.socket_path;
    const size_t slash = admin_path.rfind('/');
    sync_path = (slash == std::string::npos ? std::string(".") : admin_path.substr(0, slash)) +
                "/sync.sock";
    sockaddr_un addr{};
    if (sync_path.size() >= sizeof addr.sun_path) return "sync socket path too long: " + sync_path;
    sync_listen_fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sync_listen_fd < 0) return std::string("sync socket: ") + std::strerror(errno);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sync_path.c_str(), sync_path.size() + 1);
    ::unlink(sync_path.c_str());
    const mode_t old = ::umask(0077);  // root-only from the first moment
    const int rc = ::bind(sync_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0 || ::chmod(sync_path.c_str(), 0600) != 0 || ::listen(sync_listen_fd, 1) != 0) {
      return "sync socket " + sync_path + ": " + std::strerror(errno);
    }
    return {};
  }

  void sync_close_client() {
    if (sync_client_fd >= 0) ::close(sync_client_fd);
    sync_client_fd = -1;
    sync_connected.store(false, std::memory_order_relaxed);
    snapshot_open = false;
  }

  bool sync_send(uint8_t type, const ha::FlowEvent* ev, uint32_t n) {
    if (sync_client_fd < 0) {
      sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
      return false;
    }
    uint8_t buf[8 + kSyncMaxPerPacket * ha::kFlowEventWireSize];
    buf[0] = type;
    buf[1] = 1;
    buf[2] = static_cast<uint8_t>(n >> 8);
    buf[3] = static_cast<uint8_t>(n);
    std::memset(buf + 4, 0, 4);
    for (uint32_t i = 0; i < n; ++i) {
      ha::encode_flow_event(
          ev[i], std::span<uint8_t, ha::kFlowEventWireSize>(buf + 8 + i * ha::kFlowEventWireSize,
                                                             ha::kFlowEventWireSize));
    }
    const size_t len = 8 + n * ha::kFlowEventWireSize;
    if (::send(sync_client_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) sync_close_client();
      sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
      return false;
    }
    sync_sent.fetch_add(n, std::memory_order_relaxed);
    return true;
  }

  static ha::FlowEvent to_event(const engine::SyncRecord& r, uint16_t worker) {
    ha::FlowEvent e;
    e.inside_addr = r.inside_ip;
    e.outside_addr = r.outside_ip;
    e.remote_addr = r.remote_ip;
    e.inside_port = r.inside_port;
    e.outside_port = r.outside_port;
    e.remote_port = r.remote_port;
    e.protocol = r.proto;
    e.tcp_state = r.tcp_bits;
    e.lifetime_s = (r.remaining_ms + 999) / 1000;
    e.kind = static_cast<ha::FlowEventKind>(r.kind);
    e.flags = r.endpoint_independent ? ha::kFlowFlagEndpointIndependent : 0;
    e.worker_hint = worker;
    return e;
  }

  static engine::SyncRecord from_event(const ha::FlowEvent& e) {
    engine::SyncRecord r;
    r.inside_ip = e.inside_addr;
    r.outside_ip = e.outside_addr;
    r.remote_ip = e.remote_addr;
    r.inside_port = e.inside_port;
    r.outside_port = e.outside_port;
    r.remote_port = e.remote_port;
    r.proto = e.protocol;
    r.tcp_bits = e.tcp_state;
    r.remaining_ms = e.lifetime_s > 4'000'000 ? 4'000'000'000u : e.lifetime_s * 1000;
    r.kind = static_cast<engine::SyncKind>(e.kind);
    r.endpoint_independent = (e.flags & ha::kFlowFlagEndpointIndependent) != 0;
    return r;
  }

  // Accepts the control process, forwards workers' records to it, applies its records, serves
  // snapshot requests. Returns whether anything happened.
  bool sync_poll() {
    bool busy = false;
    if (sync_client_fd < 0 && sync_listen_fd >= 0) {
      const int fd = ::accept4(sync_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
          ::close(fd);  // root only, like the admin socket
        } else {
          sync_client_fd = fd;
          sync_connected.store(true, std::memory_order_relaxed);
          log->info("sync: eipgate-control connected");
        }
      }
    }
    // Outbound: workers' records, in packets of up to 64.
    engine::SyncRecord recs[kSyncMaxPerPacket];
    ha::FlowEvent ev[kSyncMaxPerPacket];
    bool snapshot_finished = snapshot_open;
    for (const auto& w : workers) {
      for (int rounds = 0; rounds < 16; ++rounds) {
        const unsigned n = rte_ring_sc_dequeue_burst_elem(w->sync_out, recs, sizeof recs[0],
                                                          kSyncMaxPerPacket, nullptr);
        if (n == 0) break;
        busy = true;
        for (unsigned i = 0; i < n; ++i) ev[i] = to_event(recs[i], w->index);
        sync_send(kSyncEvents, ev, n);
      }
      if (snapshot_open && (w->snap_done.load(std::memory_order_acquire) != snapshot_gen ||
                            !rte_ring_empty(w->sync_out))) {
        snapshot_finished = false;
      }
    }
    if (snapshot_open && snapshot_finished) {
      sync_send(kSyncSnapshotEnd, nullptr, 0);
      snapshot_open = false;
      sync_snapshots.fetch_add(1, std::memory_order_relaxed);
    }
    // Inbound: the peer's records (standby) and snapshot requests.
    if (sync_client_fd >= 0) {
      uint8_t buf[8 + kSyncMaxPerPacket * ha::kFlowEventWireSize + 1];
      for (int rounds = 0; rounds < 64; ++rounds) {
        const ssize_t len = ::recv(sync_client_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (len == 0 || (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          log->info("sync: eipgate-control disconnected");
          sync_close_client();
          break;
        }
        if (len < 0) break;
        busy = true;
        const uint32_t count = static_cast<uint32_t>(buf[2]) << 8 | buf[3];
        if (len < 8 || buf[1] != 1 || count > kSyncMaxPerPacket ||
            static_cast<size_t>(len) != 8 + count * ha::kFlowEventWireSize) {
          sync_malformed.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (buf[0] == kSyncSnapshotRequest) {
          start_snapshot();
        } else if (buf[0] == kSyncEvents) {
          for (uint32_t i = 0; i < count; ++i) {
            ha::FlowEvent e;
            if (!ha::decode_flow_event(
                    std::span<const uint8_t, ha::kFlowEventWireSize>(
                        buf + 8 + i * ha::kFlowEventWireSize, ha::kFlowEventWireSize),
                    &e)) {
              sync_malformed.fetch_add(1, std::memory_order_relaxed);
              continue;
            }
            const engine::SyncRecord r = from_event(e);
            // The worker that owns the reply direction, as the engines choose it (RSS).
            const uint16_t owner = workers[0]->eng->rss_worker(r.remote_ip, r.outside_ip,
                                                               r.remote_port, r.outside_port,
                                                               r.proto);
            Worker& w = *workers[owner < workers.size() ? owner : 0];
            if (rte_ring_mp_enqueue_elem(w.sync_in, const_cast<engine::SyncRecord*>(&r),
                                         sizeof r) == 0) {
              sync_received.fetch_add(1, std::memory_order_relaxed);
              wake_worker(w);
            } else {
              sync_send_dropped.fetch_add(1, std::memory_order_relaxed);
            }
          }
        } else {
          sync_malformed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
    return busy;
  }

  void start_snapshot() {
    sync_send(kSyncSnapshotBegin, nullptr, 0);
    snapshot_open = true;
    snapshot_gen = 0;
    for (auto& w : workers) snapshot_gen = std::max(snapshot_gen, w->snap_gen.load() + 1);
    for (auto& w : workers) {
      w->snap_done.store(w->snap_gen.load(), std::memory_order_relaxed);
      w->snap_gen.store(snapshot_gen, std::memory_order_release);
      wake_worker(*w);
    }
  }

  // A packet whose next hop had no MAC: sent at once if ARP answered meanwhile, else queued
  // (bounded per next hop and in total) and the next hop asked for.
  void wait_for_neighbour(rte_mbuf* m, uint64_t now_ms) {
    const uint32_t nh = m->hash.usr;
    if (auto mac = table.lookup(nh, now_ms)) {
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), mac->data(), 6);
      arp_queue_sent.fetch_add(1, std::memory_order_relaxed);
      inject(m);
      return;
    }
    auto& q = unresolved[nh];
    if (q.size() >= kUnresolvedPerHop || unresolved_count >= kUnresolvedTotal) {
      arp_queue_dropped.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(m);
    } else {
      q.push_back({m, now_ms});
      ++unresolved_count;
      arp_queued.fetch_add(1, std::memory_order_relaxed);
    }
    request(nh, now_ms);
  }

  // Sends what waited for a next hop that is now resolved; drops what waited too long.
  void flush_unresolved(uint64_t now_ms) {
    for (auto it = unresolved.begin(); it != unresolved.end();) {
      auto& q = it->second;
      const auto mac = table.lookup(it->first, now_ms);
      std::erase_if(q, [&](const Waiting& wt) {
        if (mac) {
          std::memcpy(rte_pktmbuf_mtod(wt.m, uint8_t*), mac->data(), 6);
          arp_queue_sent.fetch_add(1, std::memory_order_relaxed);
          inject(wt.m);
        } else if (now_ms - wt.since_ms >= kUnresolvedTimeoutMs) {
          arp_queue_dropped.fetch_add(1, std::memory_order_relaxed);
          rte_pktmbuf_free(wt.m);
        } else {
          return false;
        }
        --unresolved_count;
        return true;
      });
      it = q.empty() ? unresolved.erase(it) : std::next(it);
    }
  }

  // ARP frames the kernel received on steered interfaces (the XDP program passes ARP to it).
  bool poll_steered_arp(uint64_t now_ms) {
    bool learnt = false;
    uint8_t buf[256];
    for (const auto& p : ports) {
      if (p.arp_fd < 0) continue;
      for (int i = 0; i < 32; ++i) {
        const ssize_t n = ::recv(p.arp_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        learnt |= handle_arp(buf, static_cast<uint32_t>(n), p.id, now_ms);
      }
    }
    return learnt;
  }

  // The main lcore's idle: 200 us naps while any worker is awake; once every worker is deeply
  // idle, a poll() on the TAPs, the ARP sockets and the workers' eventfd for up to
  // deep_sleep_us, so an idle instance wakes rarely but a frame from the kernel or a worker's
  // request is served at once.
  void main_idle() {
    const bool all_deep = cfg.polling.adaptive &&
                          workers_deep_idle.load(std::memory_order_relaxed) == workers.size();
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
    if (sync_listen_fd >= 0) fds.push_back({sync_listen_fd, POLLIN, 0});
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
      ::poll(fds.data(), fds.size(), static_cast<int>(std::max<uint32_t>(1, cfg.polling.deep_sleep_us / 1000)));
    }
    main_sleeping.store(false, std::memory_order_relaxed);
    uint64_t drained = 0;
    [[maybe_unused]] const ssize_t rd = ::read(main_wake_fd, &drained, sizeof drained);
  }

  // One port's xstats (main lcore only).
  std::string read_xstats(PortState& p, std::vector<admin::XstatValue>* out) {
    const int count = rte_eth_xstats_get(p.id, nullptr, 0);
    if (count < 0) return std::string("rte_eth_xstats_get: ") + rte_strerror(-count);
    std::vector<rte_eth_xstat> values(static_cast<size_t>(count));
    const int n = rte_eth_xstats_get(p.id, values.data(), static_cast<unsigned>(values.size()));
    if (n < 0) return std::string("rte_eth_xstats_get: ") + rte_strerror(-n);
    if (static_cast<size_t>(n) > values.size()) return "xstats count changed while reading";
    values.resize(static_cast<size_t>(n));
    if (p.xstat_names.size() != values.size()) {
      std::vector<rte_eth_xstat_name> names(values.size());
      const int k =
          rte_eth_xstats_get_names(p.id, names.data(), static_cast<unsigned>(names.size()));
      if (k < 0) return std::string("rte_eth_xstats_get_names: ") + rte_strerror(-k);
      if (static_cast<size_t>(k) != names.size()) return "xstats names changed while reading";
      p.xstat_names.clear();
      for (const auto& nm : names) {
        p.xstat_names.emplace_back(nm.name, strnlen(nm.name, sizeof nm.name));
      }
    }
    out->reserve(values.size());
    for (const auto& v : values) {
      if (v.id < p.xstat_names.size()) out->push_back({p.xstat_names[v.id], v.value});
    }
    return {};
  }

  void refresh_xstats(uint64_t now_ms) {
    std::vector<PortXstats> fresh(ports.size());
    for (size_t i = 0; i < ports.size(); ++i) {
      fresh[i].error = read_xstats(ports[i], &fresh[i].values);
    }
    std::lock_guard lock(xstats_mu);
    xstats.swap(fresh);
    xstats_read_ms = now_ms;
  }

  void main_loop() {
    uint64_t last_refresh = 0;
    publish_neighbours(now_ns() / 1000000);
    announce();
    while (!stop->load(std::memory_order_relaxed)) {
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
      if (const uint64_t g = announce_gen.load(std::memory_order_acquire);
          g != announce_done.load(std::memory_order_relaxed)) {
        const uint64_t before = garps_sent;
        announce();
        announce_count.store(garps_sent - before, std::memory_order_relaxed);
        announce_done.store(g, std::memory_order_release);
      }
      rte_mbuf* waiting[kBurst];
      const uint32_t r = rte_ring_sc_dequeue_burst(
          resolve_ring, reinterpret_cast<void**>(waiting), kBurst, nullptr);
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
};

namespace {

// The admin socket's view of the running process.
class Handler final : public admin::AdminHandler {
 public:
  explicit Handler(Dataplane::Impl& m) : m_(m) {}

  nlohmann::json stats() override {
    const auto st = m_.snapshot();
    std::vector<engine::EngineStats> per;
    per.reserve(st.size());
    for (const auto& s : st) per.push_back(s.stats);
    nlohmann::json j = admin::stats_to_json(per);
    nlohmann::json io = nlohmann::json::array();
    for (size_t i = 0; i < st.size(); ++i) {
      io.push_back({{"worker", i},
                    {"rx_packets", st[i].rx_packets},
                    {"tx_packets", st[i].tx_packets},
                    {"tx_dropped", st[i].tx_dropped},
                    {"no_neighbour", st[i].no_neighbour},
                    {"loops", st[i].loops},
                    {"idle_sleeps", st[i].idle_sleeps},
                    {"rx_interrupt_waits", st[i].rx_interrupt_waits}});
    }
    j["io"] = io;
    j["main"] = {{"arp_replies", m_.arp_replies_sent},
                 {"gratuitous_arps", m_.garps_sent},
                 {"arp_queued", m_.arp_queued.load(std::memory_order_relaxed)},
                 {"arp_queue_sent", m_.arp_queue_sent.load(std::memory_order_relaxed)},
                 {"arp_queue_dropped", m_.arp_queue_dropped.load(std::memory_order_relaxed)},
                 {"host_dropped", m_.host_dropped.load(std::memory_order_relaxed)},
                 {"host_to_kernel", m_.exception ? m_.exception->to_kernel_count() : 0},
                 {"kernel_to_port", m_.exception ? m_.exception->from_kernel_count() : 0},
                 {"kernel_filtered", m_.exception ? m_.exception->from_kernel_filtered() : 0}};
    // af_xdp steering: the XDP program's verdict counters per port (bpf/steer_abi.h).
    nlohmann::json steer = nlohmann::json::object();
    for (const auto& p : m_.ports) {
      if (!p.steer) continue;
      bpf::SteerStats ss;
      if (std::string err = p.steer->read_stats(ss); !err.empty()) {
        steer[p.role] = {{"error", err}};
        continue;
      }
      nlohmann::json c = nlohmann::json::object();
      for (uint32_t i = 0; i < STEER_STAT_COUNT; ++i) {
        c[std::string(bpf::steer_stat_name(i))] = ss.packets[i];
      }
      steer[p.role] = c;
    }
    if (!steer.empty()) j["xdp_steer"] = steer;
    // Per port: the ENA allowance counters when the PMD has them (ami/OPERATOR.md); eipgate-control
    // exports ports[i].allowance.<name> as eipgate_ena_<name>{port=name}.
    nlohmann::json ports = nlohmann::json::array();
    {
      std::lock_guard lock(m_.xstats_mu);
      for (size_t i = 0; i < m_.ports.size(); ++i) {
        const PortState& p = m_.ports[i];
        nlohmann::json pj = {{"name", p.role}, {"port_id", p.id}, {"device", p.device}};
        if (i < m_.xstats.size()) {
          if (const auto allowance = admin::allowance_counters(m_.xstats[i].values);
              !allowance.empty()) {
            pj["allowance"] = allowance;
          }
          if (!m_.xstats[i].error.empty()) pj["xstats_error"] = m_.xstats[i].error;
        }
        ports.push_back(std::move(pj));
      }
    }
    j["ports"] = std::move(ports);
    uint64_t out_dropped = 0, applied = 0, refused = 0, overflows = 0;
    for (const auto& s2 : st) {
      out_dropped += s2.sync_out_dropped;
      applied += s2.sync_applied;
      refused += s2.sync_refused;
      overflows += s2.sync_overflows;
    }
    const auto running_cfg = m_.running_config();
    if (const auto& pol = running_cfg->engine.policy; pol && !pol->empty()) {
      nlohmann::json rules = nlohmann::json::array();
      for (uint32_t id = 0; id < pol->rule_count(); ++id) {
        uint64_t hits = 0;
        for (const auto& s2 : st) hits += id < s2.rule_hits.size() ? s2.rule_hits[id] : 0;
        rules.push_back({{"rule", std::string(pol->rule_name(id))}, {"hits", hits}});
      }
      j["policy"] = {{"rules", rules},
                     {"denials_logged", m_.denials_logged.load(std::memory_order_relaxed)},
                     {"denials_not_logged", m_.denials_unlogged.load(std::memory_order_relaxed)}};
    }
    const int role = m_.ha_role.load(std::memory_order_relaxed);
    j["sync"] = {{"role", role == Dataplane::Impl::kRoleActive    ? "active"
                          : role == Dataplane::Impl::kRoleStandby ? "standby"
                                                                   : "none"},
                 {"epoch", m_.ha_epoch.load(std::memory_order_relaxed)},
                 {"control_connected", m_.sync_connected.load(std::memory_order_relaxed)},
                 {"records_sent", m_.sync_sent.load(std::memory_order_relaxed)},
                 {"records_dropped", m_.sync_send_dropped.load(std::memory_order_relaxed) + out_dropped},
                 {"engine_overflows", overflows},
                 {"records_received", m_.sync_received.load(std::memory_order_relaxed)},
                 {"records_applied", applied},
                 {"records_refused", refused},
                 {"malformed", m_.sync_malformed.load(std::memory_order_relaxed)},
                 {"snapshots", m_.sync_snapshots.load(std::memory_order_relaxed)}};
    return j;
  }

  nlohmann::json xstats() override {
    nlohmann::json ports = nlohmann::json::array();
    std::lock_guard lock(m_.xstats_mu);
    const uint64_t now_ms = now_ns() / 1000000;
    for (size_t i = 0; i < m_.ports.size(); ++i) {
      const PortState& p = m_.ports[i];
      nlohmann::json pj = {{"name", p.role}, {"port_id", p.id}, {"device", p.device}};
      if (i < m_.xstats.size()) {
        pj["xstats"] = admin::xstats_to_json(m_.xstats[i].values);
        if (!m_.xstats[i].error.empty()) pj["error"] = m_.xstats[i].error;
      } else {
        pj["xstats"] = nlohmann::json::object();  // the main lcore has not read them yet
      }
      ports.push_back(std::move(pj));
    }
    return {{"ports", std::move(ports)},
            {"age_ms", m_.xstats_read_ms == 0 ? nlohmann::json()
                                              : nlohmann::json(now_ms - m_.xstats_read_ms)}};
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
      return {{"error", "no probe source: set probe.source to an unused address in "
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
    Worker& w = *m_.workers[0];
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
    if (old != r) m_.log->info("HA role {} (epoch {})", role, epoch);
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
    return {{"status", ok ? "ok" : "degraded"}, {"workers", workers}};
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

Dataplane::Dataplane() : impl_(std::make_unique<Impl>()) {}

Dataplane::~Dataplane() {
  Impl& m = *impl_;
  if (!m.eal_ready) return;
  m.exception.reset();  // frees its mbuf: before the EAL goes
  if (m.main_wake_fd >= 0) ::close(m.main_wake_fd);
  m.sync_close_client();
  if (m.sync_listen_fd >= 0) {
    ::close(m.sync_listen_fd);
    ::unlink(m.sync_path.c_str());
  }
  for (auto& w : m.workers) {
    if (w->wake_fd >= 0) ::close(w->wake_fd);
  }
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
  bool no_huge = false;
  for (std::string a; extra >> a;) {
    no_huge |= a == "--no-huge";
    args.push_back(a);
  }
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
        m.log->warn(
            "port {}: af_packet leaves the kernel a copy of every frame; drop the "
            "interface's kernel ingress (nftables netdev chain), or the kernel will "
            "also answer for the exception path's addresses",
            ps.role);
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
    auto wk = std::make_unique<Worker>();
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
    m.workers.push_back(std::move(wk));
  }
  if (std::string err = m.open_sync_socket(); !err.empty()) return err;
  m.log->info("dataplane ready: {} port(s), {} worker(s), {} flows per worker", m.ports.size(),
              nworkers, cfg.engine.max_flows);
  return {};
}

int Dataplane::run() {
  Impl& m = *impl_;
  for (auto& w : m.workers) {
    Worker* wp = w.get();
    Impl* ip = &m;
    rte_eal_remote_launch(
        [](void* arg) -> int {
          auto* pair = static_cast<std::pair<Impl*, Worker*>*>(arg);
          pair->first->worker_loop(*pair->second);
          delete pair;
          return 0;
        },
        new std::pair<Impl*, Worker*>(ip, wp), wp->lcore);
  }
  {  // before the admin socket: from then on only Handler::reload retargets it
    std::lock_guard lock(m.admin_mu);
    m.resolver_base = m.admin_running->engine.policy;
  }
  m.retarget_resolver();
  Handler handler(m);
  admin::AdminServer server(m.cfg.admin.socket_path, handler, "0.1.0");
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

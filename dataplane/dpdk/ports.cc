// Port setup (ethdev configure, queues, RSS, MTU, MAC), af_xdp steering maps, and the ports'
// xstats the main lcore reads for the admin socket.
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <rte_errno.h>
#include <sys/socket.h>

#include <cstring>

#include "dataplane/dpdk/dataplane_impl.h"

namespace eipgate::dataplane {

namespace {

std::string mac_str(const MacAddr& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

}  // namespace

std::string Dataplane::Impl::setup_port(PortState& ps, const PortConfig& pc, uint16_t nworkers) {
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
    if (int rc = rte_eth_tx_queue_setup(ps.id, q, ntx, socket < 0 ? 0 : socket, nullptr); rc != 0) {
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
std::string Dataplane::Impl::setup_steering(PortState& ps, const PortConfig& pc) {
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
  ps.ifindex = static_cast<int>(ifindex);
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

bpf::SteerConfig Dataplane::Impl::steer_config() const {
  bpf::SteerConfig sc;
  for (const auto& pf : cfg.engine.inside_prefixes) sc.inside_prefixes.push_back({pf.addr, pf.len});
  sc.outside_addrs = cfg.engine.outside_addrs;
  sc.host_addrs = cfg.engine.host_addrs;
  sc.port_min = cfg.engine.port_min;
  sc.port_max = cfg.engine.port_max;
  sc.fastpath = fastpath.on && !fastpath.held.load(std::memory_order_relaxed);
  return sc;
}

// One port's xstats (main lcore only).
std::string Dataplane::Impl::read_xstats(PortState& p, std::vector<admin::XstatValue>* out) {
  const int count = rte_eth_xstats_get(p.id, nullptr, 0);
  if (count < 0) return std::string("rte_eth_xstats_get: ") + rte_strerror(-count);
  std::vector<rte_eth_xstat> values(static_cast<size_t>(count));
  const int n = rte_eth_xstats_get(p.id, values.data(), static_cast<unsigned>(values.size()));
  if (n < 0) return std::string("rte_eth_xstats_get: ") + rte_strerror(-n);
  if (static_cast<size_t>(n) > values.size()) return "xstats count changed while reading";
  values.resize(static_cast<size_t>(n));
  if (p.xstat_names.size() != values.size()) {
    std::vector<rte_eth_xstat_name> names(values.size());
    const int k = rte_eth_xstats_get_names(p.id, names.data(), static_cast<unsigned>(names.size()));
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

void Dataplane::Impl::refresh_xstats(uint64_t now_ms) {
  std::vector<PortXstats> fresh(ports.size());
  for (size_t i = 0; i < ports.size(); ++i) {
    fresh[i].error = read_xstats(ports[i], &fresh[i].values);
  }
  std::lock_guard lock(xstats_mu);
  xstats.swap(fresh);
  xstats_read_ms = now_ms;
}

}  // namespace eipgate::dataplane

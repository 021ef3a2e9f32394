// Neighbours on the main lcore: ARP answers and requests, gratuitous ARP, the neighbour snapshot
// the workers read (RCU), and the bounded queue of packets waiting for a next hop's MAC.
#include <sys/socket.h>

#include <cstring>

#include "dataplane/dpdk/dataplane_impl.h"

namespace eipgate::dataplane {

bool Dataplane::Impl::is_own_address(const PortState& p, uint32_t ip) const {
  if (ip == 0) return false;
  if (ip == p.addr || ip == cfg.interface_addr) return true;
  if (p.role == "inside") return false;  // service addresses live on the outside / data port
  for (uint32_t a : cfg.engine.outside_addrs) {
    if (a == ip) return true;
  }
  return false;
}

// Without HA (no role yet) the instance holds its service addresses as it always did; with HA
// only the active does, so a standby never draws the service address's traffic to itself.
bool Dataplane::Impl::holds_service_addresses() const {
  const int role = ha_role.load(std::memory_order_relaxed);
  return role == kRoleNone || role == kRoleActive;
}

bool Dataplane::Impl::answers_arp_for(const PortState& p, uint32_t ip) const {
  if (ip == 0) return false;
  if (ip == p.addr || ip == cfg.interface_addr) return true;
  return is_own_address(p, ip) && holds_service_addresses();
}

void Dataplane::Impl::inject(rte_mbuf* m) {
  if (rte_ring_mp_enqueue(workers[0]->inject, m) != 0) {
    main_drops[static_cast<size_t>(admin::GlueDrop::InjectRingFull)].fetch_add(
        1, std::memory_order_relaxed);
    rte_pktmbuf_free(m);
    return;
  }
  wake_worker(*workers[0]);
}

void Dataplane::Impl::send_arp(const PortState& p, uint16_t op, const MacAddr& dst_mac,
                               uint32_t dst_ip, uint32_t src_ip) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) return;
  auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kArpFrameLen));
  build_arp(d, op, p.mac, src_ip, dst_mac, dst_ip);
  m->port = p.id;
  inject(m);
}

void Dataplane::Impl::request(uint32_t ip, uint64_t now_ms) {
  if (ip == 0) return;
  auto& last = last_request_ms[ip];
  if (last && now_ms - last < 1000) return;  // at most one request per second per address
  last = now_ms;
  for (const auto& p : ports) {
    const uint32_t src = p.addr ? p.addr : cfg.interface_addr;
    send_arp(p, kArpRequest, MacAddr{}, ip, src);
  }
}

bool Dataplane::Impl::handle_arp(rte_mbuf* m, uint64_t now_ms) {
  return handle_arp(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, m->port, now_ms);
}

bool Dataplane::Impl::handle_arp(const uint8_t* d, uint32_t len, uint16_t port_id,
                                 uint64_t now_ms) {
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
  if (arp->op == kArpRequest && answers_arp_for(*port, arp->target_ip)) {
    send_arp(*port, kArpReply, arp->sender_mac, arp->sender_ip, arp->target_ip);
    ++arp_replies_sent;
  }
  return learnt;
}

void Dataplane::Impl::publish_neighbours(uint64_t now_ms) {
  auto* snap = new NeighSnapshot;
  // A static gateway MAC first: it wins over what ARP says and always has room.
  std::optional<MacAddr> static_mac;
  if (cfg.next_hop.static_mac) static_mac = parse_mac(*cfg.next_hop.static_mac);
  if (static_mac) snap->insert(cfg.next_hop.gateway, *static_mac);
  table.for_each_due(now_ms, UINT64_MAX / 2, [&](uint32_t ip) {
    if (static_mac && ip == cfg.next_hop.gateway) return;
    if (auto mac = table.lookup(ip, now_ms)) snap->insert(ip, *mac);
  });
  const NeighSnapshot* old = neigh.exchange(snap, std::memory_order_acq_rel);
  if (old) retired.emplace_back(old, rte_rcu_qsbr_start(qsbr));
}

void Dataplane::Impl::reclaim() {
  std::erase_if(retired, [&](auto& r) {
    if (rte_rcu_qsbr_check(qsbr, r.second, false) != 1) return false;
    delete r.first;
    return true;
  });
}

// Gratuitous ARP for every address this instance answers for, so switches and the VPC router
// learn the new owner at once when an address moved here (start, failover).
void Dataplane::Impl::announce() {
  for (const auto& p : ports) {
    std::vector<uint32_t> own = {p.addr};
    if (p.role != "inside" && holds_service_addresses())
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

// A packet whose next hop had no MAC: sent at once if ARP answered meanwhile, else queued
// (bounded per next hop and in total) and the next hop asked for.
void Dataplane::Impl::drop_unresolved() {
  for (auto& [ip, q] : unresolved) {
    for (auto& wt : q) rte_pktmbuf_free(wt.m);
    main_drops[static_cast<size_t>(admin::GlueDrop::RoleUnconfirmed)].fetch_add(
        q.size(), std::memory_order_relaxed);
  }
  unresolved.clear();
  unresolved_count = 0;
}

void Dataplane::Impl::wait_for_neighbour(rte_mbuf* m, uint64_t now_ms) {
  const uint32_t nh = m->hash.usr;
  if (role_unconfirmed.load(std::memory_order_relaxed)) {
    main_drops[static_cast<size_t>(admin::GlueDrop::RoleUnconfirmed)].fetch_add(
        1, std::memory_order_relaxed);
    rte_pktmbuf_free(m);
    return;
  }
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
void Dataplane::Impl::flush_unresolved(uint64_t now_ms) {
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
bool Dataplane::Impl::poll_steered_arp(uint64_t now_ms) {
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

}  // namespace eipgate::dataplane

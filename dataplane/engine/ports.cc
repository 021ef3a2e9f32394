// Port allocation: endpoint-dependent (RFC 6056 random, RSS-aware with several workers) and the
// endpoint-independent UDP mappings.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

uint32_t Engine::Impl::eim_find(uint32_t in_ip, uint16_t in_port) const {
  const FlowKey k = eim_key(in_ip, in_port);
  const uint32_t v = index.find(hash_key(k), [&](uint32_t val) {
    if ((val & 3) != kKeyEim) return false;
    const EimMap& m = eim[val >> 2];
    return m.inside_ip == in_ip && m.inside_port == in_port;
  });
  return v == kNone ? kNone : v >> 2;
}

void Engine::Impl::eim_release(uint32_t m) {
  EimMap& e = eim[m];
  if (--e.refs > 0) return;
  index.erase(hash_key(eim_key(e.inside_ip, e.inside_port)), (m << 2) | kKeyEim);
  udp_port_set(outside_slot(e.outside_ip), to_host16(e.outside_port), false);
  e.refs = eim_free_head;
  eim_free_head = m;
}

// Returns the mapping index or kNone when no port is free.
uint32_t Engine::Impl::eim_acquire(uint32_t in_ip, uint16_t in_port, uint32_t out_ip) {
  uint32_t m = eim_find(in_ip, in_port);
  if (m != kNone) {
    ++eim[m].refs;
    return m;
  }
  if (eim_free_head == kNone) return kNone;
  const uint32_t slot = outside_slot(out_ip);
  const uint16_t owner = eim_owner(in_ip, in_port);
  const uint32_t n = cfg.worker_count;
  auto usable = [&](uint32_t p) {
    return p % n == owner && !udp_port_used(slot, static_cast<uint16_t>(p));
  };
  uint32_t port = 0;
  for (uint32_t t = 0; t < kEimPortTries && port == 0; ++t) {
    const uint32_t p = cfg.port_min + static_cast<uint32_t>(rand64() % port_range);
    if (usable(p)) port = p;
  }
  if (port == 0) {
    const uint32_t start = static_cast<uint32_t>(rand64() % port_range);
    for (uint32_t k = 0; k < port_range && port == 0; ++k) {
      const uint32_t p = cfg.port_min + (start + k) % port_range;
      if (usable(p)) port = p;
    }
  }
  if (port == 0) return kNone;
  m = eim_free_head;
  eim_free_head = eim[m].refs;
  eim[m] = EimMap{in_ip, in_port, to_net16(static_cast<uint16_t>(port)), out_ip, 1};
  if (!index.insert(hash_key(eim_key(in_ip, in_port)), (m << 2) | kKeyEim)) {
    eim[m].refs = eim_free_head;
    eim_free_head = m;
    return kNone;
  }
  udp_port_set(slot, static_cast<uint16_t>(port), true);
  return m;
}

// Endpoint-dependent port choice (RFC 6056 random, then a full scan so capacity per
// destination is the whole range). With several workers only ports whose reply hashes to this
// worker qualify.
bool Engine::Impl::pick_port(uint8_t proto, uint32_t remote, uint32_t out, uint16_t rport,
                             uint16_t& port_net) {
  const bool need_rss = cfg.worker_count > 1 && proto != kProtoIcmp;
  const uint32_t base = need_rss ? rss->hash_l4(remote, out, rport, 0) : 0;
  auto usable = [&](uint32_t p) {
    const uint16_t pn = to_net16(static_cast<uint16_t>(p));
    if (need_rss && reta(base ^ rss->dport_contrib(pn)) != cfg.worker_id) return false;
    const FlowKey k{remote, out, rport, pn, proto, kKeyOutside, 0};
    return find(k) == kNone;
  };
  for (uint32_t t = 0; t < kRandomPortTries; ++t) {
    const uint32_t p = cfg.port_min + static_cast<uint32_t>(rand64() % port_range);
    if (usable(p)) {
      port_net = to_net16(static_cast<uint16_t>(p));
      return true;
    }
    counters.add(Event::PortAllocRetries);
  }
  const uint32_t start = static_cast<uint32_t>(rand64() % port_range);
  for (uint32_t k = 0; k < port_range; ++k) {
    const uint32_t p = cfg.port_min + (start + k) % port_range;
    if (usable(p)) {
      port_net = to_net16(static_cast<uint16_t>(p));
      return true;
    }
  }
  return false;
}

}  // namespace eipgate::engine

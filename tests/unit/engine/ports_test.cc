// Outside port and address allocation: range, randomness (RFC 6056), endpoint-dependent reuse,
// exhaustion, paired pooling, no port shadowing, UDP endpoint-independent mapping, and eviction
// order when the flow table is full.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Event;
using engine::FlowView;
using engine::Verdict;

std::string addr(const char* prefix, uint32_t n) { return std::string(prefix) + std::to_string(n); }

// A TCP SYN inside -> remote; returns the outside port used, or nullopt when dropped.
std::optional<uint16_t> syn(EngineHarness& h, const std::string& inside, uint16_t sport,
                            const std::string& remote, uint16_t dport, Sent* sent = nullptr) {
  Sent s = h.send(Packet().ipv4(inside, remote).tcp(sport, dport, kTcpSyn).build());
  if (sent != nullptr) *sent = s;
  if (s.res.verdict != Verdict::ToOutside) return std::nullopt;
  return parse(s.out).sport;
}

std::optional<Parsed> udp_out(EngineHarness& h, const std::string& inside, uint16_t sport,
                              const std::string& remote, uint16_t dport, Sent* sent = nullptr) {
  Sent s = h.send(Packet().ipv4(inside, remote).udp(sport, dport).payload("q").build());
  if (sent != nullptr) *sent = s;
  if (s.res.verdict != Verdict::ToOutside) return std::nullopt;
  return parse(s.out);
}

std::vector<FlowView> flows(EngineHarness& h) {
  std::vector<FlowView> v;
  h.engine().for_each_flow([&](const FlowView& f) { v.push_back(f); }, h.now_ns());
  return v;
}

uint32_t expire_all(EngineHarness& h) { return h.engine().expire(h.now_ns(), 1u << 20); }

// ---------------------------------------------------------------------------------------------
// Range and randomness

TEST(PortRange, DefaultRangeIsNatGateways) {
  EngineHarness h;
  for (uint16_t i = 0; i < 500; ++i) {
    auto p = syn(h, kInsideHost, static_cast<uint16_t>(20000 + i), kServer, 443);
    ASSERT_TRUE(p.has_value());
    EXPECT_GE(*p, 1024);  // upper bound 65535 holds by type
  }
}

struct RangeCase {
  uint16_t min;
  uint16_t max;
};

class PortRangeCustom : public ::testing::TestWithParam<RangeCase> {};

TEST_P(PortRangeCustom, EveryPortInRangeThenExhausted) {
  const RangeCase rc = GetParam();
  engine::EngineConfig cfg = default_config();
  cfg.port_min = rc.min;
  cfg.port_max = rc.max;
  EngineHarness h(cfg);
  const uint32_t n = uint32_t{rc.max} - rc.min + 1;
  std::set<uint16_t> used;
  for (uint32_t i = 0; i < n; ++i) {
    auto p = syn(h, kInsideHost, static_cast<uint16_t>(30000 + i), kServer, 443);
    ASSERT_TRUE(p.has_value()) << i;
    EXPECT_GE(*p, rc.min);
    EXPECT_LE(*p, rc.max);
    used.insert(*p);
  }
  EXPECT_EQ(used.size(), n);  // the whole range, each port once
  Sent s;
  EXPECT_FALSE(syn(h, kInsideHost, 29999, kServer, 443, &s).has_value());
  EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engine, PortRangeCustom,
                         ::testing::Values(RangeCase{1024, 1024}, RangeCase{1024, 1027},
                                           RangeCase{5000, 5099}, RangeCase{65500, 65535},
                                           RangeCase{1, 64}),
                         [](const ::testing::TestParamInfo<RangeCase>& i) {
                           return std::to_string(i.param.min) + "_" + std::to_string(i.param.max);
                         });

TEST(PortRandom, PortsFromOneHostAreNotSequential) {
  // RFC 6056: an observer of one connection cannot predict the next one's port.
  EngineHarness h;
  std::vector<uint16_t> ports;
  for (uint16_t i = 0; i < 200; ++i) {
    auto p = syn(h, kInsideHost, static_cast<uint16_t>(40000 + i), kServer, 443);
    ASSERT_TRUE(p.has_value());
    ports.push_back(*p);
  }
  int sequential = 0;
  for (size_t i = 1; i < ports.size(); ++i) {
    const int d = int{ports[i]} - int{ports[i - 1]};
    if (d >= -2 && d <= 2) ++sequential;
  }
  EXPECT_LE(sequential, 2);
  EXPECT_EQ(std::set<uint16_t>(ports.begin(), ports.end()).size(), ports.size());
  const auto [lo, hi] = std::minmax_element(ports.begin(), ports.end());
  EXPECT_GT(*hi - *lo, 30000);  // spread over the range
  // Not a function of the inside port either: the same source port to another server gets a
  // different outside port (with overwhelming probability over 64512 values).
  int same = 0;
  for (uint16_t i = 0; i < 50; ++i) {
    auto p = syn(h, kInsideHost, static_cast<uint16_t>(40000 + i), kServer2, 443);
    ASSERT_TRUE(p.has_value());
    same += *p == ports[i];
  }
  EXPECT_LE(same, 1);
}

TEST(PortRandom, SeedChangesTheSequence) {
  engine::EngineConfig a = default_config();
  engine::EngineConfig b = default_config();
  b.random_seed = a.random_seed + 1;
  EngineHarness ha(a);
  EngineHarness hb(b);
  EngineHarness ha2(a);
  int equal = 0;
  for (uint16_t i = 0; i < 20; ++i) {
    auto pa = syn(ha, kInsideHost, static_cast<uint16_t>(40000 + i), kServer, 443);
    auto pb = syn(hb, kInsideHost, static_cast<uint16_t>(40000 + i), kServer, 443);
    auto pa2 = syn(ha2, kInsideHost, static_cast<uint16_t>(40000 + i), kServer, 443);
    ASSERT_TRUE(pa && pb && pa2);
    EXPECT_EQ(*pa, *pa2);  // deterministic under an injected seed
    equal += *pa == *pb;
  }
  EXPECT_LE(equal, 1);
}

// ---------------------------------------------------------------------------------------------
// Endpoint-dependent mapping

TEST(PortReuse, SameOutsidePortServesDifferentDestinations) {
  engine::EngineConfig cfg = default_config();
  cfg.port_min = 1024;
  cfg.port_max = 1027;
  EngineHarness h(cfg);
  const std::vector<std::string> servers = {"198.51.100.1", "198.51.100.2", "198.51.100.3",
                                            "198.51.100.4"};
  std::map<std::string, std::set<uint16_t>> by_dest;
  for (const auto& srv : servers) {
    for (uint16_t k = 0; k < 4; ++k) {
      const auto sport = static_cast<uint16_t>(50000 + k);
      auto p = syn(h, kInsideHost, sport, srv, 443);
      ASSERT_TRUE(p.has_value()) << srv << " " << k;
      by_dest[srv].insert(*p);
    }
  }
  EXPECT_EQ(h.engine().active_flows(), 16u);
  for (const auto& srv : servers) {
    EXPECT_EQ(by_dest[srv], (std::set<uint16_t>{1024, 1025, 1026, 1027})) << srv;
  }
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 0u);
  // Each reply reaches the right inside socket although the outside port is shared.
  for (const auto& v : flows(h)) {
    Sent r = h.send(
        Packet().ipv4(v.remote_ip, kOutside).tcp(443, v.outside_port, kTcpSyn | kTcpAck).build());
    ASSERT_EQ(r.res.verdict, Verdict::ToInside);
    Parsed p = parse(r.out);
    EXPECT_EQ(p.ip_dst, v.inside_ip);
    EXPECT_EQ(p.dport, v.inside_port);
  }
  // A 5th connection to one destination has no port left; another destination port does.
  Sent s;
  EXPECT_FALSE(syn(h, kInsideHost, 50004, servers[0], 443, &s).has_value());
  EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  EXPECT_TRUE(syn(h, kInsideHost, 50004, servers[0], 80).has_value());
}

TEST(PortExhaustion, OneDestinationFillsTheRangeOthersStillWork) {
  engine::EngineConfig cfg = default_config();
  cfg.port_min = 1024;
  cfg.port_max = 2047;
  EngineHarness h(cfg);
  std::set<uint16_t> used;
  for (uint32_t i = 0; i < 1024; ++i) {
    auto p = syn(h, kInsideHost, static_cast<uint16_t>(10000 + i), kServer, 443);
    ASSERT_TRUE(p.has_value()) << i;
    used.insert(*p);
  }
  EXPECT_EQ(used.size(), 1024u);
  EXPECT_EQ(*used.begin(), 1024);
  EXPECT_EQ(*used.rbegin(), 2047);

  for (int k = 0; k < 3; ++k) {
    Sent s;
    EXPECT_FALSE(
        syn(h, kInsideHost2, static_cast<uint16_t>(3000 + k), kServer, 443, &s).has_value());
    EXPECT_EQ(s.res.verdict, Verdict::Drop);
    EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  }
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 3u);
  EXPECT_EQ(h.drops(DropReason::PortAllocation), 3u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 1024u);
  EXPECT_EQ(h.engine().active_flows(), 1024u);

  // Other destinations (address or port) are unaffected; so are UDP and ICMP.
  EXPECT_TRUE(syn(h, kInsideHost, 9999, kServer2, 443).has_value());
  EXPECT_TRUE(syn(h, kInsideHost, 9999, kServer, 8443).has_value());
  EXPECT_TRUE(udp_out(h, kInsideHost, 9999, kServer, 443).has_value());
  EXPECT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 7, 1).build())
                .res.verdict,
            Verdict::ToOutside);

  // Closing one connection gives its port back once its time-wait is over.
  std::optional<FlowView> victim;
  for (const auto& v : flows(h)) {
    if (v.proto == kProtoTcp && v.remote_ip == ip(kServer) && v.remote_port == 443) victim = v;
  }
  ASSERT_TRUE(victim.has_value());
  ASSERT_EQ(
      h.send(
           Packet().ipv4(victim->inside_ip, kServer).tcp(victim->inside_port, 443, kTcpRst).build())
          .res.verdict,
      Verdict::ToOutside);
  EXPECT_FALSE(syn(h, kInsideHost2, 3100, kServer, 443).has_value());  // still in time-wait
  h.advance_s(default_config().timeouts.tcp_time_wait_s + 1);
  expire_all(h);
  auto p = syn(h, kInsideHost2, 3101, kServer, 443);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, victim->outside_port);
}

TEST(PortExhaustion, FullRangeToOneDestination) {
  engine::EngineConfig cfg = default_config();
  cfg.max_flows = 1u << 17;
  EngineHarness h(cfg);
  constexpr uint32_t kPorts = 65535 - 1024 + 1;
  ASSERT_EQ(kPorts, 64512u);
  std::vector<bool> seen(65536, false);
  uint32_t ok = 0;
  // Four inside hosts (all paired with the one outside address) share the range.
  for (uint32_t i = 0; i < kPorts; ++i) {
    const std::string inside = addr("10.0.2.", 1 + i % 4);
    const auto sport = static_cast<uint16_t>(1024 + i / 4);
    Sent s = h.send(Packet().ipv4(inside, kServer).udp(sport, 53).build());
    if (s.res.verdict != Verdict::ToOutside) {
      ADD_FAILURE() << "flow " << i << " dropped: " << engine::drop_reason_name(s.res.reason);
      break;
    }
    const uint16_t op = parse(s.out).sport;
    if (op < 1024 || seen[op]) {
      ADD_FAILURE() << "flow " << i << " got port " << op;
      break;
    }
    seen[op] = true;
    ++ok;
  }
  EXPECT_EQ(ok, kPorts);
  EXPECT_EQ(h.engine().active_flows(), kPorts);
  Sent s = h.send(Packet().ipv4("10.0.2.9", kServer).udp(1, 53).build());
  EXPECT_EQ(s.res.verdict, Verdict::Drop);
  EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 1u);
  EXPECT_EQ(h.drops(DropReason::PortAllocation), 1u);
  EXPECT_EQ(h.engine().active_flows(), kPorts);
  // The table is far from full: another destination still gets a port.
  EXPECT_TRUE(udp_out(h, "10.0.2.9", 1, kServer2, 53).has_value());
}

// ---------------------------------------------------------------------------------------------
// Paired pooling

engine::EngineConfig sixteen_outside() {
  engine::EngineConfig cfg = default_config();
  cfg.outside_addrs.clear();
  for (uint32_t i = 1; i <= 16; ++i) cfg.outside_addrs.push_back(ip(addr("203.0.113.", i).c_str()));
  return cfg;
}

TEST(PairedPooling, EachHostKeepsOneOutsideAddressAndHostsSpread) {
  const engine::EngineConfig cfg = sixteen_outside();
  EngineHarness h(cfg);
  std::map<uint32_t, uint32_t> host_to_out;
  std::set<uint32_t> used;
  for (uint32_t host = 1; host <= 64; ++host) {
    const std::string inside = addr("10.0.3.", host);
    std::set<uint32_t> outs;
    for (uint16_t k = 0; k < 8; ++k) {
      // Mix protocols and destinations: the address depends on the host alone.
      Sent s;
      const std::string remote = addr("198.51.100.", 1 + k);
      if (k % 3 == 0) {
        s = h.send(Packet()
                       .ipv4(inside, remote)
                       .tcp(static_cast<uint16_t>(40000 + k), 443, kTcpSyn)
                       .build());
      } else if (k % 3 == 1) {
        s = h.send(Packet().ipv4(inside, remote).udp(static_cast<uint16_t>(40000 + k), 53).build());
      } else {
        s = h.send(Packet().ipv4(inside, remote).icmp_echo(kIcmpEchoRequest, 0, k, 1).build());
      }
      ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
      outs.insert(parse(s.out).ip_src);
    }
    ASSERT_EQ(outs.size(), 1u) << inside;
    const uint32_t out = *outs.begin();
    EXPECT_NE(std::find(cfg.outside_addrs.begin(), cfg.outside_addrs.end(), out),
              cfg.outside_addrs.end());
    host_to_out[host] = out;
    used.insert(out);
  }
  EXPECT_GE(used.size(), 8u);  // 64 hosts over 16 addresses

  // Same choice on a second engine (another worker or the HA peer) with another random seed.
  engine::EngineConfig peer_cfg = cfg;
  peer_cfg.random_seed = 999;
  EngineHarness peer(peer_cfg);
  for (const auto& [host, out] : host_to_out) {
    Sent s = peer.send(Packet().ipv4(addr("10.0.3.", host), kServer).udp(1234, 53).build());
    ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
    EXPECT_EQ(parse(s.out).ip_src, out) << host;
  }
  // Replies come back through the host's address.
  for (const auto& v : flows(h)) {
    if (v.proto != kProtoUdp) continue;
    Sent r =
        h.send(Packet().ipv4(v.remote_ip, v.outside_ip).udp(v.remote_port, v.outside_port).build());
    ASSERT_EQ(r.res.verdict, Verdict::ToInside);
    EXPECT_EQ(parse(r.out).ip_dst, v.inside_ip);
    // The same reply to another of our addresses finds nothing.
    const uint32_t other =
        v.outside_ip == cfg.outside_addrs[0] ? cfg.outside_addrs[1] : cfg.outside_addrs[0];
    Sent wrong =
        h.send(Packet().ipv4(v.remote_ip, other).udp(v.remote_port, v.outside_port).build());
    EXPECT_EQ(wrong.res.reason, DropReason::NoFlowOutside);
  }
}

// ---------------------------------------------------------------------------------------------
// No port shadowing

TEST(PortShadowing, TwoHostsToTheSameDestinationNeverShareAnOutsideTuple) {
  EngineHarness h;  // one outside address: every host shares it
  std::set<uint16_t> ports;
  std::map<uint16_t, std::pair<uint32_t, uint16_t>> owner;
  for (uint16_t k = 0; k < 300; ++k) {
    for (const char* host : {kInsideHost, kInsideHost2}) {
      const auto sport = static_cast<uint16_t>(40000 + k);  // same source port on both hosts
      auto p = syn(h, host, sport, kServer, 443);
      ASSERT_TRUE(p.has_value());
      EXPECT_TRUE(ports.insert(*p).second) << "outside port " << *p << " handed out twice";
      owner[*p] = {ip(host), sport};
    }
  }
  for (const auto& [oport, who] : owner) {
    Sent r = h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build());
    ASSERT_EQ(r.res.verdict, Verdict::ToInside);
    Parsed p = parse(r.out);
    EXPECT_EQ(p.ip_dst, who.first);
    EXPECT_EQ(p.dport, who.second);
  }
}

TEST(PortShadowing, ExhaustionFailsRatherThanShares) {
  engine::EngineConfig cfg = default_config();
  cfg.port_min = 2000;
  cfg.port_max = 2001;
  EngineHarness h(cfg);
  auto a = syn(h, "10.0.1.1", 5000, kServer, 443);
  auto b = syn(h, "10.0.1.2", 5000, kServer, 443);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  Sent s;
  EXPECT_FALSE(syn(h, "10.0.1.3", 5000, kServer, 443, &s).has_value());
  EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  // UDP: the same.
  auto ua = udp_out(h, "10.0.1.1", 5000, kServer, 53);
  auto ub = udp_out(h, "10.0.1.2", 5000, kServer, 53);
  ASSERT_TRUE(ua && ub);
  EXPECT_NE(ua->sport, ub->sport);
  EXPECT_FALSE(udp_out(h, "10.0.1.3", 5000, kServer, 53).has_value());
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 2u);
}

// ---------------------------------------------------------------------------------------------
// UDP endpoint-independent mapping (RFC 4787 REQ-1), filtering still address+port dependent

TEST(UdpEim, OneOutsidePortPerInsideSocket) {
  engine::EngineConfig cfg = default_config();
  cfg.udp_endpoint_independent = true;
  EngineHarness h(cfg);
  auto a1 = udp_out(h, kInsideHost, 5000, kServer, 3478);
  auto a2 = udp_out(h, kInsideHost, 5000, kServer2, 3479);
  auto b = udp_out(h, kInsideHost, 5001, kServer, 3478);
  auto c = udp_out(h, kInsideHost2, 5000, kServer, 3478);
  ASSERT_TRUE(a1 && a2 && b && c);
  EXPECT_EQ(a1->sport, a2->sport);
  EXPECT_EQ(a1->ip_src, a2->ip_src);
  EXPECT_NE(b->sport, a1->sport);
  EXPECT_NE(c->sport, a1->sport);
  EXPECT_NE(c->sport, b->sport);
  EXPECT_TRUE(
      l4_checksum_ok(Packet().ipv4(kOutside, kServer).udp(a1->sport, 3478).payload("q").build()));
  EXPECT_EQ(h.engine().active_flows(), 4u);

  // Both destinations reach the socket through the shared port.
  for (const char* srv : {kServer, kServer2}) {
    const uint16_t rport = srv == std::string(kServer) ? 3478 : 3479;
    Sent r = h.send(Packet().ipv4(srv, kOutside).udp(rport, a1->sport).payload("r").build());
    ASSERT_EQ(r.res.verdict, Verdict::ToInside) << srv;
    Parsed p = parse(r.out);
    EXPECT_EQ(p.ip_dst, ip(kInsideHost));
    EXPECT_EQ(p.dport, 5000);
    EXPECT_TRUE(l4_checksum_ok(r.out));
  }
  // Filtering: a third remote, or a known remote from another port, cannot use the mapping.
  Sent third = h.send(Packet().ipv4("198.51.100.99", kOutside).udp(3478, a1->sport).build());
  EXPECT_EQ(third.res.verdict, Verdict::Drop);
  EXPECT_EQ(third.res.reason, DropReason::NoFlowOutside);
  Sent other_port = h.send(Packet().ipv4(kServer, kOutside).udp(9999, a1->sport).build());
  EXPECT_EQ(other_port.res.reason, DropReason::NoFlowOutside);
  EXPECT_EQ(h.drops(DropReason::NoFlowOutside), 2u);
  EXPECT_EQ(h.engine().active_flows(), 4u);
}

TEST(UdpEim, PortReleasedOnlyAfterEveryFlowOfTheMappingExpires) {
  engine::EngineConfig cfg = default_config();
  cfg.udp_endpoint_independent = true;
  cfg.port_min = 1024;
  cfg.port_max = 1024;  // one port: who holds it is visible
  const uint32_t udp_s = cfg.timeouts.udp_s;
  EngineHarness h(cfg);
  auto a1 = udp_out(h, kInsideHost, 5000, kServer, 53);
  auto a2 = udp_out(h, kInsideHost, 5000, kServer2, 53);
  ASSERT_TRUE(a1 && a2);
  EXPECT_EQ(a1->sport, 1024);
  EXPECT_EQ(a2->sport, 1024);
  Sent s;
  EXPECT_FALSE(udp_out(h, kInsideHost, 5001, kServer, 53, &s).has_value());
  EXPECT_EQ(s.res.reason, DropReason::PortAllocation);
  EXPECT_EQ(h.events(Event::ErrorPortAllocation), 1u);

  // Keep the second flow alive; the first one expires, the mapping stays.
  h.advance_s(udp_s / 2);
  ASSERT_TRUE(udp_out(h, kInsideHost, 5000, kServer2, 53).has_value());
  h.advance_s(udp_s / 2 + 1);
  EXPECT_EQ(expire_all(h), 1u);
  EXPECT_EQ(h.engine().active_flows(), 1u);
  EXPECT_FALSE(udp_out(h, kInsideHost, 5001, kServer, 53).has_value());
  // A new flow of the same socket joins the existing mapping.
  auto a3 = udp_out(h, kInsideHost, 5000, "198.51.100.50", 53);
  ASSERT_TRUE(a3.has_value());
  EXPECT_EQ(a3->sport, 1024);

  h.advance_s(udp_s + 1);
  EXPECT_EQ(expire_all(h), 2u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  auto b = udp_out(h, kInsideHost, 5001, kServer, 53);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->sport, 1024);
  // ... and the old socket now has no port.
  EXPECT_FALSE(udp_out(h, kInsideHost, 5000, kServer, 53).has_value());
}

TEST(UdpEim, TcpStaysEndpointDependent) {
  engine::EngineConfig cfg = default_config();
  cfg.udp_endpoint_independent = true;
  cfg.port_min = 1024;
  cfg.port_max = 1024;
  EngineHarness h(cfg);
  // With one port, EDM TCP can still reuse it per destination; UDP EIM holds it per socket.
  EXPECT_TRUE(syn(h, kInsideHost, 6000, kServer, 443).has_value());
  EXPECT_TRUE(syn(h, kInsideHost2, 6000, kServer2, 443).has_value());
  EXPECT_TRUE(udp_out(h, kInsideHost, 6000, kServer, 53).has_value());
  EXPECT_FALSE(udp_out(h, kInsideHost2, 6000, kServer2, 53).has_value());
}

// ---------------------------------------------------------------------------------------------
// Table full: eviction order closing, transitory, ICMP, UDP, established

TEST(TableFull, EvictsInDocumentedClassOrder) {
  engine::EngineConfig cfg = default_config();
  cfg.max_flows = 8;
  EngineHarness h(cfg);
  auto syn_out = [&](const char* host, uint16_t sport) {
    return syn(h, host, sport, kServer, 443);
  };
  auto establish = [&](const char* host, uint16_t sport) {
    auto p = syn_out(host, sport);
    ASSERT_TRUE(p.has_value());
    ASSERT_EQ(h.send(Packet().ipv4(kServer, kOutside).tcp(443, *p, kTcpSyn | kTcpAck).build())
                  .res.verdict,
              Verdict::ToInside);
  };
  auto alive = [&](uint8_t proto, uint16_t inside_port) {
    for (const auto& v : flows(h)) {
      if (v.proto == proto && v.inside_port == inside_port) return true;
    }
    return false;
  };

  // Oldest first, the established ones before everything else.
  for (uint16_t k = 1; k <= 4; ++k) ASSERT_NO_FATAL_FAILURE(establish(kInsideHost, k));  // E1..E4
  auto u = udp_out(h, kInsideHost, 100, kServer, 53);                                    // U
  ASSERT_TRUE(u.has_value());
  ASSERT_EQ(
      h.send(Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 200, 1).build())
          .res.verdict,
      Verdict::ToOutside);                               // I
  ASSERT_TRUE(syn_out(kInsideHost, 300).has_value());    // T
  ASSERT_NO_FATAL_FAILURE(establish(kInsideHost, 400));  // C
  ASSERT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).tcp(400, 443, kTcpRst).build()).res.verdict,
            Verdict::ToOutside);
  ASSERT_EQ(h.engine().active_flows(), 8u);
  ASSERT_EQ(h.events(Event::FlowsEvicted), 0u);

  struct Expect {
    uint8_t proto;
    uint16_t port;
  };
  const std::vector<Expect> order = {{kProtoTcp, 400}, {kProtoTcp, 300}, {kProtoIcmp, 200},
                                     {kProtoUdp, 100}, {kProtoTcp, 1},   {kProtoTcp, 2}};
  for (size_t n = 0; n < order.size(); ++n) {
    SCOPED_TRACE(n);
    ASSERT_TRUE(alive(order[n].proto, order[n].port));
    // Each newcomer becomes established, so it is never the next victim.
    ASSERT_NO_FATAL_FAILURE(establish(kInsideHost2, static_cast<uint16_t>(1000 + n)));
    EXPECT_FALSE(alive(order[n].proto, order[n].port));
    EXPECT_EQ(h.events(Event::FlowsEvicted), n + 1);
    EXPECT_EQ(h.engine().active_flows(), 8u);
  }
  EXPECT_EQ(h.drops(DropReason::TableFull), 0u);
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 0u);
  // An evicted flow's reply finds nothing.
  Sent late = h.send(Packet().ipv4(kServer, kOutside).udp(53, u->sport).build());
  EXPECT_EQ(late.res.reason, DropReason::NoFlowOutside);
}

TEST(TableFull, OneSlotTableKeepsWorking) {
  engine::EngineConfig cfg = default_config();
  cfg.max_flows = 1;
  EngineHarness h(cfg);
  for (uint16_t k = 0; k < 20; ++k) {
    auto p = udp_out(h, kInsideHost, static_cast<uint16_t>(7000 + k), kServer, 53);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(h.engine().active_flows(), 1u);
  }
  EXPECT_EQ(h.events(Event::FlowsEvicted), 19u);
}

}  // namespace
}  // namespace eipgate::testing

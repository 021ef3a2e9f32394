// Egress policy in the engine: decisions at flow creation (CIDR/port rules, drop and reject),
// host-name rules on TLS SNI and HTTP Host (pending until the name, RST both ways when refused),
// per-rule hits, the denial log, reloads (keep flows; optional re-check).
#include <memory>

#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/policy_config.h"
#include "tests/unit/engine/engine_fixture.h"
#include "tests/unit/policy/client_hello.h"

namespace eipgate::testing {
namespace {

using engine::Verdict;
using policy::testing::ClientHello;

constexpr const char* kPolicy = R"(
groups:
  - name: lambdas
    sources: [10.0.1.0/24]
    default: reject
  - name: batch
    sources: [10.0.2.0/24]
    default: drop
rules:
  - name: stripe
    from: lambdas
    hosts: [api.stripe.com, "*.example.com"]
    proto: tcp
    ports: 443
  - name: plain-http
    from: lambdas
    hosts: [www.example.org]
    proto: tcp
    ports: 80
  - name: dns
    from: [lambdas, batch]
    dst: 198.51.100.0/24
    proto: udp
    ports: 53
)";

// `text` is the body of the config file's policy: section.
std::shared_ptr<const policy::CompiledPolicy> compile(const char* text) {
  std::string doc = "policy:\n";
  for (std::string_view rest = text; !rest.empty();) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (!line.empty()) doc += "  " + std::string(line) + "\n";
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  auto parsed = policy::parse_policy_text(doc, "test.yaml");
  EXPECT_FALSE(parsed.config->empty()) << doc;
  EXPECT_TRUE(parsed.errors.empty()) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
  std::string err;
  std::shared_ptr<const policy::CompiledPolicy> p =
      policy::CompiledPolicy::compile(*parsed.config, &err);
  EXPECT_TRUE(p) << err;
  return p;
}

engine::EngineConfig with_policy(const char* text = kPolicy) {
  auto c = default_config();
  c.policy = compile(text);
  return c;
}

uint64_t hits(EngineHarness& h, std::string_view rule) {
  const auto& pol = *h.engine().config().policy;
  for (uint32_t id = 0; id < pol.rule_count(); ++id) {
    if (pol.rule_name(id) == rule) return h.engine().rule_hits()[id];
  }
  ADD_FAILURE() << "no rule " << rule;
  return 0;
}

Bytes bytes_of(const std::vector<uint8_t>& v) { return Bytes(v.begin(), v.end()); }

// Opens a TCP connection through h (SYN, SYN-ACK); returns the outside port.
uint16_t handshake(EngineHarness& h, const char* src, uint16_t sport, uint16_t dport) {
  Sent syn = h.send(Packet().ipv4(src, kServer).tcp(sport, dport, kTcpSyn).seq(100).build());
  EXPECT_EQ(syn.res.verdict, Verdict::ToOutside);
  const uint16_t oport = parse(syn.out).sport;
  Sent sa =
      h.send(Packet().ipv4(kServer, kOutside).tcp(dport, oport, kTcpSyn | kTcpAck).seq(7).build());
  EXPECT_EQ(sa.res.verdict, Verdict::ToInside);
  return oport;
}

TEST(EnginePolicy, AllowedCidrRulePasses) {
  EngineHarness h(with_policy());
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).payload("q").build());
  EXPECT_EQ(s.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(hits(h, "dns"), 1u);
}

TEST(EnginePolicy, DeniedUdpIsRejectedWithIcmpAdministrativelyProhibited) {
  EngineHarness h(with_policy());
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 123).payload("ntp").build());
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  Parsed o = parse(s.out);
  EXPECT_EQ(o.proto, 1);
  EXPECT_EQ(o.icmp_type, 3);
  EXPECT_EQ(o.icmp_code, 13);
  EXPECT_EQ(o.ip_dst, ip(kInsideHost));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  EXPECT_EQ(h.drops(engine::DropReason::PolicyDenied), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  EXPECT_EQ(hits(h, "lambdas#default"), 1u);
  engine::DenyRecord d[4];
  ASSERT_EQ(h.engine().drain_denials(d, 4), 1u);
  EXPECT_EQ(d[0].src, ip(kInsideHost));
  EXPECT_EQ(d[0].dport, 123);
  EXPECT_TRUE(d[0].reject);
}

TEST(EnginePolicy, DeniedTcpSynGetsARst) {
  EngineHarness h(with_policy());
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 22, kTcpSyn).seq(5).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  Parsed o = parse(s.out);
  EXPECT_EQ(o.tcp_flags, kTcpRst | kTcpAck);
  EXPECT_EQ(o.ack, 6u);
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

TEST(EnginePolicy, DropGroupDropsSilentlyAndUnmatchedSourcesAreAllowed) {
  EngineHarness h(with_policy());
  Sent s = h.send(Packet().ipv4("10.0.2.7", kServer).tcp(40000, 22, kTcpSyn).build());
  EXPECT_EQ(s.res.verdict, Verdict::Drop);
  Sent other = h.send(Packet().ipv4("10.0.3.7", kServer).tcp(40000, 22, kTcpSyn).build());
  EXPECT_EQ(other.res.verdict, Verdict::ToOutside);  // no group: plain NAT
}

TEST(EnginePolicy, AllowedSniLetsTheConnectionThrough) {
  EngineHarness h(with_policy());
  const uint16_t oport = handshake(h, kInsideHost, 40001, 443);
  EXPECT_EQ(h.engine().active_flows(), 1u);
  const auto hello = ClientHello().sni("api.stripe.com").bytes();
  Sent d = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40001, 443, kTcpAck)
                      .seq(101)
                      .payload(bytes_of(hello))
                      .build());
  ASSERT_EQ(d.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(d.out).sport, oport);
  EXPECT_TRUE(l4_checksum_ok(d.out));
  EXPECT_EQ(hits(h, "stripe"), 1u);
  // Decided: more data flows without inspection, both ways.
  EXPECT_EQ(h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpAck).payload("x").build())
                .res.verdict,
            Verdict::ToInside);
  EXPECT_EQ(
      h.send(Packet().ipv4(kInsideHost, kServer).tcp(40001, 443, kTcpAck).payload("y").build())
          .res.verdict,
      Verdict::ToOutside);
}

TEST(EnginePolicy, WildcardNameMatches) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40002, 443);
  const auto hello = ClientHello().sni("a.b.example.com").bytes();
  EXPECT_EQ(h.send(Packet()
                       .ipv4(kInsideHost, kServer)
                       .tcp(40002, 443, kTcpAck)
                       .seq(101)
                       .payload(bytes_of(hello))
                       .build())
                .res.verdict,
            Verdict::ToOutside);
}

TEST(EnginePolicy, RefusedSniResetsBothWays) {
  EngineHarness h(with_policy());
  const uint16_t oport = handshake(h, kInsideHost, 40003, 443);
  const auto hello = ClientHello().sni("evil.example.net").bytes();
  Sent d = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40003, 443, kTcpAck)
                      .seq(101)
                      .payload(bytes_of(hello))
                      .build());
  ASSERT_EQ(d.res.verdict, Verdict::ToInside);  // the client's RST
  EXPECT_EQ(parse(d.out).tcp_flags & kTcpRst, kTcpRst);
  EXPECT_EQ(parse(d.out).ip_dst, ip(kInsideHost));
  // The server's next segment is answered with a RST from our outside tuple.
  Sent s =
      h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpAck).seq(8).ack(101).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  Parsed r = parse(s.out);
  EXPECT_EQ(r.tcp_flags & kTcpRst, kTcpRst);
  EXPECT_EQ(r.ip_src, ip(kOutside));
  EXPECT_EQ(r.sport, oport);
  EXPECT_EQ(r.ip_dst, ip(kServer));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  engine::DenyRecord rec[4];
  ASSERT_EQ(h.engine().drain_denials(rec, 4), 1u);
  EXPECT_STREQ(rec[0].name, "evil.example.net");
}

TEST(EnginePolicy, HttpHostHeaderDecidesOnPort80) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40004, 80);
  EXPECT_EQ(h.send(Packet()
                       .ipv4(kInsideHost, kServer)
                       .tcp(40004, 80, kTcpAck)
                       .seq(101)
                       .payload("GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
                       .build())
                .res.verdict,
            Verdict::ToOutside);
  handshake(h, kInsideHost, 40005, 80);
  EXPECT_EQ(h.send(Packet()
                       .ipv4(kInsideHost, kServer)
                       .tcp(40005, 80, kTcpAck)
                       .seq(101)
                       .payload("GET / HTTP/1.1\r\nHost: other.example.org\r\n\r\n")
                       .build())
                .res.verdict,
            Verdict::ToInside);  // RST
}

TEST(EnginePolicy, NoNameWithinThePacketBudgetIsRefused) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40006, 80);
  // A request line split over many segments, never finishing the headers: each is held back
  // (dropped; TCP would retransmit it) until the packet budget runs out.
  Verdict last = Verdict::Drop;
  int sent = 0;
  uint32_t seq = 101;
  while (last == Verdict::Drop && sent < 10) {
    const std::string part = sent == 0 ? "GET / HTTP/1.1\r\n" : "X-Pad: 1\r\n";
    last = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40006, 80, kTcpAck)
                      .seq(seq)
                      .payload(part)
                      .build())
               .res.verdict;
    seq += static_cast<uint32_t>(part.size());
    ++sent;
  }
  EXPECT_EQ(last, Verdict::ToInside);
  EXPECT_EQ(sent, 4);  // name_max_packets default
}

TEST(EnginePolicy, ReloadKeepsFlowsAndRecheckClosesTheDenied) {
  EngineHarness h(with_policy());
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  // Same rules, DNS no longer allowed, no re-check: the flow stays.
  auto next = h.engine().config();
  next.policy = compile(R"(
groups: [{name: lambdas, sources: [10.0.1.0/24], default: drop}]
rules: [{from: lambdas, dst: 192.0.2.0/24}]
)");
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(h.engine().active_flows(), 1u);
  EXPECT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).build()).res.verdict,
            Verdict::ToOutside);
  // With recheck_on_reload the denied flow is closed.
  next.policy = compile(R"(
recheck_on_reload: true
groups: [{name: lambdas, sources: [10.0.1.0/24], default: drop}]
rules: [{from: lambdas, dst: 192.0.2.0/24}]
)");
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(h.engine().active_flows(), 0u);
  EXPECT_EQ(h.events(engine::Event::PolicyFlowsRechecked), 1u);
  EXPECT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).build()).res.verdict,
            Verdict::Drop);
}

TEST(EnginePolicy, PendingFlowsExpireAndFreeTheirContexts) {
  auto cfg = with_policy();
  cfg.policy_pending_max = 2;
  EngineHarness h(cfg);
  handshake(h, kInsideHost, 41000, 443);
  handshake(h, kInsideHost, 41001, 443);
  Sent third = h.send(Packet().ipv4(kInsideHost, kServer).tcp(41002, 443, kTcpSyn).build());
  EXPECT_EQ(third.res.verdict, Verdict::Drop);
  EXPECT_EQ(h.drops(engine::DropReason::PolicyPendingFull), 1u);
  h.advance_s(400);
  h.engine().expire(h.now_ns(), 1024);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  Sent again = h.send(Packet().ipv4(kInsideHost, kServer).tcp(41003, 443, kTcpSyn).build());
  EXPECT_EQ(again.res.verdict, Verdict::ToOutside);
}

TEST(EnginePolicy, RefusedNameResetsTheServerAtOnceWithALentBuffer) {
  EngineHarness h(with_policy());
  Bytes spare(2048);
  engine::PacketBuf sb{spare.data(), 0, static_cast<uint32_t>(spare.size()), {}};
  EXPECT_EQ(h.engine().spares_wanted(), 8u);
  h.engine().give_spare(&sb);
  const uint16_t oport = handshake(h, kInsideHost, 40010, 443);
  const auto hello = ClientHello().sni("evil.example.net").bytes();
  Sent d = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40010, 443, kTcpAck)
                      .seq(101)
                      .ack(8)
                      .payload(bytes_of(hello))
                      .build());
  ASSERT_EQ(d.res.verdict, Verdict::ToInside);  // the client's RST
  engine::PacketBuf* rel[4];
  engine::Result res[4];
  ASSERT_EQ(h.engine().pop_released(rel, res, 4, h.now_ns()), 1u);
  EXPECT_EQ(rel[0], &sb);
  EXPECT_EQ(res[0].verdict, Verdict::ToOutside);
  Bytes out(sb.data, sb.data + sb.len);
  Parsed r = parse(out);
  EXPECT_EQ(r.tcp_flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.ip_src, ip(kOutside));
  EXPECT_EQ(r.sport, oport);
  EXPECT_EQ(r.ip_dst, ip(kServer));
  EXPECT_EQ(r.dport, 443);
  EXPECT_EQ(r.seq, 101u);
  EXPECT_TRUE(ip_checksum_ok(out));
  EXPECT_TRUE(l4_checksum_ok(out));
  EXPECT_EQ(h.engine().spares_wanted(), 8u);
}

// --- fail closed: reloads, pending flows, the name timeout ------------------------------------

// The client's data segment carrying `data` at sequence number `seq` (the SYN had seq 100).
Sent client_data(EngineHarness& h, uint16_t sport, uint16_t dport, uint32_t seq, const Bytes& data,
                 const char* src = kInsideHost) {
  return h.send(
      Packet().ipv4(src, kServer).tcp(sport, dport, kTcpAck).seq(seq).payload(data).build());
}

TEST(EnginePolicy, ReloadChangingMaxBytesKeepsPendingFlowsWaiting) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40020, 443);
  handshake(h, kInsideHost, 40021, 443);
  auto next = h.engine().config();
  next.policy = compile((std::string(kPolicy) + "inspection: {max_bytes: 8192}\n").c_str());
  ASSERT_EQ(h.engine().reconfigure(next), "");
  // Still pending under the new policy: the name decides, never "benefit of doubt".
  Sent evil =
      client_data(h, 40020, 443, 101, bytes_of(ClientHello().sni("evil.example.test").bytes()));
  EXPECT_EQ(evil.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(evil.out).tcp_flags & kTcpRst, kTcpRst);
  Sent good =
      client_data(h, 40021, 443, 101, bytes_of(ClientHello().sni("api.stripe.com").bytes()));
  EXPECT_EQ(good.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(hits(h, "stripe"), 1u);
  EXPECT_EQ(hits(h, "lambdas#default"), 1u);
}

TEST(EnginePolicy, ReloadKeepsTheBytesAPendingFlowHasSent) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40022, 443);
  const auto hello = bytes_of(ClientHello().sni("api.stripe.com").bytes());
  const Bytes first(hello.begin(), hello.begin() + 40);
  const Bytes rest(hello.begin() + 40, hello.end());
  EXPECT_EQ(client_data(h, 40022, 443, 101, first).res.verdict, Verdict::Drop);
  auto next = h.engine().config();
  next.policy = compile((std::string(kPolicy) + "inspection: {max_bytes: 2048}\n").c_str());
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(client_data(h, 40022, 443, 141, rest).res.verdict, Verdict::ToOutside);
}

TEST(EnginePolicy, ReloadShrinkingThePendingPoolRefusesWhatNoLongerFits) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40023, 443);
  handshake(h, kInsideHost, 40024, 443);
  auto next = h.engine().config();
  next.policy_pending_max = 1;
  ASSERT_EQ(h.engine().reconfigure(next), "");
  const auto good = bytes_of(ClientHello().sni("api.stripe.com").bytes());
  EXPECT_EQ(client_data(h, 40023, 443, 101, good).res.verdict, Verdict::ToOutside);
  EXPECT_EQ(client_data(h, 40024, 443, 101, good).res.verdict, Verdict::ToInside);  // RST
}

TEST(EnginePolicy, ReloadReorderingGroupsJudgesPendingFlowsByTheirOwnGroup) {
  const char* before = R"(
groups:
  - {name: api-only, sources: [10.0.1.0/24]}
  - {name: anything, sources: [10.0.2.0/24]}
rules:
  - {name: api, from: api-only, hosts: [api.example.test], proto: tcp, ports: 443}
  - {name: evil, from: anything, hosts: [evil.example.test], proto: tcp, ports: 443}
)";
  const char* after = R"(
groups:
  - {name: anything, sources: [10.0.2.0/24]}
  - {name: api-only, sources: [10.0.1.0/24]}
rules:
  - {name: evil, from: anything, hosts: [evil.example.test], proto: tcp, ports: 443}
  - {name: api, from: api-only, hosts: [api.example.test], proto: tcp, ports: 443}
)";
  EngineHarness h(with_policy(before));
  handshake(h, kInsideHost, 40030, 443);
  auto next = h.engine().config();
  next.policy = compile(after);
  ASSERT_EQ(h.engine().reconfigure(next), "");
  Sent s =
      client_data(h, 40030, 443, 101, bytes_of(ClientHello().sni("evil.example.test").bytes()));
  EXPECT_EQ(s.res.verdict, Verdict::ToInside);  // api-only's rules: refused
  EXPECT_EQ(hits(h, "evil"), 0u);
  EXPECT_EQ(hits(h, "api-only#default"), 1u);
}

TEST(EnginePolicy, ReloadThatDecidesAPendingFlowWithoutANameAppliesIt) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40031, 443);
  auto next = h.engine().config();
  next.policy = compile(R"(
groups: [{name: lambdas, sources: [10.0.1.0/24], default: reject}]
rules: [{name: dns-only, from: lambdas, dst: 198.51.100.0/24, proto: udp, ports: 53}]
)");
  ASSERT_EQ(h.engine().reconfigure(next), "");
  Sent s = client_data(h, 40031, 443, 101, bytes_of(ClientHello().sni("api.stripe.com").bytes()));
  EXPECT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(s.out).tcp_flags & kTcpRst, kTcpRst);
  engine::DenyRecord d[4];
  EXPECT_EQ(h.engine().drain_denials(d, 4), 1u);
}

TEST(EnginePolicy, RuleHitsFollowRuleNamesAcrossReloads) {
  EngineHarness h(with_policy());
  ASSERT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).build()).res.verdict,
            Verdict::ToOutside);
  ASSERT_EQ(hits(h, "dns"), 1u);
  auto next = h.engine().config();
  next.policy = compile(R"(
groups: [{name: lambdas, sources: [10.0.1.0/24], default: reject}]
rules:
  - {name: dns, from: lambdas, dst: 198.51.100.0/24, proto: udp, ports: 53}
  - {name: syslog, from: lambdas, dst: 198.51.100.0/24, proto: udp, ports: 514}
  - {name: ntp, from: lambdas, dst: 198.51.100.0/24, proto: udp, ports: 123}
)");  // ntp takes the position (rule id) dns had, dns the one stripe had
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(hits(h, "ntp"), 0u);
  EXPECT_EQ(hits(h, "syslog"), 0u);
  EXPECT_EQ(hits(h, "dns"), 1u);
  EXPECT_EQ(hits(h, "lambdas#default"), 0u);
}

TEST(EnginePolicy, PendingHoldsBackTheServerSpeakingFirst) {
  EngineHarness h(with_policy());
  const uint16_t oport = handshake(h, kInsideHost, 40040, 443);
  Sent banner = h.send(Packet()
                           .ipv4(kServer, kOutside)
                           .tcp(443, oport, kTcpAck)
                           .seq(8)
                           .ack(101)
                           .payload("hi")
                           .build());
  EXPECT_EQ(banner.res.verdict, Verdict::Drop);
  EXPECT_EQ(h.drops(engine::DropReason::PolicyPendingHeld), 1u);
  // Pure ACKs still pass while pending.
  EXPECT_EQ(
      h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpAck).seq(8).ack(101).build())
          .res.verdict,
      Verdict::ToInside);
  // Once the name allows the connection, the server's retransmission passes.
  ASSERT_EQ(client_data(h, 40040, 443, 101, bytes_of(ClientHello().sni("api.stripe.com").bytes()))
                .res.verdict,
            Verdict::ToOutside);
  EXPECT_EQ(h.send(Packet()
                       .ipv4(kServer, kOutside)
                       .tcp(443, oport, kTcpAck)
                       .seq(8)
                       .ack(101)
                       .payload("hi")
                       .build())
                .res.verdict,
            Verdict::ToInside);
}

TEST(EnginePolicy, DeniedSplitClientHelloNeverReachesTheServer) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40041, 443);
  const auto hello = bytes_of(ClientHello().sni("evil.example.test").bytes());
  const Bytes first(hello.begin(), hello.begin() + 50);
  const Bytes rest(hello.begin() + 50, hello.end());
  Sent a = client_data(h, 40041, 443, 101, first);
  EXPECT_EQ(a.res.verdict, Verdict::Drop);
  EXPECT_EQ(h.events(engine::Event::PacketsOutToDestination), 1u);  // the SYN only
  Sent b = client_data(h, 40041, 443, 151, rest);
  EXPECT_EQ(b.res.verdict, Verdict::ToInside);  // the client's RST
  EXPECT_EQ(h.events(engine::Event::PacketsOutToDestination), 1u);
}

TEST(EnginePolicy, AllowedSplitClientHelloPassesAndRetransmissionsAreReadOnce) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40042, 443);
  const auto hello = bytes_of(ClientHello().sni("api.stripe.com").bytes());
  const Bytes first(hello.begin(), hello.begin() + 50);
  const Bytes rest(hello.begin() + 50, hello.end());
  EXPECT_EQ(client_data(h, 40042, 443, 101, first).res.verdict, Verdict::Drop);
  EXPECT_EQ(client_data(h, 40042, 443, 101, first).res.verdict, Verdict::Drop);  // retransmitted
  EXPECT_EQ(client_data(h, 40042, 443, 500, rest).res.verdict, Verdict::Drop);   // beyond a gap
  EXPECT_EQ(client_data(h, 40042, 443, 151, rest).res.verdict, Verdict::ToOutside);
  // The client's retransmission of the first part now passes.
  EXPECT_EQ(client_data(h, 40042, 443, 101, first).res.verdict, Verdict::ToOutside);
  EXPECT_EQ(hits(h, "stripe"), 1u);
}

TEST(EnginePolicy, ARetransmissionOverlappingTheReadBytesAddsOnlyTheNewOnes) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40043, 443);
  const auto hello = bytes_of(ClientHello().sni("api.stripe.com").bytes());
  const Bytes first(hello.begin(), hello.begin() + 50);
  EXPECT_EQ(client_data(h, 40043, 443, 101, first).res.verdict, Verdict::Drop);
  // Re-packetised: the whole hello from the start.
  EXPECT_EQ(client_data(h, 40043, 443, 101, hello).res.verdict, Verdict::ToOutside);
}

TEST(EnginePolicy, NoNameWithinTheTimeoutIsRefused) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40050, 443);
  h.advance_ms(6000);  // timeout_ms 5000 (README): the connection is reset, whatever it sends
  Sent s = client_data(h, 40050, 443, 101, bytes_of(ClientHello().sni("api.stripe.com").bytes()));
  EXPECT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(s.out).tcp_flags & kTcpRst, kTcpRst);
  EXPECT_EQ(hits(h, "stripe"), 0u);
  EXPECT_EQ(hits(h, "lambdas#default"), 1u);
  EXPECT_EQ(h.drops(engine::DropReason::PolicyDenied), 1u);
}

TEST(EnginePolicy, TheNameTimeoutRunsFromTheHandshake) {
  EngineHarness h(with_policy());
  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40051, 443, kTcpSyn).seq(100).build());
  ASSERT_EQ(syn.res.verdict, Verdict::ToOutside);
  h.advance_ms(4000);  // a slow SYN-ACK
  const uint16_t oport = parse(syn.out).sport;
  ASSERT_EQ(
      h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).seq(7).build())
          .res.verdict,
      Verdict::ToInside);
  h.advance_ms(4000);
  EXPECT_EQ(client_data(h, 40051, 443, 101, bytes_of(ClientHello().sni("api.stripe.com").bytes()))
                .res.verdict,
            Verdict::ToOutside);
}

TEST(EnginePolicy, APureAckAfterTheTimeoutResetsThePendingConnection) {
  EngineHarness h(with_policy());
  handshake(h, kInsideHost, 40052, 443);
  h.advance_ms(5001);
  Sent s =
      h.send(Packet().ipv4(kInsideHost, kServer).tcp(40052, 443, kTcpAck).seq(101).ack(8).build());
  EXPECT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(s.out).tcp_flags & kTcpRst, kTcpRst);
}

TEST(EnginePolicy, ADeniedFlowIsCountedAndLoggedOnceItsRetransmissionsAsRepeats) {
  EngineHarness h(with_policy());
  auto syn = [&] {
    return h.send(Packet().ipv4(kInsideHost, kServer).tcp(40060, 22, kTcpSyn).seq(5).build());
  };
  for (int k = 0; k < 4; ++k) {                       // connect() and its SYN retransmissions
    EXPECT_EQ(syn().res.verdict, Verdict::ToInside);  // each gets its RST
    h.advance_s(1 << k);
  }
  EXPECT_EQ(hits(h, "lambdas#default"), 1u);
  engine::DenyRecord d[8];
  EXPECT_EQ(h.engine().drain_denials(d, 8), 1u);
  EXPECT_EQ(h.events(engine::Event::PolicyDeniedRepeats), 3u);
  EXPECT_EQ(h.drops(engine::DropReason::PolicyDenied), 4u);
  // Another tuple is another attempt.
  EXPECT_EQ(h.send(Packet().ipv4(kInsideHost, kServer).tcp(40061, 22, kTcpSyn).build()).res.verdict,
            Verdict::ToInside);
  EXPECT_EQ(hits(h, "lambdas#default"), 2u);
  // After the idle time (TCP transitory, 240 s) the same tuple is a new attempt.
  h.advance_s(241);
  EXPECT_EQ(syn().res.verdict, Verdict::ToInside);
  EXPECT_EQ(hits(h, "lambdas#default"), 3u);
  EXPECT_EQ(h.engine().drain_denials(d, 8), 2u);
  EXPECT_EQ(h.events(engine::Event::PolicyDeniedRepeats), 3u);
}

}  // namespace
}  // namespace eipgate::testing

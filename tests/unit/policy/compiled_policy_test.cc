// The compiled classifier: semantics case by case, then against a plain first-match reference on
// random policies (50 groups, thousands of rules) and random flows.
#include "dataplane/policy/compiled_policy.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "dataplane/policy/eal_for_test.h"
#include "dataplane/policy/policy_config.h"

namespace eipgate::policy {
namespace {

using V = Decision::Verdict;

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kIcmp = 1;

uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

class CompiledPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init_eal_for_test()); }

  static PolicyConfig parse(const std::string& yaml) {
    ParseResult r = parse_policy_text(yaml, "t.yaml");
    EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors.front().to_string());
    return r.config.value_or(PolicyConfig{});
  }
  static std::unique_ptr<CompiledPolicy> compile(const PolicyConfig& c,
                                                 const ResolvedNames& names = {},
                                                 Backend backend = Backend::Auto) {
    std::string err;
    auto p = CompiledPolicy::compile(c, &err, names, backend);
    EXPECT_NE(p, nullptr) << err;
    return p;
  }
};

constexpr const char* kPolicy = R"(policy:
  groups:
    - name: lambdas
      sources: [10.0.128.0/20]
      default: drop
    - name: batch
      sources: [10.0.160.0/24]
    - name: batch-special
      sources: [10.0.160.128/25]
  rules:
    - name: stripe
      from: lambdas
      hosts: [api.stripe.com, "*.stripe.net"]
      proto: tcp
      ports: 443
    - name: no-smtp
      from: lambdas
      ports: 25
      action: reject
    - name: aws
      from: lambdas
      dst: [52.0.0.0/8]
      ports: 1-1024
    - name: dns
      from: lambdas
      dst: 10.0.0.2
      proto: udp
      ports: 53
    - name: ping
      from: lambdas
      proto: icmp
    - name: ntp-by-name
      from: batch
      hosts: time.example.org
      proto: udp
      ports: 123
    - name: everything
      from: batch-special
)";

TEST_F(CompiledPolicyTest, EmptyPolicyAllowsEverythingWithoutEal) {
  std::string err;
  auto p = CompiledPolicy::compile(PolicyConfig{}, &err);
  ASSERT_NE(p, nullptr) << err;
  const Decision d = p->classify(ip(10, 0, 0, 1), ip(1, 1, 1, 1), kTcp, 443);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(d.rule_id, kUnmatchedRuleId);
  EXPECT_EQ(d.group_id, kNoGroup);
  EXPECT_TRUE(p->empty());
  EXPECT_EQ(p->rule_count(), 1u);
}

TEST_F(CompiledPolicyTest, RulesInOrderThenGroupDefault) {
  auto p = compile(parse(kPolicy));
  const uint32_t lambda = ip(10, 0, 130, 7);
  // aws: tcp/udp 1-1024 to 52/8; no-smtp comes first for port 25.
  Decision d = p->classify(lambda, ip(52, 1, 2, 3), kTcp, 80);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(p->rule_name(d.rule_id), "aws");
  EXPECT_EQ(p->group_name(d.group_id), "lambdas");
  d = p->classify(lambda, ip(52, 1, 2, 3), kUdp, 1024);
  EXPECT_EQ(p->rule_name(d.rule_id), "aws");
  d = p->classify(lambda, ip(52, 1, 2, 3), kTcp, 25);
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(d.deny_action, DenyAction::Reject);
  EXPECT_EQ(p->rule_name(d.rule_id), "no-smtp");
  // Outside the port range, another address, ICMP for a ports rule: the group default (drop).
  for (auto [dst, proto, port] : {std::tuple{ip(52, 1, 2, 3), kTcp, uint16_t{1025}},
                                  std::tuple{ip(53, 1, 2, 3), kTcp, uint16_t{80}},
                                  std::tuple{ip(52, 1, 2, 3), uint8_t{47}, uint16_t{0}}}) {
    d = p->classify(lambda, dst, proto, port);
    EXPECT_EQ(d.verdict, V::Deny);
    EXPECT_EQ(d.deny_action, DenyAction::Drop);
    EXPECT_EQ(p->rule_name(d.rule_id), "lambdas#default");
  }
  d = p->classify(lambda, ip(9, 9, 9, 9), kIcmp, 0x1234);  // ICMP: the "port" is ignored
  EXPECT_EQ(p->rule_name(d.rule_id), "ping");
  d = p->classify(lambda, ip(10, 0, 0, 2), kUdp, 53);
  EXPECT_EQ(p->rule_name(d.rule_id), "dns");
  d = p->classify(lambda, ip(10, 0, 0, 2), kTcp, 53);
  EXPECT_EQ(d.verdict, V::Deny);
}

TEST_F(CompiledPolicyTest, LongestSourcePrefixPicksTheGroup) {
  auto p = compile(parse(kPolicy));
  Decision d = p->classify(ip(10, 0, 160, 200), ip(8, 8, 8, 8), kTcp, 22);
  EXPECT_EQ(p->group_name(d.group_id), "batch-special");
  EXPECT_EQ(d.verdict, V::Allow);
  d = p->classify(ip(10, 0, 160, 5), ip(8, 8, 8, 8), kTcp, 22);
  EXPECT_EQ(p->group_name(d.group_id), "batch");
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(d.deny_action, DenyAction::Reject);  // the default default
}

TEST_F(CompiledPolicyTest, UnmatchedSources) {
  auto p = compile(parse(kPolicy));
  Decision d = p->classify(ip(192, 168, 1, 1), ip(8, 8, 8, 8), kTcp, 22);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(d.group_id, kNoGroup);
  EXPECT_EQ(d.rule_id, kUnmatchedRuleId);
  PolicyConfig c = parse(kPolicy);
  c.unmatched_allow = false;
  c.unmatched_deny = DenyAction::Drop;
  p = compile(c);
  d = p->classify(ip(192, 168, 1, 1), ip(8, 8, 8, 8), kTcp, 22);
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(d.deny_action, DenyAction::Drop);
}

TEST_F(CompiledPolicyTest, HostRuleOnInspectedPortNeedsTheName) {
  auto p = compile(parse(kPolicy));
  const uint32_t lambda = ip(10, 0, 130, 7);
  EXPECT_TRUE(p->inspects_tls(443));
  EXPECT_TRUE(p->inspects_http(80));
  EXPECT_FALSE(p->inspects_tls(80));
  Decision d = p->classify(lambda, ip(54, 1, 1, 1), kTcp, 443);
  ASSERT_EQ(d.verdict, V::NeedName);
  EXPECT_EQ(p->rule_name(d.rule_id), "stripe");
  d = p->classify_name(d.group_id, "api.stripe.com", ip(54, 1, 1, 1), kTcp, 443);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(p->rule_name(d.rule_id), "stripe");
  d = p->classify_name(d.group_id, "x.y.stripe.net", ip(54, 1, 1, 1), kTcp, 443);
  EXPECT_EQ(d.verdict, V::Allow);
  d = p->classify_name(d.group_id, "evil.com", ip(54, 1, 1, 1), kTcp, 443);
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(p->rule_name(d.rule_id), "lambdas#default");
  // A name that is not allowed falls through to later rules: 52/8 on port 443 is allowed by
  // address whatever the name.
  d = p->classify(lambda, ip(52, 9, 9, 9), kTcp, 443);
  ASSERT_EQ(d.verdict, V::NeedName);
  d = p->classify_name(d.group_id, "anything.example", ip(52, 9, 9, 9), kTcp, 443);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(p->rule_name(d.rule_id), "aws");
  // No name at all: reset, whatever the group default.
  d = p->no_name(d.group_id);
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(d.deny_action, DenyAction::Reject);
  // Another port: the host rule (443 only) does not apply.
  d = p->classify(lambda, ip(54, 1, 1, 1), kTcp, 8443);
  EXPECT_EQ(d.verdict, V::Deny);
}

TEST_F(CompiledPolicyTest, HostRuleForUdpUsesResolvedAddresses) {
  const PolicyConfig c = parse(kPolicy);
  auto p = compile(c);
  EXPECT_EQ(p->names_to_resolve(), (std::vector<std::string>{"time.example.org"}));
  const uint32_t batch = ip(10, 0, 160, 5);
  EXPECT_EQ(p->classify(batch, ip(17, 253, 4, 253), kUdp, 123).verdict, V::Deny);
  ResolvedNames names;
  names.set("time.example.org", {ip(17, 253, 4, 253), ip(17, 253, 4, 125)});
  std::string err;
  auto q = p->with_resolved(names, &err);
  ASSERT_NE(q, nullptr) << err;
  Decision d = q->classify(batch, ip(17, 253, 4, 253), kUdp, 123);
  EXPECT_EQ(d.verdict, V::Allow);
  EXPECT_EQ(q->rule_name(d.rule_id), "ntp-by-name");
  EXPECT_EQ(q->classify(batch, ip(17, 253, 4, 125), kUdp, 123).verdict, V::Allow);
  EXPECT_EQ(q->classify(batch, ip(17, 253, 4, 126), kUdp, 123).verdict, V::Deny);
  EXPECT_EQ(q->classify(batch, ip(17, 253, 4, 253), kUdp, 124).verdict, V::Deny);
  // The old policy is untouched (workers may still be reading it).
  EXPECT_EQ(p->classify(batch, ip(17, 253, 4, 253), kUdp, 123).verdict, V::Deny);
  // Compiling with the names gives the same answers as with_resolved.
  auto r = compile(c, names);
  EXPECT_EQ(r->classify(batch, ip(17, 253, 4, 253), kUdp, 123).verdict, V::Allow);
  // Addresses go away when the answer does.
  auto s = q->with_resolved(ResolvedNames{}, &err);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->classify(batch, ip(17, 253, 4, 253), kUdp, 123).verdict, V::Deny);
  // Other groups keep working across the swap.
  EXPECT_EQ(s->rule_name(s->classify(ip(10, 0, 130, 7), ip(52, 1, 2, 3), kTcp, 80).rule_id), "aws");
}

TEST_F(CompiledPolicyTest, NameMustMatchAddress) {
  const PolicyConfig c = parse(R"(policy:
  groups:
    - name: strict
      sources: [10.1.0.0/16]
      name_must_match_address: true
  rules:
    - from: strict
      hosts: [api.example.com]
      proto: tcp
      ports: 443
)");
  auto p = compile(c);
  EXPECT_EQ(p->names_to_resolve(), (std::vector<std::string>{"api.example.com"}));
  const uint32_t src = ip(10, 1, 0, 9);
  Decision d = p->classify(src, ip(93, 184, 216, 34), kTcp, 443);
  ASSERT_EQ(d.verdict, V::NeedName);
  // Unresolved: the name cannot be confirmed, so it is not allowed.
  EXPECT_EQ(
      p->classify_name(d.group_id, "api.example.com", ip(93, 184, 216, 34), kTcp, 443).verdict,
      V::Deny);
  ResolvedNames names;
  names.set("api.example.com", {ip(93, 184, 216, 34)});
  auto q = p->with_resolved(names, nullptr);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(
      q->classify_name(d.group_id, "api.example.com", ip(93, 184, 216, 34), kTcp, 443).verdict,
      V::Allow);
  // Domain fronting: the allowed name towards some other address.
  EXPECT_EQ(q->classify_name(d.group_id, "api.example.com", ip(6, 6, 6, 6), kTcp, 443).verdict,
            V::Deny);
}

TEST_F(CompiledPolicyTest, GroupWithoutRulesDeniesEverything) {
  auto p = compile(parse("policy:\n  groups:\n    - name: closed\n      sources: 10.9.0.0/16\n"));
  const Decision d = p->classify(ip(10, 9, 1, 1), ip(1, 1, 1, 1), kUdp, 53);
  EXPECT_EQ(d.verdict, V::Deny);
  EXPECT_EQ(p->rule_name(d.rule_id), "closed#default");
}

TEST_F(CompiledPolicyTest, BulkAgreesWithSingle) {
  auto p = compile(parse(kPolicy));
  std::mt19937 rng(7);
  constexpr size_t kN = 64;
  std::vector<uint32_t> src(kN), dst(kN);
  std::vector<uint8_t> proto(kN);
  std::vector<uint16_t> port(kN);
  for (size_t i = 0; i < kN; ++i) {
    src[i] = ip(10, 0, static_cast<uint8_t>(128 + rng() % 40), static_cast<uint8_t>(rng()));
    dst[i] = (rng() % 2 ? ip(52, 0, 0, 0) : ip(54, 0, 0, 0)) | (rng() & 0xffff);
    proto[i] = std::array<uint8_t, 3>{kTcp, kUdp, kIcmp}[rng() % 3];
    port[i] = static_cast<uint16_t>(rng() % 2 ? 443 : rng() % 2000);
  }
  std::vector<Decision> out(kN);
  p->classify_bulk(src.data(), dst.data(), proto.data(), port.data(), out.data(), kN);
  for (size_t i = 0; i < kN; ++i) {
    const Decision d = p->classify(src[i], dst[i], proto[i], port[i]);
    EXPECT_EQ(out[i].verdict, d.verdict);
    EXPECT_EQ(out[i].rule_id, d.rule_id);
  }
}

// ---- against a reference ---------------------------------------------------------------------

bool ref_l4(const Rule& r, uint8_t proto, uint16_t port) {
  switch (r.proto) {
    case Proto::Tcp:
      return proto == kTcp && port >= r.port_lo && port <= r.port_hi;
    case Proto::Udp:
      return proto == kUdp && port >= r.port_lo && port <= r.port_hi;
    case Proto::Icmp:
      return proto == kIcmp;
    case Proto::Any:
      if (!r.has_ports) return true;
      return (proto == kTcp || proto == kUdp) && port >= r.port_lo && port <= r.port_hi;
  }
  return false;
}

// First match in rule order, literally as README.md states it. Returns (verdict, group, rule
// index or -1 for the default).
struct RefResult {
  V verdict;
  int group;
  int rule;
};

RefResult reference(const PolicyConfig& c, const ResolvedNames& names, uint32_t src, uint32_t dst,
                    uint8_t proto, uint16_t port) {
  int best = -1;
  int best_len = -1;
  for (size_t g = 0; g < c.groups.size(); ++g) {
    for (const auto& s : c.groups[g].sources) {
      if (s.contains(src) && s.len > best_len) {
        best = static_cast<int>(g);
        best_len = s.len;
      }
    }
  }
  if (best < 0) return {V::Allow, -1, -1};
  const auto& rules = c.groups[static_cast<size_t>(best)].rules;
  const bool inspected =
      proto == kTcp &&
      (std::find(c.tls_ports.begin(), c.tls_ports.end(), port) != c.tls_ports.end() ||
       std::find(c.http_ports.begin(), c.http_ports.end(), port) != c.http_ports.end());
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    if (!ref_l4(r, proto, port)) continue;
    if (std::none_of(r.dst.begin(), r.dst.end(),
                     [&](const Prefix& p) { return p.contains(dst); })) {
      continue;
    }
    if (r.hosts.empty()) return {r.allow ? V::Allow : V::Deny, best, static_cast<int>(i)};
    if (inspected) return {V::NeedName, best, static_cast<int>(i)};
    for (const auto& h : r.hosts) {
      if (names.resolves_to(h, dst)) return {V::Allow, best, static_cast<int>(i)};
    }
  }
  return {V::Deny, best, -1};
}

class CompiledPolicyBackendTest : public CompiledPolicyTest,
                                  public ::testing::WithParamInterface<Backend> {};

TEST_P(CompiledPolicyBackendTest, AgreesWithReferenceOnRandomPolicies) {
  std::mt19937 rng(12345);
  // Destinations from a small space so that rules overlap and flows hit them.
  auto rand_dst = [&] {
    return ip(52, static_cast<uint8_t>(rng() % 4), static_cast<uint8_t>(rng() % 8),
              static_cast<uint8_t>(rng()));
  };
  // Rounds: small; 50 groups x 4000 rules; the same with wide prefixes (/0../12: long candidate
  // lists, so the segment table's port tables are exercised).
  for (int round = 0; round < 4; ++round) {
    PolicyConfig c;
    c.tls_ports = {443};
    c.http_ports = {80, 8080};
    const int ngroups = round == 0 ? 3 : round == 3 ? 5 : 50;
    const int nrules = round == 0 ? 40 : round == 3 ? 1000 : 4000;
    for (int g = 0; g < ngroups; ++g) {
      SourceGroup sg;
      sg.name = "g" + std::to_string(g);
      sg.sources.push_back(Prefix{ip(10, static_cast<uint8_t>(g), 0, 0), 16});
      if (g % 5 == 0) sg.sources.push_back(Prefix{ip(10, static_cast<uint8_t>(g + 100), 0, 0), 24});
      sg.default_deny = g % 2 ? DenyAction::Drop : DenyAction::Reject;
      c.groups.push_back(sg);
    }
    ResolvedNames names;
    for (int h = 0; h < 20; ++h)
      names.set("h" + std::to_string(h) + ".example", {rand_dst(), rand_dst()});
    for (int i = 0; i < nrules; ++i) {
      Rule r;
      const auto g = static_cast<size_t>(rng() % static_cast<unsigned>(ngroups));
      r.name = "r" + std::to_string(i);
      const int ndst = 1 + static_cast<int>(rng() % 2);
      for (int k = 0; k < ndst; ++k) {
        const auto len = static_cast<uint8_t>(round == 3 ? rng() % 13 : 14 + rng() % 19);
        r.dst.push_back(Prefix{rand_dst() & Prefix::mask(len), len});
      }
      r.proto = static_cast<Proto>(rng() % 4);
      if (r.proto != Proto::Icmp && rng() % 3 != 0) {
        r.has_ports = true;
        r.port_lo = static_cast<uint16_t>(rng() % 1100);
        r.port_hi = static_cast<uint16_t>(r.port_lo + rng() % 200);
      }
      if (rng() % 8 == 0) {
        r.hosts.push_back("h" + std::to_string(rng() % 25) + ".example");  // some never resolve
      } else {
        r.allow = rng() % 3 != 0;
        r.deny_action = rng() % 2 ? DenyAction::Drop : DenyAction::Reject;
      }
      c.groups[g].rules.push_back(r);
    }
    auto p = compile(c, names, GetParam());
    ASSERT_NE(p, nullptr);
    for (int q = 0; q < 20000; ++q) {
      const uint32_t src = ip(10, static_cast<uint8_t>(rng() % static_cast<unsigned>(ngroups + 2)),
                              static_cast<uint8_t>(rng() % 2), static_cast<uint8_t>(rng()));
      uint32_t dst = rand_dst();
      if (rng() % 4 == 0) {  // aim at resolved addresses now and then
        const auto* a = names.find("h" + std::to_string(rng() % 20) + ".example");
        dst = (*a)[rng() % a->size()];
      }
      const uint8_t proto = std::array<uint8_t, 4>{kTcp, kUdp, kIcmp, 47}[rng() % 4];
      const auto port = static_cast<uint16_t>(
          rng() % 4 == 0 ? std::array<uint16_t, 3>{80, 443, 8080}[rng() % 3] : rng() % 1400);
      const RefResult want = reference(c, names, src, dst, proto, port);
      const Decision got = p->classify(src, dst, proto, port);
      ASSERT_EQ(got.verdict, want.verdict) << "round " << round << " query " << q;
      if (want.group < 0) {
        EXPECT_EQ(got.group_id, kNoGroup);
        continue;
      }
      ASSERT_EQ(got.group_id, want.group);
      const std::string want_name =
          want.rule < 0 ? c.groups[static_cast<size_t>(want.group)].name + "#default"
                        : c.groups[static_cast<size_t>(want.group)]
                              .rules[static_cast<size_t>(want.rule)]
                              .name;
      ASSERT_EQ(p->rule_name(got.rule_id), want_name) << "round " << round << " query " << q;
      if (want.verdict == V::Deny && want.rule < 0) {
        EXPECT_EQ(got.deny_action, c.groups[static_cast<size_t>(want.group)].default_deny);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, CompiledPolicyBackendTest,
                         ::testing::Values(Backend::Segments, Backend::Acl),
                         [](const auto& test_info) {
                           return test_info.param == Backend::Acl ? std::string("RteAcl")
                                                                  : std::string("SegmentTable");
                         });

// ---- names, counters ------------------------------------------------------------------------

TEST(NameCache, HonoursTtls) {
  NameCache cache(/*min_ttl_s=*/5, /*max_ttl_s=*/3600);
  EXPECT_TRUE(cache.update("a.example", {ip(1, 1, 1, 1)}, 60, 1000));
  EXPECT_FALSE(cache.update("a.example", {ip(1, 1, 1, 1)}, 60, 2000));  // same answer, refreshed
  EXPECT_TRUE(cache.update("b.example", {ip(2, 2, 2, 2), ip(2, 2, 2, 1)}, 1, 2000));  // -> 5 s
  EXPECT_EQ(cache.next_expiry_ms(), 7000u);
  ResolvedNames s = cache.snapshot();
  EXPECT_TRUE(s.resolves_to("b.example", ip(2, 2, 2, 1)));
  EXPECT_FALSE(cache.expire(6999));
  EXPECT_TRUE(cache.expire(7000));
  s = cache.snapshot();
  EXPECT_EQ(s.find("b.example"), nullptr);
  EXPECT_TRUE(s.resolves_to("a.example", ip(1, 1, 1, 1)));
  EXPECT_TRUE(cache.update("a.example", {ip(1, 1, 1, 2)}, 60, 3000));  // the address moved
  EXPECT_TRUE(cache.expire(63000));
  EXPECT_FALSE(cache.next_expiry_ms().has_value());
}

TEST(RuleCounters, SumOverWorkers) {
  RuleCounters c(3, 10);
  c.hit(0, 4);
  c.hit(2, 4);
  c.hit(2, 9);
  EXPECT_EQ(c.total(4), 2u);
  EXPECT_EQ(c.total(9), 1u);
  EXPECT_EQ(c.total(0), 0u);
}

}  // namespace
}  // namespace eipgate::policy

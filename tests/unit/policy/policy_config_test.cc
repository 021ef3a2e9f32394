// The `policy:` YAML: the example parses to the expected model; every kind of mistake is an
// error naming the line; overlapping and shadowed rules are warnings.
#include "dataplane/policy/policy_config.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace eipgate::policy {
namespace {

constexpr const char* kExample = R"(policy:
  unmatched_sources: reject
  inspection:
    tls_ports: [443, 8443]
    http_ports: [80]
    max_bytes: 8192
    max_packets: 6
  groups:
    - name: lambdas
      sources: [10.0.128.0/20, 10.0.144.0/20]
      default: drop
    - name: batch
      sources: 10.0.160.0/24
      name_must_match_address: true
  rules:
    - name: stripe
      from: [lambdas, batch]
      hosts: ["api.stripe.com", "*.Stripe.com."]
      proto: tcp
      ports: 443
    - from: lambdas
      dst: [52.1.2.0/24, 52.1.3.4]
      proto: udp
      ports: 1000-2000
    - from: batch
      dst: 0.0.0.0/0
      proto: tcp
      ports: 25
      action: reject
    - from: batch
      proto: icmp
)";

TEST(PolicyConfig, ExampleParses) {
  const ParseResult r = parse_policy_text(kExample, "dp.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().to_string();
  ASSERT_TRUE(r.config.has_value());
  const PolicyConfig& c = *r.config;
  EXPECT_FALSE(c.unmatched_allow);
  EXPECT_EQ(c.unmatched_deny, DenyAction::Reject);
  EXPECT_EQ(c.tls_ports, (std::vector<uint16_t>{443, 8443}));
  EXPECT_EQ(c.name_max_bytes, 8192u);
  EXPECT_EQ(c.name_max_packets, 6u);
  ASSERT_EQ(c.groups.size(), 2u);
  const SourceGroup& l = c.groups[0];
  EXPECT_EQ(l.name, "lambdas");
  EXPECT_EQ(l.line, 9);
  EXPECT_EQ(l.default_deny, DenyAction::Drop);
  ASSERT_EQ(l.sources.size(), 2u);
  EXPECT_EQ(l.sources[1], (Prefix{0x0a009000, 20}));
  ASSERT_EQ(l.rules.size(), 2u);
  EXPECT_EQ(l.rules[0].name, "stripe");
  EXPECT_EQ(l.rules[0].hosts, (std::vector<std::string>{"api.stripe.com", "*.stripe.com"}));
  EXPECT_EQ(l.rules[0].dst, (std::vector<Prefix>{{0, 0}}));
  EXPECT_EQ(l.rules[0].proto, Proto::Tcp);
  EXPECT_EQ(l.rules[0].port_lo, 443);
  EXPECT_EQ(l.rules[0].line, 16);
  EXPECT_EQ(l.rules[1].name, "lambdas#2");
  EXPECT_EQ(l.rules[1].dst, (std::vector<Prefix>{{0x34010200, 24}, {0x34010304, 32}}));
  EXPECT_EQ(l.rules[1].port_lo, 1000);
  EXPECT_EQ(l.rules[1].port_hi, 2000);
  const SourceGroup& b = c.groups[1];
  EXPECT_TRUE(b.name_must_match_address);
  EXPECT_EQ(b.default_deny, DenyAction::Reject);
  ASSERT_EQ(b.rules.size(), 3u);
  EXPECT_EQ(b.rules[1].name, "batch#2");
  EXPECT_FALSE(b.rules[1].allow);
  EXPECT_EQ(b.rules[1].deny_action, DenyAction::Reject);
  EXPECT_EQ(b.rules[2].proto, Proto::Icmp);
  EXPECT_FALSE(b.rules[2].has_ports);
}

TEST(PolicyConfig, AbsentIsEmpty) {
  const ParseResult r = parse_policy_text("mode: one-armed\n", "dp.yaml");
  ASSERT_TRUE(r.config.has_value());
  EXPECT_TRUE(r.config->empty());
  EXPECT_TRUE(r.config->unmatched_allow);
}

struct BadCase {
  const char* what;
  const char* yaml;
  int line;
  const char* reason;  // a substring of the message
};

class PolicyConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(PolicyConfigErrors, RejectedWithLineAndReason) {
  const BadCase& c = GetParam();
  const ParseResult r = parse_policy_text(c.yaml, "dp.yaml");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors.front().line, c.line) << r.errors.front().to_string();
  EXPECT_NE(r.errors.front().reason.find(c.reason), std::string::npos)
      << r.errors.front().to_string();
  EXPECT_EQ(r.errors.front().to_string().rfind("dp.yaml:" + std::to_string(c.line) + ": ", 0), 0u);
}

constexpr const char* kGroup = "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyConfigErrors,
    ::testing::Values(
        BadCase{"bad cidr", "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/33]\n", 4,
                "prefix length"},
        BadCase{"host bits", "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.1/8]\n", 4,
                "host bits set (did you mean 10.0.0.0/8?)"},
        BadCase{"not an address",
                "policy:\n  groups:\n    - name: g\n      sources:\n        - 10.0.0.0/8\n        "
                "- 300.1.1.1\n",
                6, "not an IPv4 address"},
        BadCase{"port range reversed",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      ports: 2000-1000\n",
                7, "low end above"},
        BadCase{"port too big",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      ports: 70000\n",
                7, "not a port"},
        BadCase{"icmp ports",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      proto: icmp\n      ports: 80\n",
                8, "ICMP has no ports"},
        BadCase{"name pattern",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      hosts: [ok.com, \"a.*.com\"]\n",
                7, "'a.*.com'"},
        BadCase{"unknown group",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "dst: 1.2.3.0/24\n      from: lambda\n",
                7, "unknown group 'lambda' (groups: g)"},
        BadCase{"unknown key",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      port: 80\n",
                7, "unknown key 'port' (did you mean 'ports'?)"},
        BadCase{"bad boolean", "policy:\n  recheck_on_reload: 1\n", 2, "'1' is not a boolean"},
        BadCase{"leading zero in the length",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/08]\n", 4,
                "prefix length"},
        BadCase{"bad proto",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      proto: sctp\n",
                7, "'sctp'"},
        BadCase{"bad action",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      action: deny\n",
                7, "not allow, drop or reject"},
        BadCase{"duplicate group",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n    - name: g\n   "
                "   sources: [11.0.0.0/8]\n",
                5, "already defined on line 3"},
        BadCase{"same source twice",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n    - name: h\n   "
                "   sources: [10.0.0.0/8]\n",
                5, "already in group 'g'"},
        BadCase{"missing from",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "dst: 1.2.3.4\n",
                6, "from (the source group"},
        BadCase{"deny by name",
                "policy:\n  groups:\n    - name: g\n      sources: [10.0.0.0/8]\n  rules:\n    - "
                "from: g\n      hosts: a.com\n      action: drop\n",
                6, "hosts work only with action allow"},
        BadCase{"missing sources", "policy:\n  groups:\n    - name: g\n", 3, "sources is required"},
        BadCase{
            "bad default",
            "policy:\n  groups:\n    - name: g\n      sources: 10.0.0.0/8\n      default: allow\n",
            5, "not drop or reject"},
        BadCase{"bad inspection",
                "policy:\n  inspection:\n    tls_ports: [443]\n    http_ports: [80, 443]\n", 4,
                "both tls_ports and http_ports"},
        BadCase{"yaml syntax", "policy:\n  groups: [\n", 3, ""}),
    [](const auto& test_info) {
      std::string n = test_info.param.what;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

TEST(PolicyConfig, AllErrorsReportedInLineOrder) {
  const ParseResult r = parse_policy_text(
      "policy:\n"
      "  groups:\n"
      "    - name: g\n"
      "      sources: [10.0.0.0/40]\n"
      "  rules:\n"
      "    - from: g\n"
      "      ports: x\n"
      "    - from: nope\n",
      "f.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_EQ(r.errors[1].line, 7);
  EXPECT_EQ(r.errors[2].line, 8);
}

TEST(PolicyConfig, ShadowedAndOverlappingRulesWarn) {
  std::string y = kGroup;
  y += "  rules:\n"
       "    - name: web\n"  // 6
       "      from: g\n"
       "      dst: 52.0.0.0/8\n"
       "      proto: tcp\n"
       "      ports: 1-1024\n"
       "    - name: narrower\n"  // 11
       "      from: g\n"
       "      dst: 52.1.0.0/16\n"
       "      proto: tcp\n"
       "      ports: 443\n"
       "    - name: no-smtp\n"  // 16
       "      from: g\n"
       "      dst: 0.0.0.0/0\n"
       "      ports: 25\n"
       "      action: drop\n"
       "    - name: udp-elsewhere\n"  // 21
       "      from: g\n"
       "      dst: 53.0.0.0/8\n"
       "      proto: udp\n";
  const ParseResult r = parse_policy_text(y, "f.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().to_string();
  ASSERT_EQ(r.warnings.size(), 3u);
  EXPECT_EQ(r.warnings[0].line, 11);
  EXPECT_NE(r.warnings[0].reason.find("never matches: rule 'web' (line 6)"), std::string::npos)
      << r.warnings[0].reason;
  EXPECT_EQ(r.warnings[1].line, 16);
  EXPECT_NE(r.warnings[1].reason.find("overlaps rule 'web'"), std::string::npos)
      << r.warnings[1].reason;
  // UDP port 25 to 53/8: no-smtp drops what udp-elsewhere would allow.
  EXPECT_EQ(r.warnings[2].line, 21);
  EXPECT_NE(r.warnings[2].reason.find("overlaps rule 'no-smtp'"), std::string::npos)
      << r.warnings[2].reason;
}

TEST(PolicyConfig, OverlappingSourcesWarn) {
  const ParseResult r = parse_policy_text(
      "policy:\n  groups:\n    - name: wide\n      sources: [10.0.0.0/8]\n"
      "    - name: narrow\n      sources: [10.1.0.0/16]\n",
      "f.yaml");
  ASSERT_TRUE(r.config.has_value());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].line, 5);
  EXPECT_NE(r.warnings[0].reason.find("longer prefix decides"), std::string::npos);
}

TEST(Prefix, ParseAndContain) {
  std::string why;
  auto p = parse_prefix("192.168.0.0/16", &why);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->contains(0xc0a80101));
  EXPECT_FALSE(p->contains(0xc0a90101));
  EXPECT_EQ(parse_prefix("1.2.3.4", &why)->len, 32);
  EXPECT_EQ(parse_prefix("0.0.0.0/0", &why)->len, 0);
  EXPECT_FALSE(parse_prefix("01.2.3.4", &why).has_value());
  EXPECT_FALSE(parse_prefix("1.2.3", &why).has_value());
  EXPECT_FALSE(parse_prefix("1.2.3.4/", &why).has_value());
  EXPECT_FALSE(parse_prefix("1.2.3.4.5", &why).has_value());
  EXPECT_FALSE(parse_prefix("10.0.0.0/08", &why).has_value());  // the grammar of every file
  EXPECT_TRUE((Prefix{0x0a000000, 8}).covers(Prefix{0x0a010000, 16}));
  EXPECT_FALSE((Prefix{0x0a010000, 16}).covers(Prefix{0x0a000000, 8}));
}

}  // namespace
}  // namespace eipgate::policy

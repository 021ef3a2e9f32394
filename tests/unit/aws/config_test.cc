// The `aws:` configuration section: a full example, defaults, and rejections with file:line.
#include "control/aws/config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cctype>

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;

constexpr const char* kFull = R"(# eipgate.yaml (dataplane sections omitted)
mode: one-armed
aws:
  region: us-east-1
  route_tables:
    ids: [rtb-0aa00000000000001, rtb-0aa00000000000002]
    tags:
      eipgate:az: use1-az1
    destination: 0.0.0.0/0
  service_address:
    mode: secondary-ip
    private_ip: 10.0.0.100
    allocation_id: eipalloc-0aa00000000000001
  endpoints:
    ec2: http://127.0.0.1:8080
    imds: http://127.0.0.1:8080/i-0aaaaaaaaaaaaaaa1
  retry:
    max_attempts: 6
    base_delay: 50ms
    max_delay: 2s
    deadline: 20s
  timeouts:
    connect: 1s
    request: 5s
  credentials:
    refresh_before: 10m
)";

TEST(AwsConfig, FullExample) {
  const auto r = parse_aws_config_text(kFull, "eipgate.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  const auto& c = *r.config;
  EXPECT_EQ(c.region, "us-east-1");
  EXPECT_EQ(c.route_tables.ids.size(), 2u);
  EXPECT_EQ(c.route_tables.tags.at("eipgate:az"), "use1-az1");
  EXPECT_EQ(c.route_tables.destination, "0.0.0.0/0");
  EXPECT_EQ(c.service_address.mode, ServiceAddressMode::SecondaryIp);
  EXPECT_EQ(c.service_address.private_ips, std::vector<std::string>{"10.0.0.100"});
  EXPECT_EQ(c.service_address.allocation_ids,
            std::vector<std::string>{"eipalloc-0aa00000000000001"});
  EXPECT_EQ(c.service_address.count(), 1u);
  EXPECT_EQ(c.endpoints.ec2, "http://127.0.0.1:8080");
  EXPECT_EQ(c.endpoints.imds, "http://127.0.0.1:8080/i-0aaaaaaaaaaaaaaa1");
  EXPECT_EQ(c.retry.max_attempts, 6);
  EXPECT_EQ(c.retry.base_delay, milliseconds(50));
  EXPECT_EQ(c.retry.max_delay, milliseconds(2000));
  EXPECT_EQ(c.retry.deadline, milliseconds(20000));
  EXPECT_EQ(c.timeouts.connect, milliseconds(1000));
  EXPECT_EQ(c.timeouts.request, milliseconds(5000));
  EXPECT_EQ(c.credentials_refresh_before, std::chrono::seconds(600));
}

TEST(AwsConfig, MinimalEipModeTakesDefaults) {
  const auto r = parse_aws_config_text(R"(aws:
  route_tables:
    tags: {eipgate:az: use1-az1}
  service_address:
    mode: eip
    allocation_id: eipalloc-0aa00000000000001
)",
                                       "min.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  EXPECT_TRUE(r.config->region.empty());  // from IMDS
  EXPECT_EQ(r.config->service_address.mode, ServiceAddressMode::Eip);
  EXPECT_TRUE(r.config->service_address.private_ips.empty());  // the ENI's primary IP
  EXPECT_EQ(r.config->service_address.count(), 1u);
  EXPECT_EQ(r.config->service_address.private_ip(0), "");
  EXPECT_TRUE(r.config->endpoints.ec2.empty());
  EXPECT_FALSE(r.config->endpoints.dual_stack);
  EXPECT_EQ(r.config->ip_family, IpFamily::Any);
  EXPECT_EQ(r.config->retry.max_attempts, RetryPolicy{}.max_attempts);
}

TEST(AwsConfig, Ipv6ManagementUsesTheDualStackEndpoint) {
  const auto r = parse_aws_config_text(R"(aws:
  route_tables:
    ids: [rtb-0aa00000000000001]
  service_address:
    mode: eip
    allocation_id: eipalloc-0aa00000000000001
  ip_family: ipv6
  endpoints:
    dual_stack: true
    imds: "http://[fd00:ec2::254]"
)",
                                       "v6.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  EXPECT_EQ(r.config->ip_family, IpFamily::V6);
  EXPECT_TRUE(r.config->endpoints.dual_stack);
  EXPECT_TRUE(r.config->endpoints.ec2.empty());
  EXPECT_EQ(r.config->endpoints.imds, "http://[fd00:ec2::254]");
}

TEST(AwsConfig, Ipv6WithAnExplicitEndpointNeedsNoDualStackFlag) {
  const auto r = parse_aws_config_text(R"(aws:
  route_tables:
    ids: [rtb-0aa00000000000001]
  service_address:
    mode: eip
    allocation_id: eipalloc-0aa00000000000001
  ip_family: ipv6
  endpoints:
    ec2: "http://[fd00:255::1]:8080"
)",
                                       "v6.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  EXPECT_EQ(r.config->endpoints.ec2, "http://[fd00:255::1]:8080");
  EXPECT_FALSE(r.config->endpoints.dual_stack);
}

TEST(AwsConfig, SeveralSecondaryIpsMoveTogether) {
  const auto r = parse_aws_config_text(R"(aws:
  route_tables:
    ids: [rtb-0aa00000000000001]
  service_address:
    mode: secondary-ip
    private_ips: [10.0.0.100, 10.0.0.101, 10.0.0.102]
)",
                                       "n.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  const auto& sa = r.config->service_address;
  EXPECT_EQ(sa.private_ips, (std::vector<std::string>{"10.0.0.100", "10.0.0.101", "10.0.0.102"}));
  EXPECT_TRUE(sa.allocation_ids.empty());
  EXPECT_EQ(sa.count(), 3u);
  EXPECT_EQ(sa.allocation_id(2), "");
}

TEST(AwsConfig, EipModePairsAllocationsWithPrivateIpsByIndex) {
  const auto r = parse_aws_config_text(R"(aws:
  route_tables:
    ids: [rtb-0aa00000000000001]
  service_address:
    mode: eip
    private_ips:
      - 10.0.0.100
      - 10.0.0.101
    allocation_ids:
      - eipalloc-0aa00000000000001
      - eipalloc-0bb00000000000002
)",
                                       "n.yaml");
  ASSERT_TRUE(r.config) << r.errors.front().to_string();
  const auto& sa = r.config->service_address;
  EXPECT_EQ(sa.count(), 2u);
  EXPECT_EQ(sa.private_ip(1), "10.0.0.101");
  EXPECT_EQ(sa.allocation_id(1), "eipalloc-0bb00000000000002");
}

TEST(AwsConfig, EightAddressesAreTheLimit) {
  std::string ips;
  for (int i = 0; i < 8; ++i)
    ips += std::string(i ? ", " : "") + "10.0.0." + std::to_string(100 + i);
  const std::string head =
      "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  service_address:\n"
      "    mode: secondary-ip\n    private_ips: [";
  const auto ok = parse_aws_config_text(head + ips + "]\n", "eight.yaml");
  ASSERT_TRUE(ok.config) << ok.errors.front().to_string();
  EXPECT_EQ(ok.config->service_address.count(), kMaxServiceAddresses);
  const auto nine = parse_aws_config_text(head + ips + ", 10.0.0.120]\n", "nine.yaml");
  ASSERT_FALSE(nine.config);
  ASSERT_EQ(nine.errors.size(), 1u);
  EXPECT_EQ(nine.errors[0].to_string(),
            "nine.yaml:6: aws.service_address.private_ips: 9 entries; at most 8 service "
            "addresses per pair");
}

TEST(AwsConfig, ParsesTheNodeDirectly) {
  const YAML::Node root = YAML::Load(kFull);
  const auto r = parse_aws_config(root["aws"], "eipgate.yaml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->region, "us-east-1");
}

struct Bad {
  const char* name;
  const char* yaml;
  int line;
  const char* reason_part;
};

class AwsConfigRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(AwsConfigRejects, WithFileLineAndReason) {
  const auto& b = GetParam();
  const auto r = parse_aws_config_text(b.yaml, "bad.yaml");
  ASSERT_FALSE(r.config) << b.name;
  ASSERT_FALSE(r.errors.empty());
  bool found = false;
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.file, "bad.yaml");
    if (e.line == b.line && e.reason.find(b.reason_part) != std::string::npos) found = true;
  }
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  EXPECT_TRUE(found) << b.name << ": expected line " << b.line << " '" << b.reason_part
                     << "', got:\n"
                     << all;
}

constexpr const char* kHead = "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n";
#define SECONDARY "  service_address:\n    mode: secondary-ip\n    private_ip: 10.0.0.100\n"

INSTANTIATE_TEST_SUITE_P(
    Cases, AwsConfigRejects,
    ::testing::Values(Bad{"unknown key with suggestion",
                          "aws:\n  regoin: us-east-1\n  route_tables:\n    ids: "
                          "[rtb-0aa00000000000001]\n" SECONDARY,
                          2, "unknown key 'regoin' (did you mean 'region'?)"},
                      Bad{"bad region",
                          "aws:\n  region: US_EAST\n  route_tables:\n    ids: "
                          "[rtb-0aa00000000000001]\n" SECONDARY,
                          2, "not an AWS region"},
                      Bad{"bad route table id",
                          "aws:\n  route_tables:\n    ids:\n      - rtb-0aa00000000000001\n      - "
                          "rtb-xyz\n" SECONDARY,
                          5, "'rtb-xyz' is not a route table id"},
                      Bad{"no ids or tags",
                          "aws:\n  route_tables:\n    destination: 0.0.0.0/0\n" SECONDARY, 2,
                          "needs 'ids' or 'tags'"},
                      Bad{"host bits",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n    "
                          "destination: 10.0.0.1/8\n" SECONDARY,
                          4, "host bits set"},
                      Bad{"bad cidr",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n    "
                          "destination: 0.0.0.0\n" SECONDARY,
                          4, "'0.0.0.0' has no prefix length"},
                      Bad{"missing service_address", kHead, 1, "missing 'service_address'"},
                      Bad{"bad mode",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: floating\n",
                          5, "'floating' is not 'secondary-ip' or 'eip'"},
                      Bad{"secondary-ip needs private_ip",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n",
                          5, "needs 'private_ips' (or 'private_ip')"},
                      Bad{"eip needs allocation_id",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n",
                          5, "needs 'allocation_ids' (or 'allocation_id')"},
                      Bad{"bad private ip",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ip: 10.0.0.256\n",
                          6, "not an IPv4 address"},
                      Bad{"bad allocation id",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n    allocation_id: eip-123\n",
                          6, "not an allocation id"},
                      Bad{"bad private ip in a list",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ips:\n"
                          "      - 10.0.0.100\n      - 10.0.0.300\n",
                          8, "private_ips: '10.0.0.300' is not an IPv4 address"},
                      Bad{"duplicate private ip",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ips:\n"
                          "      - 10.0.0.100\n      - 10.0.0.100\n",
                          8, "private_ips: 10.0.0.100 is listed twice"},
                      Bad{"duplicate allocation id",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n    private_ips: [10.0.0.1, "
                          "10.0.0.2]\n    allocation_ids:\n      - eipalloc-0aa00000000000001\n"
                          "      - eipalloc-0aa00000000000001\n",
                          9, "allocation_ids: eipalloc-0aa00000000000001 is listed twice"},
                      Bad{"empty private ip list",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ips: []\n",
                          6, "private_ips: expected a list of 1 to 8 entries"},
                      Bad{"private ip list not a list",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ips: 10.0.0.1\n",
                          6, "private_ips: expected a list of 1 to 8 entries"},
                      Bad{"both private ip forms",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ip: 10.0.0.1\n"
                          "    private_ips: [10.0.0.2]\n",
                          7, "give 'private_ip' or 'private_ips', not both (private_ip on line 6)"},
                      Bad{"both allocation id forms",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n    allocation_ids: "
                          "[eipalloc-0aa00000000000001]\n    allocation_id: "
                          "eipalloc-0aa00000000000001\n",
                          7, "give 'allocation_id' or 'allocation_ids', not both"},
                      Bad{"eip lists of different lengths",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n    private_ips: [10.0.0.1, "
                          "10.0.0.2]\n    allocation_ids: [eipalloc-0aa00000000000001]\n",
                          7, "allocation_ids: 1 allocation id(s) for 2 private_ips (paired"},
                      Bad{"secondary-ip checked eips of a different count",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: secondary-ip\n    private_ip: 10.0.0.1\n"
                          "    allocation_ids: [eipalloc-0aa00000000000001, "
                          "eipalloc-0aa00000000000002]\n",
                          7, "2 allocation id(s) for 1 private_ip"},
                      Bad{"several eips on the primary ip",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n  "
                          "service_address:\n    mode: eip\n    allocation_ids: "
                          "[eipalloc-0aa00000000000001, eipalloc-0aa00000000000002]\n",
                          6, "mode eip with 2 allocation_ids needs as many 'private_ips'"},
                      Bad{"bad endpoint",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  endpoints:\n    ec2: ftp://example\n",
                          8, "not an http(s) URL"},
                      Bad{"bad ip family",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  ip_family: inet6\n",
                          7, "'inet6' is not 'any', 'ipv4' or 'ipv6'"},
                      Bad{"ipv6 with the ipv4-only endpoint",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  ip_family: ipv6\n  endpoints:\n    dual_stack: false\n",
                          7, "ipv6 needs endpoints.dual_stack: true"},
                      Bad{"dual stack not a boolean",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  endpoints:\n    dual_stack: maybe\n",
                          8, "'maybe' is not a boolean"},
                      Bad{"duration without unit",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  retry:\n    base_delay: 100\n",
                          8, "'100' has no unit"},
                      Bad{"attempts out of range",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  retry:\n    max_attempts: 0\n",
                          8, "from 1 to 20"},
                      Bad{"base above max",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  retry:\n    base_delay: 10s\n    max_delay: 1s\n",
                          7, "base_delay is longer than max_delay"},
                      Bad{"duplicate key",
                          "aws:\n  route_tables:\n    ids: [rtb-0aa00000000000001]\n" SECONDARY
                          "  route_tables:\n    ids: [rtb-0aa00000000000002]\n",
                          7, "duplicate key 'route_tables' (first on line 2)"},
                      Bad{"section not a mapping", "aws: [1, 2]\n", 1, "expected a mapping"},
                      Bad{"empty section", "aws:\n", 1, "section is empty"},
                      Bad{"yaml syntax", "aws:\n  region: [\n", 3, ""},
                      Bad{"missing aws", "mode: one-armed\n", 0, "missing 'aws' section"}),
    [](const ::testing::TestParamInfo<Bad>& param_info) {
      std::string name = param_info.param.name;
      for (auto& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(AwsConfig, ReportsEveryErrorAtOnce) {
  const auto r = parse_aws_config_text(
      "aws:\n  region: nope\n  route_tables:\n    ids: [bad]\n  service_address:\n    mode: x\n",
      "f.yaml");
  ASSERT_FALSE(r.config);
  EXPECT_GE(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].to_string().substr(0, 9), "f.yaml:2:");
}

}  // namespace
}  // namespace eipgate::aws

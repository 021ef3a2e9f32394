// eipgate-control's view of the shared file (control/daemon/daemon_config.h): every section,
// admin: included, reports file:line: reason and "did you mean"; nothing throws.
#include "control/daemon/daemon_config.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using eipgate::control::DaemonConfig;
using eipgate::control::parse_daemon_config;

constexpr const char* kAwsHa = R"(aws:
  route_tables: {ids: [rtb-0aa00000000000001]}
  service_address: {mode: secondary-ip, private_ip: 10.0.0.100}
ha:
  priority: 200
  peers: [10.0.0.6]
  secret_file: /etc/eipgate/ha.key
)";

struct Result {
  bool ok;
  DaemonConfig config;
  std::string errors;
};

Result parse(const std::string& text) {
  Result r;
  r.ok = parse_daemon_config(text, "c.yaml", &r.config, &r.errors);
  return r;
}

TEST(DaemonConfig, AdminMissingMeansTheDefaultSocket) {
  const Result r = parse(kAwsHa);
  ASSERT_TRUE(r.ok) << r.errors;
  EXPECT_EQ(r.config.dataplane_admin_socket, "/run/eipgate/dataplane.sock");
  EXPECT_EQ(r.config.sync_socket, "/run/eipgate/sync.sock");
}

TEST(DaemonConfig, AdminSocketIsRead) {
  const Result r = parse(std::string(kAwsHa) + "admin:\n  socket: /run/x/dp.sock\n");
  ASSERT_TRUE(r.ok) << r.errors;
  EXPECT_EQ(r.config.dataplane_admin_socket, "/run/x/dp.sock");
  EXPECT_EQ(r.config.sync_socket, "/run/x/sync.sock");
}

TEST(DaemonConfig, EmptyAdminSectionMeansDefaults) {
  const Result r = parse(std::string(kAwsHa) + "admin:\n");
  ASSERT_TRUE(r.ok) << r.errors;
  EXPECT_EQ(r.config.dataplane_admin_socket, "/run/eipgate/dataplane.sock");
}

struct Bad {
  const char* name;
  std::string tail;  // appended after kAwsHa (lines 1-7)
  std::string expected;
};

class DaemonConfigRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(DaemonConfigRejects, WithFileLineAndReason) {
  const Result r = parse(std::string(kAwsHa) + GetParam().tail);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.errors.find(GetParam().expected), std::string::npos) << r.errors;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DaemonConfigRejects,
    ::testing::Values(
        Bad{"admin_misspelt_key", "admin: {sockt: /run/x.sock}\n",
            "c.yaml:8: admin: unknown key 'sockt' (did you mean 'socket'?)"},
        Bad{"admin_scalar", "admin: 5\n", "c.yaml:8: admin: expected a mapping, got a scalar"},
        Bad{"admin_list", "admin: [a]\n", "c.yaml:8: admin: expected a mapping, got a list"},
        Bad{"admin_relative", "admin:\n  socket: run/x.sock\n",
            "c.yaml:9: admin.socket: must be an absolute path"},
        Bad{"admin_socket_map", "admin:\n  socket: {a: 1}\n",
            "c.yaml:9: admin.socket: expected a path, got a mapping"},
        Bad{"admin_socket_empty", "admin:\n  socket:\n",
            "c.yaml:9: admin.socket: expected a path, got nothing"},
        Bad{"admin_too_long", "admin:\n  socket: /" + std::string(107, 'x') + "\n",
            "c.yaml:9: admin.socket: a unix socket path is at most 107 characters"},
        Bad{"admin_duplicate", "admin:\n  socket: /a\n  socket: /b\n",
            "c.yaml:10: admin: duplicate key 'socket' (first on line 9)"},
        Bad{"section_misspelt", "amdin:\n  socket: /a\n",
            "c.yaml:8: unknown key 'amdin' (did you mean 'admin'?)"},
        Bad{"section_duplicate", "ha: {}\n", "c.yaml:8: duplicate key 'ha' (first on line 4)"},
        Bad{"ha_boolean", "  preempt: maybe\n", "c.yaml:8: ha.preempt: 'maybe' is not a boolean"},
        Bad{"ha_misspelt", "  hearbeat_interval: 150ms\n",
            "c.yaml:8: ha: unknown key 'hearbeat_interval' (did you mean 'heartbeat_interval'?)"},
        Bad{"second_document", "---\nx: 1\n", "expected one YAML document, found 2"}),
    [](const ::testing::TestParamInfo<Bad>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(DaemonConfig, MissingSectionsHaveALine) {
  Result r = parse("admin:\n  socket: /a\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.errors.find("c.yaml:1: missing 'ha' section"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("c.yaml:1: missing 'aws' section"), std::string::npos) << r.errors;
  r = parse("aws:\nha:\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.errors.find("c.yaml:2: ha: the section is empty"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("c.yaml:1: aws: the section is empty"), std::string::npos) << r.errors;
}

TEST(DaemonConfig, NotAMappingOrNotYaml) {
  Result r = parse("- a\n- b\n");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.errors, "c.yaml:1: expected a mapping with aws: and ha: sections");
  r = parse("ha: [unclosed\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.errors.find("c.yaml:2: YAML syntax error"), std::string::npos) << r.errors;
  r = parse("");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.errors, "c.yaml: the configuration is empty");
  r = parse("# nothing\n");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.errors, "c.yaml: the configuration is empty");
}

}  // namespace

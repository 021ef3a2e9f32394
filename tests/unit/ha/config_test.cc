// The `ha:` section (accepted examples, rejections with file:line:reason) and the secret file's
// ownership and permission checks.
#include "control/ha/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace eipgate::ha {
namespace {

using namespace std::chrono_literals;

HaConfigResult parse(const std::string& text) {
  const YAML::Node root = YAML::Load(text);
  return parse_ha_config(root["ha"], "eipgate.yaml");
}

constexpr const char* kFull = R"(mode: one-armed
ha:
  priority: 150
  peers:
    - address: 10.0.0.6
      port: 7411
    - 10.0.1.6
  bind_address: 10.0.0.5
  port: 7410
  secret_file: /etc/eipgate/ha.key
  heartbeat_interval: 100ms
  miss_count: 5
  preempt: true
  preempt_delay: 1m
  hold_down: 15s
  takeover_timeout: 20s
  handover_timeout: 5s
  route_check_interval: 2s
  lease_interval: 3s
  sync:
    flush_interval: 5ms
    resync_retry: 3s
  probes:
    interval: 2s
    timeout: 1s
    fail_threshold: 4
    targets: [1.1.1.1:443, "checkip.amazonaws.com:80"]
)";

TEST(HaConfigTest, FullExample) {
  const auto r = parse(kFull);
  ASSERT_TRUE(r.config) << r.error->to_string();
  const HaConfig& c = *r.config;
  EXPECT_EQ(c.priority, 150);
  ASSERT_EQ(c.peers.size(), 2U);
  EXPECT_EQ(c.peers[0].address, 0x0a000006U);
  EXPECT_EQ(c.peers[0].port, 7411);
  EXPECT_EQ(c.peers[1].port, 7410);
  EXPECT_EQ(c.bind_address, 0x0a000005U);
  EXPECT_EQ(c.secret_file, "/etc/eipgate/ha.key");
  EXPECT_EQ(c.secret_file_line, 10);
  EXPECT_EQ(c.heartbeat_interval, 100ms);
  EXPECT_EQ(c.dead_interval, 500ms);
  EXPECT_EQ(c.startup_wait, 500ms);
  EXPECT_TRUE(c.preempt);
  EXPECT_EQ(c.preempt_delay, 60s);
  EXPECT_EQ(c.hold_down, 15s);
  EXPECT_EQ(c.lease_interval, 3s);
  EXPECT_EQ(c.sync_flush_interval, 5ms);
  EXPECT_EQ(c.resync_retry, 3s);
  EXPECT_EQ(c.probe_fail_threshold, 4U);
  ASSERT_EQ(c.probe_targets.size(), 2U);
  EXPECT_EQ(c.probe_targets[1].host, "checkip.amazonaws.com");
  EXPECT_EQ(c.probe_targets[1].port, 80);
  const FsmConfig f = to_fsm_config(c, 42);
  EXPECT_EQ(f.boot_id, 42U);
  EXPECT_EQ(f.dead_interval, 500ms);
  EXPECT_TRUE(f.preempt);
}

TEST(HaConfigTest, MinimalUsesDefaults) {
  const auto r = parse("ha:\n  priority: 1\n  peers: [10.0.0.6]\n  secret_file: /k\n");
  ASSERT_TRUE(r.config) << r.error->to_string();
  EXPECT_EQ(r.config->heartbeat_interval, 150ms);
  EXPECT_EQ(r.config->dead_interval, 600ms);
  EXPECT_FALSE(r.config->preempt);
  EXPECT_EQ(r.config->port, kDefaultHaPort);
  EXPECT_EQ(r.config->metrics_listen, "127.0.0.1:9410");  // loopback only unless configured
}

TEST(HaConfigTest, MetricsListenAddressOrOff) {
  const std::string head = "ha:\n  priority: 1\n  peers: [10.0.0.6]\n  secret_file: /k\n";
  const auto set = parse(head + "  metrics_listen: 0.0.0.0:9100\n");
  ASSERT_TRUE(set.config) << set.error->to_string();
  EXPECT_EQ(set.config->metrics_listen, "0.0.0.0:9100");
  for (const char* off : {"off", "\"\"", ""}) {
    SCOPED_TRACE(off);
    const auto r = parse(head + "  metrics_listen: " + off + "\n");
    ASSERT_TRUE(r.config) << r.error->to_string();
    EXPECT_TRUE(r.config->metrics_listen.empty());
  }
}

TEST(HaConfigTest, FallbackForRules) {
  const auto r = parse(R"(ha:
  priority: 1
  peers: [10.0.0.6]
  secret_file: /k
  fallback_for:
    - route_tables: [rtb-0aa00000000000001, rtb-0aa00000000000002]
      instances: [i-0aaaaaaaaaaaaaaa1, i-0aaaaaaaaaaaaaaa2]
    - route_tables: [rtb-0cc00000000000001]
      instances: [i-0ccccccccccccccc1]
      target: nat-0123456789abcdef0
      after: 10s
      check_interval: 2s
)");
  ASSERT_TRUE(r.config) << r.error->to_string();
  const auto& f = r.config->fallback_for;
  ASSERT_EQ(f.size(), 2U);
  EXPECT_EQ(f[0].route_tables.size(), 2U);
  EXPECT_EQ(f[0].instances.at(1), "i-0aaaaaaaaaaaaaaa2");
  EXPECT_TRUE(f[0].to_self());
  EXPECT_EQ(f[0].after, 3s);  // defaults
  EXPECT_EQ(f[0].check_interval, 1s);
  EXPECT_EQ(f[0].line, 6);
  EXPECT_FALSE(f[1].to_self());
  EXPECT_EQ(f[1].target, "nat-0123456789abcdef0");
  EXPECT_EQ(f[1].after, 10s);
  EXPECT_EQ(f[1].check_interval, 2s);
  EXPECT_TRUE(parse("ha:\n  priority: 1\n  peers: [10.0.0.6]\n  secret_file: /k\n")
                  .config->fallback_for.empty());
}

struct Rejection {
  std::string yaml;
  int line;
  const char* reason;
};

TEST(HaConfigTest, RejectionsNameFileLineAndReason) {
  const std::string head = "ha:\n  priority: 100\n  peers: [10.0.0.6]\n  secret_file: /k\n";
  const std::vector<Rejection> cases = {
      {"ha:\n", 0, "section is empty"},
      {"ha:\n  peers: [10.0.0.6]\n  secret_file: /k\n", 2, "missing required key 'priority'"},
      {"ha:\n  priority: 0\n  peers: [10.0.0.6]\n  secret_file: /k\n", 2, "out of range 1..254"},
      {"ha:\n  priority: high\n", 2, "not a number"},
      {"ha:\n  priority: 1\n  peers: []\n", 3, "at least one peer"},
      {"ha:\n  priority: 1\n  peers: [10.0.0.300]\n", 3, "not an IPv4 address"},
      {"ha:\n  priority: 1\n  peers:\n    - port: 7\n  secret_file: /k\n", 4,
       "missing required key 'address'"},
      {"ha:\n  priority: 1\n  peers: [10.0.0.6]\n  secret_file: relative.key\n", 4,
       "absolute path"},
      {(head + "  heartbeat_interval: 250ms\n"), 5, "out of range 100ms..200ms"},
      {(head + "  heartbeat_interval: 150\n"), 5, "unit"},
      {(head + "  dead_interval: 200ms\n"), 5, "less than two heartbeat intervals"},
      {(head + "  dead_interval: 1s\n  miss_count: 3\n"), 6, "not both"},
      {(head + "  miss_count: 1\n"), 5, "out of range 2..100"},
      {(head + "  preempt: maybe\n"), 5, "not a boolean"},
      {(head + "  hearbeat_interval: 150ms\n"), 5, "unknown key 'hearbeat_interval'"},
      {(head + "  priority: 5\n"), 5, "duplicate key 'priority'"},
      {(head + "  probes:\n    targets: [1.1.1.1]\n"), 6, "not host:port"},
      {(head + "  probes:\n    targets: [1.1.1.1:0]\n"), 6, "port must be 1..65535"},
      {(head + "  probes:\n    interval: 1s\n    timeout: 2s\n"), 6, "shorter than"},
      {(head + "  sync:\n    flush_interval: 1s\n"), 6, "out of range"},
      {"ha:\n  priority: 1\n  bind_address: 10.0.0.6\n  peers: [10.0.0.6]\n", 4, "own bind"},
      {(head + "  lease_interval: 100ms\n"), 5, "0 (no lease) or at least 500ms"},
      {(head + "  lease_interval: 2h\n"), 5, "out of range"},
      {(head + "  lease_intervall: 2s\n"), 5, "did you mean 'lease_interval'"},
      {(head + "  metrics_listen: 9410\n"), 5, "not ADDRESS:PORT"},
      {(head + "  metrics_listen: localhost:9410\n"), 5, "not an IPv4 address"},
      {(head + "  metrics_listen: 127.0.0.1:70000\n"), 5, "port must be 1..65535"},
      {(head + "  metrics_listen: [127.0.0.1:1]\n"), 5, "expected a single value"},
      {(head + "  fallback_for: {route_tables: [rtb-1]}\n"), 5, "expected a list of rules"},
      {(head + "  fallback_for:\n    - instances: [i-1]\n"), 6,
       "missing required key 'route_tables'"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n"), 6,
       "missing required key 'instances'"},
      {(head + "  fallback_for:\n    - route_tables: []\n      instances: [i-1]\n"), 6,
       "non-empty list"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [eni-1]\n"), 7,
       "'eni-1' is not an id (i-...)"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1, rtb-1]\n      instances: [i-1]\n"), 6,
       "listed twice"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [i-1]\n"
               "      target: igw-1\n"),
       8, "neither self nor a NAT Gateway id"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [i-1]\n"
               "      after: 3\n"),
       8, "unit"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [i-1]\n"
               "      check_interval: 10ms\n"),
       8, "out of range"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [i-1]\n"
               "      whatever: 1\n"),
       8, "unknown key 'whatever'"},
      {(head + "  fallback_for:\n    - route_tables: [rtb-1]\n      instances: [i-1]\n"
               "    - route_tables: [rtb-2, rtb-1]\n      instances: [i-2]\n"),
       8, "already in the rule at line 6"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const auto r = parse(c.yaml);
    ASSERT_TRUE(r.error);
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.error->file, "eipgate.yaml");
    EXPECT_EQ(r.error->line, c.line) << r.error->to_string();
    EXPECT_NE(r.error->reason.find(c.reason), std::string::npos) << r.error->to_string();
    // No line (0): "file: reason", as every loader's SchemaError prints it.
    const std::string where = c.line > 0 ? ":" + std::to_string(c.line) + ": " : ": ";
    EXPECT_EQ(r.error->to_string().rfind("eipgate.yaml" + where, 0), 0U);
  }
}

// Writes a temporary secret file with the given mode and owner.
class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eipgate-ha-secret-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  std::string dir_;
};

TEST_F(SecretFileTest, AcceptsRootOwned0600AndTrimsTheNewline) {
  ASSERT_EQ(::geteuid(), 0U) << "CI runs as root; the ownership checks need it";
  const std::string path = write("ok.key", "0123456789abcdef0123456789abcdef\n", 0600);
  Secret s;
  const auto error = load_secret_file(path, &s);
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(s.size(), 32U);
  EXPECT_EQ(s.bytes()[0], '0');
  const std::string ro = write("ro.key", "0123456789abcdef", 0400);
  EXPECT_FALSE(load_secret_file(ro, &s));
}

TEST_F(SecretFileTest, RejectsGroupOrOtherAccess) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0601}) {
    SCOPED_TRACE(mode);
    const std::string path = write("open.key", "0123456789abcdef0123456789abcdef", mode);
    Secret s;
    const auto error = load_secret_file(path, &s);
    ASSERT_TRUE(error);
    EXPECT_NE(error->find("chmod 600"), std::string::npos) << *error;
    EXPECT_NE(error->find(path), std::string::npos);
    EXPECT_EQ(error->find("0123456789abcdef"), std::string::npos) << "never echo the secret";
    EXPECT_EQ(s.size(), 0U);
  }
}

TEST_F(SecretFileTest, RejectsFilesNotOwnedByRoot) {
  const std::string path = write("nobody.key", "0123456789abcdef0123456789abcdef", 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  Secret s;
  const auto error = load_secret_file(path, &s);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("owned by uid 65534, must be owned by root"), std::string::npos) << *error;
}

TEST_F(SecretFileTest, RejectsShortMissingLinkedAndNonRegular) {
  Secret s;
  auto e = load_secret_file(write("short.key", "tooshort\n", 0600), &s);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("at least 16"), std::string::npos) << *e;
  e = load_secret_file(dir_ + "/missing.key", &s);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("cannot open"), std::string::npos) << *e;
  const std::string target = write("target.key", "0123456789abcdef0123", 0600);
  const std::string link = dir_ + "/link.key";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  e = load_secret_file(link, &s);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("symbolic link"), std::string::npos) << *e;
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  e = load_secret_file(dir_, &s);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("not a regular file"), std::string::npos) << *e;
  e = load_secret_file(write("long.key", std::string(kMaxSecretBytes + 1, 'x'), 0600), &s);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("longer than"), std::string::npos) << *e;
}

TEST_F(SecretFileTest, ErrorLocatedAtTheConfigLine) {
  const std::string path = write("cfg.key", "0123456789abcdef0123", 0644);
  const auto r = parse("ha:\n  priority: 1\n  peers: [10.0.0.6]\n  secret_file: " + path + "\n");
  ASSERT_TRUE(r.config);
  Secret s;
  const auto e = load_secret(*r.config, &s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->line, 4);
  EXPECT_EQ(e->to_string().rfind("eipgate.yaml:4: ha.secret_file: secret file " + path, 0), 0U)
      << e->to_string();
}

}  // namespace
}  // namespace eipgate::ha

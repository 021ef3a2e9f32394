// Tests for dataplane/config: the shipped examples parse to the expected values, every kind of
// mistake is rejected with the exact "file:line: reason", and parsing is free of side effects.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/config/dataplane_config.h"

#ifndef EIPGATE_CONFIG_DIR
#error "EIPGATE_CONFIG_DIR must name dataplane/config"
#endif

namespace eipgate::dataplane {
namespace {

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

// The smallest valid one-armed config; the bad cases below change one line of it, so the line
// numbers in their expected messages can be read off this listing.
constexpr const char* kMinimal =
    "mode: one-armed\n"                     // 1
    "ports:\n"                              // 2
    "  - name: data\n"                      // 3
    "    device: 0000:00:06.0\n"            // 4
    "interface:\n"                          // 5
    "  address: 10.0.0.5/24\n"              // 6
    "nat:\n"                                // 7
    "  inside_prefixes: [10.0.128.0/20]\n"  // 8
    "  outside_addresses: [10.0.0.100]\n";  // 9

// `base` with lines first..last (1-based, inclusive) replaced by `text` (several lines or none).
std::string edit(const char* base, int first, int last, const std::string& text) {
  std::istringstream in(base);
  std::string out;
  std::string l;
  for (int n = 1; std::getline(in, l); ++n) {
    if (n < first || n > last) {
      out += l + "\n";
    } else if (n == first) {
      out += text;
    }
  }
  return out;
}

std::string replace_line(int line, const std::string& text) {
  return edit(kMinimal, line, line, text);
}

std::string append(const std::string& text) { return std::string(kMinimal) + text; }

constexpr const char* kTwoArmed =
    "mode: two-armed\n"                            // 1
    "ports:\n"                                     // 2
    "  - name: outside\n"                          // 3
    "    device: net_af_packet1,iface=veth-out\n"  // 4
    "    af_packet_fragments: drop\n"              // 5
    "  - name: inside\n"                           // 6
    "    device: net_af_packet0,iface=veth-in\n"   // 7
    "    af_packet_fragments: drop\n"              // 8
    "interface:\n"                                 // 9
    "  address: 198.51.100.2/24\n"                 // 10
    "  inside_address: 10.1.0.1/24\n"              // 11
    "nat:\n"                                       // 12
    "  inside_prefixes: [10.1.0.0/16]\n"           // 13
    "  outside_addresses: [203.0.113.10]\n";       // 14

std::string two_armed_replace(int line, const std::string& text) {
  return edit(kTwoArmed, line, line, text);
}

DataplaneConfig parse_ok(const std::string& text) {
  ConfigResult r = parse_config(text, "test.yaml");
  EXPECT_FALSE(r.error.has_value()) << (r.error ? r.error->to_string() : "");
  EXPECT_TRUE(r.config.has_value());
  return r.config.value_or(DataplaneConfig{});
}

TEST(ConfigExamples, OneArmedExampleParsesToTheDocumentedValues) {
  const std::string path = std::string(EIPGATE_CONFIG_DIR) + "/eipgate.example.yaml";
  const ConfigResult r = load_config(path);
  ASSERT_FALSE(r.error.has_value()) << r.error->to_string();
  ASSERT_TRUE(r.config.has_value());
  const DataplaneConfig& c = *r.config;
  EXPECT_EQ(c.source_file, path);
  EXPECT_EQ(c.mode, ArmMode::OneArmed);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].name, "data");
  EXPECT_EQ(c.ports[0].device, "0000:00:06.0");
  EXPECT_EQ(c.ports[0].rx_queues, 1);  // one worker
  EXPECT_EQ(c.ports[0].tx_queues, 2);  // one worker + the main lcore
  EXPECT_EQ(c.ports[0].mtu, 1500);
  EXPECT_FALSE(c.ports[0].mac.has_value());
  EXPECT_EQ(c.interface_addr, ip(10, 0, 0, 5));
  EXPECT_EQ(c.interface_prefix_len, 24);
  EXPECT_EQ(c.inside_addr, 0u);
  EXPECT_EQ(c.next_hop.gateway, ip(10, 0, 0, 1));
  EXPECT_EQ(c.next_hop.inside_gateway, ip(10, 0, 0, 1));  // private subnets via the VPC router
  EXPECT_FALSE(c.next_hop.static_mac.has_value());
  EXPECT_EQ(c.ports[0].address, ip(10, 0, 0, 5));
  EXPECT_EQ(c.ports[0].prefix_len, 24);
  EXPECT_EQ(c.worker_lcores, (std::vector<uint16_t>{1}));
  EXPECT_EQ(c.main_lcore, 0);
  EXPECT_EQ(c.eal_extra, "--in-memory");
  EXPECT_TRUE(c.exception.enabled);
  EXPECT_EQ(c.exception.tap_name, "eipgate0");
  EXPECT_EQ(c.admin.socket_path, "/run/eipgate/dataplane.sock");
  EXPECT_EQ(c.logging.level, "info");
  EXPECT_TRUE(c.logging.json);
  EXPECT_TRUE(c.polling.adaptive);
  EXPECT_EQ(c.polling.idle_sleep_max_us, 1000u);
  EXPECT_EQ(c.polling.busy_spins, 1000u);

  const engine::EngineConfig& e = c.engine;
  ASSERT_EQ(e.inside_prefixes.size(), 2u);
  EXPECT_EQ(e.inside_prefixes[0].addr, ip(10, 0, 128, 0));
  EXPECT_EQ(e.inside_prefixes[0].len, 20);
  EXPECT_EQ(e.inside_prefixes[1].addr, ip(10, 0, 144, 0));
  EXPECT_EQ(e.inside_prefixes[1].len, 20);
  EXPECT_EQ(e.outside_addrs, (std::vector<uint32_t>{ip(10, 0, 0, 100)}));
  EXPECT_EQ(e.host_addrs, (std::vector<uint32_t>{ip(10, 0, 0, 5)}));
  EXPECT_EQ(e.icmp_source_addr, 0u);  // the engine's default: the first host address
  EXPECT_EQ(e.port_min, 1024);
  EXPECT_EQ(e.port_max, 65535);
  EXPECT_EQ(e.max_flows, 1u << 20);
  EXPECT_FALSE(e.udp_endpoint_independent);
  EXPECT_EQ(e.tcp_mss_clamp, 1460);
  EXPECT_TRUE(e.tcp_rst_unknown);
  EXPECT_EQ(e.timeouts.tcp_established_s, 350u);
  EXPECT_EQ(e.timeouts.tcp_transitory_s, 240u);
  EXPECT_EQ(e.timeouts.tcp_time_wait_s, 120u);
  EXPECT_EQ(e.timeouts.udp_s, 350u);
  EXPECT_EQ(e.timeouts.icmp_s, 60u);
  EXPECT_EQ(e.timeouts.fragment_ms, 2000u);
  // Worker-dependent fields stay at their defaults: the process fills them per worker.
  EXPECT_EQ(e.worker_id, 0);
  EXPECT_EQ(e.worker_count, 1);
  EXPECT_TRUE(e.rss.reta.empty());
  EXPECT_EQ(engine::validate(e), "");
}

TEST(ConfigExamples, TwoArmedExampleParsesToTheDocumentedValues) {
  const ConfigResult r =
      load_config(std::string(EIPGATE_CONFIG_DIR) + "/eipgate.two-armed.example.yaml");
  ASSERT_FALSE(r.error.has_value()) << r.error->to_string();
  const DataplaneConfig& c = *r.config;
  EXPECT_EQ(c.mode, ArmMode::TwoArmed);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "inside");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=veth-in,qpairs=2");
  EXPECT_EQ(c.ports[0].rx_queues, 2);  // defaults from two workers
  EXPECT_EQ(c.ports[0].tx_queues, 3);
  EXPECT_EQ(c.ports[0].mtu, 1500);
  EXPECT_FALSE(c.ports[0].mac.has_value());
  EXPECT_EQ(c.ports[1].name, "outside");
  EXPECT_EQ(c.ports[1].device, "net_af_xdp0,iface=veth-out,start_queue=0,queue_count=2");
  EXPECT_EQ(c.ports[1].rx_queues, 2);
  EXPECT_EQ(c.ports[1].tx_queues, 3);
  EXPECT_EQ(c.ports[1].mac, "02:00:00:00:00:02");
  EXPECT_EQ(c.interface_addr, ip(198, 51, 100, 2));
  EXPECT_EQ(c.interface_prefix_len, 24);
  EXPECT_EQ(c.inside_addr, ip(10, 1, 0, 1));
  EXPECT_EQ(c.inside_prefix_len, 24);
  EXPECT_EQ(c.next_hop.gateway, ip(198, 51, 100, 1));
  EXPECT_EQ(c.next_hop.static_mac, "02:00:00:00:01:01");
  EXPECT_EQ(c.next_hop.inside_gateway, 0u);  // inside hosts on-link
  EXPECT_EQ(c.ports[0].address, ip(10, 1, 0, 1));
  EXPECT_EQ(c.ports[0].prefix_len, 24);
  EXPECT_EQ(c.ports[1].address, ip(198, 51, 100, 2));
  EXPECT_EQ(c.ports[1].prefix_len, 24);
  EXPECT_EQ(c.worker_lcores, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(c.eal_extra, "--no-huge -m 512 --in-memory");
  EXPECT_EQ(c.exception.tap_name, "eipgate-tap");
  EXPECT_EQ(c.admin.socket_path, "/run/eipgate/dataplane-test.sock");
  EXPECT_EQ(c.logging.level, "debug");
  EXPECT_FALSE(c.logging.json);
  EXPECT_FALSE(c.polling.adaptive);
  EXPECT_EQ(c.polling.idle_sleep_max_us, 500u);
  EXPECT_EQ(c.polling.busy_spins, 0u);

  const engine::EngineConfig& e = c.engine;
  ASSERT_EQ(e.inside_prefixes.size(), 1u);
  EXPECT_EQ(e.inside_prefixes[0].addr, ip(10, 1, 0, 0));
  EXPECT_EQ(e.inside_prefixes[0].len, 16);
  EXPECT_EQ(e.outside_addrs, (std::vector<uint32_t>{ip(203, 0, 113, 10), ip(203, 0, 113, 11)}));
  EXPECT_EQ(e.host_addrs,
            (std::vector<uint32_t>{ip(198, 51, 100, 2), ip(10, 1, 0, 1), ip(198, 51, 100, 3)}));
  EXPECT_EQ(e.icmp_source_addr, ip(10, 1, 0, 1));
  EXPECT_EQ(e.max_flows, 65536u);
  EXPECT_TRUE(e.udp_endpoint_independent);
  EXPECT_EQ(e.tcp_mss_clamp, 0);
  EXPECT_EQ(e.timeouts.tcp_established_s, 7200u);
  EXPECT_EQ(e.timeouts.tcp_transitory_s, 240u);
  EXPECT_EQ(e.timeouts.tcp_time_wait_s, 60u);
  EXPECT_EQ(e.timeouts.udp_s, 300u);
  EXPECT_EQ(e.timeouts.icmp_s, 30u);
  EXPECT_EQ(e.timeouts.fragment_ms, 500u);
}

TEST(ConfigDefaults, MinimalConfigTakesNatGatewayDefaults) {
  const DataplaneConfig c = parse_ok(kMinimal);
  EXPECT_EQ(c.next_hop.gateway, ip(10, 0, 0, 1));  // AWS: the subnet's first host address
  EXPECT_EQ(c.worker_lcores, (std::vector<uint16_t>{1}));
  EXPECT_EQ(c.main_lcore, 0);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].mtu, 1500);
  EXPECT_EQ(c.engine.port_min, 1024);
  EXPECT_EQ(c.engine.port_max, 65535);
  EXPECT_EQ(c.engine.timeouts.tcp_established_s, 350u);
  EXPECT_EQ(c.engine.timeouts.udp_s, 350u);
  EXPECT_FALSE(c.engine.udp_endpoint_independent);
  EXPECT_TRUE(c.engine.tcp_rst_unknown);
  EXPECT_TRUE(c.exception.enabled);
  EXPECT_EQ(c.logging.level, "info");
}

TEST(ConfigDefaults, EipgateControlsSectionsAreLeftAlone) {
  // The same file carries eipgate-control's sections; that process validates them.
  const DataplaneConfig c = parse_ok(std::string(kMinimal) +
                                     "cloudwatch: {enabled: false}\n"
                                     "cloudwatch_logs: {enabled: true, log_group: /eipgate/tx}\n");
  EXPECT_EQ(c.logging.level, "info");
}

TEST(ConfigDefaults, TwoArmedPortsComeOutInsideThenOutside) {
  const DataplaneConfig c = parse_ok(kTwoArmed);  // written outside first
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "inside");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=veth-in");
  EXPECT_EQ(c.ports[1].name, "outside");
  EXPECT_EQ(c.engine.icmp_source_addr, ip(10, 1, 0, 1));
}

TEST(ConfigDefaults, InsideGatewayIsConfigurable) {
  EXPECT_EQ(parse_ok(append("next_hop:\n  inside_gateway: 10.0.0.2\n")).next_hop.inside_gateway,
            ip(10, 0, 0, 2));
  EXPECT_EQ(parse_ok(kTwoArmed + std::string("next_hop:\n  inside_gateway: 10.1.0.254\n"))
                .next_hop.inside_gateway,
            ip(10, 1, 0, 254));
}

TEST(ConfigDefaults, EmptySectionsMeanDefaults) {
  const DataplaneConfig c = parse_ok(append("logging:\npolling:\ntimeouts:\n"));
  EXPECT_EQ(c.logging.level, "info");
  EXPECT_TRUE(c.polling.adaptive);
  EXPECT_EQ(c.engine.timeouts.icmp_s, 60u);
}

TEST(ConfigDefaults, TheFastPathIsOnUnlessTurnedOff) {
  EXPECT_TRUE(parse_ok(kMinimal).fastpath.enabled);
  EXPECT_TRUE(parse_ok(append("fastpath:\n")).fastpath.enabled);
  EXPECT_FALSE(parse_ok(append("fastpath:\n  enabled: false\n")).fastpath.enabled);
  const DataplaneConfig running = parse_ok(kMinimal);
  EXPECT_EQ(restart_required(running, parse_ok(append("fastpath:\n  enabled: false\n"))),
            "fastpath.enabled");
}

TEST(ConfigDefaults, TheTranslationLogIsOffUnlessTurnedOn) {
  const DataplaneConfig off = parse_ok(kMinimal);
  EXPECT_FALSE(off.translation_log.enabled);
  EXPECT_EQ(off.translation_log.path, "/var/log/eipgate/translations.jsonl");
  const DataplaneConfig on = parse_ok(
      append("translation_log:\n  enabled: true\n  path: /var/tmp/t.jsonl\n  max_bytes: 64M\n"
             "  keep: 3\n"));
  EXPECT_TRUE(on.translation_log.enabled);
  EXPECT_EQ(on.translation_log.path, "/var/tmp/t.jsonl");
  EXPECT_EQ(on.translation_log.max_bytes, 64u << 20);
  EXPECT_EQ(on.translation_log.keep, 3u);
  EXPECT_EQ(restart_required(off, on), "translation_log");
}

TEST(ConfigDefaults, PciAddressWithoutDomainIsAccepted) {
  const DataplaneConfig c = parse_ok(replace_line(4, "    device: \"00:06.0\"\n"));
  EXPECT_EQ(c.ports[0].device, "00:06.0");
}

struct DurationCase {
  const char* text;
  uint32_t seconds;
};

void PrintTo(const DurationCase& d, std::ostream* os) { *os << d.text; }

class ConfigDuration : public ::testing::TestWithParam<DurationCase> {};

TEST_P(ConfigDuration, ParsesToSeconds) {
  const DataplaneConfig c =
      parse_ok(append(std::string("timeouts:\n  udp: ") + GetParam().text + "\n"));
  EXPECT_EQ(c.engine.timeouts.udp_s, GetParam().seconds);
}

INSTANTIATE_TEST_SUITE_P(Units, ConfigDuration,
                         ::testing::Values(DurationCase{"1s", 1}, DurationCase{"350s", 350},
                                           DurationCase{"5m", 300}, DurationCase{"1h", 3600},
                                           DurationCase{"1h30m", 5400}, DurationCase{"2m30s", 150},
                                           DurationCase{"3000ms", 3},
                                           DurationCase{"168h", 604800}));

TEST(ConfigDuration, FragmentTimeoutKeepsMilliseconds) {
  EXPECT_EQ(parse_ok(append("timeouts:\n  fragment: 250ms\n")).engine.timeouts.fragment_ms, 250u);
  EXPECT_EQ(parse_ok(append("timeouts:\n  fragment: 1s500ms\n")).engine.timeouts.fragment_ms,
            1500u);
}

struct SizeCase {
  const char* text;
  uint32_t flows;
};

void PrintTo(const SizeCase& s, std::ostream* os) { *os << s.text; }

class ConfigMaxFlows : public ::testing::TestWithParam<SizeCase> {};

TEST_P(ConfigMaxFlows, SuffixesAreBinary) {
  const DataplaneConfig c = parse_ok(append(std::string("  max_flows: ") + GetParam().text + "\n"));
  EXPECT_EQ(c.engine.max_flows, GetParam().flows);
}

INSTANTIATE_TEST_SUITE_P(Suffixes, ConfigMaxFlows,
                         ::testing::Values(SizeCase{"65536", 65536}, SizeCase{"1", 1},
                                           SizeCase{"64K", 65536}, SizeCase{"64k", 65536},
                                           SizeCase{"1M", 1u << 20}, SizeCase{"16M", 1u << 24},
                                           SizeCase{"16777216", 1u << 24}));

struct BadCase {
  const char* name;
  std::string yaml;
  std::string expected;  // the exact ConfigError::to_string()
};

void PrintTo(const BadCase& b, std::ostream* os) { *os << b.name; }

class ConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigRejects, WithFileLineAndReason) {
  const ConfigResult r = parse_config(GetParam().yaml, "bad.yaml");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_TRUE(r.error.has_value()) << "accepted:\n" << GetParam().yaml;
  EXPECT_EQ(r.error->to_string(), GetParam().expected) << GetParam().yaml;
}

const std::vector<BadCase> kBadCases = {
    // YAML itself
    {"fastpath_typo", append("fastpath:\n  enable: true\n"),
     "bad.yaml:11: fastpath: unknown key 'enable' (did you mean 'enabled'?)"},
    {"fastpath_not_boolean", append("fastpath:\n  enabled: sometimes\n"),
     "bad.yaml:11: fastpath.enabled: 'sometimes' is not a boolean (true or false)"},
    {"translation_log_typo", append("translation_log:\n  enable: true\n"),
     "bad.yaml:11: translation_log: unknown key 'enable' (did you mean 'enabled'?)"},
    {"translation_log_relative_path", append("translation_log:\n  path: logs/t.jsonl\n"),
     "bad.yaml:11: translation_log.path: 'logs/t.jsonl' is not an absolute path"},
    {"translation_log_tiny_max_bytes", append("translation_log:\n  max_bytes: 100\n"),
     "bad.yaml:11: translation_log.max_bytes: '100' is below the minimum 4096"},
    {"translation_log_keep_negative", append("translation_log:\n  keep: -1\n"),
     "bad.yaml:11: translation_log.keep: '-1' is not an integer in 0..1000"},
    {"syntax_unclosed_flow", replace_line(8, "  inside_prefixes: [10.0.128.0/20\n"),
     "bad.yaml:9: YAML syntax error: end of sequence flow not found"},
    {"syntax_bad_indent", replace_line(6, "  address: 10.0.0.5/24\n address2: x\n"),
     "bad.yaml:7: YAML syntax error: end of map not found"},
    {"empty_file", "", "bad.yaml: the configuration is empty"},
    {"comments_only", "# nothing here\n", "bad.yaml: the configuration is empty"},
    {"two_documents", append("---\nmode: one-armed\n"),
     "bad.yaml:11: expected one YAML document, found 2"},
    {"root_not_a_mapping", "- mode\n", "bad.yaml:1: expected a mapping, got a list"},
    // keys
    {"unknown_top_level_key", append("worker:\n  lcores: [1]\n"),
     "bad.yaml:10: unknown key 'worker' (did you mean 'workers'?)"},
    {"unknown_nested_key", append("  max_flow: 1M\n"),
     "bad.yaml:10: nat: unknown key 'max_flow' (did you mean 'max_flows'?)"},
    {"unknown_key_no_suggestion", append("colour: blue\n"), "bad.yaml:10: unknown key 'colour'"},
    {"unknown_port_key", replace_line(4, "    device: 0000:00:06.0\n    queues: 2\n"),
     "bad.yaml:5: ports[0]: unknown key 'queues'"},
    {"duplicate_key", append("  outside_addresses: [10.0.0.101]\n"),
     "bad.yaml:10: nat: duplicate key 'outside_addresses' (first on line 9)"},
    {"missing_interface", edit(kMinimal, 5, 6, ""), "bad.yaml:1: missing required key 'interface'"},
    {"missing_mode", replace_line(1, "# no mode\n"), "bad.yaml:2: missing required key 'mode'"},
    {"missing_nat_key", replace_line(9, ""),
     "bad.yaml:7: nat: missing required key 'outside_addresses'"},
    {"missing_port_device", replace_line(4, ""),
     "bad.yaml:3: ports[0]: missing required key 'device'"},
    {"missing_value", replace_line(4, "    device: 0000:00:06.0\n    mtu:\n"),
     "bad.yaml:5: ports[0].mtu: missing value"},
    // types
    {"ports_not_a_list", edit(kMinimal, 2, 4, "ports: data\n"),
     "bad.yaml:2: ports: expected a list, got a scalar"},
    {"nat_not_a_mapping", edit(kMinimal, 7, 9, "nat: [10.0.0.0/8]\n"),
     "bad.yaml:7: nat: expected a mapping, got a list"},
    {"mtu_not_integer", replace_line(4, "    device: 0000:00:06.0\n    mtu: big\n"),
     "bad.yaml:5: ports[0].mtu: 'big' is not an integer in 68..2026"},
    {"mtu_out_of_range", replace_line(4, "    device: 0000:00:06.0\n    mtu: 9001\n"),
     "bad.yaml:5: ports[0].mtu: '9001' is not an integer in 68..2026"},
    {"bool_not_bool", append("  tcp_rst_unknown: maybe\n"),
     "bad.yaml:10: nat.tcp_rst_unknown: 'maybe' is not a boolean (true or false)"},
    {"prefix_list_given_mapping", replace_line(8, "  inside_prefixes: {a: 1}\n"),
     "bad.yaml:8: nat.inside_prefixes: expected a list, got a mapping"},
    // addresses and prefixes
    {"prefix_len_33", replace_line(8, "  inside_prefixes: [10.0.0.0/33]\n"),
     "bad.yaml:8: nat.inside_prefixes[0]: '10.0.0.0/33': prefix length must be 0..32"},
    {"prefix_host_bits",
     replace_line(8, "  inside_prefixes:\n    - 10.0.128.0/20\n    - 10.1.2.3/16\n"),
     "bad.yaml:10: nat.inside_prefixes[1]: '10.1.2.3/16' has host bits set (the network would "
     "be 10.1.0.0/16)"},
    {"prefix_without_length", replace_line(8, "  inside_prefixes: [10.0.128.0]\n"),
     "bad.yaml:8: nat.inside_prefixes[0]: '10.0.128.0' has no prefix length (write it as "
     "address/length)"},
    {"prefix_duplicate", replace_line(8, "  inside_prefixes: [10.0.128.0/20, 10.0.128.0/20]\n"),
     "bad.yaml:8: nat.inside_prefixes[1]: duplicate prefix 10.0.128.0/20"},
    {"bad_address_octet", replace_line(9, "  outside_addresses: [10.0.0.256]\n"),
     "bad.yaml:9: nat.outside_addresses[0]: '10.0.0.256' is not an IPv4 address"},
    {"bad_address_leading_zero", replace_line(9, "  outside_addresses: [10.0.0.010]\n"),
     "bad.yaml:9: nat.outside_addresses[0]: '10.0.0.010' is not an IPv4 address"},
    {"outside_in_inside_prefix", replace_line(9, "  outside_addresses: [10.0.130.1]\n"),
     "bad.yaml:9: nat.outside_addresses[0]: 10.0.130.1 lies in the inside prefix 10.0.128.0/20"},
    {"outside_is_elastic_ip", replace_line(9, "  outside_addresses: [52.1.2.3]\n"),
     "bad.yaml:9: nat.outside_addresses[0]: 52.1.2.3 is not in the interface subnet 10.0.0.0/24 "
     "(use the private address the Elastic IP is associated with)"},
    {"outside_duplicate", replace_line(9, "  outside_addresses: [10.0.0.100, 10.0.0.100]\n"),
     "bad.yaml:9: nat.outside_addresses[1]: duplicate outside address 10.0.0.100"},
    {"outside_is_host", replace_line(9, "  outside_addresses: [10.0.0.5]\n"),
     "bad.yaml:9: nat.outside_addresses[0]: 10.0.0.5 is a host address (the instance's own), not "
     "a NAT address"},
    {"outside_empty", replace_line(9, "  outside_addresses: []\n"),
     "bad.yaml:9: nat.outside_addresses: at least one outside address is required"},
    {"interface_in_inside_prefix", replace_line(8, "  inside_prefixes: [10.0.0.0/16]\n"),
     "bad.yaml:8: nat.inside_prefixes[0]: 10.0.0.0/16 contains the interface address 10.0.0.5 "
     "(list the private subnets, not the NAT's own subnet)"},
    {"interface_network_address", replace_line(6, "  address: 10.0.0.0/24\n"),
     "bad.yaml:6: interface.address: '10.0.0.0/24' is the subnet's network or broadcast address"},
    {"interface_inside_address_one_armed",
     replace_line(6, "  address: 10.0.0.5/24\n  inside_address: 10.1.0.1/24\n"),
     "bad.yaml:7: interface.inside_address: only used in mode two-armed (one-armed has a single "
     "address)"},
    {"gateway_off_subnet", append("next_hop:\n  gateway: 10.0.1.1\n"),
     "bad.yaml:11: next_hop.gateway: 10.0.1.1 is not in the interface subnet 10.0.0.0/24"},
    {"gateway_is_interface", append("next_hop:\n  gateway: 10.0.0.5\n"),
     "bad.yaml:11: next_hop.gateway: 10.0.0.5 is the interface's own address"},
    {"inside_gateway_off_subnet",
     kTwoArmed + std::string("next_hop:\n  inside_gateway: 10.2.0.1\n"),
     "bad.yaml:16: next_hop.inside_gateway: 10.2.0.1 is not in the inside subnet 10.1.0.0/24"},
    {"bad_next_hop_mac", append("next_hop:\n  mac: 02:00:00:00:00\n"),
     "bad.yaml:11: next_hop.mac: '02:00:00:00:00' is not a MAC address (aa:bb:cc:dd:ee:ff)"},
    {"multicast_mac", replace_line(4, "    device: 0000:00:06.0\n    mac: 01:00:5e:00:00:01\n"),
     "bad.yaml:5: ports[0].mac: '01:00:5e:00:00:01' is a multicast MAC"},
    // ports and modes
    {"port_range_above_65535", append("  port_range: 70000-80000\n"),
     "bad.yaml:10: nat.port_range: '70000-80000': ports must be in 1..65535"},
    {"port_range_reversed", append("  port_range: 2000-1000\n"),
     "bad.yaml:10: nat.port_range: '2000-1000': the first port is above the last"},
    {"port_range_not_a_range", append("  port_range: 1024\n"),
     "bad.yaml:10: nat.port_range: '1024' is not a port range (first-last, e.g. 1024-65535)"},
    {"port_range_zero", append("  port_range: 0-100\n"),
     "bad.yaml:10: nat.port_range: '0-100': ports must be in 1..65535"},
    {"port_range_smaller_than_workers",
     append("  port_range: 2000-2001\nworkers:\n  lcores: [1, 2, 3]\n"),
     "bad.yaml:10: nat.port_range: '2000-2001' has fewer ports than there are workers (3)"},
    {"mode_unknown", replace_line(1, "mode: three-armed\n"),
     "bad.yaml:1: mode: 'three-armed' is not a mode (one-armed or two-armed)"},
    {"one_armed_port_named_inside", replace_line(3, "  - name: inside\n"),
     "bad.yaml:3: ports[0].name: 'inside' is not a port of mode one-armed (expected 'data')"},
    {"one_armed_two_ports",
     replace_line(4, "    device: 0000:00:06.0\n  - name: data\n    device: 0000:00:07.0\n"),
     "bad.yaml:5: ports[1].name: duplicate port name 'data'"},
    {"one_armed_no_ports", edit(kMinimal, 2, 4, "ports: []\n"),
     "bad.yaml:2: ports: mode one-armed needs a port named 'data'"},
    {"two_armed_duplicate_name", two_armed_replace(6, "  - name: outside\n"),
     "bad.yaml:6: ports[1].name: duplicate port name 'outside'"},
    {"two_armed_missing_outside", edit(kTwoArmed, 3, 5, ""),
     "bad.yaml:2: ports: mode two-armed needs a port named 'outside'"},
    {"two_armed_named_data", two_armed_replace(3, "  - name: data\n"),
     "bad.yaml:3: ports[0].name: 'data' is not a port of mode two-armed (expected 'inside' or "
     "'outside')"},
    {"two_armed_missing_inside_address", two_armed_replace(11, ""),
     "bad.yaml:9: interface: missing required key 'inside_address' (mode two-armed)"},
    {"two_armed_inside_overlaps_outside",
     two_armed_replace(11, "  inside_address: 198.51.100.9/24\n"),
     "bad.yaml:11: interface.inside_address: 198.51.100.9/24 overlaps the outside subnet "
     "198.51.100.0/24"},
    {"bad_device", replace_line(4, "    device: eth1\n"),
     "bad.yaml:4: ports[0].device: 'eth1' is neither a PCI address (0000:00:06.0) nor a vdev "
     "(net_af_packet0,iface=eth1)"},
    {"bad_vdev_args", replace_line(4, "    device: net_af_xdp0,iface\n"),
     "bad.yaml:4: ports[0].device: 'net_af_xdp0,iface' is neither a PCI address (0000:00:06.0) "
     "nor a vdev (net_af_packet0,iface=eth1)"},
    {"same_vdev_twice", two_armed_replace(4, "    device: net_af_packet0,iface=veth-out\n"),
     "bad.yaml:7: ports[1].device: 'net_af_packet0' is used twice"},
    {"af_packet_without_the_fragment_acknowledgement", two_armed_replace(8, ""),
     "bad.yaml:7: ports[1].device: port 'inside' uses af_packet, which cannot pass IP fragments: "
     "DPDK 22.11's PMD has the kernel reassemble them (PACKET_FANOUT_FLAG_DEFRAG) and a datagram "
     "larger than one frame is dropped. Add 'af_packet_fragments: drop' to this port to run with "
     "that limit, or use af_xdp"},
    {"af_packet_fragments_other_value", two_armed_replace(8, "    af_packet_fragments: pass\n"),
     "bad.yaml:8: ports[1].af_packet_fragments: the only value is 'drop': af_packet cannot pass IP "
     "fragments (use af_xdp)"},
    {"af_packet_fragments_on_a_pci_port",
     replace_line(4, "    device: 0000:00:06.0\n    af_packet_fragments: drop\n"),
     "bad.yaml:5: ports[0].af_packet_fragments: af_packet_fragments is only for af_packet devices"},
    {"fewer_rx_queues_than_workers",
     replace_line(4, "    device: 0000:00:06.0\n    rx_queues: 1\n") +
         "workers:\n  lcores: [1, 2]\n",
     "bad.yaml:5: ports[0].rx_queues: fewer Rx queues than workers (2): each worker polls its own "
     "queue"},
    // durations and sizes
    {"duration_without_unit", append("timeouts:\n  udp: 350\n"),
     "bad.yaml:11: timeouts.udp: '350' has no unit (use ms, s, m or h, e.g. 350s)"},
    {"duration_unknown_unit", append("timeouts:\n  udp: 2d\n"),
     "bad.yaml:11: timeouts.udp: '2d': unknown unit 'd' (use ms, s, m or h)"},
    {"duration_not_whole_seconds", append("timeouts:\n  tcp_established: 1500ms\n"),
     "bad.yaml:11: timeouts.tcp_established: '1500ms' is not a whole number of seconds"},
    {"duration_zero", append("timeouts:\n  icmp: 0s\n"),
     "bad.yaml:11: timeouts.icmp: must be longer than 0s"},
    {"duration_above_a_week", append("timeouts:\n  udp: 169h\n"),
     "bad.yaml:11: timeouts.udp: '169h' is above 7 days"},
    {"duration_garbage", append("timeouts:\n  udp: s350\n"),
     "bad.yaml:11: timeouts.udp: 's350' is not a duration (e.g. 350s, 5m, 1h, 500ms)"},
    {"max_flows_too_big", append("  max_flows: 32M\n"),
     "bad.yaml:10: nat.max_flows: '32M' is not a count (e.g. 65536, 64K, 1M) up to 16777216"},
    {"max_flows_zero", append("  max_flows: 0\n"),
     "bad.yaml:10: nat.max_flows: '0' is below the minimum 1"},
    {"mss_clamp_too_small", append("  tcp_mss_clamp: 500\n"),
     "bad.yaml:10: nat.tcp_mss_clamp: must be 0 (off) or at least 536 (RFC 879's minimum MSS)"},
    // workers and the rest
    {"worker_is_main_lcore", append("workers:\n  lcores: [0, 1]\n"),
     "bad.yaml:11: workers.lcores[0]: lcore 0 is the main lcore"},
    {"worker_duplicate", append("workers:\n  lcores: [1, 2, 1]\n"),
     "bad.yaml:11: workers.lcores[2]: duplicate lcore 1"},
    {"workers_empty", append("workers:\n  lcores: []\n"),
     "bad.yaml:11: workers.lcores: at least one worker lcore is required"},
    {"tap_name_too_long", append("exception_path:\n  tap_name: a-very-long-tap-name\n"),
     "bad.yaml:11: exception_path.tap_name: 'a-very-long-tap-name' is not an interface name "
     "(1..15 characters, no '/', ':' or spaces)"},
    {"admin_socket_relative", append("admin:\n  socket: run/x.sock\n"),
     "bad.yaml:11: admin.socket: 'run/x.sock' is not an absolute path"},
    {"log_level_unknown", append("logging:\n  level: verbose\n"),
     "bad.yaml:11: logging.level: 'verbose' is not a log level (trace, debug, info, warn, error, "
     "critical, off)"},
    {"polling_sleep_zero", append("polling:\n  idle_sleep_max_us: 0\n"),
     "bad.yaml:11: polling.idle_sleep_max_us: '0' is not an integer in 1..1000000"},
};

INSTANTIATE_TEST_SUITE_P(Table, ConfigRejects, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(ConfigRejects, UnknownKeyAnywhereNamesItsOwnLine) {
  // Deep in the document, after valid sections: the line is the key's, not the section's.
  const std::string text = append(
      "timeouts:\n"             // 10
      "  udp: 350s\n"           // 11
      "  icmp: 60s\n"           // 12
      "  tcp_establihed: 1h\n"  // 13
  );
  const ConfigResult r = parse_config(text, "typo.yaml");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->file, "typo.yaml");
  EXPECT_EQ(r.error->line, 13);
  EXPECT_EQ(r.error->reason,
            "timeouts: unknown key 'tcp_establihed' (did you mean 'tcp_established'?)");
}

TEST(ConfigProbe, SourceDefaultsToTheAwsReservedPlusThreeAddress) {
  EXPECT_EQ(parse_ok(kMinimal).probe_source, ip(10, 0, 128, 3));
  EXPECT_EQ(parse_ok(append("probe:\n  source: 10.0.130.7\n")).probe_source, ip(10, 0, 130, 7));
}

TEST(ConfigProbe, SourceOutsideTheInsidePrefixesIsRejectedAtItsLine) {
  ConfigResult r = parse_config(append("probe:\n  source: 192.0.2.9\n"), "p.yaml");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->line, 11);
  EXPECT_NE(r.error->reason.find("nat.inside_prefixes"), std::string::npos) << r.error->reason;
  r = parse_config(append("probe:\n  source: nope\n"), "p.yaml");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->line, 11);
}

TEST(ConfigReload, RejectedConfigLeavesTheAcceptedOneIntact) {
  // The admin socket's reload does parse-then-swap; a bad file must not disturb the good result.
  const ConfigResult good = parse_config(kMinimal, "good.yaml");
  ASSERT_TRUE(good.config.has_value());
  const DataplaneConfig before = *good.config;
  const ConfigResult bad =
      parse_config(replace_line(9, "  outside_addresses: [10.0.0.256]\n"), "bad.yaml");
  ASSERT_TRUE(bad.error.has_value());
  EXPECT_FALSE(bad.config.has_value());
  ASSERT_TRUE(good.config.has_value());
  EXPECT_EQ(good.config->source_file, "good.yaml");
  EXPECT_EQ(good.config->engine.outside_addrs, before.engine.outside_addrs);
  EXPECT_EQ(good.config->engine.outside_addrs, (std::vector<uint32_t>{ip(10, 0, 0, 100)}));
  // And parsing the good text again gives the same value: no state carried between calls.
  const ConfigResult again = parse_config(kMinimal, "good.yaml");
  ASSERT_TRUE(again.config.has_value());
  EXPECT_EQ(again.config->engine.outside_addrs, before.engine.outside_addrs);
  EXPECT_EQ(again.config->interface_addr, before.interface_addr);
  EXPECT_EQ(again.config->ports[0].device, before.ports[0].device);
}

TEST(ConfigReload, LiveChangesNeedNoRestart) {
  const DataplaneConfig running = parse_ok(kMinimal);
  const DataplaneConfig next =
      parse_ok(append("  tcp_mss_clamp: 1200\n") +
               "timeouts:\n  udp: 1m\nlogging:\n  level: debug\nnext_hop:\n  gateway: 10.0.0.2\n");
  EXPECT_EQ(restart_required(running, next), "");
  EXPECT_EQ(restart_required(running, running), "");
}

TEST(ConfigReload, StructuralChangesNeedARestart) {
  const DataplaneConfig running = parse_ok(kMinimal);
  EXPECT_EQ(restart_required(running, parse_ok(replace_line(4, "    device: 0000:00:07.0\n"))),
            "ports.data.device");
  EXPECT_EQ(restart_required(running, parse_ok(append("workers:\n  lcores: [2]\n"))),
            "workers.lcores");
  EXPECT_EQ(restart_required(running, parse_ok(append("  max_flows: 2M\n"))), "nat.max_flows");
  EXPECT_EQ(restart_required(running, parse_ok(replace_line(6, "  address: 10.0.0.6/24\n"))),
            "interface.address");
  EXPECT_EQ(restart_required(running, parse_ok(append("admin:\n  socket: /run/x.sock\n"))),
            "admin.socket");
  EXPECT_EQ(restart_required(running, parse_ok(kTwoArmed)), "mode");
  // The engine's memory and flow ownership hang on these (engine::restart_field).
  EXPECT_EQ(restart_required(running, parse_ok(replace_line(
                                          9, "  outside_addresses: [10.0.0.100, 10.0.0.101]\n"))),
            "nat.outside_addresses");
  EXPECT_EQ(restart_required(running, parse_ok(append("  port_range: 2000-3000\n"))),
            "nat.port_range");
  EXPECT_EQ(restart_required(running, parse_ok(append("  endpoint_independent_udp: true\n"))),
            "nat.endpoint_independent_udp");
}

TEST(ConfigLoad, MissingFileNamesThePathAndTheErrno) {
  const ConfigResult r = load_config("/nonexistent/eipgate.yaml");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.error->to_string(),
            "/nonexistent/eipgate.yaml: cannot open: No such file or directory");
}

TEST(ConfigLoad, DirectoryIsReportedAsUnreadable) {
  const ConfigResult r = load_config("/");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->to_string(), "/: cannot read: Is a directory");
}

TEST(ConfigLoad, ErrorsInAFileNameThatFile) {
  char dir_template[] = "/tmp/eipgate-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/bad.yaml";
  {
    std::ofstream out(path);
    out << replace_line(6, "  address: 10.0.0.5/33\n");
  }
  const ConfigResult r = load_config(path);
  std::remove(path.c_str());
  rmdir(dir_template);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->to_string(),
            path + ":6: interface.address: '10.0.0.5/33': prefix length must be 0..32");
}

// The loader's device and MAC checks, which the DPDK process shares (one definition).
TEST(ConfigHelpers, PciAddressesAreTheTwoFormsDpdkAccepts) {
  EXPECT_TRUE(is_pci_address("0000:00:06.0"));
  EXPECT_TRUE(is_pci_address("00:06.0"));
  EXPECT_TRUE(is_pci_address("0000:af:1f.7"));
  EXPECT_FALSE(is_pci_address("0000:00:06.8"));  // function is 0-7
  EXPECT_FALSE(is_pci_address("net_af_packet0,iface=eth1"));
  EXPECT_FALSE(is_pci_address("0000:00:06.0,x=1"));
  EXPECT_FALSE(is_pci_address(""));
}

TEST(ConfigHelpers, ParseMacGivesBytesOrNothing) {
  const auto m = parse_mac("02:AB:cd:00:0f:ff");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, (std::array<uint8_t, 6>{0x02, 0xab, 0xcd, 0x00, 0x0f, 0xff}));
  for (const char* bad : {"", "02:ab:cd:00:0f", "02:ab:cd:00:0f:ff:", "02-ab-cd-00-0f-ff",
                          "2:ab:cd:00:0f:fff", "02:ab:cd:00:0f:fg", "+2:ab:cd:00:0f:ff"}) {
    EXPECT_FALSE(parse_mac(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace eipgate::dataplane

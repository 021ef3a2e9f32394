// Parses and validates the dataplane's YAML configuration (schema: dataplane/config/README.md).
// Every error names the file, the line of the offending key or value, and the reason; the first
// error wins. Parsing is a pure function of the text, so a rejected reload cannot touch the config
// already running.
#include "dataplane/config/dataplane_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ipv4_text.h"
#include "common/log.h"
#include "common/yaml_schema.h"
#include "dataplane/config/value_readers.h"
#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/policy_config.h"

namespace eipgate::dataplane {

// The loader's value readers and the ParseFailure that parse_config turns into a ConfigResult.
using namespace config_detail;

namespace {

// ---- sections ----

std::vector<PortConfig> parse_ports(const Parser& p, const Value& ports_value, ArmMode mode,
                                    size_t workers) {
  const std::vector<Value> items = list(p, ports_value);
  const std::vector<std::string_view> names =
      mode == ArmMode::OneArmed ? std::vector<std::string_view>{"data"}
                                : std::vector<std::string_view>{"inside", "outside"};
  const char* mode_name = mode == ArmMode::OneArmed ? "one-armed" : "two-armed";
  std::vector<PortConfig> ports;
  std::vector<std::string> vdev_names;  // DPDK needs each vdev name once
  for (const Value& item : items) {
    const Section s(p, item,
                    {"name", "device", "rx_queues", "tx_queues", "mtu", "mac", "xdp_steering",
                     "xdp_program", "af_packet_fragments"});
    PortConfig port;
    const Value name = s.require("name");
    port.name = scalar(p, name);
    if (std::find(names.begin(), names.end(), port.name) == names.end()) {
      p.fail(name, quoted(port.name) + " is not a port of mode " + mode_name + " (expected " +
                       (mode == ArmMode::OneArmed ? "'data'" : "'inside' or 'outside'") + ")");
    }
    for (const auto& other : ports) {
      if (other.name == port.name) p.fail(name, "duplicate port name " + quoted(port.name));
    }
    const Value device = s.require("device");
    port.device = scalar(p, device);
    std::string_view vdev_name;
    if (is_pci_address(port.device)) {
      vdev_name = port.device;
    } else if (!is_vdev(port.device, &vdev_name)) {
      p.fail(device, quoted(port.device) +
                         " is neither a PCI address (0000:00:06.0) nor a vdev "
                         "(net_af_packet0,iface=eth1)");
    }
    for (const auto& other : vdev_names) {
      if (other == vdev_name) p.fail(device, quoted(std::string(vdev_name)) + " is used twice");
    }
    vdev_names.emplace_back(vdev_name);
    // Each worker polls its own Rx queue and owns a Tx queue; the main lcore needs one more Tx
    // queue for ARP and the exception path, hence the defaults.
    port.rx_queues = static_cast<uint16_t>(workers);
    port.tx_queues = static_cast<uint16_t>(workers + 1);
    if (auto v = s.get("rx_queues")) {
      port.rx_queues = static_cast<uint16_t>(integer(p, *v, 1, 1024));
      if (port.rx_queues < workers) {
        p.fail(*v, "fewer Rx queues than workers (" + std::to_string(workers) +
                       "): each worker polls its own queue");
      }
    }
    if (auto v = s.get("tx_queues")) {
      port.tx_queues = static_cast<uint16_t>(integer(p, *v, 1, 1024));
      if (port.tx_queues < workers) {
        p.fail(*v, "fewer Tx queues than workers (" + std::to_string(workers) +
                       "): each worker sends on its own queue");
      }
    }
    if (auto v = s.get("mtu")) port.mtu = static_cast<uint16_t>(integer(p, *v, 68, kMaxPortMtu));
    if (auto v = s.get("mac")) port.mac = mac(p, *v);
    // AF_XDP: our XDP program steers only NAT traffic to the socket (bpf/README.md).
    const bool af_xdp = vdev_name.starts_with("net_af_xdp");
    const bool own_prog = port.device.find("xdp_prog=") != std::string::npos;
    port.xdp_steering = af_xdp && !own_prog;
    if (auto v = s.get("xdp_steering")) {
      const bool on = boolean(p, *v);
      if (on && !af_xdp)
        p.fail(*v, "xdp_steering needs an af_xdp device (net_af_xdp<n>,iface=...)");
      if (on && own_prog) p.fail(*v, "xdp_steering with xdp_prog= in the device string: use one");
      port.xdp_steering = on && af_xdp && !own_prog;
    }
    if (auto v = s.get("xdp_program")) {
      port.xdp_program = scalar(p, *v);
      if (!port.xdp_steering) p.fail(*v, "xdp_program is only used with xdp_steering");
    }
    // DPDK 22.11's af_packet PMD joins its PACKET_FANOUT group with FLAG_DEFRAG: the kernel
    // reassembles IP fragments first, and a datagram larger than one frame is then dropped. Such
    // a port only runs when its config says it accepts that (dataplane/README.md).
    const bool af_packet = vdev_name.starts_with("net_af_packet");
    if (auto v = s.get("af_packet_fragments")) {
      if (!af_packet) p.fail(*v, "af_packet_fragments is only for af_packet devices");
      if (scalar(p, *v) != "drop") {
        p.fail(*v, "the only value is 'drop': af_packet cannot pass IP fragments (use af_xdp)");
      }
      port.af_packet_fragments_acknowledged = true;
    } else if (af_packet) {
      p.fail(device, "port " + quoted(port.name) +
                         " uses af_packet, which cannot pass IP fragments: DPDK 22.11's PMD has "
                         "the kernel reassemble them (PACKET_FANOUT_FLAG_DEFRAG) and a datagram "
                         "larger than one frame is dropped. Add 'af_packet_fragments: drop' to "
                         "this port to run with that limit, or use af_xdp");
    }
    ports.push_back(std::move(port));
  }
  for (std::string_view required : names) {
    if (std::none_of(ports.begin(), ports.end(),
                     [&](const PortConfig& port) { return port.name == required; })) {
      p.fail(ports_value.line, ports_value.path + ": mode " + mode_name + " needs a port named '" +
                                   std::string(required) + "'");
    }
  }
  // A stable order (inside, outside) so the process can index ports without searching.
  std::sort(ports.begin(), ports.end(),
            [](const PortConfig& a, const PortConfig& b) { return a.name < b.name; });
  return ports;
}

void parse_timeouts(const Parser& p, const Value& v, engine::Timeouts* t) {
  const Section s(
      p, v, {"tcp_established", "tcp_transitory", "tcp_time_wait", "udp", "icmp", "fragment"});
  if (auto x = s.get("tcp_established")) t->tcp_established_s = duration_s(p, *x);
  if (auto x = s.get("tcp_transitory")) t->tcp_transitory_s = duration_s(p, *x);
  if (auto x = s.get("tcp_time_wait")) t->tcp_time_wait_s = duration_s(p, *x);
  if (auto x = s.get("udp")) t->udp_s = duration_s(p, *x);
  if (auto x = s.get("icmp")) t->icmp_s = duration_s(p, *x);
  if (auto x = s.get("fragment")) {
    const uint64_t ms = duration_ms(p, *x);
    if (ms == 0 || ms > uint64_t{60} * 1000)
      p.fail(*x, quoted(x->node.Scalar()) + " is not in 1ms..60s");
    t->fragment_ms = static_cast<uint32_t>(ms);
  }
}

DataplaneConfig parse_root(const Parser& p, const YAML::Node& root) {
  if (root.IsNull()) p.fail(0, "the configuration is empty");
  const Value root_value{root, root.Mark().line + 1, ""};
  const Section top(
      p, root_value,
      {"mode", "ports", "interface", "next_hop", "nat", "timeouts", "workers", "eal",
       "exception_path", "admin", "logging", "polling", "probe", "fastpath", "translation_log",
       // eipgate-control's sections of the same file (control/aws, control/ha,
       // control/daemon): that process validates them; the dataplane leaves them alone.
       "aws", "ha", "policy", "cloudwatch", "cloudwatch_logs"});
  DataplaneConfig cfg;
  cfg.source_file = p.file();
  engine::EngineConfig& eng = cfg.engine;

  const Value mode = top.require("mode");
  const std::string mode_text = scalar(p, mode);
  if (mode_text == "one-armed") {
    cfg.mode = ArmMode::OneArmed;
  } else if (mode_text == "two-armed") {
    cfg.mode = ArmMode::TwoArmed;
  } else {
    p.fail(mode, quoted(mode_text) + " is not a mode (one-armed or two-armed)");
  }
  const bool two_armed = cfg.mode == ArmMode::TwoArmed;

  // Workers first: queue defaults and the port range check depend on their number.
  cfg.worker_lcores = {1};
  if (auto w = top.get_section("workers")) {
    const Section s(p, *w, {"lcores", "main_lcore"});
    if (auto v = s.get("main_lcore"))
      cfg.main_lcore = static_cast<uint16_t>(integer(p, *v, 0, 1023));
    if (auto v = s.get("lcores")) {
      cfg.worker_lcores.clear();
      for (const Value& item : list(p, *v)) {
        const auto lcore = static_cast<uint16_t>(integer(p, item, 0, 1023));
        if (lcore == cfg.main_lcore) {
          p.fail(item, "lcore " + std::to_string(lcore) + " is the main lcore");
        }
        if (std::find(cfg.worker_lcores.begin(), cfg.worker_lcores.end(), lcore) !=
            cfg.worker_lcores.end()) {
          p.fail(item, "duplicate lcore " + std::to_string(lcore));
        }
        cfg.worker_lcores.push_back(lcore);
      }
      if (cfg.worker_lcores.empty()) p.fail(*v, "at least one worker lcore is required");
    } else if (cfg.main_lcore == 1) {
      p.fail(s.line(), "workers: lcores must be given when main_lcore is 1 (the default worker)");
    }
  }
  const size_t workers = cfg.worker_lcores.size();

  cfg.ports = parse_ports(p, top.require_section("ports"), cfg.mode, workers);

  const Section iface(p, top.require_section("interface"), {"address", "inside_address"});
  const Value iface_addr = iface.require("address");
  const AddrLen primary = interface_cidr(p, iface_addr);
  cfg.interface_addr = primary.addr;
  cfg.interface_prefix_len = primary.len;
  std::optional<Value> inside_value = iface.get("inside_address");
  for (PortConfig& port : cfg.ports) {
    port.address = primary.addr;  // data (one-armed) or outside; the inside port is set below
    port.prefix_len = primary.len;
  }
  if (two_armed) {
    if (!inside_value) {
      p.fail(iface.line(), "interface: missing required key 'inside_address' (mode two-armed)");
    }
    const AddrLen inside = interface_cidr(p, *inside_value);
    if (in_subnet(inside.addr, primary.addr, primary.len) ||
        in_subnet(primary.addr, inside.addr, inside.len)) {
      p.fail(*inside_value, prefix_str(inside.addr, inside.len) + " overlaps the outside subnet " +
                                prefix_str(primary.addr & prefix_mask(primary.len), primary.len));
    }
    cfg.inside_addr = inside.addr;
    cfg.inside_prefix_len = inside.len;
    cfg.ports.front().address = inside.addr;  // ports are ordered inside, outside
    cfg.ports.front().prefix_len = inside.len;
  } else if (inside_value) {
    p.fail(*inside_value, "only used in mode two-armed (one-armed has a single address)");
  }

  // AWS reserves the subnet's first host address for the VPC router: the default next hop.
  cfg.next_hop.gateway = (primary.addr & prefix_mask(primary.len)) + 1;
  std::optional<Value> gateway_value;
  std::optional<Value> inside_gateway_value;
  if (auto nh = top.get_section("next_hop")) {
    const Section s(p, *nh, {"gateway", "mac", "inside_gateway"});
    gateway_value = s.get("gateway");
    if (gateway_value) cfg.next_hop.gateway = ipv4(p, *gateway_value);
    if (auto v = s.get("mac")) cfg.next_hop.static_mac = mac(p, *v);
    inside_gateway_value = s.get("inside_gateway");
    if (inside_gateway_value) cfg.next_hop.inside_gateway = ipv4(p, *inside_gateway_value);
  }
  {
    const Value& at = gateway_value ? *gateway_value : iface_addr;
    const std::string what = gateway_value ? std::string("") : std::string("the default next hop ");
    if (!in_subnet(cfg.next_hop.gateway, primary.addr, primary.len)) {
      p.fail(at, what + ipv4_to_string(cfg.next_hop.gateway) + " is not in the interface subnet " +
                     prefix_str(primary.addr & prefix_mask(primary.len), primary.len));
    }
    if (cfg.next_hop.gateway == cfg.interface_addr) {
      p.fail(at, what + ipv4_to_string(cfg.next_hop.gateway) + " is the interface's own address");
    }
  }

  // Replies to inside hosts. One-armed: the private subnets are never on-link (an inside prefix
  // may not hold the interface address), so they go back through the VPC router. Two-armed:
  // on-link by default (0: ARP for each inside host), or through a router on the inside subnet.
  if (inside_gateway_value) {
    const uint32_t gw = cfg.next_hop.inside_gateway;
    const uint32_t net_addr = two_armed ? cfg.inside_addr : cfg.interface_addr;
    const uint8_t net_len = two_armed ? cfg.inside_prefix_len : cfg.interface_prefix_len;
    if (!in_subnet(gw, net_addr, net_len)) {
      p.fail(*inside_gateway_value, ipv4_to_string(gw) + " is not in the " +
                                        (two_armed ? "inside" : "interface") + " subnet " +
                                        prefix_str(net_addr & prefix_mask(net_len), net_len));
    }
    if (gw == net_addr)
      p.fail(*inside_gateway_value, ipv4_to_string(gw) + " is the port's own address");
  } else if (!two_armed) {
    cfg.next_hop.inside_gateway = cfg.next_hop.gateway;
  }

  // nat
  const Value nat_value = top.require_section("nat");
  const Section nat(
      p, nat_value,
      {"inside_prefixes", "outside_addresses", "host_addresses", "port_range", "max_flows",
       "endpoint_independent_udp", "tcp_mss_clamp", "tcp_rst_unknown", "icmp_source_address"});
  const Value inside_prefixes = nat.require("inside_prefixes");
  for (const Value& item : list(p, inside_prefixes)) {
    const engine::Ipv4Prefix prefix = network(p, item);
    for (const auto& other : eng.inside_prefixes) {
      if (other.addr == prefix.addr && other.len == prefix.len) {
        p.fail(item, "duplicate prefix " + prefix_str(prefix.addr, prefix.len));
      }
    }
    if (prefix.contains(cfg.interface_addr)) {
      p.fail(item, prefix_str(prefix.addr, prefix.len) + " contains the interface address " +
                       ipv4_to_string(cfg.interface_addr) +
                       (two_armed ? " (the outside port's subnet is not inside)"
                                  : " (list the private subnets, not the NAT's own subnet)"));
    }
    eng.inside_prefixes.push_back(prefix);
  }
  if (eng.inside_prefixes.empty()) {
    p.fail(inside_prefixes, "at least one inside prefix is required");
  }

  // The instance's own addresses reach the kernel through the exception path.
  eng.host_addrs.push_back(cfg.interface_addr);
  if (two_armed) eng.host_addrs.push_back(cfg.inside_addr);
  if (auto v = nat.get("host_addresses")) {
    for (const Value& item : list(p, *v)) {
      const uint32_t a = ipv4(p, item);
      if (std::find(eng.host_addrs.begin(), eng.host_addrs.end(), a) != eng.host_addrs.end()) {
        p.fail(item,
               ipv4_to_string(a) + " is already a host address (the interface's are included)");
      }
      eng.host_addrs.push_back(a);
    }
  }

  const Value outside_value = nat.require("outside_addresses");
  const std::vector<Value> outside_items = list(p, outside_value);
  if (outside_items.empty()) p.fail(outside_value, "at least one outside address is required");
  if (outside_items.size() > 256) p.fail(outside_items[256], "at most 256 outside addresses");
  for (const Value& item : outside_items) {
    const uint32_t a = ipv4(p, item);
    if (a == 0) p.fail(item, "0.0.0.0 is not an outside address");
    for (const auto& prefix : eng.inside_prefixes) {
      if (prefix.contains(a)) {
        p.fail(item, ipv4_to_string(a) + " lies in the inside prefix " +
                         prefix_str(prefix.addr, prefix.len));
      }
    }
    if (std::find(eng.outside_addrs.begin(), eng.outside_addrs.end(), a) !=
        eng.outside_addrs.end()) {
      p.fail(item, "duplicate outside address " + ipv4_to_string(a));
    }
    if (std::find(eng.host_addrs.begin(), eng.host_addrs.end(), a) != eng.host_addrs.end()) {
      p.fail(item,
             ipv4_to_string(a) + " is a host address (the instance's own), not a NAT address");
    }
    if (a == cfg.next_hop.gateway) p.fail(item, ipv4_to_string(a) + " is the next hop");
    // One-armed on AWS: an outside address is a secondary private IP of the ENI, with the Elastic
    // IP associated to it. Writing the Elastic IP itself here is the mistake this catches.
    if (!two_armed && !in_subnet(a, cfg.interface_addr, cfg.interface_prefix_len)) {
      p.fail(item, ipv4_to_string(a) + " is not in the interface subnet " +
                       prefix_str(cfg.interface_addr & prefix_mask(cfg.interface_prefix_len),
                                  cfg.interface_prefix_len) +
                       " (use the private address the Elastic IP is associated with)");
    }
    eng.outside_addrs.push_back(a);
  }

  if (auto v = nat.get("port_range")) {
    const std::string s = scalar(p, *v);
    const size_t dash = s.find('-');
    uint64_t lo = 0;
    uint64_t hi = 0;
    if (dash == std::string::npos || !parse_uint(std::string_view(s).substr(0, dash), &lo) ||
        !parse_uint(std::string_view(s).substr(dash + 1), &hi)) {
      p.fail(*v, quoted(s) + " is not a port range (first-last, e.g. 1024-65535)");
    }
    if (lo == 0 || hi == 0 || lo > 65535 || hi > 65535) {
      p.fail(*v, quoted(s) + ": ports must be in 1..65535");
    }
    if (lo > hi) p.fail(*v, quoted(s) + ": the first port is above the last");
    if (hi - lo + 1 < workers) {
      p.fail(*v, quoted(s) + " has fewer ports than there are workers (" + std::to_string(workers) +
                     ")");
    }
    eng.port_min = static_cast<uint16_t>(lo);
    eng.port_max = static_cast<uint16_t>(hi);
  }
  if (auto v = nat.get("max_flows")) {
    eng.max_flows = static_cast<uint32_t>(count(p, *v, 1, uint64_t{1} << 24));
  }
  if (auto v = nat.get("endpoint_independent_udp")) eng.udp_endpoint_independent = boolean(p, *v);
  if (auto v = nat.get("tcp_mss_clamp")) {
    eng.tcp_mss_clamp = static_cast<uint16_t>(integer(p, *v, 0, 65535));
    if (eng.tcp_mss_clamp != 0 && eng.tcp_mss_clamp < 536) {
      p.fail(*v, "must be 0 (off) or at least 536 (RFC 879's minimum MSS)");
    }
  }
  if (auto v = nat.get("tcp_rst_unknown")) eng.tcp_rst_unknown = boolean(p, *v);
  if (auto v = nat.get("icmp_source_address")) {
    eng.icmp_source_addr = ipv4(p, *v);
    if (eng.icmp_source_addr == 0) p.fail(*v, "0.0.0.0 is not a source address");
  } else if (two_armed) {
    // Inside hosts know the NAT by its inside address (their gateway): traceroute shows that hop.
    eng.icmp_source_addr = cfg.inside_addr;
  }

  if (auto t = top.get_section("timeouts")) parse_timeouts(p, *t, &eng.timeouts);

  if (auto e = top.get_section("eal")) {
    const Section s(p, *e, {"extra_args"});
    if (auto v = s.get("extra_args")) cfg.eal_extra = scalar(p, *v);
  }
  if (auto e = top.get_section("exception_path")) {
    const Section s(p, *e, {"enabled", "tap_name"});
    if (auto v = s.get("enabled")) cfg.exception.enabled = boolean(p, *v);
    if (auto v = s.get("tap_name")) {
      cfg.exception.tap_name = scalar(p, *v);
      if (!valid_ifname(cfg.exception.tap_name)) {
        p.fail(*v, quoted(cfg.exception.tap_name) +
                       " is not an interface name (1..15 characters, no '/', ':' or spaces)");
      }
    }
  }
  if (auto a = top.get_section("admin")) {
    const Section s(p, *a, {"socket"});
    if (auto v = s.get("socket")) {
      cfg.admin.socket_path = scalar(p, *v);
      if (cfg.admin.socket_path.empty() || cfg.admin.socket_path[0] != '/') {
        p.fail(*v, quoted(cfg.admin.socket_path) + " is not an absolute path");
      }
      if (cfg.admin.socket_path.size() > 107) {  // sockaddr_un::sun_path holds 108 with the NUL
        p.fail(*v, "a unix socket path is at most 107 characters");
      }
    }
  }
  if (auto l = top.get_section("logging")) {
    const Section s(p, *l, {"level", "json"});
    if (auto v = s.get("level")) {
      cfg.logging.level = scalar(p, *v);
      spdlog::level::level_enum level{};
      if (!log::parse_level(cfg.logging.level, &level)) {
        p.fail(*v, quoted(cfg.logging.level) +
                       " is not a log level (trace, debug, info, warn, error, critical, off)");
      }
    }
    if (auto v = s.get("json")) cfg.logging.json = boolean(p, *v);
  }
  // Egress allowlists (dataplane/policy/README.md): parsed with file:line errors, compiled once
  // here; the engines share the immutable result.
  if (auto pol = top.get_section("policy")) {
    policy::ParseResult pr = policy::parse_policy(pol->node, p.file());
    if (!pr.errors.empty()) {
      const policy::Issue& first = pr.errors.front();
      std::string reason = first.reason;
      if (pr.errors.size() > 1) {
        reason += " (and " + std::to_string(pr.errors.size() - 1) + " more error(s) in policy:";
        for (size_t k = 1; k < pr.errors.size() && k < 6; ++k) {
          reason += " line " + std::to_string(pr.errors[k].line) + ": " + pr.errors[k].reason + ";";
        }
        reason += ")";
      }
      p.fail(first.line, reason);
    }
    for (const auto& w : pr.warnings) cfg.warnings.push_back(w.to_string());
    if (pr.config) {
      std::vector<policy::Prefix> inside;
      for (const auto& ip : eng.inside_prefixes) inside.push_back(policy::Prefix{ip.addr, ip.len});
      if (std::string note = policy::ungoverned_summary(*pr.config, inside); !note.empty()) {
        cfg.warnings.push_back(p.file() + ": " + note);
      }
    }
    std::string err;
    std::shared_ptr<const policy::CompiledPolicy> compiled =
        policy::CompiledPolicy::compile(*pr.config, &err);
    if (!compiled) p.fail(pol->line, "policy: " + err);
    eng.policy = std::move(compiled);
  }
  if (auto pl = top.get_section("polling")) {
    const Section s(p, *pl,
                    {"adaptive", "idle_sleep_max_us", "busy_spins", "deep_idle_ms", "deep_sleep_us",
                     "rx_interrupts"});
    if (auto v = s.get("adaptive")) cfg.polling.adaptive = boolean(p, *v);
    if (auto v = s.get("idle_sleep_max_us")) {
      cfg.polling.idle_sleep_max_us = static_cast<uint32_t>(integer(p, *v, 1, 1000000));
    }
    if (auto v = s.get("busy_spins")) {
      cfg.polling.busy_spins = static_cast<uint32_t>(integer(p, *v, 0, 1000000000));
    }
    if (auto v = s.get("deep_idle_ms")) {
      cfg.polling.deep_idle_ms = static_cast<uint32_t>(integer(p, *v, 1, 3600000));
    }
    if (auto v = s.get("deep_sleep_us")) {
      cfg.polling.deep_sleep_us = static_cast<uint32_t>(integer(p, *v, 1, 1000000));
    }
    if (auto v = s.get("rx_interrupts")) cfg.polling.rx_interrupts = boolean(p, *v);
  }
  if (auto tl = top.get_section("translation_log")) {
    const Section s(p, *tl, {"enabled", "path", "max_bytes", "keep"});
    TranslationLogConfig& t = cfg.translation_log;
    if (auto v = s.get("enabled")) t.enabled = boolean(p, *v);
    if (auto v = s.get("path")) {
      t.path = scalar(p, *v);
      if (t.path.empty() || t.path[0] != '/')
        p.fail(*v, quoted(t.path) + " is not an absolute path");
      if (t.path.back() == '/') p.fail(*v, quoted(t.path) + " names a directory, not a file");
    }
    // At least 4 KiB, so a file always holds some records; at most 1 TiB.
    if (auto v = s.get("max_bytes")) t.max_bytes = count(p, *v, 4096, 1ull << 40);
    if (auto v = s.get("keep")) t.keep = static_cast<uint32_t>(integer(p, *v, 0, 1000));
  }
  if (auto fp = top.get_section("fastpath")) {
    const Section s(p, *fp, {"enabled"});
    if (auto v = s.get("enabled")) cfg.fastpath.enabled = boolean(p, *v);
  }

  {
    const auto& prefixes = eng.inside_prefixes;
    auto inside = [&](uint32_t a) {
      for (const auto& pf : prefixes) {
        if (pf.contains(a)) return true;
      }
      return false;
    };
    auto taken = [&](uint32_t a) {
      return std::find(eng.host_addrs.begin(), eng.host_addrs.end(), a) != eng.host_addrs.end() ||
             std::find(eng.outside_addrs.begin(), eng.outside_addrs.end(), a) !=
                 eng.outside_addrs.end();
    };
    if (auto pr = top.get_section("probe")) {
      const Section s(p, *pr, {"source"});
      if (auto v = s.get("source")) {
        cfg.probe_source = ipv4(p, *v);
        if (!inside(cfg.probe_source)) {
          p.fail(*v,
                 "probe.source must lie in one of nat.inside_prefixes (probes leave as an "
                 "inside host's traffic would)");
        }
        if (taken(cfg.probe_source)) {
          p.fail(*v, "probe.source must not be an outside or host address");
        }
      }
    }
    if (cfg.probe_source == 0 && !prefixes.empty() && prefixes.front().len <= 29) {
      const uint32_t a = prefixes.front().addr + 3;
      if (!taken(a)) cfg.probe_source = a;
    }
  }

  // The engine's own check is the last word on what it accepts; the checks above exist to point
  // at the right line, this one catches whatever they do not know about.
  const std::string reason = engine::validate(eng);
  if (!reason.empty()) p.fail(nat_value.line, "nat: " + reason);
  return cfg;
}

}  // namespace

ConfigResult parse_config(const std::string& yaml_text, const std::string& source_name) {
  const Parser parser(source_name);
  ConfigResult result;
  try {
    yaml_schema::Issue syntax;
    const std::optional<YAML::Node> doc = yaml_schema::load_document(yaml_text, &syntax);
    if (!doc) parser.fail(syntax.line, syntax.reason);
    result.config = parse_root(parser, *doc);
  } catch (const ParseFailure& f) {
    result.error = f.error;
  } catch (const YAML::Exception& e) {
    result.error = ConfigError{source_name, e.mark.is_null() ? 0 : e.mark.line + 1,
                               "YAML syntax error: " + e.msg};
  }
  return result;
}

std::string restart_required(const DataplaneConfig& running, const DataplaneConfig& next) {
  if (running.mode != next.mode) return "mode";
  if (running.ports.size() != next.ports.size()) return "ports";
  for (size_t i = 0; i < running.ports.size(); ++i) {
    const PortConfig& a = running.ports[i];
    const PortConfig& b = next.ports[i];
    const std::string at = "ports." + b.name + ".";
    if (a.name != b.name) return "ports";
    if (a.device != b.device) return at + "device";
    if (a.rx_queues != b.rx_queues) return at + "rx_queues";
    if (a.tx_queues != b.tx_queues) return at + "tx_queues";
    if (a.mtu != b.mtu) return at + "mtu";
    if (a.mac != b.mac) return at + "mac";
    if (a.xdp_steering != b.xdp_steering) return at + "xdp_steering";
    if (a.xdp_program != b.xdp_program) return at + "xdp_program";
  }
  if (running.interface_addr != next.interface_addr ||
      running.interface_prefix_len != next.interface_prefix_len) {
    return "interface.address";
  }
  if (running.inside_addr != next.inside_addr ||
      running.inside_prefix_len != next.inside_prefix_len) {
    return "interface.inside_address";
  }
  if (running.worker_lcores != next.worker_lcores) return "workers.lcores";
  if (running.main_lcore != next.main_lcore) return "workers.main_lcore";
  if (running.eal_extra != next.eal_extra) return "eal.extra_args";
  if (running.exception.enabled != next.exception.enabled) return "exception_path.enabled";
  if (running.exception.tap_name != next.exception.tap_name) return "exception_path.tap_name";
  if (running.admin.socket_path != next.admin.socket_path) return "admin.socket";
  if (running.engine.max_flows != next.engine.max_flows) return "nat.max_flows";
  if (running.polling.rx_interrupts != next.polling.rx_interrupts) return "polling.rx_interrupts";
  if (running.fastpath.enabled != next.fastpath.enabled) return "fastpath.enabled";
  if (running.translation_log.enabled != next.translation_log.enabled ||
      running.translation_log.path != next.translation_log.path ||
      running.translation_log.max_bytes != next.translation_log.max_bytes ||
      running.translation_log.keep != next.translation_log.keep) {
    return "translation_log";
  }
  // The engine's own list (engine/config.h), under the YAML names an operator edits.
  const std::string field = engine::restart_field(running.engine, next.engine);
  if (field == "outside_addrs") return "nat.outside_addresses";
  if (field == "port range") return "nat.port_range";
  if (field == "udp_endpoint_independent") return "nat.endpoint_independent_udp";
  if (!field.empty()) return "nat." + field;
  return {};
}

ConfigResult load_config(const std::string& path) {
  ConfigResult result;
  ConfigError error;
  const std::optional<std::string> text = yaml_schema::read_config_file(path, &error);
  if (!text) {
    result.error = std::move(error);
    return result;
  }
  return parse_config(*text, path);
}

// "0000:00:06.0" or the domain-less "00:06.0".
bool is_pci_address(std::string_view s) {
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::string_view bdf = s;
  if (s.size() == 12) {
    for (size_t i = 0; i < 4; ++i) {
      if (!hex(s[i])) return false;
    }
    if (s[4] != ':') return false;
    bdf = s.substr(5);
  }
  return bdf.size() == 7 && hex(bdf[0]) && hex(bdf[1]) && bdf[2] == ':' && hex(bdf[3]) &&
         hex(bdf[4]) && bdf[5] == '.' && bdf[6] >= '0' && bdf[6] <= '7';
}

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  std::array<uint8_t, 6> m{};
  for (size_t i = 0; i < m.size(); ++i) {
    const char* first = text.data() + i * 3;
    if (i > 0 && first[-1] != ':') return std::nullopt;
    // from_chars takes a sign-less hex run; two digits, no more, no fewer.
    if (!std::isxdigit(static_cast<unsigned char>(first[0])) ||
        !std::isxdigit(static_cast<unsigned char>(first[1]))) {
      return std::nullopt;
    }
    auto [end, ec] = std::from_chars(first, first + 2, m[i], 16);
    if (ec != std::errc{} || end != first + 2) return std::nullopt;
  }
  return m;
}

}  // namespace eipgate::dataplane

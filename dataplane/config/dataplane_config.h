// The dataplane process configuration (the YAML file given to eipgate-dataplane --config), as
// an immutable value. load_config() parses and validates it; errors name file, line and reason.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/schema_error.h"
#include "dataplane/engine/config.h"

namespace eipgate::dataplane {

// A DPDK port: a PCI address (ENA, virtio: "0000:00:06.0") or a vdev string
// ("net_af_packet0,iface=veth1", "net_af_xdp0,iface=eth1", "net_tap0", "net_pcap0,...").
// The largest port MTU: a packet must fit one mbuf (2048 bytes of data room: Ethernet, two VLAN
// tags and the IP packet); the dataplane drops multi-segment packets. No jumbo frames: internet
// egress through the IGW is 1500 anyway, and TCP's MSS is clamped (nat.tcp_mss_clamp).
inline constexpr uint16_t kMaxPortMtu = 2048 - 14 - 8;

struct PortConfig {
  std::string name;        // "inside", "outside" or "data" (one-armed)
  std::string device;      // PCI address or vdev string
  uint16_t rx_queues = 1;  // parsed default: one per worker (each worker polls its own queue)
  uint16_t tx_queues = 1;  // parsed default: workers + 1 (the main lcore sends ARP, exception path)
  uint16_t mtu = 1500;     // 68..kMaxPortMtu
  std::optional<std::string> mac;  // override (tests), lower-case; default: the port's own
  uint32_t address = 0;            // host order; this port's own address (two-armed), 0 = none
  uint8_t prefix_len = 0;
  // af_xdp only (default on): DPDK loads our xdp_steer program (bpf/) instead of its own, so only
  // NAT traffic reaches the socket and the kernel keeps everything else (SSH, ARP, heartbeats).
  bool xdp_steering = false;
  std::string xdp_program;  // the xdp_steer.bpf.o to load; empty = the built-in default path
  // af_packet only, and required there: `af_packet_fragments: drop` says the operator accepts
  // that fragmented datagrams larger than one frame are dropped (the PMD's kernel defrag).
  bool af_packet_fragments_acknowledged = false;
};

enum class ArmMode : uint8_t { OneArmed, TwoArmed };

struct NextHop {
  uint32_t gateway = 0;                   // host order: the VPC router (x.x.x.1 of the subnet)
  std::optional<std::string> static_mac;  // skip ARP for it (tests); lower-case, colon-separated
  // Where inside-bound packets go: 0 = inside hosts are on-link (ARP for each; two-armed labs),
  // else this router (AWS one-armed: the VPC router, usually the same as gateway).
  uint32_t inside_gateway = 0;
};

struct ExceptionPath {
  bool enabled = true;
  std::string tap_name = "eipgate0";  // kernel interface carrying the port's MAC and address
};

struct AdminConfig {
  std::string socket_path = "/run/eipgate/dataplane.sock";
};

struct LoggingConfig {
  std::string level = "info";
  bool json = false;
};

struct PollingConfig {
  bool adaptive = true;
  uint32_t idle_sleep_max_us = 1000;  // longest sleep of an idle worker
  uint32_t busy_spins = 1000;         // empty polls before backing off
  uint32_t deep_idle_ms = 1000;       // quiet this long: sleep deep_sleep_us (or wait for an Rx
  uint32_t deep_sleep_us = 10000;     // interrupt that long) and let the main lcore sleep too
  bool rx_interrupts = true;          // wait on Rx interrupts where the driver has them
};

// The kernel fast path (bpf/, XDP): established flows translated in the XDP program of af_xdp
// ports that run it natively. On by default; where it cannot run (a port without XDP steering,
// generic XDP only) the dataplane says so at start and runs as without it.
struct FastPathConfig {
  bool enabled = true;
};

// Translation log (dataplane/README.md): a JSON line per connection opened and closed, written
// by the main lcore to a local file rotated by size. Off by default.
struct TranslationLogConfig {
  bool enabled = false;
  std::string path = "/var/log/eipgate/translations.jsonl";
  uint64_t max_bytes = 100ull << 20;  // a file is rotated before it would grow past this
  uint32_t keep = 10;                 // rotated files kept: path.1 (newest) .. path.<keep>
};

struct DataplaneConfig {
  std::string source_file;  // for messages
  ArmMode mode = ArmMode::OneArmed;
  std::vector<PortConfig> ports;  // one (data) or two, always in the order inside, outside
  uint32_t interface_addr = 0;    // the instance's own (primary) address on the data port;
                                  // two-armed: the outside port's address (host order)
  uint8_t interface_prefix_len = 24;
  uint32_t inside_addr = 0;       // two-armed only: the inside port's address (the inside
  uint8_t inside_prefix_len = 0;  // hosts' gateway); 0 in one-armed mode
  NextHop next_hop;
  std::vector<uint16_t> worker_lcores;  // one engine per lcore
  uint16_t main_lcore = 0;
  std::string eal_extra;        // extra EAL arguments (e.g. "--no-huge -m 512")
  engine::EngineConfig engine;  // inside prefixes, outside addrs, ports, timeouts, ...
  ExceptionPath exception;
  AdminConfig admin;
  LoggingConfig logging;
  PollingConfig polling;
  FastPathConfig fastpath;
  TranslationLogConfig translation_log;
  // Egress probes (probe.source): the address probes are sent from, inside an inside prefix and
  // never a real host's. Default: the first inside prefix's network + 3, which AWS reserves in
  // every subnet ("for future use"), so no instance or Lambda can hold it.
  uint32_t probe_source = 0;
  std::vector<std::string> warnings;  // "file:line: text": overlapping policy rules and the like
};

// "file:line: reason", the error type of every config loader (common/schema_error.h).
using ConfigError = yaml_schema::SchemaError;

// Either a config or the first error (file:line:reason).
struct ConfigResult {
  std::optional<DataplaneConfig> config;
  std::optional<ConfigError> error;
};

// Reads and parses a file; an unreadable file is an error naming the path and the errno text.
ConfigResult load_config(const std::string& path);
// Pure: the same text always gives the same result, so a rejected reload cannot disturb anything.
ConfigResult parse_config(const std::string& yaml_text, const std::string& source_name);

// For reload: the first setting that differs between the running config and the new one and
// cannot be applied without a restart (ports, queues, lcores, EAL, addresses owned by the
// exception path, admin socket, max_flows — memory reserved at start), as "section.key"; empty
// when the new config can be swapped in live (nat prefixes and addresses, port range, timeouts,
// next hop, logging, polling).
std::string restart_required(const DataplaneConfig& running, const DataplaneConfig& next);

// What the loader accepts as a PCI address ("0000:00:06.0" or "00:06.0", as DPDK's PCI bus
// does); anything else in ports[].device must be a vdev. The dataplane asks the same question
// (allow-list the device, expect Rx interrupts), so it uses this one definition.
[[nodiscard]] bool is_pci_address(std::string_view device);

// "aa:bb:cc:dd:ee:ff" (either case) as bytes; nothing when it is not six colon-separated hex
// pairs. The loader's ports[].mac / next_hop.mac checks build on it; the dataplane uses it to
// turn those (already checked) strings into bytes.
[[nodiscard]] std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text);

}  // namespace eipgate::dataplane

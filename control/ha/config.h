// The `ha:` section of eipgate's YAML configuration and the shared-secret file, as values.
// parse_ha_config() is pure (no file access); load_secret() reads and checks the secret file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/schema_error.h"
#include "control/ha/clock.h"
#include "control/ha/fallback.h"
#include "control/ha/state_machine.h"

namespace YAML {
class Node;
}

namespace eipgate::ha {

inline constexpr uint16_t kDefaultHaPort = 7410;

struct PeerAddress {
  std::string text;      // as written, for messages
  uint32_t address = 0;  // IPv4, host order
  uint16_t port = kDefaultHaPort;
};

struct ProbeTarget {
  std::string host;  // IPv4 address or DNS name; probed with a TCP connect through the dataplane
  uint16_t port = 443;
};

struct HaConfig {
  std::string source_file;
  uint8_t priority = 100;          // 1..254
  std::vector<PeerAddress> peers;  // one peer today; a list so a second address can be added
  uint32_t bind_address = 0;       // host order; 0 = any
  uint16_t port = kDefaultHaPort;  // local UDP port for heartbeats, sync and handover
  std::string secret_file;
  int secret_file_line = 0;        // for errors about the file itself
  Millis heartbeat_interval{150};  // 100..200 ms
  Millis dead_interval{600};       // given, or heartbeat_interval * miss_count
  Millis startup_wait{0};          // 0: dead_interval
  bool preempt = false;
  Millis preempt_delay{30'000};
  Millis hold_down{10'000};
  Millis takeover_timeout{30'000};
  Millis handover_timeout{10'000};
  Millis route_check_interval{5'000};
  // The active renews a liveness lease (tag eipgate:lease) on its route tables this often while
  // its dataplane is healthy, so another AZ's fallback sees a pair whose processes died although
  // EC2 still reports the instances running (ha/fallback.h). 0 = no lease.
  Millis lease_interval{2'000};
  // eipgate-control fails the dataplane at once when a worker's loop counter in the shared
  // progress file (proto/progress.h) stands still this long (frozen, hung or dead process),
  // without waiting for an admin-socket timeout. 0 = only the admin-socket health check.
  Millis dataplane_stall{400};
  Millis sync_flush_interval{10};
  Millis resync_retry{2'000};
  // eipgate-control only: its own admin socket, which ENI of the instance is the data ENI (by
  // MAC; default: the only ENI, else the one with device number 1) and the peer's data ENI
  // (default: looked up by the peer's address; a route at an unknown ENI counts as the peer's).
  std::string control_socket = "/run/eipgate/control.sock";
  std::string data_mac;
  std::string peer_eni;
  // Cross-AZ fallback (ha/fallback.h): other AZs' tables this pair's active rescues.
  std::vector<FallbackRule> fallback_for;
  std::vector<ProbeTarget> probe_targets;
  Millis probe_interval{1'000};
  Millis probe_timeout{500};
  uint32_t probe_fail_threshold = 3;
  // eipgate-control's Prometheus endpoint, "IPv4:PORT"; empty = off (`metrics_listen: off` or "").
  // Loopback by default: exposing it further is the operator's choice (control/daemon/README.md).
  std::string metrics_listen = "127.0.0.1:9410";
};

// "file:line: reason", the error type of every config loader (common/schema_error.h).
using HaConfigError = yaml_schema::SchemaError;

struct HaConfigResult {
  std::optional<HaConfig> config;
  std::optional<HaConfigError> error;
};

// `ha` is the value of the top-level `ha:` key; `file` names the source in errors.
[[nodiscard]] HaConfigResult parse_ha_config(const YAML::Node& ha, std::string_view file);

// Key material. Cleansed from memory on destruction; deliberately has no way to print itself.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  Secret(Secret&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();
  [[nodiscard]] std::span<const uint8_t> bytes() const { return bytes_; }
  [[nodiscard]] size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

inline constexpr size_t kMinSecretBytes = 16;
inline constexpr size_t kMaxSecretBytes = 4096;

// Reads the secret: a regular file (symlinks refused), owned by `owner` (root in production), with
// no group/other permission bits, 16..4096 bytes after trailing whitespace is trimmed. Checks
// are made on the opened descriptor (no race between check and read). The error text names the
// path and the fix, never the content.
[[nodiscard]] std::optional<std::string> load_secret_file(const std::string& path, Secret* out,
                                                          uid_t owner = 0);
// The same, with the error located at the config's secret_file line.
[[nodiscard]] std::optional<HaConfigError> load_secret(const HaConfig& config, Secret* out,
                                                       uid_t owner = 0);

// The state machine's view of the configuration.
[[nodiscard]] FsmConfig to_fsm_config(const HaConfig& config, uint64_t boot_id);

}  // namespace eipgate::ha

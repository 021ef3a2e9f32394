// What eipgate-dataplane reports beyond the engines' counters (per-worker I/O, the main lcore, the
// XDP steering program, ports, policy, sync) as plain values, and the one serializer that turns
// them into the admin "stats" and "xstats" results (schema in README.md of this folder).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/admin/port_xstats.h"
#include "dataplane/engine/engine.h"

namespace eipgate::admin {

// Packets and frames the DPDK glue around the engines loses, by reason: one X-macro list yields
// the enum, the exported names and the counter slots. X(enum_name, "exported_name").
#define EIPGATE_GLUE_DROPS(X)                                                                 \
  X(HostRingFull, "host_ring_full")       /* worker -> main lcore: ARP, the instance's own */ \
  X(HandoffRingFull, "handoff_ring_full") /* worker -> the flow's owning worker */            \
  X(InjectRingFull, "inject_ring_full")   /* main lcore -> worker 0: ARP, kernel frames */    \
  X(ResolveRingFull, "resolve_ring_full") /* worker -> main lcore: next hop without a MAC */  \
  X(RoleUnconfirmed, "role_unconfirmed")  /* translated, but the HA role is stale: frozen */

enum class GlueDrop : uint8_t {
#define EIPGATE_X(name, str) name,
  EIPGATE_GLUE_DROPS(EIPGATE_X)
#undef EIPGATE_X
      Count
};

inline constexpr std::size_t kGlueDropCount = static_cast<std::size_t>(GlueDrop::Count);

inline constexpr std::array<std::string_view, kGlueDropCount> kGlueDropNames = {
#define EIPGATE_X(name, str) std::string_view{str},
    EIPGATE_GLUE_DROPS(EIPGATE_X)
#undef EIPGATE_X
};

using GlueDrops = std::array<uint64_t, kGlueDropCount>;

// One worker's I/O around its engine.
struct WorkerIo {
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_dropped = 0;
  uint64_t no_neighbour = 0;
  uint64_t loops = 0;
  uint64_t idle_sleeps = 0;
  uint64_t rx_interrupt_waits = 0;
  GlueDrops drops{};  // this worker's glue drops
};

// The main lcore: ARP, the next-hop queue, the host path.
struct MainCounters {
  uint64_t arp_replies = 0;
  uint64_t gratuitous_arps = 0;
  uint64_t arp_queued = 0;
  uint64_t arp_queue_sent = 0;
  uint64_t arp_queue_dropped = 0;
  uint64_t host_dropped = 0;
  uint64_t host_to_kernel = 0;
  uint64_t kernel_to_port = 0;
  uint64_t kernel_filtered = 0;
  GlueDrops drops{};  // the main lcore's glue drops
};

// The XDP steering program's verdict counters on one port, or why they could not be read.
struct SteerCounters {
  std::string port;
  std::string error;
  std::vector<std::pair<std::string, uint64_t>> counters;
};

// One port and its latest xstats reading (has_reading false before the main lcore's first).
struct PortReport {
  std::string name;
  uint16_t port_id = 0;
  std::string device;
  bool has_reading = false;
  std::vector<XstatValue> xstats;
  std::string xstats_error;
};

struct PolicyReport {
  std::vector<std::pair<std::string, uint64_t>> rule_hits;  // rule name, hits over all workers
  uint64_t denials_logged = 0;
  uint64_t denials_not_logged = 0;
};

struct SyncReport {
  std::string role;  // "active", "standby" or "none"
  uint64_t epoch = 0;
  bool control_connected = false;
  uint64_t records_sent = 0;
  uint64_t records_dropped = 0;
  uint64_t engine_overflows = 0;
  uint64_t records_received = 0;
  uint64_t records_applied = 0;
  uint64_t records_refused = 0;
  // records_refused by reason, indexed by engine::SyncRefusal (index 0, none, is unused).
  std::array<uint64_t, engine::kSyncRefusalCount> refused_by_reason{};
  uint64_t malformed = 0;
  uint64_t snapshots = 0;
};

// The kernel fast path as the process runs it: whether, why not, and what the workers' glue did
// with their engines' offload records (summed over workers).
struct FastPathCounters {
  uint64_t entries_written = 0;  // fp_flows entries inserted or replaced (one per direction)
  uint64_t entries_removed = 0;
  uint64_t map_full = 0;      // entries the full map refused: those directions stay slow
  uint64_t no_neighbour = 0;  // directions left slow: their next hop had no MAC yet
  uint64_t flushes = 0;
  uint64_t errors = 0;  // map operations that failed otherwise
  FastPathCounters& operator+=(const FastPathCounters& o) {
    entries_written += o.entries_written;
    entries_removed += o.entries_removed;
    map_full += o.map_full;
    no_neighbour += o.no_neighbour;
    flushes += o.flushes;
    errors += o.errors;
    return *this;
  }
};

struct FastPathReport {
  bool on = false;
  bool held = false;       // off for now: the HA role is unconfirmed
  std::string off_reason;  // when off
  FastPathCounters glue;
};

// The translation log (dataplane/README.md): records written to the file, records dropped (an
// engine's ring full, the worker's ring to the main lcore full, or a failed write), files rotated.
struct TranslationLogReport {
  bool enabled = false;
  std::string path;
  uint64_t records_written = 0;
  uint64_t records_dropped = 0;
  uint64_t bytes_written = 0;
  uint64_t rotations = 0;
  uint64_t write_errors = 0;
};

struct DataplaneStats {
  std::vector<engine::EngineStats> engines;  // index = worker id
  std::vector<WorkerIo> io;                  // index = worker id
  MainCounters main;
  std::vector<SteerCounters> steer;  // ports with the XDP steering program only
  std::vector<PortReport> ports;
  std::optional<PolicyReport> policy;  // absent without a policy
  SyncReport sync;
  FastPathReport fastpath;
  TranslationLogReport translation_log;
};

// The "stats" result: stats_to_json(engines) plus "io", "main", "glue_drops" (every reason, the
// workers' and the main lcore's together; each "io" entry has its worker's own), "xdp_steer" (when
// any port is steered), "ports" (with "allowance" when the PMD has ENA's counters), "policy",
// "sync" and "translation_log".
[[nodiscard]] nlohmann::json dataplane_stats_to_json(const DataplaneStats& s);

// The "xstats" result: every port's xstats; age_ms null before the first reading.
[[nodiscard]] nlohmann::json ports_xstats_to_json(const std::vector<PortReport>& ports,
                                                  std::optional<uint64_t> age_ms);

}  // namespace eipgate::admin

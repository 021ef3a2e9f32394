// The DPDK process around the engine: EAL, ports, one worker per lcore running an Engine, handoff
// rings between workers, ARP, and the main lcore's housekeeping (ARP, host path, stats).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/admin/dataplane_stats.h"
#include "dataplane/config/dataplane_config.h"
#include "dataplane/engine/engine.h"

namespace eipgate::dataplane {

// Per-worker figures published by the worker for the main lcore (stats, health).
struct WorkerStatus {
  engine::EngineStats stats;
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_dropped = 0;
  uint64_t no_neighbour = 0;  // next hop MAC not resolved yet: handed to the main lcore's queue
  uint64_t loops = 0;         // progress counter (liveness)
  uint64_t idle_sleeps = 0;
  uint64_t rx_interrupt_waits = 0;  // idle waits on an Rx interrupt (drivers that have them)
  uint64_t sync_out_dropped = 0;    // HA sync records lost on the way to the main lcore
  uint64_t sync_applied = 0;        // peer records installed (standby)
  // Peer records refused by the engine, by engine::SyncRefusal (index 0, none, stays 0).
  std::array<uint64_t, engine::kSyncRefusalCount> sync_refused{};
  uint64_t sync_overflows = 0;       // records the engine could not buffer
  uint64_t txlog_lost = 0;           // translation records the engine could not buffer
  std::vector<uint64_t> rule_hits;   // egress policy hits by rule id (this worker's engine)
  admin::GlueDrops drops{};          // what this worker lost in the glue, by reason
  admin::FastPathCounters fastpath;  // what its glue did with the engine's offload records
};

class Dataplane {
 public:
  Dataplane();
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // Initialises EAL and the ports; returns an empty string or a clear error.
  std::string init(const DataplaneConfig& cfg, const std::string& program);
  // Runs the workers and the main loop until stop() (or SIGTERM via the caller).
  int run();
  void stop() { stop_.store(true, std::memory_order_relaxed); }

  [[nodiscard]] std::vector<WorkerStatus> status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
};

}  // namespace eipgate::dataplane

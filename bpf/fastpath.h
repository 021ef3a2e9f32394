// The kernel fast path's side of the engine: turning a translated flow direction into an fp_flows
// entry (a pure function), and offloading, withdrawing and reading entries of a loaded program.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpf/steer_abi.h"
#include "bpf/steer_loader.h"

namespace eipgate::bpf {

// One direction of a flow as its packets carry it. Host order, as in the engine.
struct FpTuple {
  uint32_t saddr = 0;
  uint32_t daddr = 0;
  uint16_t sport = 0;  // ICMP echo: the identifier
  uint16_t dport = 0;  // ICMP echo: 0
  uint8_t proto = 0;   // 6 TCP, 17 UDP, 1 ICMP (echo)
  bool operator==(const FpTuple&) const = default;
};

// The tuple of the packets going the other way. ICMP echo keeps the identifier in sport: a reply
// carries the identifier of its request.
FpTuple reversed(const FpTuple& t);

inline constexpr uint8_t kFpIcmpEchoRequest = 8;
inline constexpr uint8_t kFpIcmpEchoReply = 0;

// What the engine knows about one direction of an established flow that it offloads.
struct FastPathSpec {
  FpTuple original;    // as the packet arrives
  FpTuple translated;  // as it leaves: same proto; ICMP: dport 0, sport the new identifier
  std::array<uint8_t, 6> dmac{};  // next hop
  std::array<uint8_t, 6> smac{};  // the egress port's own
  uint16_t mtu = 1500;            // largest IPv4 Total Length the egress link takes (>= 68)
  bool same_port = true;          // XDP_TX (one-armed, AWS); false: redirect via tx_slot
  uint32_t tx_slot = 0;           // fp_tx_ports slot (< FP_MAX_TX_PORTS) when !same_port
  uint8_t icmp_type = kFpIcmpEchoRequest;  // ICMP: the echo type this direction carries
  uint32_t counter_slot = 0;  // fp_counters slot of the flow (the engine's OffloadRecord::slot)
  bool inbound = false;       // outside -> inside: counts in the slot's _in half
};

struct FastPathEntry {
  fp_flow_key key{};
  fp_flow_value value{};
};

// Builds the entry for one direction: key from `original`, rewrite to `translated` with the
// checksum addends precomputed (RFC 1624) and the counter slot. Pure: no BPF, no syscalls.
// Returns "" and fills `out`, or why the spec cannot be offloaded (out untouched).
std::string make_fastpath_entry(const FastPathSpec& spec, FastPathEntry& out);

// The key the program builds from a packet carrying `t` (e.g. to withdraw or read a direction).
fp_flow_key fastpath_key(const FpTuple& t);

// One direction's activity as its counter slot holds it (tests, diagnostics: the engine reads the
// memory-mapped array itself).
struct FastPathActivity {
  bool present = false;       // the key is in fp_flows
  uint64_t last_seen_ns = 0;  // CLOCK_MONOTONIC ns of the slot's last forwarded packet; 0: none
  uint64_t packets = 0;       // this direction's, since the slot was last zeroed
  uint64_t bytes = 0;         // their IPv4 Total Lengths
};

// fp_counters mapped into this process (munmap on destruction): what the engine reads in place.
class MappedCounters {
 public:
  MappedCounters() = default;
  ~MappedCounters();
  MappedCounters(const MappedCounters&) = delete;
  MappedCounters& operator=(const MappedCounters&) = delete;
  MappedCounters(MappedCounters&& o) noexcept;
  MappedCounters& operator=(MappedCounters&& o) noexcept;
  // Maps the whole array behind fd (an fp_counters map); "" or why not.
  std::string map(int fd);
  [[nodiscard]] fp_flow_counters* slots() const { return slots_; }
  [[nodiscard]] uint32_t size() const { return size_; }

 private:
  fp_flow_counters* slots_ = nullptr;
  uint32_t size_ = 0;
  size_t len_ = 0;
};

struct OffloadResult {
  size_t offloaded = 0;  // entries now in the map (inserted, or replaced with activity zeroed)
  size_t full = 0;       // entries refused because the map is full (E2BIG); not an error
  std::string error;     // another failure; the entries after it were not tried
};

struct WithdrawResult {
  size_t withdrawn = 0;
  size_t missing = 0;  // keys that were not in the map; not an error
  std::string error;
};

// Totals over this object's life, for the dataplane's statistics.
struct FastPathTableStats {
  uint64_t offloaded = 0;
  uint64_t refused_full = 0;
  uint64_t withdrawn = 0;
};

// The fp_flows and fp_tx_ports maps of a loaded program (SteerProgram::map_fds() or
// AttachedSteer::map_fds()): borrows the fds, so the program's owner must outlive it. Uses the
// kernel's batch operations where it has them (Linux >= 5.6) and one call per element where not.
// Not thread-safe (scratch buffers): one owner, e.g. the dataplane's control thread. The program
// reads and writes the maps concurrently; that is safe, and a replaced entry takes effect for
// the next packet.
class FastPathTable {
 public:
  FastPathTable() = default;
  explicit FastPathTable(const SteerMapFds& fds)
      : flows_fd_(fds.fp_flows), tx_ports_fd_(fds.fp_tx_ports), counters_fd_(fds.fp_counters) {}

  [[nodiscard]] bool usable() const { return flows_fd_ >= 0 && tx_ports_fd_ >= 0; }

  // Inserts or replaces the entries (a replaced entry's activity restarts from the values given,
  // zero from make_fastpath_entry: read_activity() first if it matters). A full map refuses the
  // new keys beyond its capacity (counted in `full` and in stats().refused_full) and the call
  // goes on with the rest: replacing an existing key still works on a full map.
  OffloadResult offload(std::span<const FastPathEntry> entries);

  // Removes the entries; keys not in the map are counted as missing.
  WithdrawResult withdraw(std::span<const fp_flow_key> keys);

  // Activity of each key, out[i] for keys[i] (out.size() >= keys.size()). One lookup per key:
  // the kernel has no batch lookup by key for hash maps.
  std::string read_activity(std::span<const fp_flow_key> keys, std::span<FastPathActivity> out);

  // Every entry (a snapshot: the program may change activity fields while it is taken).
  std::string dump(std::vector<FastPathEntry>& out);

  // Withdraws every entry, e.g. after the fast path was switched off.
  std::string clear();

  // The device behind fp_tx_ports[slot], for entries with same_port false (two-armed).
  std::string set_tx_port(uint32_t slot, int ifindex);
  std::string clear_tx_port(uint32_t slot);

  [[nodiscard]] const FastPathTableStats& stats() const { return stats_; }
  // False once the kernel refused a batch operation (Linux < 5.6): one syscall per element since.
  [[nodiscard]] bool uses_batch_ops() const { return batch_; }

  // Test hook: one syscall per element, as on a kernel without batch operations.
  void use_per_element_ops_for_test() { batch_ = false; }

 private:
  int flows_fd_ = -1;
  int tx_ports_fd_ = -1;
  int counters_fd_ = -1;
  bool batch_ = true;  // cleared for good once the kernel refuses a batch operation
  FastPathTableStats stats_;
  std::vector<fp_flow_key> keys_;  // scratch: batch calls take keys and values as two arrays
  std::vector<fp_flow_value> values_;
};

}  // namespace eipgate::bpf

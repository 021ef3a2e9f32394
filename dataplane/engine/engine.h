// Engine: one worker's NAT — parse, connection tracking, port allocation and translation over
// bursts of packets. No I/O, no syscalls, no allocation, no exceptions and no locks after
// construction (DESIGN.md, Invariants). Time and randomness are injected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/engine/config.h"
#include "dataplane/engine/counters.h"
#include "dataplane/engine/packet.h"
#include "proto/sync.h"

namespace eipgate::engine {

// Why a standby's engine refuses a peer's sync record: one list gives the enum and the names.
#define EIPGATE_SYNC_REFUSALS(X)                                                   \
  X(protocol_not_translated, "the protocol is not translated")                     \
  X(endpoint_independent, "endpoint-independent UDP mappings are not synced")      \
  X(outside_address_not_ours, "the outside address is not ours")                   \
  X(outside_port_out_of_range, "the outside port is outside the configured range") \
  X(outside_tuple_in_use, "the outside tuple is in use by another flow")           \
  X(flow_table_full, "the flow table is full")                                     \
  X(flow_index_full, "the flow index is full")

enum class SyncRefusal : uint8_t {
  none,
#define EIPGATE_SYNC_REFUSAL_ENUM(name, text) name,
  EIPGATE_SYNC_REFUSALS(EIPGATE_SYNC_REFUSAL_ENUM)
#undef EIPGATE_SYNC_REFUSAL_ENUM
      count
};
inline constexpr size_t kSyncRefusalCount = static_cast<size_t>(SyncRefusal::count);
// "none", "protocol_not_translated", ...: the counter names.
[[nodiscard]] std::string_view sync_refusal_name(SyncRefusal r);
// The sentence for a log line.
[[nodiscard]] std::string_view sync_refusal_text(SyncRefusal r);

enum class TcpState : uint8_t { None, SynSent, SynReceived, Established, FinWait, TimeWait, Reset };

// A read-only copy of one flow, for dumps, sync and tests. Addresses/ports in host order.
struct FlowView {
  uint8_t proto = 0;
  uint32_t inside_ip = 0;
  uint16_t inside_port = 0;  // ICMP: echo identifier
  uint32_t remote_ip = 0;
  uint16_t remote_port = 0;  // ICMP: 0
  uint32_t outside_ip = 0;
  uint16_t outside_port = 0;  // ICMP: translated identifier
  TcpState tcp_state = TcpState::None;
  uint64_t idle_ms = 0;
  uint64_t bytes_out = 0;     // inside -> outside
  uint64_t bytes_in = 0;      // outside -> inside
  uint8_t tcp_bits = 0;       // the TCP flags seen (SYN/FIN each way, RST), as synced
  uint32_t remaining_ms = 0;  // until idle expiry under the current timeouts
};

// An egress-policy denial, for the rate-limited audit log (dataplane). Host order.
struct DenyRecord {
  uint64_t time_ms = 0;  // engine clock
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  bool reject = false;  // RST / ICMP sent (else dropped silently)
  uint16_t group_id = 0xffff;
  uint32_t rule_id = 0;
  char name[64] = {};  // SNI / Host when the name decided, else empty
};

// Translation log (set_translation_log): one record when a flow is created and one when it is
// deleted. Addresses and ports in host order; times on the engine clock (ms).
enum class TxEvent : uint8_t { Open, Close };
// Why a flow ended: TCP closed by FIN (time-wait over) or RST, idle timeout, evicted for a new
// flow (table full), deleted by the HA peer's sync record, closed by the egress policy.
enum class TxEnd : uint8_t { None, Fin, Rst, Idle, Evicted, Sync, Policy };
[[nodiscard]] std::string_view tx_end_name(TxEnd e);  // "fin", "rst", "idle", ...
inline constexpr uint32_t kTxNoRule = 0xffffffffu;    // no policy rule decided (yet)

struct TxLogRecord {
  uint64_t time_ms = 0;          // engine clock: the event's time
  uint64_t bytes_out = 0;        // inside -> outside (Close)
  uint64_t bytes_in = 0;         // outside -> inside (Close)
  uint32_t duration_ms = 0;      // Close: since the Open on this engine
  uint32_t rule_id = kTxNoRule;  // policy rule id (policy::CompiledPolicy::rule_name)
  uint32_t inside_ip = 0, outside_ip = 0, remote_ip = 0;
  uint16_t inside_port = 0, outside_port = 0, remote_port = 0;
  uint8_t proto = 0;
  TxEvent event = TxEvent::Open;
  TxEnd end = TxEnd::None;
  bool synced = false;  // the flow came from the HA peer's sync (this node took it over)
};

// A flow change for the HA peer (connection-table sync): the active instance's engines record
// them, the standby's engines install them. The type and its wire format live in proto/.
using SyncKind = proto::SyncKind;
using SyncRecord = proto::SyncRecord;

// The kernel fast path (bpf/, XDP): the engine decides which flows it carries and says so in
// records the glue applies to the fast path's map, in order. Addresses and ports in host order;
// ICMP echo: the ports are the identifiers, remote_port 0.
enum class OffloadKind : uint8_t {
  Offload,   // install both directions of the flow
  Withdraw,  // remove both directions (closing, expired, evicted, policy)
  Flush,     // remove every entry (reload, record ring overflow, offload turned off)
};

struct OffloadRecord {
  OffloadKind kind = OffloadKind::Offload;
  uint8_t proto = 0;
  uint32_t inside_ip = 0, remote_ip = 0, outside_ip = 0;
  uint16_t inside_port = 0, remote_port = 0, outside_port = 0;
  uint32_t slot = 0;  // Offload/Withdraw: the flow's OffloadCounters slot (set_offload)
};

// One offloaded flow's traffic in the fast path: the fast path adds to it (atomically) and stamps
// the time, the engine takes the counts (atomic exchange with 0) in its expiry and harvest passes.
// The glue points the engine at an array of them shared with the fast path (a memory-mapped BPF
// array), indexed by OffloadRecord::slot. Times on the engine's clock (CLOCK_MONOTONIC, which is
// also bpf_ktime_get_ns's).
struct OffloadCounters {
  uint64_t last_seen_ns;
  uint64_t packets_out, bytes_out;  // inside -> outside (IP bytes)
  uint64_t packets_in, bytes_in;    // outside -> inside
};
static_assert(sizeof(OffloadCounters) == 40);

// Where the fast path leaves its counts. In the two-armed layout each port runs its own XDP
// program with its own array: the inside port's counts the outbound packets, the outside port's the
// inbound ones; one-armed, both are the same array.
struct OffloadShared {
  OffloadCounters* outbound = nullptr;  // packets_out/bytes_out/last_seen_ns of slot i
  OffloadCounters* inbound = nullptr;   // packets_in/bytes_in/last_seen_ns of slot i
  uint32_t slot_base = 0;               // this engine's flow record i has slot slot_base + i
  uint32_t slots = 0;  // flow records 0..slots-1 may be offloaded (the rest stay in the engine)
};

struct EngineStats {
  Counters counters;
  uint64_t active_flows = 0;      // every flow record in use (TCP, UDP, ICMP)
  uint64_t active_tcp_flows = 0;  // ActiveConnectionCount: TCP only, as NAT Gateway counts
  uint64_t max_flows = 0;
  uint64_t memory_bytes = 0;  // reserved at construction

  EngineStats& operator+=(const EngineStats& o) {  // aggregate over workers
    counters += o.counters;
    active_flows += o.active_flows;
    active_tcp_flows += o.active_tcp_flows;
    max_flows += o.max_flows;
    memory_bytes += o.memory_bytes;
    return *this;
  }
};

// Every counter by its exported name: ActiveConnectionCount first, then the event counters
// (NAT Gateway's CloudWatch names among them), then "drop.<reason>" for each drop reason.
std::vector<std::pair<std::string_view, uint64_t>> named_counters(const EngineStats& s);

class Engine {
 public:
  static constexpr uint16_t kMaxBurst = 64;

  // Reserves all memory for cfg.max_flows. Throws std::invalid_argument when validate(cfg) fails
  // (construction is control-plane work; the packet path never throws).
  explicit Engine(const EngineConfig& cfg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Applies a new config to the running engine between bursts, keeping every flow: inside
  // prefixes, host addresses, timeouts (existing flows included), MSS clamping and the other
  // fields restart_field() allows. Returns "" on success; else the reason, and nothing changed.
  // Allocates (control-plane work): call it from the owning worker between bursts.
  std::string reconfigure(const EngineConfig& next);
  [[nodiscard]] const EngineConfig& config() const;

  // Processes up to kMaxBurst packets (more are processed in chunks). out[i] is the verdict for
  // pkts[i]; packets may be rewritten in place (translation) or turned into a reply (ICMP Time
  // Exceeded, TCP RST). Also runs bounded expiry work. now_ns is a monotonic clock.
  void process_burst(PacketBuf* const* pkts, uint32_t n, uint64_t now_ns, Result* out);

  // Packets the engine held (out-of-order fragments) that now have a verdict: released when their
  // first fragment arrived, or dropped on timeout. Call after process_burst; returns the count.
  uint32_t pop_released(PacketBuf** pkts, Result* out, uint32_t max, uint64_t now_ns);

  // Expires idle flows; at most budget flows examined. Returns flows removed.
  uint32_t expire(uint64_t now_ns, uint32_t budget);

  [[nodiscard]] const Counters& counters() const;
  [[nodiscard]] EngineStats stats() const;
  [[nodiscard]] uint64_t active_flows() const;
  [[nodiscard]] uint64_t memory_bytes() const;
  void for_each_flow(const std::function<void(const FlowView&)>& fn, uint64_t now_ns) const;

  // --- egress policy --------------------------------------------------------------------------
  // Denials since the last call (oldest first), at most max; a full buffer drops the newest and
  // counts them in denials_lost().
  uint32_t drain_denials(DenyRecord* out, uint32_t max);
  [[nodiscard]] uint64_t denials_lost() const;
  // Spare buffers for packets the engine sends in addition to the one it is given (the remote
  // host's RST when a host name is refused). Lend up to spares_wanted(); they come back through
  // pop_released() filled, or through take_spares() (shutdown).
  [[nodiscard]] uint32_t spares_wanted() const;
  void give_spare(PacketBuf* buf);
  uint32_t take_spares(PacketBuf** out, uint32_t max);
  // Hits per policy rule id (policy::CompiledPolicy::rule_name), this engine's share.
  [[nodiscard]] const std::vector<uint64_t>& rule_hits() const;

  // --- translation log -------------------------------------------------------------------------
  // While on, every flow created (locally or by the peer's sync) and every flow deleted is
  // recorded in a bounded buffer for drain_translations(); a full buffer drops the record and
  // counts it in translations_lost(). Off by default. Turning it on the first time reserves 8
  // bytes per flow record (control-plane work: call it between bursts).
  void set_translation_log(bool on);
  [[nodiscard]] bool translation_log_enabled() const;
  uint32_t drain_translations(TxLogRecord* out, uint32_t max);
  [[nodiscard]] uint64_t translations_lost() const;

  // --- connection-table sync (HA) ---------------------------------------------------------------
  // While on, every flow created, deleted (closed, expired, evicted) or refreshed (TCP state
  // change, and at most once per refresh_s of activity — within the coarse LRU requeue, so the
  // fast path pays nothing) is recorded in a bounded buffer for drain_sync(). Off by default.
  void set_sync(bool on, uint32_t refresh_s = 30);
  [[nodiscard]] bool sync_enabled() const;
  // Moves up to max records, oldest first, to out; returns the count.
  uint32_t drain_sync(SyncRecord* out, uint32_t max);
  // Records lost because the buffer was full: the peer must resync (take a full snapshot).
  [[nodiscard]] uint64_t sync_overflows() const;
  // Standby: applies a peer's record. Create/Refresh install the flow with the peer's outside
  // address and port (or refresh it: TCP state, remaining lifetime); Delete removes it. Returns
  // SyncRefusal::none or why the record was refused (no allocation: the worker counts it).
  SyncRefusal apply_sync(const SyncRecord& rec, uint64_t now_ns);
  // A full snapshot in slices (bulk resync): Create records for live flows from *cursor on, at
  // most max of them and at most scan_budget slots examined; advances *cursor, which reaches
  // snapshot_end() when the table has been walked.
  uint32_t snapshot_sync(uint32_t* cursor, SyncRecord* out, uint32_t max, uint32_t scan_budget,
                         uint64_t now_ns) const;
  [[nodiscard]] uint32_t snapshot_end() const;

  // --- kernel fast path ------------------------------------------------------------------------
  // While on, the engine offloads a flow once it may be carried without judgement (TCP: both SYNs
  // seen, no FIN or RST; UDP and ICMP echo: a reply seen; never while its policy is pending or
  // denied) and withdraws it when it closes, expires or is evicted; any reconfigure() flushes all
  // (each flow is judged again on its next packet). Turning it on or off flushes. Off by default.
  // shared: the arrays the fast path counts into (both required when on).
  void set_offload(bool on, const OffloadShared& shared = {});
  [[nodiscard]] bool offload_enabled() const;
  // Moves up to max records, oldest first, to out. After the record ring overflowed, the engine
  // stops offloading until this call hands out a Flush (all flows back to the slow path).
  uint32_t drain_offload(OffloadRecord* out, uint32_t max);
  [[nodiscard]] uint64_t offload_overflows() const;
  // Flows currently offloaded.
  [[nodiscard]] uint64_t offloaded_flows() const;
  // Takes the fast path's counts of up to budget flow records (round robin; process_burst and
  // expire() do some on every call): idle time (and HA refresh), per-flow and engine counters.
  void offload_harvest(uint32_t budget);

  // The worker that owns return traffic for a reply packet (remote -> outside) under the
  // configured RSS key and table; exposed for the glue and for tests.
  [[nodiscard]] uint16_t rss_worker(uint32_t src_ip, uint32_t dst_ip, uint16_t sport,
                                    uint16_t dport, uint8_t proto) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eipgate::engine

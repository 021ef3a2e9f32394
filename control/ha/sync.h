// Connection-table sync as pure logic over messages: the active's SyncSender batches flow events
// into sequence-numbered, authenticated datagrams (no retransmission: a lost batch is repaired by
// a bulk resync); the standby's SyncReceiver orders, deduplicates, detects gaps and asks for a
// resync. Protocol description in control/ha/README.md.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/ha/clock.h"
#include "control/ha/flow_event.h"
#include "control/ha/wire.h"

namespace eipgate::ha {

struct SyncSenderStats {
  uint64_t events = 0;     // live events queued
  uint64_t batches = 0;    // live datagrams made
  uint64_t snapshots = 0;  // bulk resyncs started
  uint64_t bulk_events = 0;
  uint64_t bulk_chunks = 0;
  uint64_t encode_failures = 0;
};

class SyncSender {
 public:
  // codec stamps boot id / message sequence and signs; it must outlive the sender.
  explicit SyncSender(Codec* codec) : codec_(codec) {}

  void set_epoch(uint64_t epoch) { epoch_ = epoch; }

  // Queues one live event; a full batch (kMaxBatchEvents) becomes a datagram at once.
  void add(const FlowEvent& event);
  // Turns the partial batch into a datagram. Call on a short timer (the config's sync flush
  // interval) and before heartbeats, so a heartbeat's sync_sent is never ahead of the datagrams.
  void flush();
  // Queues a full-table resync: the live batch is flushed first, then the snapshot in chunks
  // whose base_seq is the last live sequence sent, so the standby resumes the live stream at
  // base_seq + 1. Returns the resync id.
  uint32_t send_snapshot(std::span<const FlowEvent> flows);

  // Datagrams ready to send, oldest first; the queue is emptied.
  [[nodiscard]] std::vector<std::vector<uint8_t>> take();
  [[nodiscard]] size_t pending_datagrams() const { return out_.size(); }

  // Last sync sequence in a datagram (for heartbeats and handover requests).
  [[nodiscard]] uint64_t last_sent_seq() const { return next_seq_ - 1 - batch_.events.size(); }
  [[nodiscard]] const SyncSenderStats& stats() const { return stats_; }

 private:
  void emit(const Message& m);

  Codec* codec_;
  uint64_t epoch_ = 0;
  uint64_t next_seq_ = 1;  // sequence of the next live event
  uint32_t next_resync_id_ = 1;
  SyncBatch batch_;
  std::deque<std::vector<uint8_t>> out_;
  SyncSenderStats stats_;
};

// What the standby's flow table does with received events. A bulk resync is bracketed by
// snapshot_begin/snapshot_end: the table marks at begin and, at end, drops flows the snapshot did
// not mention (an aborted snapshot never reaches end, so nothing is dropped on partial data).
class SyncSink {
 public:
  virtual ~SyncSink() = default;
  virtual void apply(const FlowEvent& event) = 0;
  virtual void snapshot_begin(uint32_t resync_id) = 0;
  virtual void snapshot_end(uint32_t resync_id) = 0;
};

struct SyncReceiverStats {
  uint64_t applied = 0;          // live events applied
  uint64_t duplicates = 0;       // live events at or below the applied sequence
  uint64_t gaps = 0;             // missing sequences detected (each starts a resync)
  uint64_t buffered = 0;         // live events held during a resync
  uint64_t buffer_overflow = 0;  // live events dropped because the resync buffer was full
  uint64_t bulk_events = 0;
  uint64_t bulk_chunks = 0;
  uint64_t bulk_out_of_order = 0;  // a chunk missing or foreign: the resync restarts
  uint64_t snapshots_completed = 0;
  uint64_t requests = 0;  // sync requests produced
};

class SyncReceiver {
 public:
  static constexpr size_t kMaxBuffered = 1 << 16;  // live events held while a snapshot arrives

  SyncReceiver(const Clock& clock, SyncSink* sink, Millis resync_retry)
      : clock_(clock), sink_(sink), retry_(resync_retry) {}

  // Each returns a request to send to the active when one is due. `sender` is the header's boot
  // id: a new sender (another active, or the same one restarted) starts over with a full resync.
  [[nodiscard]] std::optional<SyncRequest> start();  // standby joins: full resync
  [[nodiscard]] std::optional<SyncRequest> on_batch(uint64_t sender, const SyncBatch& batch);
  [[nodiscard]] std::optional<SyncRequest> on_bulk(uint64_t sender, const SyncBulk& bulk);
  // The active's heartbeat says it sent up to sync_sent. Still ahead of us on the next heartbeat
  // means the tail of the stream was lost (no later batch would reveal the gap).
  [[nodiscard]] std::optional<SyncRequest> on_heartbeat(uint64_t sender, uint64_t sync_sent);
  // Repeats an unanswered request once resync_retry passed without progress.
  [[nodiscard]] std::optional<SyncRequest> tick();

  [[nodiscard]] uint64_t applied_seq() const { return applied_; }
  [[nodiscard]] bool in_sync() const { return mode_ == Mode::Streaming; }
  [[nodiscard]] const SyncReceiverStats& stats() const { return stats_; }
  [[nodiscard]] const std::string& last_reason() const { return reason_; }

 private:
  enum class Mode : uint8_t { Idle, Resyncing, Streaming };
  std::optional<SyncRequest> request(ResyncMode mode, std::string reason, bool force);
  std::optional<SyncRequest> check_sender(uint64_t sender);
  std::optional<SyncRequest> apply_live(uint64_t first_seq, std::span<const FlowEvent> events);
  std::optional<SyncRequest> drain_buffer();

  const Clock& clock_;
  SyncSink* sink_;
  Millis retry_;
  Mode mode_ = Mode::Idle;
  uint64_t sender_ = 0;
  uint64_t applied_ = 0;  // last live sequence applied (streaming) / snapshot base
  std::optional<Millis> last_request_;
  Millis last_progress_{0};
  // Snapshot in progress.
  bool bulk_open_ = false;
  uint32_t bulk_id_ = 0;
  uint32_t bulk_next_chunk_ = 0;
  uint64_t bulk_base_ = 0;
  // Live events that arrived during the resync: (sequence, event), applied after the snapshot.
  std::vector<std::pair<uint64_t, FlowEvent>> buffer_;
  uint64_t tail_suspect_ = 0;
  SyncReceiverStats stats_;
  std::string reason_;
};

}  // namespace eipgate::ha

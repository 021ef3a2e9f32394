// The HA link's wire format (version 2): one authenticated UDP datagram per message, fixed-width
// fields in network byte order, each bound to the receiver's current run by an echo (the
// exchange). Layout tables are in control/ha/README.md; the offsets below are the single source
// of truth for both.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "control/ha/auth.h"
#include "control/ha/clock.h"
#include "control/ha/flow_event.h"
#include "control/ha/types.h"

namespace eipgate::ha {

inline constexpr uint32_t kWireMagic = 0x45495048;  // "EIPH"
inline constexpr uint8_t kWireVersion = 2;          // both peers must run the same version
inline constexpr size_t kHeaderSize = 56;
inline constexpr size_t kMaxDatagram = 1400;  // fits any VPC path MTU with room for IP/UDP
inline constexpr size_t kMaxPayload = kMaxDatagram - kHeaderSize - kMacSize;  // 1312
// A state-changing message (heartbeat, handover request/ack) is accepted only if it echoes a time
// of ours at most this old: it was sent less than this long ago, whatever the sender's clock.
inline constexpr Millis kMaxMessageAge{2000};

enum class MessageType : uint8_t {
  Heartbeat = 1,
  SyncBatch = 2,        // live flow events, consecutive sync sequence numbers
  SyncRequest = 3,      // standby -> active: resync from a sequence, or full
  SyncBulk = 4,         // one chunk of a full-table resync
  HandoverRequest = 5,  // active -> standby: take over (planned or preemption)
  HandoverAck = 6,      // standby -> active: took over, or refused
};
[[nodiscard]] std::string_view to_string(MessageType t);

// Heartbeats and handover messages change roles: they need a fresh echo (kMaxMessageAge).
[[nodiscard]] bool changes_state(MessageType t);

// Common header (offsets): 0 magic u32, 4 version u8, 5 type u8, 6 payload length u16,
// 8 sender run id u64, 16 message sequence u64 (per run, from 1), 24 epoch u64,
// 32 sender time u64 (the sender's monotonic clock, ms), 40 echo run u64 (the receiver's run id
// as the sender last heard it; 0: none yet), 48 echo time u64 (the latest sender time the sender
// heard from that run). The HMAC-SHA256 of header + payload follows the payload.
struct Header {
  MessageType type = MessageType::Heartbeat;
  uint16_t payload_len = 0;
  uint64_t boot_id = 0;  // the sender's run id (random per start; "boot id" in older text)
  uint64_t seq = 0;
  uint64_t epoch = 0;
  uint64_t sent_ms = 0;
  uint64_t echo_run = 0;
  uint64_t echo_ms = 0;
};

// What a sender echoes: a run id of the receiver and the latest time it heard from that run.
struct Echo {
  uint64_t run = 0;
  uint64_t ms = 0;
  friend bool operator==(const Echo&, const Echo&) = default;
};

// Payload 24 bytes: 0 state u8, 1 priority u8, 2 health bits u8, 3 reserved u8, 4 reserved u32,
// 8 sync_sent u64 (active: last sync seq sent), 16 sync_applied u64 (standby: last applied).
struct Heartbeat {
  HaState state = HaState::Init;
  uint8_t priority = 0;
  uint8_t health = 0;  // kHealth* bits
  uint64_t sync_sent = 0;
  uint64_t sync_applied = 0;
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};
inline constexpr size_t kHeartbeatSize = 24;

// Payload 16 + 28*n: 0 first_seq u64, 8 count u16, 10 reserved u16, 12 reserved u32, 16 events.
// Event i carries sync sequence first_seq + i.
struct SyncBatch {
  uint64_t first_seq = 0;
  std::vector<FlowEvent> events;
  friend bool operator==(const SyncBatch&, const SyncBatch&) = default;
};
inline constexpr size_t kSyncBatchFixed = 16;
inline constexpr size_t kMaxBatchEvents = (kMaxPayload - kSyncBatchFixed) / kFlowEventWireSize;

enum class ResyncMode : uint8_t { FromSeq = 0, Full = 1 };
// Payload 16: 0 from_seq u64, 8 mode u8, 9..15 reserved.
struct SyncRequest {
  uint64_t from_seq = 0;
  ResyncMode mode = ResyncMode::Full;
  friend bool operator==(const SyncRequest&, const SyncRequest&) = default;
};
inline constexpr size_t kSyncRequestSize = 16;

// Payload 24 + 28*n: 0 resync_id u32, 4 chunk index u32, 8 base_seq u64 (the live stream resumes
// at base_seq + 1), 16 count u16, 18 flags u16 (bit 0: last chunk), 20 reserved u32, 24 events.
struct SyncBulk {
  uint32_t resync_id = 0;
  uint32_t chunk = 0;
  uint64_t base_seq = 0;
  bool last = false;
  std::vector<FlowEvent> events;
  friend bool operator==(const SyncBulk&, const SyncBulk&) = default;
};
inline constexpr size_t kSyncBulkFixed = 24;
inline constexpr size_t kMaxBulkEvents = (kMaxPayload - kSyncBulkFixed) / kFlowEventWireSize;

// Payload 16: 0 request id u32, 4 reserved u32, 8 sync_sent u64.
struct HandoverRequest {
  uint32_t id = 0;
  uint64_t sync_sent = 0;
  friend bool operator==(const HandoverRequest&, const HandoverRequest&) = default;
};
inline constexpr size_t kHandoverRequestSize = 16;

// Payload 8: 0 request id u32, 4 accepted u8, 5..7 reserved.
struct HandoverAck {
  uint32_t id = 0;
  bool accepted = false;
  friend bool operator==(const HandoverAck&, const HandoverAck&) = default;
};
inline constexpr size_t kHandoverAckSize = 8;

using Message =
    std::variant<Heartbeat, SyncBatch, SyncRequest, SyncBulk, HandoverRequest, HandoverAck>;

// Why a datagram was dropped: one list for the enum, its names and the counters.
#define EIPGATE_HA_DROP_REASONS(X)                                                      \
  X(too_short, "shorter than header + MAC")                                             \
  X(too_long, "longer than the largest datagram (over 2048: by the socket)")            \
  X(bad_magic, "not an eipgate HA message")                                             \
  X(bad_version, "unsupported wire version")                                            \
  X(length_mismatch, "payload length field disagrees with datagram size")               \
  X(bad_mac, "HMAC does not verify (wrong key or altered)")                             \
  X(unknown_type, "unknown message type")                                               \
  X(bad_payload, "payload malformed for its type")                                      \
  X(own_message, "carries our own run id (reflected)")                                  \
  X(stale_incarnation, "from a peer run we have replaced")                              \
  X(unbound, "does not echo our current run (sent before our restart or the exchange)") \
  X(expired, "echo older than the validity time (delayed or replayed)")                 \
  X(replay, "sequence number already seen")                                             \
  X(too_old, "sequence number left of the replay window")                               \
  X(unknown_source, "from an address that is not a configured peer")

enum class DropReason : uint8_t {
#define EIPGATE_HA_X(name, text) name,
  EIPGATE_HA_DROP_REASONS(EIPGATE_HA_X)
#undef EIPGATE_HA_X
      count
};
inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::count);
[[nodiscard]] std::string_view to_string(DropReason r);    // "bad_mac"
[[nodiscard]] std::string_view description(DropReason r);  // "HMAC does not verify ..."

struct DropCounters {
  std::array<uint64_t, kDropReasonCount> by_reason{};
  uint64_t accepted = 0;
  void count(DropReason r, uint64_t n = 1) { by_reason[static_cast<size_t>(r)] += n; }
  [[nodiscard]] uint64_t operator[](DropReason r) const {
    return by_reason[static_cast<size_t>(r)];
  }
  [[nodiscard]] uint64_t dropped() const;
};

struct Decoded {
  Header header;
  Message message;
};

// What a Codec holds of the current sender run (namespace scope: a nested class with member
// initialisers is not yet default-constructible inside its enclosing class for clang).
struct SenderRun {
  uint64_t run = 0;
  ReplayWindow window;
  uint64_t echo_ms = 0;  // the latest sender time heard from this run
  Millis heard{0};       // when we last took a message of this run in (accepted or not)
};

// Encodes, signs and decodes the messages of one local run with one peer. Stamps each outgoing
// message with our run id, the next message sequence number, our clock and the echo; holds what
// we know of the peer's runs. Not thread-safe.
//
// The exchange (README "Replays and the exchange"): a message is accepted only if it echoes our
// current run id (so nothing sent before our restart is ever accepted), and a state-changing one
// only if its echoed time is at most max_age old on our clock. A new sender run becomes the
// current one only with such a fresh message; the run it replaces is refused from then on. Each
// run's sequence numbers pass the replay window once. After a datagram that did not echo us (or
// echoed us too long ago), and after switching to a new sender run, answer_due() asks the caller
// to send a heartbeat at once so the peer learns our run and time within a round trip.
class Codec {
 public:
  Codec(Authenticator* auth, uint64_t own_run_id, const Clock& clock = default_clock(),
        Millis max_age = kMaxMessageAge)
      : auth_(auth), boot_id_(own_run_id), clock_(clock), max_age_(max_age) {}

  // Writes the datagram into out and returns its size; 0 when it does not fit (a batch over
  // kMax*Events, or out too small) or signing failed.
  [[nodiscard]] size_t encode(const Message& message, uint64_t epoch, std::span<uint8_t> out);
  [[nodiscard]] std::vector<uint8_t> encode(const Message& message, uint64_t epoch);

  // Checks in order: size, magic, version, length, HMAC, type, payload, origin, sender run,
  // binding, freshness, replay. Records the sequence only for a message that authenticated and
  // parsed and comes from the current sender run; counts every outcome.
  [[nodiscard]] std::optional<Decoded> decode(std::span<const uint8_t> datagram,
                                              DropReason* why = nullptr);

  // True once after a datagram that calls for an immediate heartbeat (see above); rate limited
  // to one per sender run per kAnswerInterval.
  [[nodiscard]] bool take_answer_due();
  // What the next message echoes: the current sender run while we hear it, else the last run
  // that reached us without echoing us (the exchange with a restarted peer).
  [[nodiscard]] Echo echo() const;
  [[nodiscard]] std::optional<uint64_t> peer_run() const {
    return peer_ ? std::optional<uint64_t>(peer_->run) : std::nullopt;
  }

  [[nodiscard]] const DropCounters& counters() const { return counters_; }
  DropCounters& counters() { return counters_; }
  [[nodiscard]] uint64_t boot_id() const { return boot_id_; }
  [[nodiscard]] uint64_t last_seq() const { return seq_; }

  static constexpr Millis kAnswerInterval{50};
  static constexpr size_t kRetiredRuns = 8;

 private:
  using Peer = SenderRun;
  void note_unaccepted(const Header& h, Millis now);
  void answer(uint64_t run, Millis now);
  [[nodiscard]] bool retired(uint64_t run) const;

  Authenticator* auth_;
  uint64_t boot_id_;
  const Clock& clock_;
  Millis max_age_;
  uint64_t seq_ = 0;
  DropCounters counters_;
  std::optional<Peer> peer_;                      // the current sender run
  std::array<uint64_t, kRetiredRuns> retired_{};  // runs replaced by a newer one (ring)
  size_t retired_next_ = 0;
  std::optional<Echo> candidate_;  // the last run that did not echo us, for the exchange
  std::array<std::pair<uint64_t, Millis>, 8> answered_{};  // rate limit per sender run
  bool answer_due_ = false;
};

// Header parse without authentication, for tests and tools (nullopt if too short / bad magic).
[[nodiscard]] std::optional<Header> peek_header(std::span<const uint8_t> datagram);

}  // namespace eipgate::ha

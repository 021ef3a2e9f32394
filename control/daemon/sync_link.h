// The control side of the dataplane's sync socket: a unix SOCK_SEQPACKET connection carrying
// flow events both ways (contract in control/daemon/README.md). Non-blocking, driven by the
// daemon's poll loop; reconnects are the caller's job.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "control/ha/flow_event.h"

namespace eipgate::control {

enum class SyncPacketType : uint8_t {
  Events = 1,           // both ways: flow events
  SnapshotRequest = 2,  // control -> dataplane
  SnapshotBegin = 3,    // dataplane -> control
  SnapshotEnd = 4,      // dataplane -> control
};

inline constexpr size_t kSyncPacketHeader = 8;
inline constexpr size_t kSyncPacketMaxEvents = 64;
inline constexpr size_t kSyncPacketMax =
    kSyncPacketHeader + kSyncPacketMaxEvents * ha::kFlowEventWireSize;

// One packet: header {u8 type, u8 version=1, u16 count (network order), u32 reserved} + records.
[[nodiscard]] std::vector<uint8_t> encode_sync_packet(SyncPacketType type,
                                                      std::span<const ha::FlowEvent> events);
struct SyncPacket {
  SyncPacketType type = SyncPacketType::Events;
  std::vector<ha::FlowEvent> events;
};
// False for a malformed packet (bad version, size not matching count, unknown kind).
[[nodiscard]] bool decode_sync_packet(std::span<const uint8_t> bytes, SyncPacket* out);

struct SyncLinkStats {
  uint64_t packets_in = 0;
  uint64_t events_in = 0;
  uint64_t packets_out = 0;
  uint64_t events_out = 0;
  uint64_t malformed = 0;
  uint64_t connects = 0;
  uint64_t dropped_out = 0;  // queue overflow while disconnected or stuck
};

class SyncLink {
 public:
  explicit SyncLink(std::string path) : path_(std::move(path)) {}
  ~SyncLink();
  SyncLink(const SyncLink&) = delete;
  SyncLink& operator=(const SyncLink&) = delete;

  // Connects if not connected; false (and *error) when the socket is not there yet.
  bool ensure_connected(std::string* error);
  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool wants_write() const { return !out_.empty(); }
  void close();

  // Queues events to apply (64 per packet) or a snapshot request.
  void send_events(std::span<const ha::FlowEvent> events);
  void request_snapshot();
  // Writes queued packets until the socket would block; false when the connection broke.
  bool flush();
  // Reads every packet available and hands each to `on_packet`; false when the connection broke.
  bool read(const std::function<void(const SyncPacket&)>& on_packet);

  [[nodiscard]] const SyncLinkStats& stats() const { return stats_; }
  [[nodiscard]] size_t queued() const { return out_.size(); }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  static constexpr size_t kMaxQueued = 1 << 16;  // packets (4M events) before dropping
  void enqueue(std::vector<uint8_t> packet, size_t events);

  std::string path_;
  int fd_ = -1;
  std::deque<std::vector<uint8_t>> out_;
  SyncLinkStats stats_;
};

}  // namespace eipgate::control

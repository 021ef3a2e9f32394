// The control side of the dataplane's sync socket: a unix SOCK_SEQPACKET connection carrying
// flow records both ways (contract and codec in proto/). Non-blocking, driven by the
// daemon's poll loop; reconnects are the caller's job.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "control/ha/flow_event.h"
#include "proto/sync.h"

namespace eipgate::control {

// The packet framing and codec are proto/'s (proto/README.md); these are the daemon's names.
using SyncPacketType = proto::PacketType;
inline constexpr size_t kSyncPacketHeader = proto::kHeaderSize;
inline constexpr size_t kSyncPacketMaxEvents = proto::kMaxRecordsPerPacket;
inline constexpr size_t kSyncPacketMax = proto::kMaxPacketSize;

// One packet of at most kSyncPacketMaxEvents events.
[[nodiscard]] std::vector<uint8_t> encode_sync_packet(SyncPacketType type,
                                                      std::span<const ha::FlowEvent> events);
struct SyncPacket {
  SyncPacketType type = SyncPacketType::Events;
  std::vector<ha::FlowEvent> events;
};
// All or nothing: anything but Ok leaves *out unspecified (the reason names the defect).
[[nodiscard]] proto::SyncError decode_sync_packet(std::span<const uint8_t> bytes, SyncPacket* out);

struct SyncLinkStats {
  uint64_t packets_in = 0;
  uint64_t events_in = 0;
  uint64_t packets_out = 0;
  uint64_t events_out = 0;
  uint64_t malformed = 0;
  std::array<uint64_t, proto::kSyncErrorCount> malformed_by_reason{};  // by proto::SyncError
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

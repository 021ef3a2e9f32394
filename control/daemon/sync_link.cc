// The dataplane sync socket client: a non-blocking SOCK_SEQPACKET connection (codec: proto/).
#include "control/daemon/sync_link.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace eipgate::control {

std::vector<uint8_t> encode_sync_packet(SyncPacketType type,
                                        std::span<const ha::FlowEvent> events) {
  std::vector<uint8_t> p(kSyncPacketHeader + events.size() * proto::kRecordSize);
  p.resize(proto::encode_packet(type, events, p));  // 0 (empty) past kSyncPacketMaxEvents
  return p;
}

proto::SyncError decode_sync_packet(std::span<const uint8_t> bytes, SyncPacket* out) {
  std::array<ha::FlowEvent, proto::kMaxRecordsPerPacket> records;
  size_t count = 0;
  const proto::SyncError e = proto::decode_packet(bytes, &out->type, records, &count);
  if (e == proto::SyncError::Ok) out->events.assign(records.begin(), records.begin() + count);
  return e;
}

SyncLink::~SyncLink() { close(); }

void SyncLink::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool SyncLink::ensure_connected(std::string* error) {
  if (fd_ >= 0) return true;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sa.sun_path) {
    *error = "sync socket path too long: " + path_;
    return false;
  }
  std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    *error = "cannot connect to " + path_ + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  fd_ = fd;
  ++stats_.connects;
  return true;
}

void SyncLink::enqueue(std::vector<uint8_t> packet, size_t events) {
  if (out_.size() >= kMaxQueued) {
    stats_.dropped_out += events;
    return;
  }
  out_.push_back(std::move(packet));
}

void SyncLink::send_events(std::span<const ha::FlowEvent> events) {
  for (size_t i = 0; i < events.size(); i += kSyncPacketMaxEvents) {
    const auto part = events.subspan(i, std::min(kSyncPacketMaxEvents, events.size() - i));
    enqueue(encode_sync_packet(SyncPacketType::Events, part), part.size());
  }
}

void SyncLink::request_snapshot() {
  enqueue(encode_sync_packet(SyncPacketType::SnapshotRequest, {}), 0);
}

bool SyncLink::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    const auto& p = out_.front();
    const ssize_t n = ::send(fd_, p.data(), p.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      close();
      return false;
    }
    ++stats_.packets_out;
    stats_.events_out += (p.size() - kSyncPacketHeader) / ha::kFlowEventWireSize;
    out_.pop_front();
  }
  return true;
}

bool SyncLink::read(const std::function<void(const SyncPacket&)>& on_packet) {
  uint8_t buf[kSyncPacketMax + 16];
  SyncPacket packet;
  while (fd_ >= 0) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      close();
      return false;
    }
    if (n == 0) {  // the dataplane closed the connection
      close();
      return false;
    }
    const proto::SyncError e =
        decode_sync_packet(std::span<const uint8_t>(buf, static_cast<size_t>(n)), &packet);
    if (e != proto::SyncError::Ok) {
      ++stats_.malformed;
      ++stats_.malformed_by_reason[static_cast<size_t>(e)];
      continue;
    }
    ++stats_.packets_in;
    stats_.events_in += packet.events.size();
    on_packet(packet);
  }
  return false;
}

}  // namespace eipgate::control

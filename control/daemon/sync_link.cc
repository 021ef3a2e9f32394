// The dataplane sync socket client: packet codec and a non-blocking SOCK_SEQPACKET connection.
#include "control/daemon/sync_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eipgate::control {

std::vector<uint8_t> encode_sync_packet(SyncPacketType type,
                                        std::span<const ha::FlowEvent> events) {
  std::vector<uint8_t> p(kSyncPacketHeader + events.size() * ha::kFlowEventWireSize, 0);
  p[0] = static_cast<uint8_t>(type);
  p[1] = 1;
  const uint16_t count = htons(static_cast<uint16_t>(events.size()));
  std::memcpy(&p[2], &count, sizeof count);
  for (size_t i = 0; i < events.size(); ++i) {
    ha::encode_flow_event(events[i], std::span<uint8_t, ha::kFlowEventWireSize>(
                                         p.data() + kSyncPacketHeader + i * ha::kFlowEventWireSize,
                                         ha::kFlowEventWireSize));
  }
  return p;
}

bool decode_sync_packet(std::span<const uint8_t> bytes, SyncPacket* out) {
  if (bytes.size() < kSyncPacketHeader || bytes[1] != 1) return false;
  const uint8_t type = bytes[0];
  if (type < 1 || type > 4) return false;
  uint16_t count = 0;
  std::memcpy(&count, &bytes[2], sizeof count);
  count = ntohs(count);
  if (count > kSyncPacketMaxEvents ||
      bytes.size() != kSyncPacketHeader + size_t{count} * ha::kFlowEventWireSize) {
    return false;
  }
  out->type = static_cast<SyncPacketType>(type);
  out->events.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (!ha::decode_flow_event(std::span<const uint8_t, ha::kFlowEventWireSize>(
                                   bytes.data() + kSyncPacketHeader + i * ha::kFlowEventWireSize,
                                   ha::kFlowEventWireSize),
                               &out->events[i])) {
      return false;
    }
  }
  return true;
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
    if (!decode_sync_packet(std::span<const uint8_t>(buf, static_cast<size_t>(n)), &packet)) {
      ++stats_.malformed;
      continue;
    }
    ++stats_.packets_in;
    stats_.events_in += packet.events.size();
    on_packet(packet);
  }
  return false;
}

}  // namespace eipgate::control

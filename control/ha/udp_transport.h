// A thin non-blocking UDP socket for the HA link (IPv4): send one or many datagrams, receive with
// a timeout. Knows nothing about the message format; the Codec authenticates what arrives.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace eipgate::ha {

struct Endpoint {
  uint32_t address = 0;  // IPv4, host order
  uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
[[nodiscard]] std::string to_string(const Endpoint& e);  // "10.0.0.6:7410"

struct Datagram {
  Endpoint from;
  std::vector<uint8_t> bytes;
};

class UdpTransport {
 public:
  // Binds address:port (port 0: any free port, see local()). nullopt with *error on failure.
  static std::optional<UdpTransport> open(Endpoint bind, std::string* error);

  UdpTransport(UdpTransport&& other) noexcept
      : fd_(other.fd_), local_(other.local_), oversized_(other.oversized_) {
    other.fd_ = -1;
  }
  UdpTransport& operator=(UdpTransport&& other) noexcept;
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;
  ~UdpTransport();

  [[nodiscard]] Endpoint local() const { return local_; }
  [[nodiscard]] int fd() const { return fd_; }  // for the daemon's poll loop

  // False when the kernel refused it (e.g. buffer full: the datagram is lost, as UDP may).
  bool send(const Endpoint& to, std::span<const uint8_t> bytes);
  // Sends many with one sendmmsg() call per up to 64 datagrams; returns how many were sent.
  size_t send_many(const Endpoint& to, std::span<const std::vector<uint8_t>> datagrams);
  // Waits up to timeout_ms (0: don't wait) for one datagram.
  std::optional<Datagram> receive(int timeout_ms);
  // Receives up to `max` already queued datagrams with recvmmsg() (waits up to timeout_ms for the
  // first). Datagrams longer than max_size are dropped and counted (oversized()); none is ever
  // returned truncated.
  std::vector<Datagram> receive_many(size_t max, int timeout_ms, size_t max_size = 2048);
  // Datagrams dropped for being longer than receive_many's max_size, since the last take.
  [[nodiscard]] uint64_t oversized() const { return oversized_; }
  uint64_t take_oversized() { return std::exchange(oversized_, 0); }

  // Kernel socket buffer sizes (SO_RCVBUF/SO_SNDBUF), for bulk resync bursts.
  bool set_buffer_sizes(int bytes);

 private:
  UdpTransport(int fd, Endpoint local) : fd_(fd), local_(local) {}
  bool wait_readable(int timeout_ms) const;
  int fd_ = -1;
  Endpoint local_;
  uint64_t oversized_ = 0;
};

}  // namespace eipgate::ha

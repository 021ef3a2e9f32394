// UdpTransport over POSIX sockets (sendmmsg/recvmmsg for batches).
#include "control/ha/udp_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eipgate::ha {
namespace {

sockaddr_in to_sockaddr(const Endpoint& e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(e.address);
  sa.sin_port = htons(e.port);
  return sa;
}

Endpoint from_sockaddr(const sockaddr_in& sa) {
  return Endpoint{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

}  // namespace

std::string to_string(const Endpoint& e) {
  char text[INET_ADDRSTRLEN] = {};
  const in_addr a{htonl(e.address)};
  inet_ntop(AF_INET, &a, text, sizeof text);
  return std::string(text) + ":" + std::to_string(e.port);
}

std::optional<UdpTransport> UdpTransport::open(Endpoint bind, std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<UdpTransport> {
    if (error != nullptr) *error = what + ": " + std::strerror(errno);
    return std::nullopt;
  };
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  const sockaddr_in sa = to_sockaddr(bind);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return fail("bind " + to_string(bind));
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return fail("getsockname");
  }
  return UdpTransport(fd, from_sockaddr(local));
}

UdpTransport& UdpTransport::operator=(UdpTransport&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    local_ = other.local_;
    oversized_ = other.oversized_;
    other.fd_ = -1;
  }
  return *this;
}

UdpTransport::~UdpTransport() {
  if (fd_ >= 0) ::close(fd_);
}

bool UdpTransport::set_buffer_sizes(int bytes) {
  return ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0 &&
         ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == 0;
}

bool UdpTransport::send(const Endpoint& to, std::span<const uint8_t> bytes) {
  const sockaddr_in sa = to_sockaddr(to);
  for (;;) {
    const ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), 0,
                               reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(bytes.size());
  }
}

size_t UdpTransport::send_many(const Endpoint& to,
                               std::span<const std::vector<uint8_t>> datagrams) {
  constexpr size_t kBatch = 64;
  sockaddr_in sa = to_sockaddr(to);
  size_t sent = 0;
  while (sent < datagrams.size()) {
    const size_t n = std::min(kBatch, datagrams.size() - sent);
    iovec iov[kBatch];
    mmsghdr msgs[kBatch];
    std::memset(msgs, 0, sizeof(mmsghdr) * n);
    for (size_t i = 0; i < n; ++i) {
      const auto& d = datagrams[sent + i];
      iov[i].iov_base = const_cast<uint8_t*>(d.data());
      iov[i].iov_len = d.size();
      msgs[i].msg_hdr.msg_name = &sa;
      msgs[i].msg_hdr.msg_namelen = sizeof sa;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::sendmmsg(fd_, msgs, static_cast<unsigned>(n), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    sent += static_cast<size_t>(r);
  }
  return sent;
}

bool UdpTransport::wait_readable(int timeout_ms) const {
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & POLLIN) != 0;
  }
}

std::optional<Datagram> UdpTransport::receive(int timeout_ms) {
  auto got = receive_many(1, timeout_ms);
  if (got.empty()) return std::nullopt;
  return std::move(got.front());
}

std::vector<Datagram> UdpTransport::receive_many(size_t max, int timeout_ms, size_t max_size) {
  std::vector<Datagram> out;
  if (max == 0 || !wait_readable(timeout_ms)) return out;
  constexpr size_t kBatch = 64;
  max = std::min(max, kBatch);
  std::vector<uint8_t> storage(max * max_size);
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  sockaddr_in from[kBatch];
  std::memset(msgs, 0, sizeof(mmsghdr) * max);
  for (size_t i = 0; i < max; ++i) {
    iov[i].iov_base = storage.data() + i * max_size;
    iov[i].iov_len = max_size;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int r = 0;
  do {
    r = ::recvmmsg(fd_, msgs, static_cast<unsigned>(max), MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  for (int i = 0; i < r; ++i) {
    if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      ++oversized_;  // longer than max_size: the rest was cut off by the kernel
      continue;
    }
    const uint8_t* base = storage.data() + static_cast<size_t>(i) * max_size;
    out.push_back(
        Datagram{from_sockaddr(from[i]), std::vector<uint8_t>(base, base + msgs[i].msg_len)});
  }
  return out;
}

}  // namespace eipgate::ha

// The admin socket server: the poll() loop over the common root-only listener
// (common/unix_socket_server.h, which owns socket setup and peer checks); see admin_server.h.
#include "dataplane/admin/admin_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

#include "common/log.h"

namespace eipgate::admin {

namespace {

// Bytes read per read() call. The request buffer therefore peaks at kMaxRequestBytes plus this.
constexpr std::size_t kReadChunk = std::size_t{16} * 1024;

[[noreturn]] void fail(int err, const std::string& path, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "admin socket " + path + ": " + what);
}

// Best effort: the peer is a root-only CLI reading our answer; if its buffer is full, it loses
// the explanation, not the refusal.
void send_and_close(int fd, const std::string& message) {
  std::string line = response_line(error_response(message));
  (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

struct Client {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_off = 0;
  bool peer_eof = false;
  bool close_after_flush = false;
  bool dead = false;

  [[nodiscard]] bool pending_out() const { return out_off < out.size(); }
};

// Writes what the socket takes now. Returns false when the connection is gone.
bool flush(Client& c) {
  while (c.pending_out()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.out_off += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.out_off = 0;
  return true;
}

// Serves queued requests one at a time: the next is read only once the previous answer has left,
// so a client that pipelines requests but never reads cannot grow our buffers.
void pump(Client& c, AdminHandler& handler, const std::string& version) {
  for (;;) {
    if (!flush(c)) {
      c.dead = true;
      return;
    }
    if (c.pending_out()) return;  // wait for POLLOUT
    if (c.close_after_flush) {
      c.dead = true;
      return;
    }
    std::string line;
    if (auto nl = c.in.find('\n'); nl != std::string::npos) {
      line = c.in.substr(0, nl);
      c.in.erase(0, nl + 1);
    } else if (c.in.size() > kMaxRequestBytes) {
      // Resynchronising would mean reading an unbounded line to its end; closing is simpler and
      // costs a well-behaved client nothing.
      c.out =
          response_line(error_response("request longer than " + std::to_string(kMaxRequestBytes) +
                                       " bytes; closing the connection"));
      c.in.clear();
      c.close_after_flush = true;
      continue;
    } else if (c.peer_eof && !c.in.empty()) {
      line = std::move(c.in);  // a last request without its newline (echo -n | socat)
      c.in.clear();
    } else if (c.peer_eof) {
      c.close_after_flush = true;
      continue;
    } else {
      return;  // need more input
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > kMaxRequestBytes) {
      c.out =
          response_line(error_response("request longer than " + std::to_string(kMaxRequestBytes) +
                                       " bytes; closing the connection"));
      c.close_after_flush = true;
      continue;
    }
    c.out = response_line(handle_request(handler, line, version));
  }
}

void read_some(Client& c) {
  char buf[kReadChunk];
  ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n > 0) {
    c.in.append(buf, static_cast<std::size_t>(n));
  } else if (n == 0) {
    c.peer_eof = true;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    c.dead = true;
  }
}

}  // namespace

AdminServer::AdminServer(std::string socket_path, AdminHandler& handler, std::string version)
    : path_(std::move(socket_path)), handler_(handler), version_(std::move(version)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  if (thread_.joinable()) fail(EALREADY, path_, "already started");
  UnixSocketOptions options;
  options.allowed_uid = allowed_uid_;
  UnixSocketError err;
  if (!server_.listen(path_, options, &err)) {
    throw std::system_error(err.code, std::generic_category(), "admin socket " + err.message);
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int e = errno;
    server_.close();
    fail(e, path_, "eventfd");
  }
  thread_ = std::thread([this] { serve(); });
  log::get()->info("admin socket listening on {}", path_);
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  ::close(wake_fd_);
  wake_fd_ = -1;
  server_.close();  // removes the file only if it is still the one we bound
}

void AdminServer::serve() {
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  // Out of file descriptors, the listening socket stays readable and accept keeps failing;
  // polling it would spin, so it is left out for a second at a time instead.
  bool accept_paused = false;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({server_.fd(), static_cast<short>(accept_paused ? 0 : POLLIN), 0});
    for (const Client& c : clients) {
      short events = 0;
      if (c.pending_out()) {
        events = POLLOUT;
      } else if (!c.peer_eof && !c.close_after_flush) {
        events = POLLIN;
      }
      fds.push_back({c.fd, events, 0});
    }
    const int timeout_ms = accept_paused ? 1000 : -1;
    accept_paused = false;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      log::get()->error("admin socket {}: poll: {}", path_, std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // stop()

    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const short rev = fds[i + 2].revents;
      if (rev == 0) continue;
      if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c.pending_out()) read_some(c);
      if (!c.dead) pump(c, handler_, version_);
    }
    std::erase_if(clients, [](const Client& c) {
      if (c.dead) ::close(c.fd);
      return c.dead;
    });

    if (fds[1].revents & POLLIN) {
      for (;;) {
        const UnixSocketPeer peer = server_.accept();
        if (peer.kind == UnixSocketPeer::Kind::none) {
          const int e = peer.error;
          if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            log::get()->warn("admin socket {}: accept: {}", path_, std::strerror(e));
            accept_paused = true;
          }
          break;  // EAGAIN, or a connection that vanished before we took it
        }
        if (peer.kind == UnixSocketPeer::Kind::refused) {
          if (peer.uid == static_cast<uid_t>(-1)) {
            send_and_close(peer.refused_fd, "permission denied: cannot read peer credentials");
            continue;
          }
          log::get()->warn("admin socket {}: refused uid {} (pid {})", path_, peer.uid, peer.pid);
          send_and_close(peer.refused_fd, "permission denied: uid " + std::to_string(peer.uid) +
                                              " may not use the admin socket (only uid " +
                                              std::to_string(allowed_uid_) + ")");
          continue;
        }
        if (clients.size() >= static_cast<std::size_t>(kMaxClients)) {
          send_and_close(peer.fd, "too many admin connections; try again");
          continue;
        }
        Client c;
        c.fd = peer.fd;
        clients.push_back(std::move(c));
      }
    }
  }
  for (const Client& c : clients) ::close(c.fd);
}

}  // namespace eipgate::admin

// The admin socket server: socket setup, peer checks and the poll() loop; see admin_server.h.
#include "dataplane/admin/admin_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

sockaddr_un make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Creates each missing directory above the socket with mode 0700 (explicitly, not through the
// umask), so only root can even reach the socket. Existing directories are left alone: the path
// may be configured under a shared directory whose mode is not ours to change.
void make_parent_dirs(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::vector<std::filesystem::path> missing;
  for (auto p = parent; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) fail(ENOTDIR, path, p.string() + " is not a directory");
      break;
    }
    if (errno != ENOENT) fail(errno, path, "stat " + p.string());
    missing.insert(missing.begin(), p);  // outermost first
  }
  for (const auto& dir : missing) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      fail(errno, path, "mkdir " + dir.string());
    }
    if (::chmod(dir.c_str(), 0700) != 0) fail(errno, path, "chmod 0700 " + dir.string());
  }
}

// A socket file left by a process that died is removed; one a live process still serves is not
// (two dataplanes must not share one admin path), and neither is anything that is not a socket.
void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail(errno, path, "lstat");
  }
  if (!S_ISSOCK(st.st_mode)) fail(EEXIST, path, "exists and is not a socket; not removing it");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errno, path, "socket");
  sockaddr_un addr = make_addr(path);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0) fail(EADDRINUSE, path, "another process is serving it");
  if (err != ECONNREFUSED && err != ENOENT) fail(err, path, "probing existing socket");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail(errno, path, "removing stale socket");
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
  if (path_.empty() || path_.size() >= sizeof(sockaddr_un::sun_path)) {
    fail(ENAMETOOLONG, path_,
         "path must be 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  make_parent_dirs(path_);
  remove_stale_socket(path_);

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) fail(errno, path_, "socket");
  auto cleanup_and_fail = [this](const char* what) {
    int err = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    fail(err, path_, what);
  };
  sockaddr_un addr = make_addr(path_);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    cleanup_and_fail("bind");
  }
  // Between bind and chmod the file has umask permissions; the 0700 directory above it covers
  // that window, and SO_PEERCRED is checked on every connection regardless.
  if (::chmod(path_.c_str(), 0600) != 0) {
    ::unlink(path_.c_str());
    cleanup_and_fail("chmod 0600");
  }
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    ::unlink(path_.c_str());
    cleanup_and_fail("lstat after bind");
  }
  bound_dev_ = st.st_dev;
  bound_ino_ = st.st_ino;
  if (::listen(listen_fd_, 16) != 0) {
    ::unlink(path_.c_str());
    cleanup_and_fail("listen");
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ::unlink(path_.c_str());
    cleanup_and_fail("eventfd");
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
  // Remove the file only if it is still the one we bound: a successor may already own the path.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == bound_dev_ && st.st_ino == bound_ino_) {
    ::unlink(path_.c_str());
  }
  ::close(listen_fd_);
  listen_fd_ = -1;
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
    fds.push_back({listen_fd_, static_cast<short>(accept_paused ? 0 : POLLIN), 0});
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
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log::get()->warn("admin socket {}: accept: {}", path_, std::strerror(errno));
            accept_paused = true;
          }
          break;  // EAGAIN, or a connection that vanished before we took it
        }
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
          send_and_close(fd, "permission denied: cannot read peer credentials");
          continue;
        }
        if (cred.uid != allowed_uid_) {
          log::get()->warn("admin socket {}: refused uid {} (pid {})", path_, cred.uid, cred.pid);
          send_and_close(fd, "permission denied: uid " + std::to_string(cred.uid) +
                                 " may not use the admin socket (only uid " +
                                 std::to_string(allowed_uid_) + ")");
          continue;
        }
        if (clients.size() >= static_cast<std::size_t>(kMaxClients)) {
          send_and_close(fd, "too many admin connections; try again");
          continue;
        }
        Client c;
        c.fd = fd;
        clients.push_back(std::move(c));
      }
    }
  }
  for (const Client& c : clients) ::close(c.fd);
}

}  // namespace eipgate::admin

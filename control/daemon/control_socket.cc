// eipgate-control's admin socket server (JSON lines over a root-only unix stream socket).
#include "control/daemon/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace eipgate::control {

namespace {
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kMaxClients = 16;

nlohmann::json error_answer(const std::string& what) { return {{"ok", false}, {"error", what}}; }
}  // namespace

ControlSocket::~ControlSocket() { stop(); }

bool ControlSocket::start(const std::string& path, std::string* error) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    *error = "control socket path too long: " + path;
    return false;
  }
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      *error = "cannot create " + dir.string() + ": " + ec.message();
      return false;
    }
    ::chmod(dir.c_str(), 0700);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = path + " exists and is not a socket";
      return false;
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&sa),
                                              sizeof sa) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      *error = path + " is in use (another eipgate-control running?)";
      return false;
    }
    ::unlink(path.c_str());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // No window in which another user could connect: the umask keeps the file 0600 from bind on.
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  ::umask(old_mask);
  if (rc != 0 || ::chmod(path.c_str(), 0600) != 0 || ::listen(fd, 16) != 0) {
    *error = "cannot listen on " + path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (::stat(path.c_str(), &st) == 0) inode_ = st.st_ino;
  listen_fd_ = fd;
  path_ = path;
  return true;
}

void ControlSocket::stop() {
  for (auto& c : clients_) ::close(c.fd);
  clients_.clear();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    struct stat st{};
    if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
  }
}

void ControlSocket::poll_set(std::vector<int>* fds, std::vector<bool>* want_write) const {
  if (listen_fd_ < 0) return;
  fds->push_back(listen_fd_);
  want_write->push_back(false);
  for (const auto& c : clients_) {
    fds->push_back(c.fd);
    want_write->push_back(!c.out.empty());
  }
}

void ControlSocket::on_ready(int fd, short revents) {
  if (fd == listen_fd_) {
    accept_clients();
    return;
  }
  for (auto& c : clients_) {
    if (c.fd != fd) continue;
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 || (revents & POLLOUT) != 0) serve(c);
    break;
  }
  drop_closed();
}

void ControlSocket::accept_clients() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Client c;
    c.fd = fd;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != allowed_uid_) {
      c.out = error_answer("permission denied: uid " + std::to_string(cred.uid) +
                           " may not use the control socket (root only)")
                  .dump() +
              "\n";
      c.close_after_write = true;
    } else if (clients_.size() >= kMaxClients) {
      c.out = error_answer("too many control connections; try again").dump() + "\n";
      c.close_after_write = true;
    }
    clients_.push_back(std::move(c));
    serve(clients_.back());
    drop_closed();
  }
}

void ControlSocket::serve(Client& c) {
  if (!c.close_after_write) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > kMaxLine && c.in.find('\n') == std::string::npos) {
          c.out += error_answer("request line over 64 KiB").dump() + "\n";
          c.close_after_write = true;
          break;
        }
        continue;
      }
      if (n == 0) {  // half-close: answer what is there, then close
        if (!c.in.empty()) c.in += '\n';
        answer_lines(c);
        c.close_after_write = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ::close(c.fd);
        c.fd = -1;
        return;
      }
      break;
    }
    answer_lines(c);
  }
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    ::close(c.fd);
    c.fd = -1;
    return;
  }
  if (c.close_after_write) {
    ::close(c.fd);
    c.fd = -1;
  }
}

void ControlSocket::answer_lines(Client& c) {
  for (size_t nl; (nl = c.in.find('\n')) != std::string::npos;) {
    const std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json answer;
    try {
      const auto req = nlohmann::json::parse(line);
      if (!req.is_object() || !req.contains("cmd") || !req["cmd"].is_string()) {
        answer = error_answer("expected {\"cmd\": \"...\", \"args\": {...}}");
      } else {
        const nlohmann::json args = req.contains("args") && !req["args"].is_null()
                                        ? req["args"]
                                        : nlohmann::json::object();
        answer = handler_(req["cmd"].get<std::string>(), args);
      }
    } catch (const std::exception& e) {
      answer = error_answer(std::string("bad request: ") + e.what());
    }
    c.out += answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
}

void ControlSocket::drop_closed() {
  clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                [](const Client& c) { return c.fd < 0; }),
                 clients_.end());
}

}  // namespace eipgate::control

// eipgate-control's admin socket server (JSON lines over a root-only unix stream socket).
#include "control/daemon/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace eipgate::control {

namespace {
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kMaxClients = 16;

nlohmann::json error_answer(const std::string& what) { return {{"ok", false}, {"error", what}}; }
}  // namespace

ControlSocket::~ControlSocket() { stop(); }

bool ControlSocket::start(const std::string& path, std::string* error) {
  UnixSocketOptions options;
  options.allowed_uid = allowed_uid_;
  UnixSocketError err;
  if (!server_.listen(path, options, &err)) {
    *error = "cannot listen on " + err.message;
    return false;
  }
  return true;
}

void ControlSocket::stop() {
  for (auto& c : clients_) ::close(c.fd);
  clients_.clear();
  server_.close();
}

void ControlSocket::poll_set(std::vector<int>* fds, std::vector<bool>* want_write) const {
  if (server_.fd() < 0) return;
  fds->push_back(server_.fd());
  want_write->push_back(false);
  for (const auto& c : clients_) {
    fds->push_back(c.fd);
    want_write->push_back(!c.out.empty());
  }
}

void ControlSocket::on_ready(int fd, short revents) {
  if (fd == server_.fd()) {
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
    const UnixSocketPeer peer = server_.accept();
    if (peer.kind == UnixSocketPeer::Kind::none) return;
    Client c;
    if (peer.kind == UnixSocketPeer::Kind::refused) {
      c.fd = peer.refused_fd;
      c.out = error_answer("permission denied: uid " + std::to_string(peer.uid) +
                           " may not use the control socket (root only)")
                  .dump() +
              "\n";
      c.close_after_write = true;
    } else {
      c.fd = peer.fd;
      if (clients_.size() >= kMaxClients) {
        c.out = error_answer("too many control connections; try again").dump() + "\n";
        c.close_after_write = true;
      }
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
        const nlohmann::json args =
            req.contains("args") && !req["args"].is_null() ? req["args"] : nlohmann::json::object();
        answer = handler_(req["cmd"].get<std::string>(), args);
      }
    } catch (const std::exception& e) {
      answer = error_answer(std::string("bad request: ") + e.what());
    }
    c.out += answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
}

void ControlSocket::drop_closed() {
  clients_.erase(
      std::remove_if(clients_.begin(), clients_.end(), [](const Client& c) { return c.fd < 0; }),
      clients_.end());
}

}  // namespace eipgate::control

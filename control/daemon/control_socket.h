// eipgate-control's own admin socket: unix stream, JSON lines (the dataplane admin protocol's
// framing: one request object per line, one answer per line), root-only (0600 + SO_PEERCRED).
// Non-blocking and driven by the daemon's poll loop; the handler runs on that loop's thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/unix_socket_server.h"

namespace eipgate::control {

class ControlSocket {
 public:
  // cmd, args -> the whole answer ({"ok": true, "result": ...} or {"ok": false, "error": ...}).
  using Handler = std::function<nlohmann::json(const std::string& cmd, const nlohmann::json& args)>;

  explicit ControlSocket(Handler handler) : handler_(std::move(handler)) {}
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Listens on `path` through the common root-only listener (common/unix_socket_server.h): missing
  // parent directories 0700, the socket 0600 from the moment it has its name, a stale socket
  // replaced, a live one refused.
  bool start(const std::string& path, std::string* error);
  void stop();

  // Descriptors to poll for input (listener first, then clients) and whether each wants POLLOUT.
  void poll_set(std::vector<int>* fds, std::vector<bool>* want_write) const;
  // Serves whatever is ready on fd (accept, read+answer, write).
  void on_ready(int fd, short revents);

  // Peers are admitted by SO_PEERCRED uid; only root (0) in production. Call before start().
  void set_allowed_uid_for_test(uid_t uid) { allowed_uid_ = uid; }

 private:
  struct Client {
    int fd = -1;
    std::string in;
    std::string out;
    bool close_after_write = false;
  };
  void accept_clients();
  void serve(Client& c);
  void answer_lines(Client& c);
  void drop_closed();

  Handler handler_;
  UnixSocketServer server_;
  uid_t allowed_uid_ = 0;
  std::vector<Client> clients_;
};

}  // namespace eipgate::control

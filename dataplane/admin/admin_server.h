// The dataplane's admin socket: a root-only unix stream socket speaking the line-delimited JSON
// protocol of admin_protocol.h, served from one background thread with poll().
#pragma once

#include <sys/types.h>

#include <string>
#include <thread>

#include "common/unix_socket_server.h"
#include "dataplane/admin/admin_protocol.h"

namespace eipgate::admin {

class AdminServer {
 public:
  // Most clients served at once; more are answered with an error and closed. The socket is
  // root-only, so this bounds a runaway script, not an attacker.
  static constexpr int kMaxClients = 64;

  // handler must outlive the server. version is reported by the "version" command.
  AdminServer(std::string socket_path, AdminHandler& handler, std::string version);
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens through the common root-only listener (common/unix_socket_server.h: missing parent
  // directories 0700, the socket 0600 from the moment it has its name, a stale socket replaced)
  // and starts the serving thread. Throws std::system_error (message names the path) when any
  // step fails, including when another live process is serving the same path.
  void start();

  // Stops the thread, closes every connection and removes the socket file. Idempotent; returns
  // once a handler call in progress (if any) has returned.
  void stop();

  [[nodiscard]] const std::string& socket_path() const { return path_; }

  // Peers are admitted by SO_PEERCRED uid; only root (0) in production. Call before start().
  void set_allowed_uid_for_test(uid_t uid) { allowed_uid_ = uid; }

 private:
  void serve();

  std::string path_;
  AdminHandler& handler_;
  std::string version_;
  uid_t allowed_uid_ = 0;
  UnixSocketServer server_;
  int wake_fd_ = -1;  // eventfd: stop() wakes poll()
  std::thread thread_;
};

}  // namespace eipgate::admin

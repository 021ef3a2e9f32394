// One root-only unix-socket listener for every local socket eipgate serves (the dataplane's admin
// and sync sockets, eipgate-control's control socket). It owns the part that must be right once:
// the socket file never exists at its path with a mode other than 0600, a stale file left by a
// dead process is replaced, a live server's path is refused, and every accepted peer is checked
// by SO_PEERCRED. What is spoken over the connections is the caller's. Standard library + POSIX.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>

namespace eipgate {

struct UnixSocketOptions {
  int type = SOCK_STREAM;  // or SOCK_SEQPACKET
  int backlog = 16;
  // The only uid admitted by accept(); root in production.
  uid_t allowed_uid = 0;
};

struct UnixSocketError {
  int code = 0;         // errno value
  std::string message;  // names the path and the step that failed
};

// What accept() found. fd >= 0 only for an admitted peer; a refused peer's descriptor is still
// open in refused_fd so that the caller can say why before closing it (close_refused()).
struct UnixSocketPeer {
  enum class Kind { none, admitted, refused };
  Kind kind = Kind::none;
  int fd = -1;
  int refused_fd = -1;
  uid_t uid = 0;  // SO_PEERCRED; (uid_t)-1 when it could not be read (then refused)
  pid_t pid = 0;
  int error = 0;  // none: errno of accept (0 = nothing pending, EMFILE ... = out of resources)
};

class UnixSocketServer {
 public:
  UnixSocketServer() = default;
  ~UnixSocketServer();  // close()
  UnixSocketServer(const UnixSocketServer&) = delete;
  UnixSocketServer& operator=(const UnixSocketServer&) = delete;

  // Creates each missing directory above `path` with mode 0700 (existing ones keep their mode),
  // refuses a path a live process serves or that is not a socket, then binds a non-blocking,
  // close-on-exec socket inside a private 0700 directory next to `path`, sets it to 0600 and
  // renames it into place. The path therefore only ever appears as a 0600 socket, whatever the
  // umask, and no process-wide umask is changed (other threads keep theirs). Both `path` and the
  // private socket (`<parent>/.XXXXXX/s`) must fit in sun_path (107 bytes).
  bool listen(const std::string& path, const UnixSocketOptions& options, UnixSocketError* error);

  // Takes one pending connection, non-blocking and close-on-exec, and checks its SO_PEERCRED uid.
  [[nodiscard]] UnixSocketPeer accept() const;

  // Sends `line` (best effort, never blocks) on a refused peer's descriptor and closes it.
  static void close_refused(const UnixSocketPeer& peer, const std::string& line);

  // Closes the listener and removes the file if it is still the one we bound (a successor may
  // already own the path). Idempotent.
  void close();

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] uid_t allowed_uid() const { return allowed_uid_; }

 private:
  int fd_ = -1;
  std::string path_;
  uid_t allowed_uid_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace eipgate

// The root-only unix-socket listener (unix_socket_server.h).
#include "common/unix_socket_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace eipgate {

namespace {

bool fail(UnixSocketError* error, int code, const std::string& path, const std::string& what) {
  if (error != nullptr) {
    error->code = code;
    error->message =
        path + ": " + what + (code != 0 ? ": " + std::string(std::strerror(code)) : "");
  }
  return false;
}

bool make_addr(const std::string& path, sockaddr_un* addr) {
  if (path.empty() || path.size() >= sizeof addr->sun_path) return false;
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Creates each missing directory above the socket with mode 0700 (set explicitly, not through
// the umask). Existing directories are left alone: the path may be configured under a shared
// directory whose mode is not ours to change.
bool make_parent_dirs(const std::string& path, UnixSocketError* error) {
  std::vector<std::string> missing;
  for (std::string p = parent_of(path); p != "/" && p != ".";) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return fail(error, ENOTDIR, path, p + " is not a directory");
      break;
    }
    if (errno != ENOENT) return fail(error, errno, path, "stat " + p);
    missing.insert(missing.begin(), p);  // outermost first
    const std::string up = parent_of(p);
    if (up == p) break;
    p = up;
  }
  for (const auto& dir : missing) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail(error, errno, path, "mkdir " + dir);
    }
    if (::chmod(dir.c_str(), 0700) != 0) return fail(error, errno, path, "chmod 0700 " + dir);
  }
  return true;
}

// A file left by a process that died may be replaced; one a live process still serves may not
// (two servers must not share a path), and neither may anything that is not a socket.
bool check_replaceable(const std::string& path, int type, UnixSocketError* error) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    return fail(error, errno, path, "lstat");
  }
  if (!S_ISSOCK(st.st_mode)) return fail(error, EEXIST, path, "exists and is not a socket");
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return fail(error, errno, path, "socket");
  sockaddr_un addr{};
  make_addr(path, &addr);
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(probe);
  if (rc == 0) return fail(error, EADDRINUSE, path, "another live process is serving it");
  if (err != ECONNREFUSED && err != ENOENT && err != EPROTOTYPE) {
    return fail(error, err, path, "probing the existing socket");
  }
  return true;
}

}  // namespace

UnixSocketServer::~UnixSocketServer() { close(); }

bool UnixSocketServer::listen(const std::string& path, const UnixSocketOptions& options,
                              UnixSocketError* error) {
  if (fd_ >= 0) return fail(error, EALREADY, path, "already listening");
  sockaddr_un final_addr{};
  if (!make_addr(path, &final_addr)) {
    return fail(error, ENAMETOOLONG, path,
                "path must be 1 to " + std::to_string(sizeof final_addr.sun_path - 1) + " bytes");
  }
  if (!make_parent_dirs(path, error)) return false;
  if (!check_replaceable(path, options.type, error)) return false;

  // Bound in a private directory only we can enter, made 0600 there, then renamed into place:
  // the final path never exists with the umask's mode, and rename replaces a stale file
  // atomically.
  const std::string parent = parent_of(path);
  std::string tmpl = parent + (parent.back() == '/' ? ".XXXXXX" : "/.XXXXXX");
  std::vector<char> dir(tmpl.begin(), tmpl.end());
  dir.push_back('\0');
  if (::mkdtemp(dir.data()) == nullptr) return fail(error, errno, path, "mkdtemp " + tmpl);
  const std::string private_dir(dir.data());
  const std::string private_path = private_dir + "/s";
  auto cleanup = [&](int fd) {
    if (fd >= 0) ::close(fd);
    ::unlink(private_path.c_str());
    ::rmdir(private_dir.c_str());
  };
  sockaddr_un addr{};
  if (!make_addr(private_path, &addr)) {
    cleanup(-1);
    return fail(error, ENAMETOOLONG, path,
                "the private socket " + private_path + " does not fit in " +
                    std::to_string(sizeof addr.sun_path - 1) + " bytes; use a shorter path");
  }
  const int fd = ::socket(AF_UNIX, options.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    cleanup(-1);
    return fail(error, err, path, "socket");
  }
  auto step = [&](int rc, const char* what) {
    if (rc == 0) return true;
    const int err = errno;
    cleanup(fd);
    return fail(error, err, path, what);
  };
  if (!step(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), "bind")) {
    return false;
  }
  if (!step(::chmod(private_path.c_str(), 0600), "chmod 0600")) return false;
  if (!step(::listen(fd, options.backlog), "listen")) return false;
  if (!step(::rename(private_path.c_str(), path.c_str()), "rename into place")) return false;
  ::rmdir(private_dir.c_str());
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(error, err, path, "lstat after rename");
  }
  fd_ = fd;
  path_ = path;
  allowed_uid_ = options.allowed_uid;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  return true;
}

UnixSocketPeer UnixSocketServer::accept() const {
  UnixSocketPeer peer;
  if (fd_ < 0) return peer;
  const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    peer.error = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
    return peer;
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    peer.kind = UnixSocketPeer::Kind::refused;
    peer.refused_fd = fd;
    peer.uid = static_cast<uid_t>(-1);
    return peer;
  }
  peer.uid = cred.uid;
  peer.pid = cred.pid;
  if (cred.uid != allowed_uid_) {
    peer.kind = UnixSocketPeer::Kind::refused;
    peer.refused_fd = fd;
    return peer;
  }
  peer.kind = UnixSocketPeer::Kind::admitted;
  peer.fd = fd;
  return peer;
}

void UnixSocketServer::close_refused(const UnixSocketPeer& peer, const std::string& line) {
  if (peer.refused_fd < 0) return;
  if (!line.empty()) {
    [[maybe_unused]] const auto n =
        ::send(peer.refused_fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ::close(peer.refused_fd);
}

void UnixSocketServer::close() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace eipgate

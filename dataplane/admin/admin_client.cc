// Admin protocol client: connect, write one request line, read one response line; see
// admin_client.h.
#include "dataplane/admin/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace eipgate::admin {

namespace {

// Flow dumps are the largest answers (kFlowLimitMax flows, ~25 MB); anything far beyond that is
// not our server.
constexpr std::size_t kMaxResponseBytes = std::size_t{256} * 1024 * 1024;

std::string hint_for(int err) {
  switch (err) {
    case ENOENT:
    case ECONNREFUSED:
      return " (is eipgate-dataplane running?)";
    case EACCES:
    case EPERM:
      return " (the admin socket is root-only)";
    default:
      return "";
  }
}

// Waits for fd to become ready for events; false on timeout or poll failure (errno set).
bool wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc > 0) return true;
    if (rc == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (errno != EINTR) return false;
  }
}

}  // namespace

AdminClient::AdminClient(std::string socket_path, int timeout_ms)
    : path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}

AdminClient::~AdminClient() { close_socket(); }

void AdminClient::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffered_.clear();
}

bool AdminClient::connect_socket(ClientError* err) {
  sockaddr_un addr{};
  if (path_.empty() || path_.size() >= sizeof(addr.sun_path)) {
    *err = {ClientError::Kind::Connect, "cannot connect to " + path_ + ": path too long"};
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *err = {ClientError::Kind::Connect, std::string("socket: ") + std::strerror(errno)};
    return false;
  }
  // A unix-socket connect completes or fails at once (a full backlog blocks; bounded by the
  // kernel's retry rather than by us, which is acceptable for a CLI).
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    close_socket();
    *err = {ClientError::Kind::Connect,
            "cannot connect to " + path_ + ": " + std::strerror(e) + hint_for(e)};
    return false;
  }
  return true;
}

bool AdminClient::call(const std::string& cmd, const nlohmann::json& args, nlohmann::json* response,
                       ClientError* err) {
  if (fd_ < 0 && !connect_socket(err)) return false;
  const std::string line = nlohmann::json{{"cmd", cmd}, {"args", args}}.dump() + "\n";

  // A server that refuses us (wrong uid, too many clients) writes its reason and closes, so a
  // failed send still leaves a response worth reading.
  bool send_failed = false;
  std::string send_error;
  for (std::size_t off = 0; off < line.size();) {
    if (!wait_for(fd_, POLLOUT, timeout_ms_)) {
      send_failed = true;
      send_error = std::strerror(errno);
      break;
    }
    ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      send_failed = true;
      send_error = std::strerror(errno);
      break;
    }
    off += static_cast<std::size_t>(n);
  }

  std::string& buf = buffered_;
  std::size_t nl;
  while ((nl = buf.find('\n')) == std::string::npos) {
    if (!wait_for(fd_, POLLIN, timeout_ms_)) {
      const int e = errno;
      close_socket();
      if (e == ETIMEDOUT) {
        *err = {ClientError::Kind::Timeout,
                "no answer from " + path_ + " within " + std::to_string(timeout_ms_) + " ms"};
      } else {
        *err = {ClientError::Kind::Io, "reading from " + path_ + ": " + std::strerror(e)};
      }
      return false;
    }
    char chunk[64 * 1024];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? std::string("connection closed by the dataplane")
                                     : std::string(std::strerror(errno));
      close_socket();
      *err = {send_failed ? ClientError::Kind::Io : ClientError::Kind::Protocol,
              (send_failed ? "writing to " + path_ + ": " + send_error
                           : "reading from " + path_ + ": " + why) +
                  " before a response"};
      return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
    if (buf.size() > kMaxResponseBytes) {
      close_socket();
      *err = {ClientError::Kind::Protocol, "response from " + path_ + " exceeds " +
                                               std::to_string(kMaxResponseBytes) + " bytes"};
      return false;
    }
  }
  const std::string resp = buf.substr(0, nl);
  buf.erase(0, nl + 1);
  if (send_failed) close_socket();

  nlohmann::json j = nlohmann::json::parse(resp, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    close_socket();
    *err = {ClientError::Kind::Protocol, "malformed response from " + path_};
    return false;
  }
  *response = std::move(j);
  return true;
}

}  // namespace eipgate::admin

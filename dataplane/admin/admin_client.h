// Client side of the admin protocol: one request line out, one response line back. Used by
// eipgatectl and, later, eipgate-control; depends on nothing but libc and nlohmann-json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace eipgate::admin {

// What went wrong talking to the dataplane, as opposed to the dataplane answering "ok": false.
struct ClientError {
  enum class Kind { Connect, Io, Timeout, Protocol };
  Kind kind = Kind::Io;
  std::string message;  // complete, for the operator: says which socket and what to check
};

class AdminClient {
 public:
  // timeout_ms bounds each wait for the socket (connect, send, every read), not the whole call.
  explicit AdminClient(std::string socket_path, int timeout_ms = 10000);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // Sends {"cmd": cmd, "args": args} and returns the parsed response object (with "ok"), or
  // fills *err. Connects on first use; the connection is reused for later calls.
  [[nodiscard]] bool call(const std::string& cmd, const nlohmann::json& args,
                          nlohmann::json* response, ClientError* err);

 private:
  bool connect_socket(ClientError* err);
  void close_socket();

  std::string path_;
  int timeout_ms_;
  int fd_ = -1;
  std::string buffered_;  // bytes read past the last response line
};

}  // namespace eipgate::admin

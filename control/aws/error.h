// Typed errors of the AWS layer: every failure of an IMDS or EC2 call is an AwsError whose kind
// decides whether it is retried and how the failover logic reacts.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace eipgate::aws {

enum class ErrorKind {
  Throttling,        // RequestLimitExceeded, Throttling: retried with backoff
  Auth,              // AuthFailure, UnauthorizedOperation, expired/invalid token: not retried
  NotFound,          // *.NotFound (InvalidRouteTableID.NotFound, InvalidRoute.NotFound, ...)
  InvalidParameter,  // InvalidParameterValue, MissingParameter, InvalidParameterCombination, ...
  Conflict,          // Resource.AlreadyAssociated, PrivateIpAddressInUse: the state forbids it
  Server,            // HTTP 5xx, InternalError, Unavailable: retried
  Transport,         // no HTTP response (connect, timeout, reset): retried
  Protocol,          // a response we cannot parse: not retried (a bug on one side)
  Other,             // any other error code
};

inline constexpr size_t kErrorKindCount = static_cast<size_t>(ErrorKind::Other) + 1;

[[nodiscard]] std::string_view to_string(ErrorKind kind);

// Maps an EC2 error code and HTTP status to a kind (the code wins; status decides for unknown
// codes: 5xx is Server, 401/403 Auth).
[[nodiscard]] ErrorKind classify_error(std::string_view code, long http_status);

class AwsError : public std::runtime_error {
 public:
  AwsError(ErrorKind kind, std::string code, std::string message, long http_status = 0,
           std::string request_id = {});

  [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }
  [[nodiscard]] const std::string& code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] long http_status() const noexcept { return http_status_; }
  [[nodiscard]] const std::string& request_id() const noexcept { return request_id_; }
  // Throttling, Server and Transport errors may succeed when repeated.
  [[nodiscard]] bool retryable() const noexcept;

 private:
  ErrorKind kind_;
  std::string code_;
  std::string message_;
  long http_status_;
  std::string request_id_;
};

// EC2 said the signing credentials themselves are no good (expired session token, unknown or
// revoked key): fresh credentials may succeed where a plain retry cannot.
[[nodiscard]] bool credentials_rejected(const AwsError& error);

// The first 200 bytes of a response body on one line, for an error message about it.
[[nodiscard]] std::string body_excerpt(std::string_view body);

}  // namespace eipgate::aws

// Error kinds of the AWS layer and the EC2 error-code table that maps onto them.
#include "control/aws/error.h"

#include <array>

namespace eipgate::aws {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

template <size_t N>
bool one_of(std::string_view code, const std::array<std::string_view, N>& list) {
  for (auto c : list) {
    if (c == code) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 6> kThrottling = {
    "RequestLimitExceeded", "Throttling",      "ThrottlingException",
    "RequestThrottled",     "TooManyRequests", "RequestThrottledException"};
constexpr std::array<std::string_view, 11> kAuth = {"AuthFailure",
                                                    "UnauthorizedOperation",
                                                    "InvalidClientTokenId",
                                                    "SignatureDoesNotMatch",
                                                    "RequestExpired",
                                                    "ExpiredToken",
                                                    "MissingAuthenticationToken",
                                                    "IncompleteSignature",
                                                    "OptInRequired",
                                                    "Blocked",
                                                    "InvalidToken"};
constexpr std::array<std::string_view, 6> kConflict = {
    "Resource.AlreadyAssociated", "PrivateIpAddressInUse", "IncorrectState",
    "IncorrectInstanceState",     "DependencyViolation",   "InvalidState"};
constexpr std::array<std::string_view, 5> kServer = {
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServerInternal"};
constexpr std::array<std::string_view, 6> kInvalid = {"MissingParameter",     "UnknownParameter",
                                                      "MissingAction",        "ValidationError",
                                                      "UnsupportedOperation", "InvalidAction"};

}  // namespace

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Throttling:
      return "throttling";
    case ErrorKind::Auth:
      return "auth";
    case ErrorKind::NotFound:
      return "not-found";
    case ErrorKind::InvalidParameter:
      return "invalid-parameter";
    case ErrorKind::Conflict:
      return "conflict";
    case ErrorKind::Server:
      return "server";
    case ErrorKind::Transport:
      return "transport";
    case ErrorKind::Protocol:
      return "protocol";
    case ErrorKind::Other:
      return "other";
  }
  return "unknown";
}

ErrorKind classify_error(std::string_view code, long http_status) {
  if (one_of(code, kThrottling)) return ErrorKind::Throttling;
  if (one_of(code, kAuth)) return ErrorKind::Auth;
  if (one_of(code, kConflict)) return ErrorKind::Conflict;
  if (one_of(code, kServer)) return ErrorKind::Server;
  if (ends_with(code, "NotFound")) return ErrorKind::NotFound;
  if (one_of(code, kInvalid) || starts_with(code, "Invalid")) return ErrorKind::InvalidParameter;
  if (http_status >= 500) return ErrorKind::Server;
  if (http_status == 401 || http_status == 403) return ErrorKind::Auth;
  if (http_status == 404) return ErrorKind::NotFound;
  return ErrorKind::Other;
}

AwsError::AwsError(ErrorKind kind, std::string code, std::string message, long http_status,
                   std::string request_id)
    : std::runtime_error(std::string(to_string(kind)) + " error " + code + ": " + message +
                         (http_status != 0 ? " (HTTP " + std::to_string(http_status) + ")" : "") +
                         (request_id.empty() ? "" : " [request " + request_id + "]")),
      kind_(kind),
      code_(std::move(code)),
      message_(std::move(message)),
      http_status_(http_status),
      request_id_(std::move(request_id)) {}

bool credentials_rejected(const AwsError& error) {
  // Not UnauthorizedOperation (the role lacks a permission: new keys of the same role won't
  // help) nor SignatureDoesNotMatch (a signing bug).
  static constexpr std::array<std::string_view, 7> kRejected = {"ExpiredToken",
                                                                "ExpiredTokenException",
                                                                "RequestExpired",
                                                                "AuthFailure",
                                                                "InvalidClientTokenId",
                                                                "InvalidToken",
                                                                "UnrecognizedClientException"};
  return one_of(error.code(), kRejected);
}

bool AwsError::retryable() const noexcept {
  return kind_ == ErrorKind::Throttling || kind_ == ErrorKind::Server ||
         kind_ == ErrorKind::Transport;
}

std::string body_excerpt(std::string_view body) {
  std::string out(body.substr(0, 200));
  for (auto& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace eipgate::aws

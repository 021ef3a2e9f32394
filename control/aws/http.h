// A small HTTP client interface for IMDS and EC2, with a libcurl implementation that signs with
// libcurl's built-in AWS SigV4. Tests substitute their own HttpTransport.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eipgate::aws {

using Headers = std::vector<std::pair<std::string, std::string>>;

// What libcurl needs to sign a request (CURLOPT_AWS_SIGV4 "aws:amz:<region>:<service>").
struct SigV4Signing {
  std::string region;
  std::string service;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // sent as X-Amz-Security-Token (signed) when not empty
};

// Which address family a request may resolve to and connect over (CURLOPT_IPRESOLVE).
enum class IpFamily {
  Any,  // whatever the resolver returns (libcurl: happy eyeballs)
  V4,   // IPv4 only
  V6,   // IPv6 only: management over an egress-only internet gateway, no public IPv4
};

[[nodiscard]] std::string_view to_string(IpFamily family);

struct HttpRequest {
  std::string method = "GET";  // GET, PUT, POST
  std::string url;
  Headers headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};  // whole request
  std::optional<SigV4Signing> sigv4;
  IpFamily ip_family = IpFamily::Any;
};

struct HttpResponse {
  long status = 0;
  Headers headers;  // names lower-cased
  std::string body;

  [[nodiscard]] std::optional<std::string> header(std::string_view lower_name) const;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Any HTTP status is a response; only a failure to get one throws (AwsError, kind Transport).
  virtual HttpResponse perform(const HttpRequest& request) = 0;
};

// libcurl, one easy handle per request (calls are rare: failover, periodic checks). Thread-safe.
class CurlTransport final : public HttpTransport {
 public:
  CurlTransport();
  HttpResponse perform(const HttpRequest& request) override;
};

// Form-encodes one value (RFC 3986 unreserved characters kept), as the EC2 Query API wants.
[[nodiscard]] std::string url_encode(std::string_view value);

}  // namespace eipgate::aws

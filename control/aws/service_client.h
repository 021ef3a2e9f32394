// What every AWS API client here shares (ec2.h, cloudwatch.h, logs.h): the options, the regional
// or dual-stack endpoint, one signed POST (libcurl's SigV4, aws/http.h), the retrier
// (aws/retry.h), the per-kind count of calls that failed for good, and one more attempt with
// fresh instance-role credentials when the service rejects expired ones. Only key ids are ever
// logged, never the secret or the token.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/aws/credentials.h"
#include "control/aws/error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"

namespace eipgate::aws {

struct ClientOptions {
  std::string region;    // required: signs requests and picks the default endpoint
  std::string endpoint;  // empty = https://<service>.<region>.amazonaws.com/ (dual_stack: .api.aws)
  // The dual-stack endpoint https://<service>.<region>.api.aws/ (IPv4 and IPv6), where the service
  // has one; the IPv4-only regional endpoint is the default, as in the SDKs. Also chosen when
  // ip_family is V6 and no endpoint is given; V6 without either is refused (NoIpv6Endpoint).
  bool dual_stack = false;
  IpFamily ip_family = IpFamily::Any;  // how calls resolve and connect
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};
  RetryPolicy retry;
};

// A service as the shared code needs it.
struct ServiceSpec {
  std::string_view host;          // "ec2": ec2.<region>.amazonaws.com
  std::string_view signing_name;  // SigV4 service name ("ec2", "monitoring", "logs")
  std::string_view display;       // in messages: "EC2", "CloudWatch", "CloudWatch Logs"
  bool has_dual_stack = false;    // <host>.<region>.api.aws exists
};

class ServiceClient {
 public:
  ServiceClient(const ServiceClient&) = delete;
  ServiceClient& operator=(const ServiceClient&) = delete;

  [[nodiscard]] Retrier& retrier() noexcept { return retrier_; }
  // Calls that failed for good (after retries and any credential refresh), by kind; metrics.
  [[nodiscard]] uint64_t errors(ErrorKind kind) const noexcept {
    return errors_[static_cast<size_t>(kind)].load(std::memory_order_relaxed);
  }
  // Times the service rejected the credentials and new ones were fetched for one more attempt.
  [[nodiscard]] uint64_t credential_refreshes() const noexcept {
    return credential_refreshes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }
  [[nodiscard]] const ClientOptions& options() const noexcept { return options_; }

 protected:
  ServiceClient(HttpTransport& http, CredentialsProvider& credentials, ClientOptions options,
                ServiceSpec spec, RetryEnv env);
  ~ServiceClient() = default;

  // One POST of `body` with `headers` to the endpoint, signed with the current credentials
  // (*used: which, for a refresh); the response whatever its status. `label` names the call in
  // the debug log.
  HttpResponse post(std::string_view label,
                    std::vector<std::pair<std::string, std::string>> headers, std::string body,
                    Credentials* used);

  // once(&used) under the retrier; when it fails for good because the service rejected the
  // credentials and the source has fresh ones (instance role), once more with those (a source
  // that cannot refresh: the error says to replace them). A final failure is counted by kind and
  // rethrown.
  std::string run(const std::string& operation,
                  const std::function<std::string(Credentials* used)>& once);

  // Undoes run()'s count of a failure the caller treats as success (an expected answer).
  void uncount(const AwsError& e) noexcept {
    errors_[static_cast<size_t>(e.kind())].fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  HttpTransport& http_;
  CredentialsProvider& credentials_;
  ClientOptions options_;
  ServiceSpec spec_;
  std::string endpoint_;
  Retrier retrier_;
  std::array<std::atomic<uint64_t>, kErrorKindCount> errors_{};
  std::atomic<uint64_t> credential_refreshes_{0};
};

}  // namespace eipgate::aws

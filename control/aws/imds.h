// IMDSv2 client: a session token from PUT /latest/api/token, then GETs with that token for the
// instance's identity, its ENIs by MAC and the instance role's credentials.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/aws/credentials.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"

namespace eipgate::aws {

struct ImdsOptions {
  std::string endpoint = "http://169.254.169.254";  // no trailing slash; tests add a path prefix
  std::chrono::seconds token_ttl{21600};
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{2000};
  RetryPolicy retry{.max_attempts = 3,
                    .base_delay = std::chrono::milliseconds(100),
                    .max_delay = std::chrono::milliseconds(1000),
                    .deadline = {}};
};

// One ENI as IMDS describes it under network/interfaces/macs/<mac>/.
struct ImdsEni {
  std::string mac;
  std::string interface_id;
  std::string subnet_id;
  std::vector<std::string> local_ipv4s;  // primary first, then secondaries
  int device_number = 0;
};

struct InstanceIdentity {
  std::string instance_id;
  std::string region;
  std::string availability_zone;
};

class ImdsClient {
 public:
  ImdsClient(HttpTransport& http, ImdsOptions options, RetryEnv env = RetryEnv::real());

  // GET latest/meta-data/<path> (no leading slash). 404 is AwsError NotFound; 401 fetches a new
  // token once and repeats. Thread-safe.
  [[nodiscard]] std::string get_metadata(std::string_view path);

  [[nodiscard]] std::string instance_id();
  [[nodiscard]] std::string region();
  [[nodiscard]] std::string availability_zone();
  [[nodiscard]] InstanceIdentity identity();
  [[nodiscard]] std::vector<std::string> macs();  // lower-case, without trailing '/'
  [[nodiscard]] ImdsEni eni(std::string_view mac);
  [[nodiscard]] std::vector<ImdsEni> enis();  // ordered by device number
  [[nodiscard]] std::string role_name();      // the instance profile's role; NotFound if none
  [[nodiscard]] Credentials role_credentials(const std::string& role);

  [[nodiscard]] Retrier& retrier() noexcept { return retrier_; }
  [[nodiscard]] uint64_t tokens_fetched() const noexcept { return tokens_fetched_; }

 private:
  std::string token(bool force_new);
  std::string get_once(std::string_view path);

  HttpTransport& http_;
  ImdsOptions options_;
  RetryEnv env_;
  Retrier retrier_;
  std::mutex mutex_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expiry_{};
  std::atomic<uint64_t> tokens_fetched_{0};
};

// Parses the role credentials document ({"Code":"Success","AccessKeyId":...,"Expiration":...}).
// Throws AwsError (Protocol or, for a Code other than Success, Auth).
[[nodiscard]] Credentials parse_role_credentials(std::string_view json, const std::string& role);

// "2024-05-01T12:34:56Z" (optional fractional seconds) to a time point; nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_iso8601(
    std::string_view text);

}  // namespace eipgate::aws

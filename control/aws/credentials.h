// AWS credentials and where they come from: the environment (AWS_ACCESS_KEY_ID, ...) overrides
// the instance role served by IMDSv2, which is refreshed before it expires.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace eipgate::aws {

class ImdsClient;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never logged
  std::string session_token;      // never logged; empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expiration;
  std::string source;  // "environment", "imds:<role>", "static"

  // The access key id cut to its first 4 and last 4 characters ("AKID…MPLE"): enough to tell
  // keys apart in logs without revealing them.
  [[nodiscard]] std::string redacted_key_id() const;
};

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Current credentials; throws AwsError (Auth or the underlying IMDS error) when there are none.
  virtual Credentials get() = 0;
  // EC2 rejected `rejected` (expired or revoked): forget it so the next get() fetches anew.
  // Returns false when this source cannot produce other credentials (environment, static), so
  // retrying is pointless.
  virtual bool invalidate(const Credentials& rejected) {
    (void)rejected;
    return false;
  }
};

class StaticCredentialsProvider final : public CredentialsProvider {
 public:
  explicit StaticCredentialsProvider(Credentials c) : credentials_(std::move(c)) {}
  Credentials get() override { return credentials_; }

 private:
  Credentials credentials_;
};

// Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN through getenv (injectable).
// Both key id and secret must be set; otherwise nullopt.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
[[nodiscard]] std::optional<Credentials> credentials_from_environment(EnvLookup getenv = {});

// The instance role's credentials from IMDS, cached and fetched again once they are within
// refresh_before of their expiration (or expired). Thread-safe.
class ImdsCredentialsProvider final : public CredentialsProvider {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  ImdsCredentialsProvider(ImdsClient& imds,
                          std::chrono::seconds refresh_before = std::chrono::minutes(5),
                          Clock now = {});
  Credentials get() override;
  // Drops the cached credentials if they are the rejected ones (another thread may already have
  // replaced them); the next get() asks IMDS again. Always true: IMDS can be asked.
  bool invalidate(const Credentials& rejected) override;

 private:
  ImdsClient& imds_;
  std::chrono::seconds refresh_before_;
  Clock now_;
  std::mutex mutex_;
  std::string role_;
  std::optional<Credentials> cached_;
};

// The environment when it has credentials, else the fallback (usually IMDS). The environment is
// read once, at construction.
class ChainCredentialsProvider final : public CredentialsProvider {
 public:
  ChainCredentialsProvider(std::shared_ptr<CredentialsProvider> fallback, EnvLookup getenv = {});
  Credentials get() override;
  // False for environment credentials (nothing else to read); else the fallback's answer.
  bool invalidate(const Credentials& rejected) override;
  [[nodiscard]] bool from_environment() const noexcept { return env_.has_value(); }

 private:
  std::optional<Credentials> env_;
  std::shared_ptr<CredentialsProvider> fallback_;
};

}  // namespace eipgate::aws

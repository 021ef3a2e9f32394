// Credential sources: environment, IMDS instance role (cached, refreshed early), and the chain.
#include "control/aws/credentials.h"

#include <cstdlib>

#include "common/log.h"
#include "control/aws/error.h"
#include "control/aws/imds.h"

namespace eipgate::aws {

std::string Credentials::redacted_key_id() const {
  if (access_key_id.size() <= 8) return std::string(access_key_id.size(), '*');
  return access_key_id.substr(0, 4) + "..." + access_key_id.substr(access_key_id.size() - 4);
}

std::optional<Credentials> credentials_from_environment(EnvLookup getenv) {
  if (!getenv) {
    getenv = [](const char* name) -> std::optional<std::string> {
      const char* v = std::getenv(name);
      if (v == nullptr || *v == '\0') return std::nullopt;
      return std::string(v);
    };
  }
  auto key = getenv("AWS_ACCESS_KEY_ID");
  auto secret = getenv("AWS_SECRET_ACCESS_KEY");
  if (!key || !secret || key->empty() || secret->empty()) return std::nullopt;
  Credentials c;
  c.access_key_id = *key;
  c.secret_access_key = *secret;
  if (auto token = getenv("AWS_SESSION_TOKEN")) c.session_token = *token;
  c.source = "environment";
  return c;
}

ImdsCredentialsProvider::ImdsCredentialsProvider(ImdsClient& imds,
                                                 std::chrono::seconds refresh_before, Clock now)
    : imds_(imds), refresh_before_(refresh_before), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::system_clock::now(); };
}

Credentials ImdsCredentialsProvider::get() {
  std::lock_guard lock(mutex_);
  const auto now = now_();
  if (cached_ && (!cached_->expiration || *cached_->expiration - refresh_before_ > now)) {
    return *cached_;
  }
  try {
    if (role_.empty()) role_ = imds_.role_name();
    Credentials fresh = imds_.role_credentials(role_);
    eipgate::log::get()->info(
        "credentials from instance role {} (key {}), expire in {} s", role_,
        fresh.redacted_key_id(),
        fresh.expiration
            ? std::chrono::duration_cast<std::chrono::seconds>(*fresh.expiration - now).count()
            : -1);
    cached_ = std::move(fresh);
  } catch (const AwsError& e) {
    // Credentials that are still valid beat none: use them until they really expire.
    if (cached_ && cached_->expiration && *cached_->expiration > now) {
      eipgate::log::get()->warn(
          "refreshing instance role credentials failed ({}); the current "
          "ones stay valid until expiry",
          e.what());
      return *cached_;
    }
    throw;
  }
  return *cached_;
}

bool ImdsCredentialsProvider::invalidate(const Credentials& rejected) {
  std::lock_guard lock(mutex_);
  if (cached_ && cached_->access_key_id == rejected.access_key_id) {
    eipgate::log::get()->warn("instance role credentials (key {}) rejected; fetching new ones",
                              rejected.redacted_key_id());
    cached_.reset();
    role_.clear();  // the instance profile may have been replaced too
  }
  return true;
}

ChainCredentialsProvider::ChainCredentialsProvider(std::shared_ptr<CredentialsProvider> fallback,
                                                   EnvLookup getenv)
    : env_(credentials_from_environment(std::move(getenv))), fallback_(std::move(fallback)) {
  if (env_) {
    eipgate::log::get()->info("credentials from the environment (key {}{})",
                              env_->redacted_key_id(),
                              env_->session_token.empty() ? "" : ", with session token");
  }
}

bool ChainCredentialsProvider::invalidate(const Credentials& rejected) {
  if (env_) return false;
  return fallback_ && fallback_->invalidate(rejected);
}

Credentials ChainCredentialsProvider::get() {
  if (env_) return *env_;
  if (!fallback_) {
    throw AwsError(ErrorKind::Auth, "NoCredentials",
                   "no credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset and no "
                   "instance role provider");
  }
  return fallback_->get();
}

}  // namespace eipgate::aws

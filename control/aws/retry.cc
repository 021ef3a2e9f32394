// Capped exponential backoff with full jitter, and the retry loop's bookkeeping and logging.
#include "control/aws/retry.h"

#include <algorithm>
#include <random>
#include <thread>

#include "common/log.h"

namespace eipgate::aws {

RetryEnv RetryEnv::real() {
  RetryEnv env;
  env.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  env.now = [] { return std::chrono::steady_clock::now(); };
  env.uniform01 = [] {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  };
  return env;
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int failed_attempts,
                                        double uniform01) {
  const int64_t base = std::max<int64_t>(0, policy.base_delay.count());
  const int64_t cap_max = std::max<int64_t>(0, policy.max_delay.count());
  int64_t cap = base;
  // Doubling stops at the cap, so no shift can overflow however many attempts are configured.
  for (int i = 1; i < failed_attempts && cap < cap_max; ++i) cap *= 2;
  cap = std::min(cap, cap_max);
  const double u = std::clamp(uniform01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(u * static_cast<double>(cap)));
}

RetryPolicy takeover_retry_policy(const RetryPolicy& normal) {
  RetryPolicy p = normal;
  p.base_delay = std::min(normal.base_delay, kTakeoverBaseDelay);
  p.max_delay = std::min(normal.max_delay, kTakeoverMaxDelay);
  p.max_attempts = std::max(normal.max_attempts, kTakeoverMinAttempts);
  return p;
}

std::chrono::milliseconds worst_case_backoff(const RetryPolicy& policy, int failures) {
  std::chrono::milliseconds total{0};
  for (int n = 1; n <= failures; ++n) total += backoff_delay(policy, n, 1.0);
  return total;
}

Retrier::Retrier(RetryPolicy policy, RetryEnv env) : policy_(policy), env_(std::move(env)) {
  const RetryEnv real = RetryEnv::real();
  if (!env_.sleep) env_.sleep = real.sleep;
  if (!env_.now) env_.now = real.now;
  if (!env_.uniform01) env_.uniform01 = real.uniform01;
  policy_.max_attempts = std::max(1, policy_.max_attempts);
}

bool Retrier::should_retry(std::string_view operation, int attempt, const AwsError& error,
                           std::chrono::steady_clock::time_point start) {
  auto log = eipgate::log::get();
  if (!error.retryable()) return false;
  if (attempt >= policy_.max_attempts) {
    log->warn("{}: attempt {}/{} failed ({}); giving up", operation, attempt, policy_.max_attempts,
              error.what());
    return false;
  }
  const auto delay = backoff_delay(policy_, attempt, env_.uniform01());
  if (policy_.deadline.count() > 0 && env_.now() - start + delay > policy_.deadline) {
    log->warn("{}: attempt {}/{} failed ({}); deadline of {} ms reached, giving up", operation,
              attempt, policy_.max_attempts, error.what(), policy_.deadline.count());
    return false;
  }
  log->warn("{}: attempt {}/{} failed ({}); retrying in {} ms", operation, attempt,
            policy_.max_attempts, error.what(), delay.count());
  ++retries_;
  if (on_retry_) on_retry_(RetryEvent{operation, attempt, &error, delay});
  env_.sleep(delay);
  return true;
}

}  // namespace eipgate::aws

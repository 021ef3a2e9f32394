// Retry with capped exponential backoff and full jitter for AWS calls: attempt n (0-based) waits
// uniform(0, min(max_delay, base_delay * 2^n)). Sleep, clock and randomness are injectable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "control/aws/error.h"

namespace eipgate::aws {

struct RetryPolicy {
  int max_attempts = 5;  // including the first; 1 = no retries
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{5000};
  // Give up once this much time has passed since the first attempt (0 = no limit); the failover
  // path sets it so a stuck EC2 call cannot hold a promotion forever.
  std::chrono::milliseconds deadline{0};
};

// What a retry loop needs from the outside world; defaults are the real clock, sleep and RNG.
struct RetryEnv {
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<double()> uniform01;  // in [0, 1)

  static RetryEnv real();
};

struct RetryEvent {
  std::string_view operation;  // "ec2:ReplaceRoute", "imds:GET meta-data/instance-id"
  int attempt = 0;             // the attempt that failed, 1-based
  const AwsError* error = nullptr;
  std::chrono::milliseconds delay{0};  // before the next attempt
};

// The jittered delay before attempt `failed_attempts` + 1.
[[nodiscard]] std::chrono::milliseconds backoff_delay(const RetryPolicy& policy,
                                                      int failed_attempts, double uniform01);

// During a takeover every millisecond of backoff is a millisecond of outage: the gap budget is 2 s
// and the dead interval (600 ms by default) spends part of it before the first EC2 call. So the
// takeover's calls back off from 20 ms, capped flat at 80 ms, and get more attempts, so that a
// burst of throttling is outlasted rather than given up on: twelve RequestLimitExceeded in a row
// cost at most 20 + 40 + 10 x 80 = 860 ms of waiting (worst_case_backoff), about half that on
// average with full jitter. The configured deadline, if any, still applies.
inline constexpr std::chrono::milliseconds kTakeoverBaseDelay{20};
inline constexpr std::chrono::milliseconds kTakeoverMaxDelay{80};
inline constexpr int kTakeoverMinAttempts = 30;
[[nodiscard]] RetryPolicy takeover_retry_policy(const RetryPolicy& normal);

// The longest total wait that `failures` consecutive retryable failures can cost under `policy`
// (every jitter draw at its maximum).
[[nodiscard]] std::chrono::milliseconds worst_case_backoff(const RetryPolicy& policy, int failures);

// Runs fn until it returns, throws a non-retryable AwsError, or attempts/deadline run out (then
// the last error is rethrown). Every retry is logged (warn) and passed to on_retry if set.
class Retrier {
 public:
  Retrier(RetryPolicy policy, RetryEnv env);

  void set_on_retry(std::function<void(const RetryEvent&)> on_retry) {
    on_retry_ = std::move(on_retry);
  }
  [[nodiscard]] uint64_t retries() const noexcept { return retries_; }  // total, for metrics
  [[nodiscard]] const RetryPolicy& policy() const noexcept { return policy_; }

  template <class Fn>
  auto run(std::string_view operation, Fn&& fn) -> decltype(fn()) {
    const auto start = env_.now();
    for (int attempt = 1;; ++attempt) {
      try {
        return fn();
      } catch (const AwsError& e) {
        if (!should_retry(operation, attempt, e, start)) throw;
      }
    }
  }

 private:
  // Sleeps and returns true when another attempt should follow.
  bool should_retry(std::string_view operation, int attempt, const AwsError& error,
                    std::chrono::steady_clock::time_point start);

  RetryPolicy policy_;
  RetryEnv env_;
  std::function<void(const RetryEvent&)> on_retry_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace eipgate::aws

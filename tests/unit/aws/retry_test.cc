// Backoff arithmetic and the retry loop, with an injected clock, sleep and random source.
#include "control/aws/retry.h"

#include <gtest/gtest.h>

#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;
using testing::FakeTime;

RetryPolicy policy(int attempts, int base_ms, int max_ms, int deadline_ms = 0) {
  return RetryPolicy{attempts, milliseconds(base_ms), milliseconds(max_ms),
                     milliseconds(deadline_ms)};
}

TEST(Backoff, ExponentialCappedWithFullJitter) {
  const auto p = policy(10, 100, 1000);
  EXPECT_EQ(backoff_delay(p, 1, 1.0), milliseconds(100));
  EXPECT_EQ(backoff_delay(p, 2, 1.0), milliseconds(200));
  EXPECT_EQ(backoff_delay(p, 3, 1.0), milliseconds(400));
  EXPECT_EQ(backoff_delay(p, 4, 1.0), milliseconds(800));
  EXPECT_EQ(backoff_delay(p, 5, 1.0), milliseconds(1000));   // capped
  EXPECT_EQ(backoff_delay(p, 60, 1.0), milliseconds(1000));  // no overflow however many
  EXPECT_EQ(backoff_delay(p, 3, 0.0), milliseconds(0));      // full jitter: anywhere from 0
  EXPECT_EQ(backoff_delay(p, 3, 0.5), milliseconds(200));
  EXPECT_EQ(backoff_delay(p, 1000000, 0.25), milliseconds(250));
}

TEST(Retrier, RetriesRetryableErrorsThenSucceeds) {
  FakeTime t;
  Retrier r(policy(5, 100, 1000), t.env());
  std::vector<RetryEvent> events;
  std::vector<ErrorKind> kinds;
  r.set_on_retry([&](const RetryEvent& e) {
    events.push_back(e);
    kinds.push_back(e.error->kind());
  });
  int calls = 0;
  const int result = r.run("ec2:Test", [&] {
    ++calls;
    if (calls == 1) throw AwsError(ErrorKind::Throttling, "RequestLimitExceeded", "slow down", 503);
    if (calls == 2) throw AwsError(ErrorKind::Server, "InternalError", "oops", 500);
    if (calls == 3) throw AwsError(ErrorKind::Transport, "ConnectFailed", "refused");
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(t.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].attempt, 1);
  EXPECT_EQ(events[2].attempt, 3);
  EXPECT_EQ(events[1].delay, milliseconds(200));
  EXPECT_EQ(events[0].operation, "ec2:Test");
  EXPECT_EQ(kinds, (std::vector<ErrorKind>{ErrorKind::Throttling, ErrorKind::Server,
                                           ErrorKind::Transport}));
  EXPECT_EQ(r.retries(), 3u);
}

TEST(Retrier, NonRetryableErrorsPropagateAtOnce) {
  FakeTime t;
  Retrier r(policy(5, 100, 1000), t.env());
  int calls = 0;
  for (ErrorKind kind : {ErrorKind::Auth, ErrorKind::NotFound, ErrorKind::InvalidParameter,
                         ErrorKind::Conflict, ErrorKind::Protocol, ErrorKind::Other}) {
    calls = 0;
    try {
      r.run("op", [&]() -> int {
        ++calls;
        throw AwsError(kind, "Code", "no");
      });
      FAIL();
    } catch (const AwsError& e) {
      EXPECT_EQ(e.kind(), kind);
    }
    EXPECT_EQ(calls, 1);
  }
  EXPECT_TRUE(t.sleeps.empty());
  EXPECT_EQ(r.retries(), 0u);
}

TEST(Retrier, GivesUpAfterMaxAttemptsWithTheLastError) {
  FakeTime t;
  Retrier r(policy(3, 50, 1000), t.env());
  int calls = 0;
  try {
    r.run("op", [&]() -> int {
      ++calls;
      throw AwsError(ErrorKind::Server, "Unavailable" + std::to_string(calls), "down", 503);
    });
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "Unavailable3");
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(t.sleeps.size(), 2u);
}

TEST(Retrier, DeadlineStopsRetriesBeforeSleepingPastIt) {
  FakeTime t;
  Retrier r(policy(20, 100, 10000, 1000), t.env());
  int calls = 0;
  EXPECT_THROW(r.run("op",
                     [&]() -> int {
                       ++calls;
                       t.now += milliseconds(10);  // each attempt takes 10 ms
                       throw AwsError(ErrorKind::Throttling, "Throttling", "x");
                     }),
               AwsError);
  // Sleeps 100, 200, 400 (+ 10 ms per attempt = 740 ms); the next 800 would pass 1000 ms.
  EXPECT_EQ(t.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
  EXPECT_EQ(calls, 4);
}

TEST(Retrier, JitterComesFromTheInjectedSource) {
  FakeTime t;
  t.fraction = 0.1;
  Retrier r(policy(4, 1000, 8000), t.env());
  int calls = 0;
  (void)r.run("op", [&] {
    if (++calls < 4) throw AwsError(ErrorKind::Throttling, "Throttling", "x");
    return 0;
  });
  EXPECT_EQ(t.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
}

TEST(Retrier, MaxAttemptsOfOneMeansNoRetry) {
  FakeTime t;
  Retrier r(policy(1, 100, 1000), t.env());
  int calls = 0;
  EXPECT_THROW(r.run("op",
                     [&]() -> int {
                       ++calls;
                       throw AwsError(ErrorKind::Throttling, "Throttling", "x");
                     }),
               AwsError);
  EXPECT_EQ(calls, 1);
}

// The takeover's schedule: twelve throttles in a row (the failover drill that gave a 2.5 s gap)
// cost at most 860 ms of backoff, against more than 2 s under the configured default, and are
// outlasted instead of exhausting the attempts.
TEST(TakeoverRetry, TwelveThrottlesFitTheFailoverBudget) {
  const RetryPolicy normal;  // 5 attempts, 100 ms .. 5 s
  const RetryPolicy takeover = takeover_retry_policy(normal);
  EXPECT_EQ(takeover.base_delay, kTakeoverBaseDelay);
  EXPECT_EQ(takeover.max_delay, kTakeoverMaxDelay);
  EXPECT_GE(takeover.max_attempts, 13);
  EXPECT_EQ(worst_case_backoff(takeover, 12), milliseconds(20 + 40 + 10 * 80));
  EXPECT_GT(worst_case_backoff(normal, 12), milliseconds(2000));

  FakeTime t;
  t.fraction = 1.0;
  Retrier r(takeover, t.env());
  int calls = 0;
  EXPECT_EQ(r.run("ec2:ReplaceRoute",
                  [&] {
                    if (++calls <= 12) throw AwsError(ErrorKind::Throttling, "Throttling", "x");
                    return 7;
                  }),
            7);
  milliseconds total{0};
  for (const auto d : t.sleeps) total += d;
  EXPECT_EQ(t.sleeps.size(), 12u);
  EXPECT_EQ(total, milliseconds(860));
}

TEST(TakeoverRetry, NeverSlowerThanTheConfiguredPolicyAndKeepsItsDeadline) {
  const RetryPolicy fast = policy(40, 5, 10, 900);
  const RetryPolicy takeover = takeover_retry_policy(fast);
  EXPECT_EQ(takeover.base_delay, milliseconds(5));
  EXPECT_EQ(takeover.max_delay, milliseconds(10));
  EXPECT_EQ(takeover.max_attempts, 40);
  EXPECT_EQ(takeover.deadline, milliseconds(900));
}

}  // namespace
}  // namespace eipgate::aws

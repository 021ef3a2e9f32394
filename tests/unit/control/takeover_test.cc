// The takeover's EC2 calls against tests/sim/fake_aws.py under a burst of throttling: the service
// address and the routes are issued concurrently, and twelve RequestLimitExceeded answers in a row
// cost a backoff schedule that fits the failover gap budget. The retry sleep and jitter are
// injected (every draw at its maximum, no real sleeping), so the schedule is asserted, not the
// wall clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "control/aws/retry.h"
#include "control/daemon/aws_ops.h"
#include "tests/unit/aws/fake_aws_fixture.h"

namespace eipgate::control {
namespace {

using std::chrono::milliseconds;

constexpr char kInstance[] = "i-0bbbbbbbbbbbbbbb2";
constexpr char kMac[] = "0e:00:00:00:0b:02";
constexpr char kEni[] = "eni-0bbbbbbbbbbbbbbd2";
constexpr char kPeerEni[] = "eni-0aaaaaaaaaaaaaad1";
constexpr char kServiceIp[] = "10.0.0.100";
const std::vector<std::string> kTables = {"rtb-0aa00000000000001", "rtb-0aa00000000000002"};

// The retry sleeps of the takeover, by thread. The first sleeper (a call that was just
// throttled) waits until the fake has seen both an AssignPrivateIpAddresses and a ReplaceRoute:
// with the two issued one after the other, the second never starts while the first is retrying,
// so the wait runs out (bounded, so the test fails instead of hanging) and overlapped() is false.
class SleepRecorder {
 public:
  explicit SleepRecorder(std::function<bool()> both_seen) : both_seen_(std::move(both_seen)) {}
  aws::RetryEnv env() {
    aws::RetryEnv e;
    e.uniform01 = [] { return 1.0; };  // the longest delay every time: the worst case
    e.now = [] { return std::chrono::steady_clock::now(); };
    e.sleep = [this](milliseconds d) { on_sleep(d); };
    return e;
  }
  [[nodiscard]] bool overlapped() const { return overlapped_.load(); }
  std::map<std::thread::id, std::vector<milliseconds>> by_thread() {
    std::lock_guard lock(mu_);
    return sleeps_;
  }

 private:
  void on_sleep(milliseconds d) {
    bool first = false;
    {
      std::lock_guard lock(mu_);
      sleeps_[std::this_thread::get_id()].push_back(d);
      first = !waited_;
      waited_ = true;
    }
    if (!first) return;
    for (int i = 0; i < 2000 && !overlapped_.load(); ++i) {
      if (both_seen_()) {
        overlapped_ = true;
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  std::function<bool()> both_seen_;
  std::mutex mu_;
  std::map<std::thread::id, std::vector<milliseconds>> sleeps_;
  bool waited_ = false;
  std::atomic<bool> overlapped_{false};
};

aws::AwsConfig config_for(const aws::testing::FakeAwsProcess& fake) {
  aws::AwsConfig c;
  c.route_tables.ids = kTables;
  c.service_address.mode = aws::ServiceAddressMode::SecondaryIp;
  c.service_address.private_ips = {kServiceIp};
  c.endpoints.ec2 = fake.base_url();
  c.endpoints.imds = fake.imds_url(kInstance);
  // The default schedule (5 attempts from 100 ms up to 5 s) would give up after 4 throttles.
  c.retry = aws::RetryPolicy{};
  return c;
}

TEST(TakeoverUnderThrottling, TwelveThrottlesInARowFitTheBudgetWithTheCallsInParallel) {
  aws::testing::FakeAwsProcess fake;
  SleepRecorder sleeps([&fake] {
    bool address = false;
    bool route = false;
    for (const auto& c : fake.calls()) {
      address |= c.value("action", "") == "AssignPrivateIpAddresses";
      route |= c.value("action", "") == "ReplaceRoute";
    }
    return address && route;
  });
  AwsOps ops(config_for(fake), sleeps.env());
  const Identity id = ops.bootstrap(kMac, kPeerEni, "");
  ASSERT_EQ(id.eni, kEni);

  constexpr int kThrottles = 12;
  fake.faults(
      {{"throttle_next", kThrottles}, {"actions", {"AssignPrivateIpAddresses", "ReplaceRoute"}}});
  const std::string summary = ops.take_over();
  EXPECT_NE(summary.find(kServiceIp), std::string::npos) << summary;

  // Everything moved: the address and both tables are ours.
  const auto state = fake.state();
  for (const auto& eni : state["network_interfaces"]) {
    const auto& ips = eni["private_ips"];
    const bool has = std::find(ips.begin(), ips.end(), kServiceIp) != ips.end();
    EXPECT_EQ(has, eni["id"] == kEni) << eni.dump();
  }
  for (const auto& rt : state["route_tables"]) {
    if (std::find(kTables.begin(), kTables.end(), rt["id"]) == kTables.end()) continue;
    for (const auto& r : rt["routes"]) {
      if (r["destination"] == "0.0.0.0/0") {
        EXPECT_EQ(r["network_interface_id"], kEni) << rt.dump();
      }
    }
  }
  EXPECT_EQ(nlohmann::json::parse(fake.control("GET", "faults").body)["throttle_next"], 0);

  // Concurrent: while the first throttled call was backing off, the other kind was issued too.
  EXPECT_TRUE(sleeps.overlapped()) << "the address and the routes were issued one after the other";

  // One retry per throttle; no call waited longer than the takeover cap, and the longest chain
  // of waits (the critical path: the calls run side by side) stays within the EC2 share of the
  // 2 s budget after the default 600 ms dead interval.
  const auto by_thread = sleeps.by_thread();
  int retries = 0;
  milliseconds critical{0};
  for (const auto& [thread, delays] : by_thread) {
    milliseconds sum{0};
    for (const auto d : delays) {
      EXPECT_LE(d, aws::kTakeoverMaxDelay);
      sum += d;
    }
    retries += static_cast<int>(delays.size());
    critical = std::max(critical, sum);
  }
  EXPECT_EQ(retries, kThrottles);
  EXPECT_EQ(ops.retries(), static_cast<uint64_t>(kThrottles));
  EXPECT_LE(critical,
            aws::worst_case_backoff(aws::takeover_retry_policy(aws::RetryPolicy{}), kThrottles));
  EXPECT_LE(critical, milliseconds(1400));
}

}  // namespace
}  // namespace eipgate::control

// eipgate-control's CloudWatch metrics: the cloudwatch: section (good and bad YAML, file:line),
// per-interval deltas of the dataplane's counters (a restarted dataplane included), the
// interval's datapoints (names, dimensions, units, which instance publishes what), and the
// publisher's bounded queue (a full queue drops the oldest interval; failures are counted).
#include "control/daemon/cloudwatch_publisher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "control/daemon/daemon_config.h"

namespace eipgate::control {
namespace {

using nlohmann::json;

constexpr const char* kBase = R"(mode: one-armed
aws:
  route_tables: {ids: [rtb-0aa00000000000001]}
  service_address: {mode: secondary-ip, private_ip: 10.0.0.100}
  endpoints: {cloudwatch: "http://127.0.0.1:8080"}
ha:
  priority: 200
  peers: [10.0.0.6]
  secret_file: /etc/eipgate/ha.key
)";

bool parse(const std::string& cloudwatch, DaemonConfig* c, std::string* errors) {
  return parse_daemon_config(std::string(kBase) + cloudwatch, "/etc/eipgate/eipgate.yaml", c,
                             errors);
}

TEST(CloudWatchConfig, OffByDefault) {
  DaemonConfig c;
  std::string errors;
  ASSERT_TRUE(parse("", &c, &errors)) << errors;
  EXPECT_FALSE(c.cloudwatch.enabled);
  EXPECT_EQ(c.cloudwatch.name_space, "eipgate");
  EXPECT_EQ(c.cloudwatch.metrics, CloudWatchMetricSet::Default);
  EXPECT_EQ(c.cloudwatch.interval, std::chrono::seconds(60));
  EXPECT_EQ(c.aws.endpoints.cloudwatch, "http://127.0.0.1:8080");
}

TEST(CloudWatchConfig, TheDataplanesSectionsStayTheDataplanes) {
  DaemonConfig c;
  std::string errors;
  // fastpath: is the dataplane's (dataplane/config/README.md): not an unknown key here.
  EXPECT_TRUE(parse("fastpath: {enabled: false}\n", &c, &errors)) << errors;
}

TEST(CloudWatchConfig, EveryKey) {
  DaemonConfig c;
  std::string errors;
  ASSERT_TRUE(parse(R"(cloudwatch:
  enabled: yes
  metrics: full
  namespace: Corp/eipgate
  pair_name: use1-az1-0
  availability_zone: us-east-1a
  interval: 1s
  max_queued: 3
)",
                    &c, &errors))
      << errors;
  EXPECT_TRUE(c.cloudwatch.enabled);
  EXPECT_EQ(c.cloudwatch.metrics, CloudWatchMetricSet::Full);
  EXPECT_EQ(c.cloudwatch.name_space, "Corp/eipgate");
  EXPECT_EQ(c.cloudwatch.pair_name, "use1-az1-0");
  EXPECT_EQ(c.cloudwatch.availability_zone, "us-east-1a");
  EXPECT_EQ(c.cloudwatch.interval, std::chrono::seconds(1));
  EXPECT_EQ(c.cloudwatch.max_queued, 3u);
}

TEST(CloudWatchConfig, ErrorsNameFileLineAndReason) {
  DaemonConfig c;
  std::string errors;
  ASSERT_FALSE(parse(R"(cloudwatch:
  enabled: true
  metric: full
  namespace: AWS/NATGateway
  interval: 500ms
  max_queued: 0
)",
                     &c, &errors));
  const std::string f = "/etc/eipgate/eipgate.yaml:";
  EXPECT_NE(errors.find(f + "12: cloudwatch: unknown key 'metric' (did you mean 'metrics'?)"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find(f + "13: cloudwatch.namespace: 'AWS/NATGateway': the AWS/ prefix is "
                            "reserved"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find(f + "14: cloudwatch.interval: '500ms' is not in 1s..1h"), std::string::npos)
      << errors;
  EXPECT_NE(errors.find(f + "15: cloudwatch.max_queued: '0' is not an integer in 1..1000"),
            std::string::npos)
      << errors;

  ASSERT_FALSE(parse("cloudwatch:\n  enabled: true\n  metrics: ful\n", &c, &errors));
  EXPECT_NE(errors.find(f + "12: cloudwatch.metrics: 'ful' is not a metric set (default or full) "
                            "(did you mean 'full'?)"),
            std::string::npos)
      << errors;
  ASSERT_FALSE(parse("cloudwatch:\n  enabled: true\n", &c, &errors));
  EXPECT_NE(errors.find(f + "11: cloudwatch.pair_name: required when enabled"), std::string::npos)
      << errors;
  ASSERT_FALSE(parse("cloudwatch:\n  enabled: maybe\n  pair_name: p\n", &c, &errors));
  EXPECT_NE(errors.find(f + "11: cloudwatch.enabled: "), std::string::npos) << errors;
  ASSERT_FALSE(parse("cloudwatch:\n", &c, &errors));
  EXPECT_NE(errors.find(f + "10: cloudwatch: expected a mapping"), std::string::npos) << errors;
  ASSERT_FALSE(parse("cloudwach:\n  enabled: false\n", &c, &errors));
  EXPECT_NE(errors.find("(did you mean 'cloudwatch'?)"), std::string::npos) << errors;
  ASSERT_FALSE(parse("cloudwatch:\n  enabled: true\n  pair_name: [a, b]\n", &c, &errors));
  EXPECT_NE(errors.find(f + "12: cloudwatch.pair_name: expected a value, got a list"),
            std::string::npos)
      << errors;
}

TEST(CloudWatchSchedule, SamplesInTheMiddleOfEachPeriod) {
  constexpr int64_t kMinute = 60000;
  const int64_t t0 = 1796472000000;                               // 2026-12-05T12:00:00Z
  EXPECT_EQ(cloudwatch_phase_delay(t0, kMinute), 30000);          // -> 12:00:30
  EXPECT_EQ(cloudwatch_phase_delay(t0 + 29999, kMinute), 1);      // -> 12:00:30
  EXPECT_EQ(cloudwatch_phase_delay(t0 + 30000, kMinute), 0);      // now
  EXPECT_EQ(cloudwatch_phase_delay(t0 + 30001, kMinute), 59999);  // -> 12:01:30
  EXPECT_EQ(cloudwatch_phase_delay(t0 + 59999, kMinute), 30001);  // -> 12:01:30
  EXPECT_EQ(cloudwatch_phase_delay(t0 + 123, 1000), 377);         // 1 s: at .500
}

json nat(double active, double attempts, double errors, double drops, double bytes_out) {
  return {{"ActiveConnectionCount", active},
          {"ConnectionAttemptCount", attempts},
          {"ErrorPortAllocation", errors},
          {"PacketsDropCount", drops},
          {"BytesOutToDestination", bytes_out}};
}

TEST(NatGatewayDeltas, BaselineThenDeltasAndLevels) {
  NatGatewayDeltas d;
  EXPECT_TRUE(d.update(nat(10, 100, 1, 5, 1000)).empty());
  auto v = d.update(nat(7, 160, 4, 5, 3500));
  EXPECT_EQ(v["ActiveConnectionCount"], 7);  // a level, not a delta
  EXPECT_EQ(v["ConnectionAttemptCount"], 60);
  EXPECT_EQ(v["ErrorPortAllocation"], 3);
  EXPECT_EQ(v["PacketsDropCount"], 0);
  EXPECT_EQ(v["BytesOutToDestination"], 2500);
  EXPECT_EQ(d.resets(), 0u);
}

TEST(NatGatewayDeltas, ARestartedDataplaneCountsFromZero) {
  NatGatewayDeltas d;
  (void)d.update(nat(10, 100, 2, 50, 100000));
  (void)d.update(nat(10, 120, 2, 60, 120000));
  // The dataplane restarted: its counters are back near 0. ErrorPortAllocation (3) is above
  // its old value (2), but it too restarted from 0: the interval saw 3 errors, not 1.
  auto v = d.update(nat(2, 8, 3, 1, 900));
  EXPECT_EQ(d.resets(), 1u);
  EXPECT_EQ(v["ConnectionAttemptCount"], 8);
  EXPECT_EQ(v["ErrorPortAllocation"], 3);
  EXPECT_EQ(v["PacketsDropCount"], 1);
  EXPECT_EQ(v["BytesOutToDestination"], 900);
  EXPECT_EQ(v["ActiveConnectionCount"], 2);
  v = d.update(nat(2, 18, 3, 4, 1900));  // and deltas again after it
  EXPECT_EQ(v["ConnectionAttemptCount"], 10);
  EXPECT_EQ(v["PacketsDropCount"], 3);
  EXPECT_EQ(v["ErrorPortAllocation"], 0);
  EXPECT_EQ(d.resets(), 1u);
}

CloudWatchConfig config(CloudWatchMetricSet set) {
  CloudWatchConfig c;
  c.enabled = true;
  c.metrics = set;
  c.pair_name = "use1-az1-0";
  return c;
}

std::map<std::string, aws::MetricDatum> by_name(const std::vector<aws::MetricDatum>& v) {
  std::map<std::string, aws::MetricDatum> out;
  for (const auto& d : v) {
    EXPECT_EQ(out.count(d.name), 0u) << d.name << " twice";
    out[d.name] = d;
  }
  return out;
}

json stats_with(const json& nat_gateway) { return {{"nat_gateway", nat_gateway}}; }

TEST(CloudWatchCollector, DefaultSetOnTheActive) {
  CloudWatchCollector c(config(CloudWatchMetricSet::Default), "us-east-1a");
  c.observe(true, false);
  EXPECT_TRUE(c.finish_interval(stats_with(nat(1, 10, 0, 0, 10)), 0, 1000).empty());
  c.observe(true, false);
  const auto got = by_name(c.finish_interval(stats_with(nat(4, 30, 2, 7, 500)), 0, 1060));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.at("HaActive").value, 1);
  EXPECT_EQ(got.at("HaStandby").value, 0);
  EXPECT_EQ(got.at("FailoverCount").value, 0);
  EXPECT_EQ(got.at("ErrorPortAllocation").value, 2);
  EXPECT_EQ(got.at("PacketsDropCount").value, 7);
  for (const auto& [name, d] : got) {
    ASSERT_EQ(d.dimensions.size(), 2u) << name;
    EXPECT_EQ(d.dimensions[0].name, "PairName");
    EXPECT_EQ(d.dimensions[0].value, "use1-az1-0");
    EXPECT_EQ(d.dimensions[1].name, "AvailabilityZone");
    EXPECT_EQ(d.dimensions[1].value, "us-east-1a");
    EXPECT_EQ(d.unit, "Count") << name;
    EXPECT_EQ(d.timestamp_s, 1060);
  }
}

TEST(CloudWatchCollector, FullSetAddsEveryNatGatewayName) {
  CloudWatchCollector c(config(CloudWatchMetricSet::Full), "us-east-1a");
  c.observe(true, false);
  (void)c.finish_interval(stats_with(nat(1, 10, 0, 0, 10)), 0, 1000);
  c.observe(true, false);
  const auto got = by_name(c.finish_interval(stats_with(nat(4, 30, 2, 7, 500)), 0, 1060));
  ASSERT_EQ(got.size(), 8u);
  EXPECT_EQ(got.at("ActiveConnectionCount").value, 4);
  EXPECT_EQ(got.at("ConnectionAttemptCount").value, 20);
  EXPECT_EQ(got.at("BytesOutToDestination").value, 490);
  EXPECT_EQ(got.at("BytesOutToDestination").unit, "Bytes");
  EXPECT_EQ(got.at("ConnectionAttemptCount").unit, "Count");
}

TEST(CloudWatchCollector, TheStandbyPublishesOnlyHaMetricsAndATakeoverCountsOnce) {
  CloudWatchCollector c(config(CloudWatchMetricSet::Full), "us-east-1a");
  c.observe(false, true);
  (void)c.finish_interval(stats_with(nat(0, 0, 0, 0, 0)), 3, 1000);
  c.observe(false, true);
  auto got = by_name(c.finish_interval(stats_with(nat(0, 0, 0, 0, 0)), 3, 1060));
  ASSERT_EQ(got.size(), 3u);  // no traffic metrics from the standby
  EXPECT_EQ(got.at("HaActive").value, 0);
  EXPECT_EQ(got.at("HaStandby").value, 1);
  EXPECT_EQ(got.at("FailoverCount").value, 0);
  // Out of sync for the whole interval: not a standby that could take over without loss.
  c.observe(false, false);
  got = by_name(c.finish_interval(std::nullopt, 3, 1120));
  EXPECT_EQ(got.at("HaStandby").value, 0);
  // Takes over mid-interval: active, one failover, and the traffic since the takeover.
  c.observe(false, true);
  c.observe(true, false);
  got = by_name(c.finish_interval(stats_with(nat(5, 40, 1, 2, 800)), 4, 1180));
  EXPECT_EQ(got.at("HaActive").value, 1);
  EXPECT_EQ(got.at("HaStandby").value, 1);
  EXPECT_EQ(got.at("FailoverCount").value, 1);
  EXPECT_EQ(got.at("ConnectionAttemptCount").value, 40);
  c.observe(true, false);
  got = by_name(c.finish_interval(stats_with(nat(5, 41, 1, 2, 800)), 4, 1240));
  EXPECT_EQ(got.at("FailoverCount").value, 0);
  EXPECT_EQ(got.at("HaStandby").value, 0);
  // The dataplane did not answer: HA metrics still go, traffic waits for the next answer.
  c.observe(true, false);
  got = by_name(c.finish_interval(std::nullopt, 4, 1300));
  EXPECT_EQ(got.size(), 3u);
  c.observe(true, false);
  got = by_name(c.finish_interval(stats_with(nat(5, 51, 1, 2, 800)), 4, 1360));
  EXPECT_EQ(got.at("ConnectionAttemptCount").value, 10);  // both intervals' attempts
}

// A sender that blocks until released, recording what it was given.
class GatedSender {
 public:
  void send(const std::string& ns, std::vector<aws::MetricDatum> data) {
    std::unique_lock lock(mutex_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    if (fail_) throw aws::AwsError(aws::ErrorKind::Throttling, "Throttling", "Rate exceeded");
    namespaces_.push_back(ns);
    rounds_.push_back(std::move(data));
    cv_.notify_all();
  }
  void open(bool fail = false) {
    std::lock_guard lock(mutex_);
    open_ = true;
    fail_ = fail;
    cv_.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  std::vector<std::vector<aws::MetricDatum>> rounds() {
    std::lock_guard lock(mutex_);
    return rounds_;
  }
  std::vector<std::string> namespaces() {
    std::lock_guard lock(mutex_);
    return namespaces_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  bool fail_ = false;
  int entered_ = 0;
  std::vector<std::vector<aws::MetricDatum>> rounds_;
  std::vector<std::string> namespaces_;
};

std::vector<aws::MetricDatum> interval(int tag, size_t n = 2) {
  std::vector<aws::MetricDatum> v(n);
  for (auto& d : v) {
    d.name = "M";
    d.value = tag;
  }
  return v;
}

template <class Pred>
void eventually(Pred pred) {
  for (int i = 0; i < 500 && !pred(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(pred());
}

TEST(CloudWatchPublisher, AFullQueueDropsTheOldestIntervalAndNeverBlocks) {
  GatedSender gate;
  CloudWatchPublisher p("eipgate", 2,
                        [&](const std::string& ns, auto data) { gate.send(ns, std::move(data)); });
  p.enqueue(interval(1));
  gate.wait_entered(1);  // interval 1 is being sent (stuck in the network)
  p.enqueue(interval(2));
  p.enqueue(interval(3));
  p.enqueue(interval(4));  // the queue holds 2: interval 2 is dropped
  p.enqueue({});           // nothing to send: ignored
  auto s = p.stats();
  EXPECT_EQ(s.intervals_queued, 4u);
  EXPECT_EQ(s.intervals_dropped, 1u);
  EXPECT_EQ(s.datapoints_dropped, 2u);
  EXPECT_EQ(s.queued, 2u);
  gate.open();
  eventually([&] { return p.stats().intervals_sent == 3; });
  const auto rounds = gate.rounds();
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[0].size(), 2u);
  EXPECT_EQ(rounds[0][0].value, 1);
  ASSERT_EQ(rounds[1].size(), 4u);  // 3 and 4 together, in order
  EXPECT_EQ(rounds[1][0].value, 3);
  EXPECT_EQ(rounds[1][3].value, 4);
  EXPECT_EQ(gate.namespaces(), (std::vector<std::string>{"eipgate", "eipgate"}));
  s = p.stats();
  EXPECT_EQ(s.datapoints_sent, 6u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_GT(s.last_sent_at_ms, 0);
  EXPECT_TRUE(s.last_error.empty());
}

TEST(CloudWatchPublisher, FailuresAreCountedWithTheError) {
  GatedSender gate;
  gate.open(/*fail=*/true);
  CloudWatchPublisher p("eipgate", 10,
                        [&](const std::string& ns, auto data) { gate.send(ns, std::move(data)); });
  p.enqueue(interval(1, 3));
  eventually([&] { return p.stats().intervals_failed == 1; });
  const auto s = p.stats();
  EXPECT_EQ(s.datapoints_failed, 3u);
  EXPECT_EQ(s.intervals_sent, 0u);
  EXPECT_NE(s.last_error.find("Throttling"), std::string::npos) << s.last_error;
}

TEST(StoppableSleep, StopEndsASleepAtOnce) {
  StoppableSleep s;
  s.sleep(std::chrono::milliseconds(1));  // an ordinary short sleep
  std::atomic<bool> threw{false};
  const auto t0 = std::chrono::steady_clock::now();
  std::thread t([&] {
    try {
      s.sleep(std::chrono::seconds(60));
    } catch (const std::runtime_error&) {
      threw = true;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.stop();
  t.join();
  EXPECT_TRUE(threw.load());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));  // not the 60 s
  EXPECT_THROW(s.sleep(std::chrono::seconds(60)), std::runtime_error);         // stays stopped
}

TEST(CloudWatchPublisher, StopsWhileASendIsQueued) {
  std::atomic<int> sent{0};
  {
    CloudWatchPublisher p("eipgate", 10, [&](const std::string&, auto) { ++sent; });
    for (int i = 0; i < 5; ++i) p.enqueue(interval(i));
  }  // the destructor joins the thread: nothing left running
  EXPECT_LE(sent.load(), 5);
}

}  // namespace
}  // namespace eipgate::control

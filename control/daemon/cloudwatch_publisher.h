// CloudWatch metrics of eipgate-control (README.md, "CloudWatch metrics"): the `cloudwatch:`
// section, the per-interval datapoints made from the dataplane's NAT Gateway counters and the
// HA state (CloudWatchCollector, on the loop, pure), and the thread that sends them with
// PutMetricData through a bounded queue (CloudWatchPublisher): the loop never waits for
// CloudWatch, and a full queue drops its oldest interval and counts it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/schema_error.h"
#include "control/aws/cloudwatch.h"

namespace YAML {
class Node;
}

namespace eipgate::control {

enum class CloudWatchMetricSet { Default, Full };

struct CloudWatchConfig {
  bool enabled = false;
  CloudWatchMetricSet metrics = CloudWatchMetricSet::Default;
  std::string name_space = "eipgate";
  std::string pair_name;          // dimension PairName; required when enabled
  std::string availability_zone;  // dimension AvailabilityZone; empty = from IMDS placement
  std::chrono::milliseconds interval{60000};  // 1s..1h; CloudWatch's resolution is 1 minute
  size_t max_queued = 10;  // intervals waiting to be sent; beyond it the oldest is dropped
};

// `node` is the value of the `cloudwatch:` key (at `line`); every problem is appended to *errors
// as file:line: reason (schema toolkit: unknown keys with "did you mean", duplicates).
void parse_cloudwatch_config(const YAML::Node& node, int line, const std::string& file,
                             CloudWatchConfig* out, std::vector<yaml_schema::SchemaError>* errors);

[[nodiscard]] std::string_view to_string(CloudWatchMetricSet set);

// Milliseconds from now_ms (epoch) to the next middle of a period of interval_ms counted from the
// epoch (interval 60 s: the next hh:mm:30.000). In [0, interval_ms).
[[nodiscard]] int64_t cloudwatch_phase_delay(int64_t now_ms, int64_t interval_ms);

// The metrics of the default set (alarm-oriented); the full set adds every nat_gateway.* name.
inline constexpr std::string_view kHaActive = "HaActive";
inline constexpr std::string_view kHaStandby = "HaStandby";
inline constexpr std::string_view kFailoverCount = "FailoverCount";
inline constexpr std::string_view kErrorPortAllocation = "ErrorPortAllocation";
inline constexpr std::string_view kPacketsDropCount = "PacketsDropCount";
inline constexpr std::string_view kActiveConnectionCount = "ActiveConnectionCount";
// eipgate's own level beside it: the UDP and ICMP flows (ActiveConnectionCount is TCP only, as
// AWS defines it).
inline constexpr std::string_view kActiveNonTcpFlowCount = "ActiveNonTcpFlowCount";
// The nat_gateway.* names that are levels (the value now), not counters since start.
[[nodiscard]] constexpr bool nat_gateway_level(std::string_view name) {
  return name == kActiveConnectionCount || name == kActiveNonTcpFlowCount;
}

// Per-interval values of the dataplane's cumulative nat_gateway counters. The first sample is
// the baseline (no values). A counter that went down means the dataplane restarted: every
// counter of that sample then counts from 0 (its value is the interval's delta). Levels
// (nat_gateway_level: ActiveConnectionCount, ActiveNonTcpFlowCount) are passed through.
class NatGatewayDeltas {
 public:
  // nat_gateway: the `nat_gateway` object of a `stats` answer. Returns name → value for the
  // interval since the previous sample (empty for the first one).
  std::map<std::string, double> update(const nlohmann::json& nat_gateway);
  [[nodiscard]] uint64_t resets() const { return resets_; }

 private:
  std::optional<std::map<std::string, double>> previous_;
  uint64_t resets_ = 0;
};

// Turns what the loop sees into one interval's datapoints. Lives on the loop thread.
class CloudWatchCollector {
 public:
  CloudWatchCollector(CloudWatchConfig config, std::string availability_zone);

  // Called on every loop tick: the role this instance has now.
  void observe(bool active, bool standby_in_sync);
  // The end of an interval: the dataplane's `stats` result (nullopt when it did not answer),
  // the daemon's cumulative completed takeovers, the time (epoch seconds). The first call only
  // sets the baselines and returns nothing. Then: HaActive (1 when active at any tick of the
  // interval), HaStandby (1 when standby with its sync up at any tick), FailoverCount (takeovers
  // completed in the interval) from both instances; the traffic metrics (deltas, and the level
  // of ActiveConnectionCount) only when this instance was active in the interval and the
  // dataplane answered. Every datum has the PairName and AvailabilityZone dimensions.
  std::vector<aws::MetricDatum> finish_interval(const std::optional<nlohmann::json>& stats,
                                                uint64_t takeovers, int64_t now_s);
  [[nodiscard]] const std::string& availability_zone() const { return az_; }
  [[nodiscard]] uint64_t dataplane_resets() const { return deltas_.resets(); }

 private:
  aws::MetricDatum datum(std::string_view name, double value, std::string_view unit,
                         int64_t now_s) const;

  CloudWatchConfig config_;
  std::string az_;
  NatGatewayDeltas deltas_;
  std::optional<uint64_t> takeovers_;
  bool active_ = false;
  bool standby_ = false;
};

// The publisher's retry sleep (aws::RetryEnv::sleep): ends at once, by throwing, when the daemon
// stops, so a stop never waits out a CloudWatch backoff (only a request already in flight, at
// most aws.timeouts.request).
class StoppableSleep {
 public:
  void sleep(std::chrono::milliseconds d);  // throws std::runtime_error once stop() was called
  void stop();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// The sending thread and its bounded queue of intervals.
class CloudWatchPublisher {
 public:
  // send: one PutMetricData round (may be several calls); throws aws::AwsError on failure. Runs
  // on the publisher's own thread only.
  using Sender = std::function<void(const std::string& name_space, std::vector<aws::MetricDatum>)>;

  CloudWatchPublisher(std::string name_space, size_t max_queued, Sender send);
  ~CloudWatchPublisher();  // stops the thread; what is still queued is dropped (shutting down)
  CloudWatchPublisher(const CloudWatchPublisher&) = delete;
  CloudWatchPublisher& operator=(const CloudWatchPublisher&) = delete;

  // Never waits for the network: a full queue drops its oldest interval (counted).
  void enqueue(std::vector<aws::MetricDatum> interval);

  struct Stats {
    uint64_t intervals_queued = 0;   // intervals handed to enqueue() with data
    uint64_t intervals_sent = 0;     // intervals whose datapoints all reached CloudWatch
    uint64_t intervals_failed = 0;   // intervals (or parts) given up after retries
    uint64_t intervals_dropped = 0;  // oldest intervals dropped from a full queue
    uint64_t datapoints_sent = 0;
    uint64_t datapoints_failed = 0;
    uint64_t datapoints_dropped = 0;
    size_t queued = 0;  // intervals waiting now
    std::string last_error;
    int64_t last_sent_at_ms = 0;  // epoch ms of the last successful send; 0 = none yet
  };
  [[nodiscard]] Stats stats() const;

 private:
  void loop();

  std::string name_space_;
  size_t max_queued_;
  Sender send_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::vector<aws::MetricDatum>> queue_;
  Stats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace eipgate::control

// The `cloudwatch:` section, the interval's datapoints and the sending thread
// (cloudwatch_publisher.h).
#include "control/daemon/cloudwatch_publisher.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <exception>
#include <stdexcept>
#include <utility>

#include "common/log.h"
#include "common/yaml_schema.h"

namespace eipgate::control {

namespace {

using nlohmann::json;
using yaml_schema::SchemaError;

constexpr std::chrono::milliseconds kMinInterval{1000};
constexpr std::chrono::milliseconds kMaxInterval{3600 * 1000};
constexpr size_t kMaxQueued = 1000;

// A dimension value or namespace: 1..255 printable ASCII characters (CloudWatch's rule).
bool printable_ascii(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

int64_t cloudwatch_phase_delay(int64_t now_ms, int64_t interval_ms) {
  if (interval_ms <= 0) return 0;
  const int64_t phase = interval_ms / 2;
  return ((phase - now_ms % interval_ms) % interval_ms + interval_ms) % interval_ms;
}

std::string_view to_string(CloudWatchMetricSet set) {
  return set == CloudWatchMetricSet::Full ? "full" : "default";
}

void parse_cloudwatch_config(const YAML::Node& node, int line, const std::string& file,
                             CloudWatchConfig* out, std::vector<SchemaError>* errors) {
  const size_t errors_before = errors->size();
  auto fail = [&](int at, std::string reason) {
    errors->push_back(SchemaError{file, at, "cloudwatch." + std::move(reason)});
  };
  if (node.IsNull()) {
    errors->push_back(SchemaError{file, line, "cloudwatch: expected a mapping, got nothing"});
    return;
  }
  std::vector<yaml_schema::Issue> issues;
  const auto entries = yaml_schema::map_entries(node, line, "cloudwatch",
                                                {"enabled", "metrics", "namespace", "pair_name",
                                                 "availability_zone", "interval", "max_queued"},
                                                &issues);
  for (auto& i : issues) errors->push_back(SchemaError{file, i.line, std::move(i.reason)});
  CloudWatchConfig c;
  int enabled_line = line;
  for (const auto& e : entries) {
    const int at = e.value.IsNull() ? e.line : yaml_schema::line_of(e.value);
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      fail(at, e.key + ": expected a value, got " + std::string(yaml_schema::type_name(e.value)));
      continue;
    }
    const std::string& v = e.value.Scalar();
    std::string why;
    if (e.key == "enabled") {
      enabled_line = at;
      if (const auto b = yaml_schema::parse_bool(v, &why)) {
        c.enabled = *b;
      } else {
        fail(at, "enabled: " + why);
      }
    } else if (e.key == "metrics") {
      if (v == "default") {
        c.metrics = CloudWatchMetricSet::Default;
      } else if (v == "full") {
        c.metrics = CloudWatchMetricSet::Full;
      } else {
        fail(at, "metrics: '" + v + "' is not a metric set (default or full)" +
                     yaml_schema::did_you_mean(v, {"default", "full"}));
      }
    } else if (e.key == "namespace") {
      if (!printable_ascii(v)) {
        fail(at, "namespace: 1 to 255 printable ASCII characters");
      } else if (v.starts_with("AWS/")) {
        fail(at, "namespace: '" + v + "': the AWS/ prefix is reserved for AWS services");
      } else {
        c.name_space = v;
      }
    } else if (e.key == "pair_name" || e.key == "availability_zone") {
      if (!printable_ascii(v)) {
        fail(at, e.key + ": 1 to 255 printable ASCII characters (a CloudWatch dimension value)");
      } else {
        (e.key == "pair_name" ? c.pair_name : c.availability_zone) = v;
      }
    } else if (e.key == "interval") {
      const auto ms = yaml_schema::parse_duration_ms(v, &why);
      if (!ms) {
        fail(at, "interval: " + why);
      } else if (std::chrono::milliseconds(*ms) < kMinInterval ||
                 std::chrono::milliseconds(*ms) > kMaxInterval) {
        fail(at, "interval: '" + v + "' is not in 1s..1h");
      } else {
        c.interval = std::chrono::milliseconds(*ms);
      }
    } else if (e.key == "max_queued") {
      size_t n = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || n < 1 || n > kMaxQueued) {
        fail(at, "max_queued: '" + v + "' is not an integer in 1..1000");
      } else {
        c.max_queued = n;
      }
    }
  }
  if (c.enabled && c.pair_name.empty() && errors->size() == errors_before) {
    fail(enabled_line,
         "pair_name: required when enabled (the PairName dimension of every datapoint)");
  }
  if (errors->size() == errors_before) *out = std::move(c);
}

std::map<std::string, double> NatGatewayDeltas::update(const json& nat_gateway) {
  std::map<std::string, double> now;
  if (nat_gateway.is_object()) {
    for (const auto& [k, v] : nat_gateway.items()) {
      if (v.is_number()) now[k] = v.get<double>();
    }
  }
  std::map<std::string, double> out;
  if (!previous_) {
    previous_ = std::move(now);
    return out;
  }
  bool reset = false;
  for (const auto& [k, v] : now) {
    if (nat_gateway_level(k)) continue;
    const auto it = previous_->find(k);
    if (it != previous_->end() && v < it->second) reset = true;
  }
  if (reset) ++resets_;
  for (const auto& [k, v] : now) {
    if (nat_gateway_level(k)) {
      out[k] = v;
      continue;
    }
    const auto it = previous_->find(k);
    // A restarted dataplane counts from 0: its whole value is new. A counter seen for the first
    // time counts from the previous sample (where it was absent, i.e. 0).
    out[k] = reset || it == previous_->end() ? v : v - it->second;
  }
  previous_ = std::move(now);
  return out;
}

CloudWatchCollector::CloudWatchCollector(CloudWatchConfig config, std::string availability_zone)
    : config_(std::move(config)), az_(std::move(availability_zone)) {}

void CloudWatchCollector::observe(bool active, bool standby_in_sync) {
  active_ = active_ || active;
  standby_ = standby_ || (!active && standby_in_sync);
}

aws::MetricDatum CloudWatchCollector::datum(std::string_view name, double value,
                                            std::string_view unit, int64_t now_s) const {
  aws::MetricDatum d;
  d.name = std::string(name);
  d.dimensions = {{"PairName", config_.pair_name}, {"AvailabilityZone", az_}};
  d.value = value;
  d.unit = std::string(unit);
  d.timestamp_s = now_s;
  return d;
}

std::vector<aws::MetricDatum> CloudWatchCollector::finish_interval(const std::optional<json>& stats,
                                                                   uint64_t takeovers,
                                                                   int64_t now_s) {
  std::map<std::string, double> traffic;
  bool have_traffic = false;
  if (stats && stats->is_object() && stats->contains("nat_gateway")) {
    traffic = deltas_.update((*stats)["nat_gateway"]);
    have_traffic = !traffic.empty();
  }
  const bool first = !takeovers_;
  const uint64_t failovers = first || takeovers < *takeovers_ ? 0 : takeovers - *takeovers_;
  takeovers_ = takeovers;
  const bool active = active_;
  const bool standby = standby_;
  active_ = standby_ = false;
  std::vector<aws::MetricDatum> out;
  if (first) return out;  // the baseline: the interval starts now

  out.push_back(datum(kHaActive, active ? 1 : 0, "Count", now_s));
  out.push_back(datum(kHaStandby, standby ? 1 : 0, "Count", now_s));
  out.push_back(datum(kFailoverCount, static_cast<double>(failovers), "Count", now_s));
  if (!active || !have_traffic) return out;
  for (const auto& [name, value] : traffic) {
    const bool in_default = name == kErrorPortAllocation || name == kPacketsDropCount;
    if (!in_default && config_.metrics != CloudWatchMetricSet::Full) continue;
    out.push_back(datum(name, value, name.starts_with("Bytes") ? "Bytes" : "Count", now_s));
  }
  return out;
}

void StoppableSleep::sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  if (cv_.wait_for(lock, d, [this] { return stopped_; })) {
    throw std::runtime_error("eipgate-control is stopping: retry abandoned");
  }
}

void StoppableSleep::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  cv_.notify_all();
}

CloudWatchPublisher::CloudWatchPublisher(std::string name_space, size_t max_queued, Sender send)
    : name_space_(std::move(name_space)),
      max_queued_(std::max<size_t>(1, max_queued)),
      send_(std::move(send)),
      thread_([this] { loop(); }) {}

CloudWatchPublisher::~CloudWatchPublisher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CloudWatchPublisher::enqueue(std::vector<aws::MetricDatum> interval) {
  if (interval.empty()) return;
  {
    std::lock_guard lock(mutex_);
    ++stats_.intervals_queued;
    while (queue_.size() >= max_queued_) {
      ++stats_.intervals_dropped;
      stats_.datapoints_dropped += queue_.front().size();
      queue_.pop_front();
      log::get()->warn("cloudwatch: queue full ({} intervals): the oldest interval is dropped",
                       max_queued_);
    }
    queue_.push_back(std::move(interval));
  }
  cv_.notify_one();
}

CloudWatchPublisher::Stats CloudWatchPublisher::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.queued = queue_.size();
  return s;
}

void CloudWatchPublisher::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    // Everything waiting goes in one round (a backlog after an outage costs fewer calls).
    std::vector<aws::MetricDatum> data;
    const size_t intervals = queue_.size();
    for (auto& q : queue_) std::move(q.begin(), q.end(), std::back_inserter(data));
    queue_.clear();
    const size_t n = data.size();
    lock.unlock();
    std::string error;
    try {
      send_(name_space_, std::move(data));
    } catch (const std::exception& e) {
      error = e.what();  // AWS error codes and messages; never credentials
    }
    lock.lock();
    if (error.empty()) {
      stats_.intervals_sent += intervals;
      stats_.datapoints_sent += n;
      stats_.last_sent_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
    } else {
      stats_.intervals_failed += intervals;
      stats_.datapoints_failed += n;
      stats_.last_error = error;
      log::get()->error("cloudwatch: PutMetricData of {} datapoints ({} intervals) failed: {}", n,
                        intervals, error);
    }
  }
}

}  // namespace eipgate::control

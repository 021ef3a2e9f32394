// The interval's datapoints and the sending thread (cloudwatch_publisher.h; the `cloudwatch:`
// section is parsed in telemetry_config.cc).
#include "control/daemon/cloudwatch_publisher.h"

#include <exception>
#include <stdexcept>
#include <utility>

#include "common/log.h"

namespace eipgate::control {

namespace {

using nlohmann::json;

}  // namespace

int64_t cloudwatch_phase_delay(int64_t now_ms, int64_t interval_ms) {
  if (interval_ms <= 0) return 0;
  const int64_t phase = interval_ms / 2;
  return ((phase - now_ms % interval_ms) % interval_ms + interval_ms) % interval_ms;
}

std::string_view to_string(CloudWatchMetricSet set) {
  return set == CloudWatchMetricSet::Full ? "full" : "default";
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

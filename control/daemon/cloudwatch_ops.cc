// The Daemon's CloudWatch metrics (README.md, "CloudWatch metrics"): every cloudwatch.interval
// the admin worker asks the dataplane for `stats`, the loop turns the answer and the interval's HA
// state into datapoints (CloudWatchCollector) and hands them to the publisher's own thread
// (CloudWatchPublisher), which sends them with PutMetricData. Nothing here waits for the network
// on the loop, and the AWS worker (takeovers) is not used.
#include "common/log.h"
#include "control/daemon/daemon_impl.h"

namespace eipgate::control::detail {

void Daemon::start_cloudwatch() {
  const auto& cw = config_.cloudwatch;
  const std::string az =
      cw.availability_zone.empty() ? identity_.availability_zone : cw.availability_zone;
  aws::CloudWatchOptions o;
  o.region = identity_.region;
  o.endpoint = config_.aws.endpoints.cloudwatch;
  o.connect_timeout = config_.aws.timeouts.connect;
  o.timeout = config_.aws.timeouts.request;
  o.retry = config_.aws.retry;
  cw_http_ = std::make_unique<aws::CurlTransport>();
  aws::RetryEnv env = aws::RetryEnv::real();
  env.sleep = [this](std::chrono::milliseconds d) { cw_sleep_.sleep(d); };
  cw_client_ = std::make_unique<aws::CloudWatchClient>(*cw_http_, *ops_.credentials(), o, env);
  cw_collector_ = std::make_unique<CloudWatchCollector>(cw, az);
  aws::CloudWatchClient* client = cw_client_.get();
  cw_publisher_ = std::make_unique<CloudWatchPublisher>(
      cw.name_space, cw.max_queued,
      [client](const std::string& ns, std::vector<aws::MetricDatum> data) {
        client->put_metric_data(ns, std::move(data));
      });
  // The first sample, the baseline, is taken at once (so nothing that happens after start is
  // missed); the next ones fall in the middle of wall-clock periods of `interval` (60 s: at
  // hh:mm:30), so each CloudWatch minute gets exactly one datapoint from each instance even
  // when the loop is a few seconds late.
  next_cloudwatch_ = clock_.now();
  cw_baseline_taken_ = false;
  log::get()->info(
      "cloudwatch: {} metrics every {} ms to {} namespace {} (PairName={}, AvailabilityZone={})",
      to_string(cw.metrics), cw.interval.count(), cw_client_->endpoint(), cw.name_space,
      cw.pair_name, az);
}

void Daemon::cloudwatch_periodic(Millis now) {
  const ha::HaState state = fsm_->state();
  cw_collector_->observe(state == ha::HaState::Active,
                         state == ha::HaState::Standby && receiver_.in_sync());
  if (now < next_cloudwatch_ || cw_stats_in_flight_) return;
  if (!cw_baseline_taken_) {  // the first interval runs to the middle of the next period
    cw_baseline_taken_ = true;
    next_cloudwatch_ =
        now + Millis(cloudwatch_phase_delay(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count(),
                                            config_.cloudwatch.interval.count()));
  } else {
    next_cloudwatch_ += config_.cloudwatch.interval;
    if (next_cloudwatch_ <= now) next_cloudwatch_ = now + config_.cloudwatch.interval;
  }
  cw_stats_in_flight_ = true;
  admin_worker_->post([this] {
    json resp;
    admin::ClientError err;
    std::optional<json> stats;
    if (admin_->call("stats", json::object(), &resp, &err) && resp.is_object() &&
        resp.value("ok", false) && resp.contains("result") && resp["result"].is_object()) {
      stats = std::move(resp["result"]);
    }
    mailbox_.post([this, stats = std::move(stats)] {
      cw_stats_in_flight_ = false;
      const ha::HaState role = fsm_->state();
      cw_collector_->observe(role == ha::HaState::Active,
                             role == ha::HaState::Standby && receiver_.in_sync());
      if (!stats) log::get()->warn("cloudwatch: the dataplane did not answer stats");
      const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      cw_publisher_->enqueue(cw_collector_->finish_interval(stats, stats_.takeovers, now_s));
    });
  });
}

json Daemon::cloudwatch_status() const {
  const auto& cw = config_.cloudwatch;
  json out = {{"enabled", cw.enabled}};
  if (!cw_publisher_) return out;
  const auto s = cw_publisher_->stats();
  out.update({{"namespace", cw.name_space},
              {"metrics", std::string(to_string(cw.metrics))},
              {"pair_name", cw.pair_name},
              {"availability_zone", cw_collector_->availability_zone()},
              {"interval_ms", cw.interval.count()},
              {"endpoint", cw_client_->endpoint()},
              {"intervals_queued", s.intervals_queued},
              {"intervals_sent", s.intervals_sent},
              {"intervals_failed", s.intervals_failed},
              {"intervals_dropped", s.intervals_dropped},
              {"datapoints_sent", s.datapoints_sent},
              {"datapoints_failed", s.datapoints_failed},
              {"datapoints_dropped", s.datapoints_dropped},
              {"requests_ok", cw_client_->calls_ok()},
              {"requests_failed", cw_client_->calls_failed()},
              {"retries", cw_client_->retrier().retries()},
              {"queued", s.queued},
              {"dataplane_resets", cw_collector_->dataplane_resets()},
              {"last_error", s.last_error},
              {"last_sent_at_ms", s.last_sent_at_ms}});
  return out;
}

}  // namespace eipgate::control::detail

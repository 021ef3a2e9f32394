// The Daemon's CloudWatch Logs shipping (README.md, "CloudWatch Logs"): after bootstrap (region,
// instance id, credentials known) a LogsShipper thread of its own tails the dataplane's
// translation log and sends it with PutLogEvents. The loop only reads its counters for status.
#include "common/log.h"
#include "control/daemon/daemon_impl.h"

namespace eipgate::control::detail {

void Daemon::start_cloudwatch_logs() {
  const auto& cl = config_.cloudwatch_logs;
  logs_stream_ = cl.log_stream.empty() ? identity_.instance_id : cl.log_stream;
  aws::LogsOptions o;
  o.region = identity_.region;
  o.endpoint = config_.aws.endpoints.logs;
  o.dual_stack = config_.aws.endpoints.dual_stack;
  o.ip_family = config_.aws.ip_family;
  o.connect_timeout = config_.aws.timeouts.connect;
  o.timeout = config_.aws.timeouts.request;
  o.retry = config_.aws.retry;
  logs_http_ = std::make_unique<aws::CurlTransport>();
  aws::RetryEnv env = aws::RetryEnv::real();
  env.sleep = [this](std::chrono::milliseconds d) { logs_sleep_.sleep(d); };
  logs_client_ = std::make_unique<aws::LogsClient>(*logs_http_, *ops_.credentials(), o, env);
  LogsShipper::Options so;
  so.path = cl.path;
  so.from_end = true;  // a restart resumes at the file's end: nothing is sent twice
  so.interval = cl.interval;
  so.byte_budget = cl.byte_budget;
  so.max_queued = cl.max_queued;
  aws::LogsClient* client = logs_client_.get();
  const std::string group = cl.log_group;
  const std::string stream = logs_stream_;
  logs_shipper_ = std::make_unique<LogsShipper>(
      so,
      [client, group, stream](const std::vector<aws::LogEvent>& batch) {
        return client->put_log_events(group, stream, batch);
      },
      [client, group, stream] { client->create_log_stream(group, stream); });
  log::get()->info(
      "cloudwatch_logs: {} every {} ms to {} group {} stream {} (budget {} bytes/min, queue {} "
      "bytes)",
      cl.path, cl.interval.count(), logs_client_->endpoint(), cl.log_group, logs_stream_,
      cl.byte_budget, cl.max_queued);
}

json Daemon::cloudwatch_logs_status() const {
  const auto& cl = config_.cloudwatch_logs;
  json out = {{"enabled", cl.enabled}};
  if (!logs_shipper_) return out;
  const auto s = logs_shipper_->stats();
  out.update({{"log_group", cl.log_group},
              {"log_stream", logs_stream_},
              {"path", cl.path},
              {"endpoint", logs_client_->endpoint()},
              {"interval_ms", cl.interval.count()},
              {"byte_budget", cl.byte_budget},
              {"max_queued", cl.max_queued},
              {"lines_read", s.lines_read},
              {"events_sent", s.events_sent},
              {"events_rejected", s.events_rejected},
              {"events_failed", s.events_failed},
              {"events_dropped_budget", s.events_dropped_budget},
              {"events_dropped_queue", s.events_dropped_queue},
              {"events_dropped_long", s.events_dropped_long},
              {"bytes_sent", s.bytes_sent},
              {"bytes_dropped", s.bytes_dropped},
              {"requests_ok", logs_client_->calls_ok()},
              {"requests_failed", logs_client_->calls_failed()},
              {"retries", logs_client_->retrier().retries()},
              {"rotations", s.rotations},
              {"truncations", s.truncations},
              {"rounds", s.rounds},
              {"offset", s.offset},
              {"queued_events", s.queued_events},
              {"queued_bytes", s.queued_bytes},
              {"last_error", s.last_error},
              {"last_sent_at_ms", s.last_sent_at_ms}});
  return out;
}

}  // namespace eipgate::control::detail

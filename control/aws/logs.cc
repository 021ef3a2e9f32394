// CloudWatch Logs (JSON 1.1): request bodies, batching at PutLogEvents' limits, JSON error
// parsing, and the client (SigV4 by libcurl through HttpTransport, retries through Retrier).
#include "control/aws/logs.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/log.h"

namespace eipgate::aws {
namespace {

using nlohmann::json;

constexpr std::string_view kTargetPrefix = "Logs_20140328.";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

template <size_t N>
bool one_of(std::string_view code, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), code) != set.end();
}

ErrorKind classify_logs_error(std::string_view code, long http_status) {
  static constexpr std::array<std::string_view, 6> kAuth = {
      "AccessDeniedException",     "UnrecognizedClientException", "ExpiredTokenException",
      "InvalidSignatureException", "MissingAuthenticationToken",  "IncompleteSignature"};
  static constexpr std::array<std::string_view, 3> kServer = {
      "ServiceUnavailableException", "InternalFailure", "InternalServerError"};
  if (code == "ResourceNotFoundException") return ErrorKind::NotFound;
  if (code == "ResourceAlreadyExistsException") return ErrorKind::Conflict;
  if (one_of(code, kAuth)) return ErrorKind::Auth;
  if (one_of(code, kServer)) return ErrorKind::Server;
  // ThrottlingException, InvalidParameterException, ... and the status for the rest.
  return classify_error(code, http_status);
}

}  // namespace

std::string encode_put_log_events(std::string_view group, std::string_view stream,
                                  const std::vector<LogEvent>& events) {
  json list = json::array();
  for (const auto& e : events) {
    list.push_back(json{{"timestamp", e.timestamp_ms}, {"message", e.message}});
  }
  return dump(json{{"logGroupName", group}, {"logStreamName", stream}, {"logEvents", list}});
}

std::string encode_create_log_stream(std::string_view group, std::string_view stream) {
  return dump(json{{"logGroupName", group}, {"logStreamName", stream}});
}

std::vector<std::vector<LogEvent>> batch_log_events(std::vector<LogEvent> events, size_t max_events,
                                                    size_t max_bytes, int64_t max_span_ms) {
  std::stable_sort(events.begin(), events.end(), [](const LogEvent& a, const LogEvent& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  std::vector<std::vector<LogEvent>> out;
  std::vector<LogEvent> current;
  size_t bytes = 0;
  for (auto& e : events) {
    const size_t size = log_event_size(e);
    if (size > kMaxLogEventBytes + kLogEventOverhead || size > max_bytes) {
      throw AwsError(ErrorKind::InvalidParameter, "InvalidParameterException",
                     "a log event of " + std::to_string(e.message.size()) +
                         " bytes is larger than one PutLogEvents call may carry");
    }
    if (!current.empty() && (current.size() >= max_events || bytes + size > max_bytes ||
                             e.timestamp_ms - current.front().timestamp_ms > max_span_ms)) {
      out.push_back(std::move(current));
      current.clear();
      bytes = 0;
    }
    bytes += size;
    current.push_back(std::move(e));
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

AwsError parse_logs_error(std::string_view body, long http_status) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("__type") && doc["__type"].is_string()) {
    std::string code = doc["__type"].get<std::string>();
    // "com.amazonaws.logs#ResourceNotFoundException" → "ResourceNotFoundException"
    if (const auto hash = code.rfind('#'); hash != std::string::npos) code.erase(0, hash + 1);
    std::string message;
    for (const char* key : {"message", "Message"}) {
      if (doc.contains(key) && doc[key].is_string()) message = doc[key].get<std::string>();
    }
    const ErrorKind kind = classify_logs_error(code, http_status);  // before code is moved
    return AwsError(kind, std::move(code), std::move(message), http_status);
  }
  ErrorKind kind = classify_error("", http_status);
  if (kind == ErrorKind::Other) kind = ErrorKind::Protocol;
  return AwsError(kind, "Http" + std::to_string(http_status),
                  "response without a CloudWatch Logs error document: '" + body_excerpt(body) + "'",
                  http_status);
}

PutLogEventsResult parse_put_log_events_result(std::string_view body, size_t n) {
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) {
    throw AwsError(ErrorKind::Protocol, "UnexpectedJson",
                   "PutLogEvents: expected a JSON object, got '" + body_excerpt(body) + "'");
  }
  PutLogEventsResult r{n, 0};
  if (!doc.contains("rejectedLogEventsInfo") || !doc["rejectedLogEventsInfo"].is_object()) {
    return r;
  }
  const json& info = doc["rejectedLogEventsInfo"];
  auto index = [&](const char* key) -> std::optional<int64_t> {
    if (!info.contains(key) || !info[key].is_number_integer()) return std::nullopt;
    return std::clamp<int64_t>(info[key].get<int64_t>(), -1, static_cast<int64_t>(n));
  };
  // Events [0, tooOld) and [0, expired) are too old; [tooNew, n) too new.
  int64_t old_end = 0;
  if (auto v = index("tooOldLogEventEndIndex")) old_end = std::max(old_end, *v);
  if (auto v = index("expiredLogEventEndIndex")) old_end = std::max(old_end, *v);
  int64_t new_start = static_cast<int64_t>(n);
  if (auto v = index("tooNewLogEventStartIndex"); v && *v >= 0) new_start = *v;
  new_start = std::max(new_start, old_end);
  r.rejected = static_cast<size_t>(old_end + (static_cast<int64_t>(n) - new_start));
  r.accepted = n - r.rejected;
  return r;
}

LogsClient::LogsClient(HttpTransport& http, CredentialsProvider& credentials, LogsOptions options,
                       RetryEnv env)
    : ServiceClient(http, credentials, std::move(options),
                    ServiceSpec{"logs", "logs", "CloudWatch Logs", /*has_dual_stack=*/true},
                    std::move(env)) {}

std::string LogsClient::call(std::string_view target, const std::string& body) {
  try {
    std::string out = run("logs:" + std::string(target), [&](Credentials* used) {
      HttpResponse resp = post(target,
                               {{"Content-Type", "application/x-amz-json-1.1"},
                                {"X-Amz-Target", std::string(kTargetPrefix) + std::string(target)}},
                               body, used);
      if (resp.status >= 200 && resp.status < 300) return std::move(resp.body);
      throw parse_logs_error(resp.body, resp.status);
    });
    calls_ok_.fetch_add(1);
    return out;
  } catch (const AwsError&) {
    calls_failed_.fetch_add(1);
    throw;
  }
}

PutLogEventsResult LogsClient::put_log_events(std::string_view group, std::string_view stream,
                                              const std::vector<LogEvent>& batch) {
  if (batch.empty()) return {};
  const std::string body = call("PutLogEvents", encode_put_log_events(group, stream, batch));
  return parse_put_log_events_result(body, batch.size());
}

void LogsClient::create_log_stream(std::string_view group, std::string_view stream) {
  try {
    call("CreateLogStream", encode_create_log_stream(group, stream));
  } catch (const AwsError& e) {
    if (e.code() != "ResourceAlreadyExistsException") throw;
    // Counted as failed by call(); it is the expected answer after a restart: count it ok.
    calls_failed_.fetch_sub(1);
    uncount(e);
    calls_ok_.fetch_add(1);
  }
}

}  // namespace eipgate::aws

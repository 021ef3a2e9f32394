// CloudWatch Logs over the JSON 1.1 protocol (SigV4 service "logs"): PutLogEvents and
// CreateLogStream. POST / with Content-Type application/x-amz-json-1.1 and X-Amz-Target
// Logs_20140328.<Operation>, signed by libcurl (aws/http.h); events batched at the API's limits
// (10,000 events, 1,048,576 bytes counting 26 bytes per event, chronological, 24 h per batch);
// errors parsed from the JSON body (__type, message); throttling/5xx/transport retried with
// backoff (aws/retry.h); every call counted. Sequence tokens are not used (no longer required).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/aws/credentials.h"
#include "control/aws/error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"
#include "control/aws/service_client.h"

namespace eipgate::aws {

// PutLogEvents' documented limits.
inline constexpr size_t kMaxLogEventsPerCall = 10000;
inline constexpr size_t kMaxLogBatchBytes = 1048576;  // sum of (UTF-8 message bytes + 26)
inline constexpr size_t kLogEventOverhead = 26;
// The largest event eipgate sends (256 KiB with the overhead: the long-standing per-event limit;
// a translation-log line is about 300 bytes).
inline constexpr size_t kMaxLogEventBytes = 262144 - kLogEventOverhead;
inline constexpr int64_t kMaxLogBatchSpanMs = 24LL * 3600 * 1000;

struct LogEvent {
  int64_t timestamp_ms = 0;  // milliseconds since the epoch (UTC)
  std::string message;       // UTF-8
};

// What PutLogEvents counts for one event: its UTF-8 bytes + 26.
[[nodiscard]] inline size_t log_event_size(const LogEvent& e) {
  return e.message.size() + kLogEventOverhead;
}

// logs.<region>.amazonaws.com (IPv4 only) and logs.<region>.api.aws (dual stack).
using LogsOptions = ClientOptions;

// The JSON body of PutLogEvents: {"logGroupName":..,"logStreamName":..,"logEvents":[{"timestamp":
// ..,"message":..},..]}, events as given (the caller orders them; batch_log_events does).
[[nodiscard]] std::string encode_put_log_events(std::string_view group, std::string_view stream,
                                                const std::vector<LogEvent>& events);
// {"logGroupName":..,"logStreamName":..}
[[nodiscard]] std::string encode_create_log_stream(std::string_view group, std::string_view stream);

// Sorts events by timestamp (stable: equal times keep their order) and splits them into calls
// within every limit: at most max_events events and max_bytes (log_event_size summed) per call,
// and no call spanning more than max_span_ms from its first to its last event. Events larger
// than kMaxLogEventBytes must have been left out by the caller (throws InvalidParameter).
[[nodiscard]] std::vector<std::vector<LogEvent>> batch_log_events(
    std::vector<LogEvent> events, size_t max_events = kMaxLogEventsPerCall,
    size_t max_bytes = kMaxLogBatchBytes, int64_t max_span_ms = kMaxLogBatchSpanMs);

// A JSON 1.1 error body {"__type":"[prefix#]Code","message":".."} as a typed AwsError:
// ThrottlingException → throttling, ServiceUnavailableException/5xx → server,
// ResourceNotFoundException → not-found, ResourceAlreadyExistsException → conflict,
// AccessDeniedException/UnrecognizedClientException/ExpiredTokenException → auth, ...
// A body that is not one gives a Server (5xx) or Protocol error carrying the status.
[[nodiscard]] AwsError parse_logs_error(std::string_view body, long http_status);

// What one accepted PutLogEvents call reported (rejectedLogEventsInfo): events CloudWatch Logs
// refused inside an accepted batch (too old, too new, older than the group's retention).
struct PutLogEventsResult {
  size_t accepted = 0;
  size_t rejected = 0;
};

// Parses a PutLogEvents success body for a batch of n events.
[[nodiscard]] PutLogEventsResult parse_put_log_events_result(std::string_view body, size_t n);

class LogsClient : public ServiceClient {
 public:
  LogsClient(HttpTransport& http, CredentialsProvider& credentials, LogsOptions options,
             RetryEnv env = RetryEnv::real());

  // One PutLogEvents call (retried per the policy) of a batch made by batch_log_events. Throws
  // AwsError when it fails for good. Blocking: only on the shipper's own thread.
  PutLogEventsResult put_log_events(std::string_view group, std::string_view stream,
                                    const std::vector<LogEvent>& batch);
  // CreateLogStream; a stream that already exists is success. Throws AwsError otherwise.
  void create_log_stream(std::string_view group, std::string_view stream);

  [[nodiscard]] uint64_t calls_ok() const noexcept { return calls_ok_.load(); }
  [[nodiscard]] uint64_t calls_failed() const noexcept { return calls_failed_.load(); }

 private:
  std::string call(std::string_view target, const std::string& body);
  std::atomic<uint64_t> calls_ok_{0}, calls_failed_{0};
};

}  // namespace eipgate::aws

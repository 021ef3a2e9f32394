// CloudWatch PutMetricData over the Query API (Version 2010-08-01, SigV4 service "monitoring"):
// POST form-encoded like EC2 (aws/ec2.h), signed by libcurl, batched at the API's limits (1000
// MetricDatum and 1 MB of body per call), throttling/5xx/transport failures retried with backoff
// (aws/retry.h), errors typed (aws/error.h) and counted.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/aws/credentials.h"
#include "control/aws/error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"
#include "control/aws/service_client.h"

namespace eipgate::aws {

// PutMetricData's documented limits.
inline constexpr size_t kMaxDatumsPerCall = 1000;
inline constexpr size_t kMaxPutMetricDataBytes = 1000 * 1000;  // 1 MB of request body
inline constexpr size_t kMaxDimensionsPerDatum = 30;

struct MetricDimension {
  std::string name;
  std::string value;
};

struct MetricDatum {
  std::string name;
  std::vector<MetricDimension> dimensions;
  double value = 0;
  std::string unit = "Count";  // CloudWatch's StandardUnit: Count, Bytes, Seconds, None, ...
  // Seconds since the epoch (UTC); 0 = no Timestamp field (CloudWatch uses the time of receipt).
  int64_t timestamp_s = 0;
};

// monitoring.<region>.amazonaws.com; no dual-stack endpoint is assumed (IPv6 needs `endpoint`).
using CloudWatchOptions = ClientOptions;

// 2026-12-05T12:03:00Z (ISO 8601, what the Query API takes for Timestamp).
[[nodiscard]] std::string iso8601_utc(int64_t epoch_seconds);

// The form body of one PutMetricData call: Action=PutMetricData&Version=2010-08-01&Namespace=..
// &MetricData.member.N.MetricName=..&MetricData.member.N.Dimensions.member.M.Name=..&..Value=..
// &MetricData.member.N.Value=..&MetricData.member.N.Unit=..[&MetricData.member.N.Timestamp=..],
// values url-encoded. Throws AwsError(InvalidParameter) for data CloudWatch would refuse (an
// empty or over-long name, NaN or infinite values, more than 30 dimensions), so that a bad datum
// is found here and not as a 400 after the network round trip.
[[nodiscard]] std::string encode_put_metric_data(std::string_view name_space,
                                                 const std::vector<MetricDatum>& data);

// Splits data, in order, into calls within both limits (datums per call, bytes per body).
// Each datum alone must fit (one datum is a few hundred bytes, far below the byte limit).
[[nodiscard]] std::vector<std::vector<MetricDatum>> batch_metric_data(
    std::string_view name_space, std::vector<MetricDatum> data,
    size_t max_datums = kMaxDatumsPerCall, size_t max_bytes = kMaxPutMetricDataBytes);

// A CloudWatch (awsQuery) error document, <ErrorResponse><Error><Type/><Code/><Message/></Error>
// <RequestId/></ErrorResponse>, as a typed AwsError (Throttling → throttling, 5xx → server, ...).
// A body that is not one gives a Server (5xx) or Protocol error carrying the status.
[[nodiscard]] AwsError parse_cloudwatch_error(std::string_view xml, long http_status);

class CloudWatchClient : public ServiceClient {
 public:
  CloudWatchClient(HttpTransport& http, CredentialsProvider& credentials, CloudWatchOptions options,
                   RetryEnv env = RetryEnv::real());

  // Sends data in as many PutMetricData calls as the limits need; each call retried per the
  // policy. Every call is attempted even when one fails; then the first error is thrown (the
  // counters say how many calls and datums got through). Blocking: never on a latency-critical
  // thread.
  void put_metric_data(std::string_view name_space, std::vector<MetricDatum> data);

  [[nodiscard]] uint64_t calls_ok() const noexcept { return calls_ok_.load(); }
  [[nodiscard]] uint64_t datums_ok() const noexcept { return datums_ok_.load(); }
  [[nodiscard]] uint64_t calls_failed() const noexcept { return calls_failed_.load(); }
  [[nodiscard]] uint64_t datums_failed() const noexcept { return datums_failed_.load(); }

 private:
  void call(const std::string& body);
  std::atomic<uint64_t> calls_ok_{0}, datums_ok_{0}, calls_failed_{0}, datums_failed_{0};
};

}  // namespace eipgate::aws

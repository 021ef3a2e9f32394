// CloudWatch PutMetricData: request encoding, batching at the API limits, awsQuery error parsing,
// and the client (SigV4 by libcurl through HttpTransport, retries through Retrier).
#include "control/aws/cloudwatch.h"

#include <charconv>
#include <cmath>
#include <ctime>
#include <optional>
#include <pugixml.hpp>

#include "common/log.h"

namespace eipgate::aws {
namespace {

constexpr std::string_view kApiVersion = "2010-08-01";
constexpr size_t kMaxNameLength = 255;             // namespace, metric and dimension names
constexpr size_t kMaxDimensionValueLength = 1024;  // dimension values

// Shortest text that reads back as the same double ("17", "0.25", "1e+20").
std::string number_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void check_name(std::string_view what, std::string_view name, size_t max_length = kMaxNameLength) {
  if (name.empty() || name.size() > max_length) {
    throw AwsError(ErrorKind::InvalidParameter, "InvalidParameterValue",
                   std::string(what) + " must be 1 to " + std::to_string(max_length) +
                       " characters, got '" + std::string(name.substr(0, 40)) + "'");
  }
}

void append(std::string& body, std::string_view key, std::string_view value) {
  body += '&';
  body += key;  // keys are ASCII names and digits: nothing to encode
  body += '=';
  body += url_encode(value);
}

// The fields of datum number n (1-based) appended to body.
void encode_datum(std::string& body, size_t n, const MetricDatum& d) {
  check_name("MetricName", d.name);
  if (!std::isfinite(d.value)) {
    throw AwsError(ErrorKind::InvalidParameter, "InvalidParameterValue",
                   "metric " + d.name + ": the value must be a finite number");
  }
  if (d.dimensions.size() > kMaxDimensionsPerDatum) {
    throw AwsError(ErrorKind::InvalidParameter, "InvalidParameterValue",
                   "metric " + d.name + ": more than 30 dimensions");
  }
  const std::string p = "MetricData.member." + std::to_string(n) + ".";
  append(body, p + "MetricName", d.name);
  for (size_t i = 0; i < d.dimensions.size(); ++i) {
    const auto& dim = d.dimensions[i];
    check_name("Dimension name", dim.name);
    check_name("Dimension value", dim.value, kMaxDimensionValueLength);
    const std::string q = p + "Dimensions.member." + std::to_string(i + 1) + ".";
    append(body, q + "Name", dim.name);
    append(body, q + "Value", dim.value);
  }
  if (d.timestamp_s != 0) append(body, p + "Timestamp", iso8601_utc(d.timestamp_s));
  append(body, p + "Value", number_text(d.value));
  append(body, p + "Unit", d.unit.empty() ? "None" : d.unit);
}

std::string header(std::string_view name_space) {
  check_name("Namespace", name_space);
  if (name_space.starts_with("AWS/")) {
    throw AwsError(ErrorKind::InvalidParameter, "InvalidParameterValue",
                   "Namespace: 'AWS/' is reserved for AWS services");
  }
  return "Action=PutMetricData&Version=" + std::string(kApiVersion) +
         "&Namespace=" + url_encode(name_space);
}

}  // namespace

std::string iso8601_utc(int64_t epoch_seconds) {
  const auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::string encode_put_metric_data(std::string_view name_space,
                                   const std::vector<MetricDatum>& data) {
  std::string body = header(name_space);
  for (size_t i = 0; i < data.size(); ++i) encode_datum(body, i + 1, data[i]);
  return body;
}

std::vector<std::vector<MetricDatum>> batch_metric_data(std::string_view name_space,
                                                        std::vector<MetricDatum> data,
                                                        size_t max_datums, size_t max_bytes) {
  std::vector<std::vector<MetricDatum>> out;
  const size_t head = header(name_space).size();
  std::vector<MetricDatum> current;
  size_t bytes = head;
  for (auto& d : data) {
    // The datum's size at the highest index it could get in this call (index digits vary).
    std::string one;
    encode_datum(one, std::max<size_t>(max_datums, 1), d);
    if (head + one.size() > max_bytes) {
      throw AwsError(ErrorKind::InvalidParameter, "RequestTooLarge",
                     "metric " + d.name + ": one datum is larger than the request limit");
    }
    if (!current.empty() && (current.size() >= max_datums || bytes + one.size() > max_bytes)) {
      out.push_back(std::move(current));
      current.clear();
      bytes = head;
    }
    bytes += one.size();
    current.push_back(std::move(d));
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

AwsError parse_cloudwatch_error(std::string_view xml, long http_status) {
  pugi::xml_document doc;
  if (doc.load_buffer(xml.data(), xml.size())) {
    const auto root = doc.document_element();
    const auto error = root.child("Error");
    if (std::string_view(root.name()) == "ErrorResponse" && error) {
      std::string code = error.child("Code").text().as_string();
      const ErrorKind kind = classify_error(code, http_status);
      return AwsError(kind, std::move(code), error.child("Message").text().as_string(), http_status,
                      root.child("RequestId").text().as_string());
    }
  }
  ErrorKind kind = classify_error("", http_status);
  if (kind == ErrorKind::Other) kind = ErrorKind::Protocol;
  return AwsError(kind, "Http" + std::to_string(http_status),
                  "response without a CloudWatch error document: '" + body_excerpt(xml) + "'",
                  http_status);
}

CloudWatchClient::CloudWatchClient(HttpTransport& http, CredentialsProvider& credentials,
                                   CloudWatchOptions options, RetryEnv env)
    : ServiceClient(http, credentials, std::move(options),
                    ServiceSpec{"monitoring", "monitoring", "CloudWatch", /*has_dual_stack=*/false},
                    std::move(env)) {}

void CloudWatchClient::call(const std::string& body) {
  run("cloudwatch:PutMetricData", [&](Credentials* used) {
    HttpResponse resp =
        post("PutMetricData",
             {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}, body, used);
    if (resp.status < 200 || resp.status >= 300) {
      throw parse_cloudwatch_error(resp.body, resp.status);
    }
    pugi::xml_document doc;
    if (!doc.load_buffer(resp.body.data(), resp.body.size()) ||
        std::string_view(doc.document_element().name()) != "PutMetricDataResponse") {
      throw AwsError(
          ErrorKind::Protocol, "UnexpectedXml",
          "PutMetricData: expected <PutMetricDataResponse>, got '" + body_excerpt(resp.body) + "'");
    }
    return std::string();
  });
}

void CloudWatchClient::put_metric_data(std::string_view name_space, std::vector<MetricDatum> data) {
  if (data.empty()) return;
  const auto batches = batch_metric_data(name_space, std::move(data));
  std::optional<AwsError> first;
  for (const auto& batch : batches) {
    try {
      call(encode_put_metric_data(name_space, batch));
      calls_ok_.fetch_add(1);
      datums_ok_.fetch_add(batch.size());
    } catch (const AwsError& e) {
      calls_failed_.fetch_add(1);
      datums_failed_.fetch_add(batch.size());
      if (!first) first = e;
    }
  }
  if (first) throw *first;
}

}  // namespace eipgate::aws

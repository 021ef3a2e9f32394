// CloudWatch PutMetricData: the form body field by field, batching at the API's limits, the
// awsQuery error document, retries, and the client against the fake CloudWatch of
// tests/sim/fake_aws.py (SigV4 for service "monitoring" checked by botocore there).
#include "control/aws/cloudwatch.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/log.h"
#include "tests/unit/aws/fake_aws_fixture.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;
using testing::FakeAwsProcess;
using testing::FakeTime;
using testing::ScriptedTransport;

constexpr const char* kOk =
    R"(<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></PutMetricDataResponse>)";
constexpr const char* kThrottled =
    R"(<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>t1</RequestId></ErrorResponse>)";

MetricDatum datum(std::string name, double value, std::string unit = "Count", int64_t ts = 0) {
  MetricDatum d;
  d.name = std::move(name);
  d.dimensions = {{"PairName", "use1-az1-0"}, {"AvailabilityZone", "us-east-1a"}};
  d.value = value;
  d.unit = std::move(unit);
  d.timestamp_s = ts;
  return d;
}

Credentials creds() {
  Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  c.source = "static";
  return c;
}

CloudWatchOptions options(std::string endpoint = {}) {
  CloudWatchOptions o;
  o.region = "us-east-1";
  o.endpoint = std::move(endpoint);
  o.retry = RetryPolicy{4, milliseconds(100), milliseconds(1000), milliseconds(0)};
  return o;
}

TEST(CloudWatchEncoding, FormFieldsOfOneCall) {
  const auto body = encode_put_metric_data(
      "eipgate",
      {datum("HaActive", 1, "Count", 1796472180), datum("BytesOutToDestination", 1234.5, "Bytes")});
  EXPECT_EQ(body,
            "Action=PutMetricData&Version=2010-08-01&Namespace=eipgate"
            "&MetricData.member.1.MetricName=HaActive"
            "&MetricData.member.1.Dimensions.member.1.Name=PairName"
            "&MetricData.member.1.Dimensions.member.1.Value=use1-az1-0"
            "&MetricData.member.1.Dimensions.member.2.Name=AvailabilityZone"
            "&MetricData.member.1.Dimensions.member.2.Value=us-east-1a"
            "&MetricData.member.1.Timestamp=2026-12-05T12%3A03%3A00Z"
            "&MetricData.member.1.Value=1&MetricData.member.1.Unit=Count"
            "&MetricData.member.2.MetricName=BytesOutToDestination"
            "&MetricData.member.2.Dimensions.member.1.Name=PairName"
            "&MetricData.member.2.Dimensions.member.1.Value=use1-az1-0"
            "&MetricData.member.2.Dimensions.member.2.Name=AvailabilityZone"
            "&MetricData.member.2.Dimensions.member.2.Value=us-east-1a"
            "&MetricData.member.2.Value=1234.5&MetricData.member.2.Unit=Bytes");
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00Z");
}

TEST(CloudWatchEncoding, ValuesAreEncodedAndRefusedWhereCloudWatchWould) {
  auto d = datum("X", 3);
  d.dimensions = {{"PairName", "a b&c=d/e+f"}};
  const auto body = encode_put_metric_data("my/ns", {d});
  EXPECT_NE(body.find("Namespace=my%2Fns"), std::string::npos) << body;
  EXPECT_NE(body.find("Value=a%20b%26c%3Dd%2Fe%2Bf"), std::string::npos) << body;
  // Large counters keep every digit (no 6-digit %g rounding).
  EXPECT_NE(encode_put_metric_data("e", {datum("B", 123456789012.0)}).find("Value=123456789012"),
            std::string::npos);

  auto kind = [](const std::string& ns, const MetricDatum& x) {
    try {
      (void)encode_put_metric_data(ns, {x});
    } catch (const AwsError& e) {
      return e.kind();
    }
    return ErrorKind::Other;
  };
  EXPECT_EQ(kind("AWS/NATGateway", datum("X", 1)), ErrorKind::InvalidParameter);
  EXPECT_EQ(kind("", datum("X", 1)), ErrorKind::InvalidParameter);
  EXPECT_EQ(kind("e", datum("", 1)), ErrorKind::InvalidParameter);
  EXPECT_EQ(kind("e", datum("X", std::nan(""))), ErrorKind::InvalidParameter);
  EXPECT_EQ(kind("e", datum("X", std::numeric_limits<double>::infinity())),
            ErrorKind::InvalidParameter);
  auto many = datum("X", 1);
  many.dimensions.assign(31, MetricDimension{"d", "v"});
  EXPECT_EQ(kind("e", many), ErrorKind::InvalidParameter);
  auto empty_dim = datum("X", 1);
  empty_dim.dimensions = {{"PairName", ""}};
  EXPECT_EQ(kind("e", empty_dim), ErrorKind::InvalidParameter);
}

TEST(CloudWatchBatching, AtMost1000DatumsPerCall) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 2500; ++i) data.push_back(datum("M" + std::to_string(i), i));
  const auto batches = batch_metric_data("eipgate", data);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].size(), 1000u);
  EXPECT_EQ(batches[1].size(), 1000u);
  EXPECT_EQ(batches[2].size(), 500u);
  EXPECT_EQ(batches[0].front().name, "M0");  // order kept
  EXPECT_EQ(batches[1].front().name, "M1000");
  EXPECT_EQ(batches[2].back().name, "M2499");
  for (const auto& b : batches) {
    EXPECT_LE(encode_put_metric_data("eipgate", b).size(), kMaxPutMetricDataBytes);
  }
  EXPECT_EQ(batch_metric_data("eipgate", {datum("A", 1)}).size(), 1u);
  EXPECT_TRUE(batch_metric_data("eipgate", {}).empty());
}

TEST(CloudWatchBatching, TheByteLimitSplitsBeforeTheCountLimit) {
  // 1000 datums with long dimension values: ~1.1 MB in one call, so the bytes decide.
  std::vector<MetricDatum> data;
  for (int i = 0; i < 1000; ++i) {
    auto d = datum("M" + std::to_string(i), i);
    d.dimensions.push_back({"Long", std::string(700, 'x') + std::to_string(i)});
    data.push_back(std::move(d));
  }
  ASSERT_GT(encode_put_metric_data("eipgate", data).size(), kMaxPutMetricDataBytes);
  const auto batches = batch_metric_data("eipgate", data);
  ASSERT_EQ(batches.size(), 2u);
  size_t total = 0;
  for (const auto& b : batches) {
    EXPECT_LE(encode_put_metric_data("eipgate", b).size(), kMaxPutMetricDataBytes);
    total += b.size();
  }
  // The first call is filled to within 2 % (each datum's size is reckoned at the largest index
  // a call may give it, so a few bytes per datum are left unused).
  EXPECT_GT(encode_put_metric_data("eipgate", batches[0]).size(),
            kMaxPutMetricDataBytes * 98 / 100);
  EXPECT_EQ(total, 1000u);
  // A small byte limit: each call as full as it may be, and never over.
  const auto small = batch_metric_data("eipgate", data, 1000, 4000);
  for (const auto& b : small) {
    EXPECT_LE(encode_put_metric_data("eipgate", b).size(), 4000u);
  }
  EXPECT_GT(small.size(), 100u);
  EXPECT_THROW((void)batch_metric_data("eipgate", data, 1000, 300), AwsError);
}

TEST(CloudWatchErrors, AwsQueryErrorDocumentsAreTyped) {
  const auto t = parse_cloudwatch_error(kThrottled, 400);
  EXPECT_EQ(t.kind(), ErrorKind::Throttling);
  EXPECT_EQ(t.code(), "Throttling");
  EXPECT_EQ(t.request_id(), "t1");
  EXPECT_TRUE(t.retryable());
  const auto v = parse_cloudwatch_error(
      R"(<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>bad</Message></Error><RequestId>x</RequestId></ErrorResponse>)",
      400);
  EXPECT_EQ(v.kind(), ErrorKind::InvalidParameter);
  EXPECT_FALSE(v.retryable());
  EXPECT_EQ(v.message(), "bad");
  EXPECT_EQ(parse_cloudwatch_error("<html>bad gateway</html>", 502).kind(), ErrorKind::Server);
  EXPECT_EQ(parse_cloudwatch_error("nonsense", 400).kind(), ErrorKind::Protocol);
  EXPECT_EQ(parse_cloudwatch_error(
                R"(<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>)", 403)
                .kind(),
            ErrorKind::Auth);
}

TEST(CloudWatchClient, SignsForMonitoringAndRetriesThrottling) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  CloudWatchClient cw(http, cp, options(), t.env());
  http.push(400, kThrottled);
  http.push(503, "Service Unavailable");
  http.push(200, kOk);
  cw.put_metric_data("eipgate", {datum("HaActive", 1)});
  ASSERT_EQ(http.requests.size(), 3u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://monitoring.us-east-1.amazonaws.com/");
  ASSERT_TRUE(req.sigv4.has_value());
  EXPECT_EQ(req.sigv4->service, "monitoring");
  EXPECT_EQ(req.sigv4->region, "us-east-1");
  EXPECT_EQ(t.sleeps.size(), 2u);  // backoff before each retry
  EXPECT_EQ(cw.retrier().retries(), 2u);
  EXPECT_EQ(cw.calls_ok(), 1u);
  EXPECT_EQ(cw.datums_ok(), 1u);
}

TEST(CloudWatchClient, AFailedCallIsCountedAndTheOthersStillGo) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  auto o = options();
  o.retry.max_attempts = 2;
  CloudWatchClient cw(http, cp, o, t.env());
  std::vector<MetricDatum> data;
  for (int i = 0; i < 1500; ++i) data.push_back(datum("M", i));
  http.push(400, kThrottled);  // first call: throttled twice, given up
  http.push(400, kThrottled);
  http.push(200, kOk);  // second call
  try {
    cw.put_metric_data("eipgate", data);
    FAIL() << "expected the first call's error";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Throttling);
  }
  EXPECT_EQ(http.requests.size(), 3u);
  EXPECT_EQ(cw.calls_failed(), 1u);
  EXPECT_EQ(cw.datums_failed(), 1000u);
  EXPECT_EQ(cw.calls_ok(), 1u);
  EXPECT_EQ(cw.datums_ok(), 500u);
  EXPECT_EQ(cw.errors(ErrorKind::Throttling), 1u);
}

TEST(CloudWatchClient, NonRetryableErrorsAreNotRepeated) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  CloudWatchClient cw(http, cp, options(), t.env());
  http.push(
      400,
      R"(<ErrorResponse><Error><Code>InvalidParameterValue</Code><Message>no</Message></Error></ErrorResponse>)");
  EXPECT_THROW(cw.put_metric_data("eipgate", {datum("X", 1)}), AwsError);
  EXPECT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(cw.errors(ErrorKind::InvalidParameter), 1u);
}

TEST(CloudWatchClient, LogsRetriesButNeverSecrets) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = eipgate::log::get();
  const auto old_level = logger->level();
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::trace);

  ScriptedTransport http;
  Credentials c = creds();
  c.access_key_id = "ASIAEXAMPLEKEYID1234";
  c.session_token = "T0KEN-session-token";
  StaticCredentialsProvider cp(c);
  FakeTime t;
  CloudWatchClient cw(http, cp, options(), t.env());
  http.push(400, kThrottled);
  http.push(
      403,
      R"(<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error><RequestId>e1</RequestId></ErrorResponse>)");
  EXPECT_THROW(cw.put_metric_data("eipgate", {datum("X", 1)}), AwsError);
  // The token went as a signed header, never into the body.
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[0].sigv4->session_token, "T0KEN-session-token");
  EXPECT_EQ(http.requests[0].body.find("T0KEN"), std::string::npos);

  logger->sinks().pop_back();
  logger->set_level(old_level);
  const std::string text = captured.str();
  EXPECT_NE(text.find("cloudwatch:PutMetricData: attempt 1/4 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("ASIA...1234"), std::string::npos) << text;  // redacted key id
  EXPECT_EQ(text.find("ASIAEXAMPLEKEYID1234"), std::string::npos) << text;
  EXPECT_EQ(text.find("wJalrXUtnFEMI"), std::string::npos) << text;
  EXPECT_EQ(text.find("T0KEN"), std::string::npos) << text;
  EXPECT_EQ(cw.errors(ErrorKind::Auth), 1u);
}

TEST(CloudWatchClient, AgainstTheFakeCloudWatch) {
  FakeAwsProcess fake;
  CurlTransport curl;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  CloudWatchClient cw(curl, cp, options(fake.base_url()), t.env());
  std::vector<MetricDatum> data;
  for (int i = 0; i < 1203; ++i) data.push_back(datum("M" + std::to_string(i % 7), i, "Count"));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  data.push_back(datum("BytesOutToDestination", 98765432101.0, "Bytes", now));
  fake.faults({{"throttle_next", 2}, {"actions", {"PutMetricData"}}});
  cw.put_metric_data("eipgate", data);
  EXPECT_EQ(cw.calls_ok(), 2u);
  EXPECT_EQ(cw.retrier().retries(), 2u);
  const auto got = nlohmann::json::parse(fake.control("GET", "metrics").body);
  ASSERT_EQ(got.size(), 1204u);
  EXPECT_EQ(got[0]["namespace"], "eipgate");
  EXPECT_EQ(got[0]["metric_name"], "M0");
  EXPECT_EQ(got[0]["dimensions"]["PairName"], "use1-az1-0");
  EXPECT_EQ(got[0]["dimensions"]["AvailabilityZone"], "us-east-1a");
  EXPECT_EQ(got[1202]["value"], 1202.0);
  EXPECT_EQ(got[1203]["metric_name"], "BytesOutToDestination");
  EXPECT_EQ(got[1203]["value"], 98765432101.0);
  EXPECT_EQ(got[1203]["unit"], "Bytes");
  EXPECT_EQ(got[1203]["timestamp"], iso8601_utc(now));
  // A wrong secret: the signature check refuses it, nothing is kept.
  fake.control("POST", "metrics", {{"clear", true}});
  StaticCredentialsProvider wrong([] {
    Credentials c = creds();
    c.secret_access_key = "not-the-secret";
    return c;
  }());
  CloudWatchClient bad(curl, wrong, options(fake.base_url()), t.env());
  try {
    bad.put_metric_data("eipgate", {datum("X", 1)});
    FAIL() << "a wrong signature was accepted";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth) << e.what();
  }
  EXPECT_TRUE(nlohmann::json::parse(fake.control("GET", "metrics").body).empty());
}

}  // namespace
}  // namespace eipgate::aws

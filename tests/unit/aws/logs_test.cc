// CloudWatch Logs (JSON 1.1): PutLogEvents/CreateLogStream bodies and headers, batching at the
// API's limits, JSON error parsing, rejected-event accounting, retries, the endpoints, and the
// client against the fake CloudWatch Logs of tests/sim/fake_aws.py (SigV4 for service "logs"
// checked by botocore there).
#include "control/aws/logs.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/aws/fake_aws_fixture.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::FakeAwsProcess;
using testing::FakeTime;
using testing::ScriptedTransport;

Credentials creds() {
  Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  c.source = "static";
  return c;
}

LogsOptions options(std::string endpoint = {}) {
  LogsOptions o;
  o.region = "us-east-1";
  o.endpoint = std::move(endpoint);
  o.retry = RetryPolicy{4, milliseconds(100), milliseconds(1000), milliseconds(0)};
  return o;
}

std::string header(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

TEST(LogsEncoding, PutLogEventsBody) {
  const auto body = encode_put_log_events(
      "/eipgate/translations", "i-0aaaaaaaaaaaaaaa1",
      {{1796474096120, R"({"t":"x","ev":"open"})"}, {1796474096121, "two \"quoted\"\tand é"}});
  const json j = json::parse(body);
  EXPECT_EQ(j["logGroupName"], "/eipgate/translations");
  EXPECT_EQ(j["logStreamName"], "i-0aaaaaaaaaaaaaaa1");
  ASSERT_EQ(j["logEvents"].size(), 2u);
  EXPECT_EQ(j["logEvents"][0]["timestamp"], 1796474096120);
  EXPECT_EQ(j["logEvents"][0]["message"], R"({"t":"x","ev":"open"})");
  EXPECT_EQ(j["logEvents"][1]["message"], "two \"quoted\"\tand é");
  EXPECT_FALSE(j.contains("sequenceToken"));
  EXPECT_EQ(json::parse(encode_create_log_stream("g", "s")),
            (json{{"logGroupName", "g"}, {"logStreamName", "s"}}));
}

TEST(LogsBatching, SortsAndSplitsAtEveryLimit) {
  // Out of order in: chronological out, equal times keep their order.
  std::vector<LogEvent> ev = {{30, "c"}, {10, "a1"}, {20, "b"}, {10, "a2"}};
  auto b = batch_log_events(ev);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0][0].message, "a1");
  EXPECT_EQ(b[0][1].message, "a2");
  EXPECT_EQ(b[0][3].message, "c");

  // Count limit.
  std::vector<LogEvent> many;
  for (int i = 0; i < 25001; ++i) many.push_back({1000 + i, "x"});
  b = batch_log_events(many);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].size(), kMaxLogEventsPerCall);
  EXPECT_EQ(b[2].size(), 5001u);

  // Byte limit: each event counts its bytes + 26. 1000-byte messages: 1026 each, 1022 fit.
  std::vector<LogEvent> big;
  for (int i = 0; i < 2050; ++i) big.push_back({i, std::string(1000, 'm')});
  b = batch_log_events(big);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].size(), kMaxLogBatchBytes / 1026);
  for (const auto& batch : b) {
    size_t bytes = 0;
    for (const auto& e : batch) bytes += log_event_size(e);
    EXPECT_LE(bytes, kMaxLogBatchBytes);
  }
  // Exactly at the limit fits: four of the largest events.
  std::vector<LogEvent> full;
  for (int i = 0; i < 4; ++i) full.push_back({i, std::string(kMaxLogEventBytes, 'a')});
  EXPECT_EQ(batch_log_events(full).size(), 1u);
  full.push_back({5, "x"});
  EXPECT_EQ(batch_log_events(full).size(), 2u);

  // 24-hour span: a new call once an event is more than 24 h after the call's first.
  const int64_t day = kMaxLogBatchSpanMs;
  b = batch_log_events({{0, "a"}, {day, "b"}, {day + 1, "c"}, {2 * day + 2, "d"}});
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].size(), 2u);
  EXPECT_EQ(b[1][0].message, "c");
  EXPECT_EQ(b[2][0].message, "d");

  // An event too large for any call is the caller's bug.
  EXPECT_THROW((void)batch_log_events({{1, std::string(kMaxLogEventBytes + 1, 'z')}}), AwsError);
  EXPECT_TRUE(batch_log_events({}).empty());
}

TEST(LogsErrors, JsonErrorBodies) {
  auto e = parse_logs_error(
      R"({"__type":"com.amazonaws.logs#ResourceNotFoundException","message":"The specified log group does not exist."})",
      400);
  EXPECT_EQ(e.code(), "ResourceNotFoundException");
  EXPECT_EQ(e.kind(), ErrorKind::NotFound);
  EXPECT_EQ(e.message(), "The specified log group does not exist.");
  EXPECT_EQ(
      parse_logs_error(R"({"__type":"ThrottlingException","message":"Rate exceeded"})", 400).kind(),
      ErrorKind::Throttling);
  EXPECT_EQ(parse_logs_error(R"({"__type":"ServiceUnavailableException"})", 503).kind(),
            ErrorKind::Server);
  EXPECT_EQ(parse_logs_error(R"({"__type":"InvalidParameterException","message":"x"})", 400).kind(),
            ErrorKind::InvalidParameter);
  EXPECT_EQ(parse_logs_error(R"({"__type":"AccessDeniedException","Message":"no"})", 400).kind(),
            ErrorKind::Auth);
  EXPECT_EQ(parse_logs_error(R"({"__type":"AccessDeniedException","Message":"no"})", 400).message(),
            "no");
  EXPECT_EQ(parse_logs_error(R"({"__type":"ResourceAlreadyExistsException"})", 400).kind(),
            ErrorKind::Conflict);
  EXPECT_TRUE(parse_logs_error(R"({"__type":"ThrottlingException"})", 400).retryable());
  EXPECT_FALSE(parse_logs_error(R"({"__type":"InvalidParameterException"})", 400).retryable());
  EXPECT_EQ(parse_logs_error("<html>bad gateway</html>", 502).kind(), ErrorKind::Server);
  EXPECT_EQ(parse_logs_error("", 400).kind(), ErrorKind::Protocol);
}

TEST(LogsErrors, RejectedEventsInAnAcceptedCall) {
  auto r = parse_put_log_events_result(R"({"nextSequenceToken":"x"})", 10);
  EXPECT_EQ(r.accepted, 10u);
  EXPECT_EQ(r.rejected, 0u);
  r = parse_put_log_events_result(
      R"({"rejectedLogEventsInfo":{"tooOldLogEventEndIndex":2,"tooNewLogEventStartIndex":8}})", 10);
  EXPECT_EQ(r.rejected, 4u);
  EXPECT_EQ(r.accepted, 6u);
  r = parse_put_log_events_result(R"({"rejectedLogEventsInfo":{"expiredLogEventEndIndex":3}})", 5);
  EXPECT_EQ(r.rejected, 3u);
  EXPECT_THROW((void)parse_put_log_events_result("not json", 1), AwsError);
}

TEST(LogsClient, RequestShapeEndpointsAndRetries) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  LogsClient c(http, cp, options(), t.env());
  EXPECT_EQ(c.endpoint(), "https://logs.us-east-1.amazonaws.com/");
  http.push(400, R"({"__type":"ThrottlingException","message":"Rate exceeded"})");
  http.push(503, R"({"__type":"ServiceUnavailableException","message":"later"})");
  http.push(200, "{}");
  const auto r = c.put_log_events("g", "s", {{1, "a"}, {2, "b"}});
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(c.retrier().retries(), 2u);
  EXPECT_EQ(c.calls_ok(), 1u);
  ASSERT_EQ(http.requests.size(), 3u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://logs.us-east-1.amazonaws.com/");
  EXPECT_EQ(header(req, "Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(header(req, "X-Amz-Target"), "Logs_20140328.PutLogEvents");
  ASSERT_TRUE(req.sigv4.has_value());
  EXPECT_EQ(req.sigv4->service, "logs");
  EXPECT_EQ(req.sigv4->region, "us-east-1");

  // Not retried: invalid parameter; counted as a failed call by kind.
  http.push(400, R"({"__type":"InvalidParameterException","message":"bad"})");
  EXPECT_THROW((void)c.put_log_events("g", "s", {{1, "a"}}), AwsError);
  EXPECT_EQ(c.calls_failed(), 1u);
  EXPECT_EQ(c.errors(ErrorKind::InvalidParameter), 1u);

  // CreateLogStream: an existing stream is success.
  http.push(400, R"({"__type":"ResourceAlreadyExistsException","message":"exists"})");
  c.create_log_stream("g", "s");
  EXPECT_EQ(header(http.requests.back(), "X-Amz-Target"), "Logs_20140328.CreateLogStream");
  EXPECT_EQ(c.calls_failed(), 1u);
  EXPECT_EQ(c.calls_ok(), 2u);

  // Dual stack: .api.aws, chosen also by ip_family ipv6; an explicit endpoint wins.
  LogsOptions o = options();
  o.dual_stack = true;
  EXPECT_EQ(LogsClient(http, cp, o, t.env()).endpoint(), "https://logs.us-east-1.api.aws/");
  o = options();
  o.ip_family = IpFamily::V6;
  EXPECT_EQ(LogsClient(http, cp, o, t.env()).endpoint(), "https://logs.us-east-1.api.aws/");
  EXPECT_EQ(LogsClient(http, cp, options("http://127.0.0.1:9"), t.env()).endpoint(),
            "http://127.0.0.1:9/");
}

TEST(LogsClient, AgainstTheFakeCloudWatchLogs) {
  FakeAwsProcess fake;
  CurlTransport curl;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  LogsClient c(curl, cp, options(fake.base_url()), t.env());
  // No group yet: not found, not retried.
  try {
    c.create_log_stream("/eipgate/tx", "i-1");
    FAIL() << "CreateLogStream in a missing group succeeded";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound) << e.what();
  }
  fake.control("POST", "logs", {{"create_group", "/eipgate/tx"}});
  c.create_log_stream("/eipgate/tx", "i-1");
  c.create_log_stream("/eipgate/tx", "i-1");  // exists: fine
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<LogEvent> events;
  for (int i = 0; i < 12000; ++i) {
    events.push_back({now - 12000 + i, R"({"t":"x","n":)" + std::to_string(i) + "}"});
  }
  fake.faults({{"throttle_next", 2}, {"actions", {"PutLogEvents"}}});
  size_t sent = 0;
  for (const auto& batch : batch_log_events(events)) {
    sent += c.put_log_events("/eipgate/tx", "i-1", batch).accepted;
  }
  EXPECT_EQ(sent, 12000u);
  EXPECT_EQ(c.retrier().retries(), 2u);
  const json got = json::parse(fake.control("GET", "logs").body)["/eipgate/tx"]["i-1"];
  ASSERT_EQ(got.size(), 12000u);
  EXPECT_EQ(got[0]["message"], R"({"t":"x","n":0})");
  EXPECT_EQ(got[11999]["timestamp"], now - 1);
  // A too-new event (over 2 h ahead) inside an accepted call: rejected, the rest kept.
  const auto r =
      c.put_log_events("/eipgate/tx", "i-1", {{now, "fresh"}, {now + 3LL * 3600 * 1000, "future"}});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_EQ(r.rejected, 1u);
  // A missing stream; a wrong secret (the signature check refuses it).
  try {
    (void)c.put_log_events("/eipgate/tx", "nope", {{now, "x"}});
    FAIL() << "PutLogEvents to a missing stream succeeded";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "ResourceNotFoundException") << e.what();
  }
  StaticCredentialsProvider wrong([] {
    Credentials w = creds();
    w.secret_access_key = "not-the-secret";
    return w;
  }());
  LogsClient bad(curl, wrong, options(fake.base_url()), t.env());
  try {
    (void)bad.put_log_events("/eipgate/tx", "i-1", {{now, "x"}});
    FAIL() << "a wrong signature was accepted";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth) << e.what();
  }
  EXPECT_EQ(json::parse(fake.control("GET", "logs").body)["/eipgate/tx"]["i-1"].size(), 12001u);
}

}  // namespace
}  // namespace eipgate::aws

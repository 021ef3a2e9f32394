// Ec2Client over a scripted transport: what it sends, how it maps answers, retries, paging, and
// that credentials never reach the log.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "common/log.h"
#include "control/aws/cloudwatch.h"
#include "control/aws/ec2.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;
using testing::FakeTime;
using testing::ScriptedTransport;

constexpr const char* kOk =
    R"(<ReplaceRouteResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><return>true</return></ReplaceRouteResponse>)";
constexpr const char* kThrottled =
    R"(<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>t1</RequestID></Response>)";

Credentials creds() {
  Credentials c;
  c.access_key_id = "ASIAEXAMPLEKEYID1234";
  c.secret_access_key = "s3cr3t/Secret+Key";
  c.session_token = "T0KEN-session-token";
  c.source = "static";
  return c;
}

Ec2Options options() {
  Ec2Options o;
  o.region = "eu-west-1";
  o.retry = RetryPolicy{4, milliseconds(100), milliseconds(1000), milliseconds(0)};
  return o;
}

TEST(Ec2Client, DualStackUsesTheApiAwsEndpointOverIpv6) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Options o = options();
  o.dual_stack = true;
  o.ip_family = IpFamily::V6;
  Ec2Client ec2(http, cp, o, t.env());
  http.push(200, kOk);
  ec2.replace_route("rtb-0aa00000000000001", "0.0.0.0/0", "eni-0b");
  ASSERT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(http.requests[0].url, "https://ec2.eu-west-1.api.aws/");
  EXPECT_EQ(http.requests[0].ip_family, IpFamily::V6);
  ASSERT_TRUE(http.requests[0].sigv4.has_value());
  EXPECT_EQ(http.requests[0].sigv4->service, "ec2");  // same signing name on either endpoint
}

TEST(Ec2Client, DefaultEndpointLeavesTheAddressFamilyToTheResolver) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  http.push(200, kOk);
  ec2.replace_route("rtb-0aa00000000000001", "0.0.0.0/0", "eni-0b");
  ASSERT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(http.requests[0].ip_family, IpFamily::Any);
}

TEST(Ec2Client, ExplicitEndpointWinsOverDualStack) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Options o = options();
  o.dual_stack = true;
  o.ip_family = IpFamily::V6;
  o.endpoint = "http://[fd00:255::1]:8080";
  Ec2Client ec2(http, cp, o, t.env());
  http.push(200, kOk);
  ec2.replace_route("rtb-0aa00000000000001", "0.0.0.0/0", "eni-0b");
  ASSERT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(http.requests[0].url, "http://[fd00:255::1]:8080/");
}

TEST(Ec2Client, Ipv6WithoutAnEndpointUsesTheDualStackOne) {
  // ec2.<region>.amazonaws.com is IPv4 only: IPv6 takes ec2.<region>.api.aws.
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  Ec2Options o = options();
  o.ip_family = IpFamily::V6;
  Ec2Client ec2(http, cp, o);
  EXPECT_EQ(ec2.endpoint(), "https://ec2." + o.region + ".api.aws/");
}

TEST(CloudWatchClient, RefusesIpv6WithoutAnEndpoint) {
  // No dual-stack CloudWatch endpoint is assumed: IPv6 needs one given.
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  CloudWatchOptions o = options();
  o.ip_family = IpFamily::V6;
  try {
    CloudWatchClient cw(http, cp, o);
    FAIL() << "expected AwsError";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "NoIpv6Endpoint");
  }
  o.endpoint = "http://[fd00:255::1]:8080";
  CloudWatchClient cw(http, cp, o);
  EXPECT_EQ(cw.endpoint(), "http://[fd00:255::1]:8080/");
}

TEST(Ec2Client, SendsSignedFormPostToTheRegionalEndpoint) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  http.push(200, kOk);
  ec2.replace_route("rtb-0aa00000000000001", "0.0.0.0/0", "eni-0b");
  ASSERT_EQ(http.requests.size(), 1u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://ec2.eu-west-1.amazonaws.com/");
  EXPECT_EQ(req.body,
            "Action=ReplaceRoute&Version=2016-11-15&RouteTableId=rtb-0aa00000000000001&"
            "DestinationCidrBlock=0.0.0.0%2F0&NetworkInterfaceId=eni-0b");
  ASSERT_EQ(req.headers.size(), 1u);
  EXPECT_EQ(req.headers[0].first, "Content-Type");
  ASSERT_TRUE(req.sigv4.has_value());
  EXPECT_EQ(req.sigv4->region, "eu-west-1");
  EXPECT_EQ(req.sigv4->service, "ec2");
  EXPECT_EQ(req.sigv4->access_key_id, "ASIAEXAMPLEKEYID1234");
  EXPECT_EQ(req.sigv4->session_token, "T0KEN-session-token");
}

TEST(Ec2Client, EndpointOverrideGetsARootPath) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  auto o = options();
  o.endpoint = "http://127.0.0.1:8080";
  Ec2Client ec2(http, cp, o);
  EXPECT_EQ(ec2.endpoint(), "http://127.0.0.1:8080/");
  EXPECT_THROW(Ec2Client(http, cp, Ec2Options{}), AwsError);  // no region
}

TEST(Ec2Client, FiltersAndIdsAreNumberedFromOne) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  Ec2Client ec2(http, cp, options());
  http.push(200, R"(<DescribeRouteTablesResponse><routeTableSet/></DescribeRouteTablesResponse>)");
  (void)ec2.describe_route_tables(
      {"rtb-1", "rtb-2"}, {{"tag:eipgate:az", {"use1-az1"}}, {"vpc-id", {"vpc-1", "vpc-2"}}});
  EXPECT_EQ(
      http.requests[0].body,
      "Action=DescribeRouteTables&Version=2016-11-15&RouteTableId.1=rtb-1&RouteTableId.2=rtb-2"
      "&Filter.1.Name=tag%3Aeipgate%3Aaz&Filter.1.Value.1=use1-az1&Filter.2.Name=vpc-id"
      "&Filter.2.Value.1=vpc-1&Filter.2.Value.2=vpc-2");
}

TEST(Ec2Client, CreateTagsNumbersResourcesAndTags) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  Ec2Client ec2(http, cp, options());
  http.push(200, R"(<CreateTagsResponse><return>true</return></CreateTagsResponse>)");
  ec2.create_tags({"rtb-1", "rtb-2"}, {{"eipgate:lease", "i-1 1733400000123 2000"}});
  EXPECT_EQ(http.requests[0].body,
            "Action=CreateTags&Version=2016-11-15&ResourceId.1=rtb-1&ResourceId.2=rtb-2"
            "&Tag.1.Key=eipgate%3Alease&Tag.1.Value=i-1%201733400000123%202000");
  http.push(200, R"(<CreateTagsResponse><return>false</return></CreateTagsResponse>)");
  EXPECT_THROW(ec2.create_tags({"rtb-1"}, {{"k", "v"}}), AwsError);
}

TEST(Ec2Client, FollowsNextToken) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  Ec2Client ec2(http, cp, options());
  http.push(
      200,
      R"(<DescribeRouteTablesResponse><routeTableSet><item><routeTableId>rtb-1</routeTableId></item></routeTableSet><nextToken>page2</nextToken></DescribeRouteTablesResponse>)");
  http.push(
      200,
      R"(<DescribeRouteTablesResponse><routeTableSet><item><routeTableId>rtb-2</routeTableId></item></routeTableSet></DescribeRouteTablesResponse>)");
  const auto tables = ec2.describe_route_tables({});
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[1].id, "rtb-2");
  EXPECT_NE(http.requests[1].body.find("&NextToken=page2"), std::string::npos);
}

TEST(Ec2Client, RetriesThrottlingServerAndTransportThenSucceeds) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  std::vector<ErrorKind> seen;
  ec2.retrier().set_on_retry([&](const RetryEvent& e) { seen.push_back(e.error->kind()); });
  http.push(503, kThrottled);
  http.push(500, "<html>boom</html>");
  http.push_error(AwsError(ErrorKind::Transport, "Timeout", "timed out"));
  http.push(200, kOk);
  ec2.replace_route("rtb-1", "0.0.0.0/0", "eni-1");
  EXPECT_EQ(seen, (std::vector<ErrorKind>{ErrorKind::Throttling, ErrorKind::Server,
                                          ErrorKind::Transport}));
  EXPECT_EQ(t.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
  EXPECT_EQ(http.requests.size(), 4u);
  // Every attempt is signed afresh (libcurl signs at send time with the current X-Amz-Date).
  for (const auto& r : http.requests) EXPECT_TRUE(r.sigv4.has_value());
}

TEST(Ec2Client, ClientErrorsAreTypedAndNotRetried) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  http.push(
      400,
      R"(<Response><Errors><Error><Code>InvalidRoute.NotFound</Code><Message>no route with destination-cidr-block 0.0.0.0/0 in route table rtb-1</Message></Error></Errors><RequestID>x1</RequestID></Response>)");
  try {
    ec2.replace_route("rtb-1", "0.0.0.0/0", "eni-1");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_EQ(e.code(), "InvalidRoute.NotFound");
    EXPECT_EQ(e.request_id(), "x1");
  }
  EXPECT_TRUE(t.sleeps.empty());
  EXPECT_EQ(http.remaining(), 0u);
}

TEST(Ec2Client, ExhaustedRetriesRethrowTheLastError) {
  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  for (int i = 0; i < 4; ++i) http.push(503, kThrottled);
  try {
    ec2.replace_route("rtb-1", "0.0.0.0/0", "eni-1");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Throttling);
  }
  EXPECT_EQ(http.requests.size(), 4u);
  EXPECT_EQ(ec2.retrier().retries(), 3u);
}

TEST(Ec2Client, LogsRetriesButNeverSecrets) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = eipgate::log::get();
  const auto old_level = logger->level();
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::trace);

  ScriptedTransport http;
  StaticCredentialsProvider cp(creds());
  FakeTime t;
  Ec2Client ec2(http, cp, options(), t.env());
  http.push(503, kThrottled);
  http.push(
      401,
      R"(<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>a1</RequestID></Response>)");
  EXPECT_THROW(ec2.replace_route("rtb-1", "0.0.0.0/0", "eni-1"), AwsError);

  logger->sinks().pop_back();
  logger->set_level(old_level);
  const std::string text = captured.str();
  EXPECT_NE(text.find("ec2:ReplaceRoute: attempt 1/4 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("RequestLimitExceeded"), std::string::npos) << text;
  EXPECT_NE(text.find("ASIA...1234"), std::string::npos) << text;  // redacted key id
  EXPECT_EQ(text.find("ASIAEXAMPLEKEYID1234"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << text;
  EXPECT_EQ(text.find("T0KEN"), std::string::npos) << text;
}

}  // namespace
}  // namespace eipgate::aws

// Expired or revoked credentials against tests/sim/fake_aws.py: instance-role credentials are
// fetched again from IMDS and the call retried once; environment credentials are reported as not
// refreshable; no secret reaches the log.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/log.h"
#include "control/aws/credentials.h"
#include "control/aws/ec2.h"
#include "control/aws/error.h"
#include "control/aws/imds.h"
#include "tests/unit/aws/fake_aws_fixture.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;
using testing::FakeAwsProcess;
using testing::FakeTime;

constexpr const char* kInstanceA = "i-0aaaaaaaaaaaaaaa1";

std::optional<std::string> no_env(const char*) { return std::nullopt; }

// Captures the eipgate logger at trace level for one test.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    auto logger = eipgate::log::get();
    old_level_ = logger->level();
    logger->sinks().push_back(sink_);
    logger->set_level(spdlog::level::trace);
  }
  ~LogCapture() {
    auto logger = eipgate::log::get();
    logger->sinks().pop_back();
    logger->set_level(old_level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::level::level_enum old_level_;
};

class CredentialRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeAwsProcess>();
    options_.region = "us-east-1";
    options_.endpoint = fake_->base_url();
    options_.retry = RetryPolicy{4, milliseconds(100), milliseconds(1000), milliseconds(0)};
    imds_ = std::make_unique<ImdsClient>(
        http_, ImdsOptions{.endpoint = fake_->imds_url(kInstanceA)}, time_.env());
  }
  void TearDown() override {
    if (HasFailure() && fake_) std::fprintf(stderr, "fake_aws log:\n%s\n", fake_->log().c_str());
    imds_.reset();
    fake_.reset();
  }
  int credential_fetches() {
    return nlohmann::json::parse(fake_->control("GET", "imds").body)["credential_fetches"];
  }
  nlohmann::json imds_control(const nlohmann::json& spec) {
    return nlohmann::json::parse(fake_->control("POST", "imds", spec).body);
  }

  std::unique_ptr<FakeAwsProcess> fake_;
  CurlTransport http_;
  Ec2Options options_;
  FakeTime time_;
  std::unique_ptr<ImdsClient> imds_;
};

TEST_F(CredentialRefreshTest, RotatedRoleCredentialsAreFetchedAgainAndTheCallRetriedOnce) {
  auto role = std::make_shared<ImdsCredentialsProvider>(*imds_);
  ChainCredentialsProvider chain(role, no_env);
  Ec2Client ec2(http_, chain, options_, time_.env());
  ASSERT_EQ(ec2.describe_instance_status({kInstanceA}).size(), 1u);
  const Credentials before = chain.get();
  ASSERT_EQ(credential_fetches(), 1);

  const auto rotated = imds_control({{"rotate_credentials", true}});
  ASSERT_EQ(rotated["rotated"], nlohmann::json::array({before.access_key_id}));
  fake_->control("POST", "calls", {{"clear", true}});

  LogCapture log;
  // Cached credentials are hours from expiry: only EC2's ExpiredToken tells us to refresh.
  ASSERT_EQ(ec2.describe_instance_status({kInstanceA}).at(0).state, "running");
  EXPECT_EQ(credential_fetches(), 2);  // IMDS asked again
  EXPECT_EQ(ec2.credential_refreshes(), 1u);
  EXPECT_EQ(ec2.errors(ErrorKind::Auth), 0u);
  EXPECT_EQ(ec2.retrier().retries(), 0u);  // the refresh is not a backoff retry

  const auto calls = fake_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["code"], "ExpiredToken");
  EXPECT_EQ(calls[1]["status"], 200);
  const Credentials after = chain.get();
  EXPECT_NE(after.access_key_id, before.access_key_id);
  EXPECT_EQ(calls[1]["request"]["headers"]["x-amz-security-token"], after.session_token);

  const std::string text = log.text();
  EXPECT_NE(text.find(before.redacted_key_id()), std::string::npos) << text;
  EXPECT_NE(text.find(after.redacted_key_id()), std::string::npos) << text;
  for (const auto* c : {&before, &after}) {
    EXPECT_EQ(text.find(c->access_key_id), std::string::npos) << text;
    EXPECT_EQ(text.find(c->secret_access_key), std::string::npos) << text;
    EXPECT_EQ(text.find(c->session_token), std::string::npos) << text;
  }

  // Later calls use the new credentials without another refresh.
  (void)ec2.describe_instance_status({kInstanceA});
  EXPECT_EQ(credential_fetches(), 2);
  EXPECT_EQ(ec2.credential_refreshes(), 1u);
}

TEST_F(CredentialRefreshTest, RequestExpiredAlsoRefreshes) {
  auto role = std::make_shared<ImdsCredentialsProvider>(*imds_);
  Ec2Client ec2(http_, *role, options_, time_.env());
  (void)ec2.describe_route_tables({});
  imds_control({{"rotate_credentials", true}, {"code", "RequestExpired"}});
  EXPECT_FALSE(ec2.describe_route_tables({}).empty());
  EXPECT_EQ(ec2.credential_refreshes(), 1u);
  EXPECT_EQ(credential_fetches(), 2);
}

TEST_F(CredentialRefreshTest, StillRejectedAfterTheRefreshFailsWithoutALoop) {
  // IMDS keeps serving the key EC2 rejects (not rotated yet): one refresh, one more attempt,
  // then the error — never a loop.
  auto role = std::make_shared<ImdsCredentialsProvider>(*imds_);
  ChainCredentialsProvider chain(role, no_env);
  Ec2Client ec2(http_, chain, options_, time_.env());
  const Credentials c = chain.get();
  imds_control({{"expire_key", c.access_key_id}});
  try {
    (void)ec2.describe_instance_status({kInstanceA});
    FAIL() << "expected ExpiredToken";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "ExpiredToken");
    EXPECT_EQ(e.kind(), ErrorKind::Auth);
  }
  EXPECT_EQ(fake_->calls().size(), 2u);
  EXPECT_EQ(credential_fetches(), 2);
  EXPECT_EQ(ec2.credential_refreshes(), 1u);
  EXPECT_EQ(ec2.errors(ErrorKind::Auth), 1u);
}

TEST_F(CredentialRefreshTest, EnvironmentCredentialsAreReportedAsNotRefreshable) {
  auto role = std::make_shared<ImdsCredentialsProvider>(*imds_);
  ChainCredentialsProvider chain(role, [](const char* name) -> std::optional<std::string> {
    if (std::string_view(name) == "AWS_ACCESS_KEY_ID") return "AKIDEXAMPLE";
    if (std::string_view(name) == "AWS_SECRET_ACCESS_KEY") {
      return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    }
    return std::nullopt;
  });
  ASSERT_TRUE(chain.from_environment());
  Ec2Client ec2(http_, chain, options_, time_.env());
  imds_control({{"expire_key", "AKIDEXAMPLE"}, {"code", "ExpiredToken"}});
  LogCapture log;
  try {
    (void)ec2.describe_instance_status({kInstanceA});
    FAIL() << "expected ExpiredToken";
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "ExpiredToken");
    const std::string what = e.what();
    EXPECT_NE(what.find("environment"), std::string::npos) << what;
    EXPECT_NE(what.find("cannot be refreshed"), std::string::npos) << what;
    EXPECT_EQ(what.find("wJalr"), std::string::npos) << what;
  }
  EXPECT_EQ(fake_->calls().size(), 1u);  // not retried
  EXPECT_EQ(credential_fetches(), 0);    // IMDS never asked
  EXPECT_EQ(ec2.credential_refreshes(), 0u);
  EXPECT_EQ(log.text().find("wJalr"), std::string::npos) << log.text();
}

TEST(CredentialsRejected, ExpiryAndUnknownKeysButNotMissingPermissions) {
  for (const char* code :
       {"ExpiredToken", "RequestExpired", "AuthFailure", "InvalidClientTokenId"}) {
    EXPECT_TRUE(credentials_rejected(AwsError(ErrorKind::Auth, code, "x"))) << code;
  }
  for (const char* code : {"UnauthorizedOperation", "SignatureDoesNotMatch", "Throttling"}) {
    EXPECT_FALSE(credentials_rejected(AwsError(ErrorKind::Auth, code, "x"))) << code;
  }
  StaticCredentialsProvider fixed(Credentials{});
  EXPECT_FALSE(fixed.invalidate(Credentials{}));
}

}  // namespace
}  // namespace eipgate::aws

// Credential sources: environment override, IMDS role credentials cached and refreshed early,
// the role document parser, redaction.
#include "control/aws/credentials.h"

#include <gtest/gtest.h>

#include <map>

#include "control/aws/error.h"
#include "control/aws/imds.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using testing::FakeTime;
using testing::ScriptedTransport;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string role_doc(const std::string& key, const std::string& expiration) {
  return R"({"Code":"Success","LastUpdated":"2024-05-01T10:00:00Z","Type":"AWS-HMAC","AccessKeyId":")" +
         key + R"(","SecretAccessKey":"secret-)" + key + R"(","Token":"token-)" + key +
         R"(","Expiration":")" + expiration + R"("})";
}

TEST(Credentials, EnvironmentNeedsKeyAndSecret) {
  EXPECT_FALSE(credentials_from_environment(env_of({})));
  EXPECT_FALSE(credentials_from_environment(env_of({{"AWS_ACCESS_KEY_ID", "AKID"}})));
  auto c = credentials_from_environment(env_of({{"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
                                                {"AWS_SECRET_ACCESS_KEY", "sek"},
                                                {"AWS_SESSION_TOKEN", "tok"}}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(c->secret_access_key, "sek");
  EXPECT_EQ(c->session_token, "tok");
  EXPECT_EQ(c->source, "environment");
  EXPECT_FALSE(c->expiration);
}

TEST(Credentials, RedactedKeyIdShowsOnlyTheEnds) {
  Credentials c;
  c.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  EXPECT_EQ(c.redacted_key_id(), "AKIA...MPLE");
  c.access_key_id = "SHORT";
  EXPECT_EQ(c.redacted_key_id(), "*****");
}

TEST(Credentials, EnvironmentOverridesTheFallback) {
  struct Never final : CredentialsProvider {
    Credentials get() override { throw std::logic_error("fallback must not be asked"); }
  };
  ChainCredentialsProvider chain(
      std::make_shared<Never>(),
      env_of({{"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"}, {"AWS_SECRET_ACCESS_KEY", "sek"}}));
  EXPECT_TRUE(chain.from_environment());
  EXPECT_EQ(chain.get().access_key_id, "AKIDEXAMPLE");

  ChainCredentialsProvider none(nullptr, env_of({}));
  try {
    (void)none.get();
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth);
  }
}

TEST(Credentials, RoleDocumentParses) {
  const auto c = parse_role_credentials(role_doc("ASIA1", "2024-05-01T16:00:00Z"), "nat");
  EXPECT_EQ(c.access_key_id, "ASIA1");
  EXPECT_EQ(c.secret_access_key, "secret-ASIA1");
  EXPECT_EQ(c.session_token, "token-ASIA1");
  EXPECT_EQ(c.source, "imds:nat");
  ASSERT_TRUE(c.expiration);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c.expiration), 1714579200);

  EXPECT_THROW((void)parse_role_credentials("not json", "nat"), AwsError);
  EXPECT_THROW((void)parse_role_credentials(R"({"Code":"Success"})", "nat"), AwsError);
  try {
    (void)parse_role_credentials(R"({"Code":"AssumeRoleUnauthorizedAccess"})", "nat");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth);
    EXPECT_EQ(e.code(), "AssumeRoleUnauthorizedAccess");
  }
}

TEST(Credentials, Iso8601) {
  auto t = parse_iso8601("2024-05-01T16:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1714579200);
  EXPECT_TRUE(parse_iso8601("2024-05-01T16:00:00.123Z"));
  EXPECT_FALSE(parse_iso8601("2024-05-01 16:00:00"));
  EXPECT_FALSE(parse_iso8601("2024-13-01T16:00:00Z"));
  EXPECT_FALSE(parse_iso8601("2024-05-01T16:00:00+02:00"));
}

TEST(Credentials, ImdsRoleCredentialsAreCachedAndRefreshedBeforeExpiry) {
  ScriptedTransport http;
  FakeTime t;
  ImdsClient imds(http, ImdsOptions{.endpoint = "http://imds.test/"}, t.env());
  auto wall = *parse_iso8601("2024-05-01T10:00:00Z");
  ImdsCredentialsProvider provider(imds, minutes(5), [&] { return wall; });

  http.push(200, "AQAEAtoken1");
  http.push(200, "eipgate-nat\n");
  http.push(200, role_doc("ASIA1", "2024-05-01T16:00:00Z"));
  EXPECT_EQ(provider.get().access_key_id, "ASIA1");
  ASSERT_EQ(http.requests.size(), 3u);
  EXPECT_EQ(http.requests[0].method, "PUT");
  EXPECT_EQ(http.requests[0].url, "http://imds.test/latest/api/token");
  EXPECT_EQ(http.requests[0].headers[0].first, "X-aws-ec2-metadata-token-ttl-seconds");
  EXPECT_EQ(http.requests[0].headers[0].second, "21600");
  EXPECT_EQ(http.requests[1].url, "http://imds.test/latest/meta-data/iam/security-credentials/");
  EXPECT_EQ(http.requests[2].url,
            "http://imds.test/latest/meta-data/iam/security-credentials/eipgate-nat");
  EXPECT_EQ(http.requests[2].headers[0].second, "AQAEAtoken1");

  wall += std::chrono::hours(5) + minutes(54);  // 6 minutes left: still cached
  EXPECT_EQ(provider.get().access_key_id, "ASIA1");
  EXPECT_EQ(http.requests.size(), 3u);

  wall += minutes(2);  // 4 minutes left: inside refresh_before, fetched again (role name kept)
  http.push(200, role_doc("ASIA2", "2024-05-01T22:00:00Z"));
  EXPECT_EQ(provider.get().access_key_id, "ASIA2");
  EXPECT_EQ(http.requests.size(), 4u);

  // IMDS down during a refresh: the old credentials serve until they really expire.
  wall = *parse_iso8601("2024-05-01T21:57:00Z");
  for (int i = 0; i < 3; ++i) http.push(500, "down");
  EXPECT_EQ(provider.get().access_key_id, "ASIA2");
  wall = *parse_iso8601("2024-05-01T22:00:01Z");
  for (int i = 0; i < 3; ++i) http.push(500, "down");
  EXPECT_THROW((void)provider.get(), AwsError);
}

TEST(Imds, NewTokenOnceAfter401) {
  ScriptedTransport http;
  FakeTime t;
  ImdsClient imds(http, ImdsOptions{.endpoint = "http://imds.test"}, t.env());
  http.push(200, "tok1");
  http.push(401, "");
  http.push(200, "tok2");
  http.push(200, "i-0abc");
  EXPECT_EQ(imds.instance_id(), "i-0abc");
  EXPECT_EQ(imds.tokens_fetched(), 2u);
  EXPECT_EQ(http.requests[3].headers[0].second, "tok2");
  // A second 401 right after a fresh token is a refusal, not a stale token.
  http.push(401, "");
  http.push(200, "tok3");
  http.push(401, "");
  try {
    (void)imds.instance_id();
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth);
  }
}

TEST(Imds, TokenRenewedBeforeItsTtlRunsOut) {
  ScriptedTransport http;
  FakeTime t;
  ImdsClient imds(http, ImdsOptions{.endpoint = "http://imds.test", .token_ttl = seconds(600)},
                  t.env());
  http.push(200, "tok1");
  http.push(200, "us-east-1");
  EXPECT_EQ(imds.region(), "us-east-1");
  t.now += seconds(530);
  http.push(200, "us-east-1a");
  EXPECT_EQ(imds.availability_zone(), "us-east-1a");
  EXPECT_EQ(imds.tokens_fetched(), 1u);
  t.now += seconds(20);  // within a minute of the TTL: a new token first
  http.push(200, "tok2");
  http.push(200, "i-1");
  EXPECT_EQ(imds.instance_id(), "i-1");
  EXPECT_EQ(imds.tokens_fetched(), 2u);
}

TEST(Imds, NotFoundIsTypedAndNotRetried) {
  ScriptedTransport http;
  FakeTime t;
  ImdsClient imds(http, ImdsOptions{.endpoint = "http://imds.test"}, t.env());
  http.push(200, "tok1");
  http.push(404, "<html>404</html>");
  try {
    (void)imds.role_name();
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
  }
  EXPECT_TRUE(t.sleeps.empty());
}

}  // namespace
}  // namespace eipgate::aws

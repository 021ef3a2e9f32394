// The AWS layer end to end against tests/sim/fake_aws.py on loopback: IMDSv2, instance-role
// credentials, every EC2 call, faults (throttling, 5xx, latency), auth failures, and libcurl's
// SigV4 signature compared with botocore's for the same request.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "control/aws/credentials.h"
#include "control/aws/ec2.h"
#include "control/aws/imds.h"
#include "tests/unit/aws/fake_aws_fixture.h"
#include "tests/unit/aws/scripted_transport.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;
using testing::FakeAwsProcess;
using testing::FakeTime;

constexpr const char* kInstanceA = "i-0aaaaaaaaaaaaaaa1";
constexpr const char* kEniA = "eni-0aaaaaaaaaaaaaad1";  // data ENIs
constexpr const char* kEniB = "eni-0bbbbbbbbbbbbbbd2";
constexpr const char* kRtb1 = "rtb-0aa00000000000001";
constexpr const char* kRtb2 = "rtb-0aa00000000000002";
constexpr const char* kEip = "eipalloc-0aa00000000000001";
constexpr const char* kSpareEip = "eipalloc-0bb00000000000002";

Credentials example_credentials() {
  Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  c.source = "static";
  return c;
}

class FakeAwsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeAwsProcess>();
    options_.region = "us-east-1";
    options_.endpoint = fake_->base_url();
    options_.retry = RetryPolicy{4, milliseconds(100), milliseconds(1000), milliseconds(0)};
  }
  void TearDown() override {
    if (HasFailure() && fake_) std::fprintf(stderr, "fake_aws log:\n%s\n", fake_->log().c_str());
    fake_.reset();  // always stops the server
  }

  Ec2Client client(CredentialsProvider& cp) { return Ec2Client(http_, cp, options_, time_.env()); }

  std::unique_ptr<FakeAwsProcess> fake_;
  CurlTransport http_;
  Ec2Options options_;
  FakeTime time_;  // retries sleep on the fake clock: no real waiting
  StaticCredentialsProvider static_creds_{example_credentials()};
};

TEST_F(FakeAwsTest, DescribeRouteTablesByTagFilter) {
  auto ec2 = client(static_creds_);
  auto tables = ec2.describe_route_tables({}, {{"tag:eipgate:az", {"use1-az1"}}});
  ASSERT_EQ(tables.size(), 2u);
  for (const auto& t : tables) {
    const Route* r = t.route_to("0.0.0.0/0");
    ASSERT_NE(r, nullptr) << t.id;
    EXPECT_EQ(r->network_interface_id, kEniA);
    EXPECT_EQ(r->instance_id, kInstanceA);
    ASSERT_EQ(t.associations.size(), 1u);
  }
  EXPECT_EQ(ec2.describe_route_tables({"rtb-0bb00000000000001"}).at(0).tags.at("Name"), "public");
  EXPECT_TRUE(ec2.describe_route_tables({}, {{"tag:eipgate:az", {"nowhere"}}}).empty());
}

TEST_F(FakeAwsTest, ReplaceRouteMovesTheDefaultRoute) {
  auto ec2 = client(static_creds_);
  ec2.replace_route(kRtb1, "0.0.0.0/0", kEniB);
  ec2.replace_route(kRtb2, "0.0.0.0/0", kEniB);
  for (const auto& t : ec2.describe_route_tables({kRtb1, kRtb2})) {
    EXPECT_EQ(t.route_to("0.0.0.0/0")->network_interface_id, kEniB);
    EXPECT_EQ(t.route_to("0.0.0.0/0")->instance_id, "i-0bbbbbbbbbbbbbbb2");
  }
}

TEST_F(FakeAwsTest, NotFoundErrorsAreTypedAndNotRetried) {
  auto ec2 = client(static_creds_);
  try {
    ec2.replace_route("rtb-0ff00000000000009", "0.0.0.0/0", kEniB);
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_EQ(e.code(), "InvalidRouteTableID.NotFound");
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_FALSE(e.request_id().empty());
  }
  try {
    ec2.replace_route(kRtb1, "192.0.2.0/24", kEniB);
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "InvalidRoute.NotFound");
  }
  try {
    ec2.replace_route(kRtb1, "0.0.0.0/0", "eni-0ffffffffffffffff");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "InvalidNetworkInterfaceID.NotFound");
  }
  EXPECT_TRUE(time_.sleeps.empty());
}

TEST_F(FakeAwsTest, SecondaryIpMoveCarriesTheElasticIp) {
  auto ec2 = client(static_creds_);
  try {
    (void)ec2.assign_private_ip_addresses(kEniB, {"10.0.0.100"}, /*allow_reassignment=*/false);
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Conflict);
    EXPECT_EQ(e.code(), "PrivateIpAddressInUse");
  }
  EXPECT_EQ(ec2.assign_private_ip_addresses(kEniB, {"10.0.0.100"}, true),
            std::vector<std::string>{"10.0.0.100"});
  const auto addrs = ec2.describe_addresses({kEip});
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs[0].network_interface_id, kEniB);
  EXPECT_EQ(addrs[0].private_ip, "10.0.0.100");
  EXPECT_EQ(addrs[0].public_ip, "203.0.113.10");
  const auto enis = ec2.describe_network_interfaces({kEniA, kEniB});
  ASSERT_EQ(enis.size(), 2u);
  EXPECT_EQ(enis[0].private_ips.size(), 1u);  // only its primary left
  ASSERT_EQ(enis[1].private_ips.size(), 2u);
  EXPECT_EQ(enis[1].private_ips[1].address, "10.0.0.100");
  EXPECT_EQ(enis[1].private_ips[1].public_ip, "203.0.113.10");
  EXPECT_FALSE(enis[1].source_dest_check);
  EXPECT_EQ(enis[1].device_index, 1);
}

TEST_F(FakeAwsTest, AssociateAddressWithReassociation) {
  auto ec2 = client(static_creds_);
  try {
    (void)ec2.associate_address(kEip, kEniB, "10.0.0.6", /*allow_reassociation=*/false);
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Conflict);
    EXPECT_EQ(e.code(), "Resource.AlreadyAssociated");
  }
  const std::string assoc = ec2.associate_address(kEip, kEniB, "10.0.0.6", true);
  EXPECT_EQ(assoc.rfind("eipassoc-", 0), 0u);
  const auto a = ec2.describe_addresses({kEip}).at(0);
  EXPECT_EQ(a.association_id, assoc);
  EXPECT_EQ(a.network_interface_id, kEniB);
  EXPECT_EQ(a.instance_id, "i-0bbbbbbbbbbbbbbb2");
  // A free EIP needs no reassociation flag; filters work on DescribeAddresses.
  (void)ec2.associate_address(kSpareEip, kEniA, "10.0.0.5", false);
  const auto on_a = ec2.describe_addresses({}, {{"network-interface-id", {kEniA}}});
  ASSERT_EQ(on_a.size(), 1u);
  EXPECT_EQ(on_a[0].public_ip, "203.0.113.11");
}

TEST_F(FakeAwsTest, DescribeNetworkInterfacesByInstanceFilter) {
  auto ec2 = client(static_creds_);
  const auto enis = ec2.describe_network_interfaces(
      {}, {{"attachment.instance-id", {kInstanceA}}, {"tag:eipgate:role", {"data"}}});
  ASSERT_EQ(enis.size(), 1u);
  EXPECT_EQ(enis[0].id, kEniA);
  EXPECT_EQ(enis[0].mac, "0e:00:00:00:0a:02");
  EXPECT_EQ(enis[0].availability_zone, "us-east-1a");
}

TEST_F(FakeAwsTest, DescribeInstanceStatusFollowsTheSimulation) {
  auto ec2 = client(static_creds_);
  auto s = ec2.describe_instance_status({kInstanceA});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].state, "running");
  EXPECT_EQ(s[0].instance_status, "ok");
  fake_->control("POST", "instance", {{"id", kInstanceA}, {"status", "impaired"}});
  EXPECT_EQ(ec2.describe_instance_status({kInstanceA}).at(0).instance_status, "impaired");
  fake_->control("POST", "instance", {{"id", kInstanceA}, {"state", "stopped"}});
  s = ec2.describe_instance_status({kInstanceA});
  EXPECT_EQ(s.at(0).state, "stopped");
  EXPECT_EQ(s.at(0).state_code, 80);
  EXPECT_EQ(ec2.describe_instance_status({}, /*include_all_instances=*/false).size(), 1u);
}

// The cross-AZ fallback's evidence and its NAT Gateway target, as EC2 shows them.
TEST_F(FakeAwsTest, RoutesAtAStoppedInstanceAreBlackholes) {
  auto ec2 = client(static_creds_);
  EXPECT_EQ(ec2.describe_route_tables({kRtb1}).at(0).route_to("0.0.0.0/0")->state, "active");
  fake_->control("POST", "instance", {{"id", kInstanceA}, {"state", "stopped"}});
  EXPECT_EQ(ec2.describe_route_tables({kRtb1}).at(0).route_to("0.0.0.0/0")->state, "blackhole");
  fake_->control("POST", "instance", {{"id", kInstanceA}, {"state", "running"}});
  EXPECT_EQ(ec2.describe_route_tables({kRtb1}).at(0).route_to("0.0.0.0/0")->state, "active");
}

TEST_F(FakeAwsTest, ReplaceRouteToANatGateway) {
  auto ec2 = client(static_creds_);
  ec2.replace_route_to_nat_gateway(kRtb2, "0.0.0.0/0", "nat-0aa00000000000001");
  const auto tables = ec2.describe_route_tables({kRtb2});
  const Route* r = tables.at(0).route_to("0.0.0.0/0");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->nat_gateway_id, "nat-0aa00000000000001");
  EXPECT_TRUE(r->network_interface_id.empty());
  EXPECT_EQ(r->state, "active");
  std::string sent;
  for (const auto& c : fake_->calls()) {
    if (c["action"] == "ReplaceRoute") sent = c["params"].value("NatGatewayId", "");
  }
  EXPECT_EQ(sent, "nat-0aa00000000000001");
  try {
    ec2.replace_route_to_nat_gateway(kRtb2, "0.0.0.0/0", "nat-0ffffffffffffffff");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.code(), "InvalidNatGatewayID.NotFound");
  }
}

TEST_F(FakeAwsTest, ThrottlingIsRetriedWithBackoff) {
  auto ec2 = client(static_creds_);
  std::vector<std::string> codes;
  ec2.retrier().set_on_retry([&](const RetryEvent& e) { codes.push_back(e.error->code()); });
  fake_->faults({{"throttle_next", 2}});
  ec2.replace_route(kRtb1, "0.0.0.0/0", kEniB);
  EXPECT_EQ(codes, (std::vector<std::string>{"RequestLimitExceeded", "RequestLimitExceeded"}));
  EXPECT_EQ(time_.sleeps, (std::vector<milliseconds>{milliseconds(100), milliseconds(200)}));
  const auto calls = fake_->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0]["status"], 503);
  EXPECT_EQ(calls[2]["status"], 200);
  EXPECT_EQ(ec2.describe_route_tables({kRtb1}).at(0).route_to("0.0.0.0/0")->network_interface_id,
            kEniB);
}

TEST_F(FakeAwsTest, PersistentServerErrorsGiveUpAfterMaxAttempts) {
  auto ec2 = client(static_creds_);
  fake_->faults({{"fail_next", 10}, {"fail_status", 500}, {"fail_code", "InternalError"}});
  try {
    (void)ec2.describe_route_tables({});
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Server);
    EXPECT_EQ(e.code(), "InternalError");
    EXPECT_EQ(e.http_status(), 500);
  }
  EXPECT_EQ(fake_->calls().size(), 4u);
  EXPECT_EQ(ec2.retrier().retries(), 3u);
}

TEST_F(FakeAwsTest, FaultsCanTargetOneAction) {
  auto ec2 = client(static_creds_);
  fake_->faults({{"throttle_next", 1}, {"actions", {"ReplaceRoute"}}});
  (void)ec2.describe_route_tables({});
  EXPECT_EQ(ec2.retrier().retries(), 0u);
  ec2.replace_route(kRtb1, "0.0.0.0/0", kEniB);
  EXPECT_EQ(ec2.retrier().retries(), 1u);
}

TEST_F(FakeAwsTest, LatencyBeyondTheTimeoutIsATransportError) {
  options_.timeout = milliseconds(300);
  options_.retry.max_attempts = 2;
  auto ec2 = client(static_creds_);
  fake_->faults({{"latency_ms", 1500}});
  try {
    (void)ec2.describe_route_tables({});
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Transport);
    EXPECT_EQ(e.code(), "Timeout");
  }
  EXPECT_EQ(ec2.retrier().retries(), 1u);
}

TEST_F(FakeAwsTest, ConnectionRefusedIsATransportErrorAndRetried) {
  fake_->stop();
  options_.retry.max_attempts = 3;
  auto ec2 = client(static_creds_);
  try {
    (void)ec2.describe_route_tables({});
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Transport);
  }
  EXPECT_EQ(time_.sleeps.size(), 2u);
}

TEST_F(FakeAwsTest, BadSecretIsAuthFailureAndNotRetried) {
  Credentials wrong = example_credentials();
  wrong.secret_access_key = "not-the-secret";
  StaticCredentialsProvider cp(wrong);
  auto ec2 = client(cp);
  try {
    (void)ec2.describe_route_tables({});
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Auth);
    EXPECT_EQ(e.code(), "AuthFailure");
    EXPECT_EQ(e.http_status(), 401);
  }
  EXPECT_EQ(fake_->calls().size(), 1u);

  Credentials unknown = example_credentials();
  unknown.access_key_id = "AKIDUNKNOWN0000";
  StaticCredentialsProvider cp2(unknown);
  auto ec2b = client(cp2);
  EXPECT_THROW((void)ec2b.describe_route_tables({}), AwsError);

  options_.region = "eu-west-1";  // signed for the wrong region
  auto ec2c = client(static_creds_);
  EXPECT_THROW((void)ec2c.describe_route_tables({}), AwsError);
}

TEST_F(FakeAwsTest, ImdsIdentityAndEnisByMac) {
  ImdsClient imds(http_, ImdsOptions{.endpoint = fake_->imds_url(kInstanceA)}, time_.env());
  const auto id = imds.identity();
  EXPECT_EQ(id.instance_id, kInstanceA);
  EXPECT_EQ(id.region, "us-east-1");
  EXPECT_EQ(id.availability_zone, "us-east-1a");
  EXPECT_EQ(imds.macs(), (std::vector<std::string>{"0e:00:00:00:0a:01", "0e:00:00:00:0a:02"}));
  const auto enis = imds.enis();
  ASSERT_EQ(enis.size(), 2u);
  EXPECT_EQ(enis[1].interface_id, kEniA);
  EXPECT_EQ(enis[1].subnet_id, "subnet-public-a");
  EXPECT_EQ(enis[1].device_number, 1);
  EXPECT_EQ(enis[1].local_ipv4s, (std::vector<std::string>{"10.0.0.5", "10.0.0.100"}));
  EXPECT_EQ(imds.role_name(), "eipgate-nat");
  EXPECT_EQ(imds.tokens_fetched(), 1u);

  // IMDS forgets its tokens: the client fetches a new one and carries on.
  fake_->control("POST", "imds", {{"revoke_tokens", true}});
  EXPECT_EQ(imds.instance_id(), kInstanceA);
  EXPECT_EQ(imds.tokens_fetched(), 2u);

  // A moved secondary IP shows in the other instance's metadata.
  StaticCredentialsProvider cp(example_credentials());
  (void)client(cp).assign_private_ip_addresses(kEniB, {"10.0.0.100"}, true);
  EXPECT_EQ(imds.eni("0e:00:00:00:0a:02").local_ipv4s, std::vector<std::string>{"10.0.0.5"});
  EXPECT_THROW((void)imds.eni("0e:ff:ff:ff:ff:ff"), AwsError);
}

TEST_F(FakeAwsTest, InstanceRoleCredentialsSignEc2Calls) {
  ImdsClient imds(http_, ImdsOptions{.endpoint = fake_->imds_url(kInstanceA)}, time_.env());
  auto role = std::make_shared<ImdsCredentialsProvider>(imds);
  ChainCredentialsProvider chain(role, [](const char*) { return std::optional<std::string>(); });
  EXPECT_FALSE(chain.from_environment());
  const Credentials c = chain.get();
  EXPECT_EQ(c.access_key_id.rfind("ASIA", 0), 0u);
  EXPECT_FALSE(c.session_token.empty());
  ASSERT_TRUE(c.expiration);
  EXPECT_GT(*c.expiration, std::chrono::system_clock::now() + std::chrono::hours(5));
  auto ec2 = client(chain);  // signed with the role's key, session token checked by the fake
  EXPECT_EQ(ec2.describe_instance_status({kInstanceA}).at(0).state, "running");
  const auto calls = fake_->calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["request"]["headers"]["x-amz-security-token"], c.session_token);
}

TEST_F(FakeAwsTest, EnvironmentCredentialsOverrideTheInstanceRole) {
  ImdsClient imds(http_, ImdsOptions{.endpoint = fake_->imds_url(kInstanceA)}, time_.env());
  auto role = std::make_shared<ImdsCredentialsProvider>(imds);
  ChainCredentialsProvider chain(role, [](const char* name) -> std::optional<std::string> {
    if (std::string_view(name) == "AWS_ACCESS_KEY_ID") return "AKIDEXAMPLE";
    if (std::string_view(name) == "AWS_SECRET_ACCESS_KEY")
      return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    return std::nullopt;
  });
  auto ec2 = client(chain);
  (void)ec2.describe_route_tables({kRtb1});
  EXPECT_EQ(imds.tokens_fetched(), 0u);  // IMDS never asked
}

// --- SigV4: libcurl's signature must be exactly botocore's for the same request and instant.

std::string run_botocore_sign(const nlohmann::json& spec, const std::filesystem::path& dir) {
  const auto file = dir / "sign.json";
  {
    std::ofstream out(file);
    out << spec.dump();
  }
  const std::string cmd =
      std::string(EIPGATE_PYTHON) + " " + EIPGATE_BOTOCORE_SIGN_PY + " " + file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return rc == 0 ? out : "botocore_sign.py failed: " + out;
}

void expect_botocore_agrees(FakeAwsProcess& fake, const Credentials& creds,
                            const std::string& region) {
  const auto calls = fake.calls();
  ASSERT_FALSE(calls.empty());
  const auto& req = calls.back()["request"];
  const std::string authorization = req["headers"]["authorization"];
  const std::string amz_date = req["headers"]["x-amz-date"];
  ASSERT_EQ(authorization.rfind("AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" +
                                    amz_date.substr(0, 8) + "/" + region + "/ec2/aws4_request, ",
                                0),
            0u)
      << authorization;
  // The headers curl signed, as sent; botocore adds X-Amz-Date and the token itself.
  const auto sh = authorization.find("SignedHeaders=");
  const auto sh_end = authorization.find(',', sh);
  std::string signed_list = authorization.substr(sh + 14, sh_end - sh - 14);
  EXPECT_NE(signed_list.find("content-type"), std::string::npos) << signed_list;
  EXPECT_NE(signed_list.find("host"), std::string::npos) << signed_list;
  if (!creds.session_token.empty()) {
    EXPECT_NE(signed_list.find("x-amz-security-token"), std::string::npos) << signed_list;
  }
  nlohmann::json headers = nlohmann::json::object();
  size_t pos = 0;
  while (pos <= signed_list.size()) {
    size_t end = signed_list.find(';', pos);
    if (end == std::string::npos) end = signed_list.size();
    const std::string name = signed_list.substr(pos, end - pos);
    if (name != "x-amz-date" && name != "x-amz-security-token")
      headers[name] = req["headers"][name];
    pos = end + 1;
  }
  const nlohmann::json spec = {{"method", req["method"]},
                               {"url", "http://" + req["headers"]["host"].get<std::string>() +
                                           req["path"].get<std::string>()},
                               {"headers", headers},
                               {"body", req["body"]},
                               {"access_key_id", creds.access_key_id},
                               {"secret_access_key", creds.secret_access_key},
                               {"session_token", creds.session_token},
                               {"region", region},
                               {"service", "ec2"},
                               {"amz_date", amz_date}};
  EXPECT_EQ(run_botocore_sign(spec, fake.dir()), authorization);
  EXPECT_EQ(calls.back()["status"], 200) << "the fake's own botocore check disagreed";
}

TEST_F(FakeAwsTest, SignatureMatchesBotocoreLongTermKey) {
  auto ec2 = client(static_creds_);
  (void)ec2.describe_route_tables({kRtb1}, {{"tag:eipgate:az", {"use1-az1"}}});
  expect_botocore_agrees(*fake_, example_credentials(), "us-east-1");
}

TEST_F(FakeAwsTest, SignatureMatchesBotocoreSessionTokenAndEscapedValues) {
  Credentials c;
  c.access_key_id = "ASIATEMPEXAMPLE";
  c.secret_access_key = "temp/secret+key=";
  c.session_token = "FQoGZXIvYXdzEXAMPLETOKEN/+=";
  StaticCredentialsProvider cp(c);
  auto ec2 = client(cp);
  // Values that need escaping in the form body: spaces, '/', '+', '*', non-ASCII.
  (void)ec2.describe_network_interfaces(
      {}, {{"description", {"a b/c+d*", "\xc3\xa9t\xc3\xa9"}}, {"tag:Name", {"x y"}}});
  expect_botocore_agrees(*fake_, c, "us-east-1");
}

TEST_F(FakeAwsTest, SignatureMatchesBotocoreForAMutation) {
  auto ec2 = client(static_creds_);
  ec2.replace_route(kRtb1, "0.0.0.0/0", kEniB);
  expect_botocore_agrees(*fake_, example_credentials(), "us-east-1");
}

}  // namespace
}  // namespace eipgate::aws

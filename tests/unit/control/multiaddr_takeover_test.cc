// A takeover with several service addresses against tests/sim/fake_aws.py: secondary-ip mode
// moves every private IP in one AssignPrivateIpAddresses call (and checks the EIPs followed);
// eip mode associates every EIP, side by side; a failing address is retried, and one that fails
// for good is reported by name while the others still move.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/daemon/aws_ops.h"
#include "tests/unit/aws/fake_aws_fixture.h"

namespace eipgate::control {
namespace {

constexpr char kInstance[] = "i-0bbbbbbbbbbbbbbb2";  // we are the standby taking over
constexpr char kMac[] = "0e:00:00:00:0b:02";
constexpr char kEni[] = "eni-0bbbbbbbbbbbbbbd2";
constexpr char kPeerEni[] = "eni-0aaaaaaaaaaaaaad1";
const std::vector<std::string> kTables = {"rtb-0aa00000000000001", "rtb-0aa00000000000002"};
const std::vector<std::string> kServiceIps = {"10.0.0.100", "10.0.0.101", "10.0.0.102"};
const std::vector<std::string> kAllocs = {
    "eipalloc-0aa00000000000001", "eipalloc-0aa00000000000011", "eipalloc-0aa00000000000012"};

// The example VPC with the peer (the old active) holding three secondary IPs, each with its EIP,
// and our ENI holding two spare private IPs for eip mode (10.0.0.110, 10.0.0.111). Written to a
// file in a directory that lives as long as the test.
class StateFile {
 public:
  StateFile() {
    nlohmann::json s =
        nlohmann::json::parse(aws::testing::read_file(EIPGATE_FAKE_AWS_STATE), nullptr, true);
    for (auto& eni : s["network_interfaces"]) {
      if (eni["id"] == kPeerEni)
        eni["private_ips"] = {"10.0.0.5", "10.0.0.100", "10.0.0.101", "10.0.0.102"};
      if (eni["id"] == kEni) eni["private_ips"] = {"10.0.0.6", "10.0.0.110", "10.0.0.111"};
    }
    for (int i = 1; i < 3; ++i) {
      s["addresses"].push_back({{"allocation_id", kAllocs[i]},
                                {"public_ip", "203.0.113." + std::to_string(20 + i)},
                                {"network_interface_id", kPeerEni},
                                {"private_ip", kServiceIps[i]}});
    }
    char tmpl[] = "/tmp/eipgate-multiaddr-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ / "state.json";
    std::ofstream(path_) << s.dump(2);
  }
  ~StateFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

aws::AwsConfig config_for(const aws::testing::FakeAwsProcess& fake) {
  aws::AwsConfig c;
  c.route_tables.ids = kTables;
  c.endpoints.ec2 = fake.base_url();
  c.endpoints.imds = fake.imds_url(kInstance);
  c.retry = aws::RetryPolicy{};
  return c;
}

aws::RetryEnv no_sleep() {
  aws::RetryEnv e = aws::RetryEnv::real();
  e.sleep = [](std::chrono::milliseconds) {};
  return e;
}

std::vector<nlohmann::json> calls_of(aws::testing::FakeAwsProcess& fake, const std::string& a) {
  std::vector<nlohmann::json> out;
  const nlohmann::json calls = fake.calls();
  for (const auto& c : calls) {
    if (c.value("action", "") == a) out.push_back(c);
  }
  return out;
}

std::string text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : ""; }

// allocation id -> {ENI, private IP} as the fake holds them now.
std::map<std::string, std::pair<std::string, std::string>> eips(aws::testing::FakeAwsProcess& f) {
  const nlohmann::json state = f.state();
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& a : state["addresses"]) {
    out[a["allocation_id"]] = {text(a["network_interface_id"]), text(a["private_ip"])};
  }
  return out;
}

std::vector<std::string> ips_of(aws::testing::FakeAwsProcess& f, const std::string& eni) {
  const nlohmann::json state = f.state();
  for (const auto& e : state["network_interfaces"]) {
    if (e["id"] == eni) return e["private_ips"].get<std::vector<std::string>>();
  }
  return {};
}

TEST(MultiAddressTakeover, SecondaryIpModeMovesThreeAddressesInOneCall) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  auto cfg = config_for(fake);
  cfg.service_address.mode = aws::ServiceAddressMode::SecondaryIp;
  cfg.service_address.private_ips = kServiceIps;
  cfg.service_address.allocation_ids = kAllocs;  // checked after the move
  AwsOps ops(cfg, no_sleep());
  ASSERT_EQ(ops.bootstrap(kMac, kPeerEni, "").eni, kEni);
  for (const auto& m : ops.address_moves()) {
    EXPECT_FALSE(m.moved);
    EXPECT_EQ(m.detail, "not moved yet");
  }

  const std::string summary = ops.take_over();
  EXPECT_NE(summary.find("10.0.0.100, 10.0.0.101, 10.0.0.102 -> " + std::string(kEni)),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("EIPs followed"), std::string::npos) << summary;

  const auto assigns = calls_of(fake, "AssignPrivateIpAddresses");
  ASSERT_EQ(assigns.size(), 1u) << "one call for all the addresses";
  const auto& p = assigns[0]["params"];
  EXPECT_EQ(p["NetworkInterfaceId"], kEni);
  EXPECT_EQ(p["AllowReassignment"], "true");
  for (size_t i = 0; i < kServiceIps.size(); ++i) {
    EXPECT_EQ(p["PrivateIpAddress." + std::to_string(i + 1)], kServiceIps[i]) << p.dump();
  }
  EXPECT_FALSE(p.contains("PrivateIpAddress.4"));

  const auto ours = ips_of(fake, kEni);
  const auto peers = ips_of(fake, kPeerEni);
  for (const auto& ip : kServiceIps) {
    EXPECT_NE(std::find(ours.begin(), ours.end(), ip), ours.end()) << ip;
    EXPECT_EQ(std::find(peers.begin(), peers.end(), ip), peers.end()) << ip;
  }
  const auto now = eips(fake);
  for (size_t i = 0; i < kAllocs.size(); ++i) {
    EXPECT_EQ(now.at(kAllocs[i]), std::make_pair(std::string(kEni), kServiceIps[i])) << kAllocs[i];
  }
  const auto moves = ops.address_moves();
  ASSERT_EQ(moves.size(), 3u);
  for (size_t i = 0; i < moves.size(); ++i) {
    EXPECT_TRUE(moves[i].moved);
    EXPECT_EQ(moves[i].private_ip, kServiceIps[i]);
    EXPECT_EQ(moves[i].allocation_id, kAllocs[i]);
    EXPECT_EQ(moves[i].detail, "moved");
  }
}

TEST(MultiAddressTakeover, SecondaryIpModeReportsAnEipThatDidNotFollow) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  auto cfg = config_for(fake);
  cfg.service_address.private_ips = {"10.0.0.100", "10.0.0.101"};
  // The second EIP is the spare one, associated with nothing: the check names it, the takeover
  // still succeeds (the private IPs and the routes are ours).
  cfg.service_address.allocation_ids = {"eipalloc-0aa00000000000001", "eipalloc-0bb00000000000002"};
  AwsOps ops(cfg, no_sleep());
  ops.bootstrap(kMac, kPeerEni, "");
  const std::string summary = ops.take_over();
  EXPECT_NE(summary.find("EIP check: eipalloc-0bb00000000000002 on nothing"), std::string::npos)
      << summary;
  const auto moves = ops.address_moves();
  ASSERT_EQ(moves.size(), 2u);
  EXPECT_EQ(moves[0].detail, "moved");
  EXPECT_TRUE(moves[1].moved);
  EXPECT_EQ(moves[1].detail, "moved; EIP eipalloc-0bb00000000000002 on nothing");
}

aws::AwsConfig eip_config(const aws::testing::FakeAwsProcess& fake) {
  auto cfg = config_for(fake);
  cfg.service_address.mode = aws::ServiceAddressMode::Eip;
  cfg.service_address.private_ips = {"10.0.0.110", "10.0.0.111"};
  cfg.service_address.allocation_ids = {kAllocs[0], kAllocs[1]};
  return cfg;
}

TEST(MultiAddressTakeover, EipModeAssociatesEveryEipOntoItsPrivateIp) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  AwsOps ops(eip_config(fake), no_sleep());
  ops.bootstrap(kMac, kPeerEni, "");
  const std::string summary = ops.take_over();
  EXPECT_NE(summary.find(kAllocs[0] + " (10.0.0.110)"), std::string::npos) << summary;
  EXPECT_NE(summary.find(kAllocs[1] + " (10.0.0.111)"), std::string::npos) << summary;

  const auto assoc = calls_of(fake, "AssociateAddress");
  ASSERT_EQ(assoc.size(), 2u);
  for (const auto& c : assoc) {
    EXPECT_EQ(c["params"]["NetworkInterfaceId"], kEni);
    EXPECT_EQ(c["params"]["AllowReassociation"], "true");
    EXPECT_EQ(c["status"], 200);
  }
  const auto now = eips(fake);
  EXPECT_EQ(now.at(kAllocs[0]), std::make_pair(std::string(kEni), std::string("10.0.0.110")));
  EXPECT_EQ(now.at(kAllocs[1]), std::make_pair(std::string(kEni), std::string("10.0.0.111")));
  EXPECT_EQ(now.at(kAllocs[2]).first, kPeerEni);  // not ours to move
  for (const auto& m : ops.address_moves()) EXPECT_TRUE(m.moved) << m.detail;
}

TEST(MultiAddressTakeover, EipModeRetriesAFailedAssociation) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  AwsOps ops(eip_config(fake), no_sleep());
  ops.bootstrap(kMac, kPeerEni, "");
  fake.faults({{"fail_next", 2}, {"actions", {"AssociateAddress"}}});  // 503 Unavailable
  ops.take_over();
  const auto now = eips(fake);
  EXPECT_EQ(now.at(kAllocs[0]).first, kEni);
  EXPECT_EQ(now.at(kAllocs[1]).first, kEni);
  const auto assoc = calls_of(fake, "AssociateAddress");
  EXPECT_EQ(assoc.size(), 4u);  // two failed, each retried
  EXPECT_EQ(std::count_if(assoc.begin(), assoc.end(),
                          [](const nlohmann::json& c) { return c["status"] == 503; }),
            2);
  EXPECT_GE(ops.retries(), 2u);
}

TEST(MultiAddressTakeover, EipModeNamesTheAddressThatFailedAndMovesTheOthers) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  auto cfg = eip_config(fake);
  cfg.service_address.allocation_ids[1] = "eipalloc-0cc00000000000099";  // no such EIP
  AwsOps ops(cfg, no_sleep());
  ops.bootstrap(kMac, kPeerEni, "");
  std::string what;
  try {
    ops.take_over();
  } catch (const std::exception& e) {
    what = e.what();
  }
  ASSERT_FALSE(what.empty()) << "the takeover must fail";
  EXPECT_NE(what.find("EIP eipalloc-0cc00000000000099 (10.0.0.111): "), std::string::npos) << what;
  EXPECT_NE(what.find("InvalidAllocationID.NotFound"), std::string::npos) << what;
  EXPECT_NE(what.find("(moved: " + kAllocs[0] + " (10.0.0.110))"), std::string::npos) << what;
  EXPECT_EQ(eips(fake).at(kAllocs[0]).first, kEni);
  // The routes were moved all the same (they are independent of the addresses).
  const nlohmann::json after = fake.state();
  for (const auto& rt : after["route_tables"]) {
    if (std::find(kTables.begin(), kTables.end(), rt["id"]) == kTables.end()) continue;
    for (const auto& r : rt["routes"]) {
      if (r["destination"] == "0.0.0.0/0") {
        EXPECT_EQ(r["network_interface_id"], kEni);
      }
    }
  }
  const auto moves = ops.address_moves();
  ASSERT_EQ(moves.size(), 2u);
  EXPECT_TRUE(moves[0].moved);
  EXPECT_FALSE(moves[1].moved);
  EXPECT_NE(moves[1].detail.find("InvalidAllocationID.NotFound"), std::string::npos)
      << moves[1].detail;
}

TEST(MultiAddressTakeover, OneEipOnThePrimaryIpAsBefore) {
  StateFile state;
  aws::testing::FakeAwsProcess fake(state.path());
  auto cfg = config_for(fake);
  cfg.service_address.mode = aws::ServiceAddressMode::Eip;
  cfg.service_address.allocation_ids = {kAllocs[0]};
  AwsOps ops(cfg, no_sleep());
  ops.bootstrap(kMac, kPeerEni, "");
  ops.take_over();
  const auto assoc = calls_of(fake, "AssociateAddress");
  ASSERT_EQ(assoc.size(), 1u);
  EXPECT_FALSE(assoc[0]["params"].contains("PrivateIpAddress"));
  EXPECT_EQ(eips(fake).at(kAllocs[0]), std::make_pair(std::string(kEni), std::string("10.0.0.6")));
}

}  // namespace
}  // namespace eipgate::control

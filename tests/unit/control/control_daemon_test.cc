// eipgate-control pieces without processes: the sync-socket packet codec (the dataplane contract)
// and loading the daemon's view of the YAML file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "control/daemon/daemon.h"
#include "control/daemon/sync_link.h"

namespace eipgate::control {
namespace {

ha::FlowEvent event(uint32_t i) {
  ha::FlowEvent e;
  e.inside_ip = 0x0A000001 + i;
  e.outside_ip = 0xCB00710A;
  e.remote_ip = 0xC6336407;
  e.inside_port = static_cast<uint16_t>(40000 + i);
  e.outside_port = static_cast<uint16_t>(1024 + i);
  e.remote_port = 443;
  e.proto = 6;
  e.tcp_bits = 3;
  e.remaining_ms = 350000;
  e.kind = ha::FlowEventKind::Create;
  e.endpoint_independent = (i % 2) == 1;
  e.worker_hint = 1;
  return e;
}

TEST(SyncPacket, HeaderIsTypeVersionCountReserved) {
  const std::vector<ha::FlowEvent> evs = {event(0), event(1), event(2)};
  const auto p = encode_sync_packet(SyncPacketType::Events, evs);
  ASSERT_EQ(p.size(), 8u + 3 * 28);
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[1], 1);
  EXPECT_EQ(p[2], 0);  // count 3, network order
  EXPECT_EQ(p[3], 3);
  EXPECT_EQ(p[4] | p[5] | p[6] | p[7], 0);
  EXPECT_EQ(p[8], 0x0A);  // first record's inside address, network order
  SyncPacket back;
  ASSERT_EQ(decode_sync_packet(p, &back), proto::SyncError::Ok);
  EXPECT_EQ(back.type, SyncPacketType::Events);
  EXPECT_EQ(back.events, evs);
}

TEST(SyncPacket, ControlPacketsHaveNoRecords) {
  const auto req = encode_sync_packet(SyncPacketType::SnapshotRequest, {});
  EXPECT_EQ(req, (std::vector<uint8_t>{2, 1, 0, 0, 0, 0, 0, 0}));
  SyncPacket back;
  ASSERT_EQ(decode_sync_packet(std::vector<uint8_t>{4, 1, 0, 0, 0, 0, 0, 0}, &back),
            proto::SyncError::Ok);
  EXPECT_EQ(back.type, SyncPacketType::SnapshotEnd);
}

TEST(SyncPacket, MalformedPacketsAreRefused) {
  SyncPacket back;
  auto p = encode_sync_packet(SyncPacketType::Events, std::vector<ha::FlowEvent>{event(0)});
  auto bad_version = p;
  bad_version[1] = 2;
  EXPECT_EQ(decode_sync_packet(bad_version, &back), proto::SyncError::BadVersion);
  auto short_one = p;
  short_one.pop_back();
  EXPECT_EQ(decode_sync_packet(short_one, &back), proto::SyncError::LengthMismatch);
  auto bad_type = p;
  bad_type[0] = 9;
  EXPECT_EQ(decode_sync_packet(bad_type, &back), proto::SyncError::BadType);
  auto bad_kind = p;
  bad_kind[8 + 24] = 7;
  EXPECT_EQ(decode_sync_packet(bad_kind, &back), proto::SyncError::BadKind);
  std::vector<uint8_t> too_many(8 + 65 * 28, 0);
  too_many[0] = 1;
  too_many[1] = 1;
  too_many[3] = 65;
  EXPECT_EQ(decode_sync_packet(too_many, &back), proto::SyncError::TooManyRecords);
  EXPECT_EQ(decode_sync_packet(std::vector<uint8_t>{1, 1, 0}, &back), proto::SyncError::Truncated);
}

class DaemonConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    char tmpl[] = "/tmp/eipgate-control-config-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  std::string path_;
};

constexpr const char* kGood = R"(mode: one-armed
admin:
  socket: /run/eipgate/x/dataplane.sock
aws:
  route_tables: {ids: [rtb-0aa00000000000001]}
  service_address: {mode: secondary-ip, private_ip: 10.0.0.100}
ha:
  priority: 200
  peers: [10.0.0.6]
  secret_file: /etc/eipgate/ha.key
  control_socket: /run/eipgate/control.sock
  data_mac: 0E:00:00:00:0A:02
)";

TEST_F(DaemonConfigTest, ReadsAwsHaAndTheAdminSocket) {
  DaemonConfig c;
  std::string errors;
  ASSERT_TRUE(load_daemon_config(write(kGood), &c, &errors)) << errors;
  EXPECT_EQ(c.ha.priority, 200);
  EXPECT_EQ(c.ha.data_mac, "0e:00:00:00:0a:02");
  EXPECT_EQ(c.aws.route_tables.ids.size(), 1u);
  EXPECT_EQ(c.dataplane_admin_socket, "/run/eipgate/x/dataplane.sock");
  EXPECT_EQ(c.sync_socket, "/run/eipgate/x/sync.sock");
}

TEST_F(DaemonConfigTest, ErrorsNameFileAndLine) {
  std::string text = kGood;
  text.replace(text.find("data_mac: 0E:00:00:00:0A:02"), 27, "data_mac: zz");
  text.replace(text.find("rtb-0aa00000000000001"), 21, "rtb-x");
  DaemonConfig c;
  std::string errors;
  const std::string p = write(text);
  ASSERT_FALSE(load_daemon_config(p, &c, &errors));
  EXPECT_NE(errors.find(p + ":12: "), std::string::npos) << errors;  // data_mac
  EXPECT_NE(errors.find(p + ":5: "), std::string::npos) << errors;   // rtb-x
}

TEST_F(DaemonConfigTest, FallbackMustNotRescueOurOwnTables) {
  const std::string rule =
      "  fallback_for:\n    - route_tables: [rtb-0bb00000000000001, rtb-0aa00000000000001]\n"
      "      instances: [i-0b1, i-0b2]\n";
  DaemonConfig c;
  std::string errors;
  const std::string p = write(std::string(kGood) + rule);
  ASSERT_FALSE(load_daemon_config(p, &c, &errors));
  EXPECT_NE(errors.find(p + ":14: ha.fallback_for: 'rtb-0aa00000000000001' is one of this pair's"),
            std::string::npos)
      << errors;
  std::string other = std::string(kGood) + rule;
  other.replace(other.rfind("rtb-0aa00000000000001"), 21, "rtb-0cc00000000000001");
  ASSERT_TRUE(load_daemon_config(write(other), &c, &errors)) << errors;
  ASSERT_EQ(c.ha.fallback_for.size(), 1u);
  EXPECT_EQ(c.ha.fallback_for[0].route_tables.at(1), "rtb-0cc00000000000001");
}

// Endpoint-independent UDP mappings are not synced to the standby, so HA refuses them (the
// dataplane alone accepts them); false stays allowed.
TEST_F(DaemonConfigTest, EndpointIndependentUdpIsRefusedWithHa) {
  DaemonConfig c;
  std::string errors;
  for (const char* on : {"true", "yes", "On"}) {
    const std::string p =
        write(std::string(kGood) + "nat:\n  endpoint_independent_udp: " + on + "\n");
    ASSERT_FALSE(load_daemon_config(p, &c, &errors)) << on;
    EXPECT_NE(errors.find(p + ":14: nat.endpoint_independent_udp: not supported with HA"),
              std::string::npos)
        << errors;
    EXPECT_NE(errors.find("not synced to the standby"), std::string::npos) << errors;
  }
  for (const char* off : {"false", "no"}) {
    const std::string p =
        write(std::string(kGood) + "nat:\n  endpoint_independent_udp: " + off + "\n");
    EXPECT_TRUE(load_daemon_config(p, &c, &errors)) << off << ": " << errors;
  }
}

TEST_F(DaemonConfigTest, MissingFileAndBadYaml) {
  DaemonConfig c;
  std::string errors;
  EXPECT_FALSE(load_daemon_config("/nonexistent/eipgate.yaml", &c, &errors));
  EXPECT_NE(errors.find("/nonexistent/eipgate.yaml: cannot open"), std::string::npos) << errors;
  EXPECT_FALSE(load_daemon_config(write("ha: [unclosed\n"), &c, &errors));
  EXPECT_NE(errors.find(path_ + ":"), std::string::npos) << errors;
}

}  // namespace
}  // namespace eipgate::control

// The C++ sync codec (proto/sync.h) against every shared vector in proto/testdata, both ways:
// the Python codec (proto/sync_codec.py) is checked against the same file.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto/sync.h"

namespace eipgate::proto {
namespace {

using nlohmann::json;

json vectors() {
  std::ifstream in(EIPGATE_SYNC_VECTORS);
  EXPECT_TRUE(in) << "cannot read " << EIPGATE_SYNC_VECTORS;
  return json::parse(in);
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

uint32_t address(const json& j) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, j.get<std::string>().c_str(), &a), 1) << j;
  return ntohl(a.s_addr);
}

SyncRecord record_of(const json& j) {
  SyncRecord r;
  r.inside_ip = address(j.at("inside_ip"));
  r.outside_ip = address(j.at("outside_ip"));
  r.remote_ip = address(j.at("remote_ip"));
  r.inside_port = j.at("inside_port").get<uint16_t>();
  r.outside_port = j.at("outside_port").get<uint16_t>();
  r.remote_port = j.at("remote_port").get<uint16_t>();
  r.proto = j.at("proto").get<uint8_t>();
  r.tcp_bits = j.at("tcp_bits").get<uint8_t>();
  r.remaining_ms = j.at("remaining_ms").get<uint32_t>();
  const std::string kind = j.at("kind").get<std::string>();
  EXPECT_TRUE(kind == "create" || kind == "refresh" || kind == "delete") << kind;
  r.kind = kind == "create"    ? SyncKind::Create
           : kind == "refresh" ? SyncKind::Refresh
                               : SyncKind::Delete;
  r.endpoint_independent = j.at("endpoint_independent").get<bool>();
  r.worker_hint = j.at("worker_hint").get<uint16_t>();
  return r;
}

PacketType packet_type_of(const std::string& name) {
  if (name == "events") return PacketType::Events;
  if (name == "snapshot_request") return PacketType::SnapshotRequest;
  if (name == "snapshot_begin") return PacketType::SnapshotBegin;
  EXPECT_EQ(name, "snapshot_end");
  return PacketType::SnapshotEnd;
}

TEST(SyncVectors, Records) {
  const json v = vectors();
  ASSERT_GE(v.at("records").size(), 4u);
  for (const json& c : v.at("records")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const SyncRecord want = record_of(c.at("record"));
    const std::vector<uint8_t> bytes = from_hex(c.at("hex"));
    ASSERT_EQ(bytes.size(), kRecordSize);
    const std::string direction = c.at("direction");
    if (direction != "decode") {
      std::array<uint8_t, kRecordSize> out{};
      encode_record(want, out);
      EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.end()), bytes);
    }
    if (direction != "encode") {
      SyncRecord got;
      ASSERT_EQ(
          decode_record(std::span<const uint8_t, kRecordSize>(bytes.data(), kRecordSize), &got),
          SyncError::Ok);
      EXPECT_EQ(got, want);
    }
  }
}

TEST(SyncVectors, BadRecords) {
  const json v = vectors();
  ASSERT_FALSE(v.at("bad_records").empty());
  for (const json& c : v.at("bad_records")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const std::vector<uint8_t> bytes = from_hex(c.at("hex"));
    ASSERT_EQ(bytes.size(), kRecordSize);
    SyncRecord got;
    got.worker_hint = 4242;
    const SyncError e =
        decode_record(std::span<const uint8_t, kRecordSize>(bytes.data(), kRecordSize), &got);
    EXPECT_EQ(to_string(e), c.at("error").get<std::string>());
    EXPECT_EQ(got.worker_hint, 4242) << "a refused record leaves the output alone";
  }
}

TEST(SyncVectors, Packets) {
  const json v = vectors();
  ASSERT_FALSE(v.at("packets").empty());
  for (const json& c : v.at("packets")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const PacketType type = packet_type_of(c.at("type"));
    std::vector<SyncRecord> records;
    for (const json& r : c.at("records")) records.push_back(record_of(r));
    const std::vector<uint8_t> bytes = from_hex(c.at("hex"));

    std::array<uint8_t, kMaxPacketSize> out{};
    const size_t n = encode_packet(type, records, out);
    EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + static_cast<ptrdiff_t>(n)), bytes);

    PacketType got_type = PacketType::Events;
    std::array<SyncRecord, kMaxRecordsPerPacket> got{};
    size_t count = 0;
    ASSERT_EQ(decode_packet(bytes, &got_type, got, &count), SyncError::Ok);
    EXPECT_EQ(got_type, type);
    EXPECT_EQ(std::vector<SyncRecord>(got.begin(), got.begin() + static_cast<ptrdiff_t>(count)),
              records);
  }
}

TEST(SyncVectors, BadPackets) {
  const json v = vectors();
  ASSERT_FALSE(v.at("bad_packets").empty());
  for (const json& c : v.at("bad_packets")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const std::vector<uint8_t> bytes = from_hex(c.at("hex"));
    PacketType type = PacketType::Events;
    std::array<SyncRecord, kMaxRecordsPerPacket> got{};
    size_t count = 99;
    const SyncError e = decode_packet(bytes, &type, got, &count);
    EXPECT_EQ(to_string(e), c.at("error").get<std::string>());
    EXPECT_EQ(count, 99u) << "a refused packet reports no records";
  }
}

// Every reason the codec can give is exercised by some vector, so the Python codec is held to all.
TEST(SyncVectors, EveryErrorHasAVector) {
  const json v = vectors();
  for (size_t i = 1; i < kSyncErrorCount; ++i) {
    const std::string name(to_string(static_cast<SyncError>(i)));
    bool found = false;
    for (const char* list : {"bad_records", "bad_packets"}) {
      for (const json& c : v.at(list)) found = found || c.at("error") == name;
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST(SyncCodec, EncodeRefusesWhatDoesNotFit) {
  std::vector<SyncRecord> records(kMaxRecordsPerPacket + 1);
  std::array<uint8_t, kMaxPacketSize + kRecordSize> big{};
  EXPECT_EQ(encode_packet(PacketType::Events, records, big), 0u);
  records.resize(2);
  std::array<uint8_t, kHeaderSize + kRecordSize> small{};
  EXPECT_EQ(encode_packet(PacketType::Events, records, small), 0u);
  records.resize(1);
  EXPECT_EQ(encode_packet(PacketType::Events, records, small), small.size());
}

TEST(SyncCodec, HeaderViewLeavesRecordsEncoded) {
  const json v = vectors();
  const std::vector<uint8_t> bytes = from_hex(v.at("packets").at(0).at("hex"));
  PacketView view;
  ASSERT_EQ(decode_header(bytes, &view), SyncError::Ok);
  ASSERT_EQ(view.count, 3);
  SyncRecord r;
  ASSERT_EQ(decode_record(view.record(2), &r), SyncError::Ok);
  EXPECT_EQ(r, record_of(v.at("packets").at(0).at("records").at(2)));
}

TEST(SyncCodec, ErrorNames) {
  EXPECT_EQ(to_string(SyncError::Ok), "ok");
  EXPECT_EQ(to_string(SyncError::BadKind), "bad_kind");
  EXPECT_EQ(to_string(static_cast<SyncError>(200)), "unknown");
}

TEST(FlowKey, IdentifiesAFlowAcrossItsChanges) {
  SyncRecord a;
  a.inside_ip = 1;
  a.remote_port = 443;
  a.proto = 6;
  SyncRecord b = a;
  b.kind = SyncKind::Delete;
  b.remaining_ms = 5;
  b.tcp_bits = 9;
  EXPECT_EQ(key_of(a), key_of(b));
  EXPECT_EQ(FlowKeyHash{}(key_of(a)), FlowKeyHash{}(key_of(b)));
  b.outside_port = 1;
  EXPECT_NE(key_of(a), key_of(b));
}

}  // namespace
}  // namespace eipgate::proto

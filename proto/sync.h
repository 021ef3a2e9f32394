// The connection-table sync contract between eipgate-dataplane and eipgate-control (and, record
// by record, between the two HA peers): the one flow record type, the packet framing and the codec.
// Standard library only, so that the dataplane and control both include it and nothing else.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace eipgate::proto {

enum class SyncKind : uint8_t {
  Create = 1,   // a new mapping: the standby installs it
  Refresh = 2,  // the flow saw traffic or changed TCP state: new lifetime and state
  Delete = 3,   // expired, closed or evicted: the standby removes it
};

// One flow change. Addresses and ports in host order. The engine makes and applies these
// (engine::SyncRecord), control relays them (ha::FlowEvent): both names are this type.
struct SyncRecord {
  uint32_t inside_ip = 0;    // the private host
  uint32_t outside_ip = 0;   // the translated (service) address
  uint32_t remote_ip = 0;    // the internet peer
  uint16_t inside_port = 0;  // port, or ICMP echo id
  uint16_t outside_port = 0;
  uint16_t remote_port = 0;
  uint8_t proto = 0;     // IPPROTO_TCP/UDP/ICMP
  uint8_t tcp_bits = 0;  // the TCP flags the engine saw (SYN/FIN each way, RST); 0 for UDP/ICMP
  uint32_t remaining_ms = 0;  // until idle expiry; travels in whole seconds, rounded up
  SyncKind kind = SyncKind::Create;
  bool endpoint_independent = false;  // an endpoint-independent UDP mapping
  uint16_t worker_hint = 0;           // the worker that owned the flow (set by the dataplane glue)

  friend bool operator==(const SyncRecord&, const SyncRecord&) = default;
};

// --- record wire layout (28 bytes, network order) ----------------------------------------------
//   0 inside_ip u32 | 4 outside_ip u32 | 8 remote_ip u32 | 12 inside_port u16 | 14 outside_port u16
//  16 remote_port u16 | 18 proto u8 | 19 tcp_bits u8 | 20 lifetime_s u32 | 24 kind u8 | 25 flags u8
//  26 worker_hint u16
inline constexpr size_t kRecordSize = 28;
inline constexpr uint8_t kFlagEndpointIndependent = 0x01;  // other flag bits: sent 0, ignored
// remaining_ms <-> lifetime_s: encode rounds up; decode caps at this many seconds (46 days), the
// longest lifetime that still fits remaining_ms.
inline constexpr uint32_t kMaxLifetimeS = 4'000'000;

// --- packet framing (the dataplane's sync socket, SOCK_SEQPACKET: one packet per message) ------
//   0 type u8 | 1 version u8 (= kVersion) | 2 count u16 | 4 reserved u32 (0) | count records
enum class PacketType : uint8_t {
  Events = 1,           // both ways: flow records
  SnapshotRequest = 2,  // control -> dataplane
  SnapshotBegin = 3,    // dataplane -> control
  SnapshotEnd = 4,      // dataplane -> control
};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 8;
inline constexpr size_t kMaxRecordsPerPacket = 64;
inline constexpr size_t kMaxPacketSize = kHeaderSize + kMaxRecordsPerPacket * kRecordSize;

// Why a packet or record was refused: one list for the enum and the names (counters, logs, the
// shared test vectors in proto/testdata).
#define EIPGATE_SYNC_ERRORS(X)                                               \
  X(Ok, "ok")                                                                \
  X(Truncated, "truncated") /* shorter than a header */                      \
  X(BadVersion, "bad_version")                                               \
  X(BadType, "bad_type")                                                     \
  X(TooManyRecords, "too_many_records") /* count > 64 */                     \
  X(LengthMismatch, "length_mismatch")  /* size != header + count records */ \
  X(BadKind, "bad_kind")                /* a record's kind outside SyncKind */
enum class SyncError : uint8_t {
#define EIPGATE_SYNC_ERROR_ENUM(name, text) name,
  EIPGATE_SYNC_ERRORS(EIPGATE_SYNC_ERROR_ENUM)
#undef EIPGATE_SYNC_ERROR_ENUM
};
inline constexpr size_t kSyncErrorCount = 0
#define EIPGATE_SYNC_ERROR_COUNT(name, text) +1
    EIPGATE_SYNC_ERRORS(EIPGATE_SYNC_ERROR_COUNT)
#undef EIPGATE_SYNC_ERROR_COUNT
    ;
[[nodiscard]] std::string_view to_string(SyncError e);

// Writes one record (exactly kRecordSize bytes).
void encode_record(const SyncRecord& record, std::span<uint8_t, kRecordSize> out);
// Reads one record; Ok or BadKind (*out is untouched then).
[[nodiscard]] SyncError decode_record(std::span<const uint8_t, kRecordSize> in, SyncRecord* out);

// Writes a whole packet into `out` and returns its size; 0 when there are more than
// kMaxRecordsPerPacket records or `out` is too small.
[[nodiscard]] size_t encode_packet(PacketType type, std::span<const SyncRecord> records,
                                   std::span<uint8_t> out);

// A packet whose header was checked: its type and its still-encoded records.
struct PacketView {
  PacketType type = PacketType::Events;
  uint16_t count = 0;
  std::span<const uint8_t> records;  // count * kRecordSize bytes
  [[nodiscard]] std::span<const uint8_t, kRecordSize> record(size_t i) const {
    return records.subspan(i * kRecordSize).first<kRecordSize>();
  }
};
// Checks the header (size, version, type, count, length) without reading the records, so a
// reader can apply the good records of a packet and count the bad ones.
[[nodiscard]] SyncError decode_header(std::span<const uint8_t> bytes, PacketView* out);
// The whole packet, all or nothing: the header and then every record into `records`.
[[nodiscard]] SyncError decode_packet(std::span<const uint8_t> bytes, PacketType* type,
                                      std::span<SyncRecord, kMaxRecordsPerPacket> records,
                                      size_t* count);

// A flow's identity (what Create, Refresh and Delete of one flow share): the three addresses,
// three ports and the protocol. Hashable, for tables keyed by flow.
struct FlowKey {
  uint32_t inside_ip = 0, outside_ip = 0, remote_ip = 0;
  uint16_t inside_port = 0, outside_port = 0, remote_port = 0;
  uint8_t proto = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
[[nodiscard]] inline FlowKey key_of(const SyncRecord& r) {
  return {r.inside_ip,    r.outside_ip,  r.remote_ip, r.inside_port,
          r.outside_port, r.remote_port, r.proto};
}
struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t h = (uint64_t{k.inside_ip} << 32 | k.remote_ip) * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t{k.outside_ip} << 24 | uint64_t{k.inside_port} << 8 | k.proto) +
         0x7F4A7C159E3779B9ull + (h << 6) + (h >> 2);
    h ^= (uint64_t{k.outside_port} << 16 | k.remote_port) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

}  // namespace eipgate::proto

// The sync codec: SyncRecord <-> its 28-byte record, and the packet framing around records.
#include "proto/sync.h"

#include <algorithm>

#include "common/byte_order.h"

namespace eipgate::proto {

std::string_view to_string(SyncError e) {
  static constexpr std::array<std::string_view, kSyncErrorCount> kNames = {
#define EIPGATE_SYNC_ERROR_NAME(name, text) text,
      EIPGATE_SYNC_ERRORS(EIPGATE_SYNC_ERROR_NAME)
#undef EIPGATE_SYNC_ERROR_NAME
  };
  const auto i = static_cast<size_t>(e);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

void encode_record(const SyncRecord& r, std::span<uint8_t, kRecordSize> out) {
  uint8_t* p = out.data();
  be::put32(p + 0, r.inside_ip);
  be::put32(p + 4, r.outside_ip);
  be::put32(p + 8, r.remote_ip);
  be::put16(p + 12, r.inside_port);
  be::put16(p + 14, r.outside_port);
  be::put16(p + 16, r.remote_port);
  p[18] = r.proto;
  p[19] = r.tcp_bits;
  // Whole seconds, rounded up: a flow with 1 ms left is still alive on the peer.
  be::put32(p + 20, r.remaining_ms / 1000 + (r.remaining_ms % 1000 != 0 ? 1 : 0));
  p[24] = static_cast<uint8_t>(r.kind);
  p[25] = r.endpoint_independent ? kFlagEndpointIndependent : 0;
  be::put16(p + 26, r.worker_hint);
}

SyncError decode_record(std::span<const uint8_t, kRecordSize> in, SyncRecord* out) {
  const uint8_t* p = in.data();
  const uint8_t kind = p[24];
  if (kind < static_cast<uint8_t>(SyncKind::Create) ||
      kind > static_cast<uint8_t>(SyncKind::Delete)) {
    return SyncError::BadKind;
  }
  out->inside_ip = be::get32(p + 0);
  out->outside_ip = be::get32(p + 4);
  out->remote_ip = be::get32(p + 8);
  out->inside_port = be::get16(p + 12);
  out->outside_port = be::get16(p + 14);
  out->remote_port = be::get16(p + 16);
  out->proto = p[18];
  out->tcp_bits = p[19];
  out->remaining_ms = std::min(be::get32(p + 20), kMaxLifetimeS) * 1000;
  out->kind = static_cast<SyncKind>(kind);
  out->endpoint_independent = (p[25] & kFlagEndpointIndependent) != 0;
  out->worker_hint = be::get16(p + 26);
  return SyncError::Ok;
}

size_t encode_packet(PacketType type, std::span<const SyncRecord> records, std::span<uint8_t> out) {
  const size_t size = kHeaderSize + records.size() * kRecordSize;
  if (records.size() > kMaxRecordsPerPacket || out.size() < size) return 0;
  uint8_t* p = out.data();
  p[0] = static_cast<uint8_t>(type);
  p[1] = kVersion;
  be::put16(p + 2, static_cast<uint16_t>(records.size()));
  be::put32(p + 4, 0);
  for (size_t i = 0; i < records.size(); ++i) {
    encode_record(records[i], out.subspan(kHeaderSize + i * kRecordSize).first<kRecordSize>());
  }
  return size;
}

SyncError decode_header(std::span<const uint8_t> bytes, PacketView* out) {
  if (bytes.size() < kHeaderSize) return SyncError::Truncated;
  if (bytes[1] != kVersion) return SyncError::BadVersion;
  const uint8_t type = bytes[0];
  if (type < static_cast<uint8_t>(PacketType::Events) ||
      type > static_cast<uint8_t>(PacketType::SnapshotEnd)) {
    return SyncError::BadType;
  }
  const uint16_t count = be::get16(bytes.data() + 2);
  if (count > kMaxRecordsPerPacket) return SyncError::TooManyRecords;
  if (bytes.size() != kHeaderSize + size_t{count} * kRecordSize) return SyncError::LengthMismatch;
  out->type = static_cast<PacketType>(type);
  out->count = count;
  out->records = bytes.subspan(kHeaderSize);
  return SyncError::Ok;
}

SyncError decode_packet(std::span<const uint8_t> bytes, PacketType* type,
                        std::span<SyncRecord, kMaxRecordsPerPacket> records, size_t* count) {
  PacketView view;
  if (const SyncError e = decode_header(bytes, &view); e != SyncError::Ok) return e;
  for (size_t i = 0; i < view.count; ++i) {
    if (const SyncError e = decode_record(view.record(i), &records[i]); e != SyncError::Ok) {
      return e;
    }
  }
  *type = view.type;
  *count = view.count;
  return SyncError::Ok;
}

}  // namespace eipgate::proto

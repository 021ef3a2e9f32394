// Encoding, signing, verification and parsing of HA messages (layout in wire.h / README.md).
#include "control/ha/wire.h"

#include <algorithm>
#include <cstring>

#include "common/byte_order.h"

namespace eipgate::ha {
namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

size_t payload_size(const Message& m) {
  return std::visit(
      Overloaded{
          [](const Heartbeat&) { return kHeartbeatSize; },
          [](const SyncBatch& b) { return kSyncBatchFixed + b.events.size() * kFlowEventWireSize; },
          [](const SyncRequest&) { return kSyncRequestSize; },
          [](const SyncBulk& b) { return kSyncBulkFixed + b.events.size() * kFlowEventWireSize; },
          [](const HandoverRequest&) { return kHandoverRequestSize; },
          [](const HandoverAck&) { return kHandoverAckSize; },
      },
      m);
}

MessageType type_of(const Message& m) {
  return std::visit(Overloaded{
                        [](const Heartbeat&) { return MessageType::Heartbeat; },
                        [](const SyncBatch&) { return MessageType::SyncBatch; },
                        [](const SyncRequest&) { return MessageType::SyncRequest; },
                        [](const SyncBulk&) { return MessageType::SyncBulk; },
                        [](const HandoverRequest&) { return MessageType::HandoverRequest; },
                        [](const HandoverAck&) { return MessageType::HandoverAck; },
                    },
                    m);
}

void put_events(uint8_t* p, const std::vector<FlowEvent>& events) {
  for (const FlowEvent& e : events) {
    encode_flow_event(e, std::span<uint8_t, kFlowEventWireSize>(p, kFlowEventWireSize));
    p += kFlowEventWireSize;
  }
}

bool get_events(const uint8_t* p, size_t count, std::vector<FlowEvent>* out) {
  out->resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (!decode_flow_event(std::span<const uint8_t, kFlowEventWireSize>(p, kFlowEventWireSize),
                           &(*out)[i])) {
      return false;
    }
    p += kFlowEventWireSize;
  }
  return true;
}

void encode_payload(const Message& m, uint8_t* p) {
  std::visit(Overloaded{
                 [p](const Heartbeat& h) {
                   p[0] = static_cast<uint8_t>(h.state);
                   p[1] = h.priority;
                   p[2] = h.health;
                   be::put64(p + 8, h.sync_sent);
                   be::put64(p + 16, h.sync_applied);
                 },
                 [p](const SyncBatch& b) {
                   be::put64(p, b.first_seq);
                   be::put16(p + 8, static_cast<uint16_t>(b.events.size()));
                   put_events(p + kSyncBatchFixed, b.events);
                 },
                 [p](const SyncRequest& r) {
                   be::put64(p, r.from_seq);
                   p[8] = static_cast<uint8_t>(r.mode);
                 },
                 [p](const SyncBulk& b) {
                   be::put32(p, b.resync_id);
                   be::put32(p + 4, b.chunk);
                   be::put64(p + 8, b.base_seq);
                   be::put16(p + 16, static_cast<uint16_t>(b.events.size()));
                   be::put16(p + 18, b.last ? 1 : 0);
                   put_events(p + kSyncBulkFixed, b.events);
                 },
                 [p](const HandoverRequest& r) {
                   be::put32(p, r.id);
                   be::put64(p + 8, r.sync_sent);
                 },
                 [p](const HandoverAck& a) {
                   be::put32(p, a.id);
                   p[4] = a.accepted ? 1 : 0;
                 },
             },
             m);
}

// Parses an authenticated payload; nullopt when it is malformed for its type.
std::optional<Message> decode_payload(MessageType type, const uint8_t* p, size_t len) {
  switch (type) {
    case MessageType::Heartbeat: {
      if (len != kHeartbeatSize || p[0] > static_cast<uint8_t>(HaState::Failed)) return {};
      return Heartbeat{static_cast<HaState>(p[0]), p[1], p[2], be::get64(p + 8), be::get64(p + 16)};
    }
    case MessageType::SyncBatch: {
      if (len < kSyncBatchFixed) return {};
      SyncBatch b;
      b.first_seq = be::get64(p);
      const size_t count = be::get16(p + 8);
      if (count == 0 || len != kSyncBatchFixed + count * kFlowEventWireSize || b.first_seq == 0) {
        return {};
      }
      if (!get_events(p + kSyncBatchFixed, count, &b.events)) return {};
      return b;
    }
    case MessageType::SyncRequest: {
      if (len != kSyncRequestSize || p[8] > static_cast<uint8_t>(ResyncMode::Full)) return {};
      return SyncRequest{be::get64(p), static_cast<ResyncMode>(p[8])};
    }
    case MessageType::SyncBulk: {
      if (len < kSyncBulkFixed) return {};
      SyncBulk b;
      b.resync_id = be::get32(p);
      b.chunk = be::get32(p + 4);
      b.base_seq = be::get64(p + 8);
      const size_t count = be::get16(p + 16);
      const uint16_t flags = be::get16(p + 18);
      if ((flags & ~1U) != 0 || len != kSyncBulkFixed + count * kFlowEventWireSize) return {};
      b.last = (flags & 1U) != 0;
      if (!get_events(p + kSyncBulkFixed, count, &b.events)) return {};
      return b;
    }
    case MessageType::HandoverRequest: {
      if (len != kHandoverRequestSize) return {};
      return HandoverRequest{be::get32(p), be::get64(p + 8)};
    }
    case MessageType::HandoverAck: {
      if (len != kHandoverAckSize || p[4] > 1) return {};
      return HandoverAck{be::get32(p), p[4] == 1};
    }
  }
  return {};
}

bool known_type(uint8_t t) {
  return t >= static_cast<uint8_t>(MessageType::Heartbeat) &&
         t <= static_cast<uint8_t>(MessageType::HandoverAck);
}

constexpr std::string_view kReasonNames[] = {
#define EIPGATE_HA_X(name, text) #name,
    EIPGATE_HA_DROP_REASONS(EIPGATE_HA_X)
#undef EIPGATE_HA_X
};
constexpr std::string_view kReasonTexts[] = {
#define EIPGATE_HA_X(name, text) text,
    EIPGATE_HA_DROP_REASONS(EIPGATE_HA_X)
#undef EIPGATE_HA_X
};

}  // namespace

std::string_view to_string(MessageType t) {
  switch (t) {
    case MessageType::Heartbeat:
      return "heartbeat";
    case MessageType::SyncBatch:
      return "sync_batch";
    case MessageType::SyncRequest:
      return "sync_request";
    case MessageType::SyncBulk:
      return "sync_bulk";
    case MessageType::HandoverRequest:
      return "handover_request";
    case MessageType::HandoverAck:
      return "handover_ack";
  }
  return "unknown";
}

bool changes_state(MessageType t) {
  return t == MessageType::Heartbeat || t == MessageType::HandoverRequest ||
         t == MessageType::HandoverAck;
}

std::string_view to_string(DropReason r) {
  const auto i = static_cast<size_t>(r);
  return i < kDropReasonCount ? kReasonNames[i] : "unknown";
}
std::string_view description(DropReason r) {
  const auto i = static_cast<size_t>(r);
  return i < kDropReasonCount ? kReasonTexts[i] : "unknown";
}

uint64_t DropCounters::dropped() const {
  uint64_t total = 0;
  for (uint64_t n : by_reason) total += n;
  return total;
}

size_t Codec::encode(const Message& message, uint64_t epoch, std::span<uint8_t> out) {
  const size_t payload = payload_size(message);
  const size_t total = kHeaderSize + payload + kMacSize;
  if (payload > kMaxPayload || out.size() < total) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, kHeaderSize + payload);  // reserved fields are zero
  be::put32(p, kWireMagic);
  p[4] = kWireVersion;
  p[5] = static_cast<uint8_t>(type_of(message));
  be::put16(p + 6, static_cast<uint16_t>(payload));
  be::put64(p + 8, boot_id_);
  be::put64(p + 16, ++seq_);
  be::put64(p + 24, epoch);
  const Echo e = echo();
  be::put64(p + 32, static_cast<uint64_t>(clock_.now().count()));
  be::put64(p + 40, e.run);
  be::put64(p + 48, e.ms);
  encode_payload(message, p + kHeaderSize);
  if (!auth_->sign(std::span<const uint8_t>(p, kHeaderSize + payload),
                   std::span<uint8_t, kMacSize>(p + kHeaderSize + payload, kMacSize))) {
    return 0;
  }
  return total;
}

std::vector<uint8_t> Codec::encode(const Message& message, uint64_t epoch) {
  std::vector<uint8_t> out(kMaxDatagram);
  out.resize(encode(message, epoch, out));
  return out;
}

std::optional<Header> peek_header(std::span<const uint8_t> d) {
  if (d.size() < kHeaderSize || be::get32(d.data()) != kWireMagic) return {};
  const uint8_t* p = d.data();
  Header h;
  h.type = static_cast<MessageType>(p[5]);
  h.payload_len = be::get16(p + 6);
  h.boot_id = be::get64(p + 8);
  h.seq = be::get64(p + 16);
  h.epoch = be::get64(p + 24);
  h.sent_ms = be::get64(p + 32);
  h.echo_run = be::get64(p + 40);
  h.echo_ms = be::get64(p + 48);
  return h;
}

std::optional<Decoded> Codec::decode(std::span<const uint8_t> d, DropReason* why) {
  auto drop = [&](DropReason r) -> std::optional<Decoded> {
    counters_.count(r);
    if (why != nullptr) *why = r;
    return std::nullopt;
  };
  if (d.size() < kHeaderSize + kMacSize) return drop(DropReason::too_short);
  if (d.size() > kMaxDatagram) return drop(DropReason::too_long);
  const uint8_t* p = d.data();
  if (be::get32(p) != kWireMagic) return drop(DropReason::bad_magic);
  if (p[4] != kWireVersion) return drop(DropReason::bad_version);
  const size_t payload = be::get16(p + 6);
  if (kHeaderSize + payload + kMacSize != d.size()) return drop(DropReason::length_mismatch);
  // Nothing past this point is trusted before the MAC verifies.
  if (!auth_->verify(d.first(kHeaderSize + payload), d.subspan(kHeaderSize + payload))) {
    return drop(DropReason::bad_mac);
  }
  if (!known_type(p[5])) return drop(DropReason::unknown_type);
  const Header h = *peek_header(d);
  std::optional<Message> m = decode_payload(h.type, p + kHeaderSize, payload);
  if (!m) return drop(DropReason::bad_payload);
  if (h.boot_id == boot_id_) return drop(DropReason::own_message);
  if (retired(h.boot_id)) return drop(DropReason::stale_incarnation);

  const Millis now = clock_.now();
  const auto now_ms = static_cast<uint64_t>(now.count());
  // Bound: echoes our run id, and a time of ours that has already happened.
  const bool bound = h.echo_run == boot_id_ && h.echo_ms <= now_ms;
  const bool fresh = bound && now_ms - h.echo_ms <= static_cast<uint64_t>(max_age_.count());
  if (peer_ && h.boot_id == peer_->run) {
    // The current sender run: each sequence once, then the binding.
    switch (peer_->window.check(h.seq)) {
      case ReplayWindow::Verdict::Accept:
        break;
      case ReplayWindow::Verdict::Replay:
        return drop(DropReason::replay);
      case ReplayWindow::Verdict::TooOld:
        return drop(DropReason::too_old);
    }
    // Authentic and new: what it says of the sender's clock is echoed back even if we cannot use
    // the message (after a partition, both sides' echoes are old until they hear each other).
    peer_->window.record(h.seq);
    peer_->echo_ms = std::max(peer_->echo_ms, h.sent_ms);
    peer_->heard = now;
    if (!bound) {
      answer(h.boot_id, now);
      return drop(DropReason::unbound);
    }
    if (!fresh && changes_state(h.type)) {
      answer(h.boot_id, now);
      return drop(DropReason::expired);
    }
  } else {
    // Another run: it replaces the current one only by proving it heard us recently.
    if (!bound) {
      note_unaccepted(h, now);
      return drop(DropReason::unbound);
    }
    if (!fresh) {
      note_unaccepted(h, now);
      return drop(DropReason::expired);
    }
    if (h.seq == 0) return drop(DropReason::too_old);
    if (peer_) {
      retired_[retired_next_] = peer_->run;
      retired_next_ = (retired_next_ + 1) % kRetiredRuns;
    }
    peer_.emplace();
    peer_->run = h.boot_id;
    peer_->window.record(h.seq);
    peer_->echo_ms = h.sent_ms;
    peer_->heard = now;
    candidate_.reset();
    answer_due_ = true;  // tell the new run at once that we heard it
  }
  ++counters_.accepted;
  if (why != nullptr) *why = DropReason::count;
  return Decoded{h, std::move(*m)};
}

void Codec::note_unaccepted(const Header& h, Millis now) {
  if (candidate_ && candidate_->run == h.boot_id) {
    candidate_->ms = std::max(candidate_->ms, h.sent_ms);
  } else {
    candidate_ = Echo{h.boot_id, h.sent_ms};
  }
  answer(h.boot_id, now);
}

void Codec::answer(uint64_t run, Millis now) {
  auto* slot = &answered_[0];
  for (auto& a : answered_) {
    if (a.first == run) {
      slot = &a;
      break;
    }
    if (a.second < slot->second) slot = &a;  // else the least recently answered
  }
  if (slot->first == run && now - slot->second < kAnswerInterval) return;
  *slot = {run, now};
  answer_due_ = true;
}

bool Codec::take_answer_due() {
  const bool due = answer_due_;
  answer_due_ = false;
  return due;
}

bool Codec::retired(uint64_t run) const {
  for (uint64_t r : retired_) {
    if (r != 0 && r == run) return true;
  }
  return false;
}

Echo Codec::echo() const {
  if (peer_ && clock_.now() - peer_->heard <= max_age_) return Echo{peer_->run, peer_->echo_ms};
  if (candidate_) return *candidate_;
  if (peer_) return Echo{peer_->run, peer_->echo_ms};
  return Echo{};
}

}  // namespace eipgate::ha

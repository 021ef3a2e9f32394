// SyncSender / SyncReceiver (see sync.h and README.md "Connection-table sync").
#include "control/ha/sync.h"

#include <algorithm>

namespace eipgate::ha {

void SyncSender::emit(const Message& m) {
  std::vector<uint8_t> d = codec_->encode(m, epoch_);
  if (d.empty()) {
    ++stats_.encode_failures;
    return;
  }
  out_.push_back(std::move(d));
}

void SyncSender::add(const FlowEvent& event) {
  if (batch_.events.empty()) batch_.first_seq = next_seq_;
  batch_.events.push_back(event);
  ++next_seq_;
  ++stats_.events;
  if (batch_.events.size() == kMaxBatchEvents) flush();
}

void SyncSender::flush() {
  if (batch_.events.empty()) return;
  emit(batch_);
  ++stats_.batches;
  batch_.events.clear();
}

uint32_t SyncSender::send_snapshot(std::span<const FlowEvent> flows) {
  flush();
  const uint32_t id = next_resync_id_++;
  SyncBulk chunk;
  chunk.resync_id = id;
  chunk.base_seq = next_seq_ - 1;
  size_t at = 0;
  do {
    const size_t n = std::min(kMaxBulkEvents, flows.size() - at);
    chunk.events.assign(flows.begin() + static_cast<std::ptrdiff_t>(at),
                        flows.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    chunk.last = at == flows.size();
    emit(chunk);
    ++stats_.bulk_chunks;
    ++chunk.chunk;
  } while (at < flows.size());
  stats_.bulk_events += flows.size();
  ++stats_.snapshots;
  return id;
}

std::vector<std::vector<uint8_t>> SyncSender::take() {
  std::vector<std::vector<uint8_t>> out(std::make_move_iterator(out_.begin()),
                                        std::make_move_iterator(out_.end()));
  out_.clear();
  return out;
}

std::optional<SyncRequest> SyncReceiver::request(ResyncMode mode, std::string reason, bool force) {
  reason_ = std::move(reason);
  mode_ = Mode::Resyncing;
  const Millis now = clock_.now();
  if (!force && last_request_ && now - *last_request_ < retry_) return std::nullopt;
  last_request_ = now;
  ++stats_.requests;
  return SyncRequest{applied_ + 1, mode};
}

std::optional<SyncRequest> SyncReceiver::start() {
  sender_ = 0;
  applied_ = 0;
  buffer_.clear();
  bulk_open_ = false;
  tail_suspect_ = 0;
  return request(ResyncMode::Full, "joining: full resync", true);
}

// Binds the first sender; a different one later means a new active (or a restarted one) whose
// sequence numbers have nothing to do with ours.
std::optional<SyncRequest> SyncReceiver::check_sender(uint64_t sender) {
  if (sender_ == sender) return std::nullopt;
  const bool first = sender_ == 0;
  sender_ = sender;
  if (first && mode_ != Mode::Idle) return std::nullopt;
  applied_ = 0;
  buffer_.clear();
  bulk_open_ = false;
  tail_suspect_ = 0;
  return request(ResyncMode::Full, first ? "first contact: full resync" : "new sender: full resync",
                 true);
}

std::optional<SyncRequest> SyncReceiver::apply_live(uint64_t first_seq,
                                                    std::span<const FlowEvent> events) {
  if (first_seq > applied_ + 1) {
    ++stats_.gaps;
    const uint64_t expected = applied_ + 1;
    for (size_t i = 0; i < events.size(); ++i) buffer_.emplace_back(first_seq + i, events[i]);
    stats_.buffered += events.size();
    return request(
        ResyncMode::FromSeq,
        "gap: expected sync seq " + std::to_string(expected) + ", got " + std::to_string(first_seq),
        true);
  }
  for (size_t i = 0; i < events.size(); ++i) {
    const uint64_t seq = first_seq + i;
    if (seq <= applied_) {
      ++stats_.duplicates;
      continue;
    }
    sink_->apply(events[i]);
    applied_ = seq;
    ++stats_.applied;
  }
  last_progress_ = clock_.now();
  return std::nullopt;
}

std::optional<SyncRequest> SyncReceiver::on_batch(uint64_t sender, const SyncBatch& batch) {
  if (auto r = check_sender(sender)) {
    for (size_t i = 0; i < batch.events.size(); ++i) {
      buffer_.emplace_back(batch.first_seq + i, batch.events[i]);
    }
    return r;
  }
  switch (mode_) {
    case Mode::Idle:
      return request(ResyncMode::Full, "live events before any snapshot: full resync", true);
    case Mode::Resyncing:
      for (size_t i = 0; i < batch.events.size(); ++i) {
        if (buffer_.size() >= kMaxBuffered) {
          // The snapshot's end will reveal the hole as a gap and resync again.
          stats_.buffer_overflow += batch.events.size() - i;
          break;
        }
        buffer_.emplace_back(batch.first_seq + i, batch.events[i]);
        ++stats_.buffered;
      }
      return std::nullopt;
    case Mode::Streaming:
      return apply_live(batch.first_seq, batch.events);
  }
  return std::nullopt;
}

std::optional<SyncRequest> SyncReceiver::drain_buffer() {
  std::stable_sort(buffer_.begin(), buffer_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t i = 0;
  for (; i < buffer_.size(); ++i) {
    const auto& [seq, event] = buffer_[i];
    if (seq <= applied_) {
      ++stats_.duplicates;
      continue;
    }
    if (seq != applied_ + 1) break;
    sink_->apply(event);
    applied_ = seq;
    ++stats_.applied;
  }
  if (i == buffer_.size()) {
    buffer_.clear();
    return std::nullopt;
  }
  const uint64_t got = buffer_[i].first;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(i));
  ++stats_.gaps;
  return request(ResyncMode::FromSeq,
                 "gap after snapshot: expected sync seq " + std::to_string(applied_ + 1) +
                     ", next buffered " + std::to_string(got),
                 true);
}

std::optional<SyncRequest> SyncReceiver::on_bulk(uint64_t sender, const SyncBulk& bulk) {
  if (sender_ != sender) {
    // A snapshot from a new sender replaces everything; its chunk 0 needs no request.
    sender_ = sender;
    applied_ = 0;
    buffer_.clear();
    bulk_open_ = false;
    tail_suspect_ = 0;
    mode_ = Mode::Resyncing;
  }
  last_progress_ = clock_.now();
  if (bulk.chunk == 0) {
    bulk_open_ = true;
    bulk_id_ = bulk.resync_id;
    bulk_next_chunk_ = 0;
    bulk_base_ = bulk.base_seq;
    mode_ = Mode::Resyncing;
    sink_->snapshot_begin(bulk.resync_id);
  }
  if (!bulk_open_ || bulk.resync_id != bulk_id_ || bulk.chunk != bulk_next_chunk_) {
    ++stats_.bulk_out_of_order;
    const bool was_open = bulk_open_;
    bulk_open_ = false;
    return request(ResyncMode::Full,
                   was_open ? "snapshot chunk " + std::to_string(bulk_next_chunk_) + " of resync " +
                                  std::to_string(bulk_id_) + " missing"
                            : "snapshot chunk without its start",
                   false);
  }
  for (const FlowEvent& e : bulk.events) sink_->apply(e);
  stats_.bulk_events += bulk.events.size();
  ++stats_.bulk_chunks;
  ++bulk_next_chunk_;
  if (!bulk.last) return std::nullopt;
  sink_->snapshot_end(bulk.resync_id);
  bulk_open_ = false;
  applied_ = bulk_base_;
  mode_ = Mode::Streaming;
  ++stats_.snapshots_completed;
  reason_ = "snapshot " + std::to_string(bulk.resync_id) + " complete at sync seq " +
            std::to_string(bulk_base_);
  return drain_buffer();
}

std::optional<SyncRequest> SyncReceiver::on_heartbeat(uint64_t sender, uint64_t sync_sent) {
  if (sender_ != 0 && sender != sender_) return check_sender(sender);
  if (mode_ != Mode::Streaming) {
    tail_suspect_ = 0;
    return tick();
  }
  if (sync_sent <= applied_) {
    tail_suspect_ = 0;
    return std::nullopt;
  }
  if (tail_suspect_ != 0 && applied_ < tail_suspect_) {
    ++stats_.gaps;
    const uint64_t missing = tail_suspect_;
    tail_suspect_ = 0;
    return request(ResyncMode::FromSeq,
                   "stream tail lost: peer sent up to " + std::to_string(missing) + ", applied " +
                       std::to_string(applied_),
                   true);
  }
  tail_suspect_ = sync_sent;
  return std::nullopt;
}

std::optional<SyncRequest> SyncReceiver::tick() {
  if (mode_ != Mode::Resyncing || !last_request_) return std::nullopt;
  const Millis now = clock_.now();
  if (now - std::max(*last_request_, last_progress_) < retry_) return std::nullopt;
  bulk_open_ = false;
  return request(ResyncMode::Full, "resync unanswered: asking again", true);
}

}  // namespace eipgate::ha

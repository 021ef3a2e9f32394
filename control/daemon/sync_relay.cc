// The Daemon's peer link and sync relay: heartbeats and messages to the peer, datagrams from it,
// and flow events between our dataplane's sync socket and the peer (daemon_impl.h).
#include <poll.h>

#include <cerrno>
#include <span>

#include "common/log.h"
#include "control/daemon/daemon_impl.h"

namespace eipgate::control::detail {

void Daemon::apply(const ha::FlowEvent& e) {
  to_dataplane_.push_back(e);
  ++stats_.applied;
  if (sweeping_) {
    if (e.kind == ha::FlowEventKind::Delete) {
      sweep_keys_.erase(key_of(e));
    } else {
      sweep_keys_.insert(key_of(e));
    }
  }
  if (to_dataplane_.size() >= kSyncPacketMaxEvents) push_to_dataplane();
}

void Daemon::snapshot_begin(uint32_t id) {
  log::get()->info("sync: snapshot {} from the peer begins", id);
  sweep_keys_.clear();
  sweeping_ = true;
}

void Daemon::snapshot_end(uint32_t id) {
  // Flows our dataplane holds that the snapshot did not mention are stale: ask our dataplane
  // for its table and delete them (mark and sweep with only the sync socket's operations).
  log::get()->info("sync: snapshot {} from the peer complete; sweeping stale local flows", id);
  push_to_dataplane();
  link_.request_snapshot();
  snapshots_expected_.push_back(SnapshotPurpose::LocalSweep);
  ++stats_.snapshots_received;
}

void Daemon::send_message(const ha::Message& m) {
  if (!udp_) return;
  const auto bytes = codec_->encode(m, fsm_->epoch());
  if (bytes.empty()) return;
  udp_->send(peer_, bytes);
}

void Daemon::send_sync_datagrams() {
  auto ds = sender_->take();
  if (ds.empty() || !udp_) return;
  size_t done = 0;
  int waits = 0;
  while (done < ds.size()) {
    errno = 0;
    const size_t n =
        udp_->send_many(peer_, std::span<const std::vector<uint8_t>>(ds).subspan(done));
    if (n == 0) {
      // A local refusal (firewall EPERM, no route) will not clear by waiting: drop the batch
      // (a resync repairs the peer) instead of spinning on a writable socket.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) break;
      // Socket buffer full: wait briefly for the kernel to drain rather than lose a snapshot.
      pollfd p{udp_->fd(), POLLOUT, 0};
      if (++waits > 50 || ::poll(&p, 1, 20) <= 0) break;  // lost datagrams: resync repairs
      continue;
    }
    done += n;
  }
}

void Daemon::send_heartbeat() {
  const bool active = fsm_->state() == ha::HaState::Active;
  if (active) {
    sender_->flush();
    send_sync_datagrams();
  }
  ha::Heartbeat hb;
  hb.state = fsm_->state();
  hb.priority = config_.ha.priority;
  hb.health = fsm_->health_bits();
  if (!active && receiver_.in_sync()) hb.health |= ha::kHealthInSync;
  hb.sync_sent = active ? sender_->last_sent_seq() : 0;
  hb.sync_applied = receiver_.applied_seq();
  send_message(hb);
  ++stats_.heartbeats_sent;
}

void Daemon::on_sync_request_from(std::optional<ha::SyncRequest> r) {
  if (!r) return;
  send_message(*r);
}

void Daemon::push_to_dataplane() {
  if (to_dataplane_.empty()) return;
  link_.send_events(to_dataplane_);
  to_dataplane_.clear();
  link_.flush();
}

void Daemon::on_datagram(const ha::Datagram& d) {
  if (d.from.address != peer_.address) {
    codec_->counters().count(ha::DropReason::unknown_source);
    return;
  }
  auto decoded = codec_->decode(d.bytes);
  if (codec_->take_answer_due()) send_heartbeat();  // the exchange (control/ha/wire.h)
  if (!decoded) return;
  const ha::Header& h = decoded->header;
  const bool active = fsm_->state() == ha::HaState::Active;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ha::Heartbeat>) {
          ++stats_.heartbeats_received;
          heartbeat_gaps_.on_heartbeat(clock_.now(), config_.ha.heartbeat_interval, h.boot_id);
          peer_hb_ = m;
          peer_epoch_ = h.epoch;
          peer_boot_ = h.boot_id;
          peer_heard_ = clock_.now();
          handle(ha::event::PeerHeartbeat{m.state, m.priority, h.epoch, h.boot_id, m.health});
          if (fsm_->state() != ha::HaState::Active && m.state == ha::HaState::Active) {
            on_sync_request_from(receiver_.on_heartbeat(h.boot_id, m.sync_sent));
          }
        } else if constexpr (std::is_same_v<T, ha::SyncBatch>) {
          const bool grace = handover_grace_until_ && clock_.now() < *handover_grace_until_ &&
                             h.boot_id == handover_grace_boot_;
          if (active && !grace) return;  // a stale active's stream: we are the source of truth
          if (active) ++stats_.handover_grace_events;
          stats_.received += m.events.size();
          on_sync_request_from(receiver_.on_batch(h.boot_id, m));
        } else if constexpr (std::is_same_v<T, ha::SyncBulk>) {
          if (active) return;
          stats_.received += m.events.size();
          on_sync_request_from(receiver_.on_bulk(h.boot_id, m));
        } else if constexpr (std::is_same_v<T, ha::SyncRequest>) {
          if (!active || snapshot_for_peer_queued_) return;
          log::get()->info("sync: the peer asks for a full table; asking our dataplane");
          snapshot_for_peer_queued_ = true;
          link_.request_snapshot();
          link_.flush();
          snapshots_expected_.push_back(SnapshotPurpose::ForPeer);
        } else if constexpr (std::is_same_v<T, ha::HandoverRequest>) {
          // Take over only with everything the active sent applied: zero-loss handover.
          handover_in_ = PendingHandover{m.id, m.sync_sent, clock_.now() + 2s};
          maybe_accept_handover();
        } else if constexpr (std::is_same_v<T, ha::HandoverAck>) {
          handle(ha::event::PeerHandoverAck{m.id, m.accepted});
        }
      },
      decoded->message);
}

void Daemon::on_dataplane_packet(const SyncPacket& p) {
  switch (p.type) {
    case SyncPacketType::SnapshotBegin:
      if (snapshots_expected_.empty()) {
        snapshot_open_.reset();  // someone else's request: ignore its records
        snapshot_flows_.clear();
        return;
      }
      snapshot_open_ = snapshots_expected_.front();
      snapshots_expected_.pop_front();
      snapshot_flows_.clear();
      return;
    case SyncPacketType::SnapshotEnd: {
      if (!snapshot_open_) return;
      const auto purpose = *snapshot_open_;
      snapshot_open_.reset();
      if (purpose == SnapshotPurpose::ForPeer) {
        snapshot_for_peer_queued_ = false;
        if (fsm_->state() == ha::HaState::Active) {
          sender_->set_epoch(fsm_->epoch());
          sender_->send_snapshot(snapshot_flows_);
          send_sync_datagrams();
          ++stats_.snapshots_sent;
          log::get()->info("sync: sent a full table of {} flows to the peer",
                           snapshot_flows_.size());
        }
      } else {
        std::vector<ha::FlowEvent> stale;
        for (auto e : snapshot_flows_) {
          if (sweep_keys_.count(key_of(e)) == 0) {
            e.kind = ha::FlowEventKind::Delete;
            stale.push_back(e);
          }
        }
        sweeping_ = false;
        sweep_keys_.clear();
        if (!stale.empty()) {
          stats_.swept += stale.size();
          link_.send_events(stale);
          link_.flush();
          log::get()->info("sync: removed {} stale flows from our dataplane", stale.size());
        }
      }
      snapshot_flows_.clear();
      return;
    }
    case SyncPacketType::Events:
      if (snapshot_open_) {
        snapshot_flows_.insert(snapshot_flows_.end(), p.events.begin(), p.events.end());
        return;
      }
      if (fsm_->state() != ha::HaState::Active) return;  // only the active streams
      for (const auto& e : p.events) sender_->add(e);
      stats_.sent += p.events.size();
      send_sync_datagrams();  // full batches go out at once
      return;
    case SyncPacketType::SnapshotRequest:
      return;  // not for us
  }
}

}  // namespace eipgate::control::detail

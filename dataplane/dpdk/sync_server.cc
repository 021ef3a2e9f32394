// The connection-table sync socket (main lcore side): eipgate-control connects, receives the
// workers' flow records, sends the peer's records and snapshot requests.
#include <sys/socket.h>

#include <cstring>
#include <span>

#include "dataplane/dpdk/dataplane_impl.h"
#include "proto/sync.h"

namespace eipgate::dataplane {

// The packets and records are proto/'s (proto/README.md); the records are the engines' own
// SyncRecords, so nothing is translated here.

std::string Dataplane::Impl::open_sync_socket() {
  const std::string& admin_path = cfg.admin.socket_path;
  const size_t slash = admin_path.rfind('/');
  sync_path =
      (slash == std::string::npos ? std::string(".") : admin_path.substr(0, slash)) + "/sync.sock";
  // Root only, 0600 from the moment the path exists (common/unix_socket_server.h).
  UnixSocketOptions options;
  options.type = SOCK_SEQPACKET;
  options.backlog = 1;
  UnixSocketError err;
  if (!sync_listener.listen(sync_path, options, &err)) return "sync socket " + err.message;
  return {};
}

void Dataplane::Impl::sync_close_client() {
  if (sync_client_fd >= 0) ::close(sync_client_fd);
  sync_client_fd = -1;
  sync_connected.store(false, std::memory_order_relaxed);
  snapshot_open = false;
}

bool Dataplane::Impl::sync_send(proto::PacketType type,
                                std::span<const engine::SyncRecord> records) {
  const auto n = static_cast<uint32_t>(records.size());
  if (sync_client_fd < 0) {
    sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  uint8_t buf[proto::kMaxPacketSize];
  const size_t len = proto::encode_packet(type, records, buf);
  if (len == 0 ||
      ::send(sync_client_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
    if (len != 0 && errno != EAGAIN && errno != EWOULDBLOCK) sync_close_client();
    sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  sync_sent.fetch_add(n, std::memory_order_relaxed);
  return true;
}

// Accepts the control process, forwards workers' records to it, applies its records, serves
// snapshot requests. Returns whether anything happened.
bool Dataplane::Impl::sync_poll() {
  bool busy = false;
  if (sync_client_fd < 0 && sync_listener.fd() >= 0) {
    const UnixSocketPeer peer = sync_listener.accept();
    if (peer.kind == UnixSocketPeer::Kind::refused) {
      log->warn("sync: refused a connection from uid {} (root only)", peer.uid);
      UnixSocketServer::close_refused(peer, "");
    } else if (peer.kind == UnixSocketPeer::Kind::admitted) {
      sync_client_fd = peer.fd;
      sync_connected.store(true, std::memory_order_relaxed);
      log->info("sync: eipgate-control connected");
    }
  }
  // Outbound: workers' records, in packets of up to 64.
  engine::SyncRecord recs[proto::kMaxRecordsPerPacket];
  bool snapshot_finished = snapshot_open;
  for (const auto& w : workers) {
    for (int rounds = 0; rounds < 16; ++rounds) {
      const unsigned n = rte_ring_sc_dequeue_burst_elem(w->sync_out, recs, sizeof recs[0],
                                                        proto::kMaxRecordsPerPacket, nullptr);
      if (n == 0) break;
      busy = true;
      for (unsigned i = 0; i < n; ++i) recs[i].worker_hint = w->index;
      sync_send(proto::PacketType::Events, std::span(recs, n));
    }
    if (snapshot_open && (w->snap_done.load(std::memory_order_acquire) != snapshot_gen ||
                          !rte_ring_empty(w->sync_out))) {
      snapshot_finished = false;
    }
  }
  if (snapshot_open && snapshot_finished) {
    sync_send(proto::PacketType::SnapshotEnd, {});
    snapshot_open = false;
    sync_snapshots.fetch_add(1, std::memory_order_relaxed);
  }
  // Inbound: the peer's records (standby) and snapshot requests.
  if (sync_client_fd >= 0) {
    uint8_t buf[proto::kMaxPacketSize + 1];  // one byte more: an oversized packet shows
    for (int rounds = 0; rounds < 64; ++rounds) {
      const ssize_t len = ::recv(sync_client_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (len == 0 || (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        log->info("sync: eipgate-control disconnected");
        sync_close_client();
        break;
      }
      if (len < 0) break;
      busy = true;
      proto::PacketView packet;
      if (proto::decode_header(std::span<const uint8_t>(buf, static_cast<size_t>(len)), &packet) !=
          proto::SyncError::Ok) {
        sync_malformed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (packet.type == proto::PacketType::SnapshotRequest) {
        start_snapshot();
      } else if (packet.type == proto::PacketType::Events) {
        for (uint32_t i = 0; i < packet.count; ++i) {
          engine::SyncRecord r;
          if (proto::decode_record(packet.record(i), &r) != proto::SyncError::Ok) {
            sync_malformed.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          // The worker that owns the reply direction, as the engines choose it (RSS).
          const uint16_t owner = workers[0]->eng->rss_worker(
              r.remote_ip, r.outside_ip, r.remote_port, r.outside_port, r.proto);
          WorkerContext& w = *workers[owner < workers.size() ? owner : 0];
          if (rte_ring_mp_enqueue_elem(w.sync_in, const_cast<engine::SyncRecord*>(&r), sizeof r) ==
              0) {
            sync_received.fetch_add(1, std::memory_order_relaxed);
            wake_worker(w);
          } else {
            sync_send_dropped.fetch_add(1, std::memory_order_relaxed);
          }
        }
      } else {
        sync_malformed.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  return busy;
}

void Dataplane::Impl::start_snapshot() {
  sync_send(proto::PacketType::SnapshotBegin, {});
  snapshot_open = true;
  snapshot_gen = 0;
  for (auto& w : workers) snapshot_gen = std::max(snapshot_gen, w->snap_gen.load() + 1);
  for (auto& w : workers) {
    w->snap_done.store(w->snap_gen.load(), std::memory_order_relaxed);
    w->snap_gen.store(snapshot_gen, std::memory_order_release);
    wake_worker(*w);
  }
}

}  // namespace eipgate::dataplane

// The connection-table sync socket (main lcore side): eipgate-control connects, receives the
// workers' flow records, sends the peer's records and snapshot requests.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <span>

#include "control/ha/flow_event.h"
#include "dataplane/dpdk/dataplane_impl.h"

namespace eipgate::dataplane {

namespace {

// --- connection-table sync, main side (the sync socket; control/daemon speaks the other end) --
// Packet: {u8 type, u8 version 1, u16 count (network order), u32 0} + count x 28-byte
// ha::FlowEvent records. Types: 1 events, 2 snapshot request, 3 snapshot begin, 4 snapshot end.
constexpr uint8_t kSyncEvents = 1, kSyncSnapshotRequest = 2, kSyncSnapshotBegin = 3,
                  kSyncSnapshotEnd = 4;
constexpr uint32_t kSyncMaxPerPacket = 64;

}  // namespace

std::string Dataplane::Impl::open_sync_socket() {
  const std::string& admin_path = cfg.admin.socket_path;
  const size_t slash = admin_path.rfind('/');
  sync_path =
      (slash == std::string::npos ? std::string(".") : admin_path.substr(0, slash)) + "/sync.sock";
  sockaddr_un addr{};
  if (sync_path.size() >= sizeof addr.sun_path) return "sync socket path too long: " + sync_path;
  sync_listen_fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sync_listen_fd < 0) return std::string("sync socket: ") + std::strerror(errno);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, sync_path.c_str(), sync_path.size() + 1);
  ::unlink(sync_path.c_str());
  const mode_t old = ::umask(0077);  // root-only from the first moment
  const int rc = ::bind(sync_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::chmod(sync_path.c_str(), 0600) != 0 || ::listen(sync_listen_fd, 1) != 0) {
    return "sync socket " + sync_path + ": " + std::strerror(errno);
  }
  return {};
}

void Dataplane::Impl::sync_close_client() {
  if (sync_client_fd >= 0) ::close(sync_client_fd);
  sync_client_fd = -1;
  sync_connected.store(false, std::memory_order_relaxed);
  snapshot_open = false;
}

bool Dataplane::Impl::sync_send(uint8_t type, const ha::FlowEvent* ev, uint32_t n) {
  if (sync_client_fd < 0) {
    sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  uint8_t buf[8 + kSyncMaxPerPacket * ha::kFlowEventWireSize];
  buf[0] = type;
  buf[1] = 1;
  buf[2] = static_cast<uint8_t>(n >> 8);
  buf[3] = static_cast<uint8_t>(n);
  std::memset(buf + 4, 0, 4);
  for (uint32_t i = 0; i < n; ++i) {
    ha::encode_flow_event(ev[i], std::span<uint8_t, ha::kFlowEventWireSize>(
                                     buf + 8 + i * ha::kFlowEventWireSize, ha::kFlowEventWireSize));
  }
  const size_t len = 8 + n * ha::kFlowEventWireSize;
  if (::send(sync_client_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) sync_close_client();
    sync_send_dropped.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  sync_sent.fetch_add(n, std::memory_order_relaxed);
  return true;
}

ha::FlowEvent Dataplane::Impl::to_event(const engine::SyncRecord& r, uint16_t worker) {
  ha::FlowEvent e;
  e.inside_addr = r.inside_ip;
  e.outside_addr = r.outside_ip;
  e.remote_addr = r.remote_ip;
  e.inside_port = r.inside_port;
  e.outside_port = r.outside_port;
  e.remote_port = r.remote_port;
  e.protocol = r.proto;
  e.tcp_state = r.tcp_bits;
  e.lifetime_s = (r.remaining_ms + 999) / 1000;
  e.kind = static_cast<ha::FlowEventKind>(r.kind);
  e.flags = r.endpoint_independent ? ha::kFlowFlagEndpointIndependent : 0;
  e.worker_hint = worker;
  return e;
}

engine::SyncRecord Dataplane::Impl::from_event(const ha::FlowEvent& e) {
  engine::SyncRecord r;
  r.inside_ip = e.inside_addr;
  r.outside_ip = e.outside_addr;
  r.remote_ip = e.remote_addr;
  r.inside_port = e.inside_port;
  r.outside_port = e.outside_port;
  r.remote_port = e.remote_port;
  r.proto = e.protocol;
  r.tcp_bits = e.tcp_state;
  r.remaining_ms = e.lifetime_s > 4'000'000 ? 4'000'000'000u : e.lifetime_s * 1000;
  r.kind = static_cast<engine::SyncKind>(e.kind);
  r.endpoint_independent = (e.flags & ha::kFlowFlagEndpointIndependent) != 0;
  return r;
}

// Accepts the control process, forwards workers' records to it, applies its records, serves
// snapshot requests. Returns whether anything happened.
bool Dataplane::Impl::sync_poll() {
  bool busy = false;
  if (sync_client_fd < 0 && sync_listen_fd >= 0) {
    const int fd = ::accept4(sync_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
        ::close(fd);  // root only, like the admin socket
      } else {
        sync_client_fd = fd;
        sync_connected.store(true, std::memory_order_relaxed);
        log->info("sync: eipgate-control connected");
      }
    }
  }
  // Outbound: workers' records, in packets of up to 64.
  engine::SyncRecord recs[kSyncMaxPerPacket];
  ha::FlowEvent ev[kSyncMaxPerPacket];
  bool snapshot_finished = snapshot_open;
  for (const auto& w : workers) {
    for (int rounds = 0; rounds < 16; ++rounds) {
      const unsigned n = rte_ring_sc_dequeue_burst_elem(w->sync_out, recs, sizeof recs[0],
                                                        kSyncMaxPerPacket, nullptr);
      if (n == 0) break;
      busy = true;
      for (unsigned i = 0; i < n; ++i) ev[i] = to_event(recs[i], w->index);
      sync_send(kSyncEvents, ev, n);
    }
    if (snapshot_open && (w->snap_done.load(std::memory_order_acquire) != snapshot_gen ||
                          !rte_ring_empty(w->sync_out))) {
      snapshot_finished = false;
    }
  }
  if (snapshot_open && snapshot_finished) {
    sync_send(kSyncSnapshotEnd, nullptr, 0);
    snapshot_open = false;
    sync_snapshots.fetch_add(1, std::memory_order_relaxed);
  }
  // Inbound: the peer's records (standby) and snapshot requests.
  if (sync_client_fd >= 0) {
    uint8_t buf[8 + kSyncMaxPerPacket * ha::kFlowEventWireSize + 1];
    for (int rounds = 0; rounds < 64; ++rounds) {
      const ssize_t len = ::recv(sync_client_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (len == 0 || (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        log->info("sync: eipgate-control disconnected");
        sync_close_client();
        break;
      }
      if (len < 0) break;
      busy = true;
      const uint32_t count = static_cast<uint32_t>(buf[2]) << 8 | buf[3];
      if (len < 8 || buf[1] != 1 || count > kSyncMaxPerPacket ||
          static_cast<size_t>(len) != 8 + count * ha::kFlowEventWireSize) {
        sync_malformed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (buf[0] == kSyncSnapshotRequest) {
        start_snapshot();
      } else if (buf[0] == kSyncEvents) {
        for (uint32_t i = 0; i < count; ++i) {
          ha::FlowEvent e;
          if (!ha::decode_flow_event(
                  std::span<const uint8_t, ha::kFlowEventWireSize>(
                      buf + 8 + i * ha::kFlowEventWireSize, ha::kFlowEventWireSize),
                  &e)) {
            sync_malformed.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          const engine::SyncRecord r = from_event(e);
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
  sync_send(kSyncSnapshotBegin, nullptr, 0);
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

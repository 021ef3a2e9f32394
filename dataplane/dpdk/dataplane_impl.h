// Private to the DPDK process (dataplane/dpdk/*.cc): the state one Dataplane holds (ports, worker
// contexts, rings, neighbours, sync socket) and the functions each file of the process defines.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <spdlog/logger.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpf/fastpath.h"
#include "bpf/steer_loader.h"
#include "common/unix_socket_server.h"
#include "dataplane/admin/admin_server.h"
#include "dataplane/admin/dataplane_stats.h"
#include "dataplane/admin/port_xstats.h"
#include "dataplane/admin/translation_log.h"
#include "dataplane/dpdk/arp.h"
#include "dataplane/dpdk/dataplane.h"
#include "dataplane/dpdk/exception_path.h"
#include "dataplane/dpdk/resolver.h"
#include "dataplane/policy/compiled_policy.h"
#include "proto/progress.h"
#include "proto/sync.h"

namespace eipgate::dataplane {

inline constexpr uint16_t kBurst = 32;
// Offload records a worker turns into fast-path map operations per loop.
inline constexpr uint32_t kOffloadBatch = 256;
inline constexpr uint32_t kRingSize = 4096;
inline constexpr uint16_t kRxDesc = 1024;
inline constexpr uint16_t kTxDesc = 1024;
inline constexpr uint32_t kPublishEveryLoops = 1024;

// The Microsoft RSS reference key: any fixed key works as long as NIC and engine share it.
inline constexpr std::array<uint8_t, 40> kRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

inline uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The ethdev name of a device argument: the PCI address, or the vdev name before the first ','.
inline std::string device_name(const std::string& dev) { return dev.substr(0, dev.find(',')); }

// Packet metadata lives in the mbuf's private area so it survives handoff and holding.
inline engine::PacketBuf* pbuf(rte_mbuf* m) {
  return static_cast<engine::PacketBuf*>(rte_mbuf_to_priv(m));
}
inline rte_mbuf* mbuf_of(engine::PacketBuf* p) {
  return reinterpret_cast<rte_mbuf*>(reinterpret_cast<uint8_t*>(p) - sizeof(rte_mbuf));
}

// Offset of the IPv4 header (after up to two VLAN tags), or 0 when not IPv4.
inline uint32_t ipv4_offset(const uint8_t* d, uint32_t len) {
  uint32_t off = 12;
  for (int i = 0; i < 3 && len >= off + 2; ++i) {
    const uint16_t et = static_cast<uint16_t>(d[off] << 8 | d[off + 1]);
    if (et == 0x0800) return off + 2;
    if (et != 0x8100 && et != 0x88a8) return 0;
    off += 4;
  }
  return 0;
}

// The next hops' MACs as the workers read them: an open-addressing table the main lcore fills
// once and never changes (RCU replaces it whole), so a worker's lookup is a few array reads and
// touches no allocator. Neighbours beyond its capacity are left out: packets toward them take
// the main lcore's next-hop queue, which reads the full table.
struct NeighSnapshot {
  static constexpr uint32_t kSlots = 4096;  // a power of two
  static constexpr uint32_t kMaxEntries = kSlots / 4 * 3;
  struct Slot {
    uint32_t ip = 0;  // 0 = empty (0.0.0.0 is never a next hop)
    MacAddr mac{};
  };
  std::array<Slot, kSlots> slots{};
  uint32_t entries = 0;

  static uint32_t home(uint32_t ip) { return (ip * 2654435761u) >> 20; }  // top 12 bits
  // Adds or replaces ip's MAC; false when full (or ip is 0).
  bool insert(uint32_t ip, const MacAddr& mac) {
    if (ip == 0) return false;
    for (uint32_t i = home(ip);; i = (i + 1) & (kSlots - 1)) {
      if (slots[i].ip == ip) {
        slots[i].mac = mac;
        return true;
      }
      if (slots[i].ip == 0) {
        if (entries >= kMaxEntries) return false;
        slots[i] = {ip, mac};
        ++entries;
        return true;
      }
    }
  }
  [[nodiscard]] const MacAddr* find(uint32_t ip) const {
    if (ip == 0) return nullptr;
    for (uint32_t i = home(ip);; i = (i + 1) & (kSlots - 1)) {
      if (slots[i].ip == ip) return &slots[i].mac;
      if (slots[i].ip == 0) return nullptr;
    }
  }
};

// Frames a worker collected for one port during a loop, sent in one burst at its end (or as soon
// as the batch fills): a fixed array, nothing allocated per packet.
struct TxBatch {
  static constexpr uint16_t kMax = 256;
  uint16_t port_id = 0;
  uint16_t n = 0;
  std::array<rte_mbuf*, kMax> m{};
};

struct PortState {
  std::string role;    // "data", "inside", "outside"
  std::string device;  // ports[].device up to its first ','
  uint16_t id = 0;
  // The PMD's xstats names by id, read once (again only if the PMD's count changes).
  std::vector<std::string> xstat_names;
  MacAddr mac{};
  uint32_t addr = 0;  // host order
  // af_xdp with steering: the kernel keeps the non-NAT traffic (ARP included); the dataplane
  // configures the XDP program's maps and listens to the interface's ARP with a packet socket.
  std::shared_ptr<bpf::AttachedSteer> steer;
  int arp_fd = -1;
  int ifindex = 0;       // steered ports: the kernel interface the XDP program runs on
  bool rx_intr = false;  // configured with Rx queue interrupts (the driver may still refuse)
  uint16_t mtu = 1500;   // the MTU the PMD took (ports[].mtu unless it refused it)
};

// One worker lcore's context: its engine, the rings that feed it, and what it publishes.
struct alignas(64) WorkerContext {
  uint16_t index = 0;
  unsigned lcore = 0;
  std::unique_ptr<engine::Engine> eng;
  rte_ring* handoff = nullptr;  // packets other workers hand to this one
  rte_ring* inject = nullptr;   // packets the main lcore wants transmitted (host path, ARP)
  WorkerStatus local;
  // Copy for the main lcore and the admin socket, refreshed every kPublishEveryLoops loops and
  // when idle; a mutex is cheap at that rate.
  mutable std::mutex pub_mu;
  WorkerStatus published;
  // Flow dump on request: the engine is single-threaded, so the worker copies its own flows
  // between bursts when the admin thread asks (dump_gen ahead of dump_done).
  std::atomic<uint64_t> dump_gen{0};
  std::atomic<uint64_t> dump_done{0};
  std::vector<engine::FlowView> dump;
  // The live-reloadable settings this worker reads, its own copies (Impl::cfg is the main
  // lcore's), and the config generation it applied (reload() waits for every worker's ack).
  NextHop next_hop;
  PollingConfig polling;
  uint64_t cfg_gen = 0;
  bool rx_intr = false;    // every polled queue registered in this thread's interrupt epoll
  bool wake_main = false;  // this loop handed the main lcore work (host or resolve ring)
  // An idle worker sleeps in ppoll()/epoll on this eventfd, so whoever hands it packets (the main
  // lcore's inject ring, another worker's handoff) can wake it at once.
  int wake_fd = -1;
  std::atomic<bool> sleeping{false};
  rte_epoll_event wake_ev{};
  // Connection-table sync: flow changes this worker's engine recorded (active role) -> main
  // lcore, and the peer's records for this worker to install (standby role). Rings of
  // engine::SyncRecord elements. A snapshot walks the table in slices (snap_gen ahead of
  // snap_done; snap_cursor is the position).
  rte_ring* sync_out = nullptr;
  rte_ring* sync_in = nullptr;
  std::atomic<uint64_t> snap_gen{0};
  std::atomic<uint64_t> snap_done{0};
  uint64_t snap_running = 0;
  uint32_t snap_cursor = 0;
  uint64_t sync_out_dropped = 0;
  uint64_t sync_applied = 0;
  std::array<uint64_t, engine::kSyncRefusalCount> sync_refused{};  // by engine::SyncRefusal
  rte_ring* denials = nullptr;  // engine::DenyRecord elements -> main lcore (audit log)
  rte_ring* txlog = nullptr;    // engine::TxLogRecord elements -> main lcore (translation log)
  std::atomic<uint64_t> cfg_acked{0};
  std::string cfg_error;  // written before cfg_acked is released
  // The kernel fast path (fastpath_glue.cc): this worker's view of the inside and outside ports'
  // fp_flows maps (the same map one-armed), its engine's records and the batches built from them.
  std::unique_ptr<bpf::FastPathTable> fp_inside;
  std::unique_ptr<bpf::FastPathTable> fp_outside;
  std::array<engine::OffloadRecord, kOffloadBatch> fp_recs{};
  std::vector<bpf::FastPathEntry> fp_add_in, fp_add_out;
  std::vector<fp_flow_key> fp_del_in, fp_del_out;
};

// The fast path as the process runs it (fastpath_glue.cc).
struct FastPathState {
  bool on = false;                // set at start, before the admin thread runs
  std::atomic<bool> held{false};  // role unconfirmed: the programs' fast-path flag is off
  std::string off_reason;         // why it is off (set at start)
  struct PortMaps {
    bpf::SteerMapFds fds;
    bpf::MappedCounters counters;  // the program's fp_counters, mapped into this process
  };
  std::vector<PortMaps> ports;  // by index into Impl::ports, while on
};

struct Dataplane::Impl {
  DataplaneConfig cfg;
  std::vector<PortState> ports;
  // The ports' xstats, read on the main lcore at most once a second and published here for the
  // admin thread: ENA fetches its ENI counters (the allowance limiters) over the device's admin
  // queue, which is neither cheap nor something two threads should drive at once.
  struct PortXstats {
    std::vector<admin::XstatValue> values;
    std::string error;
  };
  std::mutex xstats_mu;
  std::vector<PortXstats> xstats;  // by index into ports, under xstats_mu
  uint64_t xstats_read_ms = 0;     // under xstats_mu; 0 = not read yet
  int inside_port = 0;
  int outside_port = 0;
  rte_mempool* pool = nullptr;
  std::vector<std::unique_ptr<WorkerContext>> workers;
  rte_ring* host_ring = nullptr;  // ToHost packets (ARP, the instance's own) -> main lcore
  // Translated packets whose next hop has no MAC yet -> main lcore, which queues them (as the
  // kernel's unresolved-neighbour queue does) until ARP answers, then sends them; the next hop
  // rides in mbuf->hash.usr.
  rte_ring* resolve_ring = nullptr;
  struct Waiting {
    rte_mbuf* m;
    uint64_t since_ms;
  };
  std::unordered_map<uint32_t, std::vector<Waiting>> unresolved;
  size_t unresolved_count = 0;
  static constexpr size_t kUnresolvedPerHop = 64;
  static constexpr size_t kUnresolvedTotal = 1024;
  static constexpr uint64_t kUnresolvedTimeoutMs = 3000;
  std::atomic<uint64_t> arp_queued{0}, arp_queue_sent{0}, arp_queue_dropped{0};
  // Egress policy audit: denials logged at most kDenyLogBurst at once and kDenyLogPerSec after,
  // the rest counted and summarised once a second.
  static constexpr double kDenyLogPerSec = 20, kDenyLogBurst = 100;
  double deny_tokens = kDenyLogBurst;
  uint64_t deny_tokens_ms = 0;
  uint64_t deny_suppressed_pending = 0;
  std::atomic<uint64_t> denials_logged{0}, denials_unlogged{0};
  // Translation log (translation_log.cc): the workers' rings drained to a rotating file.
  std::unique_ptr<txlog::RotatingFile> txlog_file;
  std::string txlog_buf;
  std::atomic<uint64_t> txlog_ring_dropped{0};  // a worker's ring to the main lcore was full
  std::atomic<uint64_t> txlog_written{0}, txlog_write_dropped{0}, txlog_bytes{0},
      txlog_rotations{0}, txlog_write_errors{0};

  // HA role (admin ha_role) and the sync socket eipgate-control connects to (control/ha).
  enum : int { kRoleNone = 0, kRoleActive = 1, kRoleStandby = 2 };
  std::atomic<int> ha_role{kRoleNone};
  // A freeze (SIGSTOP, a paused VM) longer than kFreezeNs — more than HA's dead interval, so the
  // peer may have taken over meanwhile — makes the role this process holds stale: while
  // role_unconfirmed, nothing translated leaves (glue drop role_unconfirmed) until
  // eipgate-control sets the role again (admin ha_role); health says "degraded" meanwhile.
  // Only with an HA role: a single instance has no peer to defer to.
  static constexpr uint64_t kFreezeNs = 2'000'000'000;
  std::atomic<bool> role_unconfirmed{false};
  std::atomic<uint64_t> freeze_ms{0};  // the last freeze's length, for the main lcore's log
  // Called by whoever saw its own loop stand still for gap_ns.
  void note_freeze(uint64_t gap_ns) {
    if (gap_ns <= kFreezeNs || ha_role.load(std::memory_order_relaxed) == kRoleNone) return;
    role_unconfirmed.store(true, std::memory_order_relaxed);
    freeze_ms.store(gap_ns / 1000000, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> ha_epoch{0};
  std::atomic<uint64_t> announce_gen{0};
  std::atomic<uint64_t> announce_done{0};
  std::atomic<uint64_t> announce_count{0};
  // Egress probes (dpdk/probe.h): the admin thread starts one at a time (a SYN from probe_src
  // through the engine); the worker that sees the answer after NAT records it and, for a SYN-ACK,
  // closes the connection with an RST through the NAT. Whatever else reaches probe_src (stale or
  // repeated answers) is dropped: no host holds that address.
  std::atomic<uint32_t> probe_src{0};  // running config's probe.source; 0 = probes impossible
  std::atomic<uint16_t> probe_sport{0};
  std::atomic<uint32_t> probe_dst{0};
  std::atomic<uint8_t> probe_answer{0};
  std::atomic<uint64_t> probe_answered_ns{0};
  std::atomic<uint64_t> probes_sent{0}, probes_answered{0}, probe_strays{0};
  std::string sync_path;
  UnixSocketServer sync_listener;
  // The workers' loop counters for eipgate-control, which reads them without asking us
  // (proto/progress.h): how it tells a frozen or dead dataplane quickly.
  proto::ProgressWriter progress;
  int sync_client_fd = -1;
  std::atomic<bool> sync_connected{false};  // for the admin thread's stats
  bool snapshot_open = false;               // begin sent, end not yet
  uint64_t snapshot_gen = 0;
  std::atomic<uint64_t> sync_sent{0}, sync_send_dropped{0}, sync_received{0}, sync_malformed{0},
      sync_snapshots{0};
  // Glue drops counted on the main lcore (the workers count theirs in WorkerStatus::drops).
  std::array<std::atomic<uint64_t>, admin::kGlueDropCount> main_drops{};
  // A deeply idle main lcore sleeps in poll(); workers that hand it work write this eventfd.
  int main_wake_fd = -1;
  std::atomic<bool> main_sleeping{false};
  std::atomic<uint64_t> workers_deep_idle{0};  // workers in deep idle (the main lcore follows)

  static void wake_worker(WorkerContext& w) {
    if (w.sleeping.load(std::memory_order_seq_cst)) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(w.wake_fd, &one, sizeof one);
    }
  }

  void wake_main() {
    if (main_sleeping.load(std::memory_order_seq_cst)) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(main_wake_fd, &one, sizeof one);
    }
  }
  rte_rcu_qsbr* qsbr = nullptr;
  std::atomic<const NeighSnapshot*> neigh{nullptr};
  std::vector<std::pair<const NeighSnapshot*, uint64_t>> retired;
  NeighbourTable table;
  std::unordered_map<uint32_t, uint64_t> last_request_ms;
  std::atomic<bool>* stop = nullptr;
  bool eal_ready = false;
  std::string runtime_dir;  // the EAL's /var/run/dpdk/<file prefix>, removed at exit
  std::shared_ptr<spdlog::logger> log;

  std::unique_ptr<TapExceptionPath> exception;  // null when exception_path.enabled is false
  std::atomic<uint64_t> host_dropped{0};        // the instance's own traffic the kernel did not get
  uint64_t arp_replies_sent = 0;
  uint64_t garps_sent = 0;
  std::mutex dump_mu;  // one flow dump at a time

  // Live reload (the admin handler's reload): the admin thread validates a new config and publishes
  // it with a generation; the main lcore and every worker apply it at a loop boundary and
  // acknowledge.
  std::mutex next_mu;
  std::shared_ptr<const DataplaneConfig> next_cfg;  // guarded by next_mu
  std::atomic<uint64_t> cfg_gen{0};
  uint64_t main_cfg_gen = 0;
  std::atomic<uint64_t> main_cfg_acked{0};
  // The admin thread's copy; the resolver thread replaces it too (admin_mu).
  std::mutex admin_mu;
  std::shared_ptr<const DataplaneConfig> admin_running;  // guarded by admin_mu
  // The policy the resolver follows (as loaded, before resolved names): guarded by admin_mu.
  std::shared_ptr<const policy::CompiledPolicy> resolver_base;
  std::unique_ptr<Resolver> resolver;

  // fastpath_glue.cc: the kernel fast path (on where the ports run XDP natively).
  FastPathState fastpath;
  void setup_fastpath();
  void teardown_fastpath();
  uint32_t fastpath_step(WorkerContext& w, const NeighSnapshot* nb);
  void fastpath_apply(WorkerContext& w);
  void fastpath_hold(bool hold);

  // ports.cc: port and XDP steering setup, the ports' xstats.
  std::string setup_port(PortState& ps, const PortConfig& pc, uint16_t nworkers);
  std::string setup_steering(PortState& ps, const PortConfig& pc);
  bpf::SteerConfig steer_config() const;
  std::string read_xstats(PortState& p, std::vector<admin::XstatValue>* out);
  void refresh_xstats(uint64_t now_ms);

  // worker_loop.cc: one worker lcore (rx, engine, dispatch, tx, idle) and its side of the sync.
  std::vector<WorkerStatus> snapshot() const;
  const PortState& port_for(engine::Verdict v) const;
  static uint32_t next_hop(const WorkerContext& w, engine::Verdict v, const uint8_t* d,
                           uint32_t len);
  void publish(WorkerContext& w);
  void dispatch(WorkerContext& w, engine::PacketBuf* const* pbs, const engine::Result* res,
                uint16_t n, const NeighSnapshot* nb, std::array<TxBatch, 2>& tx);
  bool probe_catch(WorkerContext& w, engine::PacketBuf& pb);
  void lend_spares(WorkerContext& w);
  uint32_t sync_step(WorkerContext& w);
  bool register_rx_interrupts(WorkerContext& w);
  void wait_rx_interrupt(const WorkerContext& w, uint32_t max_us);
  void apply_config(WorkerContext& w);
  void transmit(WorkerContext& w, TxBatch& b);
  void push_tx(WorkerContext& w, TxBatch& b, rte_mbuf* m) {
    if (b.n == TxBatch::kMax) transmit(w, b);
    b.m[b.n++] = m;
  }
  void worker_loop(WorkerContext& w);

  // neighbours.cc: ARP (answer, resolve, announce), the neighbour snapshot workers read, and the
  // queue of packets waiting for a next hop's MAC.
  [[nodiscard]] bool is_own_address(const PortState& p, uint32_t ip) const;
  [[nodiscard]] bool holds_service_addresses() const;
  [[nodiscard]] bool answers_arp_for(const PortState& p, uint32_t ip) const;
  void inject(rte_mbuf* m);
  void send_arp(const PortState& p, uint16_t op, const MacAddr& dst_mac, uint32_t dst_ip,
                uint32_t src_ip);
  void request(uint32_t ip, uint64_t now_ms);
  bool handle_arp(rte_mbuf* m, uint64_t now_ms);
  bool handle_arp(const uint8_t* d, uint32_t len, uint16_t port_id, uint64_t now_ms);
  void publish_neighbours(uint64_t now_ms);
  void reclaim();
  void announce();
  void wait_for_neighbour(rte_mbuf* m, uint64_t now_ms);
  void flush_unresolved(uint64_t now_ms);
  void drop_unresolved();
  bool poll_steered_arp(uint64_t now_ms);

  // sync_server.cc: the sync socket eipgate-control connects to (main lcore side).
  std::string open_sync_socket();
  void sync_close_client();
  bool sync_send(proto::PacketType type, std::span<const engine::SyncRecord> records);
  bool sync_poll();
  void start_snapshot();

  // main_loop.cc: configuration generations, the host path, the audit log, the main lcore.
  void log_denials(uint64_t now_ms);
  // translation_log.cc: drains the workers' translation records to the file (main lcore).
  void write_translations();
  // After the workers stopped: every record left in their engines and rings, written.
  void flush_translations();
  [[nodiscard]] admin::TranslationLogReport translation_log_report() const;
  void retarget_resolver();
  std::shared_ptr<const DataplaneConfig> running_config();
  uint64_t publish_config(std::shared_ptr<const DataplaneConfig> next);
  void on_resolved(const std::shared_ptr<const policy::CompiledPolicy>& base,
                   std::shared_ptr<const policy::CompiledPolicy> resolved);
  std::shared_ptr<const DataplaneConfig> pending_config(uint64_t* gen);
  void to_kernel(rte_mbuf* m);
  uint32_t from_kernel();
  void main_idle();
  void main_loop();
};

// admin_handler.cc: the admin socket's view of the running process.
std::unique_ptr<admin::AdminHandler> make_admin_handler(Dataplane::Impl& impl);

}  // namespace eipgate::dataplane

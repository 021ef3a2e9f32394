// eipgate-control's event loop: heartbeats, the failover state machine and its actions, table
// sync between the dataplane's sync socket and the peer, and the control socket. See README.md.
#include "control/daemon/daemon.h"

#include <cerrno>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "dataplane/admin/admin_client.h"
#include "common/log.h"
#include "control/daemon/aws_ops.h"
#include "control/daemon/control_socket.h"
#include "control/daemon/egress_probes.h"
#include "control/daemon/metrics.h"
#include "control/daemon/fallback_ops.h"
#include "control/daemon/sync_link.h"
#include "control/ha/auth.h"
#include "control/ha/decision_log.h"
#include "control/ha/state_machine.h"
#include "control/ha/sync.h"
#include "control/ha/udp_transport.h"
#include "control/ha/wire.h"

namespace eipgate::control {

namespace {

using nlohmann::json;
using ha::Millis;
using namespace std::chrono_literals;

// Results of background work come back to the loop thread through this queue; the eventfd wakes
// poll().
class Mailbox {
 public:
  Mailbox() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Mailbox() { ::close(fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(fn));
    }
    const uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
  }
  void drain() {
    uint64_t v = 0;
    [[maybe_unused]] const auto n = ::read(fd_, &v, sizeof v);
    std::deque<std::function<void()>> q;
    {
      std::lock_guard lock(mutex_);
      q.swap(queue_);
    }
    for (auto& fn : q) fn();
  }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
};

// One background thread running jobs in order (EC2 calls; dataplane admin requests).
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (stop_) return;  // pending jobs are dropped: we are shutting down
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

// The full tuple identifies a flow (both keys of the record); hashed for the resync sweep.
using proto::FlowKey;
using proto::FlowKeyHash;
using proto::key_of;

json error_answer(const std::string& what) { return {{"ok", false}, {"error", what}}; }

class Daemon final : public ha::SyncSink {
 public:
  Daemon(const DaemonConfig& config, ha::Secret secret)
      : config_(config),
        secret_(std::move(secret)),
        boot_id_(ha::make_run_id()),
        ops_(config.aws),
        link_(config.sync_socket),
        receiver_(clock_, this, config.ha.resync_retry),
        control_([this](const std::string& cmd, const json& args) { return command(cmd, args); }),
        prober_(config.ha.probe_targets, config.ha.probe_timeout) {
    peer_ = ha::Endpoint{config.ha.peers.at(0).address, config.ha.peers.at(0).port};
    const char* hooks = std::getenv("EIPGATE_CONTROL_TEST_HOOKS");
    test_hooks_ = hooks != nullptr && std::string(hooks) == "1";
  }

  int run(const std::atomic<bool>& stop);

  // SyncSink: what the standby's receiver applies goes to our dataplane.
  void apply(const ha::FlowEvent& e) override {
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
  void snapshot_begin(uint32_t id) override {
    log::get()->info("sync: snapshot {} from the peer begins", id);
    sweep_keys_.clear();
    sweeping_ = true;
  }
  void snapshot_end(uint32_t id) override {
    // Flows our dataplane holds that the snapshot did not mention are stale: ask our dataplane
    // for its table and delete them (mark and sweep with only the sync socket's operations).
    log::get()->info("sync: snapshot {} from the peer complete; sweeping stale local flows", id);
    push_to_dataplane();
    link_.request_snapshot();
    snapshots_expected_.push_back(SnapshotPurpose::LocalSweep);
    ++stats_.snapshots_received;
  }

 private:
  enum class SnapshotPurpose : uint8_t { ForPeer, LocalSweep };
  struct Stats {
    uint64_t sent = 0;               // flow events sent to the peer (live)
    uint64_t received = 0;           // flow events received from the peer (live + bulk)
    uint64_t applied = 0;            // flow events written to our dataplane
    uint64_t snapshots_sent = 0;     // full tables sent to the peer
    uint64_t snapshots_received = 0;
    uint64_t swept = 0;              // stale local flows deleted after a snapshot
    uint64_t heartbeats_sent = 0;
    uint64_t heartbeats_received = 0;
    uint64_t test_dropped = 0;
    uint64_t takeovers = 0;
    uint64_t takeover_failures = 0;
    uint64_t handover_grace_events = 0;  // the old active's events applied after a handover
  };

  bool bootstrap(const std::atomic<bool>& stop);
  void handle(const ha::Event& e);
  void act(const ha::Decision& d);
  void start_takeover(uint64_t epoch);
  void start_route_check();
  void start_health_check();
  void start_probe(Millis now);  // egress_probes.h
  void set_dataplane_role();
  void send_heartbeat();
  void send_message(const ha::Message& m);
  void send_sync_datagrams();
  void on_datagram(const ha::Datagram& d);
  void on_sync_request_from(std::optional<ha::SyncRequest> r);
  void on_dataplane_packet(const SyncPacket& p);
  void push_to_dataplane();
  void maybe_accept_handover();
  void periodic(Millis now);
  std::unique_ptr<CrossAzFallback> make_fallback();
  json command(const std::string& cmd, const json& args);
  json status() const;

  const DaemonConfig& config_;
  ha::Secret secret_;
  uint64_t boot_id_;
  ha::SteadyClock clock_;
  AwsOps ops_;
  Identity identity_;
  std::unique_ptr<ha::Authenticator> auth_;
  std::unique_ptr<ha::Codec> codec_;
  std::unique_ptr<ha::FailoverFsm> fsm_;
  std::unique_ptr<ha::SyncSender> sender_;
  std::optional<ha::UdpTransport> udp_;
  ha::Endpoint peer_;
  SyncLink link_;
  ha::SyncReceiver receiver_;
  ControlSocket control_;
  std::unique_ptr<MetricsExporter> metrics_;  // null when ha.metrics_listen is off
  Mailbox mailbox_;
  std::unique_ptr<Worker> aws_worker_;
  std::unique_ptr<Worker> admin_worker_;
  std::unique_ptr<admin::AdminClient> admin_;  // used on admin_worker_ only
  std::unique_ptr<CrossAzFallback> fallback_;  // ha.fallback_for (fallback_ops.h)
  bool test_hooks_ = false;
  bool test_drop_peer_ = false;

  // Peer, as last heard.
  std::optional<ha::Heartbeat> peer_hb_;
  uint64_t peer_epoch_ = 0;
  uint64_t peer_boot_ = 0;
  Millis peer_heard_{0};

  // Periodic work.
  Millis next_heartbeat_{0}, next_tick_{0}, next_flush_{0}, next_health_{0}, next_route_{0},
      next_connect_{0};
  bool health_in_flight_ = false;
  Millis next_metrics_{0};
  bool metrics_stats_in_flight_ = false;
  HeartbeatGapCounter heartbeat_gaps_;  // assumes the peer's heartbeat_interval is ours
  // Consecutive health answers saying a worker did not progress. A dataplane that cannot be
  // reached fails at once; a slow loop must be seen kHealthMissesToFail times in a row (a busy
  // or briefly descheduled worker on a small instance is not a dead one).
  static constexpr uint32_t kHealthMissesToFail = 3;
  uint32_t health_misses_ = 0;
  bool route_check_in_flight_ = false;
  bool route_check_again_ = false;
  std::optional<uint64_t> last_loops_sum_;
  bool dataplane_good_ = false;
  std::string dataplane_detail_ = "not checked yet";
  std::string route_detail_ = "not checked yet";
  std::string takeover_detail_;
  std::optional<Millis> takeover_started_;
  std::optional<int64_t> last_takeover_ms_;

  // Sync.
  std::deque<SnapshotPurpose> snapshots_expected_;
  std::optional<SnapshotPurpose> snapshot_open_;
  std::vector<ha::FlowEvent> snapshot_flows_;
  bool snapshot_for_peer_queued_ = false;
  std::vector<ha::FlowEvent> to_dataplane_;
  bool sweeping_ = false;
  std::unordered_set<FlowKey, FlowKeyHash> sweep_keys_;
  struct PendingHandover {
    uint32_t id;
    uint64_t sync_sent;
    Millis deadline;
  };
  std::optional<PendingHandover> handover_in_;
  // After taking over on the peer's handover request, the old active keeps forwarding (and
  // creating flows) until its routes and address have moved: for this long its live events are
  // still applied, so replies that reach us first find the flows it made (planned handover with
  // no lost connection attempts). Only from the incarnation that asked.
  static constexpr Millis kHandoverGrace{3000};
  std::optional<Millis> handover_grace_until_;
  uint64_t handover_grace_boot_ = 0;
  std::deque<std::pair<int64_t, std::string>> decisions_;
  Stats stats_;
  // Egress probes through our own dataplane, on the active only (egress_probes.h).
  EgressProber prober_;
  Millis next_probe_{0};
  bool probe_in_flight_ = false;
  uint64_t probe_expected_ = 0;  // id of the probe we started last; 0 = judge nothing
};

bool Daemon::bootstrap(const std::atomic<bool>& stop) {
  const auto logger = log::get();
  while (!stop.load()) {
    try {
      identity_ = ops_.bootstrap(config_.ha.data_mac, config_.ha.peer_eni,
                                 config_.ha.peers.at(0).text);
      logger->info(
          "bootstrap: instance {} in {} ({}), data ENI {}, peer ENI {}", identity_.instance_id,
          identity_.availability_zone, identity_.region, identity_.eni,
          identity_.peer_eni.empty() ? "unknown (any other ENI counts as the peer's)"
                                     : identity_.peer_eni);
      return true;
    } catch (const std::exception& e) {
      logger->error("bootstrap from IMDS failed: {}; retrying in 2 s", e.what());
    }
    for (int i = 0; i < 20 && !stop.load(); ++i) std::this_thread::sleep_for(100ms);
  }
  return false;
}

void Daemon::handle(const ha::Event& e) {
  const ha::Decision d = fsm_->handle(e);
  if (ha::notable(d)) {
    decisions_.emplace_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count(),
        d.to_string());
    if (decisions_.size() > 32) decisions_.pop_front();
  }
  ha::log_decision(d);
  act(d);
}

void Daemon::act(const ha::Decision& d) {
  sender_->set_epoch(fsm_->epoch());
  if (d.changed()) set_dataplane_role();
  for (const ha::Action& a : d.actions) {
    switch (a.kind) {
      case ha::ActionKind::TakeOver:
        start_takeover(a.epoch);
        break;
      case ha::ActionKind::Demote:
        // Our dataplane stops emitting events once its role is standby (set above); a snapshot
        // in progress for the peer is abandoned.
        snapshot_for_peer_queued_ = false;
        handover_in_.reset();
        break;
      case ha::ActionKind::CheckRoutes:
        start_route_check();
        break;
      case ha::ActionKind::RequestResync:
        on_sync_request_from(receiver_.start());
        break;
      case ha::ActionKind::StartSyncSender:
        sender_->set_epoch(a.epoch != 0 ? a.epoch : fsm_->epoch());
        break;
      case ha::ActionKind::SendHeartbeat:
        send_heartbeat();
        break;
      case ha::ActionKind::SendHandoverRequest: {
        // Everything the peer needs goes first: the request says how far we have sent.
        sender_->flush();
        send_sync_datagrams();
        send_message(ha::HandoverRequest{a.handover_id, sender_->last_sent_seq()});
        break;
      }
      case ha::ActionKind::SendHandoverAck:
        send_message(ha::HandoverAck{a.handover_id, a.accepted});
        break;
    }
  }
}

void Daemon::set_dataplane_role() {
  const bool active = fsm_->state() == ha::HaState::Active;
  const uint64_t epoch = fsm_->epoch();
  admin_worker_->post([this, active, epoch] {
    json resp;
    admin::ClientError err;
    const bool ok = admin_->call(
        "ha_role", {{"role", active ? "active" : "standby"}, {"epoch", epoch}}, &resp, &err);
    if (!ok || !resp.value("ok", false)) {
      log::get()->warn("dataplane ha_role {} failed: {}", active ? "active" : "standby",
                       ok ? resp.value("error", std::string("refused")) : err.message);
    }
  });
}

void Daemon::start_takeover(uint64_t epoch) {
  takeover_started_ = clock_.now();
  const auto started = *takeover_started_;
  aws_worker_->post([this, epoch, started] {
    std::string summary;
    std::optional<std::string> failure;
    try {
      summary = ops_.take_over();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (failure) {
      mailbox_.post([this, f = *failure] {
        ++stats_.takeover_failures;
        takeover_detail_ = "failed: " + f;
        handle(ha::event::TakeoverFailed{f});
      });
      return;
    }
    // The address and routes are ours: announce it on the wire (gratuitous ARP) through the
    // dataplane, then report done. Runs on the admin worker, in order after the ha_role call.
    admin_worker_->post([this, epoch, started, summary] {
      json resp;
      admin::ClientError err;
      std::string garp = "announce failed: ";
      if (admin_->call("announce", json::object(), &resp, &err) && resp.value("ok", false)) {
        garp = "garps " + resp["result"].value("garps", json(0)).dump();
      } else {
        garp += resp.is_object() ? resp.value("error", err.message) : err.message;
      }
      mailbox_.post([this, epoch, started, summary, garp] {
        const auto ms = (clock_.now() - started).count();
        last_takeover_ms_ = ms;
        ++stats_.takeovers;
        takeover_detail_ = "epoch " + std::to_string(epoch) + ": " + summary + "; " + garp +
                           " in " + std::to_string(ms) + " ms";
        log::get()->info("takeover done: {}", takeover_detail_);
        handle(ha::event::TakeoverDone{});
      });
    });
  });
}

void Daemon::start_route_check() {
  if (route_check_in_flight_) {
    route_check_again_ = true;  // the one running may predate what we want to know
    return;
  }
  route_check_in_flight_ = true;
  aws_worker_->post([this] {
    const Millis started = clock_.now();
    RouteReport r = ops_.check_routes();
    mailbox_.post([this, started, r] {
      route_check_in_flight_ = false;
      if (r.detail != route_detail_) {
        log::get()->info("routes: {} ({})", ha::to_string(r.target), r.detail);
      }
      route_detail_ = r.detail;
      handle(ha::event::RouteCheck{r.target, started});
      if (route_check_again_) {
        route_check_again_ = false;
        start_route_check();
      }
    });
  });
}

void Daemon::start_health_check() {
  if (health_in_flight_) return;
  health_in_flight_ = true;
  admin_worker_->post([this] {
    json resp;
    admin::ClientError err;
    bool good = false;
    bool reachable = true;
    std::string detail;
    uint64_t loops = 0;
    bool have_loops = false;
    if (!admin_->call("health", json::object(), &resp, &err)) {
      detail = err.message;
      reachable = false;
    } else if (!resp.value("ok", false)) {
      detail = resp.value("error", std::string("health refused"));
    } else {
      const json& r = resp["result"];
      const std::string st = r.value("status", std::string("?"));
      bool progressing = true;
      if (r.contains("workers") && r["workers"].is_array()) {
        for (const auto& w : r["workers"]) {
          progressing &= w.value("progressing", true);
          if (w.contains("loops") && w["loops"].is_number_unsigned()) {
            loops += w["loops"].get<uint64_t>();
            have_loops = true;
          }
        }
      }
      good = st == "ok" && progressing;
      detail = "status " + st + (progressing ? "" : ", a worker loop is stuck");
    }
    mailbox_.post([this, good, reachable, detail, loops, have_loops] {
      health_in_flight_ = false;
      bool ok = good;
      // Worker loops must move between our checks too (a wedged process can answer "ok" from
      // a cached reply only if loops stand still).
      if (ok && have_loops && last_loops_sum_ && loops == *last_loops_sum_) ok = false;
      if (have_loops) last_loops_sum_ = loops;
      health_misses_ = ok ? 0 : health_misses_ + 1;
      if (!ok && reachable && health_misses_ < kHealthMissesToFail) ok = true;  // not yet
      const std::string d = ok ? "ok" : (good ? "worker loops did not move" : detail);
      if (ok != dataplane_good_ || d != dataplane_detail_) {
        log::get()->info("dataplane health: {}", d);
      }
      dataplane_good_ = ok;
      dataplane_detail_ = d;
      handle(ha::event::LocalHealth{ok});
    });
  });
}

void Daemon::start_probe(Millis now) {
  if (fsm_->state() != ha::HaState::Active) {
    probe_expected_ = 0;  // a probe left pending by an earlier active spell is not judged
    if (prober_.should_forgive(now, fsm_->peer_alive())) {
      log::get()->info("egress: forgetting the probe failures that demoted us ({}); eligible again",
                       fsm_->peer_alive() ? "backoff over" : "the peer is not alive");
      prober_.forgiven();
      handle(ha::event::EgressProbe{true});
    }
    return;
  }
  if (probe_in_flight_) return;
  probe_in_flight_ = true;
  const ha::ProbeTarget target = prober_.next_target();
  const uint64_t expected = probe_expected_;
  admin_worker_->post([this, target, expected] {
    // Name targets are resolved here, on the admin worker (blocking is fine on this thread).
    std::string address = target.host;
    in_addr a{};
    if (inet_pton(AF_INET, address.c_str(), &a) != 1) {
      address.clear();
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      if (getaddrinfo(target.host.c_str(), nullptr, &hints, &res) == 0 && res != nullptr) {
        char buf[INET_ADDRSTRLEN] = {};
        const auto* sin = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) address = buf;
      }
      if (res != nullptr) freeaddrinfo(res);
    }
    std::optional<ProbeOutcome> outcome;
    uint64_t started = 0;
    json resp;
    admin::ClientError err;
    if (address.empty()) {
      outcome = prober_.failure(target.host + ": cannot resolve the probe target");
    } else if (!admin_->call("probe", {{"address", address}, {"port", target.port}}, &resp,
                             &err)) {
      outcome = prober_.failure("dataplane probe: " + err.message);
    } else if (!resp.value("ok", false)) {
      outcome = prober_.failure("dataplane probe: " + resp.value("error", std::string("refused")));
    } else {
      const json& r = resp["result"];
      if (r.contains("started")) started = r["started"].value("id", uint64_t{0});
      // The answer describes the previous probe: judged only when it is the one we started.
      if (expected != 0 && r.contains("last") && r["last"].value("id", uint64_t{0}) == expected) {
        outcome = prober_.judge(r);
      }
    }
    mailbox_.post([this, outcome, started] {
      probe_in_flight_ = false;
      probe_expected_ = started;
      if (!outcome) return;
      const Millis t = clock_.now();
      if (prober_.record(*outcome, t, config_.ha.probe_fail_threshold)) {
        log::get()->info("egress probes {}: {}", outcome->ok ? "ok again" : "failing",
                         outcome->detail);
      }
      const bool was_active = fsm_->state() == ha::HaState::Active;
      handle(ha::event::EgressProbe{outcome->ok});
      if (was_active && !outcome->ok && fsm_->state() == ha::HaState::Failed) {
        prober_.demoted_for_egress(t);
      }
    });
  });
}

void Daemon::send_message(const ha::Message& m) {
  if (!udp_) return;
  const auto bytes = codec_->encode(m, fsm_->epoch());
  if (bytes.empty()) return;
  if (test_drop_peer_) {
    ++stats_.test_dropped;
    return;
  }
  udp_->send(peer_, bytes);
}

void Daemon::send_sync_datagrams() {
  auto ds = sender_->take();
  if (ds.empty() || !udp_) return;
  if (test_drop_peer_) {
    stats_.test_dropped += ds.size();
    return;
  }
  size_t done = 0;
  int waits = 0;
  while (done < ds.size()) {
    errno = 0;
    const size_t n = udp_->send_many(
        peer_, std::span<const std::vector<uint8_t>>(ds).subspan(done));
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
  if (test_drop_peer_) {
    ++stats_.test_dropped;
    return;
  }
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

void Daemon::maybe_accept_handover() {
  if (!handover_in_) return;
  const auto h = *handover_in_;
  const bool caught_up = receiver_.in_sync() && receiver_.applied_seq() >= h.sync_sent;
  if (caught_up) {
    push_to_dataplane();
    handover_in_.reset();
    handover_grace_until_ = clock_.now() + kHandoverGrace;
    handover_grace_boot_ = peer_boot_;
    handle(ha::event::PeerHandoverRequest{h.id});
  } else if (clock_.now() >= h.deadline) {
    handover_in_.reset();
    log::get()->warn("handover {}: table not in sync (applied {} < sent {}); refusing", h.id,
                     receiver_.applied_seq(), h.sync_sent);
    send_message(ha::HandoverAck{h.id, false});
  }
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

void Daemon::periodic(Millis now) {
  if (now >= next_tick_) {
    next_tick_ = now + 25ms;
    handle(ha::event::Tick{});
    on_sync_request_from(receiver_.tick());
    maybe_accept_handover();
  }
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + config_.ha.heartbeat_interval;
    send_heartbeat();
  }
  if (now >= next_flush_) {
    next_flush_ = now + config_.ha.sync_flush_interval;
    if (fsm_->state() == ha::HaState::Active) {
      sender_->flush();
      send_sync_datagrams();
    }
    push_to_dataplane();
  }
  if (now >= next_health_) {
    next_health_ = now + 200ms;
    start_health_check();
  }
  if (metrics_ && now >= next_metrics_) {
    // Scrapes read this snapshot (at most 1 s old); the stats call runs on the admin worker.
    next_metrics_ = now + 1s;
    metrics_->set_status(status());
    if (!metrics_stats_in_flight_) {
      metrics_stats_in_flight_ = true;
      admin_worker_->post([this] {
        metrics_->fetch_stats(*admin_);
        mailbox_.post([this] { metrics_stats_in_flight_ = false; });
      });
    }
  }
  if (now >= next_route_) {
    next_route_ = now + config_.ha.route_check_interval;
    start_route_check();
  }
  if (prober_.enabled() && now >= next_probe_) {
    next_probe_ = now + config_.ha.probe_interval;
    start_probe(now);
  }
  if (fallback_) fallback_->periodic(now);
  if (!link_.connected() && now >= next_connect_) {
    next_connect_ = now + 500ms;
    std::string err;
    if (link_.ensure_connected(&err)) {
      log::get()->info("sync socket {} connected", link_.path());
      snapshots_expected_.clear();
      snapshot_open_.reset();
      snapshot_for_peer_queued_ = false;
      sweeping_ = false;
      // A new connection may be a restarted dataplane with an empty table.
      if (fsm_->state() != ha::HaState::Active && fsm_->state() != ha::HaState::Init) {
        on_sync_request_from(receiver_.start());
      }
    }
  }
}

std::unique_ptr<CrossAzFallback> Daemon::make_fallback() {
  std::vector<std::string> rescued;
  for (const auto& r : config_.ha.fallback_for) {
    rescued.insert(rescued.end(), r.route_tables.begin(), r.route_tables.end());
  }
  ops_.exclude_tables(rescued);  // set before the AWS worker's first job
  CrossAzFallback::Hooks hooks;
  hooks.to_aws = [this](std::function<void()> job) { aws_worker_->post(std::move(job)); };
  hooks.to_loop = [this](std::function<void()> job) { mailbox_.post(std::move(job)); };
  hooks.ec2 = [this] { return ops_.ec2(); };
  hooks.context = [this] {
    return ha::FallbackContext{fsm_->state() == ha::HaState::Active, identity_.eni,
                               identity_.peer_eni};
  };
  hooks.record = [this](const std::string& text) {
    decisions_.emplace_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            text);
    if (decisions_.size() > 32) decisions_.pop_front();
  };
  return std::make_unique<CrossAzFallback>(
      config_.ha.fallback_for, config_.aws.route_tables.destination, clock_, std::move(hooks));
}

json Daemon::status() const {
  const auto now = clock_.now();
  json peer = {{"address", ha::to_string(peer_)}, {"alive", fsm_->peer_alive()}};
  if (peer_hb_) {
    peer["state"] = std::string(ha::to_string(peer_hb_->state));
    peer["priority"] = peer_hb_->priority;
    peer["epoch"] = peer_epoch_;
    peer["boot_id"] = peer_boot_;
    peer["last_heard_ms"] = (now - peer_heard_).count();
    peer["dataplane_ok"] = (peer_hb_->health & ha::kHealthDataplaneOk) != 0;
    peer["in_sync"] = (peer_hb_->health & ha::kHealthInSync) != 0;
    peer["sync_sent"] = peer_hb_->sync_sent;
    peer["sync_applied"] = peer_hb_->sync_applied;
  } else {
    peer["state"] = "unknown";
  }
  const bool active = fsm_->state() == ha::HaState::Active;
  const uint64_t sent_seq = sender_->last_sent_seq();
  uint64_t lag = 0;
  if (active && peer_hb_) {
    lag = sent_seq > peer_hb_->sync_applied ? sent_seq - peer_hb_->sync_applied : 0;
  } else if (!active && peer_hb_) {
    lag = peer_hb_->sync_sent > receiver_.applied_seq()
              ? peer_hb_->sync_sent - receiver_.applied_seq()
              : 0;
  }
  const auto& rs = receiver_.stats();
  json decisions = json::array();
  for (const auto& [at, text] : decisions_) decisions.push_back({{"at_ms", at}, {"decision", text}});
  json drops = json::object();
  for (size_t i = 0; i < ha::kDropReasonCount; ++i) {
    const auto r = static_cast<ha::DropReason>(i);
    if (codec_->counters()[r] != 0) drops[std::string(ha::to_string(r))] = codec_->counters()[r];
  }
  return {
      {"role", std::string(ha::to_string(fsm_->state()))},
      {"epoch", fsm_->epoch()},
      {"priority", config_.ha.priority},
      {"boot_id", boot_id_},
      {"instance_id", identity_.instance_id},
      {"eni", identity_.eni},
      {"peer_eni", identity_.peer_eni},
      {"fenced", fsm_->fenced()},
      {"route", std::string(ha::to_string(fsm_->route()))},
      {"route_detail", route_detail_},
      {"takeover_in_progress", fsm_->takeover_in_progress()},
      {"last_takeover", takeover_detail_},
      {"last_takeover_ms", last_takeover_ms_ ? json(*last_takeover_ms_) : json(nullptr)},
      {"takeovers", stats_.takeovers},
      {"takeover_failures", stats_.takeover_failures},
      {"dataplane", {{"healthy", dataplane_good_}, {"detail", dataplane_detail_},
                     {"sync_connected", link_.connected()}}},
      {"peer", peer},
      {"egress_probes", prober_.status(now)},
      {"sync",
       {{"sent", stats_.sent},
        {"received", stats_.received},
        {"applied", stats_.applied},
        {"handover_grace_events", stats_.handover_grace_events},
        {"sent_seq", sent_seq},
        {"applied_seq", receiver_.applied_seq()},
        {"lag", lag},
        {"in_sync", receiver_.in_sync()},
        {"snapshots_sent", stats_.snapshots_sent},
        {"snapshots_received", stats_.snapshots_received},
        {"swept", stats_.swept},
        {"gaps", rs.gaps},
        {"resync_requests", rs.requests},
        {"dataplane_queue", link_.queued()}}},
      {"heartbeats", {{"sent", stats_.heartbeats_sent}, {"received", stats_.heartbeats_received},
                      {"missed", heartbeat_gaps_.missed()},
                      {"accepted", codec_->counters().accepted}, {"drops", drops}}},
      {"aws", {{"retries", ops_.retries()}, {"errors", ops_.errors()},
               {"credential_refreshes", ops_.credential_refreshes()}}},
      {"decisions", decisions},
      {"fallback", fallback_ ? fallback_->status() : json::array()},
  };
}

json Daemon::command(const std::string& cmd, const json& args) {
  if (cmd == "status") return {{"ok", true}, {"result", status()}};
  if (cmd == "failover") {
    if (fsm_->state() != ha::HaState::Active) {
      return error_answer("this instance is " + std::string(ha::to_string(fsm_->state())) +
                          ", not active: run failover on the active instance");
    }
    const ha::Decision d = fsm_->handle(ha::event::OperatorHandover{});
    decisions_.emplace_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            d.to_string());
    ha::log_decision(d);
    act(d);
    if (!d.has(ha::ActionKind::SendHandoverRequest)) return error_answer(d.reason);
    uint32_t id = 0;
    for (const auto& a : d.actions) {
      if (a.kind == ha::ActionKind::SendHandoverRequest) id = a.handover_id;
    }
    return {{"ok", true}, {"result", {{"handover_id", id}, {"reason", d.reason}}}};
  }
  if (cmd == "version") return {{"ok", true}, {"result", {{"protocol", 1}}}};
  if (test_hooks_ && cmd == "test_drop_peer") {
    test_drop_peer_ = args.value("drop", true);
    log::get()->warn("test hook: heartbeat link {}", test_drop_peer_ ? "cut" : "restored");
    return {{"ok", true}, {"result", {{"drop", test_drop_peer_}}}};
  }
  return error_answer("unknown command '" + cmd + "' (expected status or failover)");
}

int Daemon::run(const std::atomic<bool>& stop) {
  const auto logger = log::get();
  std::string err;
  {  // Only the derived key stays (in OpenSSL's context): both copies of the secret are wiped.
    std::vector<uint8_t> raw(secret_.bytes().begin(), secret_.bytes().end());
    secret_ = ha::Secret{};
    auth_ = ha::Authenticator::create_link(raw, &err);
  }
  if (!auth_) {
    logger->error("cannot set up HMAC: {}", err);
    return 1;
  }
  codec_ = std::make_unique<ha::Codec>(auth_.get(), boot_id_);
  sender_ = std::make_unique<ha::SyncSender>(codec_.get());
  udp_ = ha::UdpTransport::open({config_.ha.bind_address, config_.ha.port}, &err);
  if (!udp_) {
    logger->error("cannot open the HA socket: {}", err);
    return 1;
  }
  // Room for a snapshot burst: SO_*BUFFORCE (root) goes past net.core.*mem_max.
  const int big = 16 << 20;
  ::setsockopt(udp_->fd(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  ::setsockopt(udp_->fd(), SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  if (!control_.start(config_.ha.control_socket, &err)) {
    logger->error("control socket: {}", err);
    return 1;
  }
  if (!config_.ha.metrics_listen.empty()) {
    metrics_ = MetricsExporter::start(config_.ha.metrics_listen, &err);
    if (!metrics_) {
      logger->error("metrics: {}", err);
      return 1;
    }
    logger->info("metrics on http://{}/metrics", config_.ha.metrics_listen);
  }
  if (!bootstrap(stop)) return 0;

  admin_ = std::make_unique<admin::AdminClient>(config_.dataplane_admin_socket, 1000);
  aws_worker_ = std::make_unique<Worker>();
  admin_worker_ = std::make_unique<Worker>();
  fsm_ = std::make_unique<ha::FailoverFsm>(ha::to_fsm_config(config_.ha, boot_id_), clock_);
  if (!config_.ha.fallback_for.empty()) fallback_ = make_fallback();
  logger->info("eipgate-control up: priority {}, peer {}, HA port {}, control socket {}",
               config_.ha.priority, ha::to_string(peer_), udp_->local().port,
               config_.ha.control_socket);

  std::vector<int> fds;
  std::vector<bool> want_write;
  std::vector<pollfd> pfds;
  while (!stop.load()) {
    periodic(clock_.now());
    fds.clear();
    want_write.clear();
    fds.push_back(udp_->fd());
    want_write.push_back(false);
    fds.push_back(mailbox_.fd());
    want_write.push_back(false);
    if (link_.connected()) {
      fds.push_back(link_.fd());
      want_write.push_back(link_.wants_write());
    }
    control_.poll_set(&fds, &want_write);
    pfds.resize(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) {
      pfds[i] = pollfd{fds[i], static_cast<short>(POLLIN | (want_write[i] ? POLLOUT : 0)), 0};
    }
    const int rc = ::poll(pfds.data(), pfds.size(), 5);
    if (rc < 0) continue;  // EINTR: the stop flag is checked above
    for (size_t i = 0; i < pfds.size(); ++i) {
      const short re = pfds[i].revents;
      if (re == 0) continue;
      const int fd = pfds[i].fd;
      if (fd == udp_->fd()) {
        for (int round = 0; round < 64; ++round) {
          auto ds = udp_->receive_many(64, 0);
          codec_->counters().count(ha::DropReason::too_long, udp_->take_oversized());
          for (const auto& d : ds) on_datagram(d);
          if (ds.size() < 64) break;
        }
      } else if (fd == mailbox_.fd()) {
        mailbox_.drain();
      } else if (fd == link_.fd()) {
        if ((re & POLLOUT) != 0) link_.flush();
        if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 &&
            !link_.read([this](const SyncPacket& p) { on_dataplane_packet(p); })) {
          logger->warn("sync socket {} closed; reconnecting", link_.path());
        }
      } else {
        control_.on_ready(fd, re);
      }
    }
  }
  // Clean stop: no demotion, no last message. The peer notices the silence after the dead
  // interval and takes over if we were active (README: "Stopping").
  logger->info("eipgate-control stopping (role {}, epoch {})", ha::to_string(fsm_->state()),
               fsm_->epoch());
  aws_worker_.reset();
  admin_worker_.reset();
  control_.stop();
  return 0;
}

}  // namespace

int run_daemon(const DaemonConfig& config, ha::Secret secret, const std::atomic<bool>& stop) {
  Daemon d(config, std::move(secret));
  return d.run(stop);
}

}  // namespace eipgate::control

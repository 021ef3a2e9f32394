// eipgate-control's event loop: set-up, the poll() loop, periodic work and the failover state
// machine's decisions. The rest of the Daemon lives in takeover.cc, sync_relay.cc and status.cc
// around daemon_impl.h. See README.md.
#include "control/daemon/daemon.h"

#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include "common/log.h"
#include "control/daemon/daemon_impl.h"
#include "control/ha/decision_log.h"

namespace eipgate::control::detail {

Daemon::Daemon(const DaemonConfig& config, ha::Secret secret)
    : config_(config),
      secret_(std::move(secret)),
      boot_id_(ha::make_run_id()),
      ops_(config.aws),
      link_(config.sync_socket),
      receiver_(clock_, this, config.ha.resync_retry),
      control_([this](const std::string& cmd, const json& args) { return command(cmd, args); }),
      progress_(proto::progress_path_for(config.dataplane_admin_socket)),
      prober_(config.ha.probe_targets, config.ha.probe_timeout) {
  peer_ = ha::Endpoint{config.ha.peers.at(0).address, config.ha.peers.at(0).port};
}

bool Daemon::bootstrap(const std::atomic<bool>& stop) {
  const auto logger = log::get();
  while (!stop.load()) {
    try {
      identity_ =
          ops_.bootstrap(config_.ha.data_mac, config_.ha.peer_eni, config_.ha.peers.at(0).text);
      logger->info("bootstrap: instance {} in {} ({}), data ENI {}, peer ENI {}",
                   identity_.instance_id, identity_.availability_zone, identity_.region,
                   identity_.eni,
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
    decisions_.emplace_back(std::chrono::duration_cast<std::chrono::milliseconds>(
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
  if (config_.ha.dataplane_stall.count() > 0 && now >= next_progress_) {
    next_progress_ = now + 50ms;
    check_progress(now);
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
  maybe_renew_lease(now);
  if (cw_collector_) cloudwatch_periodic(now);
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
  lease_worker_ = std::make_unique<Worker>();
  fsm_ = std::make_unique<ha::FailoverFsm>(ha::to_fsm_config(config_.ha, boot_id_), clock_);
  if (!config_.ha.fallback_for.empty()) fallback_ = make_fallback();
  if (config_.cloudwatch.enabled) start_cloudwatch();
  if (config_.cloudwatch_logs.enabled) start_cloudwatch_logs();
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
  lease_worker_.reset();
  cw_sleep_.stop();       // a PutMetricData backoff in progress ends now
  cw_publisher_.reset();  // an interval still queued is not sent: we are stopping
  logs_sleep_.stop();     // likewise for a PutLogEvents backoff
  logs_shipper_.reset();  // lines read but not sent yet are not sent
  control_.stop();
  return 0;
}

}  // namespace eipgate::control::detail

namespace eipgate::control {

int run_daemon(const DaemonConfig& config, ha::Secret secret, const std::atomic<bool>& stop) {
  detail::Daemon d(config, std::move(secret));
  return d.run(stop);
}

}  // namespace eipgate::control

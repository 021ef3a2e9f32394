// The Daemon's work against AWS and the local dataplane: the dataplane's role, takeover, route
// checks, dataplane health, egress probes and accepting the peer's handover (daemon_impl.h).
#include <arpa/inet.h>
#include <netdb.h>

#include "common/log.h"
#include "control/daemon/daemon_impl.h"

namespace eipgate::control::detail {

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
        next_lease_ = Millis{0};  // vouch for the pair at once (lease.cc)
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
      // The shared counters outrank an answer: one given just before a freeze is stale.
      if (progress_stalled_) ok = false;
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

void Daemon::check_progress(Millis now) {
  const auto s = progress_.sample(static_cast<uint64_t>(now.count()));
  const bool stalled =
      s.present && s.stalled_ms >= static_cast<uint64_t>(config_.ha.dataplane_stall.count());
  if (stalled == progress_stalled_) return;
  progress_stalled_ = stalled;
  if (!stalled) {
    // Moving again (resumed, or a new process): the admin-socket health check decides.
    log::get()->info("dataplane progress: worker loop counters move again (pid {})", s.pid);
    return;
  }
  ++progress_stalls_;
  const std::string d = "worker " + std::to_string(s.stalled_worker) +
                        "'s loop counter stood still " + std::to_string(s.stalled_ms) +
                        " ms (pid " + std::to_string(s.pid) + "): frozen, hung or dead";
  log::get()->warn("dataplane progress: {}", d);
  dataplane_good_ = false;
  dataplane_detail_ = d;
  health_misses_ = kHealthMissesToFail;
  handle(ha::event::LocalHealth{false});
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
    } else if (!admin_->call("probe", {{"address", address}, {"port", target.port}}, &resp, &err)) {
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

}  // namespace eipgate::control::detail

// The liveness lease (ha/fallback.h): while this instance is the active and its dataplane is
// healthy, the eipgate:lease tag on our route tables is rewritten every ha.lease_interval, so
// another AZ's fallback can tell a pair with dead processes from one that merely runs. The calls
// run on their own worker and client, never in the way of a takeover or a route check.
#include <chrono>

#include "common/log.h"
#include "control/daemon/daemon_impl.h"
#include "control/ha/fallback.h"

namespace eipgate::control::detail {

void Daemon::maybe_renew_lease(Millis now) {
  if (config_.ha.lease_interval.count() <= 0 || now < next_lease_) return;
  next_lease_ = now + config_.ha.lease_interval;
  // Only a working active vouches for the pair; otherwise the lease runs out.
  if (fsm_->state() != ha::HaState::Active || fsm_->takeover_in_progress() || !dataplane_good_ ||
      lease_.in_flight || identity_.instance_id.empty()) {
    return;
  }
  lease_.in_flight = true;
  const int64_t unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  const std::string value =
      ha::lease_value(identity_.instance_id, unix_ms, config_.ha.lease_interval);
  lease_worker_->post([this, value] {
    std::string error;
    size_t tables = 0;
    try {
      tables = ops_.renew_lease(value);
    } catch (const std::exception& e) {
      error = e.what();
    }
    mailbox_.post([this, error, tables] {
      lease_.in_flight = false;
      if (error.empty()) {
        ++lease_.renewals;
        lease_.tables = tables;
        lease_.last_ok = clock_.now();
        if (!lease_.last_error.empty())
          log::get()->info("lease renewed again on {} table(s)", tables);
        lease_.last_error.clear();
        return;
      }
      ++lease_.failures;
      if (error != lease_.last_error) {
        log::get()->warn(
            "lease renewal failed ({}): another AZ's fallback may rescue our tables "
            "once it has not been renewed for {} intervals",
            error, ha::kLeaseMisses);
      }
      lease_.last_error = error;
    });
  });
}

json Daemon::lease_status() const {
  const auto now = clock_.now();
  return {{"interval_ms", config_.ha.lease_interval.count()},
          {"renewals", lease_.renewals},
          {"failures", lease_.failures},
          {"tables", lease_.tables},
          {"age_ms", lease_.last_ok ? json((now - *lease_.last_ok).count()) : json(nullptr)},
          {"last_error", lease_.last_error}};
}

}  // namespace eipgate::control::detail

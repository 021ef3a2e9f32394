// Egress probe bookkeeping; see egress_probes.h.
#include "control/daemon/egress_probes.h"

#include <algorithm>

namespace eipgate::control {

using nlohmann::json;

const ha::ProbeTarget& EgressProber::next_target() {
  const ha::ProbeTarget& t = targets_[next_ % targets_.size()];
  ++next_;
  return t;
}

std::optional<ProbeOutcome> EgressProber::judge(const json& result) const {
  if (!result.is_object() || !result.contains("last") || !result["last"].is_object()) {
    return std::nullopt;
  }
  const json& last = result["last"];
  const std::string where =
      last.value("address", std::string("?")) + ":" + std::to_string(last.value("port", 0));
  const std::string state = last.value("state", std::string());
  if (state == "syn-ack" || state == "rst") {
    const double ms = static_cast<double>(last.value("rtt_us", uint64_t{0})) / 1000.0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", ms);
    return ProbeOutcome{true, where + " " + state + " in " + buf + " ms"};
  }
  if (state == "pending") {
    if (last.value("age_ms", uint64_t{0}) < static_cast<uint64_t>(timeout_.count())) {
      return std::nullopt;
    }
    return ProbeOutcome{false,
                        where + " no answer within " + std::to_string(timeout_.count()) + " ms"};
  }
  return ProbeOutcome{false, where + " " + (state.empty() ? std::string("?") : state)};
}

bool EgressProber::record(const ProbeOutcome& o, ha::Millis now, uint32_t threshold) {
  last_detail_ = o.detail;
  if (o.ok) {
    ++ok_;
    in_row_ = 0;
    if (!good_since_) good_since_ = now;
    if (now - *good_since_ >= kGoodResetsBackoff) backoff_ = kFirstBackoff;
  } else {
    ++failed_;
    ++in_row_;
    good_since_.reset();
  }
  const bool failing = in_row_ >= std::max<uint32_t>(threshold, 1);
  const bool changed = failing != failing_;
  failing_ = failing;
  return changed;
}

void EgressProber::demoted_for_egress(ha::Millis now) {
  if (owed_) return;
  owed_ = true;
  demoted_at_ = now;
}

bool EgressProber::should_forgive(ha::Millis now, bool peer_alive) const {
  if (!owed_) return false;
  if (!peer_alive) return true;
  return now - *demoted_at_ >= backoff_;
}

void EgressProber::forgiven() {
  owed_ = false;
  in_row_ = 0;
  failing_ = false;
  good_since_.reset();
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

json EgressProber::status(ha::Millis now) const {
  json targets = json::array();
  for (const auto& t : targets_) targets.push_back(t.host + ":" + std::to_string(t.port));
  json j = {{"targets", targets},
            {"ok", ok_},
            {"failed", failed_},
            {"failures_in_row", in_row_},
            {"failing", failing_},
            {"last", last_detail_},
            {"backoff_ms", backoff_.count()}};
  if (owed_) j["forgiven_in_ms"] = std::max<int64_t>(0, (backoff_ - (now - *demoted_at_)).count());
  return j;
}

}  // namespace eipgate::control

// FallbackWatch: when another AZ's pair counts as down, and which of its tables we may take.
#include "control/ha/fallback.h"

#include <algorithm>
#include <charconv>

#include "common/log.h"

namespace eipgate::ha {
namespace {

std::string ms(Millis d) { return std::to_string(d.count()) + " ms"; }

bool running_and_healthy(const WatchedInstance& i) {
  return i.listed && i.state == "running" && i.instance_status != "impaired" &&
         i.system_status != "impaired";
}

std::string describe(const WatchedInstance& i) {
  if (!i.listed) return i.id + " not listed";
  return i.id + " " + i.state + " (instance " + i.instance_status + ", system " + i.system_status +
         ")";
}

std::string route_target_text(const WatchedRoute& r) {
  std::string t = !r.eni.empty()              ? r.eni
                  : !r.nat_gateway_id.empty() ? r.nat_gateway_id
                  : !r.gateway_id.empty()     ? r.gateway_id
                  : !r.instance_id.empty()    ? r.instance_id
                                              : "nothing";
  if (r.state == "blackhole") t += " (blackhole)";
  return t;
}

}  // namespace

std::string lease_value(std::string_view instance_id, int64_t unix_ms, Millis interval) {
  return std::string(instance_id) + " " + std::to_string(unix_ms) + " " +
         std::to_string(interval.count());
}

std::optional<Millis> lease_interval_of(std::string_view value) {
  const auto last = value.rfind(' ');
  if (last == std::string_view::npos || last + 1 >= value.size()) return std::nullopt;
  int64_t ms = 0;
  const auto* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data() + last + 1, end, ms);
  if (ec != std::errc() || ptr != end || ms <= 0 || ms > 3'600'000) return std::nullopt;
  return Millis{ms};
}

std::string_view to_string(FallbackPhase p) {
  switch (p) {
    case FallbackPhase::Watching:
      return "watching";
    case FallbackPhase::PairDown:
      return "pair_down";
    case FallbackPhase::Rescuing:
      return "rescuing";
    case FallbackPhase::OwnersBack:
      return "owners_back";
  }
  return "?";
}

std::string FallbackDecision::to_string() const {
  std::string s(ha::to_string(from));
  s += changed() ? " -> " + std::string(ha::to_string(to)) : " (stay)";
  s += ": " + reason;
  if (!replace.empty()) {
    s += " [ReplaceRoute";
    for (const auto& t : replace) s += " " + t;
    s += "]";
  }
  return s;
}

FallbackDecision FallbackWatch::decide(FallbackPhase to, std::string reason,
                                       std::vector<std::string> replace) {
  FallbackDecision d{phase_, to, std::move(replace), std::move(reason)};
  phase_ = to;
  reason_ = d.reason;
  return d;
}

FallbackDecision FallbackWatch::observe(const FallbackObservation& obs,
                                        const FallbackContext& ctx) {
  if (obs.error) {
    // No evidence: the pair must be seen down again for the whole `after` before we act.
    down_since_.reset();
    return decide(phase_, "EC2 check failed (" + *obs.error + "); not acting on old evidence");
  }
  const Millis now = clock_.now();

  // Instances first: any watched instance running and not impaired means its own control is (or
  // soon will be) in charge of these tables, so we keep our hands off them.
  std::string detail;
  std::string healthy;
  for (const auto& id : rule_.instances) {
    WatchedInstance seen{id, false, {}, {}, {}};
    if (!obs.instances_not_found) {
      const auto it = std::find_if(obs.instances.begin(), obs.instances.end(),
                                   [&](const WatchedInstance& w) { return w.id == id; });
      if (it != obs.instances.end()) seen = *it;
    }
    detail += (detail.empty() ? "" : ", ") +
              (obs.instances_not_found ? id + " not found" : describe(seen));
    if (healthy.empty() && running_and_healthy(seen)) healthy = id;
  }
  bool all_blackhole = !obs.routes.empty();
  for (const auto& r : obs.routes) all_blackhole &= r.found && r.state == "blackhole";
  // Terminated instances vanish from DescribeInstanceStatus (InvalidInstanceID.NotFound): then
  // only blackhole routes everywhere count as the pair being gone.
  const bool instances_down = healthy.empty() && (!obs.instances_not_found || all_blackhole);

  // The lease: running instances are not enough, the pair's active must keep renewing it.
  std::string lease;
  Millis ttl{0};
  for (const auto& r : obs.routes) {
    if (r.lease.empty()) continue;
    lease += r.lease + ";";
    if (const auto iv = lease_interval_of(r.lease)) ttl = std::max(ttl, *iv * kLeaseMisses);
  }
  // A route that just moved to one of the watched instances is a sign of life too: a pair that
  // comes back takes its tables a moment before its first renewal is visible.
  std::string routes;
  bool at_watched = false;
  for (const auto& r : obs.routes) {
    routes += r.table + ">" + r.eni + "/" + r.instance_id + "/" + r.state + ";";
    at_watched |= r.found && r.state != "blackhole" && !r.instance_id.empty() &&
                  std::find(rule_.instances.begin(), rule_.instances.end(), r.instance_id) !=
                      rule_.instances.end();
  }
  const bool moved_to_watched = routes != routes_seen_ && !routes_seen_.empty() && at_watched;
  routes_seen_ = routes;
  if (lease.empty()) {
    lease_seen_.clear();
    lease_changed_at_.reset();
  } else if (lease != lease_seen_ || !lease_changed_at_ || moved_to_watched) {
    lease_seen_ = lease;
    lease_changed_at_ = now;
  }
  lease_ttl_ = ttl;
  const bool lease_stale = lease_changed_at_ && ttl.count() > 0 && now - *lease_changed_at_ >= ttl;
  const bool down = instances_down || lease_stale;
  if (!instances_down && lease_stale) {
    detail += "; lease not renewed for " + ms(now - *lease_changed_at_) + " (limit " + ms(ttl) +
              "): no active with a working dataplane";
  }

  auto at_our_target = [&](const WatchedRoute& r) {
    if (!r.found || r.state == "blackhole") return false;
    return rule_.to_self() ? !ctx.self_eni.empty() && r.eni == ctx.self_eni
                           : r.nat_gateway_id == rule_.target;
  };

  if (!down) {
    down_since_.reset();
    std::string why =
        healthy.empty() ? "instances not found but not every route is a blackhole (" + detail + ")"
                        : healthy + " is running and healthy (" + detail + ")";
    if (lease_changed_at_) why += ", lease renewed " + ms(now - *lease_changed_at_) + " ago";
    if (phase_ == FallbackPhase::Rescuing ||
        (phase_ == FallbackPhase::OwnersBack &&
         std::any_of(obs.routes.begin(), obs.routes.end(), at_our_target))) {
      return decide(FallbackPhase::OwnersBack,
                    why + ": the pair's own control takes its routes back; not touching them");
    }
    return decide(FallbackPhase::Watching, why);
  }

  // A stale lease dates the failure from the last renewal seen, not from when we noticed.
  if (!down_since_) down_since_ = instances_down ? now : *lease_changed_at_;
  const Millis down_for = now - *down_since_;
  const std::string why = "watched pair down for " + ms(down_for) + " (" + detail +
                          (all_blackhole ? "; routes blackhole" : "") + ")";
  const FallbackPhase waiting =
      phase_ == FallbackPhase::Rescuing ? FallbackPhase::Rescuing : FallbackPhase::PairDown;
  if (down_for < rule_.after) {
    return decide(waiting, why + ", acting after " + ms(rule_.after));
  }
  if (!ctx.active) return decide(waiting, why + "; we are not active: the active of our pair acts");
  if (rule_.to_self() && ctx.self_eni.empty()) {
    return decide(waiting, why + "; our data ENI is not known yet");
  }
  if (in_flight_) return decide(phase_, why + "; ReplaceRoute in flight");

  std::vector<std::string> replace;
  std::string held;
  size_t at_target = 0;
  for (const auto& table : rule_.route_tables) {
    const auto it = std::find_if(obs.routes.begin(), obs.routes.end(),
                                 [&](const WatchedRoute& r) { return r.table == table; });
    if (it == obs.routes.end() || !it->found) {
      held += (held.empty() ? "" : ", ") + table + " has no such route";
      continue;
    }
    const WatchedRoute& r = *it;
    if (at_our_target(r)) {
      ++at_target;
      continue;
    }
    // Ours to take: a dead route, one at the watched pair, or one our own pair set earlier
    // (our peer was the active then, or we used the other target). Anything else was set by
    // someone else (another rescuing AZ, an operator): we do not fight over it.
    const bool watched = !r.instance_id.empty() &&
                         std::find(rule_.instances.begin(), rule_.instances.end(), r.instance_id) !=
                             rule_.instances.end();
    const bool our_pair = !r.eni.empty() && (r.eni == ctx.peer_eni || r.eni == ctx.self_eni);
    if (r.state == "blackhole" || watched || our_pair) {
      replace.push_back(table);
    } else {
      held += (held.empty() ? "" : ", ") + table + " held by " + route_target_text(r);
    }
  }
  const std::string target_text = rule_.to_self() ? "our ENI " + ctx.self_eni : rule_.target;
  if (!replace.empty()) {
    in_flight_ = true;
    std::string tables;
    for (const auto& t : replace) tables += (tables.empty() ? "" : ", ") + t;
    return decide(waiting,
                  why + ": pointing " + tables + " at " + target_text +
                      (held.empty() ? "" : " (left alone: " + held + ")"),
                  std::move(replace));
  }
  if (at_target > 0) {
    return decide(FallbackPhase::Rescuing, why + ": " + std::to_string(at_target) +
                                               " table(s) at " + target_text +
                                               (held.empty() ? "" : " (left alone: " + held + ")"));
  }
  return decide(waiting, why + "; nothing we may take: " + held);
}

FallbackDecision FallbackWatch::replaced(const std::optional<std::string>& error) {
  in_flight_ = false;
  if (error) {
    return decide(phase_, "ReplaceRoute failed (" + *error + "); retried on the next check");
  }
  ++replacements_;
  return decide(FallbackPhase::Rescuing, "route tables now at our target");
}

void log_fallback_decision(const FallbackRule& rule, const FallbackDecision& d) {
  const auto logger = log::get();
  std::string tables;
  for (const auto& t : rule.route_tables) tables += (tables.empty() ? "" : ",") + t;
  if (d.notable()) {
    logger->info("fallback for {}: {}", tables, d.to_string());
  } else {
    logger->debug("fallback for {}: {}", tables, d.to_string());
  }
}

}  // namespace eipgate::ha

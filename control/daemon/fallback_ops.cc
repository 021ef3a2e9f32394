// Cross-AZ fallback in the daemon: EC2 reads and writes on the AWS worker, decisions on the loop.
#include "control/daemon/fallback_ops.h"

#include <algorithm>

#include "common/log.h"
#include "control/aws/error.h"

namespace eipgate::control {

ha::FallbackObservation observe_fallback(aws::Ec2Client& ec2, const ha::FallbackRule& rule,
                                         const std::string& destination) {
  ha::FallbackObservation obs;
  try {
    try {
      for (const auto& s : ec2.describe_instance_status(rule.instances, true)) {
        obs.instances.push_back({s.instance_id, true, s.state, s.instance_status, s.system_status});
      }
    } catch (const aws::AwsError& e) {
      // EC2 refuses the whole call when one id no longer exists (terminated and gone).
      if (e.code() != "InvalidInstanceID.NotFound") throw;
      obs.instances_not_found = true;
    }
    const auto tables = ec2.describe_route_tables(rule.route_tables);
    for (const auto& id : rule.route_tables) {
      ha::WatchedRoute w;
      w.table = id;
      const auto t = std::find_if(tables.begin(), tables.end(),
                                  [&](const aws::RouteTable& rt) { return rt.id == id; });
      if (t != tables.end()) {
        if (const auto tag = t->tags.find(std::string(ha::kLeaseTag)); tag != t->tags.end()) {
          w.lease = tag->second;
        }
        if (const aws::Route* r = t->route_to(destination)) {
          w.found = true;
          w.state = r->state.empty() ? "active" : r->state;
          w.eni = r->network_interface_id;
          w.instance_id = r->instance_id;
          w.nat_gateway_id = r->nat_gateway_id;
          w.gateway_id = r->gateway_id;
        }
      }
      obs.routes.push_back(std::move(w));
    }
  } catch (const std::exception& e) {
    obs.error = e.what();
  }
  return obs;
}

std::optional<std::string> replace_fallback_routes(aws::Ec2Client& ec2,
                                                   const std::vector<std::string>& tables,
                                                   const std::string& destination,
                                                   const std::string& target, bool nat) {
  std::optional<std::string> first;
  for (const auto& t : tables) {
    try {
      if (nat) {
        ec2.replace_route_to_nat_gateway(t, destination, target);
      } else {
        ec2.replace_route(t, destination, target);
      }
    } catch (const std::exception& e) {
      if (!first) first = t + ": " + e.what();
    }
  }
  return first;
}

CrossAzFallback::CrossAzFallback(const std::vector<ha::FallbackRule>& rules,
                                 std::string destination, const ha::Clock& clock, Hooks hooks)
    : destination_(std::move(destination)), clock_(clock), hooks_(std::move(hooks)) {
  for (const auto& r : rules) {
    watches_.push_back(std::make_unique<Entry>(Entry{ha::FallbackWatch(r, clock_), {}, false, {}}));
  }
}

void CrossAzFallback::note(const Entry& e, const ha::FallbackDecision& d) {
  ha::log_fallback_decision(e.watch.rule(), d);
  if (d.notable() && hooks_.record) {
    std::string tables;
    for (const auto& t : e.watch.rule().route_tables) tables += (tables.empty() ? "" : ",") + t;
    hooks_.record("fallback for " + tables + ": " + d.to_string());
  }
}

void CrossAzFallback::periodic(ha::Millis now) {
  for (size_t i = 0; i < watches_.size(); ++i) {
    Entry& e = *watches_[i];
    if (e.busy || now < e.next_check) continue;
    e.busy = true;
    e.next_check = now + e.watch.rule().check_interval;
    hooks_.to_aws([this, i] {
      aws::Ec2Client* ec2 = hooks_.ec2();
      ha::FallbackObservation obs;
      if (ec2 == nullptr) {
        obs.error = "no EC2 client yet";
      } else {
        obs = observe_fallback(*ec2, watches_[i]->watch.rule(), destination_);
      }
      hooks_.to_loop([this, i, obs] { on_observed(i, obs); });
    });
  }
}

void CrossAzFallback::on_observed(size_t i, const ha::FallbackObservation& obs) {
  Entry& e = *watches_[i];
  const ha::FallbackContext ctx = hooks_.context();
  const ha::FallbackDecision d = e.watch.observe(obs, ctx);
  note(e, d);
  if (d.replace.empty()) {
    e.busy = false;
    return;
  }
  const std::string target = e.watch.target(ctx);
  const bool nat = !e.watch.rule().to_self();
  e.last_target = target;
  hooks_.to_aws([this, i, tables = d.replace, target, nat] {
    aws::Ec2Client* ec2 = hooks_.ec2();
    std::optional<std::string> err = "no EC2 client yet";
    if (ec2 != nullptr) err = replace_fallback_routes(*ec2, tables, destination_, target, nat);
    hooks_.to_loop([this, i, err] {
      Entry& en = *watches_[i];
      en.busy = false;
      note(en, en.watch.replaced(err));
    });
  });
}

nlohmann::json CrossAzFallback::status() const {
  auto out = nlohmann::json::array();
  const auto now = clock_.now();
  for (const auto& e : watches_) {
    const auto& w = e->watch;
    const auto since = w.down_since();
    out.push_back(
        {{"route_tables", w.rule().route_tables},
         {"instances", w.rule().instances},
         {"target", w.rule().target},
         {"after_ms", w.rule().after.count()},
         {"phase", std::string(ha::to_string(w.phase()))},
         {"reason", w.reason()},
         {"down_for_ms", since ? nlohmann::json((now - *since).count()) : nullptr},
         {"replacements", w.replacements()},
         {"lease_age_ms",
          w.lease_changed_at() ? nlohmann::json((now - *w.lease_changed_at()).count()) : nullptr},
         {"lease_ttl_ms", w.lease_ttl().count()},
         {"last_target", e->last_target}});
  }
  return out;
}

}  // namespace eipgate::control

// Cross-AZ fallback as pure logic: when both instances of another AZ's pair are down,
// the active of *this* pair points that AZ's private route tables at our data ENI or at a NAT
// Gateway. The daemon feeds EC2 observations in and carries out the ReplaceRoutes it is told to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/ha/clock.h"

namespace eipgate::ha {

// One `ha.fallback_for:` entry, configured on the instances of the rescuing AZ.
struct FallbackRule {
  std::vector<std::string> route_tables;  // the other AZ's private tables (rtb-...)
  std::vector<std::string> instances;     // the watched pair (i-...)
  std::string target = "self";            // "self" (our data ENI) or a NAT Gateway id (nat-...)
  Millis after{3'000};                    // the pair must look down this long before we act
  Millis check_interval{1'000};           // how often EC2 is asked
  int line = 0;                           // in the config file, for messages

  [[nodiscard]] bool to_self() const { return target == "self"; }
};

// What EC2 said about one watched instance (DescribeInstanceStatus, IncludeAllInstances=true).
struct WatchedInstance {
  std::string id;
  bool listed = false;          // absent: terminated long ago, or not visible
  std::string state;            // running, stopped, ...
  std::string instance_status;  // ok, impaired, initializing, not-applicable, ...
  std::string system_status;
};

// The default route of one watched table (DescribeRouteTables).
struct WatchedRoute {
  std::string table;
  bool found = false;  // the table exists and has a route for the destination
  std::string state;   // active | blackhole
  std::string eni;
  std::string instance_id;
  std::string nat_gateway_id;
  std::string gateway_id;
  std::string lease;  // the table's eipgate:lease tag (kLeaseTag), empty when it has none
};

// The liveness lease: the active of a pair, while its dataplane is healthy, rewrites this tag on
// its route tables every ha.lease_interval with "<instance-id> <unix ms> <interval ms>". A watcher
// needs no clock agreement: it only sees whether the value changes. A lease that has not changed
// for kLeaseMisses intervals means no active with a working dataplane, whatever EC2 says about the
// instances (dead processes, a hung kernel, an instance cut off from the network and the API).
inline constexpr std::string_view kLeaseTag = "eipgate:lease";
inline constexpr int kLeaseMisses = 3;
[[nodiscard]] std::string lease_value(std::string_view instance_id, int64_t unix_ms,
                                      Millis interval);
// The renewal interval a lease value names; nullopt when the value is not one of ours.
[[nodiscard]] std::optional<Millis> lease_interval_of(std::string_view value);

struct FallbackObservation {
  std::optional<std::string> error;  // the EC2 calls failed: no evidence either way
  bool instances_not_found = false;  // InvalidInstanceID.NotFound (terminated and gone)
  std::vector<WatchedInstance> instances;
  std::vector<WatchedRoute> routes;
};

// Who we are when the observation is judged.
struct FallbackContext {
  bool active = false;   // only the active member of the rescuing pair acts
  std::string self_eni;  // our data ENI
  std::string peer_eni;  // our peer's data ENI (a route there is our own pair's earlier rescue)
};

enum class FallbackPhase : uint8_t {
  Watching,    // the watched pair is up (or nothing known yet): hands off
  PairDown,    // down, waiting for `after` (or we are not the active)
  Rescuing,    // the tables point at our target
  OwnersBack,  // the pair came back after a rescue: its own control takes the routes back
};
[[nodiscard]] std::string_view to_string(FallbackPhase p);

struct FallbackDecision {
  FallbackPhase from = FallbackPhase::Watching;
  FallbackPhase to = FallbackPhase::Watching;
  std::vector<std::string> replace;  // ReplaceRoute these tables to the rule's target
  std::string reason;

  [[nodiscard]] bool changed() const { return from != to; }
  [[nodiscard]] bool notable() const { return changed() || !replace.empty(); }
  [[nodiscard]] std::string to_string() const;
};

// One watcher per rule; lives on the daemon's loop thread.
class FallbackWatch {
 public:
  FallbackWatch(FallbackRule rule, const Clock& clock) : rule_(std::move(rule)), clock_(clock) {}

  // Judges one observation. Tables in `replace` are to be pointed at target(ctx); the daemon
  // reports how that went with replaced() (no new replace is decided while one is in flight).
  FallbackDecision observe(const FallbackObservation& obs, const FallbackContext& ctx);
  // Result of carrying out a decision's ReplaceRoutes (error: what failed).
  FallbackDecision replaced(const std::optional<std::string>& error);

  // What ReplaceRoute is given: our ENI, or the NAT Gateway id.
  [[nodiscard]] std::string target(const FallbackContext& ctx) const {
    return rule_.to_self() ? ctx.self_eni : rule_.target;
  }
  [[nodiscard]] const FallbackRule& rule() const { return rule_; }
  [[nodiscard]] FallbackPhase phase() const { return phase_; }
  [[nodiscard]] const std::string& reason() const { return reason_; }
  [[nodiscard]] std::optional<Millis> down_since() const { return down_since_; }
  [[nodiscard]] bool in_flight() const { return in_flight_; }
  [[nodiscard]] uint64_t replacements() const { return replacements_; }
  // The watched pair's lease: when its value last changed (our clock) and how long it may stay
  // unchanged; nullopt while no table carries one.
  [[nodiscard]] std::optional<Millis> lease_changed_at() const { return lease_changed_at_; }
  [[nodiscard]] Millis lease_ttl() const { return lease_ttl_; }

 private:
  FallbackDecision decide(FallbackPhase to, std::string reason,
                          std::vector<std::string> replace = {});

  FallbackRule rule_;
  const Clock& clock_;
  FallbackPhase phase_ = FallbackPhase::Watching;
  std::string reason_ = "not checked yet";
  std::optional<Millis> down_since_;
  bool in_flight_ = false;
  uint64_t replacements_ = 0;  // rounds of ReplaceRoute that succeeded
  std::string lease_seen_;     // the watched tables' lease values, concatenated
  std::string routes_seen_;    // the watched tables' routes as last seen
  std::optional<Millis> lease_changed_at_;
  Millis lease_ttl_{0};
};

// Logs through the process logger: phase changes and actions at info, the rest at debug.
void log_fallback_decision(const FallbackRule& rule, const FallbackDecision& d);

}  // namespace eipgate::ha

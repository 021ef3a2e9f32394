// Egress probes for eipgate-control: which target to
// probe next, how to read the dataplane's `probe` answer, and when an instance that left the
// active role because of failing probes may count as healthy again. Pure logic over an injected
// time; the daemon does the I/O (admin socket, on its admin worker) and feeds the FSM.
//
// Why the forgiveness: only the active can probe (the standby holds neither the service address
// nor the EIP, so its probes could never be answered). An instance demoted for failing probes
// would otherwise stay "egress bad" for ever: never eligible again, not even when the peer dies.
// It is forgiven after a backoff (60 s, doubling on each new egress demotion up to 15 min, reset
// after 5 min of good probes as active) — so an upstream outage that affects both members
// flips the role at most once per backoff — and at once when the peer is not alive (trying our
// own egress beats leaving the AZ without a NAT).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/ha/clock.h"
#include "control/ha/config.h"

namespace eipgate::control {

struct ProbeOutcome {
  bool ok = false;
  std::string detail;  // "203.0.113.9:443 syn-ack in 1.2 ms", "... no answer within 500 ms"
};

class EgressProber {
 public:
  static constexpr ha::Millis kFirstBackoff{60'000};
  static constexpr ha::Millis kMaxBackoff{15 * 60'000};
  static constexpr ha::Millis kGoodResetsBackoff{5 * 60'000};

  EgressProber(std::vector<ha::ProbeTarget> targets, ha::Millis timeout)
      : targets_(std::move(targets)), timeout_(timeout) {}

  [[nodiscard]] bool enabled() const { return !targets_.empty(); }
  // Round robin over the configured targets.
  const ha::ProbeTarget& next_target();

  // Reads the `probe` result (the answer about the previous probe, "last"). nullopt when there is
  // nothing to judge (no previous probe, or it is younger than the timeout).
  [[nodiscard]] std::optional<ProbeOutcome> judge(const nlohmann::json& result) const;
  // The probe could not be sent or read (admin socket error, a refusal such as no probe.source,
  // an unresolvable name): a failure too.
  ProbeOutcome failure(std::string detail) const { return {false, std::move(detail)}; }

  // Bookkeeping for status/metrics and the backoff. Returns true when the state of egress
  // (ok/failing after `threshold` failures in a row) changed, for a log line.
  bool record(const ProbeOutcome& o, ha::Millis now, uint32_t threshold);

  // The active instance was demoted because of its probes.
  void demoted_for_egress(ha::Millis now);
  // Off the active: true once the failures should be forgotten (backoff over, or peer dead).
  [[nodiscard]] bool should_forgive(ha::Millis now, bool peer_alive) const;
  void forgiven();

  [[nodiscard]] nlohmann::json status(ha::Millis now) const;
  [[nodiscard]] uint64_t sent() const { return ok_ + failed_; }
  [[nodiscard]] uint64_t failed() const { return failed_; }
  [[nodiscard]] uint32_t failures_in_row() const { return in_row_; }

 private:
  std::vector<ha::ProbeTarget> targets_;
  ha::Millis timeout_;
  size_t next_ = 0;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  uint32_t in_row_ = 0;
  bool failing_ = false;
  std::string last_detail_;
  std::optional<ha::Millis> good_since_;
  std::optional<ha::Millis> demoted_at_;
  ha::Millis backoff_ = kFirstBackoff;
  bool owed_ = false;  // demoted for egress and not forgiven yet
};

}  // namespace eipgate::control

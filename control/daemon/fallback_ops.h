// The daemon's side of the cross-AZ fallback (ha/fallback.h): EC2 observations of each watched
// pair and the ReplaceRoutes, run on the AWS worker; the decisions, made on the loop thread.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/aws/ec2.h"
#include "control/ha/clock.h"
#include "control/ha/fallback.h"

namespace eipgate::control {

// DescribeInstanceStatus (IncludeAllInstances) of the watched instances and DescribeRouteTables
// of the watched tables, reduced to what FallbackWatch judges. Never throws.
[[nodiscard]] ha::FallbackObservation observe_fallback(aws::Ec2Client& ec2,
                                                       const ha::FallbackRule& rule,
                                                       const std::string& destination);

// ReplaceRoute of each table to `target` (an ENI, or a NAT Gateway id when nat is true).
// Returns the first error, after trying every table.
[[nodiscard]] std::optional<std::string> replace_fallback_routes(
    aws::Ec2Client& ec2, const std::vector<std::string>& tables, const std::string& destination,
    const std::string& target, bool nat);

// Runs every rule's watch: periodic() on the loop thread posts checks to the AWS worker, whose
// results come back through the loop's mailbox. One check (or ReplaceRoute) per rule at a time.
class CrossAzFallback {
 public:
  using Post = std::function<void(std::function<void()>)>;
  struct Hooks {
    Post to_aws;                                     // runs a job on the AWS worker
    Post to_loop;                                    // runs a job on the loop thread
    std::function<aws::Ec2Client*()> ec2;            // on the AWS worker; null before bootstrap
    std::function<ha::FallbackContext()> context;    // on the loop thread
    std::function<void(const std::string&)> record;  // a notable decision, for `status`
  };

  CrossAzFallback(const std::vector<ha::FallbackRule>& rules, std::string destination,
                  const ha::Clock& clock, Hooks hooks);

  void periodic(ha::Millis now);
  [[nodiscard]] nlohmann::json status() const;
  [[nodiscard]] bool empty() const { return watches_.empty(); }

 private:
  struct Entry {
    ha::FallbackWatch watch;
    ha::Millis next_check{0};
    bool busy = false;  // a check or a ReplaceRoute is on the AWS worker
    std::string last_target;
  };
  void on_observed(size_t i, const ha::FallbackObservation& obs);
  void note(const Entry& e, const ha::FallbackDecision& d);

  std::string destination_;
  const ha::Clock& clock_;
  Hooks hooks_;
  std::vector<std::unique_ptr<Entry>> watches_;
};

}  // namespace eipgate::control

// The `aws:` section of eipgate's YAML configuration: region, the private route tables to steer,
// how the service address moves (secondary IP or EIP), endpoint overrides and retry settings.
// Schema and examples: control/aws/README.md.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/schema_error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"

namespace YAML {
class Node;
}

namespace eipgate::aws {

enum class ServiceAddressMode {
  SecondaryIp,  // AssignPrivateIpAddresses(AllowReassignment): the EIP follows the private IP
  Eip,          // AssociateAddress(AllowReassociation) onto the new active's ENI
};

struct RouteTableSelection {
  std::vector<std::string> ids;             // rtb-...
  std::map<std::string, std::string> tags;  // all must match (tag:<key>=<value> filters)
  std::string destination = "0.0.0.0/0";    // the route that points at the active instance
};

// The most service addresses one pair moves (private_ips / allocation_ids entries). AWS's own
// limit is the data ENI's IPv4 addresses per interface minus its primary (ami/OPERATOR.md).
inline constexpr size_t kMaxServiceAddresses = 8;

// N service addresses, paired by index: private_ips[i] carries allocation_ids[i].
struct ServiceAddress {
  ServiceAddressMode mode = ServiceAddressMode::SecondaryIp;
  // secondary-ip: the IPs that move (1..8, required); eip: the IP each EIP lands on (empty only
  // with one EIP: it lands on the ENI's primary IP).
  std::vector<std::string> private_ips;
  // eip: required (1..8, as many as private_ips when those are given); secondary-ip: optional
  // (as many as private_ips), checked after a move: each must follow its private IP.
  std::vector<std::string> allocation_ids;

  // How many addresses move together (max of the two lists: they are equal when both are set).
  [[nodiscard]] size_t count() const { return std::max(private_ips.size(), allocation_ids.size()); }
  // private_ips[i], or "" (eip mode without private_ips: the primary IP).
  [[nodiscard]] std::string private_ip(size_t i) const {
    return i < private_ips.size() ? private_ips[i] : std::string();
  }
  [[nodiscard]] std::string allocation_id(size_t i) const {
    return i < allocation_ids.size() ? allocation_ids[i] : std::string();
  }
};

struct Endpoints {
  std::string ec2;          // empty = https://ec2.<region>.amazonaws.com (or .api.aws below)
  std::string imds;         // empty = http://169.254.169.254 (IPv6: http://[fd00:ec2::254])
  std::string cloudwatch;   // empty = https://monitoring.<region>.amazonaws.com
  std::string logs;         // empty = https://logs.<region>.amazonaws.com (or .api.aws below)
  bool dual_stack = false;  // default EC2/Logs endpoints https://<svc>.<region>.api.aws (v4 + v6)
};

struct AwsTimeouts {
  std::chrono::milliseconds connect{2000};
  std::chrono::milliseconds request{10000};
};

struct AwsConfig {
  std::string region;  // empty = from IMDS (placement/region)
  RouteTableSelection route_tables;
  ServiceAddress service_address;
  Endpoints endpoints;
  IpFamily ip_family = IpFamily::Any;  // EC2 calls: CURLOPT_IPRESOLVE (ipv6: no public IPv4)
  RetryPolicy retry;
  AwsTimeouts timeouts;
  std::chrono::seconds credentials_refresh_before{300};
};

// "file:line: reason", the error type of every config loader (common/schema_error.h).
using AwsConfigError = yaml_schema::SchemaError;

// Either a config or every error found (all of them, so one edit fixes the file).
struct AwsConfigResult {
  std::optional<AwsConfig> config;
  std::vector<AwsConfigError> errors;
};

// `node` is the value of the `aws:` key; `file` only labels errors.
[[nodiscard]] AwsConfigResult parse_aws_config(const YAML::Node& node, std::string_view file);
// Convenience: the `aws:` key of a whole document (missing = error at line 0).
[[nodiscard]] AwsConfigResult parse_aws_config_text(std::string_view yaml_text,
                                                    std::string_view file);

[[nodiscard]] std::string_view to_string(ServiceAddressMode mode);

}  // namespace eipgate::aws

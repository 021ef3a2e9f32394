// EC2 Query API client (Version 2016-11-15) for the calls failover needs: POST form-encoded,
// signed with libcurl's AWS SigV4, XML responses parsed into structs, errors typed (aws/error.h)
// and throttling/5xx/transport failures retried (aws/retry.h).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/aws/credentials.h"
#include "control/aws/error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"
#include "control/aws/service_client.h"

namespace eipgate::aws {

// EC2's endpoints: ec2.<region>.amazonaws.com (IPv4 only) and ec2.<region>.api.aws (dual stack).
using Ec2Options = ClientOptions;

// Filter.N.Name / Filter.N.Value.M; names as EC2 documents them ("tag:eipgate:az", "vpc-id").
struct Filter {
  std::string name;
  std::vector<std::string> values;
};

using Tags = std::map<std::string, std::string>;

struct Route {
  std::string destination_cidr;
  std::string gateway_id;  // "local", "igw-..."
  std::string instance_id;
  std::string network_interface_id;
  std::string nat_gateway_id;
  std::string state;   // active | blackhole
  std::string origin;  // CreateRouteTable | CreateRoute | EnableVgwRoutePropagation
};

struct RouteTableAssociation {
  std::string id;
  std::string subnet_id;  // empty for the main association
  bool main = false;
};

struct RouteTable {
  std::string id;
  std::string vpc_id;
  std::vector<Route> routes;
  std::vector<RouteTableAssociation> associations;
  Tags tags;

  // The route for exactly this destination, if any.
  [[nodiscard]] const Route* route_to(std::string_view destination_cidr) const;
};

struct Address {
  std::string public_ip;
  std::string allocation_id;
  std::string association_id;  // empty when not associated
  std::string instance_id;
  std::string network_interface_id;
  std::string private_ip;
  Tags tags;
};

struct PrivateIp {
  std::string address;
  bool primary = false;
  std::string public_ip;  // the associated Elastic IP, if any
  std::string allocation_id;
};

struct NetworkInterface {
  std::string id;
  std::string subnet_id;
  std::string vpc_id;
  std::string availability_zone;
  std::string mac;
  std::string status;
  std::string private_ip;  // primary
  bool source_dest_check = true;
  std::string instance_id;  // attachment; empty when detached
  int device_index = -1;
  std::vector<PrivateIp> private_ips;
  Tags tags;
};

struct InstanceStatus {
  std::string instance_id;
  std::string availability_zone;
  int state_code = 0;
  std::string state;            // running, stopped, ...
  std::string system_status;    // ok, impaired, initializing, insufficient-data, not-applicable
  std::string instance_status;  // same values
};

class Ec2Client : public ServiceClient {
 public:
  Ec2Client(HttpTransport& http, CredentialsProvider& credentials, Ec2Options options,
            RetryEnv env = RetryEnv::real());

  // Points the route for destination_cidr in the table at the ENI.
  void replace_route(const std::string& route_table_id, const std::string& destination_cidr,
                     const std::string& network_interface_id);
  // Points it at a NAT Gateway (the cross-AZ fallback's other target).
  void replace_route_to_nat_gateway(const std::string& route_table_id,
                                    const std::string& destination_cidr,
                                    const std::string& nat_gateway_id);
  [[nodiscard]] std::vector<RouteTable> describe_route_tables(
      const std::vector<std::string>& ids, const std::vector<Filter>& filters = {});
  // Adds or overwrites tags on EC2 resources (route tables, ENIs, ...), all in one call.
  void create_tags(const std::vector<std::string>& resource_ids, const Tags& tags);

  // Returns the new association id. With a private IP the EIP lands on that address of the ENI.
  std::string associate_address(const std::string& allocation_id,
                                const std::string& network_interface_id,
                                const std::string& private_ip, bool allow_reassociation);
  [[nodiscard]] std::vector<Address> describe_addresses(
      const std::vector<std::string>& allocation_ids, const std::vector<Filter>& filters = {});

  // Returns the addresses EC2 reports as assigned.
  std::vector<std::string> assign_private_ip_addresses(const std::string& network_interface_id,
                                                       const std::vector<std::string>& ips,
                                                       bool allow_reassignment);
  [[nodiscard]] std::vector<NetworkInterface> describe_network_interfaces(
      const std::vector<std::string>& ids, const std::vector<Filter>& filters = {});

  [[nodiscard]] std::vector<InstanceStatus> describe_instance_status(
      const std::vector<std::string>& instance_ids, bool include_all_instances = true);

  // One Query API call (Action + Version added, params sent in order), retried per the policy;
  // returns the XML body of a 2xx response or throws AwsError. (The describe_* methods above
  // follow nextToken; call() returns one page.)
  std::string call(std::string_view action,
                   const std::vector<std::pair<std::string, std::string>>& params);

 private:
  std::vector<std::string> call_paged(
      std::string_view action, const std::vector<std::pair<std::string, std::string>>& params);
};

// Response parsers, public so recorded responses can be tested without a server. They throw
// AwsError(Protocol) on XML that is not the expected response.
[[nodiscard]] std::vector<RouteTable> parse_describe_route_tables(std::string_view xml);
[[nodiscard]] std::vector<Address> parse_describe_addresses(std::string_view xml);
[[nodiscard]] std::vector<NetworkInterface> parse_describe_network_interfaces(std::string_view xml);
[[nodiscard]] std::vector<InstanceStatus> parse_describe_instance_status(std::string_view xml);
[[nodiscard]] std::string parse_associate_address(std::string_view xml);  // association id
[[nodiscard]] std::vector<std::string> parse_assign_private_ip_addresses(std::string_view xml);
// <return>true</return> of ReplaceRoute and friends; false is a Protocol error.
void parse_return_true(std::string_view xml, std::string_view action);
// nextToken of a Describe* response, empty when it is the last page.
[[nodiscard]] std::string parse_next_token(std::string_view xml);
// An error response (<Response><Errors><Error><Code>...) as a typed AwsError; a body that is not
// one gives a Server (5xx) or Protocol error carrying the status.
[[nodiscard]] AwsError parse_error_response(std::string_view xml, long http_status);

// The form body of a Query API call: Action=..&Version=2016-11-15&k=v..., values url-encoded.
[[nodiscard]] std::string encode_query(
    std::string_view action, const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace eipgate::aws

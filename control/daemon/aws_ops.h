// What eipgate-control does in AWS: learn who and where it is (IMDSv2), take over (move the
// service address, ReplaceRoute on every private route table) and check where the routes point.
// Blocking calls (libcurl, retries with backoff): the daemon runs them on its AWS worker thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/aws/config.h"
#include "control/aws/credentials.h"
#include "control/aws/ec2.h"
#include "control/aws/http.h"
#include "control/aws/imds.h"
#include "control/ha/state_machine.h"

namespace eipgate::control {

struct Identity {
  std::string instance_id;
  std::string region;
  std::string availability_zone;
  std::string eni;       // our data ENI
  std::string peer_eni;  // the peer's data ENI; empty when unknown
};

// One service address's part in the last takeover (status: service_address.addresses).
struct AddressMove {
  std::string private_ip;     // "" in eip mode without private_ips (the ENI's primary IP)
  std::string allocation_id;  // "" in secondary-ip mode without allocation_ids
  bool moved = false;         // the move call succeeded
  std::string detail;         // "moved", the error, or the post-move check's finding
};

struct RouteReport {
  ha::RouteTarget target = ha::RouteTarget::Unknown;
  std::string detail;  // per table, for the log and status
};

class AwsOps {
 public:
  // takeover_env: the sleep, clock and randomness of the takeover's retries (tests inject them).
  explicit AwsOps(aws::AwsConfig config, aws::RetryEnv takeover_env = aws::RetryEnv::real());

  // IMDS identity, the data ENI (data_mac, else the only ENI, else device number 1), the EC2
  // client, and the peer's ENI (peer_eni, else the ENI holding peer_address). Throws AwsError or
  // std::runtime_error with a message for the log.
  Identity bootstrap(const std::string& data_mac, const std::string& peer_eni,
                     const std::string& peer_address);

  // Moves every service address to our ENI and points every route table at it. Throws on
  // failure (the message names each address or table that failed). Returns a summary for the
  // log. The addresses and each route table's ReplaceRoute are independent and issued
  // concurrently, through a client with the takeover's retry schedule
  // (aws::takeover_retry_policy: short backoff that fits the failover gap budget): secondary-ip
  // mode moves all the private IPs in one AssignPrivateIpAddresses; eip mode issues one
  // AssociateAddress per EIP, side by side.
  std::string take_over();
  // Each configured service address and how the last takeover's move went for it (nothing moved
  // yet: moved false, detail "not moved yet"). Any thread.
  [[nodiscard]] std::vector<AddressMove> address_moves() const;
  // Where the configured route tables' default route points. Never throws (Unknown on error).
  RouteReport check_routes();
  // Writes the liveness lease (ha/fallback.h, kLeaseTag = value) on our route tables in one
  // CreateTags, through its own client with the takeover's short retry schedule; the tables are
  // those the last route check or takeover found (looked up once if none yet). Returns how many
  // tables were tagged; throws on failure. Any thread (it shares nothing with the AWS worker but
  // the table list, under a lock).
  size_t renew_lease(const std::string& value);

  [[nodiscard]] uint64_t retries() const;
  // EC2 calls that failed for good, by error kind ("throttling", "auth", ...), every kind listed.
  [[nodiscard]] std::map<std::string, uint64_t> errors() const;
  [[nodiscard]] uint64_t credential_refreshes() const;
  // The client bootstrap() made (null before); AWS worker thread only.
  [[nodiscard]] aws::Ec2Client* ec2() { return ec2_.get(); }
  // The credentials bootstrap() set up (null before); shared with the CloudWatch client.
  [[nodiscard]] std::shared_ptr<aws::CredentialsProvider> credentials() const {
    return credentials_;
  }
  // Tables another AZ's pair owns (ha.fallback_for): never ours for takeover or fencing, even
  // when aws.route_tables' tags would match them.
  void exclude_tables(std::vector<std::string> ids) { excluded_ = std::move(ids); }
  [[nodiscard]] const Identity& identity() const { return identity_; }

 private:
  std::vector<aws::RouteTable> tables(aws::Ec2Client& ec2);
  std::string move_service_address();
  std::string move_secondary_ips(std::vector<AddressMove>& moves);
  std::string move_eips(std::vector<AddressMove>& moves);

  aws::AwsConfig config_;
  aws::CurlTransport http_;
  std::unique_ptr<aws::ImdsClient> imds_;
  std::shared_ptr<aws::CredentialsProvider> credentials_;
  std::unique_ptr<aws::Ec2Client> ec2_;
  aws::RetryEnv takeover_env_;
  std::unique_ptr<aws::Ec2Client> takeover_ec2_;  // the same calls, takeover_retry_policy
  std::unique_ptr<aws::Ec2Client> lease_ec2_;     // renew_lease() only, takeover_retry_policy
  std::mutex table_ids_mutex_;
  std::vector<std::string> table_ids_;  // our tables as last resolved (renew_lease)
  void remember_tables(const std::vector<aws::RouteTable>& all);
  Identity identity_;
  std::vector<std::string> excluded_;
  mutable std::mutex moves_mutex_;
  std::vector<AddressMove> moves_;  // the last takeover's, per service address
};

}  // namespace eipgate::control

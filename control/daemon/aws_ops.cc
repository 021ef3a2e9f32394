// eipgate-control's AWS steps: bootstrap from IMDSv2, take over, route checks.
#include "control/daemon/aws_ops.h"

#include <algorithm>
#include <stdexcept>

#include "common/log.h"
#include "control/aws/error.h"

namespace eipgate::control {

AwsOps::AwsOps(aws::AwsConfig config) : config_(std::move(config)) {}

Identity AwsOps::bootstrap(const std::string& data_mac, const std::string& peer_eni,
                           const std::string& peer_address) {
  aws::ImdsOptions io;
  if (!config_.endpoints.imds.empty()) io.endpoint = config_.endpoints.imds;
  imds_ = std::make_unique<aws::ImdsClient>(http_, io);
  Identity id;
  const auto who = imds_->identity();
  id.instance_id = who.instance_id;
  id.availability_zone = who.availability_zone;
  id.region = config_.region.empty() ? who.region : config_.region;

  const auto enis = imds_->enis();
  if (enis.empty()) throw std::runtime_error("IMDS lists no network interfaces");
  const aws::ImdsEni* data = nullptr;
  for (const auto& e : enis) {
    if (!data_mac.empty() ? e.mac == data_mac : enis.size() == 1 || e.device_number == 1) {
      data = &e;
    }
  }
  if (data == nullptr) {
    throw std::runtime_error(data_mac.empty()
                                 ? "several ENIs and none with device number 1: set ha.data_mac"
                                 : "no ENI with the MAC " + data_mac + " (ha.data_mac)");
  }
  id.eni = data->interface_id;

  auto fallback = std::make_shared<aws::ImdsCredentialsProvider>(
      *imds_, std::chrono::duration_cast<std::chrono::seconds>(config_.credentials_refresh_before));
  credentials_ = std::make_shared<aws::ChainCredentialsProvider>(fallback);
  aws::Ec2Options eo;
  eo.region = id.region;
  eo.endpoint = config_.endpoints.ec2;
  eo.connect_timeout = config_.timeouts.connect;
  eo.timeout = config_.timeouts.request;
  eo.retry = config_.retry;
  ec2_ = std::make_unique<aws::Ec2Client>(http_, *credentials_, eo);

  id.peer_eni = peer_eni;
  if (id.peer_eni.empty() && !peer_address.empty()) {
    try {
      const auto found =
          ec2_->describe_network_interfaces({}, {{"addresses.private-ip-address", {peer_address}}});
      if (found.size() == 1) id.peer_eni = found[0].id;
    } catch (const aws::AwsError& e) {
      log::get()->warn("cannot look up the peer's ENI by {}: {}", peer_address, e.what());
    }
  }
  identity_ = id;
  return id;
}

std::vector<aws::RouteTable> AwsOps::tables() {
  std::vector<aws::Filter> filters;
  for (const auto& [k, v] : config_.route_tables.tags) filters.push_back({"tag:" + k, {v}});
  auto all = ec2_->describe_route_tables(config_.route_tables.ids, filters);
  std::erase_if(all, [this](const aws::RouteTable& t) {
    return std::find(excluded_.begin(), excluded_.end(), t.id) != excluded_.end();
  });
  return all;
}

std::string AwsOps::take_over() {
  const auto& sa = config_.service_address;
  std::string summary;
  if (sa.mode == aws::ServiceAddressMode::SecondaryIp) {
    ec2_->assign_private_ip_addresses(identity_.eni, {sa.private_ip}, true);
    summary = "secondary IP " + sa.private_ip + " -> " + identity_.eni;
  } else {
    ec2_->associate_address(sa.allocation_id, identity_.eni, sa.private_ip, true);
    summary = "EIP " + sa.allocation_id + " -> " + identity_.eni;
  }
  const auto all = tables();
  if (all.empty()) throw std::runtime_error("no route table matches aws.route_tables");
  for (const auto& t : all) {
    const auto* r = t.route_to(config_.route_tables.destination);
    if (r != nullptr && r->network_interface_id == identity_.eni && r->state != "blackhole") {
      continue;  // already ours: a no-op call saved
    }
    ec2_->replace_route(t.id, config_.route_tables.destination, identity_.eni);
    summary += ", " + t.id;
  }
  return summary;
}

RouteReport AwsOps::check_routes() {
  RouteReport rep;
  try {
    const auto all = tables();
    if (all.empty()) {
      rep.detail = "no route table matches aws.route_tables";
      return rep;
    }
    bool me = true;
    bool peer = true;
    for (const auto& t : all) {
      const auto* r = t.route_to(config_.route_tables.destination);
      const std::string eni =
          r != nullptr && r->state != "blackhole" ? r->network_interface_id : "";
      rep.detail += (rep.detail.empty() ? "" : ", ") + t.id + "->" + (eni.empty() ? "none" : eni);
      me &= eni == identity_.eni;
      // Without a known peer ENI, a live route at another ENI counts as the peer's (see README).
      peer &= !eni.empty() && eni != identity_.eni &&
              (identity_.peer_eni.empty() || eni == identity_.peer_eni);
    }
    rep.target = me     ? ha::RouteTarget::Me
                 : peer ? ha::RouteTarget::Peer
                        : ha::RouteTarget::Elsewhere;
  } catch (const std::exception& e) {
    rep.detail = std::string("route check failed: ") + e.what();
  }
  return rep;
}

uint64_t AwsOps::retries() const { return ec2_ ? ec2_->retrier().retries() : 0; }

std::map<std::string, uint64_t> AwsOps::errors() const {
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < aws::kErrorKindCount; ++i) {
    const auto kind = static_cast<aws::ErrorKind>(i);
    out[std::string(aws::to_string(kind))] = ec2_ ? ec2_->errors(kind) : 0;
  }
  return out;
}

uint64_t AwsOps::credential_refreshes() const { return ec2_ ? ec2_->credential_refreshes() : 0; }

}  // namespace eipgate::control

// eipgate-control's AWS steps: bootstrap from IMDSv2, take over, route checks.
#include "control/daemon/aws_ops.h"

#include <algorithm>
#include <exception>
#include <future>
#include <stdexcept>

#include "common/log.h"
#include "control/aws/error.h"
#include "control/ha/fallback.h"

namespace eipgate::control {

AwsOps::AwsOps(aws::AwsConfig config, aws::RetryEnv takeover_env)
    : config_(std::move(config)), takeover_env_(std::move(takeover_env)) {}

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
  eo.dual_stack = config_.endpoints.dual_stack;
  eo.ip_family = config_.ip_family;
  eo.connect_timeout = config_.timeouts.connect;
  eo.timeout = config_.timeouts.request;
  eo.retry = config_.retry;
  ec2_ = std::make_unique<aws::Ec2Client>(http_, *credentials_, eo);
  aws::Ec2Options takeover = eo;
  takeover.retry = aws::takeover_retry_policy(eo.retry);
  takeover_ec2_ = std::make_unique<aws::Ec2Client>(http_, *credentials_, takeover, takeover_env_);
  lease_ec2_ = std::make_unique<aws::Ec2Client>(http_, *credentials_, takeover, takeover_env_);

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

std::vector<aws::RouteTable> AwsOps::tables(aws::Ec2Client& ec2) {
  std::vector<aws::Filter> filters;
  for (const auto& [k, v] : config_.route_tables.tags) filters.push_back({"tag:" + k, {v}});
  auto all = ec2.describe_route_tables(config_.route_tables.ids, filters);
  std::erase_if(all, [this](const aws::RouteTable& t) {
    return std::find(excluded_.begin(), excluded_.end(), t.id) != excluded_.end();
  });
  return all;
}

void AwsOps::remember_tables(const std::vector<aws::RouteTable>& all) {
  std::vector<std::string> ids;
  ids.reserve(all.size());
  for (const auto& t : all) ids.push_back(t.id);
  const std::lock_guard lock(table_ids_mutex_);
  table_ids_ = std::move(ids);
}

size_t AwsOps::renew_lease(const std::string& value) {
  if (!lease_ec2_) throw std::runtime_error("no EC2 client yet");
  std::vector<std::string> ids;
  {
    const std::lock_guard lock(table_ids_mutex_);
    ids = table_ids_;
  }
  if (ids.empty()) {
    remember_tables(tables(*lease_ec2_));
    const std::lock_guard lock(table_ids_mutex_);
    ids = table_ids_;
  }
  if (ids.empty()) throw std::runtime_error("no route table matches aws.route_tables");
  lease_ec2_->create_tags(ids, {{std::string(ha::kLeaseTag), value}});
  return ids.size();
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string label(const AddressMove& m) {
  if (m.allocation_id.empty()) return m.private_ip;
  return m.allocation_id + (m.private_ip.empty() ? "" : " (" + m.private_ip + ")");
}

}  // namespace

std::vector<AddressMove> AwsOps::address_moves() const {
  const std::lock_guard lock(moves_mutex_);
  if (!moves_.empty()) return moves_;
  std::vector<AddressMove> out;
  const auto& sa = config_.service_address;
  for (size_t i = 0; i < sa.count(); ++i) {
    out.push_back(AddressMove{sa.private_ip(i), sa.allocation_id(i), false, "not moved yet"});
  }
  return out;
}

std::string AwsOps::move_secondary_ips(std::vector<AddressMove>& moves) {
  const auto& sa = config_.service_address;
  // All the addresses in one call: the gap is one call's, however many there are.
  try {
    takeover_ec2_->assign_private_ip_addresses(identity_.eni, sa.private_ips, true);
  } catch (const std::exception& e) {
    for (auto& m : moves) m.detail = e.what();
    throw std::runtime_error("secondary IPs " + join(sa.private_ips) + " -> " + identity_.eni +
                             ": " + e.what());
  }
  for (auto& m : moves) {
    m.moved = true;
    m.detail = "moved";
  }
  std::string summary = "secondary IPs " + join(sa.private_ips) + " -> " + identity_.eni;
  if (sa.allocation_ids.empty()) return summary;
  // The EIPs follow their private IPs in EC2; check that each did (a mismatch is logged and
  // shown in status, not a failed takeover: the private IPs and routes are ours either way).
  std::vector<std::string> problems;
  try {
    const auto found = takeover_ec2_->describe_addresses(sa.allocation_ids);
    for (auto& m : moves) {
      const auto it = std::find_if(found.begin(), found.end(), [&m](const aws::Address& a) {
        return a.allocation_id == m.allocation_id;
      });
      std::string why;
      if (it == found.end()) {
        why = "not found";
      } else if (it->network_interface_id != identity_.eni || it->private_ip != m.private_ip) {
        why = "on " + (it->network_interface_id.empty()
                           ? std::string("nothing")
                           : it->network_interface_id + " " + it->private_ip);
      }
      if (!why.empty()) {
        m.detail = "moved; EIP " + m.allocation_id + " " + why;
        problems.push_back(m.allocation_id + " " + why);
      }
    }
  } catch (const std::exception& e) {
    problems.push_back(std::string("DescribeAddresses failed: ") + e.what());
    for (auto& m : moves) m.detail = "moved; EIP not checked";
  }
  if (problems.empty()) return summary + " (EIPs followed)";
  log::get()->warn("service address check after the move: {}", join(problems));
  return summary + " (EIP check: " + join(problems) + ")";
}

std::string AwsOps::move_eips(std::vector<AddressMove>& moves) {
  // One AssociateAddress per EIP, all at once (each with its own retries); every one is waited
  // for, then the failures are reported together, each naming its address.
  std::vector<std::future<void>> calls;
  calls.reserve(moves.size());
  for (const auto& m : moves) {
    calls.push_back(std::async(std::launch::async, [this, &m] {
      takeover_ec2_->associate_address(m.allocation_id, identity_.eni, m.private_ip, true);
    }));
  }
  std::vector<std::string> ok;
  std::vector<std::string> failed;
  for (size_t i = 0; i < calls.size(); ++i) {
    try {
      calls[i].get();
      moves[i].moved = true;
      moves[i].detail = "moved";
      ok.push_back(label(moves[i]));
    } catch (const std::exception& e) {
      moves[i].detail = e.what();
      failed.push_back("EIP " + label(moves[i]) + ": " + e.what());
    }
  }
  if (!failed.empty()) {
    throw std::runtime_error(join(failed) + (ok.empty() ? "" : " (moved: " + join(ok) + ")"));
  }
  return "EIPs " + join(ok) + " -> " + identity_.eni;
}

std::string AwsOps::move_service_address() {
  const auto& sa = config_.service_address;
  std::vector<AddressMove> moves;
  for (size_t i = 0; i < sa.count(); ++i) {
    moves.push_back(AddressMove{sa.private_ip(i), sa.allocation_id(i), false, "moving"});
  }
  const auto publish = [this, &moves] {
    const std::lock_guard lock(moves_mutex_);
    moves_ = moves;
  };
  try {
    std::string summary = sa.mode == aws::ServiceAddressMode::SecondaryIp
                              ? move_secondary_ips(moves)
                              : move_eips(moves);
    publish();
    return summary;
  } catch (...) {
    publish();
    throw;
  }
}

std::string AwsOps::take_over() {
  // The addresses and the routes are independent: the addresses move on their own thread(s)
  // while the tables are read and each ReplaceRoute runs on one of its own, so throttling of one
  // call delays only that call. Every call is waited for before the outcome is reported.
  auto address = std::async(std::launch::async, [this] { return move_service_address(); });
  std::string routes;
  std::exception_ptr routes_error;
  try {
    const auto all = tables(*takeover_ec2_);
    if (all.empty()) throw std::runtime_error("no route table matches aws.route_tables");
    remember_tables(all);
    std::vector<std::future<void>> calls;
    for (const auto& t : all) {
      const auto* r = t.route_to(config_.route_tables.destination);
      if (r != nullptr && r->network_interface_id == identity_.eni && r->state != "blackhole") {
        continue;  // already ours: a no-op call saved
      }
      calls.push_back(std::async(std::launch::async, [this, id = t.id] {
        takeover_ec2_->replace_route(id, config_.route_tables.destination, identity_.eni);
      }));
      routes += ", " + t.id;
    }
    for (auto& c : calls) {
      try {
        c.get();
      } catch (...) {
        if (!routes_error) routes_error = std::current_exception();
      }
    }
  } catch (...) {
    routes_error = std::current_exception();
  }
  std::string summary;
  try {
    summary = address.get();
  } catch (const std::exception& e) {
    if (!routes_error) throw;
    // Both failed: one message names them all.
    std::string routes_what = "unknown error";
    try {
      std::rethrow_exception(routes_error);
    } catch (const std::exception& r) {
      routes_what = r.what();
    } catch (...) {
    }
    throw std::runtime_error(std::string(e.what()) + "; routes: " + routes_what);
  }
  if (routes_error) std::rethrow_exception(routes_error);
  return summary + routes;
}

RouteReport AwsOps::check_routes() {
  RouteReport rep;
  try {
    const auto all = tables(*ec2_);
    if (all.empty()) {
      rep.detail = "no route table matches aws.route_tables";
      return rep;
    }
    remember_tables(all);
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

uint64_t AwsOps::retries() const {
  return ec2_ ? ec2_->retrier().retries() + takeover_ec2_->retrier().retries() +
                    lease_ec2_->retrier().retries()
              : 0;
}

std::map<std::string, uint64_t> AwsOps::errors() const {
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < aws::kErrorKindCount; ++i) {
    const auto kind = static_cast<aws::ErrorKind>(i);
    out[std::string(aws::to_string(kind))] =
        ec2_ ? ec2_->errors(kind) + takeover_ec2_->errors(kind) + lease_ec2_->errors(kind) : 0;
  }
  return out;
}

uint64_t AwsOps::credential_refreshes() const {
  return ec2_ ? ec2_->credential_refreshes() + takeover_ec2_->credential_refreshes() +
                    lease_ec2_->credential_refreshes()
              : 0;
}

}  // namespace eipgate::control

// Parsing and validation of the `aws:` configuration section; every error carries file:line.
#include "control/aws/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <regex>

#include "common/yaml_schema.h"

namespace eipgate::aws {
namespace {

using std::chrono::milliseconds;

using yaml_schema::line_of;

// One section of the file: known keys, duplicates and typos reported against their lines.
class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void error(int line, std::string reason) {
    errors_.push_back(AwsConfigError{file_, line, std::move(reason)});
  }
  std::vector<AwsConfigError> take_errors() { return std::move(errors_); }
  [[nodiscard]] bool ok() const { return errors_.empty(); }

  using Entry = yaml_schema::Entry;

  // The entries of a mapping; unknown or duplicate keys become errors and are left out.
  std::vector<Entry> mapping(const YAML::Node& node, int line, const std::string& path,
                             std::initializer_list<std::string_view> allowed) {
    if (node.IsNull()) {
      error(line, path + ": expected a mapping, got nothing");
      return {};
    }
    std::vector<yaml_schema::Issue> issues;
    std::vector<Entry> out = yaml_schema::map_entries(node, line, path, allowed, &issues);
    for (auto& i : issues) error(i.line, std::move(i.reason));
    return out;
  }

  std::optional<std::string> scalar(const Entry& e, const std::string& path) {
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      error(e.line, path + ": expected a non-empty value");
      return std::nullopt;
    }
    return e.value.Scalar();
  }

  std::optional<milliseconds> duration(const Entry& e, const std::string& path, milliseconds min,
                                       milliseconds max) {
    auto text = scalar(e, path);
    if (!text) return std::nullopt;
    const std::string& s = *text;
    std::string why;
    const auto ms = yaml_schema::parse_duration_ms(s, &why);
    if (!ms) {
      error(e.line, path + ": " + why);
      return std::nullopt;
    }
    const milliseconds d(static_cast<int64_t>(*ms));
    if (d < min || d > max) {
      error(e.line, path + ": " + s + " is out of range (" + std::to_string(min.count()) +
                        " ms to " + std::to_string(max.count()) + " ms)");
      return std::nullopt;
    }
    return d;
  }

 private:
  std::string file_;
  std::vector<AwsConfigError> errors_;
};

const std::regex kRegion(R"(^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$)");
const std::regex kRouteTableId(R"(^rtb-[0-9a-f]{8,17}$)");
const std::regex kAllocationId(R"(^eipalloc-[0-9a-f]{8,17}$)");
const std::regex kUrl(R"(^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]+)?(/[A-Za-z0-9._~\-/]*)?$)");

void parse_route_tables(Parser& p, const YAML::Node& node, int line, AwsConfig& cfg) {
  const std::string path = "aws.route_tables";
  bool any = false;
  for (const auto& e : p.mapping(node, line, path, {"ids", "tags", "destination"})) {
    if (e.key == "ids") {
      if (!e.value.IsSequence()) {
        p.error(e.line, path + ".ids: expected a list of route table ids");
        continue;
      }
      for (const auto& item : e.value) {
        const std::string id = item.IsScalar() ? item.Scalar() : "";
        if (!std::regex_match(id, kRouteTableId)) {
          p.error(line_of(item), path + ".ids: '" + id + "' is not a route table id (rtb-<hex>)");
        } else if (std::find(cfg.route_tables.ids.begin(), cfg.route_tables.ids.end(), id) !=
                   cfg.route_tables.ids.end()) {
          p.error(line_of(item), path + ".ids: " + id + " is listed twice");
        } else {
          cfg.route_tables.ids.push_back(id);
          any = true;
        }
      }
    } else if (e.key == "tags") {
      if (!e.value.IsMap()) {
        p.error(e.line, path + ".tags: expected a mapping of tag key to value");
        continue;
      }
      for (const auto& kv : e.value) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar() || kv.first.Scalar().empty()) {
          p.error(line_of(kv.first), path + ".tags: keys and values must be plain strings");
          continue;
        }
        cfg.route_tables.tags[kv.first.Scalar()] = kv.second.Scalar();
        any = true;
      }
    } else if (e.key == "destination") {
      auto v = p.scalar(e, path + ".destination");
      if (!v) continue;
      std::string why;
      if (!yaml_schema::parse_network(*v, &why)) {
        p.error(e.line, path + ".destination: " + why);
      } else {
        cfg.route_tables.destination = *v;
      }
    }
  }
  if (!any) p.error(line, path + ": needs 'ids' or 'tags' (the private route tables to steer)");
}

// One of the paired lists of service_address: `private_ip(s)` or `allocation_id(s)`, the
// one-element shorthand or the list form (not both), each entry checked, no duplicates.
class AddressList {
 public:
  AddressList(std::string path, std::string one, std::string many)
      : path_(std::move(path)), one_(std::move(one)), many_(std::move(many)) {}

  // True when `e` is one of ours (and consumed).
  bool take(Parser& p, const Parser::Entry& e,
            const std::function<bool(const std::string&, std::string*)>& valid) {
    if (e.key != one_ && e.key != many_) return false;
    if (line_ != 0) {
      p.error(e.line, path_ + ": give '" + one_ + "' or '" + many_ + "', not both (" + key_ +
                          " on line " + std::to_string(line_) + ")");
      bad_ = true;
      return true;
    }
    line_ = e.line;
    key_ = e.key;
    if (e.key == one_) {
      if (!e.value.IsScalar() || e.value.Scalar().empty()) {
        p.error(e.line, path_ + "." + one_ + ": expected a non-empty value");
        bad_ = true;
      } else {
        add(p, e.value.Scalar(), e.line, path_ + "." + one_, valid);
      }
      return true;
    }
    const std::string lp = path_ + "." + many_;
    if (!e.value.IsSequence() || e.value.size() == 0) {
      p.error(e.line, lp + ": expected a list of 1 to " + std::to_string(kMaxServiceAddresses) +
                          " entries");
      bad_ = true;
      return true;
    }
    if (e.value.size() > kMaxServiceAddresses) {
      p.error(e.line, lp + ": " + std::to_string(e.value.size()) + " entries; at most " +
                          std::to_string(kMaxServiceAddresses) + " service addresses per pair");
      bad_ = true;
    }
    for (const auto& item : e.value) {
      const int line = line_of(item);
      if (!item.IsScalar() || item.Scalar().empty()) {
        p.error(line, lp + ": expected a non-empty value");
        bad_ = true;
        continue;
      }
      add(p, item.Scalar(), line, lp, valid);
    }
    return true;
  }

  [[nodiscard]] bool given() const { return line_ != 0; }
  [[nodiscard]] bool bad() const { return bad_; }
  [[nodiscard]] int line() const { return line_; }
  [[nodiscard]] const std::string& key() const { return key_; }
  std::vector<std::string> values;

 private:
  void add(Parser& p, const std::string& v, int line, const std::string& where,
           const std::function<bool(const std::string&, std::string*)>& valid) {
    std::string why;
    if (!valid(v, &why)) {
      p.error(line, where + ": " + why);
      bad_ = true;
    } else if (std::find(values.begin(), values.end(), v) != values.end()) {
      p.error(line, where + ": " + v + " is listed twice");
      bad_ = true;
    } else {
      values.push_back(v);
    }
  }

  std::string path_, one_, many_, key_;
  int line_ = 0;
  bool bad_ = false;
};

void parse_service_address(Parser& p, const YAML::Node& node, int line, AwsConfig& cfg) {
  const std::string path = "aws.service_address";
  bool have_mode = false;
  int mode_line = line;
  AddressList ips(path, "private_ip", "private_ips");
  AddressList allocs(path, "allocation_id", "allocation_ids");
  const auto valid_ip = [](const std::string& v, std::string* why) {
    return yaml_schema::parse_address(v, why).has_value();
  };
  const auto valid_alloc = [](const std::string& v, std::string* why) {
    if (std::regex_match(v, kAllocationId)) return true;
    *why = "'" + v + "' is not an allocation id (eipalloc-<hex>)";
    return false;
  };
  for (const auto& e :
       p.mapping(node, line, path,
                 {"mode", "private_ip", "private_ips", "allocation_id", "allocation_ids"})) {
    if (ips.take(p, e, valid_ip) || allocs.take(p, e, valid_alloc)) continue;
    auto v = p.scalar(e, path + "." + e.key);
    have_mode = true;  // the only other key; a missing value is reported already
    if (!v) continue;
    mode_line = e.line;
    if (*v == "secondary-ip") {
      cfg.service_address.mode = ServiceAddressMode::SecondaryIp;
    } else if (*v == "eip") {
      cfg.service_address.mode = ServiceAddressMode::Eip;
    } else {
      p.error(e.line, path + ".mode: '" + *v + "' is not 'secondary-ip' or 'eip'");
    }
  }
  if (!have_mode) {
    p.error(line, path + ": needs 'mode' (secondary-ip or eip)");
    return;
  }
  const bool eip = cfg.service_address.mode == ServiceAddressMode::Eip;
  if (!eip && !ips.given()) {
    p.error(mode_line, path +
                           ": mode secondary-ip needs 'private_ips' (or 'private_ip'): the "
                           "secondary IPs that move");
  }
  if (eip && !allocs.given()) {
    p.error(mode_line, path +
                           ": mode eip needs 'allocation_ids' (or 'allocation_id'): the Elastic "
                           "IPs to re-associate");
  }
  if (ips.bad() || allocs.bad()) return;
  const size_t n_ips = ips.values.size();
  const size_t n_allocs = allocs.values.size();
  if (eip && !ips.given() && n_allocs > 1) {
    p.error(allocs.line(), path + ": mode eip with " + std::to_string(n_allocs) +
                               " allocation_ids needs as many 'private_ips' (paired by index: "
                               "each EIP lands on its own private IP)");
  } else if (ips.given() && allocs.given() && n_ips != n_allocs) {
    p.error(allocs.line(), path + "." + allocs.key() + ": " + std::to_string(n_allocs) +
                               " allocation id(s) for " + std::to_string(n_ips) + " " + ips.key() +
                               " (paired by index: one each)");
  }
  cfg.service_address.private_ips = std::move(ips.values);
  cfg.service_address.allocation_ids = std::move(allocs.values);
}

AwsConfigResult parse_section(const YAML::Node& node, int line, std::string_view file) {
  Parser p(file);
  AwsConfig cfg;
  bool have_route_tables = false, have_service = false;
  int ip_family_line = line;
  if (!node || node.IsNull()) {
    p.error(line, "aws: the section is empty (needs route_tables and service_address)");
    return AwsConfigResult{std::nullopt, p.take_errors()};
  }
  for (const auto& e : p.mapping(node, line, "aws",
                                 {"region", "route_tables", "service_address", "endpoints",
                                  "ip_family", "retry", "timeouts", "credentials"})) {
    const std::string path = "aws." + e.key;
    if (e.key == "region") {
      if (auto v = p.scalar(e, path)) {
        if (!std::regex_match(*v, kRegion)) {
          p.error(e.line, path + ": '" + *v + "' is not an AWS region name (like us-east-1)");
        } else {
          cfg.region = *v;
        }
      }
    } else if (e.key == "route_tables") {
      have_route_tables = true;
      parse_route_tables(p, e.value, e.line, cfg);
    } else if (e.key == "service_address") {
      have_service = true;
      parse_service_address(p, e.value, e.line, cfg);
    } else if (e.key == "ip_family") {
      ip_family_line = e.line;
      if (auto v = p.scalar(e, path)) {
        if (*v == "any") {
          cfg.ip_family = IpFamily::Any;
        } else if (*v == "ipv4") {
          cfg.ip_family = IpFamily::V4;
        } else if (*v == "ipv6") {
          cfg.ip_family = IpFamily::V6;
        } else {
          p.error(e.line, path + ": '" + *v + "' is not 'any', 'ipv4' or 'ipv6'");
        }
      }
    } else if (e.key == "endpoints") {
      for (const auto& s :
           p.mapping(e.value, e.line, path, {"ec2", "imds", "cloudwatch", "logs", "dual_stack"})) {
        auto v = p.scalar(s, path + "." + s.key);
        if (!v) continue;
        if (s.key == "dual_stack") {
          std::string why;
          if (auto b = yaml_schema::parse_bool(*v, &why)) {
            cfg.endpoints.dual_stack = *b;
          } else {
            p.error(s.line, path + ".dual_stack: " + why);
          }
          continue;
        }
        if (!std::regex_match(*v, kUrl)) {
          p.error(s.line, path + "." + s.key + ": '" + *v + "' is not an http(s) URL");
          continue;
        }
        (s.key == "ec2"    ? cfg.endpoints.ec2
         : s.key == "imds" ? cfg.endpoints.imds
         : s.key == "logs" ? cfg.endpoints.logs
                           : cfg.endpoints.cloudwatch) = *v;
      }
    } else if (e.key == "retry") {
      for (const auto& s : p.mapping(e.value, e.line, path,
                                     {"max_attempts", "base_delay", "max_delay", "deadline"})) {
        const std::string sp = path + "." + s.key;
        if (s.key == "max_attempts") {
          auto v = p.scalar(s, sp);
          int n = 0;
          if (v) {
            auto [q, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
            if (ec != std::errc() || q != v->data() + v->size() || n < 1 || n > 20) {
              p.error(s.line, sp + ": '" + *v + "' is not a whole number from 1 to 20");
            } else {
              cfg.retry.max_attempts = n;
            }
          }
        } else if (s.key == "base_delay") {
          if (auto d = p.duration(s, sp, milliseconds(1), std::chrono::minutes(1)))
            cfg.retry.base_delay = *d;
        } else if (s.key == "max_delay") {
          if (auto d = p.duration(s, sp, milliseconds(1), std::chrono::minutes(5)))
            cfg.retry.max_delay = *d;
        } else if (s.key == "deadline") {
          if (auto d = p.duration(s, sp, milliseconds(0), std::chrono::hours(1)))
            cfg.retry.deadline = *d;
        }
      }
      if (cfg.retry.base_delay > cfg.retry.max_delay) {
        p.error(e.line, path + ": base_delay is longer than max_delay");
      }
    } else if (e.key == "timeouts") {
      for (const auto& s : p.mapping(e.value, e.line, path, {"connect", "request"})) {
        if (auto d = p.duration(s, path + "." + s.key, milliseconds(1), std::chrono::minutes(5))) {
          (s.key == "connect" ? cfg.timeouts.connect : cfg.timeouts.request) = *d;
        }
      }
    } else if (e.key == "credentials") {
      for (const auto& s : p.mapping(e.value, e.line, path, {"refresh_before"})) {
        if (auto d = p.duration(s, path + "." + s.key, milliseconds(0), std::chrono::hours(1))) {
          cfg.credentials_refresh_before = std::chrono::duration_cast<std::chrono::seconds>(*d);
        }
      }
    }
  }
  if (cfg.ip_family == IpFamily::V6 && !cfg.endpoints.dual_stack && cfg.endpoints.ec2.empty()) {
    p.error(ip_family_line,
            "aws.ip_family: ipv6 needs endpoints.dual_stack: true (ec2.<region>.amazonaws.com is "
            "IPv4 only) or an explicit endpoints.ec2");
  }
  if (node.IsMap()) {
    if (!have_route_tables)
      p.error(line, "aws: missing 'route_tables' (the private route tables to steer)");
    if (!have_service)
      p.error(line, "aws: missing 'service_address' (how the address moves on failover)");
  }
  if (!p.ok()) return AwsConfigResult{std::nullopt, p.take_errors()};
  return AwsConfigResult{std::move(cfg), {}};
}

}  // namespace

std::string_view to_string(ServiceAddressMode mode) {
  return mode == ServiceAddressMode::Eip ? "eip" : "secondary-ip";
}

AwsConfigResult parse_aws_config(const YAML::Node& node, std::string_view file) {
  return parse_section(node, node ? line_of(node) : 0, file);
}

AwsConfigResult parse_aws_config_text(std::string_view yaml_text, std::string_view file) {
  yaml_schema::Issue syntax;
  const std::optional<YAML::Node> doc = yaml_schema::load_document(std::string(yaml_text), &syntax);
  if (!doc) {
    return AwsConfigResult{std::nullopt,
                           {AwsConfigError{std::string(file), syntax.line, syntax.reason}}};
  }
  const YAML::Node& root = *doc;
  if (!root.IsMap()) {
    return AwsConfigResult{std::nullopt,
                           {AwsConfigError{std::string(file), 0, "expected a mapping at the top"}}};
  }
  for (const auto& kv : root) {
    if (kv.first.IsScalar() && kv.first.Scalar() == "aws") {
      return parse_section(kv.second, line_of(kv.first), file);
    }
  }
  return AwsConfigResult{std::nullopt,
                         {AwsConfigError{std::string(file), 0, "missing 'aws' section"}}};
}

}  // namespace eipgate::aws

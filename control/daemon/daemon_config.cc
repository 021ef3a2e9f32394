// The daemon's view of the shared YAML file: aws:, ha: and the dataplane's admin.socket.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "control/daemon/daemon.h"

namespace eipgate::control {

bool load_daemon_config(const std::string& file, DaemonConfig* out, std::string* errors) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    *errors = file + ":0: cannot read the file";
    return false;
  } catch (const YAML::Exception& e) {
    *errors = file + ":" + std::to_string(e.mark.is_null() ? 0 : e.mark.line + 1) + ": " + e.msg;
    return false;
  }
  DaemonConfig c;
  c.file = file;
  std::string all;
  if (!root.IsMap()) {
    *errors = file + ":1: expected a mapping with aws: and ha: sections";
    return false;
  }
  const YAML::Node& croot = root;
  const auto ha = ha::parse_ha_config(croot["ha"], file);
  if (ha.error) {
    all += ha.error->to_string() + "\n";
  } else {
    c.ha = *ha.config;
  }
  const auto aws = aws::parse_aws_config(croot["aws"], file);
  for (const auto& e : aws.errors) all += e.to_string() + "\n";
  if (aws.config) c.aws = *aws.config;
  if (const auto admin = croot["admin"]; admin.IsMap() && admin["socket"].IsScalar()) {
    c.dataplane_admin_socket = admin["socket"].Scalar();  // the dataplane validates it
  }
  // Our own tables decide fencing; a rescued AZ's tables must not be among them.
  for (const auto& rule : c.ha.fallback_for) {
    for (const auto& t : rule.route_tables) {
      for (const auto& own : c.aws.route_tables.ids) {
        if (t == own) {
          all += file + ":" + std::to_string(rule.line) + ": ha.fallback_for: '" + t +
                 "' is one of this pair's own aws.route_tables\n";
        }
      }
    }
  }
  // The standby's engines refuse endpoint-independent UDP mappings (they are one outside port
  // shared by many flows, which the sync records do not carry), so on failover every such
  // mapping would be lost and STUN/WebRTC peers would see a new address: refuse the combination.
  const YAML::Node nat = croot["nat"];
  const YAML::Node eim = nat && nat.IsMap() ? nat["endpoint_independent_udp"] : YAML::Node();
  if (eim && eim.IsScalar()) {
    std::string v = eim.Scalar();
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (v == "true" || v == "yes" || v == "on") {
      all += file + ":" + std::to_string(eim.Mark().line + 1) +
             ": nat.endpoint_independent_udp: not supported with HA (eipgate-control): "
             "endpoint-independent UDP mappings are not synced to the standby, so they would be "
             "lost on failover; set it to false or run without eipgate-control\n";
    }
  }
  if (c.dataplane_admin_socket.empty() || c.dataplane_admin_socket[0] != '/') {
    all += file + ":" + std::to_string(croot["admin"]["socket"].Mark().line + 1) +
           ": admin.socket: must be an absolute path\n";
  }
  c.sync_socket =
      (std::filesystem::path(c.dataplane_admin_socket).parent_path() / "sync.sock").string();
  if (!all.empty()) {
    all.pop_back();
    *errors = all;
    return false;
  }
  *out = std::move(c);
  return true;
}

}  // namespace eipgate::control

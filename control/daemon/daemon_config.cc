// The daemon's view of the shared YAML file: aws:, ha: and the dataplane's admin.socket, checked
// with the schema toolkit (common/yaml_schema.h) so every section reports file:line: reason.
#include "control/daemon/daemon_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <vector>

#include "common/yaml_schema.h"

namespace eipgate::control {

namespace {

using yaml_schema::SchemaError;

// The admin: section as the dataplane reads it (dataplane/config/README.md): only the socket.
void parse_admin(const yaml_schema::Entry& admin, const std::string& file, DaemonConfig* c,
                 std::vector<SchemaError>* errors) {
  std::vector<yaml_schema::Issue> issues;
  const auto entries =
      yaml_schema::map_entries(admin.value, admin.line, "admin", {"socket"}, &issues);
  for (auto& i : issues) errors->push_back(SchemaError{file, i.line, std::move(i.reason)});
  for (const auto& e : entries) {
    const int line = e.value.IsNull() ? e.line : yaml_schema::line_of(e.value);
    if (!e.value.IsScalar()) {
      errors->push_back(SchemaError{
          file, line,
          std::string("admin.socket: expected a path, got ") + yaml_schema::type_name(e.value)});
      continue;
    }
    const std::string& path = e.value.Scalar();
    if (path.empty() || path[0] != '/') {
      errors->push_back(SchemaError{file, line, "admin.socket: must be an absolute path"});
    } else if (path.size() > 107) {  // sockaddr_un::sun_path holds 108 with the NUL
      errors->push_back(
          SchemaError{file, line, "admin.socket: a unix socket path is at most 107 characters"});
    } else {
      c->dataplane_admin_socket = path;
    }
  }
}

}  // namespace

bool parse_daemon_config(const std::string& text, const std::string& file, DaemonConfig* out,
                         std::string* errors) {
  std::vector<SchemaError> all;
  auto finish = [&]() {
    std::string joined;
    for (const auto& e : all) joined += e.to_string() + "\n";
    if (!joined.empty()) joined.pop_back();
    *errors = joined;
    return false;
  };
  try {
    yaml_schema::Issue syntax;
    const std::optional<YAML::Node> doc = yaml_schema::load_document(text, &syntax);
    if (!doc) {
      all.push_back(SchemaError{file, syntax.line, syntax.reason});
      return finish();
    }
    const YAML::Node& root = *doc;
    if (root.IsNull()) {  // nothing but comments: no line to point at (as the dataplane says it)
      all.push_back(SchemaError{file, 0, "the configuration is empty"});
      return finish();
    }
    if (!root.IsMap()) {
      all.push_back(SchemaError{file, 1, "expected a mapping with aws: and ha: sections"});
      return finish();
    }
    // Every top-level key of the shared file: ours (aws, ha, admin) and the dataplane's, which
    // it validates itself. A misspelt section name must not leave a default in place silently.
    std::vector<yaml_schema::Issue> issues;
    const auto top = yaml_schema::map_entries(
        root, 1, "", {"mode",     "ports",   "interface", "next_hop",       "nat",
                      "timeouts", "workers", "eal",       "exception_path", "admin",
                      "logging",  "polling", "probe",     "fastpath",       "translation_log",
                      "policy",   "aws",     "ha",        "cloudwatch",     "cloudwatch_logs"},
        &issues);
    for (auto& i : issues) all.push_back(SchemaError{file, i.line, std::move(i.reason)});
    const yaml_schema::Entry* ha_entry = nullptr;
    const yaml_schema::Entry* aws_entry = nullptr;
    const yaml_schema::Entry* admin_entry = nullptr;
    const yaml_schema::Entry* cloudwatch_entry = nullptr;
    const yaml_schema::Entry* logs_entry = nullptr;
    const yaml_schema::Entry* txlog_entry = nullptr;
    for (const auto& e : top) {
      if (e.key == "cloudwatch") cloudwatch_entry = &e;
      if (e.key == "cloudwatch_logs") logs_entry = &e;
      if (e.key == "translation_log") txlog_entry = &e;
      if (e.key == "ha") ha_entry = &e;
      if (e.key == "aws") aws_entry = &e;
      if (e.key == "admin") admin_entry = &e;
    }

    DaemonConfig c;
    c.file = file;
    if (ha_entry == nullptr) {
      all.push_back(SchemaError{file, 1, "missing 'ha' section (the HA pair's settings)"});
    } else {
      const auto ha = ha::parse_ha_config(ha_entry->value, file);
      if (ha.error) {
        SchemaError e = *ha.error;
        if (e.line == 0) e.line = ha_entry->line;  // an empty section: point at its key
        all.push_back(std::move(e));
      } else {
        c.ha = *ha.config;
      }
    }
    if (aws_entry == nullptr) {
      all.push_back(SchemaError{file, 1, "missing 'aws' section (route tables, service address)"});
    } else {
      const auto aws = aws::parse_aws_config(aws_entry->value, file);
      for (const auto& e : aws.errors) {
        SchemaError located = e;
        // An empty section: yaml-cpp places it at the next token; point at its key instead.
        if (located.line == 0 || aws_entry->value.IsNull()) located.line = aws_entry->line;
        all.push_back(std::move(located));
      }
      if (aws.config) c.aws = *aws.config;
    }
    if (admin_entry != nullptr) parse_admin(*admin_entry, file, &c, &all);
    if (cloudwatch_entry != nullptr) {
      parse_cloudwatch_config(cloudwatch_entry->value, cloudwatch_entry->line, file, &c.cloudwatch,
                              &all);
    }
    if (logs_entry != nullptr) {
      parse_cloudwatch_logs_config(logs_entry->value, logs_entry->line, file, &c.cloudwatch_logs,
                                   &all);
    }
    if (c.cloudwatch_logs.path.empty()) {
      // The file the dataplane writes: its translation_log.path (which it validates), else its
      // default.
      c.cloudwatch_logs.path = std::string(kDefaultTranslationLogPath);
      if (txlog_entry != nullptr && txlog_entry->value.IsMap()) {
        const YAML::Node p = txlog_entry->value["path"];
        if (p && p.IsScalar() && !p.Scalar().empty() && p.Scalar()[0] == '/') {
          c.cloudwatch_logs.path = p.Scalar();
        }
      }
    }
    // Our own tables decide fencing; a rescued AZ's tables must not be among them.
    for (const auto& rule : c.ha.fallback_for) {
      for (const auto& t : rule.route_tables) {
        for (const auto& own : c.aws.route_tables.ids) {
          if (t == own) {
            all.push_back(SchemaError{
                file, rule.line,
                "ha.fallback_for: '" + t + "' is one of this pair's own aws.route_tables"});
          }
        }
      }
    }
    // The standby's engines refuse endpoint-independent UDP mappings (one outside port shared by
    // many flows, which the sync records do not carry), so on failover every such mapping would
    // be lost and STUN/WebRTC peers would see a new address: refuse the combination.
    for (const auto& e : top) {
      if (e.key != "nat" || !e.value.IsMap()) continue;
      const YAML::Node eim = e.value["endpoint_independent_udp"];
      if (!eim || !eim.IsScalar()) continue;
      std::string why;
      if (yaml_schema::parse_bool(eim.Scalar(), &why).value_or(false)) {
        all.push_back(SchemaError{
            file, yaml_schema::line_of(eim),
            "nat.endpoint_independent_udp: not supported with HA (eipgate-control): "
            "endpoint-independent UDP mappings are not synced to the standby, so they would be "
            "lost on failover; set it to false or run without eipgate-control"});
      }
    }
    c.sync_socket =
        (std::filesystem::path(c.dataplane_admin_socket).parent_path() / "sync.sock").string();
    if (!all.empty()) return finish();
    *out = std::move(c);
    return true;
  } catch (const YAML::Exception& e) {
    // The loaders check every node before use; this is the last line against a yaml-cpp throw
    // they did not foresee: an error at the node's line, never an abort.
    all.push_back(SchemaError{file, e.mark.is_null() ? 0 : e.mark.line + 1,
                              "cannot read this value: " + e.msg});
    return finish();
  } catch (const std::exception& e) {
    all.push_back(SchemaError{file, 0, std::string("cannot read the configuration: ") + e.what()});
    return finish();
  }
}

bool load_daemon_config(const std::string& file, DaemonConfig* out, std::string* errors) {
  SchemaError error;
  const std::optional<std::string> text = yaml_schema::read_config_file(file, &error);
  if (!text) {
    *errors = error.to_string();
    return false;
  }
  return parse_daemon_config(*text, file, out, errors);
}

}  // namespace eipgate::control

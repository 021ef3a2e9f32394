// Parses the `policy:` node into a PolicyConfig (policy_model.h). All errors are collected
// (file:line: reason) so one run of `eipgate-dataplane --check` shows them all; warnings flag rules
// that never match or that overlap rules with a different action. yaml-cpp may throw on odd
// documents: caught at the boundary and reported as an error.
#include "dataplane/policy/policy_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <map>
#include <set>
#include <utility>

#include "common/yaml_schema.h"
#include "dataplane/policy/name_parsers.h"

namespace eipgate::policy {

namespace {

int line_of(const YAML::Node& n) {
  const int l = n.Mark().line;
  return l >= 0 ? l + 1 : 0;
}

bool is_null(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void error(int line, std::string reason) {
    errors_.push_back(Issue{file_, line, std::move(reason)});
  }
  void warning(int line, std::string reason) {
    warnings_.push_back(Issue{file_, line, std::move(reason)});
  }

  // Unknown keys are errors: a misspelt key silently ignored would be a policy not enforced.
  bool check_map(const YAML::Node& n, std::string_view where,
                 std::initializer_list<std::string_view> allowed) {
    if (!n.IsMap()) {
      error(line_of(n), std::string(where) + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        error(line_of(kv.first), std::string(where) + ": unknown key '" + key + "'" +
                                     yaml_schema::did_you_mean(key, allowed) +
                                     " (expected one of: " + list + ")");
      } else if (!seen.insert(key).second) {
        error(line_of(kv.first), std::string(where) + ": duplicate key '" + key + "'");
      }
    }
    return true;
  }

  std::optional<std::string> scalar(const YAML::Node& n, std::string_view what) {
    if (!n.IsScalar()) {
      error(line_of(n), std::string(what) + " must be a single value");
      return std::nullopt;
    }
    return n.Scalar();
  }

  // A scalar or a list of scalars.
  std::vector<std::pair<std::string, int>> scalars(const YAML::Node& n, std::string_view what) {
    std::vector<std::pair<std::string, int>> out;
    if (n.IsScalar()) {
      out.emplace_back(n.Scalar(), line_of(n));
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        if (auto s = scalar(item, what)) out.emplace_back(*s, line_of(item));
      }
    } else {
      error(line_of(n), std::string(what) + " must be a value or a list of values");
    }
    return out;
  }

  std::optional<uint64_t> number(const YAML::Node& n, std::string_view what, uint64_t lo,
                                 uint64_t hi) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc{} || end != s->data() + s->size() || v < lo || v > hi) {
      error(line_of(n), std::string(what) + ": '" + *s + "' is not a number in " +
                            std::to_string(lo) + "-" + std::to_string(hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& n, std::string_view what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    std::string why;  // the one boolean rule of every config file (common/yaml_schema.h)
    if (const auto b = yaml_schema::parse_bool(*s, &why)) return b;
    error(line_of(n), std::string(what) + ": " + why);
    return std::nullopt;
  }

  std::vector<Prefix> prefixes(const YAML::Node& n, std::string_view what) {
    std::vector<Prefix> out;
    for (const auto& [text, line] : scalars(n, what)) {
      std::string why;
      if (auto p = parse_prefix(text, &why)) {
        out.push_back(*p);
      } else {
        error(line, std::string(what) + ": " + why);
      }
    }
    if (n.IsSequence() && n.size() == 0)
      error(line_of(n), std::string(what) + " must not be empty");
    return out;
  }

  std::vector<uint16_t> ports_list(const YAML::Node& n, std::string_view what) {
    std::vector<uint16_t> out;
    if (!n.IsSequence()) {
      error(line_of(n), std::string(what) + " must be a list of ports");
      return out;
    }
    for (const auto& item : n) {
      if (auto v = number(item, what, 1, 65535)) out.push_back(static_cast<uint16_t>(*v));
    }
    return out;
  }

  // "443", "1000-2000".
  bool port_range(const YAML::Node& n, Rule* r) {
    auto s = scalar(n, "ports");
    if (!s) return false;
    auto num = [](std::string_view t, unsigned* v) {
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *v);
      return ec == std::errc{} && end == t.data() + t.size() && !t.empty() && *v <= 65535;
    };
    const size_t dash = s->find('-');
    unsigned lo = 0;
    unsigned hi = 0;
    const bool ok = dash == std::string::npos ? num(*s, &lo) && ((hi = lo), true)
                                              : num(std::string_view(*s).substr(0, dash), &lo) &&
                                                    num(std::string_view(*s).substr(dash + 1), &hi);
    if (!ok) {
      error(line_of(n), "ports: '" + *s + "' is not a port (0-65535) or a range lo-hi");
      return false;
    }
    if (lo > hi) {
      error(line_of(n), "ports: range '" + *s + "' has its low end above its high end");
      return false;
    }
    r->port_lo = static_cast<uint16_t>(lo);
    r->port_hi = static_cast<uint16_t>(hi);
    r->has_ports = true;
    return true;
  }

  std::optional<DenyAction> deny_action(const YAML::Node& n, std::string_view what) {
    auto s = scalar(n, what);
    if (!s) return std::nullopt;
    if (*s == "drop") return DenyAction::Drop;
    if (*s == "reject") return DenyAction::Reject;
    error(line_of(n), std::string(what) + ": '" + *s + "' is not drop or reject");
    return std::nullopt;
  }

  void parse_inspection(const YAML::Node& n, PolicyConfig* c) {
    if (!check_map(n, "policy.inspection",
                   {"tls_ports", "http_ports", "max_bytes", "max_packets", "timeout_ms"})) {
      return;
    }
    if (n["tls_ports"]) c->tls_ports = ports_list(n["tls_ports"], "policy.inspection.tls_ports");
    if (n["http_ports"]) {
      c->http_ports = ports_list(n["http_ports"], "policy.inspection.http_ports");
    }
    for (uint16_t p : c->tls_ports) {
      if (std::find(c->http_ports.begin(), c->http_ports.end(), p) != c->http_ports.end()) {
        error(line_of(n["http_ports"]), "policy.inspection: port " + std::to_string(p) +
                                            " is in both tls_ports and http_ports");
      }
    }
    if (n["max_bytes"]) {
      if (auto v = number(n["max_bytes"], "policy.inspection.max_bytes", 64, 65536)) {
        c->name_max_bytes = static_cast<uint32_t>(*v);
      }
    }
    if (n["max_packets"]) {
      if (auto v = number(n["max_packets"], "policy.inspection.max_packets", 1, 64)) {
        c->name_max_packets = static_cast<uint32_t>(*v);
      }
    }
    if (n["timeout_ms"]) {
      if (auto v = number(n["timeout_ms"], "policy.inspection.timeout_ms", 100, 120000)) {
        c->name_timeout_ms = static_cast<uint32_t>(*v);
      }
    }
  }

  void parse_group(const YAML::Node& n, PolicyConfig* c) {
    const std::string where = "policy.groups[" + std::to_string(c->groups.size()) + "]";
    if (!check_map(n, where, {"name", "sources", "default", "name_must_match_address"})) return;
    SourceGroup g;
    g.line = line_of(n);
    if (!n["name"]) {
      error(g.line, where + ": name is required");
    } else if (auto s = scalar(n["name"], where + ".name")) {
      g.name = *s;
      const bool ok = !s->empty() && std::all_of(s->begin(), s->end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
      });
      if (!ok)
        error(line_of(n["name"]),
              where + ".name: '" + *s + "' must be letters, digits, '-', '_' or '.'");
      for (const auto& other : c->groups) {
        if (other.name == g.name) {
          error(line_of(n["name"]), where + ": group '" + g.name + "' already defined on line " +
                                        std::to_string(other.line));
        }
      }
    }
    if (!n["sources"]) {
      error(g.line, where + ": sources is required");
    } else {
      g.sources = prefixes(n["sources"], where + ".sources");
    }
    if (n["default"]) {
      if (auto a = deny_action(n["default"], where + ".default")) g.default_deny = *a;
    }
    if (n["name_must_match_address"]) {
      if (auto b = boolean(n["name_must_match_address"], where + ".name_must_match_address")) {
        g.name_must_match_address = *b;
      }
    }
    c->groups.push_back(std::move(g));
  }

  void parse_rule(const YAML::Node& n, size_t index, PolicyConfig* c,
                  std::map<std::string, int>* rule_names) {
    const std::string where = "policy.rules[" + std::to_string(index) + "]";
    if (!check_map(n, where, {"name", "from", "dst", "proto", "ports", "hosts", "action"})) {
      return;
    }
    Rule r;
    r.line = line_of(n);
    if (n["name"]) {
      if (auto s = scalar(n["name"], where + ".name")) {
        r.name = *s;
        auto [it, fresh] = rule_names->emplace(*s, r.line);
        if (!fresh) {
          error(line_of(n["name"]), where + ": rule name '" + *s + "' already used on line " +
                                        std::to_string(it->second));
        }
      }
    }
    if (n["proto"]) {
      if (auto s = scalar(n["proto"], where + ".proto")) {
        if (*s == "any") {
          r.proto = Proto::Any;
        } else if (*s == "tcp") {
          r.proto = Proto::Tcp;
        } else if (*s == "udp") {
          r.proto = Proto::Udp;
        } else if (*s == "icmp") {
          r.proto = Proto::Icmp;
        } else {
          error(line_of(n["proto"]), where + ".proto: '" + *s + "' is not tcp, udp, icmp or any");
        }
      }
    }
    if (n["ports"]) {
      if (port_range(n["ports"], &r) && r.proto == Proto::Icmp) {
        error(line_of(n["ports"]), where + ": ICMP has no ports (drop `ports` or use tcp/udp)");
      }
    }
    if (n["dst"]) r.dst = prefixes(n["dst"], where + ".dst");
    if (n["hosts"]) {
      for (const auto& [text, line] : scalars(n["hosts"], where + ".hosts")) {
        std::string why;
        if (!valid_name_pattern(text, &why)) {
          error(line, where + ".hosts: '" + text + "': " + why);
          continue;
        }
        std::string p = text;
        if (!p.empty() && p.back() == '.') p.pop_back();
        std::transform(p.begin(), p.end(), p.begin(), [](char ch) {
          return static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        });
        r.hosts.push_back(std::move(p));
      }
    }
    if (r.dst.empty()) r.dst.push_back(Prefix{0, 0});
    if (n["action"]) {
      if (auto s = scalar(n["action"], where + ".action")) {
        if (*s == "allow") {
          r.allow = true;
        } else if (*s == "drop" || *s == "reject") {
          r.allow = false;
          r.deny_action = *s == "drop" ? DenyAction::Drop : DenyAction::Reject;
        } else {
          error(line_of(n["action"]), where + ".action: '" + *s + "' is not allow, drop or reject");
        }
      }
    }
    if (!r.allow && !r.hosts.empty()) {
      // A pending connection is reset anyway when its name is not allowed; a name-based deny
      // adds nothing an allowlist does not already do, and for non-TCP it would need resolved
      // addresses to be denied, which a resolver can be made to change. Keep the model simple.
      error(r.line,
            where + ": hosts work only with action allow (everything not allowed is denied)");
    }
    const bool wildcard = std::any_of(r.hosts.begin(), r.hosts.end(),
                                      [](const std::string& h) { return h.front() == '*'; });
    const bool beyond_tcp = r.proto != Proto::Tcp;
    if (wildcard && beyond_tcp) {
      warning(r.line, where + ": wildcard host patterns cannot be resolved, so for " +
                          (r.proto == Proto::Any ? std::string("UDP and ICMP")
                                                 : std::string(proto_name(r.proto))) +
                          " this rule matches only names that also appear as exact names");
    }
    if (!n["from"]) {
      error(r.line, where + ": from (the source group or groups) is required");
      return;
    }
    for (const auto& from : scalars(n["from"], where + ".from")) {
      const std::string& group = from.first;
      const int line = from.second;
      auto it = std::find_if(c->groups.begin(), c->groups.end(),
                             [&](const SourceGroup& g) { return g.name == group; });
      if (it == c->groups.end()) {
        std::string known;
        for (const auto& g : c->groups) known += (known.empty() ? "" : ", ") + g.name;
        error(line, where + ".from: unknown group '" + group +
                        "' (groups: " + (known.empty() ? std::string("none") : known) + ")");
        continue;
      }
      Rule copy = r;
      if (copy.name.empty()) copy.name = it->name + "#" + std::to_string(it->rules.size() + 1);
      it->rules.push_back(std::move(copy));
    }
  }

  void check_sources(const PolicyConfig& c) {
    for (size_t i = 0; i < c.groups.size(); ++i) {
      for (size_t j = i; j < c.groups.size(); ++j) {
        for (size_t a = 0; a < c.groups[i].sources.size(); ++a) {
          for (size_t b = (i == j ? a + 1 : 0); b < c.groups[j].sources.size(); ++b) {
            const Prefix& p = c.groups[i].sources[a];
            const Prefix& q = c.groups[j].sources[b];
            if (p == q) {
              error(c.groups[j].line, "policy.groups: source " + q.to_string() + " of group '" +
                                          c.groups[j].name + "' is already in group '" +
                                          c.groups[i].name + "' (line " +
                                          std::to_string(c.groups[i].line) + ")");
            } else if (i != j && p.overlaps(q)) {
              warning(c.groups[j].line, "policy.groups: source " + q.to_string() + " of group '" +
                                            c.groups[j].name + "' overlaps " + p.to_string() +
                                            " of group '" + c.groups[i].name +
                                            "': the longer prefix decides the group");
            }
          }
        }
      }
    }
  }

  ParseResult run(const YAML::Node& n) {
    ParseResult res;
    PolicyConfig c;
    if (is_null(n)) {
      res.config = std::move(c);
      return res;
    }
    if (check_map(n, "policy",
                  {"unmatched_sources", "recheck_on_reload", "inspection", "groups", "rules"})) {
      if (n["unmatched_sources"]) {
        if (auto s = scalar(n["unmatched_sources"], "policy.unmatched_sources")) {
          if (*s == "allow") {
            c.unmatched_allow = true;
          } else if (*s == "drop" || *s == "reject") {
            c.unmatched_allow = false;
            c.unmatched_deny = *s == "drop" ? DenyAction::Drop : DenyAction::Reject;
          } else {
            error(line_of(n["unmatched_sources"]),
                  "policy.unmatched_sources: '" + *s + "' is not allow, drop or reject");
          }
        }
      }
      if (n["recheck_on_reload"]) {
        if (auto b = boolean(n["recheck_on_reload"], "policy.recheck_on_reload")) {
          c.recheck_on_reload = *b;
        }
      }
      if (n["inspection"]) parse_inspection(n["inspection"], &c);
      if (n["groups"]) {
        if (!n["groups"].IsSequence()) {
          error(line_of(n["groups"]), "policy.groups must be a list");
        } else {
          for (const auto& g : n["groups"]) parse_group(g, &c);
        }
      }
      check_sources(c);
      if (n["rules"]) {
        if (!n["rules"].IsSequence()) {
          error(line_of(n["rules"]), "policy.rules must be a list");
        } else {
          std::map<std::string, int> names;
          size_t i = 0;
          for (const auto& r : n["rules"]) parse_rule(r, i++, &c, &names);
        }
      }
    }
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const Issue& a, const Issue& b) { return a.line < b.line; });
    if (errors_.empty()) {
      for (auto& w : overlap_warnings(c, file_)) warnings_.push_back(std::move(w));
      res.config = std::move(c);
    }
    std::stable_sort(warnings_.begin(), warnings_.end(),
                     [](const Issue& a, const Issue& b) { return a.line < b.line; });
    res.errors = std::move(errors_);
    res.warnings = std::move(warnings_);
    return res;
  }

 private:
  std::string file_;
  std::vector<Issue> errors_;
  std::vector<Issue> warnings_;
};

}  // namespace

ParseResult parse_policy(const YAML::Node& policy_node, std::string_view file) {
  try {
    return Parser(file).run(policy_node);
  } catch (const std::exception& e) {
    ParseResult r;
    r.errors.push_back(Issue{std::string(file), 0, std::string("policy: ") + e.what()});
    return r;
  }
}

ParseResult parse_policy_text(std::string_view yaml_text, std::string_view file) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    return parse_policy(root["policy"], file);
  } catch (const YAML::Exception& e) {
    ParseResult r;
    r.errors.push_back(Issue{std::string(file), e.mark.line >= 0 ? e.mark.line + 1 : 0, e.msg});
    return r;
  } catch (const std::exception& e) {
    ParseResult r;
    r.errors.push_back(Issue{std::string(file), 0, e.what()});
    return r;
  }
}

}  // namespace eipgate::policy

// Request parsing and dispatch for the admin protocol; see admin_protocol.h and README.md.
#include "dataplane/admin/admin_protocol.h"

#include <arpa/inet.h>

#include <charconv>
#include <exception>
#include <initializer_list>

#include "dataplane/engine/engine.h"

namespace eipgate::admin {

namespace {

using nlohmann::json;

// Rejects args keys a command does not know, so a misspelt filter is an error, not a full dump.
std::optional<std::string> check_keys(std::string_view cmd, const json& args,
                                      std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : args.items()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || key == k;
    if (!ok) return std::string(cmd) + ": unknown argument '" + key + "'";
  }
  return std::nullopt;
}

std::optional<std::string> prefix_arg(const json& args, const char* key,
                                      std::optional<Ipv4Prefix>* out) {
  if (!args.contains(key)) return std::nullopt;
  const json& v = args.at(key);
  if (!v.is_string()) return std::string("flows: '") + key + "' must be a string";
  auto p = parse_ipv4_prefix(v.get_ref<const std::string&>());
  if (!p) {
    return std::string("flows: '") + key +
           "' is not an IPv4 address or prefix: " + v.get<std::string>();
  }
  *out = p;
  return std::nullopt;
}

json dispatch(AdminHandler& handler, const std::string& cmd, const json& args,
              std::string_view version) {
  if (cmd == "version") {
    if (auto e = check_keys(cmd, args, {})) return error_response(*e);
    return {{"ok", true}, {"result", {{"version", version}, {"protocol", kProtocolVersion}}}};
  }
  if (cmd == "stats") {
    if (auto e = check_keys(cmd, args, {})) return error_response(*e);
    return {{"ok", true}, {"result", handler.stats()}};
  }
  if (cmd == "health") {
    if (auto e = check_keys(cmd, args, {})) return error_response(*e);
    return {{"ok", true}, {"result", handler.health()}};
  }
  if (cmd == "flows") {
    FlowFilter filter;
    if (auto e = parse_flow_filter(args, &filter)) return error_response(*e);
    return {{"ok", true}, {"result", handler.flows(filter)}};
  }
  if (cmd == "reload") {
    if (auto e = check_keys(cmd, args, {"path"})) return error_response(*e);
    std::string path;
    if (args.contains("path")) {
      if (!args["path"].is_string()) return error_response("reload: 'path' must be a string");
      path = args["path"].get<std::string>();
    }
    ReloadResult r = handler.reload(path);
    if (!r.ok) return error_response(r.error.empty() ? "reload failed" : r.error);
    return {{"ok", true}, {"result", std::move(r.result)}};
  }
  if (cmd == "xstats") {
    if (auto e = check_keys(cmd, args, {})) return error_response(*e);
    json r = handler.xstats();
    if (r.contains("error")) return error_response(r["error"].get<std::string>());
    return {{"ok", true}, {"result", r}};
  }
  if (cmd == "announce") {
    if (auto e = check_keys(cmd, args, {})) return error_response(*e);
    json r = handler.announce();
    if (r.contains("error")) return error_response(r["error"].get<std::string>());
    return {{"ok", true}, {"result", r}};
  }
  if (cmd == "probe") {
    if (auto e = check_keys(cmd, args, {"address", "port"})) return error_response(*e);
    std::optional<ProbeTarget> start;
    if (args.contains("address") || args.contains("port")) {
      if (!args.contains("address") || !args["address"].is_string() || !args.contains("port") ||
          !args["port"].is_number_unsigned()) {
        return error_response(
            "probe: give both 'address' (IPv4 text) and 'port' (1..65535), or neither");
      }
      ProbeTarget t;
      const std::string& text = args["address"].get_ref<const std::string&>();
      const auto pf =
          text.find('/') == std::string::npos ? parse_ipv4_prefix(text + "/32") : std::nullopt;
      if (pf) t.address = pf->addr;
      if (!pf) {
        return error_response("probe: '" + args["address"].get<std::string>() +
                              "' is not an IPv4 address");
      }
      const uint64_t port = args["port"].get<uint64_t>();
      if (port == 0 || port > 65535) return error_response("probe: 'port' must be 1..65535");
      t.port = static_cast<uint16_t>(port);
      start = t;
    }
    json r = handler.probe(start);
    if (r.contains("error")) return error_response(r["error"].get<std::string>());
    return {{"ok", true}, {"result", r}};
  }
  if (cmd == "ha_role") {
    if (auto e = check_keys(cmd, args, {"role", "epoch"})) return error_response(*e);
    if (!args.contains("role") || !args["role"].is_string()) {
      return error_response("ha_role: 'role' must be \"active\" or \"standby\"");
    }
    const std::string role = args["role"].get<std::string>();
    if (role != "active" && role != "standby") {
      return error_response("ha_role: 'role' must be \"active\" or \"standby\", not \"" + role +
                            "\"");
    }
    uint64_t epoch = 0;
    if (args.contains("epoch")) {
      if (!args["epoch"].is_number_unsigned()) {
        return error_response("ha_role: 'epoch' must be a non-negative integer");
      }
      epoch = args["epoch"].get<uint64_t>();
    }
    if (auto e = handler.set_ha_role(role, epoch)) return error_response(*e);
    return {{"ok", true}, {"result", {{"role", role}, {"epoch", epoch}}}};
  }
  return error_response(
      "unknown command '" + cmd +
      "' (expected stats, xstats, flows, reload, health, version, announce, ha_role or probe)");
}

}  // namespace

bool Ipv4Prefix::contains(uint32_t ip) const {
  if (len == 0) return true;
  const uint32_t mask = len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
  return (ip & mask) == addr;
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) {
  Ipv4Prefix p;
  std::string_view addr = text;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc{} || end != len_text.data() + len_text.size() || len_text.empty() ||
        len > 32) {
      return std::nullopt;
    }
    p.len = static_cast<uint8_t>(len);
  }
  if (addr.size() > 15) return std::nullopt;
  std::string addr_z(addr);  // inet_pton wants a NUL-terminated string
  in_addr a{};
  if (inet_pton(AF_INET, addr_z.c_str(), &a) != 1) return std::nullopt;
  p.addr = ntohl(a.s_addr);
  const uint32_t mask = p.len == 0 ? 0 : (p.len >= 32 ? 0xffffffffu : ~(0xffffffffu >> p.len));
  if ((p.addr & ~mask) != 0) return std::nullopt;
  return p;
}

std::optional<uint8_t> parse_proto(std::string_view text) {
  if (text == "tcp") return uint8_t{6};
  if (text == "udp") return uint8_t{17};
  if (text == "icmp") return uint8_t{1};
  unsigned n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || n > 255) {
    return std::nullopt;
  }
  return static_cast<uint8_t>(n);
}

std::string proto_name(uint8_t proto) {
  switch (proto) {
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 1:
      return "icmp";
    default:
      return std::to_string(proto);
  }
}

bool FlowFilter::matches(const engine::FlowView& f) const {
  if (proto && f.proto != *proto) return false;
  if (inside && !inside->contains(f.inside_ip)) return false;
  if (remote && !remote->contains(f.remote_ip)) return false;
  if (outside_port && f.outside_port != *outside_port) return false;
  return true;
}

std::optional<std::string> parse_flow_filter(const json& args, FlowFilter* out) {
  FlowFilter f;
  if (auto e = check_keys("flows", args, {"proto", "inside", "remote", "outside_port", "limit"})) {
    return e;
  }
  if (args.contains("proto")) {
    const json& v = args["proto"];
    std::optional<uint8_t> p;
    if (v.is_string()) {
      p = parse_proto(v.get_ref<const std::string&>());
    } else if (v.is_number_unsigned() && v.get<uint64_t>() <= 255) {
      p = static_cast<uint8_t>(v.get<uint64_t>());
    }
    if (!p) return "flows: 'proto' must be tcp, udp, icmp or a protocol number 0-255";
    f.proto = p;
  }
  if (auto e = prefix_arg(args, "inside", &f.inside)) return e;
  if (auto e = prefix_arg(args, "remote", &f.remote)) return e;
  if (args.contains("outside_port")) {
    const json& v = args["outside_port"];
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 65535) {
      return "flows: 'outside_port' must be a number 0-65535";
    }
    f.outside_port = static_cast<uint16_t>(v.get<uint64_t>());
  }
  if (args.contains("limit")) {
    const json& v = args["limit"];
    if (!v.is_number_unsigned() || v.get<uint64_t>() == 0) {
      return "flows: 'limit' must be a positive number";
    }
    // Clamped, not refused: "give me everything" is a reasonable request, answered with the most
    // we are willing to build and "truncated": true.
    const uint64_t n = v.get<uint64_t>();
    f.limit = n > kFlowLimitMax ? kFlowLimitMax : static_cast<uint32_t>(n);
  }
  *out = f;
  return std::nullopt;
}

json error_response(std::string_view message) {
  return {{"ok", false}, {"error", std::string(message)}};
}

json handle_request(AdminHandler& handler, std::string_view line, std::string_view version) {
  if (line.size() > kMaxRequestBytes) {
    return error_response("request longer than " + std::to_string(kMaxRequestBytes) + " bytes");
  }
  json req;
  try {
    req = json::parse(line);
  } catch (const json::parse_error& e) {
    return error_response(std::string("malformed JSON: ") + e.what());
  }
  if (!req.is_object()) return error_response("request must be a JSON object");
  if (!req.contains("cmd") || !req["cmd"].is_string()) {
    return error_response("request needs a string \"cmd\"");
  }
  json args = json::object();
  if (req.contains("args")) {
    if (!req["args"].is_object() && !req["args"].is_null()) {
      return error_response("\"args\" must be an object");
    }
    if (req["args"].is_object()) args = req["args"];
  }
  const std::string cmd = req["cmd"].get<std::string>();
  // A handler bug must cost one request, never the admin thread (and with it the process).
  try {
    return dispatch(handler, cmd, args, version);
  } catch (const std::exception& e) {
    return error_response("internal error in " + cmd + ": " + e.what());
  } catch (...) {
    return error_response("internal error in " + cmd);
  }
}

std::string response_line(const json& response) {
  std::string s;
  try {
    s = response.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception& e) {
    s = error_response(std::string("cannot encode response: ") + e.what()).dump();
  }
  s.push_back('\n');
  return s;
}

}  // namespace eipgate::admin

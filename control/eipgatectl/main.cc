// eipgatectl: the operator's CLI for a running eipgate-dataplane, over its admin socket
// (dataplane/admin/README.md). Readable tables by default, the raw result with --json.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/eipgatectl/table.h"
#include "dataplane/admin/admin_client.h"
#include "dataplane/admin/translation_log.h"
#include "dataplane/config/dataplane_config.h"

#ifndef EIPGATE_VERSION
#define EIPGATE_VERSION "unknown"
#endif

namespace {

using eipgatectl::cell;
using eipgatectl::Table;
using nlohmann::json;

// Exit codes (documented in dataplane/admin/README.md and --help).
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;      // the dataplane answered "ok": false
constexpr int kExitUsage = 2;        // bad command line
constexpr int kExitUnreachable = 3;  // no socket, I/O error, timeout, malformed answer
constexpr int kExitUnhealthy = 4;    // health status is not "ok"
constexpr int kExitNoAnswer = 5;     // probe: no answer in time, or ICMP unreachable
constexpr int kExitNotFound = 6;     // who: no connection used that outside tuple then

constexpr const char* kDefaultSocket = "/run/eipgate/dataplane.sock";
constexpr const char* kDefaultControlSocket = "/run/eipgate/control.sock";

void print_key_values(const json& obj, std::ostream& os) {
  Table t({"", ""});
  for (const auto& [k, v] : obj.items()) t.add({k, cell(v)});
  t.print(os, "  ", /*header=*/false);
}

// Sections a dataplane adds to "stats" beyond the engine's (ports, ARP, ...) are shown without
// eipgatectl knowing them: objects as key/value lists, arrays of objects as tables.
void print_extra_section(const std::string& name, const json& v, std::ostream& os) {
  os << '\n' << name << '\n';
  if (v.is_object()) {
    // Scalars as key/values; nested tables (arrays of objects, e.g. policy.rules) after them.
    json scalars = json::object();
    for (const auto& [k, x] : v.items()) {
      if (!(x.is_array() && !x.empty() && x[0].is_object())) scalars[k] = x;
    }
    print_key_values(scalars, os);
    for (const auto& [k, x] : v.items()) {
      if (x.is_array() && !x.empty() && x[0].is_object())
        print_extra_section(name + "." + k, x, os);
    }
  } else if (v.is_array() && !v.empty() && v[0].is_object()) {
    std::vector<std::string> cols;
    for (const auto& [k, ignored] : v[0].items()) cols.push_back(k);
    Table t(cols);
    for (const auto& row : v) {
      std::vector<std::string> r;
      r.reserve(cols.size());
      for (const auto& c : cols)
        r.push_back(row.is_object() && row.contains(c) ? cell(row[c]) : "-");
      t.add(std::move(r));
    }
    t.print(os);
  } else {
    os << "  " << cell(v) << '\n';
  }
}

uint64_t counter(const json& block, const char* name) {
  if (!block.contains("counters")) return 0;
  const json& c = block["counters"];
  return c.contains(name) && c[name].is_number_unsigned() ? c[name].get<uint64_t>() : 0;
}

// CloudWatch's order (connections, then bytes, then packets) rather than JSON's alphabetical one,
// so the table reads like the NAT Gateway console. Names the dataplane adds later follow.
constexpr const char* kNatGatewayOrder[] = {
    "ActiveConnectionCount",    "ConnectionAttemptCount", "ConnectionEstablishedCount",
    "ErrorPortAllocation",      "IdleTimeoutCount",       "PacketsDropCount",
    "BytesInFromSource",        "BytesOutToDestination",  "BytesInFromDestination",
    "BytesOutToSource",         "PacketsInFromSource",    "PacketsOutToDestination",
    "PacketsInFromDestination", "PacketsOutToSource"};

void print_nat_gateway(const json& ng, std::ostream& os) {
  Table t({"", ""});
  for (const char* name : kNatGatewayOrder) {
    if (ng.contains(name)) t.add({name, cell(ng[name])});
  }
  for (const auto& item : ng.items()) {
    const std::string& key = item.key();
    if (std::find_if(std::begin(kNatGatewayOrder), std::end(kNatGatewayOrder),
                     [&](const char* n) { return key == n; }) == std::end(kNatGatewayOrder)) {
      t.add({key, cell(item.value())});
    }
  }
  t.print(os, "  ", /*header=*/false);
}

bool allowance_exceeded_name(const std::string& name) {
  return name.ends_with("_allowance_exceeded");
}

// The ENA allowance counters that are above zero, as warning lines (empty when none is).
std::vector<std::string> allowance_warnings(const json& r) {
  std::vector<std::string> out;
  if (!r.contains("ports") || !r["ports"].is_array()) return out;
  for (const auto& p : r["ports"]) {
    if (!p.is_object() || !p.contains("allowance") || !p["allowance"].is_object()) continue;
    for (const auto& [name, v] : p["allowance"].items()) {
      if (allowance_exceeded_name(name) && v.is_number_unsigned() && v.get<uint64_t>() > 0) {
        out.push_back("WARNING: port " + cell(p.value("name", json())) + ": " + name + " = " +
                      cell(v) +
                      ": AWS queued or dropped packets over this instance's ENA allowance "
                      "(ami/OPERATOR.md: a larger instance type, or spread the load)");
      }
    }
  }
  return out;
}

// Ports: id and device, then each port's ENA allowance counters where the PMD has them.
void print_ports(const json& ports, std::ostream& os) {
  os << "\nPorts\n";
  Table t({"NAME", "PORT", "DEVICE", "ENA_ALLOWANCES"});
  for (const auto& p : ports) {
    if (!p.is_object()) continue;
    t.add({cell(p.value("name", json())), cell(p.value("port_id", json())),
           cell(p.value("device", json())),
           p.contains("allowance") ? "yes" : (p.contains("xstats_error") ? "error" : "no")});
  }
  t.print(os);
  for (const auto& p : ports) {
    if (!p.is_object()) continue;
    if (p.contains("xstats_error")) {
      os << "  port " << cell(p.value("name", json()))
         << ": xstats unreadable: " << cell(p["xstats_error"]) << '\n';
    }
    if (!p.contains("allowance") || !p["allowance"].is_object()) continue;
    os << "\nENA allowances, port " << cell(p.value("name", json())) << '\n';
    Table a({"", "", ""});
    for (const auto& [name, v] : p["allowance"].items()) {
      const bool hot =
          allowance_exceeded_name(name) && v.is_number_unsigned() && v.get<uint64_t>() > 0;
      a.add({name, cell(v), hot ? "<- EXCEEDED" : ""});
    }
    a.print(os, "  ", /*header=*/false);
  }
}

void print_stats(const json& r, std::ostream& os) {
  // First, so it is seen: AWS shaping traffic looks like loss nothing else here explains.
  const auto warnings = allowance_warnings(r);
  for (const auto& w : warnings) os << w << '\n';
  if (!warnings.empty()) os << '\n';
  os << "NAT Gateway metrics (all workers)\n";
  if (r.contains("nat_gateway") && r["nat_gateway"].is_object()) {
    print_nat_gateway(r["nat_gateway"], os);
  }
  if (r.contains("workers") && r["workers"].is_array()) {
    os << "\nWorkers\n";
    Table t({"WORKER", "ACTIVE", "MAX", "PKTS_FROM_SRC", "PKTS_FROM_DST", "DROPS", "CREATED"});
    for (const auto& w : r["workers"]) {
      t.add({cell(w.value("worker", json())), cell(w.value("active_flows", json())),
             cell(w.value("max_flows", json())), std::to_string(counter(w, "PacketsInFromSource")),
             std::to_string(counter(w, "PacketsInFromDestination")),
             std::to_string(counter(w, "PacketsDropCount")),
             std::to_string(counter(w, "flows_created"))});
    }
    t.print(os);
  }
  os << "\nDrops by reason (non-zero)\n";
  bool any = false;
  if (r.contains("drops") && r["drops"].is_object()) {
    Table t({"", ""});
    for (const auto& [reason, n] : r["drops"].items()) {
      if (n.is_number() && n.get<uint64_t>() == 0) continue;
      t.add({reason, cell(n)});
      any = true;
    }
    if (any) t.print(os, "  ", false);
  }
  if (!any) os << "  none\n";
  for (const auto& [k, v] : r.items()) {
    if (k == "nat_gateway" || k == "workers" || k == "drops" || k == "totals") continue;
    if (k == "ports" && v.is_array()) {
      print_ports(v, os);
      continue;
    }
    print_extra_section(k, v, os);
  }
}

std::string endpoint(const json& f, const char* ip, const char* port) {
  return cell(f.value(ip, json())) + ":" + cell(f.value(port, json()));
}

std::string idle(const json& f) {
  if (!f.contains("idle_ms") || !f["idle_ms"].is_number()) return "-";
  const uint64_t ms = f["idle_ms"].get<uint64_t>();
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llu.%llus", static_cast<unsigned long long>(ms / 1000),
                static_cast<unsigned long long>((ms % 1000) / 100));
  return buf;
}

// One table per port: every xstat the PMD reports (troubleshooting), the age of the reading.
void print_xstats(const json& r, std::ostream& os) {
  for (const auto& p : r.value("ports", json::array())) {
    if (!p.is_object()) continue;
    os << "port " << cell(p.value("name", json())) << " (" << cell(p.value("device", json()))
       << ", port " << cell(p.value("port_id", json())) << ")\n";
    if (p.contains("error")) os << "  error: " << cell(p["error"]) << '\n';
    Table t({"", ""});
    const json xs = p.value("xstats", json::object());  // items() must not outlive it
    for (const auto& [name, v] : xs.items()) t.add({name, cell(v)});
    t.print(os, "  ", /*header=*/false);
  }
  if (r.contains("age_ms") && r["age_ms"].is_number()) {
    os << "read " << cell(r["age_ms"]) << " ms ago (the dataplane reads them once a second)\n";
  }
}

void print_flows(const json& r, std::ostream& os) {
  const json flows = r.value("flows", json::array());
  Table t(
      {"PROTO", "INSIDE", "REMOTE", "OUTSIDE", "STATE", "IDLE", "BYTES_OUT", "BYTES_IN", "WORKER"});
  for (const auto& f : flows) {
    // ICMP has an echo id where others have ports, and nothing on the remote side.
    const bool icmp = f.value("proto", json()) == "icmp";
    t.add({cell(f.value("proto", json())), endpoint(f, "inside_ip", "inside_port"),
           icmp ? cell(f.value("remote_ip", json())) : endpoint(f, "remote_ip", "remote_port"),
           endpoint(f, "outside_ip", "outside_port"), cell(f.value("tcp_state", json())), idle(f),
           cell(f.value("bytes_out", json())), cell(f.value("bytes_in", json())),
           cell(f.value("worker", json()))});
  }
  t.print(os, "");
  const uint64_t matched = r.value("matched", static_cast<uint64_t>(flows.size()));
  if (r.value("truncated", false)) {
    os << "showing " << flows.size() << " of " << matched
       << " matching flows (raise --limit to see more)\n";
  } else {
    os << flows.size() << (flows.size() == 1 ? " flow\n" : " flows\n");
  }
}

int report_refusal(const std::string& cmd, const json& resp) {
  std::cerr << "eipgatectl " << cmd << ": " << cell(resp.value("error", json("unknown error")))
            << '\n';
  return kExitRefused;
}

void print_ha_status(const json& r, std::ostream& os) {
  const json peer = r.value("peer", json::object());
  const json sync = r.value("sync", json::object());
  const json dp = r.value("dataplane", json::object());
  Table t({"", ""});
  t.add({"role", cell(r.value("role", json())) + " (epoch " + cell(r.value("epoch", json())) +
                     ", priority " + cell(r.value("priority", json())) + ")"});
  t.add(
      {"instance", cell(r.value("instance_id", json())) + " ENI " + cell(r.value("eni", json()))});
  t.add({"routes", cell(r.value("route", json())) + ": " + cell(r.value("route_detail", json()))});
  t.add({"fenced", cell(r.value("fenced", json()))});
  if (const json sa = r.value("service_address", json::object()); !sa.empty()) {
    // One row per service address: private IP / EIP allocation, and the last move's outcome.
    const json list = sa.value("addresses", json::array());
    for (size_t i = 0; i < list.size(); ++i) {
      const json& a = list[i];
      std::string what = a.value("private_ip", json()).is_null()
                             ? std::string("primary IP")
                             : cell(a.value("private_ip", json()));
      if (!a.value("allocation_id", json()).is_null()) {
        what += " EIP " + cell(a.value("allocation_id", json()));
      }
      t.add({i == 0 ? "service addresses" : "", what + " (" + cell(sa.value("mode", json())) +
                                                    "): " + cell(a.value("detail", json()))});
    }
  }
  t.add({"dataplane", std::string(dp.value("healthy", false) ? "healthy" : "unhealthy") + " (" +
                          cell(dp.value("detail", json())) + "), sync socket " +
                          (dp.value("sync_connected", false) ? "connected" : "disconnected")});
  t.add({"peer", cell(peer.value("address", json())) + " " + cell(peer.value("state", json())) +
                     (peer.value("alive", false) ? ", alive" : ", silent") + ", epoch " +
                     cell(peer.value("epoch", json())) + ", last heard " +
                     cell(peer.value("last_heard_ms", json())) + " ms ago"});
  t.add({"last takeover", cell(r.value("last_takeover", json()))});
  t.print(os, "", false);
  os << "sync:\n";
  Table st({"sent", "received", "applied", "lag", "in_sync", "snapshots_sent", "snapshots_received",
            "gaps"});
  st.add({cell(sync.value("sent", json())), cell(sync.value("received", json())),
          cell(sync.value("applied", json())), cell(sync.value("lag", json())),
          cell(sync.value("in_sync", json())), cell(sync.value("snapshots_sent", json())),
          cell(sync.value("snapshots_received", json())), cell(sync.value("gaps", json()))});
  st.print(os);
  if (const json fb = r.value("fallback", json::array()); !fb.empty()) {
    os << "cross-AZ fallback:\n";
    Table ft({"route_tables", "watched", "target", "phase", "replacements", "reason"});
    for (const auto& f : fb) {
      auto joined = [](const json& list) {
        std::string s;
        for (const auto& v : list) s += (s.empty() ? "" : ",") + cell(v);
        return s;
      };
      ft.add({joined(f.value("route_tables", json::array())),
              joined(f.value("instances", json::array())), cell(f.value("target", json())),
              cell(f.value("phase", json())), cell(f.value("replacements", json())),
              cell(f.value("reason", json()))});
    }
    ft.print(os);
  }
  os << "recent decisions:\n";
  for (const auto& d : r.value("decisions", json::array())) {
    os << "  " << cell(d.value("decision", json())) << '\n';
  }
}

// ha-status and failover talk to eipgate-control, not to the dataplane.
int run_control(const std::string& socket_path, bool failover, bool as_json, double timeout_s,
                double wait_s) {
  eipgate::admin::AdminClient client(socket_path, static_cast<int>(timeout_s * 1000));
  json resp;
  eipgate::admin::ClientError err;
  const std::string cmd = failover ? "failover" : "status";
  const std::string name = failover ? "failover" : "ha-status";
  if (!client.call(cmd, json::object(), &resp, &err)) {
    std::cerr << "eipgatectl: " << err.message
              << (err.kind == eipgate::admin::ClientError::Kind::Connect
                      ? " (is eipgate-control running? --control-socket)"
                      : "")
              << '\n';
    return kExitUnreachable;
  }
  if (!resp.value("ok", false)) return report_refusal(name, resp);
  json result = resp.value("result", json());
  if (failover) {
    // The handover completes asynchronously: wait until this instance is no longer active.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000));
    json st;
    bool done = wait_s <= 0;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!client.call("status", json::object(), &resp, &err)) {
        std::cerr << "eipgatectl: " << err.message << '\n';
        return kExitUnreachable;
      }
      st = resp.value("result", json());
      done = st.value("role", std::string()) != "active";
    }
    result["completed"] = done;
    if (!st.is_null()) result["role"] = st.value("role", json());
    if (as_json) {
      std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
    } else {
      std::cout << "handover " << cell(result.value("handover_id", json()))
                << (done ? (wait_s <= 0 ? " requested"
                                        : ": the peer took over; this instance is now " +
                                              cell(result.value("role", json())))
                         : ": still active after the wait (see eipgatectl ha-status)")
                << '\n';
    }
    return done ? kExitOk : kExitRefused;
  }
  if (as_json) {
    std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
  } else {
    print_ha_status(result, std::cout);
  }
  return kExitOk;
}

// `probe ADDRESS PORT`: one SYN through the NAT from probe.source; waits for the answer.
int run_probe(const std::string& socket_path, const std::string& address, uint16_t port,
              double wait_s, bool as_json, double timeout_s) {
  eipgate::admin::AdminClient client(socket_path, static_cast<int>(timeout_s * 1000));
  json resp;
  eipgate::admin::ClientError err;
  if (!client.call("probe", {{"address", address}, {"port", port}}, &resp, &err)) {
    std::cerr << "eipgatectl: " << err.message << '\n';
    return kExitUnreachable;
  }
  if (!resp["ok"].get<bool>()) return report_refusal("probe", resp);
  const json started = resp["result"].value("started", json::object());
  const uint64_t id = started.value("id", uint64_t{0});
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(wait_s * 1000));
  json last;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!client.call("probe", json::object(), &resp, &err)) {
      std::cerr << "eipgatectl: " << err.message << '\n';
      return kExitUnreachable;
    }
    if (!resp["ok"].get<bool>()) return report_refusal("probe", resp);
    last = resp["result"].value("last", json::object());
    if (last.value("id", uint64_t{0}) != id) {
      std::cerr << "eipgatectl: another probe was started meanwhile\n";
      return kExitNoAnswer;
    }
    if (last.value("state", std::string()) != "pending") break;
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  const std::string state = last.value("state", std::string());
  if (as_json) {
    // The probe, and the dataplane's probe counters (strays: answers that matched no probe).
    json out = last;
    for (const char* k : {"sent", "answered", "strays"})
      out[k] = resp["result"].value(k, uint64_t{0});
    std::cout << out.dump(2) << '\n';
  } else if (state == "pending") {
    std::cout << address << ':' << port << ": no answer within " << wait_s << " s (from "
              << cell(started.value("source", json())) << " through the NAT)\n";
  } else {
    std::cout << address << ':' << port << ": " << state << " in "
              << static_cast<double>(last.value("rtt_us", uint64_t{0})) / 1000.0 << " ms (from "
              << cell(started.value("source", json())) << " through the NAT)\n";
  }
  return state == "syn-ack" || state == "rst" ? kExitOk : kExitNoAnswer;
}

// `who`: which inside address:port used an outside address:port at a time, from the local
// translation log (current file and rotated ones).
int run_who(const std::string& tuple, const std::string& at, std::string log_path,
            const std::string& config_path, bool as_json) {
  uint64_t at_ms = 0;
  if (!eipgate::txlog::parse_time(at, &at_ms)) {
    std::cerr << "eipgatectl: --at '" << at
              << "' is neither ISO 8601 (2026-12-05T12:34:56Z) nor unix seconds\n";
    return kExitUsage;
  }
  if (tuple.find(':') == std::string::npos) {
    std::cerr << "eipgatectl: '" << tuple << "' is not <outside-ip>:<port>\n";
    return kExitUsage;
  }
  if (log_path.empty()) {
    const auto loaded = eipgate::dataplane::load_config(config_path);
    if (!loaded.config) {
      std::cerr << "eipgatectl: " << loaded.error->to_string() << '\n';
      return kExitUsage;
    }
    log_path = loaded.config->translation_log.path;
  }
  const std::vector<std::string> files = eipgate::txlog::log_files(log_path);
  if (files.empty()) {
    std::cerr << "eipgatectl: no translation log at " << log_path << " (nor rotated files)\n";
    return kExitUnreachable;
  }
  uint64_t bad = 0;
  const auto uses = eipgate::txlog::who(files, tuple, at_ms, &bad);
  if (bad != 0) std::cerr << "eipgatectl: " << bad << " unreadable line(s) skipped\n";
  if (as_json) {
    json out = json::array();
    for (const auto& u : uses) {
      json j = {{"proto", u.proto},
                {"inside", u.inside},
                {"outside", u.outside},
                {"remote", u.remote},
                {"open", eipgate::txlog::iso8601_ms(u.open_ms)},
                {"close", u.close_ms ? json(eipgate::txlog::iso8601_ms(*u.close_ms)) : json()},
                {"end", u.end.empty() ? json() : json(u.end)},
                {"rule", u.rule.empty() ? json() : json(u.rule)},
                {"synced", u.synced}};
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << '\n';
  } else if (uses.empty()) {
    std::cout << "no connection used " << tuple << " at " << eipgate::txlog::iso8601_ms(at_ms)
              << " (" << files.size() << " file(s) read)\n";
  } else {
    for (const auto& u : uses) {
      std::cout << u.inside << " -> " << u.remote << " via " << u.outside << " " << u.proto
                << " open " << eipgate::txlog::iso8601_ms(u.open_ms) << " close "
                << (u.close_ms ? eipgate::txlog::iso8601_ms(*u.close_ms) : std::string("-"))
                << (u.end.empty() ? "" : " end " + u.end)
                << (u.rule.empty() ? "" : " rule " + u.rule) << (u.synced ? " (taken over)" : "")
                << '\n';
    }
  }
  return uses.empty() ? kExitNotFound : kExitOk;
}

int run(int argc, char** argv) {
  CLI::App app{
      "eipgatectl: inspect and control a running eipgate-dataplane.\n"
      "Exit codes: 0 ok, 1 refused by the dataplane, 2 usage, 3 dataplane unreachable, "
      "4 unhealthy. ha-status and failover talk to eipgate-control (--control-socket).",
      "eipgatectl"};
  app.fallthrough();  // global options may follow the subcommand
  app.set_version_flag("--version", std::string("eipgatectl ") + EIPGATE_VERSION);

  std::string socket_path = kDefaultSocket;
  bool as_json = false;
  double timeout_s = 10;
  app.add_option("--socket", socket_path, "admin socket of eipgate-dataplane")
      ->envname("EIPGATE_ADMIN_SOCKET")
      ->capture_default_str();
  app.add_flag("--json", as_json, "print the dataplane's JSON result instead of tables");
  app.add_option("--timeout", timeout_s, "seconds to wait for each answer")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();

  auto* stats = app.add_subcommand(
      "stats", "counters: NAT Gateway metrics, workers, drops, ports (ENA allowances)");
  auto* xstats = app.add_subcommand("xstats", "every port's DPDK extended statistics");
  auto* flows = app.add_subcommand("flows", "dump tracked connections");
  std::string proto, inside, remote;
  std::optional<uint16_t> port;
  uint32_t limit = 1000;
  flows->add_option("--proto", proto, "tcp, udp, icmp or a protocol number");
  flows->add_option("--inside", inside, "inside address or prefix (10.0.1.0/24)");
  flows->add_option("--remote", remote, "remote address or prefix");
  flows->add_option("--port", port, "outside (translated) port");
  flows->add_option("--limit", limit, "most flows to show (the dataplane caps it)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* reload = app.add_subcommand("reload", "load a new configuration atomically");
  std::string reload_file;
  reload->add_option("FILE", reload_file, "configuration file (YAML)")->required();
  auto* health = app.add_subcommand("health", "is the dataplane healthy (exit 4 if not)");
  auto* version = app.add_subcommand("version", "versions of eipgatectl and the dataplane");
  std::string control_socket = kDefaultControlSocket;
  app.add_option("--control-socket", control_socket, "admin socket of eipgate-control")
      ->envname("EIPGATE_CONTROL_SOCKET")
      ->capture_default_str();
  auto* ha_status = app.add_subcommand(
      "ha-status", "HA role, peer, sync counters, egress probes, decisions (alias: status)");
  ha_status->alias("status");
  auto* failover = app.add_subcommand(
      "failover", "planned handover: the active syncs, then the peer takes the role (zero loss)");
  double wait_s = 15;
  failover->add_option("--wait", wait_s, "seconds to wait for the peer to take over (0: no wait)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();

  auto* probe = app.add_subcommand(
      "probe", "one TCP SYN through the NAT from probe.source (exit 5 without an answer)");
  std::string probe_address;
  uint16_t probe_port = 443;
  double probe_wait_s = 2;
  probe->add_option("ADDRESS", probe_address, "IPv4 address to probe")->required();
  probe->add_option("PORT", probe_port, "TCP port")->capture_default_str();
  probe->add_option("--wait", probe_wait_s, "seconds to wait for the answer")
      ->check(CLI::Range(0.01, 60.0))
      ->capture_default_str();

  auto* who = app.add_subcommand(
      "who", "which inside address:port used an outside address:port at a time (exit 6: none)");
  std::string who_tuple, who_at, who_log;
  std::string who_config = "/etc/eipgate/eipgate.yaml";
  who->add_option("TUPLE", who_tuple, "<outside-ip>:<port>")->required();
  who->add_option("--at", who_at, "ISO 8601 time (2026-12-05T12:34:56Z) or unix seconds")
      ->required();
  who->add_option("--log", who_log, "translation log file (default: the config's path)");
  who->add_option("--config", who_config, "dataplane config naming translation_log.path")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return kExitUsage;
  }
  if (who->parsed()) return run_who(who_tuple, who_at, who_log, who_config, as_json);
  if (probe->parsed()) {
    return run_probe(socket_path, probe_address, probe_port, probe_wait_s, as_json, timeout_s);
  }
  if (ha_status->parsed() || failover->parsed()) {
    return run_control(control_socket, failover->parsed(), as_json, timeout_s, wait_s);
  }

  std::string cmd;
  json args = json::object();
  if (stats->parsed()) {
    cmd = "stats";
  } else if (xstats->parsed()) {
    cmd = "xstats";
  } else if (flows->parsed()) {
    cmd = "flows";
    if (!proto.empty()) args["proto"] = proto;
    if (!inside.empty()) args["inside"] = inside;
    if (!remote.empty()) args["remote"] = remote;
    if (port) args["outside_port"] = *port;
    args["limit"] = limit;
  } else if (reload->parsed()) {
    cmd = "reload";
    // The dataplane runs elsewhere (another cwd), so a relative path must be resolved here.
    std::error_code ec;
    auto abs = std::filesystem::absolute(reload_file, ec);
    args["path"] = ec ? reload_file : abs.lexically_normal().string();
  } else if (health->parsed()) {
    cmd = "health";
  } else if (version->parsed()) {
    cmd = "version";
  }

  eipgate::admin::AdminClient client(socket_path, static_cast<int>(timeout_s * 1000));
  json resp;
  eipgate::admin::ClientError err;
  if (!client.call(cmd, args, &resp, &err)) {
    std::cerr << "eipgatectl: " << err.message << '\n';
    return kExitUnreachable;
  }
  if (!resp["ok"].get<bool>()) return report_refusal(cmd, resp);
  const json result = resp.value("result", json());

  if (as_json) {
    std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
    // stdout stays the JSON alone; the warning still reaches whoever runs it.
    if (cmd == "stats") {
      for (const auto& w : allowance_warnings(result)) std::cerr << "eipgatectl: " << w << '\n';
    }
  } else if (cmd == "stats") {
    print_stats(result, std::cout);
  } else if (cmd == "xstats") {
    print_xstats(result, std::cout);
  } else if (cmd == "flows") {
    print_flows(result, std::cout);
  } else if (cmd == "reload") {
    std::cout << "reloaded " << args["path"].get<std::string>() << '\n';
    if (result.is_object() && !result.empty()) print_key_values(result, std::cout);
  } else if (cmd == "health") {
    if (result.is_object()) {
      print_key_values(result, std::cout);
    } else {
      std::cout << cell(result) << '\n';
    }
  } else if (cmd == "version") {
    std::cout << "eipgatectl " << EIPGATE_VERSION << "\neipgate-dataplane "
              << cell(result.value("version", json())) << " (admin protocol "
              << cell(result.value("protocol", json())) << ")\n";
  }
  std::cout.flush();

  if (cmd == "health") {
    const bool healthy = result.is_object() && result.value("status", std::string()) == "ok";
    return healthy ? kExitOk : kExitUnhealthy;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // Anything unexpected (an answer of the wrong shape, a failed write to stdout) is reported as
  // an error of talking to the dataplane rather than as an abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "eipgatectl: " << e.what() << '\n';
    return kExitUnreachable;
  }
}

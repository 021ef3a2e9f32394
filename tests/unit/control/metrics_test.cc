// The /metrics mapping: a dataplane `stats` answer (from the dataplane's own serializer, with the
// ENA allowance section of ports) and a daemon `status` → Prometheus text, names, labels and
// values.
#include "control/daemon/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/admin/port_xstats.h"
#include "dataplane/admin/stats_json.h"
#include "dataplane/engine/counters.h"
#include "dataplane/engine/engine.h"

namespace eipgate::control {
namespace {

using nlohmann::json;

// The dataplane's `stats` answer, made by the dataplane's own serializer (stats_to_json) from two
// workers' EngineStats, so a renamed key or counter breaks this test. The ENA allowance section is
// filtered by the dataplane's allowance_counters() from raw xstats names.
json fake_stats() {
  using engine::DropReason;
  using engine::Event;
  auto worker = [](uint64_t active, uint64_t attempts, uint64_t created, uint64_t no_flow,
                   uint64_t port_alloc) {
    engine::EngineStats s;
    s.active_flows = active;
    s.active_tcp_flows = active;  // all TCP here: ActiveConnectionCount counts TCP only
    s.max_flows = 1000;
    s.memory_bytes = 65536;
    s.counters.add(Event::ConnectionAttemptCount, attempts);
    s.counters.add(Event::FlowsCreated, created);
    for (uint64_t i = 0; i < no_flow; ++i) s.counters.drop(DropReason::NoFlowOutside);
    for (uint64_t i = 0; i < port_alloc; ++i) s.counters.drop(DropReason::PortAllocation);
    return s;
  };
  engine::EngineStats w0 = worker(4, 100, 5, 11, 2);
  w0.active_flows += 5;  // UDP/ICMP flows: ActiveNonTcpFlowCount, not ActiveConnectionCount
  w0.counters.add(Event::ErrorPortAllocation, 2);
  w0.counters.add(Event::BytesOutToDestination, 123456789012ULL);
  const engine::EngineStats w1 = worker(3, 100, 2, 31, 0);
  json stats = admin::stats_to_json({w0, w1});
  const std::vector<admin::XstatValue> outside_xstats = {{"rx_good_packets", 99},
                                                         {"pps_allowance_exceeded", 17},
                                                         {"conntrack_allowance_available", 250000}};
  stats["ports"] = {{{"name", "outside"}, {"allowance", admin::allowance_counters(outside_xstats)}},
                    {{"name", "inside"}}};  // not an ENA port: no allowance, no series
  return stats;
}

json fake_status() {
  return {
      {"role", "standby"},
      {"epoch", 3},
      {"fenced", false},
      {"service_address",
       {{"mode", "secondary-ip"},
        {"count", 2},
        {"addresses",
         {{{"private_ip", "10.0.0.100"},
           {"allocation_id", "eipalloc-0aa00000000000001"},
           {"moved", true},
           {"detail", "moved"}},
          {{"private_ip", "10.0.0.101"},
           {"allocation_id", nullptr},
           {"moved", false},
           {"detail", "not moved yet"}}}}}},
      {"takeovers", 2},
      {"takeover_failures", 0},
      {"last_takeover_ms", 431},
      {"dataplane", {{"healthy", true}, {"detail", "ok"}, {"sync_connected", true}}},
      {"peer", {{"alive", true}, {"state", "active"}, {"last_heard_ms", 50}}},
      {"sync",
       {{"sent", 0},
        {"received", 900},
        {"applied", 890},
        {"lag", 10},
        {"in_sync", true},
        {"snapshots_sent", 0},
        {"snapshots_received", 1},
        {"gaps", 0},
        {"resync_requests", 1}}},
      {"heartbeats", {{"sent", 50}, {"received", 48}, {"missed", 2}, {"drops", {{"bad_mac", 3}}}}},
      {"aws",
       {{"retries", 4},
        {"errors", {{"throttling", 1}, {"auth", 0}}},
        {"credential_refreshes", 1}}}};
}

struct Scrape {
  std::string text;
  std::map<std::string, double> samples;  // "name{labels}" → value
};

Scrape scrape(const MetricsSnapshot& s) {
  Scrape out;
  out.text = prometheus::TextSerializer().Serialize(s.Collect());
  std::istringstream in(out.text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out.samples[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

TEST(MetricsTest, SnakeCaseOfCloudWatchNames) {
  EXPECT_EQ(snake_case("ActiveConnectionCount"), "active_connection_count");
  EXPECT_EQ(snake_case("BytesOutToDestination"), "bytes_out_to_destination");
  EXPECT_EQ(snake_case("PacketsDropCount"), "packets_drop_count");
  EXPECT_EQ(snake_case("ErrorPortAllocation"), "error_port_allocation");
  EXPECT_EQ(snake_case("TCPResets"), "tcp_resets");
  EXPECT_EQ(snake_case("flows_created"), "flows_created");
}

TEST(MetricsTest, DataplaneCountersUnderNatGatewayNames) {
  MetricsSnapshot s;
  s.set_stats(fake_stats());
  const Scrape m = scrape(s);
  EXPECT_EQ(m.samples.at("eipgate_dataplane_up"), 1);
  EXPECT_EQ(m.samples.at("eipgate_natgw_active_connection_count"), 7);
  EXPECT_EQ(m.samples.at("eipgate_natgw_active_non_tcp_flow_count"), 5);
  EXPECT_NE(m.text.find("# TYPE eipgate_natgw_active_non_tcp_flow_count gauge"), std::string::npos)
      << m.text;
  EXPECT_EQ(m.samples.at("eipgate_natgw_connection_attempt_count"), 200);
  EXPECT_EQ(m.samples.at("eipgate_natgw_bytes_out_to_destination"), 123456789012.0);
  EXPECT_EQ(m.samples.at("eipgate_natgw_error_port_allocation"), 2);
  EXPECT_EQ(m.samples.at("eipgate_natgw_packets_drop_count"), 44);
  EXPECT_NE(m.text.find("# TYPE eipgate_natgw_active_connection_count gauge"), std::string::npos)
      << m.text;
  EXPECT_NE(m.text.find("# TYPE eipgate_natgw_bytes_out_to_destination counter"),
            std::string::npos);
  EXPECT_NE(m.text.find("# HELP eipgate_natgw_bytes_out_to_destination CloudWatch NAT Gateway "
                        "metric BytesOutToDestination"),
            std::string::npos)
      << m.text;

  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_drops_total{reason="no_flow_outside"})"), 42);
  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_drops_total{reason="port_allocation"})"), 2);
  EXPECT_NE(m.text.find("# TYPE eipgate_dataplane_drops_total counter"), std::string::npos);
  // Engine events not already exported under a CloudWatch name.
  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_events_total{event="flows_created"})"), 7);
  EXPECT_EQ(m.samples.count(R"(eipgate_dataplane_events_total{event="ConnectionAttemptCount"})"),
            0u);
  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_worker_active_flows{worker="0"})"), 9);  // 4 TCP + 5
  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_worker_active_flows{worker="1"})"), 3);
  EXPECT_EQ(m.samples.at(R"(eipgate_dataplane_worker_max_flows{worker="1"})"), 1000);

  EXPECT_EQ(m.samples.at(R"(eipgate_ena_pps_allowance_exceeded{port="outside"})"), 17);
  EXPECT_EQ(m.samples.at(R"(eipgate_ena_conntrack_allowance_available{port="outside"})"), 250000);
  EXPECT_NE(m.text.find("# TYPE eipgate_ena_pps_allowance_exceeded counter"), std::string::npos);
  EXPECT_NE(m.text.find("# TYPE eipgate_ena_conntrack_allowance_available gauge"),
            std::string::npos);
  EXPECT_EQ(m.text.find(R"(port="inside")"), std::string::npos);
}

TEST(MetricsTest, EnaPortWithoutANameIsLabelledByIndex) {
  json stats = {
      {"ports", json::array({json::object(), {{"allowance", {{"bw_in_allowance_exceeded", 5}}}}})}};
  const auto fams = dataplane_families(stats);
  ASSERT_EQ(fams.size(), 1u);
  EXPECT_EQ(fams[0].name, "eipgate_ena_bw_in_allowance_exceeded");
  ASSERT_EQ(fams[0].metric.size(), 1u);
  EXPECT_EQ(fams[0].metric[0].label.at(0).value, "1");
  EXPECT_EQ(fams[0].metric[0].counter.value, 5);
}

TEST(MetricsTest, HaFigures) {
  MetricsSnapshot s;
  s.set_status(fake_status());
  const Scrape m = scrape(s);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_role{role="standby"})"), 1);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_role{role="active"})"), 0);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_role{role="init"})"), 0);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_role{role="failed"})"), 0);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_peer_role{role="active"})"), 1);
  EXPECT_EQ(m.samples.at("eipgate_ha_epoch"), 3);
  EXPECT_EQ(m.samples.at("eipgate_ha_fenced"), 0);
  EXPECT_EQ(m.samples.at("eipgate_ha_failovers_total"), 2);
  EXPECT_EQ(m.samples.at("eipgate_ha_service_addresses"), 2);
  EXPECT_EQ(
      m.samples.at(
          R"(eipgate_ha_service_address_moved{private_ip="10.0.0.100",allocation_id="eipalloc-0aa00000000000001"})"),
      1)
      << m.text;
  EXPECT_EQ(
      m.samples.at(R"(eipgate_ha_service_address_moved{private_ip="10.0.0.101",allocation_id=""})"),
      0);
  EXPECT_DOUBLE_EQ(m.samples.at("eipgate_ha_last_takeover_seconds"), 0.431);
  EXPECT_EQ(m.samples.at("eipgate_ha_sync_lag_events"), 10);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_sync_events_total{direction="received"})"), 900);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_sync_events_total{direction="applied"})"), 890);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_sync_events_total{direction="sent"})"), 0);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_sync_snapshots_total{direction="received"})"), 1);
  EXPECT_EQ(m.samples.at("eipgate_ha_heartbeats_received_total"), 48);
  EXPECT_EQ(m.samples.at("eipgate_ha_heartbeats_missed_total"), 2);
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_heartbeats_dropped_total{reason="bad_mac"})"), 3);
  // Reasons never seen are exported as 0, not left out.
  EXPECT_EQ(m.samples.at(R"(eipgate_ha_heartbeats_dropped_total{reason="replay"})"), 0) << m.text;
  EXPECT_DOUBLE_EQ(m.samples.at("eipgate_ha_peer_last_heard_seconds"), 0.05);
  EXPECT_EQ(m.samples.at("eipgate_ha_peer_up"), 1);
  EXPECT_EQ(m.samples.at("eipgate_aws_api_retries_total"), 4);
  EXPECT_EQ(m.samples.at(R"(eipgate_aws_api_errors_total{kind="throttling"})"), 1);
  EXPECT_EQ(m.samples.at("eipgate_aws_credential_refreshes_total"), 1);
  EXPECT_EQ(m.samples.at("eipgate_dataplane_healthy"), 1);
  EXPECT_NE(m.text.find("# TYPE eipgate_ha_failovers_total counter"), std::string::npos);
  EXPECT_NE(m.text.find("# TYPE eipgate_ha_role gauge"), std::string::npos);
}

TEST(MetricsTest, UnreachableDataplaneDropsItsFamiliesInsteadOfFreezingThem) {
  MetricsSnapshot s;
  EXPECT_EQ(scrape(s).samples.at("eipgate_dataplane_up"), 0);  // no answer yet
  s.set_stats(fake_stats());
  s.set_status(fake_status());
  EXPECT_EQ(scrape(s).samples.count("eipgate_natgw_active_connection_count"), 1u);
  s.set_stats(std::nullopt);
  const Scrape m = scrape(s);
  EXPECT_EQ(m.samples.at("eipgate_dataplane_up"), 0);
  EXPECT_EQ(m.samples.count("eipgate_natgw_active_connection_count"), 0u);
  EXPECT_EQ(m.samples.count("eipgate_ha_epoch"), 1u);  // the daemon's own figures stay
}

TEST(MetricsTest, MalformedAnswersGiveNoSeriesAndNoCrash) {
  for (const json& j : {json(nullptr), json(42), json::array(), json{{"nat_gateway", "x"}},
                        json{{"workers", {1, "a"}}, {"ports", {{{"allowance", 3}}}}},
                        json{{"drops", {{"x", "not a number"}}}}}) {
    EXPECT_TRUE(dataplane_families(j).empty()) << j.dump();
  }
  EXPECT_TRUE(ha_families(json(nullptr)).empty());
  EXPECT_FALSE(ha_families(json{{"role", 5}}).empty());  // wrong types: defaults, no throw
}

TEST(MetricsTest, HeartbeatGapsCountMissedHeartbeats) {
  using std::chrono::milliseconds;
  HeartbeatGapCounter c;
  c.on_heartbeat(milliseconds(1000), milliseconds(100), 7);
  c.on_heartbeat(milliseconds(1140), milliseconds(100), 7);  // jitter: not a loss
  EXPECT_EQ(c.missed(), 0u);
  c.on_heartbeat(milliseconds(1480), milliseconds(100), 7);  // 340 ms: 2 missed
  EXPECT_EQ(c.missed(), 2u);
  c.on_heartbeat(milliseconds(9000), milliseconds(100), 8);  // the peer restarted: no loss
  EXPECT_EQ(c.missed(), 2u);
  c.on_heartbeat(milliseconds(9300), milliseconds(100), 8);
  EXPECT_EQ(c.missed(), 4u);
}

}  // namespace
}  // namespace eipgate::control

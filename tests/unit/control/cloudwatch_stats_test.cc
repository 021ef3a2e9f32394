// The CloudWatch collector on the dataplane's real `stats` answer: made by the dataplane's own
// serializer (admin::stats_to_json) from two workers' EngineStats, so a renamed or added NAT
// Gateway counter shows here as a changed set of CloudWatch metric names or values.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "control/daemon/cloudwatch_publisher.h"
#include "control/daemon/metrics.h"
#include "dataplane/admin/stats_json.h"
#include "dataplane/engine/counters.h"
#include "dataplane/engine/engine.h"

namespace eipgate::control {
namespace {

using engine::Event;

nlohmann::json stats(uint64_t scale, uint64_t active) {
  engine::EngineStats w0, w1;
  // ActiveConnectionCount counts TCP only (as NAT Gateway does); the UDP/ICMP flows beside them
  // must not reach it.
  w0.active_flows = active + 3;
  w0.active_tcp_flows = active;
  w1.active_flows = 2;
  w1.active_tcp_flows = 1;
  // Every counter of the NAT Gateway block moves: worker 0 by scale, worker 1 by 2 x scale.
  for (size_t i = 0; i <= static_cast<size_t>(Event::PacketsOutToSource); ++i) {
    w0.counters.add(static_cast<Event>(i), scale);
    w1.counters.add(static_cast<Event>(i), 2 * scale);
  }
  w0.counters.add(Event::FlowsCreated, 1000 * scale);  // an engine event, not a CloudWatch metric
  return admin::stats_to_json({w0, w1});
}

TEST(CloudWatchOnDataplaneStats, FullSetIsEighteenMetricsWithTheIntervalsDeltas) {
  CloudWatchConfig cfg;
  cfg.enabled = true;
  cfg.metrics = CloudWatchMetricSet::Full;
  cfg.pair_name = "use1-az1-0";
  CloudWatchCollector c(cfg, "us-east-1a");
  c.observe(true, false);
  ASSERT_TRUE(c.finish_interval(stats(10, 5), 1, 100).empty());
  c.observe(true, false);
  const auto data = c.finish_interval(stats(25, 8), 1, 160);
  std::map<std::string, double> got;
  for (const auto& d : data) got[d.name] = d.value;
  const std::set<std::string> want = {"HaActive",
                                      "HaStandby",
                                      "FailoverCount",
                                      "ActiveConnectionCount",
                                      "ActiveNonTcpFlowCount",
                                      "ConnectionAttemptCount",
                                      "ConnectionEstablishedCount",
                                      "ErrorPortAllocation",
                                      "IdleTimeoutCount",
                                      "PacketsDropCount",
                                      "BytesInFromSource",
                                      "BytesOutToDestination",
                                      "BytesInFromDestination",
                                      "BytesOutToSource",
                                      "PacketsInFromSource",
                                      "PacketsOutToDestination",
                                      "PacketsInFromDestination",
                                      "PacketsOutToSource"};
  std::set<std::string> names;
  for (const auto& [k, v] : got) names.insert(k);
  EXPECT_EQ(names, want);
  EXPECT_EQ(data.size(), 18u);
  EXPECT_EQ(got["ActiveConnectionCount"], 9);   // 8 + 1 TCP flows, the level
  EXPECT_EQ(got["ActiveNonTcpFlowCount"], 4);   // 3 + 1 UDP/ICMP flows, a level too
  EXPECT_EQ(got["BytesOutToDestination"], 45);  // (25 - 10) x 3 workers' worth
  EXPECT_EQ(got["ErrorPortAllocation"], 45);
  EXPECT_EQ(got["PacketsOutToSource"], 45);
  EXPECT_EQ(got["FailoverCount"], 0);

  // The default set on the same answer: the alarm metrics only.
  cfg.metrics = CloudWatchMetricSet::Default;
  CloudWatchCollector d(cfg, "us-east-1a");
  d.observe(true, false);
  (void)d.finish_interval(stats(10, 5), 0, 100);
  d.observe(true, false);
  std::set<std::string> small;
  for (const auto& x : d.finish_interval(stats(25, 8), 1, 160)) small.insert(x.name);
  EXPECT_EQ(small, (std::set<std::string>{"HaActive", "HaStandby", "FailoverCount",
                                          "ErrorPortAllocation", "PacketsDropCount"}));
}

// status.cloudwatch → eipgate_cloudwatch_* on /metrics; nothing when CloudWatch is off.
TEST(CloudWatchOnMetrics, PublisherCountersBecomeFamilies) {
  const nlohmann::json on = {{"cloudwatch",
                              {{"enabled", true},
                               {"requests_ok", 12},
                               {"requests_failed", 1},
                               {"datapoints_sent", 170},
                               {"datapoints_failed", 17},
                               {"datapoints_dropped", 34},
                               {"intervals_queued", 13},
                               {"intervals_sent", 10},
                               {"intervals_failed", 1},
                               {"intervals_dropped", 2},
                               {"retries", 3},
                               {"queued", 0}}}};
  std::map<std::string, double> got;
  for (const auto& f : ha_families(on)) {
    for (const auto& m : f.metric) {
      std::string key = f.name;
      for (const auto& l : m.label) key += "{" + l.name + "=" + l.value + "}";
      got[key] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  EXPECT_EQ(got["eipgate_cloudwatch_requests_total{result=ok}"], 12);
  EXPECT_EQ(got["eipgate_cloudwatch_requests_total{result=failed}"], 1);
  EXPECT_EQ(got["eipgate_cloudwatch_datapoints_total{result=sent}"], 170);
  EXPECT_EQ(got["eipgate_cloudwatch_datapoints_total{result=dropped}"], 34);
  EXPECT_EQ(got["eipgate_cloudwatch_intervals_total{result=dropped}"], 2);
  EXPECT_EQ(got["eipgate_cloudwatch_retries_total"], 3);
  EXPECT_EQ(got.count("eipgate_cloudwatch_queue_intervals"), 1u);
  for (const auto& f : ha_families({{"cloudwatch", {{"enabled", false}}}})) {
    EXPECT_NE(f.name.rfind("eipgate_cloudwatch", 0), 0u) << f.name;
  }
}

// status.cloudwatch_logs → eipgate_cloudwatch_logs_* on /metrics; nothing when it is off.
TEST(CloudWatchLogsOnMetrics, ShipperCountersBecomeFamilies) {
  const nlohmann::json on = {{"cloudwatch_logs",
                              {{"enabled", true},
                               {"requests_ok", 7},
                               {"requests_failed", 2},
                               {"events_sent", 900},
                               {"events_rejected", 1},
                               {"events_failed", 20},
                               {"events_dropped_budget", 300},
                               {"events_dropped_queue", 4},
                               {"events_dropped_long", 5},
                               {"bytes_sent", 250000},
                               {"bytes_dropped", 80000},
                               {"retries", 3},
                               {"rotations", 2},
                               {"queued_bytes", 512}}}};
  std::map<std::string, double> got;
  for (const auto& f : ha_families(on)) {
    for (const auto& m : f.metric) {
      std::string key = f.name;
      for (const auto& l : m.label) key += "{" + l.name + "=" + l.value + "}";
      got[key] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  EXPECT_EQ(got["eipgate_cloudwatch_logs_requests_total{result=ok}"], 7);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_requests_total{result=failed}"], 2);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=sent}"], 900);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=dropped_budget}"], 300);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=dropped_queue}"], 4);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=dropped_long}"], 5);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=failed}"], 20);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_events_total{result=rejected}"], 1);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_bytes_total{result=sent}"], 250000);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_bytes_total{result=dropped}"], 80000);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_retries_total"], 3);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_rotations_total"], 2);
  EXPECT_EQ(got["eipgate_cloudwatch_logs_queue_bytes"], 512);
  for (const auto& f : ha_families({{"cloudwatch_logs", {{"enabled", false}}}})) {
    EXPECT_NE(f.name.rfind("eipgate_cloudwatch_logs", 0), 0u) << f.name;
  }
}

}  // namespace
}  // namespace eipgate::control

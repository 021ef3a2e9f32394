// The ENA allowance filter over synthetic xstats names: bare and prefixed names, look-alikes that
// must not match, a port without any (every non-ENA PMD), and the xstats JSON.
#include "dataplane/admin/port_xstats.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace eipgate::admin {
namespace {

TEST(PortXstats, BareEnaNamesAreAllKept) {
  const std::vector<XstatValue> x = {{"rx_good_packets", 100},
                                     {"bw_in_allowance_exceeded", 1},
                                     {"bw_out_allowance_exceeded", 2},
                                     {"pps_allowance_exceeded", 3},
                                     {"conntrack_allowance_exceeded", 4},
                                     {"linklocal_allowance_exceeded", 5},
                                     {"conntrack_allowance_available", 6},
                                     {"tx_q0_packets", 7}};
  const std::map<std::string, uint64_t> want = {
      {"bw_in_allowance_exceeded", 1},     {"bw_out_allowance_exceeded", 2},
      {"pps_allowance_exceeded", 3},       {"conntrack_allowance_exceeded", 4},
      {"linklocal_allowance_exceeded", 5}, {"conntrack_allowance_available", 6}};
  EXPECT_EQ(allowance_counters(x), want);
}

TEST(PortXstats, PrefixedNamesAreKeyedByTheBareName) {
  const std::vector<XstatValue> x = {{"eni_pps_allowance_exceeded", 9},
                                     {"ena.bw_in_allowance_exceeded", 8},
                                     {"port0:conntrack_allowance_available", 7}};
  const std::map<std::string, uint64_t> want = {{"pps_allowance_exceeded", 9},
                                                {"bw_in_allowance_exceeded", 8},
                                                {"conntrack_allowance_available", 7}};
  EXPECT_EQ(allowance_counters(x), want);
}

TEST(PortXstats, LookAlikesDoNotMatch) {
  const std::vector<XstatValue> x = {{"xpps_allowance_exceeded", 1},  // no separator
                                     {"pps_allowance_exceeded_total", 2},
                                     {"pps_allowance", 3},
                                     {"allowance_exceeded", 4},
                                     {"", 5}};
  EXPECT_TRUE(allowance_counters(x).empty());
}

TEST(PortXstats, APortWithoutEnaCountersHasNone) {
  // What af_packet / tap report through ethdev's generic and per-queue xstats.
  const std::vector<XstatValue> x = {{"rx_good_packets", 10}, {"tx_good_packets", 9},
                                     {"rx_good_bytes", 1000}, {"rx_missed_errors", 0},
                                     {"rx_q0_packets", 10},   {"tx_q0_bytes", 900}};
  EXPECT_TRUE(allowance_counters(x).empty());
  EXPECT_TRUE(allowance_counters({}).empty());
}

TEST(PortXstats, TheFirstOfTwoNamesForOneCounterWins) {
  const std::vector<XstatValue> x = {{"pps_allowance_exceeded", 1},
                                     {"eni_pps_allowance_exceeded", 2}};
  EXPECT_EQ(allowance_counters(x).at("pps_allowance_exceeded"), 1u);
}

TEST(PortXstats, ExceededIsTheCounterKindNotTheGauge) {
  EXPECT_TRUE(is_allowance_exceeded("pps_allowance_exceeded"));
  EXPECT_TRUE(is_allowance_exceeded("bw_out_allowance_exceeded"));
  EXPECT_FALSE(is_allowance_exceeded("conntrack_allowance_available"));
}

TEST(PortXstats, XstatsJsonKeepsEveryNameWithItsFirstValue) {
  const auto j =
      xstats_to_json({{"rx_good_packets", 10}, {"tx_errors", 0}, {"rx_good_packets", 99}});
  EXPECT_EQ(j, (nlohmann::json{{"rx_good_packets", 10}, {"tx_errors", 0}}));
  EXPECT_EQ(xstats_to_json({}), nlohmann::json::object());
}

}  // namespace
}  // namespace eipgate::admin

// Tests for common/log.h: level parsing, idempotent init, and that both output formats are usable
// (the JSON format must stay valid JSON whatever the message contains).
#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace eipgate::log {
namespace {

using spdlog::level::level_enum;

struct LevelCase {
  const char* text;
  level_enum expected;
};

void PrintTo(const LevelCase& level_case, std::ostream* os) {
  *os << '"' << level_case.text << '"';
}

class ParseLevelAccepts : public ::testing::TestWithParam<LevelCase> {};

TEST_P(ParseLevelAccepts, KnownName) {
  level_enum out = level_enum::off;
  if (GetParam().expected == level_enum::off) out = level_enum::trace;  // so a no-op write shows
  ASSERT_TRUE(parse_level(GetParam().text, &out)) << GetParam().text;
  EXPECT_EQ(out, GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Names, ParseLevelAccepts,
    ::testing::Values(LevelCase{"trace", level_enum::trace}, LevelCase{"debug", level_enum::debug},
                      LevelCase{"info", level_enum::info}, LevelCase{"warn", level_enum::warn},
                      LevelCase{"warning", level_enum::warn}, LevelCase{"error", level_enum::err},
                      LevelCase{"err", level_enum::err},
                      LevelCase{"critical", level_enum::critical},
                      LevelCase{"off", level_enum::off}, LevelCase{"DEBUG", level_enum::debug},
                      LevelCase{"Info", level_enum::info}),
    [](const ::testing::TestParamInfo<LevelCase>& case_info) {
      return std::string(case_info.param.text);
    });

class ParseLevelRejects : public ::testing::TestWithParam<const char*> {};

TEST_P(ParseLevelRejects, UnknownNameLeavesOutputUntouched) {
  level_enum out = level_enum::critical;
  EXPECT_FALSE(parse_level(GetParam(), &out)) << '"' << GetParam() << '"';
  EXPECT_EQ(out, level_enum::critical);
}

INSTANTIATE_TEST_SUITE_P(Names, ParseLevelRejects,
                         ::testing::Values("", "verbose", "inf", "infos", " info", "info ", "3",
                                           "fatal", "warn\n"));

TEST(ParseLevel, RejectsNullOutput) { EXPECT_FALSE(parse_level("info", nullptr)); }

TEST(ParseLevel, StringViewNeedNotBeNulTerminated) {
  const std::string text = "debugging";
  level_enum out = level_enum::off;
  EXPECT_TRUE(parse_level(std::string_view(text).substr(0, 5), &out));
  EXPECT_EQ(out, level_enum::debug);
}

TEST(Init, TwiceIsHarmlessAndKeepsTheSameLogger) {
  const auto before = get();
  init("log_test", "debug");
  const auto first = get();
  init("log_test", "debug");
  const auto second = get();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first, second);
  EXPECT_EQ(before, first);
  EXPECT_EQ(second->level(), level_enum::debug);
  EXPECT_EQ(spdlog::default_logger(), second);
}

TEST(Init, ReconfiguresLevelOfLoggersAlreadyHandedOut) {
  const auto logger = get();
  init("log_test", "error");
  EXPECT_EQ(logger->level(), level_enum::err);
  init("log_test", "trace");
  EXPECT_EQ(logger->level(), level_enum::trace);
}

TEST(Init, UnknownLevelFallsBackToInfoAndSaysSo) {
  init("log_test", "debug");
  ::testing::internal::CaptureStderr();
  init("log_test", "loud");
  const std::string output = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(get()->level(), level_enum::info);
  EXPECT_NE(output.find("unknown log level 'loud'"), std::string::npos) << output;
}

TEST(Init, ConcurrentCallsAreSafe) {
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) {
        init("log_test", (t % 2 == 0) ? "warn" : "error", /*json=*/(i % 2 == 0));
        EXPECT_NE(get(), nullptr);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const level_enum level = get()->level();
  EXPECT_TRUE(level == level_enum::warn || level == level_enum::err);
}

TEST(Format, TextLineCarriesProgramLevelAndMessage) {
  init("eipgate-test%prog", "info");
  ::testing::internal::CaptureStderr();
  get()->info("hello {}", 42);
  get()->debug("not shown at info");
  const std::string output = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(output.find("eipgate-test%prog["), std::string::npos) << output;
  EXPECT_NE(output.find("info: hello 42"), std::string::npos) << output;
  EXPECT_EQ(output.find("not shown"), std::string::npos) << output;
  EXPECT_EQ(output.back(), '\n');
}

TEST(Format, JsonLineIsValidJsonForAnyMessage) {
  init("prog \"quoted\" %d", "info", /*json=*/true);
  const std::string message = std::string("quote\" backslash\\ newline\n tab\t nul") + '\0' +
                              "\x01 ctl, " + "utf8 \xc3\xa9 bad \xff\xc3 end";
  ::testing::internal::CaptureStderr();
  get()->warn("{}", message);
  const std::string output = ::testing::internal::GetCapturedStderr();

  ASSERT_FALSE(output.empty());
  ASSERT_EQ(output.back(), '\n');
  ASSERT_EQ(output.find('\n'), output.size() - 1) << "one line per record: " << output;
  const auto record = nlohmann::json::parse(output);  // throws (fails the test) if invalid
  EXPECT_EQ(record.at("program"), "prog \"quoted\" %d");
  EXPECT_EQ(record.at("level"), "warning");
  EXPECT_EQ(record.at("msg"), std::string("quote\" backslash\\ newline\n tab\t nul") + '\0' +
                                  "\x01 ctl, " + "utf8 \xc3\xa9 bad \xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_TRUE(record.at("time").is_string());
  EXPECT_TRUE(record.at("pid").is_number_integer());
  EXPECT_TRUE(record.at("tid").is_number_integer());
  init("log_test", "info");  // back to text for whatever runs next
}

TEST(Format, DefaultLoggerRoutesThroughTheSameSink) {
  init("log_test", "info");
  ::testing::internal::CaptureStderr();
  spdlog::info("via default {}", 7);
  const std::string output = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(output.find("via default 7"), std::string::npos) << output;
}

}  // namespace
}  // namespace eipgate::log

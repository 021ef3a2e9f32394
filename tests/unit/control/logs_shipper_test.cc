// eipgate-control's translation-log shipper: the cloudwatch_logs: section (defaults, every key,
// file:line errors, the path taken from translation_log.path), the "t" of a record, the tailer
// (start at the end, partial lines, rotation by rename with the old file finished first,
// truncation, over-long lines), the byte budget, and the shipper thread against a recording
// sender (events equal to the file's lines, chronological batches, budget and queue drops counted,
// failures counted, a deleted stream created again).
#include "control/daemon/logs_shipper.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "control/daemon/daemon_config.h"

namespace eipgate::control {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kBase = R"(mode: one-armed
aws:
  route_tables: {ids: [rtb-0aa00000000000001]}
  service_address: {mode: secondary-ip, private_ip: 10.0.0.100}
  endpoints: {logs: "http://127.0.0.1:8080"}
ha:
  priority: 200
  peers: [10.0.0.6]
  secret_file: /etc/eipgate/ha.key
)";

bool parse(const std::string& extra, DaemonConfig* c, std::string* errors) {
  return parse_daemon_config(std::string(kBase) + extra, "/etc/eipgate/eipgate.yaml", c, errors);
}

TEST(CloudWatchLogsConfig, OffByDefaultWithTheDataplanesPath) {
  DaemonConfig c;
  std::string errors;
  ASSERT_TRUE(parse("", &c, &errors)) << errors;
  EXPECT_FALSE(c.cloudwatch_logs.enabled);
  EXPECT_EQ(c.cloudwatch_logs.path, "/var/log/eipgate/translations.jsonl");
  EXPECT_EQ(c.cloudwatch_logs.interval, std::chrono::seconds(5));
  EXPECT_EQ(c.cloudwatch_logs.byte_budget, 1u << 20);
  EXPECT_EQ(c.aws.endpoints.logs, "http://127.0.0.1:8080");
  // The dataplane's translation_log.path is the default path.
  ASSERT_TRUE(
      parse("translation_log: {enabled: true, path: /data/tx.jsonl}\n"
            "cloudwatch_logs: {enabled: true, log_group: /eipgate/tx}\n",
            &c, &errors))
      << errors;
  EXPECT_EQ(c.cloudwatch_logs.path, "/data/tx.jsonl");
  EXPECT_TRUE(c.cloudwatch_logs.log_stream.empty());  // the instance id at start
}

TEST(CloudWatchLogsConfig, EveryKey) {
  DaemonConfig c;
  std::string errors;
  ASSERT_TRUE(parse(R"(cloudwatch_logs:
  enabled: true
  log_group: /eipgate/translations
  log_stream: pair-a
  path: /tmp/tx.jsonl
  interval: 2s
  byte_budget: 64K
  max_queued: 2M
)",
                    &c, &errors))
      << errors;
  EXPECT_TRUE(c.cloudwatch_logs.enabled);
  EXPECT_EQ(c.cloudwatch_logs.log_group, "/eipgate/translations");
  EXPECT_EQ(c.cloudwatch_logs.log_stream, "pair-a");
  EXPECT_EQ(c.cloudwatch_logs.path, "/tmp/tx.jsonl");
  EXPECT_EQ(c.cloudwatch_logs.interval, std::chrono::seconds(2));
  EXPECT_EQ(c.cloudwatch_logs.byte_budget, 65536u);
  EXPECT_EQ(c.cloudwatch_logs.max_queued, 2u << 20);
}

TEST(CloudWatchLogsConfig, ErrorsNameFileLineAndReason) {
  DaemonConfig c;
  std::string errors;
  EXPECT_FALSE(parse("cloudwatch_logs:\n  enabled: true\n", &c, &errors));
  EXPECT_NE(errors.find("eipgate.yaml:11: cloudwatch_logs.log_group: required when enabled"),
            std::string::npos)
      << errors;
  EXPECT_FALSE(parse("cloudwatch_logs:\n  log_grup: x\n", &c, &errors));
  EXPECT_NE(errors.find(":11:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("did you mean 'log_group'"), std::string::npos) << errors;
  EXPECT_FALSE(
      parse("cloudwatch_logs:\n  byte_budget: 10Q\n  interval: 10m\n  path: rel\n"
            "  log_stream: a:b\n  log_group: 'bad group'\n",
            &c, &errors));
  for (const char* want :
       {":11: cloudwatch_logs.byte_budget", ":12: cloudwatch_logs.interval",
        ":13: cloudwatch_logs.path", ":14: cloudwatch_logs.log_stream", ":15: cloudwatch_logs."}) {
    EXPECT_NE(errors.find(want), std::string::npos) << want << "\n" << errors;
  }
  EXPECT_FALSE(parse("cloudwatch_log: {}\n", &c, &errors));
  EXPECT_NE(errors.find("did you mean 'cloudwatch_logs'"), std::string::npos) << errors;
  EXPECT_EQ(parse_byte_count("3M"), 3u << 20);
  EXPECT_EQ(parse_byte_count("1G"), 1u << 30);
  EXPECT_EQ(parse_byte_count("12"), 12u);
  EXPECT_FALSE(parse_byte_count("M").has_value());
  EXPECT_FALSE(parse_byte_count("-1").has_value());
}

TEST(RecordTime, FromTheTField) {
  EXPECT_EQ(record_time_ms(R"({"t":"2026-12-05T12:34:56.120Z","ev":"open"})"), 1796474096120);
  EXPECT_EQ(record_time_ms(R"({"t":"2026-12-05T12:34:56Z"})"), 1796474096000);
  EXPECT_EQ(record_time_ms(R"({"t":"2026-12-05T12:34:56.1Z"})"), 1796474096100);
  EXPECT_FALSE(record_time_ms("not json").has_value());
  EXPECT_FALSE(record_time_ms(R"({"t":"yesterday"})").has_value());
  EXPECT_FALSE(record_time_ms(R"({"ev":"open"})").has_value());
  EXPECT_FALSE(record_time_ms(R"({"t":"2026-13-05T12:34:56Z"})").has_value());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/eipgate-logs-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::app | std::ios::binary);
  f << text;
}

std::string line(int i) {
  return R"({"t":"2026-12-05T12:34:56.)" + std::to_string(100 + i % 900) +
         R"(Z","ev":"open","n":)" + std::to_string(1000 + i) + "}";
}

TEST(LogTailer, StartsAtTheEndAndReadsWholeLines) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  append(p, "old 1\nold 2\n");
  LogTailer t(p, true);
  EXPECT_TRUE(t.poll().empty());
  append(p, "new 1\nnew 2 part");
  EXPECT_EQ(t.poll(), std::vector<std::string>{"new 1"});
  append(p, "ial\n\n");
  EXPECT_EQ(t.poll(), std::vector<std::string>{"new 2 partial"});
  // from_end false (and a file that appears later): everything from the start.
  const std::string q = d.file("later.jsonl");
  LogTailer u(q, true);
  EXPECT_TRUE(u.poll().empty());
  append(q, "a\nb\n");
  EXPECT_EQ(u.poll(), (std::vector<std::string>{"a", "b"}));
}

TEST(LogTailer, FollowsRotationFinishingTheOldFileFirst) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  append(p, "");
  LogTailer t(p, true);
  append(p, "1\n2\n");
  EXPECT_EQ(t.poll(), (std::vector<std::string>{"1", "2"}));
  // Lines written after our last read, then the rename, no new file yet: the old file's lines.
  append(p, "3\n4\n");
  fs::rename(p, p + ".1");
  EXPECT_EQ(t.poll(), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(t.rotations(), 0u);
  append(p, "5\n");
  EXPECT_EQ(t.poll(), std::vector<std::string>{"5"});
  EXPECT_EQ(t.rotations(), 1u);
  // A line written to the old file after our last read, the rename and the new file's first
  // line all between two polls: the old file is finished first.
  append(p, "6\n");
  fs::rename(p, p + ".1");
  append(p, "7\n");
  EXPECT_EQ(t.poll(), (std::vector<std::string>{"6", "7"}));
  EXPECT_EQ(t.rotations(), 2u);
  // Truncation in place: read again from the start.
  append(p, "a longer line\n");
  EXPECT_EQ(t.poll(), std::vector<std::string>{"a longer line"});
  std::ofstream(p, std::ios::trunc) << "8\n";
  EXPECT_EQ(t.poll(), std::vector<std::string>{"8"});
  EXPECT_EQ(t.truncations(), 1u);
}

TEST(LogTailer, SkipsOverLongLinesAndBoundsARead) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  LogTailer t(p, false);
  append(p, "short\n" + std::string(LogTailer::kMaxLine + 10, 'x') + "\nafter\n");
  EXPECT_EQ(t.poll(), (std::vector<std::string>{"short", "after"}));
  EXPECT_EQ(t.long_lines(), 1u);
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "line " + std::to_string(i) + "\n";
  append(p, many);
  const auto first = t.poll(100);  // at most 100 bytes this time
  EXPECT_LT(first.size(), 20u);
  const auto rest = t.poll();
  EXPECT_EQ(first.size() + rest.size(), 1000u);
  EXPECT_EQ(rest.back(), "line 999");
}

TEST(ByteBudget, RefillsPerMinuteUpToOneMinutesWorth) {
  auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  ByteBudget b(6000, [&] { return now; });
  EXPECT_TRUE(b.take(5000));
  EXPECT_FALSE(b.take(1001));
  EXPECT_TRUE(b.take(1000));
  EXPECT_FALSE(b.take(1));
  now += std::chrono::seconds(1);  // 100 bytes a second
  EXPECT_TRUE(b.take(100));
  EXPECT_FALSE(b.take(1));
  now += std::chrono::hours(1);  // never more than a minute's worth
  EXPECT_TRUE(b.take(6000));
  EXPECT_FALSE(b.take(1));
}

// Records what the shipper sends; can fail on demand.
struct Recorder {
  std::mutex mutex;
  std::vector<std::vector<aws::LogEvent>> calls;
  int fail_next = 0;
  aws::ErrorKind fail_kind = aws::ErrorKind::Server;
  int prepares = 0;

  aws::PutLogEventsResult send(const std::vector<aws::LogEvent>& batch) {
    std::lock_guard lock(mutex);
    if (fail_next > 0) {
      --fail_next;
      throw aws::AwsError(fail_kind,
                          fail_kind == aws::ErrorKind::NotFound ? "ResourceNotFoundException"
                                                                : "ServiceUnavailableException",
                          "scripted");
    }
    calls.push_back(batch);
    return {batch.size(), 0};
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& c : calls) {
      for (const auto& e : c) out.push_back(e.message);
    }
    return out;
  }
};

// Kicks the shipper and waits until it finished a round after the kick.
void one_round(LogsShipper& s) {
  const uint64_t before = s.stats().rounds;
  s.kick();
  for (int i = 0; i < 5000 && s.stats().rounds == before; ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_GT(s.stats().rounds, before) << "the shipper did not finish a round";
}

LogsShipper::Options opts(const std::string& path) {
  LogsShipper::Options o;
  o.path = path;
  o.interval = std::chrono::hours(1);  // rounds only when kicked
  return o;
}

TEST(LogsShipper, ShipsTheLinesAcrossARotationInOrder) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  append(p, line(-1) + "\n");  // before start: not sent
  Recorder r;
  LogsShipper s(
      opts(p), [&](const auto& b) { return r.send(b); },
      [&] {
        std::lock_guard lock(r.mutex);
        ++r.prepares;
      });
  std::vector<std::string> want;
  for (int i = 0; i < 50; ++i) {
    append(p, line(i) + "\n");
    want.push_back(line(i));
  }
  one_round(s);
  for (int i = 50; i < 60; ++i) {
    append(p, line(i) + "\n");
    want.push_back(line(i));
  }
  fs::rename(p, p + ".1");
  for (int i = 60; i < 70; ++i) {
    append(p, line(i) + "\n");
    want.push_back(line(i));
  }
  one_round(s);
  EXPECT_EQ(r.messages(), want);
  const auto st = s.stats();
  EXPECT_EQ(st.events_sent, 70u);
  EXPECT_EQ(st.lines_read, 70u);
  EXPECT_EQ(st.rotations, 1u);
  EXPECT_EQ(st.events_dropped_budget + st.events_dropped_queue + st.events_failed, 0u);
  uint64_t bytes = 0;
  for (const auto& m : want) bytes += m.size() + 26;
  EXPECT_EQ(st.bytes_sent, bytes);
  EXPECT_EQ(r.prepares, 1);
  EXPECT_EQ(r.calls[0][0].timestamp_ms, *record_time_ms(line(0)));
}

TEST(LogsShipper, BatchesAreChronological) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  Recorder r;
  LogsShipper s(opts(p), [&](const auto& b) { return r.send(b); });
  append(p, R"({"t":"2026-12-05T12:00:02.000Z","n":1})"
            "\n"
            R"({"t":"2026-12-05T12:00:01.000Z","n":2})"
            "\n"
            "no time here\n");
  one_round(s);
  ASSERT_EQ(r.calls.size(), 1u);
  ASSERT_EQ(r.calls[0].size(), 3u);
  EXPECT_EQ(r.calls[0][0].message, R"({"t":"2026-12-05T12:00:01.000Z","n":2})");
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_LE(r.calls[0][i - 1].timestamp_ms, r.calls[0][i].timestamp_ms);
  }
}

TEST(LogsShipper, BudgetAndQueueDropsAreCounted) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  Recorder r;
  auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  std::mutex clock_mutex;
  LogsShipper::Options o = opts(p);
  const uint64_t per_line = line(0).size() + 26;
  o.byte_budget = per_line * 10;  // ten lines a minute
  o.clock = [&] {
    std::lock_guard lock(clock_mutex);
    return now;
  };
  LogsShipper s(o, [&](const auto& b) { return r.send(b); });
  for (int i = 0; i < 25; ++i) append(p, line(i) + "\n");
  one_round(s);
  auto st = s.stats();
  EXPECT_EQ(st.events_sent, 10u);
  EXPECT_EQ(st.events_dropped_budget, 15u);
  EXPECT_EQ(st.bytes_dropped, 15 * per_line);
  EXPECT_EQ(r.messages().front(), line(0));
  EXPECT_EQ(r.messages().back(), line(9));
  {
    std::lock_guard lock(clock_mutex);
    now += std::chrono::seconds(30);  // half a minute: five more
  }
  for (int i = 25; i < 35; ++i) append(p, line(i) + "\n");
  one_round(s);
  st = s.stats();
  EXPECT_EQ(st.events_sent, 15u);
  EXPECT_EQ(st.events_dropped_budget, 20u);
  EXPECT_EQ(st.events_sent + st.events_dropped_budget, st.lines_read);

  // The queue bound: nothing is sent while sending fails, and what does not fit is dropped.
  const std::string q = d.file("q.jsonl");
  Recorder r2;
  r2.fail_next = 1;
  LogsShipper::Options o2 = opts(q);
  o2.max_queued = aws::kMaxLogEventBytes + aws::kLogEventOverhead;  // the smallest allowed
  LogsShipper s2(
      o2, [&](const auto& b) { return r2.send(b); },
      [&] {
        std::lock_guard lock(r2.mutex);
        if (r2.fail_next-- > 0) throw aws::AwsError(aws::ErrorKind::Server, "Unavailable", "x");
      });
  const std::string big(100000, 'b');
  for (int i = 0; i < 4; ++i) append(q, big + std::to_string(i) + "\n");
  one_round(s2);  // CreateLogStream fails: two lines wait in the queue, two are dropped
  auto st2 = s2.stats();
  EXPECT_EQ(st2.events_dropped_queue, 2u);
  EXPECT_EQ(st2.queued_events, 2u);
  EXPECT_EQ(st2.events_sent, 0u);
  EXPECT_FALSE(st2.last_error.empty());
  one_round(s2);  // now it works: the two queued lines go
  st2 = s2.stats();
  EXPECT_EQ(st2.events_sent, 2u);
  EXPECT_EQ(st2.queued_events, 0u);
  EXPECT_EQ(r2.messages(), (std::vector<std::string>{big + "0", big + "1"}));
}

TEST(LogsShipper, OneRoundReadsTheWholeBacklogInChunks) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  Recorder r;
  LogsShipper::Options o = opts(p);
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  o.clock = [t0] { return t0; };  // no refill during the round: exactly one minute's budget
  LogsShipper s(o, [&](const auto& b) { return r.send(b); });
  // Three chunks' worth at once: read to the end in one round; the 1 MiB budget sends the
  // start and drops the rest, nothing waits for a later round.
  std::string text;
  int n = 0;
  while (text.size() < 3 * LogsShipper::kChunkBytes) text += line(n++) + "\n";
  append(p, text);
  one_round(s);
  const auto st = s.stats();
  EXPECT_EQ(st.lines_read, static_cast<uint64_t>(n));
  EXPECT_EQ(st.events_sent + st.events_dropped_budget, static_cast<uint64_t>(n));
  EXPECT_GT(st.events_dropped_budget, 0u);
  EXPECT_LE(st.bytes_sent, uint64_t{1} << 20);
  EXPECT_EQ(st.offset, text.size());
}

TEST(LogsShipper, FailuresAreCountedAndADeletedStreamIsCreatedAgain) {
  TempDir d;
  const std::string p = d.file("tx.jsonl");
  Recorder r;
  LogsShipper s(
      opts(p), [&](const auto& b) { return r.send(b); },
      [&] {
        std::lock_guard lock(r.mutex);
        ++r.prepares;
      });
  r.fail_next = 1;  // the first call fails for good (after the client's retries)
  for (int i = 0; i < 3; ++i) append(p, line(i) + "\n");
  one_round(s);
  EXPECT_EQ(s.stats().events_failed, 3u);
  EXPECT_NE(s.stats().last_error.find("ServiceUnavailableException"), std::string::npos);
  r.fail_next = 1;
  r.fail_kind = aws::ErrorKind::NotFound;  // the stream was deleted
  for (int i = 3; i < 5; ++i) append(p, line(i) + "\n");
  one_round(s);
  const auto st = s.stats();
  EXPECT_EQ(st.events_sent, 2u);
  EXPECT_EQ(st.events_failed, 3u);
  EXPECT_EQ(r.prepares, 2);
  EXPECT_EQ(r.messages(), (std::vector<std::string>{line(3), line(4)}));
}

}  // namespace
}  // namespace eipgate::control

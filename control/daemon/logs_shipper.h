// Translation logs to CloudWatch Logs (README.md, "CloudWatch Logs"): the `cloudwatch_logs:`
// section, the tailer that follows the dataplane's rotated JSON-lines file (LogTailer), the
// per-minute byte budget (ByteBudget) and the shipper's own thread (LogsShipper) that reads new
// lines every interval and sends them with PutLogEvents. Nothing here runs on the daemon's loop;
// the dataplane only writes its file and never waits for this.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/schema_error.h"
#include "control/aws/logs.h"

namespace YAML {
class Node;
}

namespace eipgate::control {

inline constexpr std::string_view kDefaultTranslationLogPath =
    "/var/log/eipgate/translations.jsonl";

struct CloudWatchLogsConfig {
  bool enabled = false;
  std::string log_group;   // required when enabled; the group must exist (not created here)
  std::string log_stream;  // empty = the instance id (from IMDS)
  std::string path;        // empty = translation_log.path of the same file, else the default
  std::chrono::milliseconds interval{5000};  // how often new lines are read and sent; 1s..5m
  uint64_t byte_budget = 1 << 20;  // per minute, counted as PutLogEvents does (message + 26)
  uint64_t max_queued = 8 << 20;   // bytes read but not yet sent; beyond it new lines are dropped
};

// `node` is the value of the `cloudwatch_logs:` key (at `line`); problems are appended to *errors
// as file:line: reason (schema toolkit: unknown keys with "did you mean", duplicates).
void parse_cloudwatch_logs_config(const YAML::Node& node, int line, const std::string& file,
                                  CloudWatchLogsConfig* out,
                                  std::vector<yaml_schema::SchemaError>* errors);

// A byte count: digits with an optional K, M or G suffix (powers of 1024). nullopt if not one.
[[nodiscard]] std::optional<uint64_t> parse_byte_count(std::string_view text);

// The "t" of a translation-log line ("2026-12-05T12:34:56.120Z") in ms since the epoch; nullopt
// when the line is not a JSON object with such a field.
[[nodiscard]] std::optional<int64_t> record_time_ms(std::string_view line);

// Follows one JSON-lines file that is rotated by rename (path → path.1, a new path created) or
// truncated. Each poll() returns the complete lines written since the last one, without their
// '\n'. Rotation is seen as a new inode at `path`: the old file (still open) is read to its end
// first, then the new one from its start. A file shorter than what was read (same inode) was
// truncated: read again from its start. A missing file is waited for (read from its start when it
// appears). Blocking file I/O: for the shipper's thread only.
class LogTailer {
 public:
  // from_end: start at the current end of an existing file (lines already there are not read).
  LogTailer(std::string path, bool from_end);
  ~LogTailer();
  LogTailer(const LogTailer&) = delete;
  LogTailer& operator=(const LogTailer&) = delete;

  // At most max_bytes of file are read per call (the rest waits for the next one).
  std::vector<std::string> poll(size_t max_bytes = 16 << 20);
  // The last poll() read everything there was (and looked for a rotation).
  [[nodiscard]] bool caught_up() const { return caught_up_; }

  [[nodiscard]] uint64_t rotations() const { return rotations_; }
  [[nodiscard]] uint64_t truncations() const { return truncations_; }
  // Lines longer than max_line bytes are skipped (counted) rather than buffered without bound.
  [[nodiscard]] uint64_t long_lines() const { return long_lines_; }
  [[nodiscard]] uint64_t offset() const { return offset_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  static constexpr size_t kMaxLine = aws::kMaxLogEventBytes;

 private:
  bool open_current(bool at_end);
  // Reads from fd_ into lines until EOF or the byte allowance runs out; returns bytes read.
  size_t drain(std::vector<std::string>* lines, size_t allowance);
  void close_fd();

  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t offset_ = 0;
  std::string partial_;
  bool skipping_ = false;  // inside an over-long line: drop up to its '\n'
  bool caught_up_ = false;
  uint64_t rotations_ = 0, truncations_ = 0, long_lines_ = 0;
};

// A token bucket of bytes: refills at per_minute / 60 s, holds at most per_minute. take(n) spends
// n when that many are there, else spends nothing and says no.
class ByteBudget {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  ByteBudget(uint64_t per_minute, Clock now);
  bool take(uint64_t n);

 private:
  uint64_t per_minute_;
  Clock now_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

// The shipper's thread. Every interval: read the file to its end, turn lines into events (time from
// "t"; lines without one get the time they were read), drop what the budget or the queue bound does
// not allow (counted), then send the queue in PutLogEvents batches through `send`.
class LogsShipper {
 public:
  // One PutLogEvents call of a batch (from aws::batch_log_events); throws aws::AwsError.
  using Sender = std::function<aws::PutLogEventsResult(const std::vector<aws::LogEvent>&)>;
  // Called once before the first send, and again after a send failed with not-found (the stream
  // was deleted); throws aws::AwsError. May be empty.
  using Preparer = std::function<void()>;

  struct Options {
    std::string path;
    bool from_end = true;  // a restart resumes at the end of the file, not its beginning
    std::chrono::milliseconds interval{5000};
    uint64_t byte_budget = 1 << 20;
    uint64_t max_queued = 8 << 20;
    ByteBudget::Clock clock;  // empty = steady_clock::now
  };

  LogsShipper(Options options, Sender send, Preparer prepare = {});
  ~LogsShipper();  // stops the thread; events still queued are not sent (shutting down)
  LogsShipper(const LogsShipper&) = delete;
  LogsShipper& operator=(const LogsShipper&) = delete;

  // Wakes the thread for a round now (tests; a stop does the same).
  void kick();

  struct Stats {
    uint64_t lines_read = 0;
    uint64_t events_sent = 0;            // accepted by CloudWatch Logs
    uint64_t events_rejected = 0;        // in an accepted call, refused (too old/new, expired)
    uint64_t events_failed = 0;          // in calls that failed after retries
    uint64_t events_dropped_budget = 0;  // over the per-minute byte budget
    uint64_t events_dropped_queue = 0;   // the queue was at max_queued
    uint64_t events_dropped_long = 0;    // lines over the per-event size limit
    uint64_t bytes_sent = 0;             // as PutLogEvents counts them (message + 26)
    uint64_t bytes_dropped = 0;          // budget and queue drops
    uint64_t rotations = 0;              // file rotations followed
    uint64_t truncations = 0;
    uint64_t rounds = 0;  // completed read-and-send rounds
    uint64_t queued_events = 0;
    uint64_t queued_bytes = 0;
    uint64_t offset = 0;  // in the current file
    std::string last_error;
    int64_t last_sent_at_ms = 0;  // epoch ms of the last accepted call; 0 = none yet
  };
  [[nodiscard]] Stats stats() const;

  static constexpr size_t kChunkBytes = 4 << 20;        // read and judged at a time
  static constexpr size_t kMaxRoundBytes = 1ULL << 30;  // read in one round at most

 private:
  void loop();
  void round();
  void send_queue();

  Options options_;
  Sender send_;
  Preparer prepare_;
  bool prepared_ = false;
  LogTailer tailer_;  // shipper thread only
  ByteBudget budget_;
  std::deque<aws::LogEvent> queue_;  // shipper thread only
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Stats stats_;
  bool stop_ = false;
  bool kicked_ = false;
  std::thread thread_;
};

}  // namespace eipgate::control

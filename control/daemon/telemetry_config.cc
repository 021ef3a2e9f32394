// The `cloudwatch:` (cloudwatch_publisher.h) and `cloudwatch_logs:` (logs_shipper.h) sections of
// the daemon's config. Apart from the threads that use them so the config fuzzer links only this.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <regex>
#include <utility>

#include "common/yaml_schema.h"
#include "control/daemon/cloudwatch_publisher.h"
#include "control/daemon/logs_shipper.h"

namespace eipgate::control {

namespace {

using std::chrono::milliseconds;
using yaml_schema::SchemaError;

// A CloudWatch dimension value or namespace: 1..255 printable ASCII characters.
bool printable_ascii(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// CloudWatch Logs names: groups [.-_/#A-Za-z0-9]{1,512}, streams 1..512 without ':' or '*'.
bool valid_group_name(const std::string& s) {
  static const std::regex kGroupName(R"(^[A-Za-z0-9._/#\-]{1,512}$)");
  return std::regex_match(s, kGroupName);
}

bool valid_stream_name(std::string_view s) {
  if (s.empty() || s.size() > 512) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    return c == ':' || c == '*' || static_cast<unsigned char>(c) < 0x20;
  });
}

// What both sections share: a reason prefixed with the section's name, `enabled` and `interval`.
class SectionParser {
 public:
  SectionParser(const std::string& file, std::string section, std::vector<SchemaError>* errors)
      : file_(file), section_(std::move(section)), errors_(errors), before_(errors->size()) {}

  void fail(int at, const std::string& reason) {
    errors_->push_back(SchemaError{file_, at, section_ + "." + reason});
  }
  [[nodiscard]] bool clean() const { return errors_->size() == before_; }

  void enabled(const yaml_schema::ScalarEntry& e, bool* out) {
    std::string why;
    if (const auto b = yaml_schema::parse_bool(e.value, &why)) {
      *out = *b;
    } else {
      fail(e.line, "enabled: " + why);
    }
  }

  void interval(const yaml_schema::ScalarEntry& e, milliseconds lo, milliseconds hi,
                std::string_view range, milliseconds* out) {
    std::string why;
    const auto ms = yaml_schema::parse_duration_ms(e.value, &why);
    if (!ms) {
      fail(e.line, "interval: " + why);
    } else if (milliseconds(*ms) < lo || milliseconds(*ms) > hi) {
      fail(e.line, "interval: '" + e.value + "' is not in " + std::string(range));
    } else {
      *out = milliseconds(*ms);
    }
  }

 private:
  const std::string& file_;
  std::string section_;
  std::vector<SchemaError>* errors_;
  size_t before_;
};

}  // namespace

void parse_cloudwatch_config(const YAML::Node& node, int line, const std::string& file,
                             CloudWatchConfig* out, std::vector<SchemaError>* errors) {
  constexpr size_t kMaxQueued = 1000;
  SectionParser p(file, "cloudwatch", errors);
  const auto entries = yaml_schema::scalar_entries(node, line, file, "cloudwatch",
                                                   {"enabled", "metrics", "namespace", "pair_name",
                                                    "availability_zone", "interval", "max_queued"},
                                                   errors);
  CloudWatchConfig c;
  int enabled_line = line;
  for (const auto& e : entries) {
    const std::string& v = e.value;
    if (e.key == "enabled") {
      enabled_line = e.line;
      p.enabled(e, &c.enabled);
    } else if (e.key == "metrics") {
      if (v == "default") {
        c.metrics = CloudWatchMetricSet::Default;
      } else if (v == "full") {
        c.metrics = CloudWatchMetricSet::Full;
      } else {
        p.fail(e.line, "metrics: '" + v + "' is not a metric set (default or full)" +
                           yaml_schema::did_you_mean(v, {"default", "full"}));
      }
    } else if (e.key == "namespace") {
      if (!printable_ascii(v)) {
        p.fail(e.line, "namespace: 1 to 255 printable ASCII characters");
      } else if (v.starts_with("AWS/")) {
        p.fail(e.line, "namespace: '" + v + "': the AWS/ prefix is reserved for AWS services");
      } else {
        c.name_space = v;
      }
    } else if (e.key == "pair_name" || e.key == "availability_zone") {
      if (!printable_ascii(v)) {
        p.fail(e.line,
               e.key + ": 1 to 255 printable ASCII characters (a CloudWatch dimension value)");
      } else {
        (e.key == "pair_name" ? c.pair_name : c.availability_zone) = v;
      }
    } else if (e.key == "interval") {
      p.interval(e, milliseconds(1000), milliseconds(3600 * 1000), "1s..1h", &c.interval);
    } else if (e.key == "max_queued") {
      size_t n = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || n < 1 || n > kMaxQueued) {
        p.fail(e.line, "max_queued: '" + v + "' is not an integer in 1..1000");
      } else {
        c.max_queued = n;
      }
    }
  }
  if (c.enabled && c.pair_name.empty() && p.clean()) {
    p.fail(enabled_line,
           "pair_name: required when enabled (the PairName dimension of every datapoint)");
  }
  if (p.clean()) *out = std::move(c);
}

std::optional<uint64_t> parse_byte_count(std::string_view text) {
  uint64_t n = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (r.ec != std::errc() || r.ptr == text.data()) return std::nullopt;
  std::string_view rest(r.ptr, text.data() + text.size() - r.ptr);
  unsigned shift = 0;
  if (rest == "K" || rest == "KiB") {
    shift = 10;
  } else if (rest == "M" || rest == "MiB") {
    shift = 20;
  } else if (rest == "G" || rest == "GiB") {
    shift = 30;
  } else if (!rest.empty()) {
    return std::nullopt;
  }
  if (shift != 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

void parse_cloudwatch_logs_config(const YAML::Node& node, int line, const std::string& file,
                                  CloudWatchLogsConfig* out, std::vector<SchemaError>* errors) {
  constexpr uint64_t kMinBudget = 4096;
  constexpr uint64_t kMaxBudget = uint64_t{1} << 30;  // 1 GiB a minute
  constexpr uint64_t kMinQueued = aws::kMaxLogEventBytes + aws::kLogEventOverhead;
  constexpr uint64_t kMaxQueued = uint64_t{1} << 30;
  SectionParser p(file, "cloudwatch_logs", errors);
  const auto entries = yaml_schema::scalar_entries(
      node, line, file, "cloudwatch_logs",
      {"enabled", "log_group", "log_stream", "path", "interval", "byte_budget", "max_queued"},
      errors);
  CloudWatchLogsConfig c;
  int enabled_line = line;
  for (const auto& e : entries) {
    const std::string& v = e.value;
    if (e.key == "enabled") {
      enabled_line = e.line;
      p.enabled(e, &c.enabled);
    } else if (e.key == "log_group") {
      if (!valid_group_name(v)) {
        p.fail(e.line, "log_group: '" + v +
                           "' is not a log group name (1 to 512 of A-Z a-z 0-9 . _ - / #)");
      } else {
        c.log_group = v;
      }
    } else if (e.key == "log_stream") {
      if (!valid_stream_name(v)) {
        p.fail(e.line,
               "log_stream: '" + v + "' is not a log stream name (1 to 512, no ':' or '*')");
      } else {
        c.log_stream = v;
      }
    } else if (e.key == "path") {
      if (v[0] != '/') {
        p.fail(e.line, "path: must be an absolute path");
      } else {
        c.path = v;
      }
    } else if (e.key == "interval") {
      p.interval(e, milliseconds(1000), milliseconds(300 * 1000), "1s..5m", &c.interval);
    } else if (e.key == "byte_budget" || e.key == "max_queued") {
      const bool budget = e.key == "byte_budget";
      const uint64_t lo = budget ? kMinBudget : kMinQueued;
      const uint64_t hi = budget ? kMaxBudget : kMaxQueued;
      const auto n = parse_byte_count(v);
      if (!n || *n < lo || *n > hi) {
        p.fail(e.line, e.key + ": '" + v + "' is not a byte count (K/M/G suffix allowed) in " +
                           std::to_string(lo) + ".." + std::to_string(hi));
      } else {
        (budget ? c.byte_budget : c.max_queued) = *n;
      }
    }
  }
  if (c.enabled && c.log_group.empty() && p.clean()) {
    p.fail(enabled_line, "log_group: required when enabled (the log group must already exist)");
  }
  if (p.clean()) *out = std::move(c);
}

}  // namespace eipgate::control

// The rotation-following tailer, the byte budget and the shipper's thread (logs_shipper.h; the
// `cloudwatch_logs:` section is parsed in telemetry_config.cc).
#include "control/daemon/logs_shipper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <exception>
#include <utility>

#include "common/log.h"

namespace eipgate::control {

namespace {

int64_t epoch_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Invalid UTF-8 bytes become '?' (same size: the byte count the budget saw stays true).
void make_utf8(std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (!ok) {
      s[i] = '?';
      n = 1;
    }
    i += n;
  }
}

}  // namespace

std::optional<int64_t> record_time_ms(std::string_view line) {
  const size_t at = line.find("\"t\":\"");
  if (line.empty() || line.front() != '{' || at == std::string_view::npos) return std::nullopt;
  std::string_view s = line.substr(at + 5);
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  auto num = [&](size_t pos, size_t len, int* v) {
    if (pos + len > s.size()) return false;
    const auto r = std::from_chars(s.data() + pos, s.data() + pos + len, *v);
    return r.ec == std::errc() && r.ptr == s.data() + pos + len;
  };
  std::tm tm{};
  int ms = 0;
  if (!num(0, 4, &tm.tm_year) || s[4] != '-' || !num(5, 2, &tm.tm_mon) || s[7] != '-' ||
      !num(8, 2, &tm.tm_mday) || (s[10] != 'T' && s[10] != ' ') || !num(11, 2, &tm.tm_hour) ||
      s[13] != ':' || !num(14, 2, &tm.tm_min) || s[16] != ':' || !num(17, 2, &tm.tm_sec)) {
    return std::nullopt;
  }
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    size_t digits = 0;
    while (pos + 1 + digits < s.size() && s[pos + 1 + digits] >= '0' &&
           s[pos + 1 + digits] <= '9') {
      if (digits < 3) ms = ms * 10 + (s[pos + 1 + digits] - '0');
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    for (size_t k = digits; k < 3; ++k) ms *= 10;
    pos += 1 + digits;
  }
  if (pos >= s.size() || s[pos] != 'Z' || tm.tm_mon < 1 || tm.tm_mon > 12) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t) * 1000 + ms;
}

LogTailer::LogTailer(std::string path, bool from_end) : path_(std::move(path)) {
  open_current(from_end);
}

LogTailer::~LogTailer() { close_fd(); }

void LogTailer::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool LogTailer::open_current(bool at_end) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  close_fd();
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = at_end ? static_cast<uint64_t>(st.st_size) : 0;
  partial_.clear();
  skipping_ = false;
  if (offset_ != 0) ::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET);
  return true;
}

size_t LogTailer::drain(std::vector<std::string>* lines, size_t allowance) {
  char buf[65536];
  size_t total = 0;
  while (fd_ >= 0 && total < allowance) {
    const ssize_t n = ::read(fd_, buf, std::min(sizeof buf, allowance - total));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += static_cast<size_t>(n);
    offset_ += static_cast<uint64_t>(n);
    std::string_view chunk(buf, static_cast<size_t>(n));
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, nl);
      if (!skipping_) partial_.append(piece);
      if (partial_.size() > kMaxLine) {  // a line over the event limit: skip to its end
        if (!skipping_) ++long_lines_;
        skipping_ = true;
        partial_.clear();
      }
      if (nl == std::string_view::npos) break;
      if (!skipping_ && !partial_.empty()) lines->push_back(std::move(partial_));
      partial_.clear();
      skipping_ = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  return total;
}

std::vector<std::string> LogTailer::poll(size_t max_bytes) {
  std::vector<std::string> lines;
  caught_up_ = false;
  if (fd_ < 0 && !open_current(false)) {  // not there yet: read it all when it is
    caught_up_ = true;
    return lines;
  }
  size_t used = drain(&lines, max_bytes);
  if (used >= max_bytes) return lines;  // more to read: rotation is looked at once at the end
  caught_up_ = true;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return lines;  // renamed, the new one not created yet
  if (st.st_dev != dev_ || st.st_ino != ino_) {
    // Rotated: the writer may have appended to the old file between our read and its rename,
    // never after (it writes to the new file from then on). Finish the old one, then switch.
    used += drain(&lines, max_bytes - used);
    if (used >= max_bytes) {
      caught_up_ = false;
      return lines;
    }
    if (!partial_.empty() && !skipping_) lines.push_back(std::move(partial_));
    ++rotations_;
    close_fd();
    if (open_current(false) && drain(&lines, max_bytes - used) >= max_bytes - used) {
      caught_up_ = false;
    }
  } else if (static_cast<uint64_t>(st.st_size) < offset_) {
    ++truncations_;  // truncated in place: start over
    ::lseek(fd_, 0, SEEK_SET);
    offset_ = 0;
    partial_.clear();
    skipping_ = false;
    if (drain(&lines, max_bytes - used) >= max_bytes - used) caught_up_ = false;
  }
  return lines;
}

ByteBudget::ByteBudget(uint64_t per_minute, Clock now)
    : per_minute_(per_minute),
      now_(now ? std::move(now) : Clock([] { return std::chrono::steady_clock::now(); })),
      tokens_(static_cast<double>(per_minute)),
      last_(now_()) {}

bool ByteBudget::take(uint64_t n) {
  const auto t = now_();
  const double secs = std::chrono::duration<double>(t - last_).count();
  last_ = t;
  if (secs > 0) {
    tokens_ = std::min(static_cast<double>(per_minute_),
                       tokens_ + secs * static_cast<double>(per_minute_) / 60.0);
  }
  if (static_cast<double>(n) > tokens_) return false;
  tokens_ -= static_cast<double>(n);
  return true;
}

LogsShipper::LogsShipper(Options options, Sender send, Preparer prepare)
    : options_(std::move(options)),
      send_(std::move(send)),
      prepare_(std::move(prepare)),
      tailer_(options_.path, options_.from_end),
      budget_(options_.byte_budget, options_.clock),
      thread_([this] { loop(); }) {}

LogsShipper::~LogsShipper() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LogsShipper::kick() {
  {
    std::lock_guard lock(mutex_);
    kicked_ = true;
  }
  cv_.notify_all();
}

LogsShipper::Stats LogsShipper::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void LogsShipper::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait_for(lock, options_.interval, [this] { return stop_ || kicked_; });
    if (stop_) return;
    kicked_ = false;
    lock.unlock();
    try {
      round();
    } catch (const std::exception& e) {  // stopping (a backoff cut short), or a bug: log it
      log::get()->warn("cloudwatch_logs: round ended early: {}", e.what());
    }
    lock.lock();
    ++stats_.rounds;
  }
}

void LogsShipper::round() {
  const uint64_t long_before = tailer_.long_lines();
  uint64_t queued_bytes = 0;
  for (const auto& e : queue_) queued_bytes += aws::log_event_size(e);
  uint64_t read = 0, dropped_budget = 0, dropped_queue = 0, bytes_dropped = 0;
  const int64_t now_ms = epoch_ms_now();
  // The file is read to its end in chunks, each judged before the next is read: memory stays
  // bounded by the chunk and the queue, and the shipper keeps up with the writer (lines over
  // the budget cost a read and a count, nothing more), so it never holds a rotated-away file
  // open for long. kMaxRoundBytes bounds one round against a writer faster than us.
  for (size_t done = 0; done < kMaxRoundBytes; done += kChunkBytes) {
    std::vector<std::string> lines = tailer_.poll(kChunkBytes);
    read += lines.size();
    for (auto& line : lines) {
      const uint64_t size = line.size() + aws::kLogEventOverhead;
      if (queued_bytes + size > options_.max_queued) {
        ++dropped_queue;
        bytes_dropped += size;
        continue;
      }
      if (!budget_.take(size)) {
        ++dropped_budget;
        bytes_dropped += size;
        continue;
      }
      aws::LogEvent e{record_time_ms(line).value_or(now_ms), std::move(line)};
      make_utf8(e.message);
      queued_bytes += size;
      queue_.push_back(std::move(e));
    }
    if (tailer_.caught_up()) break;
  }
  {
    std::lock_guard lock(mutex_);
    stats_.lines_read += read;
    stats_.events_dropped_budget += dropped_budget;
    stats_.events_dropped_queue += dropped_queue;
    stats_.events_dropped_long += tailer_.long_lines() - long_before;
    stats_.bytes_dropped += bytes_dropped;
    stats_.rotations = tailer_.rotations();
    stats_.truncations = tailer_.truncations();
    stats_.offset = tailer_.offset();
    stats_.queued_events = queue_.size();
    stats_.queued_bytes = queued_bytes;
  }
  if (dropped_budget + dropped_queue > 0) {
    log::get()->warn(
        "cloudwatch_logs: {} lines dropped over the byte budget, {} with the queue full",
        dropped_budget, dropped_queue);
  }
  send_queue();
}

void LogsShipper::send_queue() {
  if (queue_.empty()) return;
  auto fail_all = [&](const std::string& error) {
    std::lock_guard lock(mutex_);
    stats_.last_error = error;
  };
  if (!prepared_ && prepare_) {
    try {
      prepare_();
      prepared_ = true;
    } catch (const aws::AwsError& e) {  // the queue waits (bounded) for the next round
      fail_all(e.what());
      log::get()->error("cloudwatch_logs: CreateLogStream failed: {}", e.what());
      return;
    }
  }
  prepared_ = true;
  std::vector<aws::LogEvent> events(std::make_move_iterator(queue_.begin()),
                                    std::make_move_iterator(queue_.end()));
  queue_.clear();
  for (const auto& batch : aws::batch_log_events(std::move(events))) {
    uint64_t bytes = 0;
    for (const auto& e : batch) bytes += aws::log_event_size(e);
    std::string error;
    aws::PutLogEventsResult r;
    try {
      try {
        r = send_(batch);
      } catch (const aws::AwsError& e) {
        // The stream was deleted under us: create it again and resend once.
        if (e.kind() != aws::ErrorKind::NotFound || !prepare_) throw;
        prepare_();
        r = send_(batch);
      }
    } catch (const aws::AwsError& e) {
      error = e.what();
    }
    std::lock_guard lock(mutex_);
    if (error.empty()) {
      stats_.events_sent += r.accepted;
      stats_.events_rejected += r.rejected;
      stats_.bytes_sent += bytes;
      stats_.last_sent_at_ms = epoch_ms_now();
    } else {
      stats_.events_failed += batch.size();
      stats_.last_error = error;
      log::get()->error("cloudwatch_logs: PutLogEvents of {} events failed: {}", batch.size(),
                        error);
    }
  }
  std::lock_guard lock(mutex_);
  stats_.queued_events = 0;
  stats_.queued_bytes = 0;
}

}  // namespace eipgate::control

// Translation log files (dataplane/README.md, "Translation log"): the JSON line written for each
// engine::TxLogRecord, the size-rotated file the dataplane's main lcore appends to, and the lookup
// behind `eipgatectl who` (which inside address used an outside address:port at a given time).
// No DPDK: the dataplane, eipgatectl and the unit tests share it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/engine/engine.h"

namespace eipgate::txlog {

// "2026-12-05T12:34:56.789Z" (UTC, milliseconds).
[[nodiscard]] std::string iso8601_ms(uint64_t unix_ms);
// ISO 8601 ("2026-12-05T12:34:56Z", optional ".fff", "Z" or "+hh:mm"/"-hh:mm"; no zone = UTC;
// a space may replace the T) or unix seconds ("1796474096", optional ".fff"). False if neither.
[[nodiscard]] bool parse_time(std::string_view s, uint64_t* unix_ms);

// One record as a compact JSON line (with the trailing '\n'), appended to out. unix_ms: the
// record's wall-clock time; rule: the policy rule's name, empty when none decided.
//   open:  {"t","ev":"open","proto","in","out","remote","rule"[,"synced":true]}
//   close: the same plus "bytes_out","bytes_in","dur_ms","end"
void append_line(std::string& out, const engine::TxLogRecord& r, uint64_t unix_ms,
                 std::string_view rule);

// Appends to path; before a write would take the file past max_bytes it is rotated: path.<keep-1>
// -> path.<keep>, ..., path -> path.1 (keep 0: the file is removed), and a new path begins. The
// parent directory is created (0750) when missing; files are 0640. Blocking file I/O: for the
// main lcore, never a worker.
class RotatingFile {
 public:
  RotatingFile(std::string path, uint64_t max_bytes, uint32_t keep);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // Writes whole lines (data ends with '\n'); false (and error() says why) when the file could
  // not be opened or written: the caller counts those lines as dropped.
  bool write(std::string_view data);
  [[nodiscard]] uint64_t rotations() const { return rotations_; }
  [[nodiscard]] uint64_t size() const { return size_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  bool open_file();
  bool rotate();

  std::string path_;
  uint64_t max_bytes_;
  uint32_t keep_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t rotations_ = 0;
  std::string error_;
};

// The files of a log, oldest first: path.<n> ... path.1, path (those that exist).
[[nodiscard]] std::vector<std::string> log_files(const std::string& path);

// One connection seen through an outside address:port.
struct Use {
  std::string proto, inside, outside, remote, rule, end;
  uint64_t open_ms = 0;              // the open record's time (or close time - dur_ms)
  std::optional<uint64_t> close_ms;  // none: no close record (yet)
  bool synced = false;               // opened from the HA peer's sync (taken over)
  uint64_t bytes_out = 0, bytes_in = 0;
};

// The connections that used `outside` ("ip:port") at at_ms: open <= at <= close, or open and not
// closed. An open that is followed by another open of the same (proto, outside, remote) without a
// close (a restart lost the close) is taken to have ended there. Lines that are not records are
// skipped (counted in *bad_lines when given). files: oldest first (log_files()).
[[nodiscard]] std::vector<Use> who(const std::vector<std::string>& files, std::string_view outside,
                                   uint64_t at_ms, uint64_t* bad_lines = nullptr);

}  // namespace eipgate::txlog

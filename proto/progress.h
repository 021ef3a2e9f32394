// The dataplane's progress counters, shared with eipgate-control through a small memory-mapped
// file beside the admin socket (<admin socket directory>/progress, root-only 0600). Each worker
// stores its loop counter in its own cache line whenever it publishes its statistics (at least
// every 10 ms, idle or busy). eipgate-control reads the counters without asking the dataplane,
// so a frozen (SIGSTOP, paused VM), hung or dead dataplane is seen in a few tens of milliseconds
// instead of after an admin-socket timeout. Standard library and POSIX only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eipgate::proto {

inline constexpr uint32_t kProgressMagic = 0x45475052;  // "EGPR"
inline constexpr uint32_t kProgressVersion = 1;
inline constexpr uint32_t kProgressMaxWorkers = 256;

// The file: one header line, then one 64-byte line per worker.
struct alignas(64) ProgressHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t workers;
  uint32_t pid;  // the writer, for messages
};
struct alignas(64) ProgressSlot {
  std::atomic<uint64_t> loops;
};
static_assert(sizeof(ProgressHeader) == 64 && sizeof(ProgressSlot) == 64);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

[[nodiscard]] inline size_t progress_file_size(uint32_t workers) {
  return sizeof(ProgressHeader) + size_t{workers} * sizeof(ProgressSlot);
}
// <directory of the admin socket>/progress, as the sync socket is <directory>/sync.sock.
[[nodiscard]] std::string progress_path_for(const std::string& admin_socket);

// The dataplane's side. create() replaces any file left by an earlier run (a new inode, so a
// reader notices); the destructor unlinks it.
class ProgressWriter {
 public:
  ProgressWriter() = default;
  ~ProgressWriter();
  ProgressWriter(const ProgressWriter&) = delete;
  ProgressWriter& operator=(const ProgressWriter&) = delete;

  // Returns an error message, empty on success.
  std::string create(const std::string& path, uint32_t workers);
  void store(uint32_t worker, uint64_t loops) noexcept {
    if (worker < workers_) slots_[worker].loops.store(loops, std::memory_order_relaxed);
  }
  [[nodiscard]] bool open() const { return base_ != nullptr; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
  ProgressSlot* slots_ = nullptr;
  uint32_t workers_ = 0;
  std::string path_;
};

// eipgate-control's side: sample() maps the file (again, when a new one replaced it) and says
// for how long the slowest worker's counter has stood still, by the caller's clock.
class ProgressReader {
 public:
  explicit ProgressReader(std::string path) : path_(std::move(path)) {}
  ~ProgressReader();
  ProgressReader(const ProgressReader&) = delete;
  ProgressReader& operator=(const ProgressReader&) = delete;

  struct Sample {
    bool present = false;  // a valid file is mapped
    uint32_t workers = 0;
    uint32_t pid = 0;
    uint64_t stalled_ms = 0;  // the longest any worker's counter has not moved
    uint32_t stalled_worker = 0;
  };
  // now_ms: a monotonic clock. The first sample of a file counts every worker as just moved.
  Sample sample(uint64_t now_ms);
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  void unmap();
  bool map();

  std::string path_;
  void* base_ = nullptr;
  size_t size_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::vector<uint64_t> last_;
  std::vector<uint64_t> moved_at_;
};

}  // namespace eipgate::proto

// Shared progress counters (progress.h).
#include "proto/progress.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace eipgate::proto {

std::string progress_path_for(const std::string& admin_socket) {
  const size_t slash = admin_socket.rfind('/');
  return (slash == std::string::npos ? std::string(".") : admin_socket.substr(0, slash)) +
         "/progress";
}

ProgressWriter::~ProgressWriter() {
  if (base_ != nullptr) {
    ::munmap(base_, size_);
    ::unlink(path_.c_str());
  }
}

std::string ProgressWriter::create(const std::string& path, uint32_t workers) {
  if (workers == 0 || workers > kProgressMaxWorkers) return "progress file: bad worker count";
  ::unlink(path.c_str());  // a reader still mapping the old one sees it replaced
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return "progress file " + path + ": " + std::strerror(errno);
  const size_t size = progress_file_size(workers);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(path.c_str());
    return "progress file " + path + ": " + err;
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) {
    ::unlink(path.c_str());
    return "progress file " + path + ": mmap: " + std::strerror(errno);
  }
  auto* slots = reinterpret_cast<ProgressSlot*>(static_cast<char*>(base) + sizeof(ProgressHeader));
  for (uint32_t i = 0; i < workers; ++i) new (&slots[i]) ProgressSlot{};
  auto* h = new (base) ProgressHeader{};
  h->workers = workers;
  h->pid = static_cast<uint32_t>(::getpid());
  h->version = kProgressVersion;
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kProgressMagic;  // last: a reader accepts the file only once it is complete
  base_ = base;
  size_ = size;
  slots_ = slots;
  workers_ = workers;
  path_ = path;
  return {};
}

ProgressReader::~ProgressReader() { unmap(); }

void ProgressReader::unmap() {
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
  last_.clear();
  moved_at_.clear();
}

bool ProgressReader::map() {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_uid != ::geteuid() ||
      static_cast<size_t>(st.st_size) < progress_file_size(1)) {
    ::close(fd);  // someone else's file is not trusted; a short one is not complete yet
    return false;
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) return false;
  const auto* h = static_cast<const ProgressHeader*>(base);
  if (h->magic != kProgressMagic || h->version != kProgressVersion || h->workers == 0 ||
      h->workers > kProgressMaxWorkers || progress_file_size(h->workers) > size) {
    ::munmap(base, size);
    return false;
  }
  base_ = base;
  size_ = size;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  return true;
}

ProgressReader::Sample ProgressReader::sample(uint64_t now_ms) {
  struct stat st {};
  const bool exists = ::stat(path_.c_str(), &st) == 0;
  if (base_ != nullptr && (!exists || st.st_dev != dev_ || st.st_ino != ino_)) unmap();
  if (base_ == nullptr && (!exists || !map())) return {};
  const auto* h = static_cast<const ProgressHeader*>(base_);
  const auto* slots = reinterpret_cast<const ProgressSlot*>(static_cast<const char*>(base_) +
                                                            sizeof(ProgressHeader));
  Sample s;
  s.present = true;
  s.workers = h->workers;
  s.pid = h->pid;
  if (last_.size() != h->workers) {
    last_.assign(h->workers, 0);
    moved_at_.assign(h->workers, now_ms);
    for (uint32_t i = 0; i < h->workers; ++i) {
      last_[i] = slots[i].loops.load(std::memory_order_relaxed);
    }
  }
  for (uint32_t i = 0; i < h->workers; ++i) {
    const uint64_t v = slots[i].loops.load(std::memory_order_relaxed);
    if (v != last_[i]) {
      last_[i] = v;
      moved_at_[i] = now_ms;
    }
    const uint64_t still = now_ms - moved_at_[i];
    if (still > s.stalled_ms) {
      s.stalled_ms = still;
      s.stalled_worker = i;
    }
  }
  return s;
}

}  // namespace eipgate::proto

// The daemon's executor (executor.h).
#include "control/daemon/executor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace eipgate::control {

Mailbox::Mailbox() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Mailbox::~Mailbox() { ::close(fd_); }

void Mailbox::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}

void Mailbox::drain() {
  uint64_t v = 0;
  [[maybe_unused]] const auto n = ::read(fd_, &v, sizeof v);
  std::deque<std::function<void()>> q;
  {
    std::lock_guard lock(mutex_);
    q.swap(queue_);
  }
  for (auto& fn : q) fn();
}

Worker::Worker() : thread_([this] { loop(); }) {}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Worker::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;  // pending jobs are dropped: we are shutting down
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace eipgate::control

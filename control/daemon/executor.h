// The daemon's executor: background threads that run blocking jobs in order (EC2 calls, dataplane
// admin requests) and the mailbox that brings their results back to the poll() loop.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace eipgate::control {

// Results of background work come back to the loop thread through this queue; the eventfd wakes
// poll().
class Mailbox {
 public:
  Mailbox();
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  void post(std::function<void()> fn);
  // Runs every posted function on the calling (loop) thread.
  void drain();
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
};

// One background thread running jobs in order (EC2 calls; dataplane admin requests).
class Worker {
 public:
  Worker();
  ~Worker();  // pending jobs are dropped: we are shutting down
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  void post(std::function<void()> job);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace eipgate::control

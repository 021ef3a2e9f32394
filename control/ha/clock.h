// The time source for HA logic: injected so state machines and sync are deterministic in tests.
#pragma once

#include <chrono>

namespace eipgate::ha {

using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Millis now() const = 0;  // monotonic
};

class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override {
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch());
  }
};

// The process's steady clock, for components that default to it.
[[nodiscard]] inline const Clock& default_clock() {
  static const SteadyClock clock;
  return clock;
}

// Test clock: time moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start = Millis{1'000'000}) : now_(start) {}
  [[nodiscard]] Millis now() const override { return now_; }
  void advance(Millis d) { now_ += d; }
  void set(Millis t) { now_ = t; }

 private:
  Millis now_;
};

}  // namespace eipgate::ha

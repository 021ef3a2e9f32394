// A bounded FIFO over storage reserved at construction (or reset()): push fails when full, nothing
// allocates afterwards. The engine's queues for the audit log, the HA sync records and the packets
// it releases all use it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace eipgate::engine {

template <typename T>
class FixedRing {
 public:
  explicit FixedRing(uint32_t capacity = 0) : slots_(capacity) {}

  void reset(uint32_t capacity) {
    slots_.assign(capacity, T{});
    head_ = count_ = 0;
  }
  [[nodiscard]] uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }
  [[nodiscard]] uint32_t size() const { return count_; }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] bool full() const { return count_ == capacity(); }

  // The next slot at the back (default-initialised), or nullptr when full.
  T* push_slot() {
    if (full()) return nullptr;
    T& slot = slots_[at(count_)];
    ++count_;
    slot = T{};
    return &slot;
  }
  // The next slot at the back, not initialised (the caller sets every field), or nullptr.
  T* push_slot_uninit() {
    if (full()) return nullptr;
    T& slot = slots_[at(count_)];
    ++count_;
    return &slot;
  }
  bool push(const T& v) {
    T* slot = push_slot();
    if (slot == nullptr) return false;
    *slot = v;
    return true;
  }
  [[nodiscard]] const T& front() const { return slots_[head_]; }
  void pop() {
    head_ = at(1);
    --count_;
  }
  // Moves up to max entries, oldest first, to out; returns the count.
  uint32_t pop_into(T* out, uint32_t max) {
    const uint32_t n = std::min(max, count_);
    // At most two contiguous runs: head to the end of the storage, then from its start.
    const uint32_t first = std::min(n, capacity() - head_);
    std::copy(slots_.begin() + head_, slots_.begin() + head_ + first, out);
    std::copy(slots_.begin(), slots_.begin() + (n - first), out + first);
    head_ = at(n);
    count_ -= n;
    return n;
  }
  void clear() { head_ = count_ = 0; }

 private:
  [[nodiscard]] uint32_t at(uint32_t k) const {
    const uint32_t i = head_ + k;
    return i >= capacity() ? i - capacity() : i;
  }

  std::vector<T> slots_;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
};

}  // namespace eipgate::engine

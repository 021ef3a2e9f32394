// Flow index and pool: construction reserves and touches all memory so the packet path never
// page-faults or allocates.
#include "dataplane/engine/flow_table.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace eipgate::engine {

namespace {
// Large tables are 2 MiB aligned and advised as transparent huge pages: random lookups over a
// gigabyte of flows otherwise pay a page walk per packet (DPDK builds get hugepages anyway).
template <typename T>
T* alloc_touched(uint64_t count) {
  constexpr uint64_t kHuge = 2u << 20;
  const uint64_t bytes = count * sizeof(T);
  const uint64_t align = bytes >= kHuge ? kHuge : 64;
  const uint64_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw std::bad_alloc();
  if (align == kHuge) madvise(p, rounded, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return static_cast<T*>(p);
}
}  // namespace

FlowIndex::FlowIndex(uint64_t max_keys) {
  // Slot load at the maximum between 40% and 80%: buckets >= max_keys / (7 * 0.8), rounded up to
  // a power of two. Worst case 64 B / 5.6 keys ~ 23 B per key (46 B per flow).
  uint64_t want = (max_keys * 10 + 55) / 56;
  uint64_t n = 1;
  while (n < want) n <<= 1;
  if (n < 2) n = 2;
  buckets_ = alloc_touched<Bucket>(n);
  mask_ = n - 1;
}

FlowIndex::~FlowIndex() { std::free(buckets_); }

bool FlowIndex::insert(uint64_t h, uint32_t value) {
  const uint32_t tag = tag_of(h);
  const uint64_t home = h & mask_;
  uint64_t b = home;
  for (uint64_t probes = 0; probes < kMaxProbe && probes <= mask_; ++probes) {
    Bucket& bk = buckets_[b];
    for (uint32_t i = 0; i < kSlots; ++i) {
      if (bk.tag[i] == 0) {
        bk.tag[i] = tag;
        bk.value[i] = value;
        // Mark every full bucket we passed so lookups continue past them.
        for (uint64_t x = home; x != b; x = (x + 1) & mask_) ++buckets_[x].overflow;
        return true;
      }
    }
    b = (b + 1) & mask_;
  }
  return false;
}

bool FlowIndex::erase(uint64_t h, uint32_t value) {
  const uint32_t tag = tag_of(h);
  const uint64_t home = h & mask_;
  uint64_t b = home;
  for (uint64_t probes = 0; probes < kMaxProbe && probes <= mask_; ++probes) {
    Bucket& bk = buckets_[b];
    for (uint32_t i = 0; i < kSlots; ++i) {
      if (bk.tag[i] == tag && bk.value[i] == value) {
        bk.tag[i] = 0;
        bk.value[i] = 0;
        for (uint64_t x = home; x != b; x = (x + 1) & mask_) --buckets_[x].overflow;
        return true;
      }
    }
    if (bk.overflow == 0) return false;
    b = (b + 1) & mask_;
  }
  return false;
}

FlowPool::FlowPool(uint32_t capacity) : capacity_(capacity) {
  flows_ = alloc_touched<Flow>(capacity);
  for (uint32_t i = 0; i < capacity; ++i) flows_[i].next = i + 1 < capacity ? i + 1 : kNone;
  free_head_ = capacity ? 0 : kNone;
  for (uint32_t c = 0; c < kClassCount; ++c) head_[c] = tail_[c] = kNone;
}

FlowPool::~FlowPool() { std::free(flows_); }

uint32_t FlowPool::alloc() {
  const uint32_t i = free_head_;
  if (i == kNone) return kNone;
  free_head_ = flows_[i].next;
  flows_[i] = Flow{};
  flows_[i].prev = flows_[i].next = kNone;
  flows_[i].eim = kNone;
  ++used_;
  return i;
}

void FlowPool::free(uint32_t i) {
  flows_[i].flags = 0;
  flows_[i].next = free_head_;
  free_head_ = i;
  --used_;
}

void FlowPool::lru_push(uint32_t i, uint8_t cls, uint32_t now) {
  Flow& f = flows_[i];
  f.tclass = cls;
  f.lru_time = now;
  f.next = kNone;
  f.prev = tail_[cls];
  if (tail_[cls] != kNone) {
    flows_[tail_[cls]].next = i;
  } else {
    head_[cls] = i;
  }
  tail_[cls] = i;
}

void FlowPool::lru_remove(uint32_t i) {
  Flow& f = flows_[i];
  if (f.prev != kNone) {
    flows_[f.prev].next = f.next;
  } else {
    head_[f.tclass] = f.next;
  }
  if (f.next != kNone) {
    flows_[f.next].prev = f.prev;
  } else {
    tail_[f.tclass] = f.prev;
  }
  f.prev = f.next = kNone;
}

}  // namespace eipgate::engine

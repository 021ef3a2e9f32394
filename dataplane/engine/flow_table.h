// Flow storage: one 64-byte record per connection reachable from two keys (inside tuple, outside
// tuple) through one bucketized hash index. All memory is reserved at construction.
//
// Index: 64-byte buckets of 7 (tag, value) slots. A key lives in its home bucket or, when that is
// full, in one of the following buckets (linear probing by bucket); each bucket counts how many
// keys passed over it, so a lookup stops at the first bucket with a zero overflow count. The index
// is sized for 40-80% slot load at the configured maximum, so a probe is almost always one cache
// line. Memory: 64 B record + 2 keys x (8 B / load) <= 110 B per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace eipgate::engine {

inline constexpr uint32_t kNone = 0xffffffffu;

// A lookup key as seen on the wire: (src, dst, sport, dport, proto) in network order, plus the
// kind of key so the inside and outside keys of different flows never compare equal.
struct FlowKey {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
  uint8_t kind = 0;  // KeyKind
  uint16_t pad = 0;
  // Two 8-byte compares instead of seven member compares (the key has no padding holes).
  bool operator==(const FlowKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(FlowKey) == 16);

enum KeyKind : uint8_t { kKeyInside = 0, kKeyOutside = 1, kKeyEim = 2 };

inline uint64_t hash_key(const FlowKey& k) {
  uint64_t a;
  uint64_t b;
  std::memcpy(&a, &k, 8);
  std::memcpy(&b, reinterpret_cast<const uint8_t*>(&k) + 8, 8);
  uint64_t h = (a ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
  h ^= (b + 0x632be59bd9b4e019ull) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return h;
}

// Timeout classes; each has its own LRU list. Order = eviction order when the table is full.
enum TimeoutClass : uint8_t {
  kClassTcpClosing = 0,  // TIME_WAIT or reset
  kClassTcpTransitory,   // half-open, half-closed
  kClassIcmp,
  kClassUdp,
  kClassTcpEstablished,
  kClassCount
};

// TCP bits seen (RFC 7857 state as flags).
enum TcpBits : uint8_t {
  kSynIn = 1,
  kSynOut = 2,
  kFinIn = 4,
  kFinOut = 8,
  kRstSeen = 16,
};

enum FlowFlags : uint8_t {
  kFlowLive = 1,
  kFlowReplySeen = 2,   // a packet came back: counted as established (UDP/ICMP) once
  kFlowEim = 4,         // outside port belongs to an endpoint-independent mapping
  kFlowPending = 8,     // egress policy waits for the TLS SNI / HTTP Host (eim = pending context)
  kFlowDenied = 16,     // egress policy refused it: inside packets get RSTs until it expires
  kFlowOffloaded = 32,  // an offload record went out: the kernel fast path may carry it
};

struct alignas(64) Flow {
  uint64_t bytes_out;  // inside -> outside
  uint64_t bytes_in;
  uint32_t inside_ip;  // network order
  uint32_t remote_ip;
  uint32_t outside_ip;
  uint32_t last_seen;  // ms, engine clock (wraps; compared modulo 2^32)
  uint32_t lru_time;   // ms when last (re)queued on its LRU list
  uint32_t prev;
  uint32_t next;          // also the free-list link
  uint32_t eim;           // EIM mapping index or kNone
  uint16_t inside_port;   // ICMP: echo id
  uint16_t remote_port;   // ICMP: 0
  uint16_t outside_port;  // ICMP: translated id
  uint16_t csum_ip_out;   // IP checksum delta inside -> outside: address change + TTL decrement
  uint16_t csum_l4;       // L4 checksum delta, inside -> outside (pseudo-header + port / id)
  uint8_t proto;
  uint8_t tcp;          // TcpBits
  uint8_t tclass;       // TimeoutClass
  uint8_t flags;        // FlowFlags
  uint16_t csum_ip_in;  // IP checksum delta outside -> inside: address change + TTL decrement

  [[nodiscard]] FlowKey inside_key() const {
    return FlowKey{inside_ip, remote_ip, inside_port, remote_port, proto, kKeyInside, 0};
  }
  [[nodiscard]] FlowKey outside_key() const {
    return FlowKey{remote_ip, outside_ip, remote_port, outside_port, proto, kKeyOutside, 0};
  }
  // Field-wise key checks for the fast path (no FlowKey temporary; branch-free).
  [[nodiscard]] bool matches(const FlowKey& k) const {
    if (k.kind == kKeyInside) {
      return ((inside_ip ^ k.src) | (remote_ip ^ k.dst) | (inside_port ^ k.sport) |
              (remote_port ^ k.dport) | (proto ^ k.proto)) == 0;
    }
    return ((remote_ip ^ k.src) | (outside_ip ^ k.dst) | (remote_port ^ k.sport) |
            (outside_port ^ k.dport) | (proto ^ k.proto)) == 0;
  }
};
static_assert(sizeof(Flow) == 64, "one cache line per flow");

class FlowIndex {
 public:
  static constexpr uint32_t kSlots = 7;
  struct alignas(64) Bucket {
    uint32_t tag[kSlots];
    uint32_t overflow;
    uint32_t value[kSlots];
    uint32_t pad;
  };
  static_assert(sizeof(Bucket) == 64);

  explicit FlowIndex(uint64_t max_keys);
  ~FlowIndex();
  FlowIndex(const FlowIndex&) = delete;
  FlowIndex& operator=(const FlowIndex&) = delete;

  void prefetch(uint64_t h) const { __builtin_prefetch(&buckets_[h & mask_]); }

  // eq(value) confirms a tag match against the real key.
  template <typename Eq>
  [[nodiscard]] uint32_t find(uint64_t h, Eq&& eq) const {
    const uint32_t tag = tag_of(h);
    uint64_t b = h & mask_;
    for (uint64_t probes = 0; probes <= mask_; ++probes) {
      const Bucket& bk = buckets_[b];
      for (uint32_t i = 0; i < kSlots; ++i) {
        if (bk.tag[i] == tag && eq(bk.value[i])) return bk.value[i];
      }
      if (bk.overflow == 0) return kNone;
      b = (b + 1) & mask_;
    }
    return kNone;
  }

  bool insert(uint64_t h, uint32_t value);
  bool erase(uint64_t h, uint32_t value);

  [[nodiscard]] uint64_t memory_bytes() const { return (mask_ + 1) * sizeof(Bucket); }
  [[nodiscard]] uint64_t buckets() const { return mask_ + 1; }

 private:
  static uint32_t tag_of(uint64_t h) { return static_cast<uint32_t>(h >> 32) | 1u; }
  static constexpr uint64_t kMaxProbe = 256;
  Bucket* buckets_ = nullptr;
  uint64_t mask_ = 0;
};

// Pool of flow records with a free list and one LRU list per timeout class.
class FlowPool {
 public:
  explicit FlowPool(uint32_t capacity);
  ~FlowPool();
  FlowPool(const FlowPool&) = delete;
  FlowPool& operator=(const FlowPool&) = delete;

  Flow& operator[](uint32_t i) { return flows_[i]; }
  const Flow& operator[](uint32_t i) const { return flows_[i]; }
  void prefetch(uint32_t i) const { __builtin_prefetch(&flows_[i]); }

  uint32_t alloc();  // kNone when full
  void free(uint32_t i);

  void lru_push(uint32_t i, uint8_t cls, uint32_t now);
  void lru_remove(uint32_t i);
  void lru_requeue(uint32_t i, uint8_t cls, uint32_t now) {
    lru_remove(i);
    lru_push(i, cls, now);
  }
  [[nodiscard]] uint32_t lru_head(uint8_t cls) const { return head_[cls]; }

  [[nodiscard]] uint32_t capacity() const { return capacity_; }
  [[nodiscard]] uint32_t used() const { return used_; }
  [[nodiscard]] uint64_t memory_bytes() const { return uint64_t{capacity_} * sizeof(Flow); }

 private:
  Flow* flows_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t used_ = 0;
  uint32_t free_head_ = kNone;
  uint32_t head_[kClassCount];
  uint32_t tail_[kClassCount];
};

}  // namespace eipgate::engine

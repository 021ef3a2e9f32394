// First-match classifier over (destination prefix, protocol set, port range) entries, built for
// one lookup at a time on the flow-create path. The destination space is cut into segments over
// which the set of entries covering an address does not change; a lookup is a top-byte index +
// a binary search for the segment, then the segment's few candidates in priority order (or, for
// a segment with many, a per-protocol table of port intervals with the winner precomputed).
// It replaced rte_acl as the default after bench/policy_bench.cc (README.md has the figures).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/policy/policy_model.h"

namespace eipgate::policy {

// Protocol classes as bits, so that an entry can cover several.
inline constexpr uint8_t kClassTcp = 1;
inline constexpr uint8_t kClassUdp = 2;
inline constexpr uint8_t kClassIcmp = 4;
inline constexpr uint8_t kClassOther = 8;

inline uint8_t proto_class(uint8_t ip_proto) {
  switch (ip_proto) {
    case 6:
      return kClassTcp;
    case 17:
      return kClassUdp;
    case 1:
      return kClassIcmp;
    default:
      return kClassOther;
  }
}

struct MatchEntry {
  Prefix dst;
  uint8_t classes = 0;   // kClass* bits
  uint16_t port_lo = 0;  // ports are checked for TCP and UDP only
  uint16_t port_hi = 0xffff;
  uint32_t code = 0;  // returned on a match
};

class SegmentTable {
 public:
  // Entries in priority order (the first that matches wins). False with *error when the
  // expansion would exceed max_cells (pathological overlap); the caller then uses rte_acl.
  bool build(const std::vector<MatchEntry>& entries, size_t max_cells, std::string* error);

  // The code of the first matching entry, or -1 as "none" (0xffffffff).
  [[nodiscard]] uint32_t lookup(uint32_t dst, uint8_t classes, uint16_t port) const;

  [[nodiscard]] size_t segments() const { return bounds_.size(); }
  [[nodiscard]] size_t memory_bytes() const;

  static constexpr uint32_t kNone = 0xffffffff;
  static constexpr uint32_t kLinearMax = 8;  // candidates scanned linearly up to this many

 private:
  struct Candidate {  // 12 bytes: a segment's candidates sit in one or two cache lines
    uint32_t code;
    uint16_t port_lo;
    uint16_t port_hi;
    uint8_t classes;
    uint8_t pad[3];
  };
  struct Segment {
    uint32_t first;  // into candidates_ (linear) or tables_ (table)
    uint32_t count;  // candidates; > kLinearMax: a port table (first = table index)
  };
  struct PortTable {
    uint32_t icmp = kNone;
    uint32_t other = kNone;
    uint32_t tcp_first = 0, tcp_count = 0;  // into port_bounds_/port_codes_
    uint32_t udp_first = 0, udp_count = 0;
  };
  uint32_t lookup_table(const PortTable& t, uint8_t classes, uint16_t port) const;

  std::array<uint32_t, 257> top_{};  // segment holding address t<<24; [256] = last segment
  std::vector<uint32_t> bounds_;     // segment start addresses, ascending, bounds_[0] = 0
  std::vector<Segment> segments_;
  std::vector<Candidate> candidates_;
  std::vector<PortTable> tables_;
  std::vector<uint16_t> port_bounds_;  // interval starts, ascending per table class
  std::vector<uint32_t> port_codes_;
};

}  // namespace eipgate::policy

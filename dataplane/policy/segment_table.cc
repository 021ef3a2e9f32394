// SegmentTable build (a sweep over prefix start/end events keeps the covering set) and lookup.
#include "dataplane/policy/segment_table.h"

#include <algorithm>
#include <set>

namespace eipgate::policy {

bool SegmentTable::build(const std::vector<MatchEntry>& entries, size_t max_cells,
                         std::string* error) {
  *this = SegmentTable{};
  // Boundaries: every prefix start and the address after every prefix end.
  std::vector<uint64_t> cuts{0};
  for (const auto& e : entries) {
    cuts.push_back(e.dst.addr);
    cuts.push_back(uint64_t{e.dst.addr} + (uint64_t{1} << (32 - e.dst.len)));
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  if (cuts.back() == (uint64_t{1} << 32)) cuts.pop_back();

  std::vector<uint32_t> by_start(entries.size());
  for (uint32_t i = 0; i < by_start.size(); ++i) by_start[i] = i;
  std::vector<uint32_t> by_end = by_start;
  auto end_of = [&](uint32_t i) {
    return uint64_t{entries[i].dst.addr} + (uint64_t{1} << (32 - entries[i].dst.len));
  };
  std::sort(by_start.begin(), by_start.end(),
            [&](uint32_t a, uint32_t b) { return entries[a].dst.addr < entries[b].dst.addr; });
  std::sort(by_end.begin(), by_end.end(),
            [&](uint32_t a, uint32_t b) { return end_of(a) < end_of(b); });

  std::set<uint32_t> active;  // entry indices = priority order
  size_t si = 0;
  size_t ei = 0;
  size_t cells = 0;
  bounds_.reserve(cuts.size());
  segments_.reserve(cuts.size());
  for (const uint64_t cut : cuts) {
    while (ei < by_end.size() && end_of(by_end[ei]) <= cut) active.erase(by_end[ei++]);
    while (si < by_start.size() && entries[by_start[si]].dst.addr <= cut)
      active.insert(by_start[si++]);
    bounds_.push_back(static_cast<uint32_t>(cut));
    cells += active.size();
    if (cells > max_cells) {
      *error = "destination prefixes overlap too much for the segment table (" +
               std::to_string(cells) + "+ cells)";
      return false;
    }
    if (active.size() <= kLinearMax) {
      segments_.push_back(
          Segment{static_cast<uint32_t>(candidates_.size()), static_cast<uint32_t>(active.size())});
      for (uint32_t i : active) {
        const MatchEntry& e = entries[i];
        candidates_.push_back(Candidate{e.code, e.port_lo, e.port_hi, e.classes, {}});
      }
      continue;
    }
    // Many candidates: precompute the winner per protocol class and port interval.
    PortTable t;
    for (uint32_t i : active) {
      if (t.icmp == kNone && (entries[i].classes & kClassIcmp) != 0) t.icmp = entries[i].code;
      if (t.other == kNone && (entries[i].classes & kClassOther) != 0) t.other = entries[i].code;
    }
    for (const uint8_t cls : {kClassTcp, kClassUdp}) {
      std::vector<std::pair<uint32_t, int>> events;  // (port, +entry+1 add / -(entry+1) remove)
      for (uint32_t i : active) {
        if ((entries[i].classes & cls) == 0) continue;
        events.emplace_back(entries[i].port_lo, static_cast<int>(i) + 1);
        if (entries[i].port_hi < 0xffff)
          events.emplace_back(entries[i].port_hi + 1u, -static_cast<int>(i) - 1);
      }
      std::sort(events.begin(), events.end());
      const auto first = static_cast<uint32_t>(port_bounds_.size());
      std::set<uint32_t> on;
      size_t k = 0;
      uint32_t last_code = kNone - 1;  // differs from every real code and kNone
      auto emit = [&](uint32_t port) {
        const uint32_t code = on.empty() ? kNone : entries[*on.begin()].code;
        if (code == last_code) return;
        port_bounds_.push_back(static_cast<uint16_t>(port));
        port_codes_.push_back(code);
        last_code = code;
      };
      emit(0);
      while (k < events.size()) {
        const uint32_t port = events[k].first;
        while (k < events.size() && events[k].first == port) {
          const int ev = events[k++].second;
          if (ev > 0) {
            on.insert(static_cast<uint32_t>(ev - 1));
          } else {
            on.erase(static_cast<uint32_t>(-ev - 1));
          }
        }
        emit(port);
      }
      // An event at port 0 may have replaced the first interval's code in place.
      if (port_bounds_.size() - first >= 2 && port_bounds_[first + 1] == 0) {
        port_bounds_.erase(port_bounds_.begin() + first);
        port_codes_.erase(port_codes_.begin() + first);
      }
      const auto count = static_cast<uint32_t>(port_bounds_.size()) - first;
      cells += count;
      if (cls == kClassTcp) {
        t.tcp_first = first;
        t.tcp_count = count;
      } else {
        t.udp_first = first;
        t.udp_count = count;
      }
    }
    segments_.push_back(
        Segment{static_cast<uint32_t>(tables_.size()), static_cast<uint32_t>(active.size())});
    tables_.push_back(t);
  }
  for (uint32_t t = 0; t < 256; ++t) {
    const auto it = std::upper_bound(bounds_.begin(), bounds_.end(), t << 24);
    top_[t] = static_cast<uint32_t>(it - bounds_.begin()) - 1;
  }
  top_[256] = static_cast<uint32_t>(bounds_.size()) - 1;
  return true;
}

uint32_t SegmentTable::lookup_table(const PortTable& t, uint8_t classes, uint16_t port) const {
  uint32_t first = 0;
  uint32_t count = 0;
  if (classes == kClassTcp) {
    first = t.tcp_first;
    count = t.tcp_count;
  } else if (classes == kClassUdp) {
    first = t.udp_first;
    count = t.udp_count;
  } else {
    return classes == kClassIcmp ? t.icmp : t.other;
  }
  const uint16_t* b = port_bounds_.data() + first;
  const auto idx = static_cast<uint32_t>(std::upper_bound(b, b + count, port) - b) - 1;
  return port_codes_[first + idx];
}

uint32_t SegmentTable::lookup(uint32_t dst, uint8_t classes, uint16_t port) const {
  if (bounds_.empty()) return kNone;
  const uint32_t t = dst >> 24;
  // The segment is the last in [top_[t], top_[t + 1]] starting at or below dst. Branch-free
  // halving (the select compiles to a cmov): random destinations make a branchy search
  // mispredict on every step.
  const uint32_t* base = bounds_.data() + top_[t];
  uint32_t n = top_[t + 1] - top_[t] + 1;
  while (n > 1) {
    const uint32_t half = n / 2;
    base = base[half] <= dst ? base + half : base;
    n -= half;
  }
  const Segment& s = segments_[static_cast<size_t>(base - bounds_.data())];
  if (s.count > kLinearMax) return lookup_table(tables_[s.first], classes, port);
  const Candidate* c = candidates_.data() + s.first;
  for (uint32_t i = 0; i < s.count; ++i) {
    if ((c[i].classes & classes) != 0 && port >= c[i].port_lo && port <= c[i].port_hi) {
      return c[i].code;
    }
  }
  return kNone;
}

size_t SegmentTable::memory_bytes() const {
  return sizeof(*this) + bounds_.capacity() * sizeof(uint32_t) +
         segments_.capacity() * sizeof(Segment) + candidates_.capacity() * sizeof(Candidate) +
         tables_.capacity() * sizeof(PortTable) + port_bounds_.capacity() * sizeof(uint16_t) +
         port_codes_.capacity() * sizeof(uint32_t);
}

}  // namespace eipgate::policy

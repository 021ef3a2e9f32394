// The byte layout engine_fuzz reads, shared with the seed-corpus generator so seeds and harness
// cannot drift apart. An input is a 2-byte header followed by frames:
//   [ctl][clock] then repeated { [sel][len_hi][len_lo][len bytes] } (the last frame may be short).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace eipgate::fuzz {

// ctl bits 0-1: which engine receives the burst.
inline constexpr uint8_t kEngineDefault = 0;  // one worker, NAT Gateway defaults
inline constexpr uint8_t kEngineEim = 1;      // one worker, EIM UDP, 2 outside addrs, 256 ports
inline constexpr uint8_t kEngineClamp = 2;    // MSS clamp, IP checksum verify, tiny table/timeouts
inline constexpr uint8_t kEnginePair = 3;     // two RSS workers (EIM UDP); handoffs delivered
inline constexpr uint8_t kCtlPairWorker1 = 1u << 2;  // pair: the burst goes to worker 1
inline constexpr uint8_t kCtlExactCap = 1u << 3;     // buffers sized exactly to the frame
inline constexpr uint8_t kCtlExpire = 1u << 4;       // call Engine::expire after the burst
inline constexpr uint8_t kCtlOneByOne = 1u << 5;  // one packet at a time, each settled before the
                                                  // next (replies can name flows made just before)
// ctl bits 6-7: clock advance before the burst, scaled by the clock byte.
inline constexpr uint8_t kClockNone = 0 << 6;
inline constexpr uint8_t kClockMs = 1 << 6;    // clock byte * 1 ms
inline constexpr uint8_t kClock64Ms = 2 << 6;  // clock byte * 64 ms
inline constexpr uint8_t kClock8S = 3u << 6;   // clock byte * 8 s (past every timeout)

// sel bits 0-2: how the harness rewrites the frame before the engine sees it.
inline constexpr uint8_t kAsIs = 0;
inline constexpr uint8_t kMakeOut = 1;   // src inside, dst on the internet
inline constexpr uint8_t kMakeIn = 2;    // src on the internet, dst an outside address
inline constexpr uint8_t kMakeHost = 3;  // dst the instance's own address
inline constexpr uint8_t kReplyTo = 4;   // reply to a flow the engine translated earlier
inline constexpr uint8_t kAgainOut = 5;  // another outbound packet of such a flow
inline constexpr uint8_t kErrorIn = 6;   // ICMP error from the internet quoting such a flow
inline constexpr uint8_t kErrorOut = 7;  // ICMP error from the inside host quoting its reply
// sel bits 3-6: which remembered flow (0 = the latest) or address variant; bit 7: recompute the
// checksums after the rewrite.
inline constexpr uint8_t kSelFixChecksums = 1u << 7;
inline constexpr uint8_t sel(uint8_t mode, uint8_t variant, bool fix = true) {
  return static_cast<uint8_t>((mode & 7) | (variant & 15) << 3 | (fix ? kSelFixChecksums : 0));
}

inline constexpr size_t kMaxFrame = 2048;

// Builds an input (used by the corpus generator and by regression tests).
class Input {
 public:
  Input(uint8_t ctl, uint8_t clock) : bytes_{ctl, clock} {}
  Input& frame(uint8_t s, const std::vector<uint8_t>& f) {
    bytes_.push_back(s);
    bytes_.push_back(static_cast<uint8_t>(f.size() >> 8));
    bytes_.push_back(static_cast<uint8_t>(f.size()));
    bytes_.insert(bytes_.end(), f.begin(), f.end());
    return *this;
  }
  [[nodiscard]] const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace eipgate::fuzz

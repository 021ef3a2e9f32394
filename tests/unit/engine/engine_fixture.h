// Shared fixture for engine tests: a one-worker engine with documentation-range addresses, an
// injected clock, and helpers to push frames through and read the result back.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "dataplane/engine/engine.h"
#include "tests/support/packet_builder.h"

namespace eipgate::testing {

inline constexpr const char* kInsideHost = "10.0.1.10";
inline constexpr const char* kInsideHost2 = "10.0.1.11";
inline constexpr const char* kServer = "198.51.100.7";
inline constexpr const char* kServer2 = "198.51.100.8";
inline constexpr const char* kOutside = "203.0.113.1";
inline constexpr const char* kHostAddr = "10.0.0.5";

inline engine::EngineConfig default_config() {
  engine::EngineConfig c;
  c.inside_prefixes = {{ip("10.0.0.0"), 16}};
  c.outside_addrs = {ip(kOutside)};
  c.host_addrs = {ip(kHostAddr)};
  c.max_flows = 1 << 12;
  c.random_seed = 12345;
  return c;
}

// One frame through the engine; keeps the buffer so the output can be inspected.
struct Sent {
  engine::Result res;
  Bytes out;  // the frame after processing (rewritten in place / turned into a reply)
};

class EngineHarness {
 public:
  explicit EngineHarness(const engine::EngineConfig& cfg = default_config())
      : engine_(std::make_unique<engine::Engine>(cfg)) {}

  Sent send(const Bytes& frame, size_t headroom = 600) {
    Bytes buf = frame;
    buf.resize(frame.size() + headroom);
    engine::PacketBuf pkt{
        buf.data(), static_cast<uint32_t>(frame.size()), static_cast<uint32_t>(buf.size()), {}};
    engine::PacketBuf* p = &pkt;
    Sent s;
    engine_->process_burst(&p, 1, now_ns_, &s.res);
    buf.resize(pkt.len);
    s.out = std::move(buf);
    return s;
  }

  void advance_ms(uint64_t ms) { now_ns_ += ms * 1000000ull; }
  void advance_s(uint64_t s) { advance_ms(s * 1000); }
  uint64_t now_ns() const { return now_ns_; }
  engine::Engine& engine() { return *engine_; }
  uint64_t drops(engine::DropReason r) const { return engine_->counters().get(r); }
  uint64_t events(engine::Event e) const { return engine_->counters().get(e); }

 private:
  std::unique_ptr<engine::Engine> engine_;
  uint64_t now_ns_ = 1'000'000'000ull;
};

}  // namespace eipgate::testing

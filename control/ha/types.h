// Small vocabulary shared by the HA wire format and the failover state machine.
#pragma once

#include <cstdint>
#include <string_view>

namespace eipgate::ha {

// An instance's role. Values are on the wire (heartbeat state byte).
enum class HaState : uint8_t {
  Init = 0,     // just started: waiting for peer, health and route information
  Standby = 1,  // healthy, receiving the flow table, ready to take over
  Active = 2,   // holds the service address and the routes; forwards traffic
  Failed = 3,   // not eligible: local dataplane or egress unhealthy
};

[[nodiscard]] constexpr std::string_view to_string(HaState s) {
  switch (s) {
    case HaState::Init:
      return "init";
    case HaState::Standby:
      return "standby";
    case HaState::Active:
      return "active";
    case HaState::Failed:
      return "failed";
  }
  return "unknown";
}

// Health summary bits, as sent in heartbeats.
inline constexpr uint8_t kHealthDataplaneOk = 0x01;
inline constexpr uint8_t kHealthEgressOk = 0x02;
inline constexpr uint8_t kHealthInSync = 0x04;  // standby: flow table complete (no resync pending)

}  // namespace eipgate::ha

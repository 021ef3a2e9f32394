// Drop reasons and per-worker counters: one X-macro list yields the enum, the names and the slots,
// so a new drop path cannot exist without a named, exported counter.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace eipgate::engine {

// X(enum_name, "exported_name")
#define EIPGATE_DROP_REASONS(X)                            \
  X(TooShort, "too_short")                                 \
  X(UnsupportedEthertype, "unsupported_ethertype")         \
  X(Ipv6Unsupported, "ipv6_unsupported")                   \
  X(IpBadVersion, "ip_bad_version")                        \
  X(IpBadIhl, "ip_bad_ihl")                                \
  X(IpBadTotalLength, "ip_bad_total_length")               \
  X(IpBadOptions, "ip_bad_options")                        \
  X(IpBadChecksum, "ip_bad_checksum")                      \
  X(UnsupportedProtocol, "unsupported_protocol")           \
  X(L4Truncated, "l4_truncated")                           \
  X(TcpBadDataOffset, "tcp_bad_data_offset")               \
  X(NotForNat, "not_for_nat")                              \
  X(NoFlowOutside, "no_flow_outside")                      \
  X(TcpNoFlowNonSyn, "tcp_no_flow_non_syn")                \
  X(TtlExpired, "ttl_expired")                             \
  X(PortAllocation, "port_allocation")                     \
  X(TableFull, "table_full")                               \
  X(IcmpUnsupportedType, "icmp_unsupported_type")          \
  X(IcmpErrorNoFlow, "icmp_error_no_flow")                 \
  X(IcmpErrorInnerTruncated, "icmp_error_inner_truncated") \
  X(IcmpErrorInnerBad, "icmp_error_inner_bad")             \
  X(IcmpErrorNested, "icmp_error_nested")                  \
  X(FragBufferFull, "frag_buffer_full")                    \
  X(FragTimeout, "frag_timeout")                           \
  X(FragNoFirst, "frag_no_first")                          \
  X(FragFirstTooShort, "frag_first_too_short")             \
  X(NoBufferSpace, "no_buffer_space")                      \
  X(HandoffUnavailable, "handoff_unavailable")             \
  X(PolicyDenied, "policy_denied")                         \
  X(PolicyPendingFull, "policy_pending_full")              \
  X(PolicyPendingHeld, "policy_pending_held")

enum class DropReason : uint8_t {
#define EIPGATE_X(name, str) name,
  EIPGATE_DROP_REASONS(EIPGATE_X)
#undef EIPGATE_X
      Count
};

inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::Count);

inline constexpr std::array<std::string_view, kDropReasonCount> kDropReasonNames = {
#define EIPGATE_X(name, str) std::string_view{str},
    EIPGATE_DROP_REASONS(EIPGATE_X)
#undef EIPGATE_X
};

constexpr std::string_view drop_reason_name(DropReason r) {
  return kDropReasonNames[static_cast<std::size_t>(r)];
}

// Non-drop counters. The first block is named after NAT Gateway's CloudWatch metrics so operators
// can compare like with like; the rest are engine internals.
#define EIPGATE_EVENT_COUNTERS(X)                             \
  X(ConnectionAttemptCount, "ConnectionAttemptCount")         \
  X(ConnectionEstablishedCount, "ConnectionEstablishedCount") \
  X(ErrorPortAllocation, "ErrorPortAllocation")               \
  X(IdleTimeoutCount, "IdleTimeoutCount")                     \
  X(PacketsDropCount, "PacketsDropCount")                     \
  X(BytesInFromSource, "BytesInFromSource")                   \
  X(BytesOutToDestination, "BytesOutToDestination")           \
  X(BytesInFromDestination, "BytesInFromDestination")         \
  X(BytesOutToSource, "BytesOutToSource")                     \
  X(PacketsInFromSource, "PacketsInFromSource")               \
  X(PacketsOutToDestination, "PacketsOutToDestination")       \
  X(PacketsInFromDestination, "PacketsInFromDestination")     \
  X(PacketsOutToSource, "PacketsOutToSource")                 \
  X(FlowsCreated, "flows_created")                            \
  X(FlowsExpired, "flows_expired")                            \
  X(FlowsClosed, "flows_closed")                              \
  X(FlowsEvicted, "flows_evicted")                            \
  X(FlowsSynced, "flows_synced")                              \
  X(FlowsOffloaded, "flows_offloaded")                        \
  X(FlowsWithdrawn, "flows_withdrawn")                        \
  X(OffloadFlushes, "offload_flushes")                        \
  X(FastPathPackets, "fastpath_packets")                      \
  X(PolicyRejectsSent, "policy_rejects_sent")                 \
  X(PolicyNamesChecked, "policy_names_checked")               \
  X(PolicyFlowsRechecked, "policy_flows_closed_on_reload")    \
  X(PolicyDeniedRepeats, "policy_denied_repeats")             \
  X(TcpReopened, "tcp_reopened")                              \
  X(TcpRstSentToInside, "tcp_rst_sent_to_inside")             \
  X(IcmpTimeExceededSent, "icmp_time_exceeded_sent")          \
  X(IcmpErrorsTranslatedIn, "icmp_errors_translated_in")      \
  X(IcmpErrorsTranslatedOut, "icmp_errors_translated_out")    \
  X(MssClamped, "mss_clamped")                                \
  X(FragmentsTranslated, "fragments_translated")              \
  X(FragmentsHeld, "fragments_held")                          \
  X(PacketsToHost, "packets_to_host")                         \
  X(PacketsHandedOff, "packets_handed_off")                   \
  X(PortAllocRetries, "port_alloc_retries")

enum class Event : uint8_t {
#define EIPGATE_X(name, str) name,
  EIPGATE_EVENT_COUNTERS(EIPGATE_X)
#undef EIPGATE_X
      Count
};

inline constexpr std::size_t kEventCount = static_cast<std::size_t>(Event::Count);

inline constexpr std::array<std::string_view, kEventCount> kEventNames = {
#define EIPGATE_X(name, str) std::string_view{str},
    EIPGATE_EVENT_COUNTERS(EIPGATE_X)
#undef EIPGATE_X
};

constexpr std::string_view event_name(Event e) { return kEventNames[static_cast<std::size_t>(e)]; }

// Per-worker counters; written only by the owning worker, read (torn reads tolerated) by stats.
struct alignas(64) Counters {
  std::array<uint64_t, kDropReasonCount> drops{};
  std::array<uint64_t, kEventCount> events{};

  void drop(DropReason r) {
    ++drops[static_cast<std::size_t>(r)];
    ++events[static_cast<std::size_t>(Event::PacketsDropCount)];
  }
  void add(Event e, uint64_t n = 1) { events[static_cast<std::size_t>(e)] += n; }
  [[nodiscard]] uint64_t get(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }
  [[nodiscard]] uint64_t get(Event e) const { return events[static_cast<std::size_t>(e)]; }

  Counters& operator+=(const Counters& o) {
    for (std::size_t i = 0; i < kDropReasonCount; ++i) drops[i] += o.drops[i];
    for (std::size_t i = 0; i < kEventCount; ++i) events[i] += o.events[i];
    return *this;
  }
};

}  // namespace eipgate::engine

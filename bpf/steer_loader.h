// Loads, configures and attaches the XDP steering program (xdp_steer.bpf.c) for the dataplane's
// AF_XDP mode: a thin RAII wrapper over its libbpf skeleton. Errors come back as strings.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/steer_abi.h"

struct xdp_steer;  // the bpftool-generated skeleton (xdp_steer.skel.h)

namespace eipgate::bpf {

struct SteerPrefix {
  uint32_t addr = 0;  // host order
  uint8_t len = 0;    // 0..32
};

// What the program needs to know to tell NAT traffic from the instance's own. Addresses in host
// order, as in engine::EngineConfig, from which the dataplane fills it.
struct SteerConfig {
  std::vector<SteerPrefix> inside_prefixes;
  std::vector<uint32_t> outside_addrs;  // service (NAT) addresses
  std::vector<uint32_t> host_addrs;     // the instance's own addresses
  uint16_t port_min = 1024;
  uint16_t port_max = 65535;
  bool echo_request_to_host = true;  // pings to an outside address answered by the kernel
  // STEER_F_FASTPATH: translate the packets of flows offloaded to fp_flows in XDP (fastpath.h).
  // Off, the program steers as it does without a fast path, whatever fp_flows holds.
  bool fastpath = false;
};

// Returns an empty string when the program can take the config, else the reason.
std::string validate(const SteerConfig& cfg);

enum class XdpMode : uint8_t {
  Skb,     // generic XDP: any device, after the kernel built an skb (veth, tests)
  Driver,  // native XDP in the driver (ENA, virtio-net)
};

struct SteerStats {
  std::array<uint64_t, STEER_STAT_COUNT> packets{};  // summed over CPUs, by steer_stat
};

// Name of a steer_stat slot ("nat_inside_out"), from the list in steer_abi.h.
std::string_view steer_stat_name(uint32_t slot);

// The file descriptors of the program's maps (-1 when absent).
struct SteerMapFds {
  int xsks = -1;
  int inside_prefixes = -1;
  int local_addrs = -1;
  int steer_config = -1;
  int steer_stats = -1;
  int fp_flows = -1;  // absent (-1) in an adopted object that predates the fast path
  int fp_tx_ports = -1;
  int fp_counters = -1;  // BPF_F_MMAPABLE: the dataplane maps it (fastpath.h, map_counters)
};

// Set before the program is loaded.
struct SteerLoadOptions {
  // fp_flows entries, one per direction of a flow (so half as many flows); not preallocated:
  // memory is taken per entry offloaded (bpf/README.md gives the bytes).
  uint32_t fastpath_max_entries = FP_DEFAULT_MAX_ENTRIES;
  // fp_counters slots (one per engine flow record), 40 B each, preallocated at load.
  uint32_t fastpath_counter_slots = FP_COUNTER_SLOTS;
};

// Replaces the contents of the maps with cfg (the ordering rules of SteerProgram::configure).
std::string configure_maps(const SteerMapFds& fds, const SteerConfig& cfg);
// Sums the per-CPU verdict counters of a steer_stats map.
std::string read_stats_map(int stats_fd, SteerStats& out);

// One loaded instance of the program and its maps. Destruction detaches it (if attached) and
// frees the program and maps.
class SteerProgram {
 public:
  SteerProgram() = default;
  ~SteerProgram();
  SteerProgram(const SteerProgram&) = delete;
  SteerProgram& operator=(const SteerProgram&) = delete;
  SteerProgram(SteerProgram&& other) noexcept;
  SteerProgram& operator=(SteerProgram&& other) noexcept;

  // Opens the embedded object and loads it into the kernel (needs root, or CAP_BPF, CAP_NET_ADMIN
  // and CAP_PERFMON: the verifier allows IHL-variable packet offsets only with the last one).
  // The loaded program passes everything to the kernel until configure() succeeds.
  std::string load(const SteerLoadOptions& options = {});
  [[nodiscard]] bool loaded() const { return skel_ != nullptr; }

  // Replaces the map contents with cfg (fp_flows aside: FastPathTable fills it). Not atomic across
  // maps, so ordered to be safe: new entries are added before stale ones are removed, so a packet
  // sees the old config, the new one or their union; the union only sends extra traffic to the
  // dataplane, whose engine applies its own atomic snapshot. A config that fails validate() changes
  // nothing.
  std::string configure(const SteerConfig& cfg);

  // Attaches to a device; one attachment per instance. detach() is also done by the destructor.
  std::string attach(int ifindex, XdpMode mode);
  std::string detach();
  [[nodiscard]] int attached_ifindex() const { return ifindex_; }

  // The AF_XDP socket that receives NAT traffic arriving on RX queue `queue`.
  std::string register_socket(uint32_t queue, int xsk_fd);
  std::string unregister_socket(uint32_t queue);

  std::string read_stats(SteerStats& out) const;

  [[nodiscard]] int prog_fd() const;
  [[nodiscard]] SteerMapFds map_fds() const;

 private:
  void reset();

  xdp_steer* skel_ = nullptr;
  int ifindex_ = 0;
  uint32_t attach_flags_ = 0;
};

// The program as someone else loaded and attached it: DPDK's af_xdp PMD loads xdp_steer.bpf.o
// itself when given xdp_prog=<path> (and fills xsks_map with its sockets). adopt() finds the
// program attached to a device, checks it is xdp_steer, and opens its maps so the dataplane can
// configure them and read the counters. Holds map fds only; never detaches anything.
class AttachedSteer {
 public:
  AttachedSteer() = default;
  ~AttachedSteer();
  AttachedSteer(const AttachedSteer&) = delete;
  AttachedSteer& operator=(const AttachedSteer&) = delete;
  AttachedSteer(AttachedSteer&& other) noexcept;
  AttachedSteer& operator=(AttachedSteer&& other) noexcept;

  std::string adopt(int ifindex);
  std::string configure(const SteerConfig& cfg);
  std::string read_stats(SteerStats& out) const;
  [[nodiscard]] bool adopted() const { return prog_id_ != 0; }
  [[nodiscard]] uint32_t prog_id() const { return prog_id_; }
  [[nodiscard]] const SteerMapFds& map_fds() const { return fds_; }

 private:
  void close_all();
  SteerMapFds fds_;
  uint32_t prog_id_ = 0;
  int ifindex_ = 0;
};

// A dataplane killed without a clean stop (kill -9, a crash) leaves the xdp_steer program DPDK
// attached to its interface — still steering to sockets that are gone, and still translating the
// flows in its fast-path map — and the next start cannot attach its own. Removes an xdp_steer
// program attached to ifindex (only ours: anything else is left, and the error says what it is).
// Returns "" when the interface has no XDP program left; *removed_id is the id removed, or 0.
std::string remove_stale_steer(int ifindex, uint32_t* removed_id);

// ---- test support -----------------------------------------------------------------------------

struct XdpRunResult {
  std::string error;            // empty on success; then verdict and output are set
  uint32_t verdict = 0;         // XDP_PASS, XDP_DROP, XDP_REDIRECT, ...
  std::vector<uint8_t> output;  // the frame as the program left it
};

// Where the packet pretends to have arrived. ifindex 0 = no device: the kernel then only accepts
// rx_queue 0.
struct XdpRunContext {
  int ifindex = 0;
  uint32_t rx_queue = 0;
};

// Runs an XDP program once on `frame` with BPF_PROG_TEST_RUN (no device traffic). A redirect is
// not carried out: the verdict is what the program returned (XDP_REDIRECT when bpf_redirect_map
// found a socket in the slot, else its fallback).
XdpRunResult run_on_packet(int prog_fd, std::span<const uint8_t> frame, XdpRunContext ctx = {});

}  // namespace eipgate::bpf

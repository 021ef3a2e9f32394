// The host exception path: one kernel TAP interface per DPDK port, carrying the port's MAC and
// address, so traffic for the instance itself (SSH, health checks, HA heartbeats, ping) reaches the
// kernel and the kernel's replies leave through the DPDK port. Driven by the main lcore only.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/dpdk/arp.h"

struct rte_mbuf;
struct rte_mempool;

namespace eipgate::dataplane {

// What the kernel interface of one DPDK port looks like.
struct ExceptionInterface {
  uint16_t port_id = 0;
  MacAddr mac{};       // the port's MAC: the kernel answers and sends with it
  std::string ifname;  // see interface_name()
  uint32_t addr = 0;   // host order; 0 = no address
  uint8_t prefix_len = 0;
  std::vector<uint32_t> extra_addrs;  // /32s (outside addresses: the kernel answers their pings)
  uint32_t gateway = 0;               // fallback default route through this interface; 0 = none
  uint16_t mtu = 1500;
};

class TapExceptionPath {
 public:
  // Metric of the default route we add: high, so an existing default route (a kernel-owned eth0)
  // keeps winning, while an instance whose only ENI is DPDK-owned still reaches beyond its subnet.
  static constexpr uint32_t kDefaultRouteMetric = 4096;

  TapExceptionPath() = default;
  ~TapExceptionPath();  // closes the TAPs; the kernel removes them (they are not persistent)
  TapExceptionPath(const TapExceptionPath&) = delete;
  TapExceptionPath& operator=(const TapExceptionPath&) = delete;

  // The kernel name for port `index` (config order): the configured name for the first port, the
  // name with the index appended for the others (cut to fit IFNAMSIZ).
  static std::string interface_name(const std::string& base, size_t index);

  // Creates and configures every interface (MAC, MTU, IPv6 and forwarding off, up, addresses,
  // fallback default route). max_frame: the largest frame an mbuf holds; the MTU is clamped so
  // the kernel never writes more. Returns an empty string or a clear error.
  std::string open(const std::vector<ExceptionInterface>& ifs, uint32_t max_frame,
                   rte_mempool* pool);

  // Writes the frame to the TAP of m->port. The caller keeps (and frees) the mbuf.
  bool to_kernel(const rte_mbuf* m);

  // Reads up to `max` frames the kernel sent and returns those that may leave, with m->port set to
  // their DPDK port. Only IPv4 and ARP frames whose source MAC is the port's own are let through.
  uint32_t from_kernel(rte_mbuf** out, uint32_t max);

  // The TAP file descriptors, for a main loop that sleeps in poll() until the kernel sends.
  [[nodiscard]] std::vector<int> fds() const {
    std::vector<int> v;
    for (const auto& t : taps_) v.push_back(t.fd);
    return v;
  }

  [[nodiscard]] uint64_t to_kernel_count() const {
    return to_kernel_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t to_kernel_failed() const {
    return to_kernel_failed_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t from_kernel_count() const {
    return from_kernel_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t from_kernel_filtered() const {
    return from_kernel_filtered_.load(std::memory_order_relaxed);
  }

 private:
  struct Tap {
    ExceptionInterface cfg;
    int fd = -1;
  };
  std::string configure(Tap& t);

  std::vector<Tap> taps_;
  rte_mempool* pool_ = nullptr;
  rte_mbuf* spare_ = nullptr;  // kept between polls so an idle poll allocates nothing
  uint32_t max_frame_ = 0;
  // Written by the main lcore, read by the admin thread.
  std::atomic<uint64_t> to_kernel_{0};
  std::atomic<uint64_t> to_kernel_failed_{0};
  std::atomic<uint64_t> from_kernel_{0};
  std::atomic<uint64_t> from_kernel_filtered_{0};
};

}  // namespace eipgate::dataplane

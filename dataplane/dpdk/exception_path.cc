// The host exception path over /dev/net/tun: TAP creation, kernel-side configuration through
// ioctl and rtnetlink (no shelling out), and frame moves between mbufs and the TAP file
// descriptors.
//
// Why /dev/net/tun rather than DPDK's net_tap PMD: the kernel copies each frame across read/write
// either way (net_tap does the same syscalls), but a hot-plugged net_tap would be one more ethdev
// to configure, start, poll and keep out of the data ports' numbering, and it installs its own tc
// and netlink machinery we do not need. A plain TAP fd is a few dozen lines, has no extra mempool
// or queues, and fails at start with an errno we can explain.
#include "dataplane/dpdk/exception_path.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/ipv4_text.h"
#include "common/log.h"

namespace eipgate::dataplane {

namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;

std::string errno_text(int e) { return std::strerror(e); }

// A closed-on-exit socket for interface ioctls and rtnetlink requests.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

// One rtnetlink request with an acknowledgement; returns 0 or a negative errno.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags) {
    hdr()->nlmsg_len = NLMSG_LENGTH(0);
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    hdr()->nlmsg_seq = 1;
  }
  template <typename T>
  void body(const T& v) {
    std::memcpy(tail(), &v, sizeof v);
    hdr()->nlmsg_len = NLMSG_ALIGN(hdr()->nlmsg_len) + static_cast<uint32_t>(NLMSG_ALIGN(sizeof v));
  }
  void attr(uint16_t type, const void* data, size_t len) {
    auto* rta = reinterpret_cast<rtattr*>(tail());
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    hdr()->nlmsg_len = NLMSG_ALIGN(hdr()->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }
  void attr32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }

  int send() {
    const Fd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (s.get() < 0) return -errno;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(s.get(), buf_, hdr()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0) {
      return -errno;
    }
    alignas(nlmsghdr) char reply[4096];
    ssize_t n = ::recv(s.get(), reply, sizeof reply, 0);
    if (n < 0) return -errno;
    auto len = static_cast<uint32_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        return static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;  // 0 is the ACK
      }
    }
    return -EPROTO;
  }

 private:
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_); }
  char* tail() { return buf_ + NLMSG_ALIGN(hdr()->nlmsg_len); }
  alignas(nlmsghdr) char buf_[512]{};
};

int add_address(int ifindex, uint32_t addr, uint8_t prefix_len) {
  NetlinkRequest r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = prefix_len;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  r.body(ifa);
  r.attr32(IFA_LOCAL, htonl(addr));
  r.attr32(IFA_ADDRESS, htonl(addr));
  if (prefix_len < 31) {
    const uint32_t mask = prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - prefix_len);
    r.attr32(IFA_BROADCAST, htonl(addr | ~mask));
  }
  return r.send();
}

int add_default_route(int ifindex, uint32_t gateway) {
  NetlinkRequest r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  r.body(rt);
  r.attr32(RTA_GATEWAY, htonl(gateway));
  r.attr32(RTA_OIF, static_cast<uint32_t>(ifindex));
  r.attr32(RTA_PRIORITY, TapExceptionPath::kDefaultRouteMetric);
  return r.send();
}

// Best effort: a missing file (IPv6 not built in) is not an error worth refusing to start for.
bool write_sysctl(const std::string& path, const char* value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace

TapExceptionPath::~TapExceptionPath() {
  for (auto& t : taps_) {
    if (t.fd >= 0) ::close(t.fd);
  }
  if (spare_) rte_pktmbuf_free(spare_);
}

std::string TapExceptionPath::interface_name(const std::string& base, size_t index) {
  if (index == 0) return base.substr(0, IFNAMSIZ - 1);
  const std::string suffix = std::to_string(index);
  return base.substr(0, IFNAMSIZ - 1 - suffix.size()) + suffix;
}

std::string TapExceptionPath::open(const std::vector<ExceptionInterface>& ifs, uint32_t max_frame,
                                   rte_mempool* pool) {
  pool_ = pool;
  max_frame_ = max_frame;
  for (const auto& cfg : ifs) {
    Tap t;
    t.cfg = cfg;
    // The kernel never sends more than MTU + Ethernet header: one mbuf always holds its frames.
    const auto cap = static_cast<uint16_t>(max_frame - 14);
    if (t.cfg.mtu > cap) {
      log::get()->warn("exception path {}: MTU {} clamped to {} (mbuf data room)", cfg.ifname,
                       cfg.mtu, cap);
      t.cfg.mtu = cap;
    }
    t.fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t.fd < 0) {
      return "exception path: cannot open /dev/net/tun: " + errno_text(errno) +
             " (needs the tun module and CAP_NET_ADMIN; or set exception_path.enabled: false)";
    }
    taps_.push_back(t);  // closed by the destructor from here on
    if (std::string err = configure(taps_.back()); !err.empty()) {
      return "exception path " + cfg.ifname + ": " + err;
    }
  }
  return {};
}

std::string TapExceptionPath::configure(Tap& t) {
  const ExceptionInterface& c = t.cfg;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, c.ifname.c_str(), IFNAMSIZ - 1);
  // IFF_NO_PI: bare Ethernet frames. No IFF_VNET_HDR and no TUNSETOFFLOAD: the kernel hands us
  // complete checksums and MTU-sized frames (no GSO super-frames), as a NIC would see them.
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(t.fd, TUNSETIFF, &ifr) < 0) {
    const int e = errno;
    return "cannot create TAP: " + errno_text(e) +
           (e == EBUSY || e == EINVAL ? " (an interface of that name exists?)" : "");
  }
  const Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return "socket: " + errno_text(errno);

  ifreq req{};
  std::strncpy(req.ifr_name, c.ifname.c_str(), IFNAMSIZ - 1);
  req.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(req.ifr_hwaddr.sa_data, c.mac.data(), 6);
  if (::ioctl(s.get(), SIOCSIFHWADDR, &req) < 0) return "set MAC: " + errno_text(errno);
  req = {};
  std::strncpy(req.ifr_name, c.ifname.c_str(), IFNAMSIZ - 1);
  req.ifr_mtu = c.mtu;
  if (::ioctl(s.get(), SIOCSIFMTU, &req) < 0) return "set MTU: " + errno_text(errno);

  // IPv6 off: the engine carries IPv4 only, and the kernel's router solicitations, DAD and MLD
  // would only leak out of the port. Forwarding off on the TAP: packets we hand the kernel must
  // never be routed onwards by it (that would bypass the NAT).
  const std::string v6 = "/proc/sys/net/ipv6/conf/" + c.ifname + "/disable_ipv6";
  if (!write_sysctl(v6, "1")) log::get()->debug("exception path {}: cannot write {}", c.ifname, v6);
  const std::string fwd = "/proc/sys/net/ipv4/conf/" + c.ifname + "/forwarding";
  if (!write_sysctl(fwd, "0")) {
    log::get()->warn("exception path {}: cannot write {}", c.ifname, fwd);
  }

  req = {};
  std::strncpy(req.ifr_name, c.ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &req) < 0) return "get flags: " + errno_text(errno);
  req.ifr_flags = static_cast<int16_t>(req.ifr_flags | IFF_UP);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &req) < 0) return "set up: " + errno_text(errno);
  req = {};
  std::strncpy(req.ifr_name, c.ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFINDEX, &req) < 0) return "ifindex: " + errno_text(errno);
  const int ifindex = req.ifr_ifindex;

  if (c.addr != 0) {
    if (int rc = add_address(ifindex, c.addr, c.prefix_len); rc < 0) {
      return "add address " + ipv4_to_string(c.addr) + "/" + std::to_string(c.prefix_len) + ": " +
             errno_text(-rc);
    }
  }
  for (uint32_t a : c.extra_addrs) {
    if (a == 0 || a == c.addr) continue;
    if (int rc = add_address(ifindex, a, 32); rc < 0) {
      return "add address " + ipv4_to_string(a) + "/32: " + errno_text(-rc);
    }
  }
  if (c.gateway != 0) {
    if (int rc = add_default_route(ifindex, c.gateway); rc == -EEXIST) {
      log::get()->info("exception path {}: a default route with metric {} exists; keeping it",
                       c.ifname, kDefaultRouteMetric);
    } else if (rc < 0) {
      // Not fatal: the subnet stays reachable; only off-subnet management traffic is affected.
      log::get()->warn("exception path {}: default route via {}: {}", c.ifname,
                       ipv4_to_string(c.gateway), errno_text(-rc));
    }
  }
  std::string extra;
  for (uint32_t a : c.extra_addrs) extra += " " + ipv4_to_string(a) + "/32";
  log::get()->info("exception path: TAP {} for port {} (address {}/{}{}, mtu {})", c.ifname,
                   c.port_id, ipv4_to_string(c.addr), c.prefix_len, extra, c.mtu);
  return {};
}

bool TapExceptionPath::to_kernel(const rte_mbuf* m) {
  for (auto& t : taps_) {
    if (t.cfg.port_id != m->port) continue;
    iovec iov[8];
    int n = 0;
    for (const rte_mbuf* s = m; s != nullptr && n < 8; s = s->next, ++n) {
      iov[n].iov_base = rte_pktmbuf_mtod(s, void*);
      iov[n].iov_len = s->data_len;
    }
    // One write is one frame; EAGAIN means the kernel's backlog is full: drop, as a NIC would.
    if (::writev(t.fd, iov, n) == static_cast<ssize_t>(m->pkt_len)) {
      to_kernel_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    break;
  }
  to_kernel_failed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

uint32_t TapExceptionPath::from_kernel(rte_mbuf** out, uint32_t max) {
  uint32_t count = 0;
  for (auto& t : taps_) {
    while (count < max) {
      if (!spare_ && !(spare_ = rte_pktmbuf_alloc(pool_))) return count;
      auto* d = rte_pktmbuf_mtod(spare_, uint8_t*);
      const ssize_t n =
          ::read(t.fd, d, std::min<uint32_t>(max_frame_, rte_pktmbuf_tailroom(spare_)));
      if (n <= 0) break;  // EAGAIN: nothing more from this TAP
      // Only the kernel's own frames leave: source MAC = the port's, IPv4 or ARP. Anything else
      // (a frame injected with another source, IPv6, LLDP) would make us an open relay onto the
      // VPC for whoever can write to the TAP.
      const uint16_t type = n >= 14 ? static_cast<uint16_t>(d[12] << 8 | d[13]) : 0;
      if (n < 14 || std::memcmp(d + 6, t.cfg.mac.data(), 6) != 0 ||
          (type != kEtherIpv4 && type != kEtherArp)) {
        from_kernel_filtered_.fetch_add(1, std::memory_order_relaxed);
        continue;  // the spare is reused
      }
      spare_->data_len = static_cast<uint16_t>(n);
      spare_->pkt_len = static_cast<uint32_t>(n);
      spare_->port = t.cfg.port_id;
      out[count++] = spare_;
      spare_ = nullptr;
      from_kernel_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return count;
}

}  // namespace eipgate::dataplane

// nftables over raw netlink (NFT_MSG_GETCHAIN dump of the netdev family): no libnftables, no
// shelling out to nft.
#include "dataplane/dpdk/ingress_check.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace eipgate::dataplane {

namespace {

struct Attr {
  uint16_t type = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
};

// Calls fn for every attribute in [p, p + len).
template <typename Fn>
void for_each_attr(const uint8_t* p, size_t len, Fn&& fn) {
  while (len >= sizeof(nlattr)) {
    nlattr a;
    std::memcpy(&a, p, sizeof a);
    if (a.nla_len < sizeof(nlattr) || a.nla_len > len) return;
    fn(Attr{static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK), p + NLA_HDRLEN,
            static_cast<size_t>(a.nla_len) - NLA_HDRLEN});
    const size_t step = NLA_ALIGN(a.nla_len);
    if (step >= len) return;
    p += step;
    len -= step;
  }
}

uint32_t be32(const Attr& a) {
  if (a.len < 4) return UINT32_MAX;
  return static_cast<uint32_t>(a.data[0]) << 24 | static_cast<uint32_t>(a.data[1]) << 16 |
         static_cast<uint32_t>(a.data[2]) << 8 | a.data[3];
}

std::string_view str(const Attr& a) {
  return {reinterpret_cast<const char*>(a.data),
          strnlen(reinterpret_cast<const char*>(a.data), a.len)};
}

// One chain from a NFT_MSG_NEWCHAIN message: hooked at netdev ingress on ifname, policy drop.
bool drops_ingress_of(const uint8_t* p, size_t len, std::string_view ifname) {
  bool ingress = false, on_dev = false, drop = false;
  for_each_attr(p, len, [&](const Attr& a) {
    if (a.type == NFTA_CHAIN_POLICY) drop = be32(a) == NF_DROP;
    if (a.type != NFTA_CHAIN_HOOK) return;
    for_each_attr(a.data, a.len, [&](const Attr& h) {
      if (h.type == NFTA_HOOK_HOOKNUM) ingress = be32(h) == NF_NETDEV_INGRESS;
      if (h.type == NFTA_HOOK_DEV) on_dev |= str(h) == ifname;
      if (h.type == NFTA_HOOK_DEVS) {
        for_each_attr(h.data, h.len, [&](const Attr& d) { on_dev |= str(d) == ifname; });
      }
    });
  });
  return ingress && on_dev && drop;
}

}  // namespace

IngressDrop kernel_ingress_dropped(const std::string& ifname, std::string* why) {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    *why = std::string("netlink: ") + std::strerror(errno);
    return IngressDrop::Unknown;
  }
  struct {
    nlmsghdr nh;
    nfgenmsg nf;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.nf.nfgen_family = NFPROTO_NETDEV;
  req.nf.version = NFNETLINK_V0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    *why = std::string("netlink send: ") + std::strerror(errno);
    ::close(fd);
    return IngressDrop::Unknown;
  }
  timeval tv{1, 0};  // the kernel answers a dump at once; never hang the start on it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  alignas(nlmsghdr) static thread_local std::array<uint8_t, 32768> buf;
  IngressDrop result = IngressDrop::Missing;
  for (bool done = false; !done;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      *why = std::string("netlink recv: ") + (n < 0 ? std::strerror(errno) : "closed");
      result = IngressDrop::Unknown;
      break;
    }
    size_t left = static_cast<size_t>(n);
    for (auto* nh = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(nh, left);
         nh = NLMSG_NEXT(nh, left)) {
      if (nh->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (nh->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
        *why = std::string("nftables: ") + std::strerror(-e->error);
        ::close(fd);
        return IngressDrop::Unknown;
      }
      if ((nh->nlmsg_type & 0xff) != NFT_MSG_NEWCHAIN) continue;
      const auto* p = static_cast<const uint8_t*>(NLMSG_DATA(nh)) + NLMSG_ALIGN(sizeof(nfgenmsg));
      const size_t len = nh->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(nfgenmsg)));
      if (drops_ingress_of(p, len, ifname)) result = IngressDrop::Present;
    }
  }
  ::close(fd);
  return result;
}

}  // namespace eipgate::dataplane

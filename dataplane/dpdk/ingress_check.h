// Whether the kernel's own ingress on an interface is dropped (an nftables netdev chain hooked at
// ingress on that device with policy drop), asked over netlink: an af_packet port needs it, or
// the kernel also answers for the exception path's addresses.
#pragma once

#include <string>

namespace eipgate::dataplane {

enum class IngressDrop { Present, Missing, Unknown };

// Looks in the calling thread's network namespace. Unknown when nftables cannot be asked
// (no nf_tables module, no permission); the reason goes to *why.
[[nodiscard]] IngressDrop kernel_ingress_dropped(const std::string& ifname, std::string* why);

}  // namespace eipgate::dataplane

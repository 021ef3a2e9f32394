// IPv4 addresses as dotted text, for messages and logs. One definition for every component (the
// engine, the config loader, the DPDK process) so they all print addresses the same way.
#pragma once

#include <cstdint>
#include <string>

namespace eipgate {

// "192.0.2.1" from an address in host byte order.
[[nodiscard]] std::string ipv4_to_string(uint32_t host_order);

}  // namespace eipgate

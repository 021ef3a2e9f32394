// IPv4 addresses as dotted text, both ways. One definition for every component (the engine, the
// config loaders, the DPDK process) so they all print and read addresses the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eipgate {

// "192.0.2.1" from an address in host byte order.
[[nodiscard]] std::string ipv4_to_string(uint32_t host_order);

// The address in host byte order, from exactly four decimal octets 0..255 separated by dots, with
// no leading zeros ("010" means 8 to inet_aton and 10 to a reader), signs or spaces; nothing
// otherwise. The one IPv4 grammar of every config file (common/README.md).
[[nodiscard]] std::optional<uint32_t> parse_ipv4(std::string_view text);

}  // namespace eipgate

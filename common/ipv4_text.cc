// IPv4 dotted text (ipv4_text.h).
#include "common/ipv4_text.h"

namespace eipgate {

std::string ipv4_to_string(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

}  // namespace eipgate

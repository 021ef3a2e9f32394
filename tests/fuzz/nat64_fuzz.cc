// libFuzzer target for the NAT64 translator (dataplane/engine/nat64_xlate.cc): arbitrary bytes
// as an IPv6 or IPv4 packet, parsed and, when accepted, translated in place. The buffer is exactly
// headroom + packet, so ASan catches any read or write outside it; the translated packet must lie
// inside the buffer, and a translated IPv4 header must carry a valid checksum.
// Input: byte 0 = direction (bit 0: 1 = IPv6 -> IPv4) and headroom (bits 1-7, 0..127 bytes);
// the rest is the packet from its IP header on.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dataplane/engine/checksum.h"
#include "dataplane/engine/nat64_xlate.h"

namespace n64 = eipgate::engine::nat64;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 4096) return 0;
  const bool six = (data[0] & 1) != 0;
  const uint32_t headroom = data[0] >> 1;
  const auto len = static_cast<uint32_t>(size - 1);
  std::vector<uint8_t> buf(headroom + len);
  std::memcpy(buf.data() + headroom, data + 1, len);
  uint8_t* l3 = buf.data() + headroom;
  const n64::Config cfg{};
  n64::Output o;
  if (six) {
    n64::Info6 info;
    if (n64::parse6(l3, len, info) != n64::Drop::None) return 0;
    n64::To4 to;
    to.src = 0x0764330c;
    to.dst = info.dst[12] | (uint32_t{info.dst[13]} << 8);
    to.sport = info.sport ^ 0x1234;
    to.dport = info.dport;
    to.ip_id = 7;
    to.inner = {to.dst, to.src, info.inner.sport, 0x4321, info.inner.proto};
    if (n64::xlate_6to4(l3, len, info, to, cfg, o) != n64::Drop::None) return 0;
    if (o.l3 < l3 || o.len < 20 || o.l3 + o.len > l3 + len) std::abort();
    if (eipgate::engine::csum::fold(eipgate::engine::csum::partial(o.l3, 20)) != 0xffff)
      std::abort();
  } else {
    n64::Info4 info;
    if (n64::parse4(l3, len, info) != n64::Drop::None) return 0;
    n64::To6 to;
    to.src[0] = 0x20;
    to.dst[15] = 1;
    to.sport = info.sport;
    to.dport = info.dport ^ 0x55;
    to.inner.src = to.dst;
    to.inner.dst = to.src;
    to.inner.proto = info.inner.proto;
    if (n64::xlate_4to6(l3, len, headroom, info, to, cfg, o) != n64::Drop::None) return 0;
    if (o.l3 < buf.data() || o.len < 40 || o.l3 + o.len > buf.data() + buf.size()) std::abort();
    if ((o.l3[0] >> 4) != 6) std::abort();
    if (o.fragment_needed) {  // split at the IPv6 minimum MTU: every piece must fit it
      static uint8_t store[64][1280];
      uint8_t* bufs[64];
      for (int i = 0; i < 64; ++i) bufs[i] = store[i];
      uint32_t lens[64];
      const uint32_t n = n64::fragment6(o.l3, o.len, 1280, info.frag_id, bufs, 1280, 64, lens);
      if (n == 0) std::abort();
      for (uint32_t i = 0; i < n; ++i) {
        if (lens[i] > 1280 || lens[i] < 48) std::abort();
      }
    }
  }
  return 0;
}

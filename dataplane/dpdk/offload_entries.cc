#include "dataplane/dpdk/offload_entries.h"

namespace eipgate::dataplane {

namespace {
constexpr uint8_t kIcmp = 1;
}

OffloadTuples offload_tuples(const engine::OffloadRecord& r) {
  OffloadTuples t;
  t.outbound = {r.inside_ip, r.remote_ip, r.inside_port, r.remote_port, r.proto};
  // ICMP echo: the identifier is the "port" both ways (a reply carries its request's).
  t.inbound = r.proto == kIcmp
                  ? bpf::FpTuple{r.remote_ip, r.outside_ip, r.outside_port, 0, r.proto}
                  : bpf::FpTuple{r.remote_ip, r.outside_ip, r.remote_port, r.outside_port, r.proto};
  return t;
}

OffloadEntries offload_entries(const engine::OffloadRecord& r, const OffloadLayout& layout,
                               const std::array<uint8_t, 6>* gateway_mac,
                               const std::array<uint8_t, 6>* inside_hop_mac) {
  const bool icmp = r.proto == kIcmp;
  const OffloadTuples t = offload_tuples(r);
  OffloadEntries e;
  if (gateway_mac != nullptr) {
    bpf::FastPathSpec out;
    out.original = t.outbound;
    out.translated =
        icmp ? bpf::FpTuple{r.outside_ip, r.remote_ip, r.outside_port, 0, r.proto}
             : bpf::FpTuple{r.outside_ip, r.remote_ip, r.outside_port, r.remote_port, r.proto};
    out.dmac = *gateway_mac;
    out.smac = layout.outside_mac;
    out.mtu = layout.outside_mtu;
    out.same_port = layout.one_armed;
    out.tx_slot = layout.outside_slot;
    out.icmp_type = bpf::kFpIcmpEchoRequest;
    out.counter_slot = r.slot;
    out.inbound = false;
    e.has_outbound = bpf::make_fastpath_entry(out, e.outbound).empty();
  }
  if (inside_hop_mac != nullptr) {
    bpf::FastPathSpec in;
    in.original = t.inbound;
    in.translated =
        icmp ? bpf::FpTuple{r.remote_ip, r.inside_ip, r.inside_port, 0, r.proto}
             : bpf::FpTuple{r.remote_ip, r.inside_ip, r.remote_port, r.inside_port, r.proto};
    in.dmac = *inside_hop_mac;
    in.smac = layout.inside_mac;
    in.mtu = layout.inside_mtu;
    in.same_port = layout.one_armed;
    in.tx_slot = layout.inside_slot;
    in.icmp_type = bpf::kFpIcmpEchoReply;
    in.counter_slot = r.slot;
    in.inbound = true;
    e.has_inbound = bpf::make_fastpath_entry(in, e.inbound).empty();
  }
  return e;
}

}  // namespace eipgate::dataplane

// Writes engine_fuzz's seed corpus: valid conversations built with the test packet builder (TCP
// open/data/close/reset both ways, UDP, echo, ICMP errors, fragments, VLAN, options, TTL expiry),
// one file each, in the layout of fuzz_input.h. Usage: fuzz_corpus_gen SEED_DIR [MORE_DIRS...]
// (the extra directories are only created, e.g. libFuzzer's working corpus).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "tests/support/packet_builder.h"

namespace {

using eipgate::fuzz::Input;
using eipgate::fuzz::sel;
namespace fz = eipgate::fuzz;
namespace t = eipgate::testing;
using t::Bytes;
using t::Packet;

constexpr const char* kIn = "10.0.1.10";
constexpr const char* kIn2 = "10.0.1.11";
constexpr const char* kRemote = "198.51.100.7";
constexpr const char* kRemote2 = "198.51.100.8";
constexpr const char* kOut = "203.0.113.1";
constexpr const char* kHost = "10.0.0.5";

// As-is frames (addresses already right) and rewrites relative to the latest remembered flow.
const uint8_t kRaw = sel(fz::kAsIs, 0, false);
const uint8_t kReply = sel(fz::kReplyTo, 0);
const uint8_t kAgain = sel(fz::kAgainOut, 0);

Packet syn() { return Packet().ipv4(kIn, kRemote).tcp(40000, 443, t::kTcpSyn).seq(1000).mss(1460); }
Packet tcp_out(uint8_t flags) {
  return Packet().ipv4(kIn, kRemote).tcp(40000, 443, flags).seq(1001).ack(5001);
}
// Reply frames: the harness rewrites addresses and ports to the remembered flow.
Packet tcp_in(uint8_t flags) {
  return Packet().ipv4(kRemote, kOut).tcp(443, 1, flags).seq(5000).ack(1001);
}

std::vector<std::pair<std::string, Input>> seeds() {
  std::vector<std::pair<std::string, Input>> s;
  auto add = [&](const std::string& name, Input in) { s.emplace_back(name, std::move(in)); };
  const uint8_t c0 = fz::kEngineDefault;
  // Conversations: each packet settled before the next, so replies find the flow just made.
  const uint8_t c1 = c0 | fz::kCtlOneByOne;
  const uint8_t one = fz::kCtlOneByOne;

  add("tcp_handshake_data_fin",
      Input(c1 | fz::kClockMs, 1)
          .frame(kRaw, syn().build())
          .frame(kReply, tcp_in(t::kTcpSyn | t::kTcpAck).mss(1400).build())
          .frame(kAgain, tcp_out(t::kTcpAck).build())
          .frame(kAgain, tcp_out(t::kTcpAck | t::kTcpPsh).payload("GET / HTTP/1.1\r\n\r\n").build())
          .frame(kReply, tcp_in(t::kTcpAck).payload("HTTP/1.1 200 OK\r\n\r\n").build())
          .frame(kAgain, tcp_out(t::kTcpFin | t::kTcpAck).build())
          .frame(kReply, tcp_in(t::kTcpFin | t::kTcpAck).build())
          .frame(kAgain, tcp_out(t::kTcpAck).build()));
  add("tcp_reset_from_remote", Input(c1, 0)
                                   .frame(kRaw, syn().build())
                                   .frame(kReply, tcp_in(t::kTcpRst | t::kTcpAck).build())
                                   .frame(kAgain, syn().build()));
  add("tcp_reset_from_inside", Input(c1, 0)
                                   .frame(kRaw, syn().build())
                                   .frame(kReply, tcp_in(t::kTcpSyn | t::kTcpAck).build())
                                   .frame(kAgain, tcp_out(t::kTcpRst).build()));
  add("tcp_nonsyn_no_flow",
      Input(c0 | fz::kCtlExactCap, 0)
          .frame(kRaw,
                 Packet().ipv4(kIn2, kRemote).tcp(40001, 80, t::kTcpAck).seq(9).ack(10).build())
          .frame(kRaw,
                 Packet().ipv4(kIn2, kRemote).tcp(40002, 80, t::kTcpFin).payload("x").build()));
  add("tcp_syn_options",
      Input(fz::kEngineClamp | one, 0)
          .frame(kRaw,
                 syn().tcp_options({1, 1, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}).build())
          .frame(kReply, tcp_in(t::kTcpSyn | t::kTcpAck).mss(9000).build()));
  add("tcp_inbound_unsolicited",
      Input(c1, 0)
          .frame(kRaw, Packet().ipv4(kRemote, kOut).tcp(443, 2000, t::kTcpSyn).build())
          .frame(kRaw, Packet().ipv4(kRemote, kOut).udp(53, 2000).payload("x").build()));

  add("udp_exchange",
      Input(c1, 0)
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(5353, 53).payload("query").build())
          .frame(kReply, Packet().ipv4(kRemote, kOut).udp(53, 1).payload("answer").build())
          .frame(kReply, Packet()
                             .ipv4(kRemote, kOut)
                             .udp(53, 1)
                             .udp_zero_checksum()
                             .payload("nocsum")
                             .build()));
  add("udp_eim_two_destinations",
      Input(fz::kEngineEim | one, 0)
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(3478, 3478).payload("stun").build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote2).udp(3478, 3478).payload("stun").build())
          .frame(kReply, Packet().ipv4(kRemote2, kOut).udp(3478, 1).payload("r2").build())
          .frame(sel(fz::kReplyTo, 1),
                 Packet().ipv4(kRemote, kOut).udp(3478, 1).payload("r1").build()));
  add("echo", Input(c1, 0)
                  .frame(kRaw, Packet()
                                   .ipv4(kIn, kRemote)
                                   .icmp_echo(t::kIcmpEchoRequest, 0, 77, 1)
                                   .payload("ping")
                                   .build())
                  .frame(kReply, Packet()
                                     .ipv4(kRemote, kOut)
                                     .icmp_echo(t::kIcmpEchoReply, 0, 1, 1)
                                     .payload("ping")
                                     .build()));
  add("echo_to_outside_and_host",
      Input(c0, 0)
          .frame(kRaw, Packet().ipv4(kRemote, kOut).icmp_echo(t::kIcmpEchoRequest, 0, 5, 1).build())
          .frame(kRaw, Packet().ipv4(kIn, kHost).icmp_echo(t::kIcmpEchoRequest, 0, 5, 1).build())
          .frame(kRaw, Packet().ipv4(kIn, kHost).tcp(50000, 22, t::kTcpSyn).build()));

  // ICMP errors quoting the remembered flow, from the internet and from the inside host.
  const Bytes quote_out =
      Packet().ipv4(kOut, kRemote).ttl(1).tcp(1, 443, t::kTcpAck).payload_fill(16).build_ip();
  const Bytes quote_in =
      Packet().ipv4(kRemote, kIn).ttl(60).udp(53, 5353).payload("resp").build_ip();
  add("icmp_error_in_tcp",
      Input(c1, 0)
          .frame(kRaw, syn().build())
          .frame(sel(fz::kErrorIn, 0),
                 Packet()
                     .ipv4("192.0.2.1", kOut)
                     .icmp_error(t::kIcmpDestUnreachable, t::kIcmpCodeFragNeeded, quote_out)
                     .mtu(1280)
                     .build())
          .frame(sel(fz::kErrorIn, 0), Packet()
                                           .ipv4("192.0.2.1", kOut)
                                           .icmp_error(t::kIcmpTimeExceeded, 0, quote_out)
                                           .inner_truncate(28)
                                           .build()));
  add("icmp_error_out_udp",
      Input(c1, 0)
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(5353, 53).payload("q").build())
          .frame(sel(fz::kErrorOut, 1),
                 Packet()
                     .ipv4(kIn, kRemote)
                     .icmp_error(t::kIcmpDestUnreachable, t::kIcmpCodePortUnreachable, quote_in)
                     .build()));
  add("icmp_error_about_echo",
      Input(c1, 0)
          .frame(kRaw, Packet()
                           .ipv4(kIn, kRemote)
                           .icmp_echo(t::kIcmpEchoRequest, 0, 9, 1)
                           .payload("p")
                           .build())
          .frame(sel(fz::kErrorIn, 1), Packet()
                                           .ipv4(kRemote, kOut)
                                           .icmp_error(t::kIcmpDestUnreachable, 1,
                                                       Packet()
                                                           .ipv4(kOut, kRemote)
                                                           .icmp_echo(t::kIcmpEchoRequest, 0, 1, 1)
                                                           .payload("p"))
                                           .build()));
  add("icmp_error_nested_and_no_flow",
      Input(c0, 0)
          .frame(kRaw,
                 Packet()
                     .ipv4("192.0.2.1", kOut)
                     .icmp_error(3, 1, Packet().ipv4(kOut, "192.0.2.9").icmp_error(3, 3, quote_out))
                     .build())
          .frame(kRaw, Packet().ipv4("192.0.2.1", kOut).icmp_error(3, 3, quote_out).build()));

  // Fragments: in order, out of order (held), inbound, timeout.
  const Bytes big_udp =
      Packet().ipv4(kIn, kRemote).id(0x1234).udp(6000, 7000).payload_fill(1200).build();
  const auto frags = t::fragment(big_udp, 400);
  {
    Input in(c0, 0);
    for (const Bytes& f : frags) in.frame(kRaw, f);
    add("frag_udp_in_order", std::move(in));
  }
  {
    Input in(c0, 0);
    for (size_t i = frags.size(); i-- > 0;) in.frame(kRaw, frags[i]);
    add("frag_udp_reversed_held", std::move(in));
  }
  {
    Input in(c0 | fz::kClock64Ms, 200);  // the held fragment times out
    in.frame(kRaw, frags[1]);
    add("frag_held_timeout", std::move(in));
  }
  {
    const Bytes reply =
        Packet().ipv4(kRemote, kOut).id(0x4321).udp(7000, 1).payload_fill(900).build();
    Input in(c1, 0);
    in.frame(kRaw, Packet().ipv4(kIn, kRemote).udp(6001, 7000).payload("x").build());
    for (const Bytes& f : t::fragment(reply, 304)) in.frame(kReply, f);
    add("frag_udp_inbound", std::move(in));
  }
  {
    const Bytes tcp =
        Packet().ipv4(kIn, kRemote).id(77).tcp(40100, 443, t::kTcpSyn).payload_fill(600).build();
    Input in(c0, 0);
    for (const Bytes& f : t::fragment(tcp, 256)) in.frame(kRaw, f);
    add("frag_tcp_syn", std::move(in));
  }
  {
    const Bytes ping = Packet()
                           .ipv4(kIn, kRemote)
                           .id(78)
                           .icmp_echo(t::kIcmpEchoRequest, 0, 3, 3)
                           .payload_fill(1000)
                           .build();
    Input in(c0, 0);
    for (const Bytes& f : t::fragment(ping, 400)) in.frame(kRaw, f);
    add("frag_icmp_echo", std::move(in));
  }

  // L2 and IP header variety.
  add("vlan_single_and_qinq",
      Input(c0, 0)
          .frame(kRaw, syn().vlan(100).build())
          .frame(kRaw, Packet()
                           .vlan(10, 0, t::kEtherTypeQinQ)
                           .vlan(20)
                           .ipv4(kIn2, kRemote)
                           .udp(1000, 2000)
                           .payload("qinq")
                           .build())
          .frame(kRaw, Packet().vlan(1).vlan(2).vlan(3).ipv4(kIn2, kRemote).udp(1, 2).build()));
  add("ip_options", Input(c0, 0)
                        .frame(kRaw, Packet()
                                         .ipv4(kIn, kRemote)
                                         .ip_options({7, 7, 4, 0, 0, 0, 0, 1})
                                         .udp(1234, 53)
                                         .payload("opt")
                                         .build())
                        .frame(kRaw, Packet()
                                         .ipv4(kIn, kRemote)
                                         .ip_options({0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0})
                                         .tcp(1235, 80, t::kTcpSyn)
                                         .build()));
  add("ttl_expiry",
      Input(c0 | fz::kCtlExactCap, 0)
          .frame(kRaw,
                 Packet().ipv4(kIn, kRemote).ttl(1).udp(33434, 33434).payload_fill(32).build())
          .frame(
              kRaw,
              Packet().ipv4(kIn, kRemote).ttl(1).icmp_echo(t::kIcmpEchoRequest, 0, 1, 1).build()));
  add("ttl_expiry_headroom",
      Input(c1, 0)
          .frame(kRaw,
                 Packet().ipv4(kIn, kRemote).ttl(1).tcp(1, 2, t::kTcpSyn).payload_fill(700).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(33435, 33434).build())
          .frame(sel(fz::kReplyTo, 0), Packet().ipv4(kRemote, kOut).ttl(1).udp(33434, 1).build()));
  add("malformed",
      Input(c0, 0)
          .frame(kRaw, Packet().ethertype(t::kEtherTypeArp).payload_fill(28).build())
          .frame(kRaw, Packet().ethertype(0x86dd).payload_fill(40).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).ihl(4).udp(1, 2).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).total_length(2000).udp(1, 2).build())
          .frame(kRaw,
                 Packet().ipv4(kIn, kRemote).tcp(1, 2, t::kTcpSyn).tcp_data_offset(15).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).proto(47).payload_fill(20).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).ip_checksum(0x1234).udp(1, 2).build())
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(1, 2).trailer(20).build()));
  add("host_and_not_nat",
      Input(c0, 0)
          .frame(sel(fz::kMakeHost, 0), Packet().ipv4(kIn, kRemote).udp(68, 67).build())
          .frame(kRaw, Packet().ipv4(kIn, kIn2).udp(1, 2).build())
          .frame(sel(fz::kMakeOut, 0),
                 Packet().ipv4("1.2.3.4", "10.0.9.9").udp(5, 6).payload("x").build())
          .frame(sel(fz::kMakeIn, 0), Packet().ipv4("1.2.3.4", "5.6.7.8").udp(5, 6).build()));
  add("expire_everything", Input(c0 | fz::kClock8S | fz::kCtlExpire, 255)
                               .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(9999, 53).build()));
  add("clamp_engine_timeouts",
      Input(fz::kEngineClamp | one | fz::kClock8S | fz::kCtlExpire, 1)
          .frame(kRaw, Packet().ipv4(kIn, kRemote).udp(9, 9).build())
          .frame(kRaw, syn().build())
          .frame(kReply, tcp_in(t::kTcpSyn | t::kTcpAck).mss(1460).build()));
  {
    Input in(c0, 0);  // more than one engine burst (64)
    for (uint16_t i = 0; i < 70; ++i) {
      in.frame(kRaw, Packet()
                         .ipv4(kIn, kRemote)
                         .udp(static_cast<uint16_t>(20000 + i), 53)
                         .payload("b")
                         .build());
    }
    add("burst_70_udp", std::move(in));
  }
  {
    Input in(fz::kEngineClamp, 0);  // past max_flows (64): eviction
    for (uint16_t i = 0; i < 70; ++i) {
      in.frame(kRaw, Packet().ipv4(kIn, kRemote).udp(static_cast<uint16_t>(30000 + i), 53).build());
    }
    add("clamp_table_eviction", std::move(in));
  }
  {
    Input in(fz::kEngineEim, 0);  // 80 sockets a run against 256 EIM ports: exhaustion
    for (uint16_t i = 0; i < 80; ++i) {
      in.frame(sel(fz::kMakeOut, 0, false),
               Packet().ipv4(kIn, kRemote).udp(static_cast<uint16_t>(10000 + i * 7), 443).build());
    }
    add("eim_port_exhaustion", std::move(in));
  }

  // Two RSS workers: handoffs both ways, EIM UDP, fragments, echo.
  for (uint8_t w : {uint8_t{0}, fz::kCtlPairWorker1}) {
    const std::string suffix = w ? "_w1" : "_w0";
    Input in(fz::kEnginePair | w | one, 0);
    for (uint16_t i = 0; i < 6; ++i) {
      in.frame(kRaw, Packet()
                         .ipv4(kIn, kRemote)
                         .tcp(static_cast<uint16_t>(41000 + i), 443, t::kTcpSyn)
                         .build());
      in.frame(kReply, tcp_in(t::kTcpSyn | t::kTcpAck).build());
    }
    add("pair_tcp" + suffix, std::move(in));
    Input u(fz::kEnginePair | w | fz::kCtlOneByOne, 0);
    u.frame(kRaw, Packet().ipv4(kIn, kRemote).udp(3478, 3478).payload("a").build())
        .frame(kRaw, Packet().ipv4(kIn, kRemote2).udp(3478, 3478).payload("b").build())
        .frame(kReply, Packet().ipv4(kRemote2, kOut).udp(3478, 1).payload("c").build())
        .frame(kRaw, Packet().ipv4(kIn, kRemote).icmp_echo(t::kIcmpEchoRequest, 0, 12, 1).build())
        .frame(kReply, Packet().ipv4(kRemote, kOut).icmp_echo(t::kIcmpEchoReply, 0, 1, 1).build());
    add("pair_udp_echo" + suffix, std::move(u));
    Input f(fz::kEnginePair | w, 0);
    const Bytes big =
        Packet().ipv4(kIn2, kRemote).id(99).tcp(42000, 80, t::kTcpSyn).payload_fill(900).build();
    const auto fr = t::fragment(big, 304);
    f.frame(kRaw, fr[2]).frame(kRaw, fr[0]).frame(kRaw, fr[1]);
    add("pair_frag" + suffix, std::move(f));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [MORE_DIRS...]\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) std::filesystem::create_directories(argv[i]);
  int n = 0;
  for (const auto& [name, in] : seeds()) {
    const auto path = std::filesystem::path(argv[1]) / (name + ".bin");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(in.bytes().data()),
              static_cast<std::streamsize>(in.bytes().size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    ++n;
  }
  std::printf("wrote %d seeds to %s\n", n, argv[1]);
  return 0;
}

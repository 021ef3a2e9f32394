// RFC 7915 translation, byte for byte: every case's input and expected output are built here
// with nat64_builder.h (full checksums from scratch), the translator runs in place in a buffer
// with headroom, and the output must equal the expected packet exactly. Also: the ICMP type/code
// tables, the MTU arithmetic and a named drop reason for every refused packet.
#include "dataplane/engine/nat64_xlate.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "tests/unit/engine/nat64_builder.h"

namespace eipgate::testing {
namespace {

namespace n64 = engine::nat64;
using namespace nat64b;  // NOLINT(build/namespaces): the builder's vocabulary
using n64::Drop;

// The cast of every case: an IPv6-only host inside, its NAT64 view of a remote IPv4 server, the
// NAT's outside address and a router on the IPv4 path.
const A6 kHost6 = v6("2001:db8:1::10");
const A6 kRemote6 = v6("64:ff9b::5db8:d822");  // 93.184.216.34 under the WKP
const uint32_t kRemote4 = v4("93.184.216.34");
const uint32_t kOutside4 = v4("198.51.100.7");
const uint32_t kRouter4 = v4("192.0.2.254");
const A6 kRouter6 = v6("64:ff9b:1::c000:2fe");  // the router under a network-specific prefix
constexpr uint32_t kHeadroom = 128;

struct Ran {
  Drop drop = Drop::None;
  Bytes out;
  bool udp_computed = false;
  bool exceeds_mtu = false;
  bool fragment_needed = false;
};

Ran run6to4(const Bytes& in, const n64::To4& to, const n64::Config& cfg = {}) {
  Bytes buf(kHeadroom + in.size());
  std::copy(in.begin(), in.end(), buf.begin() + kHeadroom);
  uint8_t* l3 = buf.data() + kHeadroom;
  n64::Info6 info;
  Ran r;
  r.drop = n64::parse6(l3, static_cast<uint32_t>(in.size()), info);
  if (r.drop != Drop::None) return r;
  n64::Output o;
  r.drop = n64::xlate_6to4(l3, static_cast<uint32_t>(in.size()), info, to, cfg, o);
  if (r.drop != Drop::None) return r;
  EXPECT_GE(o.l3, l3);
  EXPECT_LE(o.l3 + o.len, l3 + in.size());
  r.out.assign(o.l3, o.l3 + o.len);
  r.exceeds_mtu = o.exceeds_mtu;
  return r;
}

Ran run4to6(const Bytes& in, const n64::To6& to, const n64::Config& cfg = {},
            uint32_t headroom = kHeadroom) {
  Bytes buf(kHeadroom + in.size());
  std::copy(in.begin(), in.end(), buf.begin() + kHeadroom);
  uint8_t* l3 = buf.data() + kHeadroom;
  n64::Info4 info;
  Ran r;
  r.drop = n64::parse4(l3, static_cast<uint32_t>(in.size()), info);
  if (r.drop != Drop::None) return r;
  n64::Output o;
  r.drop = n64::xlate_4to6(l3, static_cast<uint32_t>(in.size()), headroom, info, to, cfg, o);
  if (r.drop != Drop::None) return r;
  EXPECT_GE(o.l3, l3 - headroom);
  r.out.assign(o.l3, o.l3 + o.len);
  r.udp_computed = o.udp_checksum_computed;
  r.exceeds_mtu = o.exceeds_mtu;
  r.fragment_needed = o.fragment_needed;
  return r;
}

std::string hex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i && i % 16 == 0) s += '\n';
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
    s += ' ';
  }
  return s;
}

void expect_bytes(const Bytes& got, const Bytes& want) {
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "got:\n" << hex(got) << "\nwant:\n" << hex(want);
}

// ---- IPv6 -> IPv4 (in2out) ----

// A transport segment as the inside host sends it (v6) and as it should leave (v4).
struct L4Pair {
  uint8_t proto6, proto4;
  Bytes l4_6, l4_4;
};
L4Pair tcp_pair(uint16_t sport6, uint16_t sport4, uint16_t dport, uint8_t flags, size_t data_len,
                const A6& s6, const A6& d6, uint32_t s4, uint32_t d4) {
  Bytes data(data_len);
  for (size_t i = 0; i < data_len; ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  L4Pair p{6, 6, tcp(sport6, dport, 1000, flags, data), tcp(sport4, dport, 1000, flags, data)};
  fix_l4_v6(p.l4_6, 6, s6, d6);
  fix_l4_v4(p.l4_4, 6, s4, d4);
  return p;
}
L4Pair udp_pair(uint16_t sport6, uint16_t sport4, uint16_t dport, const Bytes& data, const A6& s6,
                const A6& d6, uint32_t s4, uint32_t d4) {
  L4Pair p{17, 17, udp(sport6, dport, data), udp(sport4, dport, data)};
  fix_l4_v6(p.l4_6, 17, s6, d6);
  fix_l4_v4(p.l4_4, 17, s4, d4);
  return p;
}
L4Pair echo_pair(bool request, uint16_t id6, uint16_t id4, const Bytes& data, const A6& s6,
                 const A6& d6) {
  L4Pair p{58, 1, icmp(request ? 128 : 129, 0, echo_rest(id6, 9), data),
           icmp(request ? 8 : 0, 0, echo_rest(id4, 9), data)};
  fix_l4_v6(p.l4_6, 58, s6, d6);
  fix_l4_v4(p.l4_4, 1, 0, 0);
  return p;
}

struct Case64 {
  std::string name;
  Bytes in;
  n64::To4 to;
  Bytes want;
};

n64::To4 to4(uint16_t sport, uint16_t dport, uint16_t id) {
  n64::To4 t;
  t.src = kOutside4;
  t.dst = kRemote4;
  t.sport = net16(sport);
  t.dport = net16(dport);
  t.ip_id = net16(id);
  return t;
}

std::vector<Case64> cases_6to4() {
  std::vector<Case64> cs;
  {  // TCP SYN: addresses, port, TTL - 1, traffic class copied, flow label dropped, DF clear
    const L4Pair p = tcp_pair(40000, 61000, 443, 0x02, 0, kHost6, kRemote6, kOutside4, kRemote4);
    cs.push_back({"tcp_syn", ip6({kHost6, kRemote6, 6, 64, 0x28, 0xabcde}, p.l4_6),
                  to4(61000, 443, 0x1234),
                  ip4({kOutside4, kRemote4, 6, 63, 0x28, 0x1234}, p.l4_4)});
  }
  {  // TCP over 1260 bytes as IPv4: DF set (RFC 7915 5.1)
    const L4Pair p = tcp_pair(40000, 61000, 443, 0x10, 1300, kHost6, kRemote6, kOutside4, kRemote4);
    Ip4 h{kOutside4, kRemote4, 6, 63, 0, 7};
    h.df = true;
    cs.push_back({"tcp_large_df", ip6({kHost6, kRemote6, 6, 64}, p.l4_6), to4(61000, 443, 7),
                  ip4(h, p.l4_4)});
  }
  {  // 1261 bytes as IPv4: the first size with DF set
    const L4Pair p =
        tcp_pair(40000, 61000, 443, 0x10, 1261 - 40, kHost6, kRemote6, kOutside4, kRemote4);
    Ip4 h{kOutside4, kRemote4, 6, 63, 0, 9};
    h.df = true;
    cs.push_back({"tcp_1261_df", ip6({kHost6, kRemote6, 6, 64}, p.l4_6), to4(61000, 443, 9),
                  ip4(h, p.l4_4)});
  }
  {  // exactly 1260 bytes as IPv4: DF still clear
    const L4Pair p =
        tcp_pair(40000, 61000, 443, 0x10, 1260 - 40, kHost6, kRemote6, kOutside4, kRemote4);
    cs.push_back({"tcp_1260_no_df", ip6({kHost6, kRemote6, 6, 64}, p.l4_6), to4(61000, 443, 8),
                  ip4({kOutside4, kRemote4, 6, 63, 0, 8}, p.l4_4)});
  }
  {
    const L4Pair p =
        udp_pair(5353, 1024, 53, text("what is my ip?"), kHost6, kRemote6, kOutside4, kRemote4);
    cs.push_back({"udp", ip6({kHost6, kRemote6, 17, 2, 0xb8}, p.l4_6), to4(1024, 53, 0xfffe),
                  ip4({kOutside4, kRemote4, 17, 1, 0xb8, 0xfffe}, p.l4_4)});
  }
  {  // ICMPv6 echo request -> ICMP echo request: type 128 -> 8, id, no pseudo-header
    const L4Pair p = echo_pair(true, 77, 4242, text("abcdefgh"), kHost6, kRemote6);
    cs.push_back({"echo_request", ip6({kHost6, kRemote6, 58, 64}, p.l4_6), to4(4242, 0, 1),
                  ip4({kOutside4, kRemote4, 1, 63, 0, 1}, p.l4_4)});
  }
  {  // echo reply: id in dport
    const L4Pair p = echo_pair(false, 77, 4242, text("0123456789"), kHost6, kRemote6);
    cs.push_back({"echo_reply", ip6({kHost6, kRemote6, 58, 64}, p.l4_6), to4(0, 4242, 2),
                  ip4({kOutside4, kRemote4, 1, 63, 0, 2}, p.l4_4)});
  }
  {  // Hop-by-Hop, Destination Options, Routing (Segments Left 0): skipped, not translated
    const L4Pair p = udp_pair(5353, 1024, 53, text("x"), kHost6, kRemote6, kOutside4, kRemote4);
    const Bytes ext = cat(cat(ext8(60, 0), ext8(43, 60)), ext8(17, 43, 0));
    cs.push_back({"ext_headers_skipped", ip6({kHost6, kRemote6, 0, 64}, cat(ext, p.l4_6)),
                  to4(1024, 53, 3), ip4({kOutside4, kRemote4, 17, 63, 0, 3}, p.l4_4)});
  }
  {  // fragments: the first carries the ports and a checksum over the whole datagram
    Bytes data(1000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
    const L4Pair p = udp_pair(5353, 1024, 53, data, kHost6, kRemote6, kOutside4, kRemote4);
    const Bytes first6(p.l4_6.begin(), p.l4_6.begin() + 504);
    const Bytes rest6(p.l4_6.begin() + 504, p.l4_6.end());
    const Bytes first4(p.l4_4.begin(), p.l4_4.begin() + 504);
    Ip4 h1{kOutside4, kRemote4, 17, 63, 0, 0xbeef};  // low 16 bits of the IPv6 id
    h1.mf = true;
    cs.push_back({"fragment_first",
                  ip6({kHost6, kRemote6, 44, 64}, cat(frag6(17, 0, true, 0xdeadbeef), first6)),
                  to4(1024, 53, 0x1111), ip4(h1, first4)});
    Ip4 h2{kOutside4, kRemote4, 17, 63, 0, 0xbeef};
    h2.offset = 63;
    cs.push_back({"fragment_last",
                  ip6({kHost6, kRemote6, 44, 64}, cat(frag6(17, 63, false, 0xdeadbeef), rest6)),
                  to4(1024, 53, 0x1111), ip4(h2, rest6)});
  }
  {  // trailing bytes past the payload length (Ethernet padding) are not translated
    const L4Pair p = udp_pair(5353, 1024, 53, text("pad"), kHost6, kRemote6, kOutside4, kRemote4);
    Bytes in = ip6({kHost6, kRemote6, 17, 64}, p.l4_6);
    in.insert(in.end(), 6, 0xee);
    cs.push_back({"padding_ignored", in, to4(1024, 53, 4),
                  ip4({kOutside4, kRemote4, 17, 63, 0, 4}, p.l4_4)});
  }
  return cs;
}

TEST(Nat64Xlate, SixToFourByteForByte) {
  for (const Case64& c : cases_6to4()) {
    SCOPED_TRACE(c.name);
    const Ran r = run6to4(c.in, c.to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, c.want);
  }
}

// ---- IPv4 -> IPv6 (out2in) ----

struct Case46 {
  std::string name;
  Bytes in;
  n64::To6 to;
  Bytes want;
  bool udp_computed = false;
  bool exceeds_mtu = false;
};

n64::To6 to6(uint16_t sport, uint16_t dport) {
  n64::To6 t;
  t.src = kRemote6;
  t.dst = kHost6;
  t.sport = net16(sport);
  t.dport = net16(dport);
  return t;
}

std::vector<Case46> cases_4to6() {
  std::vector<Case46> cs;
  {  // SYN-ACK back to the host
    Bytes l4_4 = tcp(443, 61000, 1000, 0x12, {});
    fix_l4_v4(l4_4, 6, kRemote4, kOutside4);
    Bytes l4_6 = tcp(443, 40000, 1000, 0x12, {});
    fix_l4_v6(l4_6, 6, kRemote6, kHost6);
    cs.push_back({"tcp_synack", ip4({kRemote4, kOutside4, 6, 50, 0x48, 0x9999, true}, l4_4),
                  to6(443, 40000), ip6({kRemote6, kHost6, 6, 49, 0x48}, l4_6)});
  }
  {  // UDP with a checksum
    Bytes l4_4 = udp(53, 1024, text("answer"));
    fix_l4_v4(l4_4, 17, kRemote4, kOutside4);
    Bytes l4_6 = udp(53, 5353, text("answer"));
    fix_l4_v6(l4_6, 17, kRemote6, kHost6);
    cs.push_back({"udp", ip4({kRemote4, kOutside4, 17, 64, 0, 1}, l4_4), to6(53, 5353),
                  ip6({kRemote6, kHost6, 17, 63}, l4_6)});
  }
  {  // UDP with checksum 0 (legal in IPv4): computed for IPv6 (RFC 7915 4.5)
    Bytes l4_4 = udp(53, 1024, text("no checksum here"));
    Bytes l4_6 = udp(53, 5353, text("no checksum here"));
    fix_l4_v6(l4_6, 17, kRemote6, kHost6);
    Case46 c{"udp_zero_checksum", ip4({kRemote4, kOutside4, 17, 64}, l4_4), to6(53, 5353),
             ip6({kRemote6, kHost6, 17, 63}, l4_6)};
    c.udp_computed = true;
    cs.push_back(c);
  }
  {  // echo reply: 0 -> 129, ICMPv6 pseudo-header added
    Bytes l4_4 = icmp(0, 0, echo_rest(4242, 9), text("abcdefgh"));
    fix_l4_v4(l4_4, 1, 0, 0);
    Bytes l4_6 = icmp(129, 0, echo_rest(77, 9), text("abcdefgh"));
    fix_l4_v6(l4_6, 58, kRemote6, kHost6);
    cs.push_back({"echo_reply", ip4({kRemote4, kOutside4, 1, 64}, l4_4), to6(0, 77),
                  ip6({kRemote6, kHost6, 58, 63}, l4_6)});
  }
  {  // IPv4 options (record route, NOP) are ignored; an expired source route is too
    Bytes l4_4 = udp(53, 1024, text("opts"));
    fix_l4_v4(l4_4, 17, kRemote4, kOutside4);
    Bytes l4_6 = udp(53, 5353, text("opts"));
    fix_l4_v6(l4_6, 17, kRemote6, kHost6);
    Ip4 h{kRemote4, kOutside4, 17, 64};
    h.options = {7, 7, 8, 1, 2, 3, 4, 1, 131, 3, 4, 0};  // RR; NOP; LSRR, pointer past the end
    cs.push_back(
        {"options_ignored", ip4(h, l4_4), to6(53, 5353), ip6({kRemote6, kHost6, 17, 63}, l4_6)});
  }
  {  // IPv4 fragments -> Fragment header: id zero-extended, offset and M copied
    Bytes data(1000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(255 - i);
    Bytes l4_4 = udp(53, 1024, data);
    fix_l4_v4(l4_4, 17, kRemote4, kOutside4);
    Bytes l4_6 = udp(53, 5353, data);
    fix_l4_v6(l4_6, 17, kRemote6, kHost6);
    Ip4 h1{kRemote4, kOutside4, 17, 64, 0, 0x4321};
    h1.mf = true;
    cs.push_back({"fragment_first", ip4(h1, Bytes(l4_4.begin(), l4_4.begin() + 512)), to6(53, 5353),
                  ip6({kRemote6, kHost6, 44, 63},
                      cat(frag6(17, 0, true, 0x4321), Bytes(l4_6.begin(), l4_6.begin() + 512)))});
    Ip4 h2{kRemote4, kOutside4, 17, 64, 0, 0x4321};
    h2.offset = 64;
    const Bytes tail(l4_4.begin() + 512, l4_4.end());
    cs.push_back({"fragment_last", ip4(h2, tail), to6(53, 5353),
                  ip6({kRemote6, kHost6, 44, 63}, cat(frag6(17, 64, false, 0x4321), tail))});
  }
  return cs;
}

TEST(Nat64Xlate, FourToSixByteForByte) {
  for (const Case46& c : cases_4to6()) {
    SCOPED_TRACE(c.name);
    const Ran r = run4to6(c.in, c.to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, c.want);
    EXPECT_EQ(r.udp_computed, c.udp_computed);
    EXPECT_FALSE(r.exceeds_mtu);
    EXPECT_FALSE(r.fragment_needed);
  }
}

// ---- ICMP errors, both ways, with the quoted packet translated ----

// ICMPv4 Fragmentation Needed from a router on the IPv4 path about the host's (translated) TCP
// segment -> ICMPv6 Packet Too Big to the host about its own segment, MTU + 20.
TEST(Nat64Xlate, FragmentationNeededBecomesPacketTooBig) {
  // The segment as the host sent it (v6) and as it left the NAT (v4), each with a full checksum.
  const L4Pair p = tcp_pair(40000, 61000, 443, 0x10, 1452, kHost6, kRemote6, kOutside4, kRemote4);
  Ip4 sent4{kOutside4, kRemote4, 6, 5, 0x20, 0};
  sent4.df = true;
  const Bytes full4 = ip4(sent4, p.l4_4);
  const Bytes quoted4(full4.begin(), full4.begin() + 20 + 20);  // header + 20 bytes of TCP
  Bytes icmp4 = icmp(3, 4, 1400, quoted4);
  fix_l4_v4(icmp4, 1, 0, 0);
  const Bytes in = ip4({kRouter4, kOutside4, 1, 250, 0xc0, 0x77}, icmp4);

  // Expected: the original v6 packet quoted (hop limit = the TTL the router saw).
  const Bytes full6 = ip6({kHost6, kRemote6, 6, 5, 0x20}, p.l4_6);
  const Bytes quoted6(full6.begin(), full6.begin() + 40 + 20);
  Bytes icmp6 = icmp(2, 0, 1420, quoted6);
  fix_l4_v6(icmp6, 58, kRouter6, kHost6);
  const Bytes want = ip6({kRouter6, kHost6, 58, 249, 0xc0}, icmp6);

  n64::To6 to;
  to.src = kRouter6;
  to.dst = kHost6;
  to.inner = {kHost6, kRemote6, net16(40000), net16(443), 6};
  const Ran r = run4to6(in, to);
  ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
  expect_bytes(r.out, want);
}

// The reverse: the inside host answers a UDP datagram from the remote with Port Unreachable.
TEST(Nat64Xlate, PortUnreachableSixToFour) {
  Bytes dg6 = udp(53, 5353, text("unexpected answer"));
  fix_l4_v6(dg6, 17, kRemote6, kHost6);
  const Bytes full6 = ip6({kRemote6, kHost6, 17, 60}, dg6);
  Bytes icmp6 = icmp(1, 4, 0, full6);  // the whole datagram quoted
  fix_l4_v6(icmp6, 58, kHost6, kRemote6);
  const Bytes in = ip6({kHost6, kRemote6, 58, 64}, icmp6);

  Bytes dg4 = udp(53, 1024, text("unexpected answer"));
  fix_l4_v4(dg4, 17, kRemote4, kOutside4);
  const Bytes full4 = ip4({kRemote4, kOutside4, 17, 60, 0, 0}, dg4);
  Bytes icmp4 = icmp(3, 3, 0, full4);
  fix_l4_v4(icmp4, 1, 0, 0);
  const Bytes want = ip4({kOutside4, kRemote4, 1, 63, 0, 0x5555}, icmp4);

  n64::To4 to = to4(0, 0, 0x5555);
  to.inner = {kRemote4, kOutside4, net16(53), net16(1024), 17};
  const Ran r = run6to4(in, to);
  ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
  expect_bytes(r.out, want);
}

// ICMPv6 Packet Too Big (MTU 1400) about a remote -> host TCP segment, and an echo request
// quoted in a Time Exceeded: the quoted echo's type, id and checksum are translated too.
TEST(Nat64Xlate, PacketTooBigAndTimeExceededSixToFour) {
  {
    Bytes seg6 = tcp(443, 40000, 5, 0x10, Bytes(1400, 0x5a));
    fix_l4_v6(seg6, 6, kRemote6, kHost6);
    const Bytes full6 = ip6({kRemote6, kHost6, 6, 30}, seg6);
    Bytes icmp6 = icmp(2, 0, 1400, Bytes(full6.begin(), full6.begin() + 40 + 20));
    fix_l4_v6(icmp6, 58, kHost6, kRemote6);
    const Bytes in = ip6({kHost6, kRemote6, 58, 64}, icmp6);
    Bytes seg4 = tcp(443, 61000, 5, 0x10, Bytes(1400, 0x5a));
    fix_l4_v4(seg4, 6, kRemote4, kOutside4);
    Ip4 q{kRemote4, kOutside4, 6, 30, 0, 0};
    q.df = true;  // 1440 bytes as IPv4
    const Bytes full4 = ip4(q, seg4);
    Bytes icmp4 = icmp(3, 4, 1380, Bytes(full4.begin(), full4.begin() + 20 + 20));
    fix_l4_v4(icmp4, 1, 0, 0);
    const Bytes want = ip4({kOutside4, kRemote4, 1, 63, 0, 9}, icmp4);
    n64::To4 to = to4(0, 0, 9);
    to.inner = {kRemote4, kOutside4, net16(443), net16(61000), 6};
    const Ran r = run6to4(in, to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, want);
  }
  {
    Bytes e6 = icmp(129, 0, echo_rest(77, 1), text("pong"));
    fix_l4_v6(e6, 58, kRemote6, kHost6);
    const Bytes full6 = ip6({kRemote6, kHost6, 58, 1}, e6);
    Bytes icmp6 = icmp(3, 0, 0, full6);
    fix_l4_v6(icmp6, 58, kHost6, kRemote6);
    const Bytes in = ip6({kHost6, kRemote6, 58, 64}, icmp6);
    Bytes e4 = icmp(0, 0, echo_rest(4242, 1), text("pong"));
    fix_l4_v4(e4, 1, 0, 0);
    const Bytes full4 = ip4({kRemote4, kOutside4, 1, 1, 0, 0}, e4);
    Bytes icmp4 = icmp(11, 0, 0, full4);
    fix_l4_v4(icmp4, 1, 0, 0);
    const Bytes want = ip4({kOutside4, kRemote4, 1, 63, 0, 10}, icmp4);
    n64::To4 to = to4(0, 0, 10);
    to.inner = {kRemote4, kOutside4, 0, net16(4242), 1};
    const Ran r = run6to4(in, to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, want);
  }
}

// Parameter Problem: pointer translated (IPv4 TTL at 8 -> IPv6 Hop Limit at 7), and IPv4
// protocol unreachable -> ICMPv6 unrecognized Next Header with pointer 6; quoted UDP.
TEST(Nat64Xlate, ParameterProblemAndProtocolUnreachableFourToSix) {
  struct Sub {
    uint8_t type4, code4;
    uint32_t rest4;
    uint8_t type6, code6;
    uint32_t rest6;
  };
  const Sub subs[] = {{12, 0, 8u << 24, 4, 0, 7}, {12, 2, 16u << 24, 4, 0, 24}, {3, 2, 0, 4, 1, 6},
                      {11, 1, 0, 3, 1, 0},        {3, 13, 0, 1, 1, 0},          {3, 1, 0, 1, 0, 0}};
  for (const Sub& s : subs) {
    SCOPED_TRACE(std::to_string(s.type4) + "/" + std::to_string(s.code4));
    Bytes dg4 = udp(1024, 53, text("query"));
    fix_l4_v4(dg4, 17, kOutside4, kRemote4);
    const Bytes full4 = ip4({kOutside4, kRemote4, 17, 40, 0, 0x1234}, dg4);
    Bytes icmp4 = icmp(s.type4, s.code4, s.rest4, full4);
    fix_l4_v4(icmp4, 1, 0, 0);
    const Bytes in = ip4({kRouter4, kOutside4, 1, 64}, icmp4);
    Bytes dg6 = udp(5353, 53, text("query"));
    fix_l4_v6(dg6, 17, kHost6, kRemote6);
    const Bytes full6 = ip6({kHost6, kRemote6, 17, 40}, dg6);
    Bytes icmp6 = icmp(s.type6, s.code6, s.rest6, full6);
    fix_l4_v6(icmp6, 58, kRouter6, kHost6);
    const Bytes want = ip6({kRouter6, kHost6, 58, 63}, icmp6);
    n64::To6 to;
    to.src = kRouter6;
    to.dst = kHost6;
    to.inner = {kHost6, kRemote6, net16(5353), net16(53), 17};
    const Ran r = run4to6(in, to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, want);
  }
}

// ICMPv4 errors quoting up to 576 bytes can grow past 1280 as ICMPv6: cut to 1280.
TEST(Nat64Xlate, IcmpV6ErrorIsCutTo1280) {
  Bytes dg4 = udp(1024, 53, Bytes(1400, 0x11));
  fix_l4_v4(dg4, 17, kOutside4, kRemote4);
  Ip4 q{kOutside4, kRemote4, 17, 3};
  q.df = true;
  const Bytes full4 = ip4(q, dg4);
  Bytes icmp4 = icmp(11, 0, 0, Bytes(full4.begin(), full4.begin() + 1300));
  fix_l4_v4(icmp4, 1, 0, 0);
  const Bytes in = ip4({kRouter4, kOutside4, 1, 64}, icmp4);
  Bytes dg6 = udp(5353, 53, Bytes(1400, 0x11));
  fix_l4_v6(dg6, 17, kHost6, kRemote6);
  const Bytes full6 = ip6({kHost6, kRemote6, 17, 3}, dg6);
  Bytes icmp6 = icmp(3, 0, 0, Bytes(full6.begin(), full6.begin() + (1280 - 48)));
  fix_l4_v6(icmp6, 58, kRouter6, kHost6);
  const Bytes want = ip6({kRouter6, kHost6, 58, 63}, icmp6);
  n64::To6 to;
  to.src = kRouter6;
  to.dst = kHost6;
  to.inner = {kHost6, kRemote6, net16(5353), net16(53), 17};
  const Ran r = run4to6(in, to);
  ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
  ASSERT_EQ(r.out.size(), 1280u);
  expect_bytes(r.out, want);
}

// Errors quoting a first fragment: IPv4 options in the quoted header are dropped, MF/id become a
// quoted Fragment header (and back); extension headers in a quoted IPv6 packet are skipped; the
// MTU of a Packet Too Big about a fragment loses the Fragment header's 8 bytes too.
TEST(Nat64Xlate, ErrorsQuotingFragments) {
  Bytes data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13);
  {  // IPv4 Time Exceeded about the host's translated first fragment
    Bytes dg4 = udp(61000, 53, data);
    fix_l4_v4(dg4, 17, kOutside4, kRemote4);
    Bytes dg6 = udp(5353, 53, data);
    fix_l4_v6(dg6, 17, kHost6, kRemote6);
    Ip4 f{kOutside4, kRemote4, 17, 1, 0, 0x7788};
    f.mf = true;
    f.options = {7, 3, 4, 0};  // record route, empty
    const Bytes frag4 = ip4(f, Bytes(dg4.begin(), dg4.begin() + 512));
    Bytes icmp4 = icmp(11, 0, 0, Bytes(frag4.begin(), frag4.begin() + 24 + 8));
    fix_l4_v4(icmp4, 1, 0, 0);
    const Bytes in = ip4({kRouter4, kOutside4, 1, 64}, icmp4);
    Ip6 q{kHost6, kRemote6, 44, 1};
    q.plen_override = 8 + 512;
    const Bytes quoted6 =
        ip6(q, cat(frag6(17, 0, true, 0x7788), Bytes(dg6.begin(), dg6.begin() + 8)));
    Bytes icmp6 = icmp(3, 0, 0, quoted6);
    fix_l4_v6(icmp6, 58, kRouter6, kHost6);
    const Bytes want = ip6({kRouter6, kHost6, 58, 63}, icmp6);
    n64::To6 to;
    to.src = kRouter6;
    to.dst = kHost6;
    to.inner = {kHost6, kRemote6, net16(5353), net16(53), 17};
    const Ran r = run4to6(in, to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, want);
  }
  struct Sub {
    uint8_t type6, code6;
    uint32_t rest6;
    uint8_t type4, code4;
    uint32_t rest4;
  };
  for (const Sub& s : {Sub{1, 4, 0, 3, 3, 0}, Sub{2, 0, 1400, 3, 4, 1372}}) {
    SCOPED_TRACE(std::to_string(s.type6));
    // The host's error about the remote's (translated) first fragment, Destination Options
    // before the Fragment header.
    Bytes dg6 = udp(53, 5353, data);
    fix_l4_v6(dg6, 17, kRemote6, kHost6);
    Bytes dg4 = udp(53, 61000, data);
    fix_l4_v4(dg4, 17, kRemote4, kOutside4);
    Ip6 q{kRemote6, kHost6, 60, 50};
    q.plen_override = 8 + 8 + 512;
    const Bytes quoted6 = ip6(q, cat(cat(ext8(44, 60), frag6(17, 0, true, 0x1234)),
                                     Bytes(dg6.begin(), dg6.begin() + 40)));
    Bytes icmp6 = icmp(s.type6, s.code6, s.rest6, quoted6);
    fix_l4_v6(icmp6, 58, kHost6, kRemote6);
    const Bytes in = ip6({kHost6, kRemote6, 58, 64}, icmp6);
    Ip4 q4{kRemote4, kOutside4, 17, 50, 0, 0x1234};
    q4.mf = true;
    q4.total_len_override = 20 + 512;
    Bytes icmp4 = icmp(s.type4, s.code4, s.rest4, ip4(q4, Bytes(dg4.begin(), dg4.begin() + 40)));
    fix_l4_v4(icmp4, 1, 0, 0);
    const Bytes want = ip4({kOutside4, kRemote4, 1, 63, 0, 0x0bad}, icmp4);
    n64::To4 to = to4(0, 0, 0x0bad);
    to.inner = {kRemote4, kOutside4, net16(53), net16(61000), 17};
    const Ran r = run6to4(in, to);
    ASSERT_EQ(r.drop, Drop::None) << n64::drop_name(r.drop);
    expect_bytes(r.out, want);
  }
}

// An IPv4 packet with DF clear whose translation exceeds 1280 bytes: flagged, then split by
// fragment6() into Fragment-header fragments of at most 1280 bytes (RFC 7915 4.1). A packet that
// was already a fragment keeps its id, offsets and M flag; one with DF set over the next hop's MTU
// is only flagged as too big.
TEST(Nat64Xlate, TooBigWithDfClearIsFragmented) {
  n64::Config cfg;
  cfg.ipv6_mtu = 1280;
  Bytes data(3000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31);
  Bytes dg4 = udp(53, 1024, data);
  fix_l4_v4(dg4, 17, kRemote4, kOutside4);
  Bytes dg6 = udp(53, 5353, data);
  fix_l4_v6(dg6, 17, kRemote6, kHost6);
  std::vector<Bytes> store(4, Bytes(1280));
  uint8_t* bufs[4] = {store[0].data(), store[1].data(), store[2].data(), store[3].data()};
  uint32_t lens[4] = {};
  {
    const Bytes in = ip4({kRemote4, kOutside4, 17, 64, 0, 0x6502}, dg4);
    Bytes buf(kHeadroom + in.size());
    std::copy(in.begin(), in.end(), buf.begin() + kHeadroom);
    n64::Info4 info;
    ASSERT_EQ(n64::parse4(buf.data() + kHeadroom, static_cast<uint32_t>(in.size()), info),
              Drop::None);
    n64::Output o;
    ASSERT_EQ(n64::xlate_4to6(buf.data() + kHeadroom, static_cast<uint32_t>(in.size()), kHeadroom,
                              info, to6(53, 5353), cfg, o),
              Drop::None);
    EXPECT_TRUE(o.fragment_needed);
    EXPECT_FALSE(o.exceeds_mtu);
    ASSERT_EQ(n64::fragment6(o.l3, o.len, cfg.ipv6_mtu, info.frag_id, bufs, 1280, 4, lens), 3u);
    // 1232 bytes of payload per full fragment (1280 - 40 - 8, a multiple of 8).
    const size_t cuts[] = {0, 1232, 2464, dg6.size()};
    for (int k = 0; k < 3; ++k) {
      SCOPED_TRACE(k);
      const Bytes piece(dg6.begin() + static_cast<long>(cuts[k]),
                        dg6.begin() + static_cast<long>(cuts[k + 1]));
      const Bytes want =
          ip6({kRemote6, kHost6, 44, 63},
              cat(frag6(17, static_cast<uint16_t>(cuts[k] / 8), k < 2, 0x6502), piece));
      expect_bytes(Bytes(bufs[k], bufs[k] + lens[k]), want);
    }
    EXPECT_EQ(n64::fragment6(o.l3, o.len, cfg.ipv6_mtu, info.frag_id, bufs, 1280, 2, lens), 0u)
        << "not enough buffers";
  }
  {  // an IPv4 first fragment (MF) of 2000 bytes: re-fragmented, M stays set on the last piece
    Ip4 f{kRemote4, kOutside4, 17, 64, 0, 0x0abc};
    f.mf = true;
    const Bytes in = ip4(f, Bytes(dg4.begin(), dg4.begin() + 2000));
    const Ran r = run4to6(in, to6(53, 5353), cfg);
    ASSERT_EQ(r.drop, Drop::None);
    ASSERT_EQ(n64::fragment6(r.out.data(), static_cast<uint32_t>(r.out.size()), 1280, 0, bufs, 1280,
                             4, lens),
              2u);
    const Bytes p0(dg6.begin(), dg6.begin() + 1232), p1(dg6.begin() + 1232, dg6.begin() + 2000);
    expect_bytes(Bytes(bufs[0], bufs[0] + lens[0]),
                 ip6({kRemote6, kHost6, 44, 63}, cat(frag6(17, 0, true, 0x0abc), p0)));
    expect_bytes(Bytes(bufs[1], bufs[1] + lens[1]),
                 ip6({kRemote6, kHost6, 44, 63}, cat(frag6(17, 154, true, 0x0abc), p1)));
  }
  {  // DF set: flagged, not to be fragmented (the caller sends Fragmentation Needed)
    Ip4 h{kRemote4, kOutside4, 17, 64};
    h.df = true;
    Bytes buf(kHeadroom + 1500);
    const Bytes in = ip4(h, dg4);
    buf.resize(kHeadroom + in.size());
    std::copy(in.begin(), in.end(), buf.begin() + kHeadroom);
    n64::Info4 info;
    ASSERT_EQ(n64::parse4(buf.data() + kHeadroom, static_cast<uint32_t>(in.size()), info),
              Drop::None);
    n64::Output o;
    ASSERT_EQ(n64::xlate_4to6(buf.data() + kHeadroom, static_cast<uint32_t>(in.size()), kHeadroom,
                              info, to6(53, 5353), cfg, o),
              Drop::None);
    EXPECT_TRUE(o.exceeds_mtu);
    EXPECT_FALSE(o.fragment_needed);
  }
  {  // a small packet is not flagged; IPv6 -> IPv4 over the IPv4 MTU is
    const Ran small =
        run4to6(ip4({kRemote4, kOutside4, 17, 64}, udp(53, 1024, text("x"))), to6(53, 5353), cfg);
    ASSERT_EQ(small.drop, Drop::None);
    EXPECT_FALSE(small.exceeds_mtu);
    EXPECT_FALSE(small.fragment_needed);
    // DF clear, 1281 bytes as IPv6, next hop 1500: still split to 1280 (RFC 7915 4.1).
    const Ran over = run4to6(ip4({kRemote4, kOutside4, 17, 64}, udp(53, 1024, Bytes(1281 - 48, 2))),
                             to6(53, 5353), n64::Config{});
    ASSERT_EQ(over.drop, Drop::None);
    ASSERT_EQ(over.out.size(), 1281u);
    EXPECT_TRUE(over.fragment_needed);
    EXPECT_FALSE(over.exceeds_mtu);
    const Ran at = run4to6(ip4({kRemote4, kOutside4, 17, 64}, udp(53, 1024, Bytes(1280 - 48, 2))),
                           to6(53, 5353), n64::Config{});
    ASSERT_EQ(at.out.size(), 1280u);
    EXPECT_FALSE(at.fragment_needed);
    Bytes big6 = udp(5353, 53, Bytes(1600, 1));
    fix_l4_v6(big6, 17, kHost6, kRemote6);
    const Bytes in = ip6({kHost6, kRemote6, 17, 64}, big6);
    Bytes buf(in);
    n64::Info6 info;
    ASSERT_EQ(n64::parse6(buf.data(), static_cast<uint32_t>(buf.size()), info), Drop::None);
    n64::Output o;
    ASSERT_EQ(n64::xlate_6to4(buf.data(), static_cast<uint32_t>(buf.size()), info, to4(1024, 53, 1),
                              n64::Config{}, o),
              Drop::None);
    EXPECT_TRUE(o.exceeds_mtu);
    EXPECT_FALSE(o.fragment_needed);
  }
}

// ---- Tables ----

TEST(Nat64Xlate, IcmpV4ToV6ErrorTable) {
  // RFC 7915 section 4.2, every (type, code) with a translation; all others must be refused.
  const std::map<std::pair<int, int>, std::pair<int, int>> want = {
      {{3, 0}, {1, 0}},  {{3, 1}, {1, 0}},  {{3, 2}, {4, 1}},  {{3, 3}, {1, 4}},  {{3, 4}, {2, 0}},
      {{3, 5}, {1, 0}},  {{3, 6}, {1, 0}},  {{3, 7}, {1, 0}},  {{3, 8}, {1, 0}},  {{3, 9}, {1, 1}},
      {{3, 10}, {1, 1}}, {{3, 11}, {1, 0}}, {{3, 12}, {1, 0}}, {{3, 13}, {1, 1}}, {{3, 15}, {1, 1}},
      {{11, 0}, {3, 0}}, {{11, 1}, {3, 1}}, {{12, 0}, {4, 0}}, {{12, 2}, {4, 0}},
  };
  for (int t = 0; t < 256; ++t) {
    for (int c = 0; c < 256; ++c) {
      const n64::IcmpMap m = n64::map_icmp4_error(static_cast<uint8_t>(t), static_cast<uint8_t>(c));
      const auto it = want.find({t, c});
      ASSERT_EQ(m.ok, it != want.end()) << t << "/" << c;
      if (m.ok) {
        EXPECT_EQ(m.type, it->second.first) << t << "/" << c;
        EXPECT_EQ(m.code, it->second.second) << t << "/" << c;
      }
    }
  }
}

TEST(Nat64Xlate, IcmpV6ToV4ErrorTable) {
  // RFC 7915 section 5.2.
  const std::map<std::pair<int, int>, std::pair<int, int>> want = {
      {{1, 0}, {3, 1}}, {{1, 1}, {3, 10}}, {{1, 2}, {3, 1}},  {{1, 3}, {3, 1}},  {{1, 4}, {3, 3}},
      {{2, 0}, {3, 4}}, {{3, 0}, {11, 0}}, {{3, 1}, {11, 1}}, {{4, 0}, {12, 0}}, {{4, 1}, {3, 2}},
  };
  for (int t = 0; t < 256; ++t) {
    for (int c = 0; c < 256; ++c) {
      const n64::IcmpMap m = n64::map_icmp6_error(static_cast<uint8_t>(t), static_cast<uint8_t>(c));
      const auto it = want.find({t, c});
      // Packet Too Big has no codes in RFC 4443; the translator takes any.
      const bool expect_ok = it != want.end() || t == 2;
      ASSERT_EQ(m.ok, expect_ok) << t << "/" << c;
      if (it != want.end()) {
        EXPECT_EQ(m.type, it->second.first) << t << "/" << c;
        EXPECT_EQ(m.code, it->second.second) << t << "/" << c;
      }
    }
  }
}

TEST(Nat64Xlate, ParameterProblemPointerTables) {
  // RFC 7915 figure 3 (IPv4 -> IPv6) and figure 6 (IPv6 -> IPv4).
  const int four_to_six[20] = {0,  1,  4, 4, -1, -1, -1, -1, 7,  6,
                               -1, -1, 8, 8, 8,  8,  24, 24, 24, 24};
  for (int p = 0; p < 256; ++p) {
    EXPECT_EQ(n64::map_pointer_4to6(static_cast<uint8_t>(p)), p < 20 ? four_to_six[p] : -1) << p;
  }
  for (uint32_t p = 0; p < 300; ++p) {
    int want = -1;
    if (p == 0) want = 0;
    if (p == 1) want = 1;
    if (p == 4 || p == 5) want = 2;
    if (p == 6) want = 9;
    if (p == 7) want = 8;
    if (p >= 8 && p < 24) want = 12;
    if (p >= 24 && p < 40) want = 16;
    EXPECT_EQ(n64::map_pointer_6to4(p), want) << p;
  }
}

TEST(Nat64Xlate, MtuArithmetic) {
  const n64::Config std_cfg{};  // 1500 / 1500
  n64::Config jumbo6{};
  jumbo6.ipv6_mtu = 9001;
  n64::Config narrow4{};
  narrow4.ipv4_mtu = 1400;
  struct C46 {
    uint16_t mtu4, quoted;
    const n64::Config* cfg;
    uint32_t want;
  };
  const C46 c46[] = {
      {1400, 1500, &std_cfg, 1420},  // + 20
      {1480, 1500, &std_cfg, 1500},  // capped by the IPv6 next hop
      {1500, 1500, &jumbo6, 1520},   // capped by our IPv4 next hop + 20
      {1300, 1500, &narrow4, 1320}, {1492, 1500, &narrow4, 1420},
      {0, 1500, &std_cfg, 1500},    // plateau 1492 + 20 -> 1512, capped at 1500
      {0, 1500, &jumbo6, 1512},     // plateau 1492 + 20
      {0, 1492, &jumbo6, 1026},     // strictly below: 1006 + 20 ... raised to 1280
      {0, 9000, &jumbo6, 1520},     // plateau 8166 + 20, capped by IPv4 next hop + 20
      {576, 1500, &std_cfg, 1280},  // below the IPv6 minimum: 1280
      {68, 1500, &std_cfg, 1280},
  };
  for (const C46& c : c46) {
    const uint32_t want = std::max<uint32_t>(c.want, 1280);
    EXPECT_EQ(n64::mtu_4to6(c.mtu4, c.quoted, *c.cfg), want) << c.mtu4 << " " << c.quoted;
  }
  struct C64 {
    uint32_t mtu6;
    bool frag;
    const n64::Config* cfg;
    uint16_t want;
  };
  const C64 c64[] = {
      {1400, false, &std_cfg, 1380}, {1400, true, &std_cfg, 1372},   {1500, false, &std_cfg, 1480},
      {9000, false, &std_cfg, 1480}, {9000, false, &jumbo6, 1500},   {1280, false, &std_cfg, 1260},
      {0, false, &std_cfg, 1260},    {1000, false, &std_cfg, 1260},  {1400, false, &narrow4, 1380},
      {1500, false, &narrow4, 1400}, {100000, false, &jumbo6, 1500},
  };
  for (const C64& c : c64) {
    EXPECT_EQ(n64::mtu_6to4(c.mtu6, c.frag, *c.cfg), c.want) << c.mtu6 << " " << c.frag;
  }
}

// ---- Drops: every refused packet names its reason ----

TEST(Nat64Xlate, RefusedSixToFourPacketsNameTheirReason) {
  const L4Pair u = udp_pair(5353, 1024, 53, text("x"), kHost6, kRemote6, kOutside4, kRemote4);
  Bytes zero_csum = u.l4_6;
  zero_csum[6] = zero_csum[7] = 0;
  Bytes bad_doff = tcp(1, 2, 3, 0x02, {});
  bad_doff[12] = 4 << 4;
  Bytes ns = icmp(135, 0, 0, Bytes(16, 0));
  fix_l4_v6(ns, 58, kHost6, kRemote6);
  Bytes quoted_err = ip6({kRemote6, kHost6, 58, 9}, icmp(1, 4, 0, Bytes(8, 0)));
  struct Case {
    std::string name;
    Bytes in;
    Drop want;
  };
  const Bytes ok = ip6({kHost6, kRemote6, 17, 64}, u.l4_6);
  Bytes bad_version = ok;
  bad_version[0] = 0x45;
  const std::vector<Case> cases = {
      {"short", Bytes(ok.begin(), ok.begin() + 39), Drop::V6TooShort},
      {"version", bad_version, Drop::V6BadVersion},
      {"payload_length_zero", ip6({kHost6, kRemote6, 17, 64, 0, 0, 0}, {}),
       Drop::V6BadPayloadLength},
      {"payload_length_past_end", ip6({kHost6, kRemote6, 17, 64, 0, 0, 400}, u.l4_6),
       Drop::V6BadPayloadLength},
      {"routing_segments_left", ip6({kHost6, kRemote6, 43, 64}, cat(ext8(17, 43, 1), u.l4_6)),
       Drop::V6RoutingHeader},
      {"esp", ip6({kHost6, kRemote6, 50, 64}, Bytes(16, 0)), Drop::V6ExtHeaderUnsupported},
      {"hop_by_hop_not_first",
       ip6({kHost6, kRemote6, 60, 64}, cat(ext8(0, 60), cat(ext8(17, 0), u.l4_6))),
       Drop::V6ExtHeaderUnsupported},
      {"ext_truncated", ip6({kHost6, kRemote6, 60, 64}, Bytes(4, 0)), Drop::V6ExtHeaderTruncated},
      {"two_fragment_headers",
       ip6({kHost6, kRemote6, 44, 64},
           cat(frag6(44, 0, true, 1), cat(frag6(17, 0, true, 1), u.l4_6))),
       Drop::V6FragmentHeaderBad},
      {"no_next_header", ip6({kHost6, kRemote6, 59, 64}, Bytes(8, 0)), Drop::UnsupportedProtocol},
      {"gre", ip6({kHost6, kRemote6, 47, 64}, Bytes(8, 0)), Drop::UnsupportedProtocol},
      {"tcp_truncated", ip6({kHost6, kRemote6, 6, 64}, Bytes(19, 0)), Drop::L4Truncated},
      {"tcp_bad_data_offset", ip6({kHost6, kRemote6, 6, 64}, bad_doff), Drop::TcpBadDataOffset},
      {"udp_zero_checksum", ip6({kHost6, kRemote6, 17, 64}, zero_csum), Drop::UdpZeroChecksumV6},
      {"icmp_fragment",
       ip6({kHost6, kRemote6, 44, 64}, cat(frag6(58, 0, true, 5), icmp(128, 0, 0, Bytes(16, 0)))),
       Drop::IcmpFragmented},
      {"neighbour_solicitation", ip6({kHost6, kRemote6, 58, 255}, ns),
       Drop::IcmpTypeUntranslatable},
      {"mld_query", ip6({kHost6, kRemote6, 58, 1}, icmp(130, 0, 0, Bytes(16, 0))),
       Drop::IcmpTypeUntranslatable},
      {"dest_unreach_code_5", ip6({kHost6, kRemote6, 58, 64}, icmp(1, 5, 0, Bytes(48, 0))),
       Drop::IcmpErrorUnmapped},
      {"param_problem_option", ip6({kHost6, kRemote6, 58, 64}, icmp(4, 2, 0, Bytes(48, 0))),
       Drop::IcmpErrorUnmapped},
      {"param_problem_flow_label_pointer",
       ip6({kHost6, kRemote6, 58, 64}, icmp(4, 0, 2, Bytes(48, 0))), Drop::IcmpPointerUnmapped},
      {"error_inner_truncated", ip6({kHost6, kRemote6, 58, 64}, icmp(1, 4, 0, Bytes(30, 0))),
       Drop::IcmpErrorInnerTruncated},
      {"error_inner_not_v6", ip6({kHost6, kRemote6, 58, 64}, icmp(1, 4, 0, Bytes(48, 0x45))),
       Drop::IcmpErrorInnerBad},
      {"error_about_error", ip6({kHost6, kRemote6, 58, 64}, icmp(1, 4, 0, quoted_err)),
       Drop::IcmpErrorNested},
      {"hop_limit_1", ip6({kHost6, kRemote6, 17, 1}, u.l4_6), Drop::HopLimitExceeded},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Ran r = run6to4(c.in, to4(1024, 53, 1));
    EXPECT_EQ(r.drop, c.want) << n64::drop_name(r.drop) << " want " << n64::drop_name(c.want);
    EXPECT_TRUE(n64::drop_name(c.want).starts_with("nat64_"));
  }
}

TEST(Nat64Xlate, RefusedFourToSixPacketsNameTheirReason) {
  Bytes dg = udp(53, 1024, text("x"));
  fix_l4_v4(dg, 17, kRemote4, kOutside4);
  const Bytes ok = ip4({kRemote4, kOutside4, 17, 64}, dg);
  Bytes bad_version = ok;
  bad_version[0] = 0x65;
  Bytes bad_ihl = ok;
  bad_ihl[0] = 0x44;
  Ip4 lsrr{kRemote4, kOutside4, 17, 64};
  lsrr.options = {131, 7, 4, 10, 0, 0, 1, 0};  // pointer 4 <= length 7: unexpired
  Ip4 bad_opt{kRemote4, kOutside4, 17, 64};
  bad_opt.options = {7, 9, 4, 0};  // length past the options
  Ip4 frag_icmp{kRemote4, kOutside4, 1, 64};
  frag_icmp.mf = true;
  Ip4 frag_udp{kRemote4, kOutside4, 17, 64};
  frag_udp.mf = true;
  Bytes quoted_err = ip4({kOutside4, kRemote4, 1, 9}, icmp(3, 3, 0, Bytes(28, 0)));
  const Bytes inner_ok = ip4({kOutside4, kRemote4, 17, 9}, udp(1024, 53, {}));
  Ip4 inner_frag{kOutside4, kRemote4, 17, 9};
  inner_frag.offset = 10;
  struct Case {
    std::string name;
    Bytes in;
    Drop want;
    uint32_t headroom = kHeadroom;
  };
  const std::vector<Case> cases = {
      {"short", Bytes(ok.begin(), ok.begin() + 19), Drop::V4TooShort},
      {"version", bad_version, Drop::V4BadVersion},
      {"ihl", bad_ihl, Drop::V4BadIhl},
      {"total_length", Bytes(ok.begin(), ok.end() - 1), Drop::V4BadTotalLength},
      {"bad_options", ip4(bad_opt, dg), Drop::V4BadOptions},
      {"source_route", ip4(lsrr, dg), Drop::V4SourceRoute},
      {"gre", ip4({kRemote4, kOutside4, 47, 64}, Bytes(8, 0)), Drop::UnsupportedProtocol},
      {"udp_truncated", ip4({kRemote4, kOutside4, 17, 64}, Bytes(7, 0)), Drop::L4Truncated},
      {"icmp_fragment", ip4(frag_icmp, icmp(0, 0, 0, Bytes(16, 0))), Drop::IcmpFragmented},
      {"udp_zero_checksum_fragment", ip4(frag_udp, udp(53, 1024, Bytes(16, 0))),
       Drop::UdpZeroChecksumFragment},
      {"timestamp", ip4({kRemote4, kOutside4, 1, 64}, icmp(13, 0, 0, Bytes(12, 0))),
       Drop::IcmpTypeUntranslatable},
      {"redirect", ip4({kRemote4, kOutside4, 1, 64}, icmp(5, 1, 0, inner_ok)),
       Drop::IcmpTypeUntranslatable},
      {"source_quench", ip4({kRemote4, kOutside4, 1, 64}, icmp(4, 0, 0, inner_ok)),
       Drop::IcmpTypeUntranslatable},
      {"host_precedence_violation", ip4({kRemote4, kOutside4, 1, 64}, icmp(3, 14, 0, inner_ok)),
       Drop::IcmpErrorUnmapped},
      {"param_problem_missing_option", ip4({kRemote4, kOutside4, 1, 64}, icmp(12, 1, 0, inner_ok)),
       Drop::IcmpErrorUnmapped},
      {"param_problem_id_pointer",
       ip4({kRemote4, kOutside4, 1, 64}, icmp(12, 0, 4u << 24, inner_ok)),
       Drop::IcmpPointerUnmapped},
      {"error_inner_truncated",
       ip4({kRemote4, kOutside4, 1, 64},
           icmp(3, 3, 0, Bytes(inner_ok.begin(), inner_ok.begin() + 27))),
       Drop::IcmpErrorInnerTruncated},
      {"error_inner_later_fragment",
       ip4({kRemote4, kOutside4, 1, 64}, icmp(3, 3, 0, ip4(inner_frag, Bytes(8, 0)))),
       Drop::IcmpErrorInnerBad},
      {"error_about_error", ip4({kRemote4, kOutside4, 1, 64}, icmp(3, 3, 0, quoted_err)),
       Drop::IcmpErrorNested},
      {"ttl_1", ip4({kRemote4, kOutside4, 17, 1}, dg), Drop::HopLimitExceeded},
      {"no_headroom", ok, Drop::NoHeadroom, 19},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Ran r = run4to6(c.in, to6(53, 5353), {}, c.headroom);
    EXPECT_EQ(r.drop, c.want) << n64::drop_name(r.drop) << " want " << n64::drop_name(c.want);
  }
  // 20 bytes of headroom suffice for an unfragmented packet.
  EXPECT_EQ(run4to6(ok, to6(53, 5353), {}, 20).drop, Drop::None);
}

TEST(Nat64Xlate, DropNamesAreUniqueAndPrefixed) {
  std::map<std::string_view, int> seen;
  for (std::string_view n : n64::kDropNames) {
    EXPECT_TRUE(n.starts_with("nat64_")) << n;
    EXPECT_EQ(seen[n]++, 0) << n;
  }
  EXPECT_EQ(n64::drop_name(Drop::None), "none");
}

}  // namespace
}  // namespace eipgate::testing

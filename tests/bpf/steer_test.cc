// Tests of the XDP steering program: the skeleton and ABI without privileges, then a table of
// packets run through the loaded program with BPF_PROG_TEST_RUN (verdict and counter changes),
// map configuration, a real AF_XDP socket in the XSKMAP, and attach/detach (root, private netns).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/steer_abi.h"
#include "bpf/steer_loader.h"
#include "tests/support/packet_builder.h"
#include "xdp_steer.skel.h"

namespace {

namespace pb = eipgate::testing;
using eipgate::bpf::AttachedSteer;
using eipgate::bpf::run_on_packet;
using eipgate::bpf::SteerConfig;
using eipgate::bpf::SteerProgram;
using eipgate::bpf::SteerStats;
using eipgate::bpf::XdpMode;
using eipgate::bpf::XdpRunContext;
using pb::Bytes;
using pb::Packet;

// Documentation and private ranges only (RFC 5737, RFC 1918).
constexpr const char* kInsideHost = "10.0.1.5";
constexpr const char* kInsideHost2 = "10.1.7.9";
constexpr const char* kOutside = "198.51.100.10";  // service address (EIP behind it)
constexpr const char* kHostAddr = "198.51.100.5";  // the instance's primary address
constexpr const char* kRemote = "203.0.113.7";     // an internet host
constexpr const char* kPeer = "198.51.100.6";      // the HA peer in the public subnet

SteerConfig test_config() {
  SteerConfig c;
  c.inside_prefixes = {{pb::ip("10.0.0.0"), 16}, {pb::ip("10.1.0.0"), 16}};
  c.outside_addrs = {pb::ip(kOutside)};
  c.host_addrs = {pb::ip(kHostAddr)};
  c.port_min = 1024;
  c.port_max = 65535;
  return c;
}

// Loading needs root. The project's policy for root-only tests (tests/README.md): they run, they
// never skip; without root they fail and say so.
#define REQUIRE_ROOT()                                                                       \
  do {                                                                                       \
    ASSERT_EQ(geteuid(), 0U) << "needs root to load BPF programs (run as root, as CI does)"; \
  } while (0)

SteerStats stats_of(const SteerProgram& prog) {
  SteerStats s;
  const std::string err = prog.read_stats(s);
  EXPECT_EQ(err, "");
  return s;
}

// ---- no privileges: the skeleton and the ABI ------------------------------------------------

// The object's BTF (what the kernel will create the maps from) must agree with steer_abi.h as
// the C++ compiler sees it: this catches a header change that only one side was rebuilt with.
TEST(SteerSkeleton, OpensWithoutPrivilegesAndMatchesTheAbi) {
  xdp_steer* skel = xdp_steer__open();
  ASSERT_NE(skel, nullptr) << std::strerror(errno);

  EXPECT_EQ(bpf_program__type(skel->progs.xdp_steer), BPF_PROG_TYPE_XDP);
  struct Expect {
    const char* name;
    bpf_map_type type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
  };
  const Expect maps[] = {
      {STEER_MAP_XSKS, BPF_MAP_TYPE_XSKMAP, 4, 4, STEER_MAX_QUEUES},
      {STEER_MAP_INSIDE, BPF_MAP_TYPE_LPM_TRIE, sizeof(steer_lpm_key), sizeof(steer_prefix_value),
       STEER_MAX_INSIDE_PREFIXES},
      {STEER_MAP_LOCAL, BPF_MAP_TYPE_HASH, sizeof(steer_addr_key), sizeof(steer_addr_value),
       STEER_MAX_LOCAL_ADDRS},
      {STEER_MAP_CONFIG, BPF_MAP_TYPE_ARRAY, 4, sizeof(steer_config), 1},
      {STEER_MAP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, STEER_STAT_COUNT},
  };
  for (const Expect& e : maps) {
    SCOPED_TRACE(e.name);
    const bpf_map* m = bpf_object__find_map_by_name(skel->obj, e.name);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(bpf_map__type(m), e.type);
    EXPECT_EQ(bpf_map__key_size(m), e.key_size);
    EXPECT_EQ(bpf_map__value_size(m), e.value_size);
    EXPECT_EQ(bpf_map__max_entries(m), e.max_entries);
  }
  xdp_steer__destroy(skel);
}

TEST(SteerSkeleton, StatNamesComeFromTheAbiList) {
  EXPECT_EQ(eipgate::bpf::steer_stat_name(STEER_STAT_PASS_UNCONFIGURED), "pass_unconfigured");
  EXPECT_EQ(eipgate::bpf::steer_stat_name(STEER_STAT_NAT_INSIDE_OUT), "nat_inside_out");
  EXPECT_EQ(eipgate::bpf::steer_stat_name(STEER_STAT_NAT_NO_SOCKET), "nat_no_socket");
  EXPECT_EQ(eipgate::bpf::steer_stat_name(STEER_STAT_COUNT), "unknown");
}

TEST(SteerConfigValidate, RejectsWhatTheMapsCannotHold) {
  EXPECT_EQ(eipgate::bpf::validate(test_config()), "");
  SteerConfig c = test_config();
  c.inside_prefixes.clear();
  EXPECT_NE(eipgate::bpf::validate(c), "");
  c = test_config();
  c.outside_addrs.clear();
  EXPECT_NE(eipgate::bpf::validate(c), "");
  c = test_config();
  c.port_min = 2000;
  c.port_max = 1999;
  EXPECT_NE(eipgate::bpf::validate(c), "");
  c = test_config();
  c.inside_prefixes[0].len = 33;
  EXPECT_NE(eipgate::bpf::validate(c), "");
  c = test_config();
  c.host_addrs.assign(STEER_MAX_LOCAL_ADDRS, pb::ip("198.51.100.99"));
  EXPECT_NE(eipgate::bpf::validate(c), "");
}

// ---- the verdict table --------------------------------------------------------------------

enum class Want { Nat, Pass };

struct Case {
  std::string name;  // also the GoogleTest parameter name
  Bytes frame;
  Want want;
  steer_stat slot;  // the one PASS_/NAT_ counter that must rise
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Bytes arp_request() {
  // who-has 198.51.100.5 tell 198.51.100.6 (RFC 826)
  const Bytes arp = {0x00, 0x01, 0x08, 0x00, 6,   4,  0x00, 0x01, 0x02, 0x00,
                     0x00, 0x00, 0x00, 0x06, 198, 51, 100,  6,    0x00, 0x00,
                     0x00, 0x00, 0x00, 0x00, 198, 51, 100,  5};
  return Packet()
      .eth(pb::kDefaultSrcMac, pb::mac("ff:ff:ff:ff:ff:ff"))
      .ethertype(pb::kEtherTypeArp)
      .payload(arp)
      .build();
}

Bytes cut(Bytes frame, size_t n) {
  frame.resize(n);
  return frame;
}

std::vector<Case> cases() {
  const Packet out_tcp = Packet().eth().ipv4(kInsideHost, kRemote).tcp(40000, 443, pb::kTcpSyn);
  const Packet reply_tcp =
      Packet().eth().ipv4(kRemote, kOutside).tcp(443, 40000, pb::kTcpSyn | pb::kTcpAck);
  const Packet reply_udp = Packet().eth().ipv4(kRemote, kOutside).udp(53, 1024).payload("dns");
  const Packet big_udp_reply =
      Packet().eth().ipv4(kRemote, kOutside).id(77).udp(4500, 50000).payload_fill(3000);
  const std::vector<Bytes> udp_frags = pb::fragment(big_udp_reply.build(), 1400);
  const Packet big_ssh =
      Packet().eth().ipv4(kRemote, kOutside).id(78).tcp(50000, 22, pb::kTcpAck).payload_fill(3000);
  const std::vector<Bytes> ssh_frags = pb::fragment(big_ssh.build(), 1400);
  const Packet big_ping =
      Packet().eth().ipv4(kRemote, kOutside).id(79).icmp_echo().payload_fill(3000);
  const std::vector<Bytes> ping_frags = pb::fragment(big_ping.build(), 1400);
  // Router Alert (RFC 2113): a reader that ignored IHL would take its bytes for the ports.
  const Bytes router_alert = {0x94, 0x04, 0x00, 0x00};

  return {
      // inside -> internet: every protocol goes to the dataplane
      {"InsideOutTcp", out_tcp.build(), Want::Nat, STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutUdp",
       Packet().eth().ipv4(kInsideHost2, kRemote).udp(5353, 53).payload("q").build(), Want::Nat,
       STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutIcmpEcho",
       Packet().eth().ipv4(kInsideHost, kRemote).icmp_echo(pb::kIcmpEchoRequest, 0, 7, 1).build(),
       Want::Nat, STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutOtherProtocol",
       Packet().eth().ipv4(kInsideHost, kRemote).proto(47).payload_fill(24).build(), Want::Nat,
       STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutWithIpOptions", Packet(out_tcp).ip_options(router_alert).build(), Want::Nat,
       STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutVlanTagged", Packet(out_tcp).vlan(100).build(), Want::Nat,
       STEER_STAT_NAT_INSIDE_OUT},
      {"InsideOutFragment",
       pb::fragment(Packet().eth().ipv4(kInsideHost, kRemote).udp(1, 2).payload_fill(2000).build(),
                    1000)[1],
       Want::Nat, STEER_STAT_NAT_INSIDE_OUT},
      // internet -> outside address: replies in the NAT port range, ICMP, later fragments
      {"ReplyTcp", reply_tcp.build(), Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyUdpAtPortMin", reply_udp.build(), Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyUdpAtPortMax", Packet(reply_udp).dport(65535).build(), Want::Nat,
       STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyUdpWithEthernetTrailer", Packet(reply_udp).trailer(12).build(), Want::Nat,
       STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyWithIpOptions", Packet(reply_tcp).ip_options(router_alert).build(), Want::Nat,
       STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyQinQTagged", Packet(reply_tcp).vlan(10, 0, pb::kEtherTypeQinQ).vlan(20).build(),
       Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyIcmpEchoReply",
       Packet().eth().ipv4(kRemote, kOutside).icmp_echo(pb::kIcmpEchoReply, 0, 4000, 1).build(),
       Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyIcmpFragNeeded",
       Packet()
           .eth()
           .ipv4(kRemote, kOutside)
           .icmp_error(pb::kIcmpDestUnreachable, pb::kIcmpCodeFragNeeded,
                       Packet().ipv4(kOutside, kRemote).tcp(40000, 443, pb::kTcpAck))
           .mtu(1280)
           .build(),
       Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyFirstFragmentInRange", udp_frags[0], Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      {"ReplyNonFirstFragment", udp_frags[1], Want::Nat, STEER_STAT_NAT_FRAGMENT},
      {"ReplyLastFragment", udp_frags.back(), Want::Nat, STEER_STAT_NAT_FRAGMENT},
      // a later fragment has no ports, so even one of an SSH segment goes to the dataplane
      {"NonFirstFragmentOfSsh", ssh_frags[1], Want::Nat, STEER_STAT_NAT_FRAGMENT},
      {"FragmentedEchoRequestFirst", ping_frags[0], Want::Nat, STEER_STAT_NAT_OUTSIDE_IN},
      // the instance's own traffic on the outside address
      {"SshToOutsideAddress", Packet(reply_tcp).sport(50000).dport(22).build(), Want::Pass,
       STEER_STAT_PASS_OUTSIDE_SERVICE},
      {"FirstFragmentOfSsh", ssh_frags[0], Want::Pass, STEER_STAT_PASS_OUTSIDE_SERVICE},
      {"UdpBelowPortMin", Packet(reply_udp).dport(1023).build(), Want::Pass,
       STEER_STAT_PASS_OUTSIDE_SERVICE},
      {"EchoRequestToOutsideAddress",
       Packet().eth().ipv4(kRemote, kOutside).icmp_echo(pb::kIcmpEchoRequest, 0, 9, 1).build(),
       Want::Pass, STEER_STAT_PASS_OUTSIDE_SERVICE},
      {"GreToOutsideAddress",
       Packet().eth().ipv4(kRemote, kOutside).proto(47).payload_fill(24).build(), Want::Pass,
       STEER_STAT_PASS_OUTSIDE_SERVICE},
      // the instance's own addresses
      {"SshToHostAddress",
       Packet().eth().ipv4(kRemote, kHostAddr).tcp(50000, 22, pb::kTcpSyn).build(), Want::Pass,
       STEER_STAT_PASS_HOST_ADDR},
      {"HaHeartbeatFromPeer",
       Packet().eth().ipv4(kPeer, kHostAddr).udp(4789, 4789).payload("hb").build(), Want::Pass,
       STEER_STAT_PASS_HOST_ADDR},
      {"HealthCheckFromInside",
       Packet().eth().ipv4(kInsideHost, kHostAddr).tcp(40000, 8080, pb::kTcpSyn).build(),
       Want::Pass, STEER_STAT_PASS_HOST_ADDR},
      {"VlanTaggedToHostAddress",
       Packet().eth().vlan(100).ipv4(kRemote, kHostAddr).tcp(50000, 22, pb::kTcpSyn).build(),
       Want::Pass, STEER_STAT_PASS_HOST_ADDR},
      // not IPv4
      {"Arp", arp_request(), Want::Pass, STEER_STAT_PASS_NOT_IPV4},
      {"Ipv6", Packet().eth().ethertype(0x86dd).payload_fill(60).build(), Want::Pass,
       STEER_STAT_PASS_NOT_IPV4},
      {"ThreeVlanTags", Packet(out_tcp).vlan(1).vlan(2).vlan(3).build(), Want::Pass,
       STEER_STAT_PASS_NOT_IPV4},
      // neither direction
      {"InsideToInside",
       Packet().eth().ipv4(kInsideHost, kInsideHost2).tcp(40000, 443, pb::kTcpSyn).build(),
       Want::Pass, STEER_STAT_PASS_NOT_NAT},
      {"InternetToOtherAddress",
       Packet().eth().ipv4(kRemote, "198.51.100.77").tcp(443, 40000, pb::kTcpAck).build(),
       Want::Pass, STEER_STAT_PASS_NOT_NAT},
      {"InsideToBroadcast",
       Packet().eth().ipv4(kInsideHost, "255.255.255.255").udp(68, 67).payload("dhcp").build(),
       Want::Pass, STEER_STAT_PASS_MULTICAST},
      {"InsideToMulticast",
       Packet().eth().ipv4(kInsideHost, "224.0.0.251").udp(5353, 5353).payload("mdns").build(),
       Want::Pass, STEER_STAT_PASS_MULTICAST},
      // truncated and malformed: to the kernel, which drops and counts them
      {"EthernetOnly", cut(out_tcp.build(), 14), Want::Pass, STEER_STAT_PASS_MALFORMED},
      {"VlanTagCut", cut(Packet(out_tcp).vlan(100).build(), 16), Want::Pass,
       STEER_STAT_PASS_MALFORMED},
      {"Ipv4HeaderCut", cut(out_tcp.build(), 14 + 19), Want::Pass, STEER_STAT_PASS_MALFORMED},
      {"IpOptionsCut", cut(Packet(reply_tcp).ip_options(router_alert).build(), 14 + 22), Want::Pass,
       STEER_STAT_PASS_MALFORMED},
      {"DatagramLongerThanFrame", cut(reply_tcp.build(), 14 + 20 + 10), Want::Pass,
       STEER_STAT_PASS_MALFORMED},
      {"TcpPortsCut",
       Packet().eth().ipv4(kRemote, kOutside).proto(pb::kProtoTcp).payload({0x01, 0xbb}).build(),
       Want::Pass, STEER_STAT_PASS_MALFORMED},
      {"IcmpHeaderCut",
       Packet().eth().ipv4(kRemote, kOutside).proto(pb::kProtoIcmp).payload({0x00, 0x00}).build(),
       Want::Pass, STEER_STAT_PASS_MALFORMED},
      {"IpVersion6InIpv4Frame", Packet(out_tcp).version(6).build(), Want::Pass,
       STEER_STAT_PASS_MALFORMED},
      {"IhlBelowFive", Packet(out_tcp).ihl(4).build(), Want::Pass, STEER_STAT_PASS_MALFORMED},
      {"TotalLengthBelowIhl", Packet(out_tcp).total_length(12).build(), Want::Pass,
       STEER_STAT_PASS_MALFORMED},
  };
}

class SteerVerdict : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    ASSERT_EQ(prog_.load(), "");
    ASSERT_EQ(prog_.configure(test_config()), "");
  }
  SteerProgram prog_;
};

// With no AF_XDP socket in the queue's XSKMAP slot, bpf_redirect_map returns its fallback,
// XDP_DROP (NAT traffic must not reach the kernel, see xdp_steer.bpf.c), and counts
// nat_no_socket. The redirect itself, with a socket, is tested by SteerXsk below.
TEST_P(SteerVerdict, SendsNatTrafficToTheDataplaneAndTheRestToTheKernel) {
  const Case& c = GetParam();
  const SteerStats before = stats_of(prog_);
  const auto r = run_on_packet(prog_.prog_fd(), c.frame);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.verdict, c.want == Want::Nat ? XDP_DROP : XDP_PASS)
      << "verdict " << r.verdict << ", frame:\n"
      << pb::hexdump(c.frame);
  EXPECT_EQ(pb::hex(r.output), pb::hex(c.frame)) << "steering must not change the frame";

  const SteerStats after = stats_of(prog_);
  for (uint32_t slot = 0; slot < STEER_STAT_COUNT; ++slot) {
    uint64_t rise = 0;
    if (slot == static_cast<uint32_t>(c.slot)) rise = 1;
    if (slot == STEER_STAT_NAT_NO_SOCKET && c.want == Want::Nat) rise = 1;
    EXPECT_EQ(after.packets[slot] - before.packets[slot], rise)
        << eipgate::bpf::steer_stat_name(slot);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, SteerVerdict, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

// ---- configuration ------------------------------------------------------------------------

uint32_t verdict_of(const SteerProgram& prog, const Bytes& frame) {
  const auto r = run_on_packet(prog.prog_fd(), frame);
  EXPECT_EQ(r.error, "");
  return r.verdict;
}

TEST(SteerProgramTest, PassesEverythingUntilConfigured) {
  REQUIRE_ROOT();
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  const Bytes out = Packet().eth().ipv4(kInsideHost, kRemote).tcp(40000, 443, pb::kTcpSyn).build();
  EXPECT_EQ(verdict_of(prog, out), XDP_PASS);
  EXPECT_EQ(stats_of(prog).packets[STEER_STAT_PASS_UNCONFIGURED], 1u);
  ASSERT_EQ(prog.configure(test_config()), "");
  EXPECT_EQ(verdict_of(prog, out), XDP_DROP);  // NAT, no socket yet
  EXPECT_EQ(stats_of(prog).packets[STEER_STAT_NAT_INSIDE_OUT], 1u);
}

TEST(SteerProgramTest, ReconfigureReplacesPrefixesAddressesAndPorts) {
  REQUIRE_ROOT();
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  ASSERT_EQ(prog.configure(test_config()), "");
  const Bytes from_10_0 =
      Packet().eth().ipv4(kInsideHost, kRemote).tcp(40000, 443, pb::kTcpSyn).build();
  const Bytes from_172 =
      Packet().eth().ipv4("172.16.3.4", kRemote).tcp(40000, 443, pb::kTcpSyn).build();
  const Bytes to_old_outside =
      Packet().eth().ipv4(kRemote, kOutside).tcp(443, 40000, pb::kTcpAck).build();
  const Bytes to_new_outside =
      Packet().eth().ipv4(kRemote, "198.51.100.20").tcp(443, 40000, pb::kTcpAck).build();
  const Bytes to_port_2000 =
      Packet().eth().ipv4(kRemote, "198.51.100.20").tcp(443, 2000, pb::kTcpAck).build();
  EXPECT_EQ(verdict_of(prog, from_10_0), XDP_DROP);
  EXPECT_EQ(verdict_of(prog, from_172), XDP_PASS);
  EXPECT_EQ(verdict_of(prog, to_old_outside), XDP_DROP);
  EXPECT_EQ(verdict_of(prog, to_new_outside), XDP_PASS);

  SteerConfig next;
  next.inside_prefixes = {{pb::ip("172.16.0.0"), 12}};
  next.outside_addrs = {pb::ip("198.51.100.20")};
  next.host_addrs = {pb::ip(kHostAddr)};
  next.port_min = 10000;
  next.port_max = 60000;
  ASSERT_EQ(prog.configure(next), "");
  EXPECT_EQ(verdict_of(prog, from_10_0), XDP_PASS) << "stale prefix left in the trie";
  EXPECT_EQ(verdict_of(prog, from_172), XDP_DROP);
  EXPECT_EQ(verdict_of(prog, to_old_outside), XDP_PASS) << "stale outside address left";
  EXPECT_EQ(verdict_of(prog, to_new_outside), XDP_DROP);
  EXPECT_EQ(verdict_of(prog, to_port_2000), XDP_PASS) << "port range not updated";

  // A rejected config leaves the running one as it was.
  SteerConfig bad = next;
  bad.port_min = 2;
  bad.port_max = 1;
  EXPECT_NE(prog.configure(bad), "");
  EXPECT_EQ(verdict_of(prog, from_172), XDP_DROP);
  EXPECT_EQ(verdict_of(prog, to_port_2000), XDP_PASS);
}

TEST(SteerProgramTest, AddressGivenAsOutsideAndHostIsOutside) {
  REQUIRE_ROOT();
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  SteerConfig c = test_config();
  c.host_addrs.push_back(pb::ip(kOutside));
  ASSERT_EQ(prog.configure(c), "");
  EXPECT_EQ(verdict_of(prog, Packet().eth().ipv4(kRemote, kOutside).udp(53, 40000).build()),
            XDP_DROP);
}

TEST(SteerProgramTest, EchoRequestToOutsideCanGoToTheDataplane) {
  REQUIRE_ROOT();
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  SteerConfig c = test_config();
  c.echo_request_to_host = false;
  ASSERT_EQ(prog.configure(c), "");
  EXPECT_EQ(verdict_of(prog, Packet().eth().ipv4(kRemote, kOutside).icmp_echo().build()), XDP_DROP);
}

TEST(SteerProgramTest, MethodsOnAnUnloadedProgramFailCleanly) {
  SteerProgram prog;
  SteerStats s;
  EXPECT_FALSE(prog.loaded());
  EXPECT_EQ(prog.prog_fd(), -1);
  EXPECT_NE(prog.configure(test_config()), "");
  EXPECT_NE(prog.attach(1, XdpMode::Skb), "");
  EXPECT_NE(prog.register_socket(0, 0), "");
  EXPECT_NE(prog.read_stats(s), "");
  EXPECT_EQ(prog.detach(), "");
}

TEST(SteerProgramTest, FramesShorterThanEthernetAreRefusedByTheKernel) {
  REQUIRE_ROOT();
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  // BPF_PROG_TEST_RUN rejects data below ETH_HLEN, so such frames are not table cases; a device
  // never hands XDP one either.
  const Bytes runt(13, 0);
  EXPECT_NE(run_on_packet(prog.prog_fd(), runt).error, "");
}

// ---- with a device: a private network namespace -------------------------------------------

// Moves this test process into a network namespace of its own, so attaching to its loopback
// device touches nothing else on the machine. Returns the loopback ifindex, or 0.
int private_loopback() {
  static int ifindex = [] {
    if (unshare(CLONE_NEWNET) != 0) return 0;
    return static_cast<int>(if_nametoindex("lo"));
  }();
  return ifindex;
}

// A bare AF_XDP socket bound to (ifindex, queue) in copy mode: enough for the XSKMAP, which
// only accepts bound sockets with an RX ring. Owns its fd and UMEM.
class XskSocket {
 public:
  XskSocket(int ifindex, uint32_t queue) { error_ = init(ifindex, queue); }
  ~XskSocket() {
    if (fd_ >= 0) close(fd_);
    if (umem_ != MAP_FAILED) munmap(umem_, kUmemSize);
  }
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  static constexpr size_t kUmemSize = size_t{2048} * 64;
  static std::string fail(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
  }

  std::string init(int ifindex, uint32_t queue) {
    fd_ = socket(AF_XDP, SOCK_RAW, 0);
    if (fd_ < 0) return fail("socket(AF_XDP)");
    umem_ = mmap(nullptr, kUmemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem_ == MAP_FAILED) return fail("mmap");
    xdp_umem_reg reg{};
    reg.addr = reinterpret_cast<uint64_t>(umem_);
    reg.len = kUmemSize;
    reg.chunk_size = 2048;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0) return fail("UMEM_REG");
    const int ring = 64;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof ring) != 0 ||
        setsockopt(fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof ring) != 0 ||
        setsockopt(fd_, SOL_XDP, XDP_RX_RING, &ring, sizeof ring) != 0) {
      return fail("ring sizes");
    }
    sockaddr_xdp addr{};
    addr.sxdp_family = AF_XDP;
    addr.sxdp_ifindex = static_cast<uint32_t>(ifindex);
    addr.sxdp_queue_id = queue;
    addr.sxdp_flags = XDP_COPY;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
    return {};
  }

  int fd_ = -1;
  void* umem_ = MAP_FAILED;
  std::string error_;
};

// BPF_PROG_TEST_RUN does not carry a redirect out (no live frames): it reports what the program
// returned, XDP_REDIRECT once bpf_redirect_map found the socket in the queue's slot.
TEST(SteerXsk, RedirectsNatTrafficToTheRegisteredSocket) {
  REQUIRE_ROOT();
  const int lo = private_loopback();
  ASSERT_GT(lo, 0) << std::strerror(errno);
  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  ASSERT_EQ(prog.configure(test_config()), "");
  XskSocket xsk(lo, 0);
  ASSERT_EQ(xsk.error(), "");
  ASSERT_EQ(prog.register_socket(0, xsk.fd()), "");

  const XdpRunContext on_lo{lo, 0};
  const Bytes nat = Packet().eth().ipv4(kInsideHost, kRemote).udp(5000, 53).payload("q").build();
  const Bytes host = Packet().eth().ipv4(kRemote, kHostAddr).tcp(5000, 22, pb::kTcpSyn).build();
  auto r = run_on_packet(prog.prog_fd(), nat, on_lo);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.verdict, XDP_REDIRECT);
  r = run_on_packet(prog.prog_fd(), host, on_lo);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.verdict, XDP_PASS);
  EXPECT_EQ(stats_of(prog).packets[STEER_STAT_NAT_NO_SOCKET], 0u);

  ASSERT_EQ(prog.unregister_socket(0), "");
  r = run_on_packet(prog.prog_fd(), nat, on_lo);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.verdict, XDP_DROP);
  EXPECT_EQ(stats_of(prog).packets[STEER_STAT_NAT_NO_SOCKET], 1u);
  EXPECT_NE(prog.register_socket(STEER_MAX_QUEUES, xsk.fd()), "");
}

uint32_t attached_prog_id(int ifindex) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &id) != 0) return 0;
  return id;
}

uint32_t prog_id_of(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  return info.id;
}

TEST(SteerAttach, AttachesDetachesAndNeverReplacesAnotherProgram) {
  REQUIRE_ROOT();
  const int lo = private_loopback();
  ASSERT_GT(lo, 0) << std::strerror(errno);
  ASSERT_EQ(attached_prog_id(lo), 0u);
  {
    SteerProgram prog;
    ASSERT_EQ(prog.load(), "");
    ASSERT_EQ(prog.attach(lo, XdpMode::Skb), "");
    EXPECT_EQ(prog.attached_ifindex(), lo);
    EXPECT_EQ(attached_prog_id(lo), prog_id_of(prog.prog_fd()));
    EXPECT_NE(prog.attach(lo, XdpMode::Skb), "") << "second attach of one instance";

    SteerProgram other;
    ASSERT_EQ(other.load(), "");
    EXPECT_NE(other.attach(lo, XdpMode::Skb), "") << "replaced a program it does not own";
    EXPECT_EQ(attached_prog_id(lo), prog_id_of(prog.prog_fd()));

    // Moving keeps the attachment with the moved-to object.
    SteerProgram moved = std::move(prog);
    EXPECT_EQ(moved.attached_ifindex(), lo);
    EXPECT_EQ(attached_prog_id(lo), prog_id_of(moved.prog_fd()));
  }
  EXPECT_EQ(attached_prog_id(lo), 0u) << "destruction must detach";

  SteerProgram again;
  ASSERT_EQ(again.load(), "");
  ASSERT_EQ(again.attach(lo, XdpMode::Skb), "");
  EXPECT_EQ(again.detach(), "");
  EXPECT_EQ(attached_prog_id(lo), 0u);
}

// The dataplane's af_xdp mode: DPDK loads and attaches the object itself (xdp_prog=), and the
// dataplane adopts the attached program's maps to configure it and read its counters.
TEST(SteerAttach, AdoptsTheAttachedProgramsMaps) {
  REQUIRE_ROOT();
  const int lo = private_loopback();
  ASSERT_GT(lo, 0) << std::strerror(errno);
  AttachedSteer none;
  EXPECT_NE(none.adopt(lo).find("no XDP program"), std::string::npos);
  EXPECT_NE(none.configure(test_config()), "") << "configure before adopt must fail";

  SteerProgram prog;
  ASSERT_EQ(prog.load(), "");
  ASSERT_EQ(prog.attach(lo, XdpMode::Skb), "");
  AttachedSteer adopted;
  ASSERT_EQ(adopted.adopt(lo), "");
  EXPECT_EQ(adopted.prog_id(), prog_id_of(prog.prog_fd()));
  EXPECT_GE(adopted.map_fds().xsks, 0);

  const Bytes out = Packet().eth().ipv4(kInsideHost, kRemote).tcp(40000, 443, pb::kTcpSyn).build();
  EXPECT_EQ(verdict_of(prog, out), XDP_PASS);  // unconfigured: everything to the kernel
  ASSERT_EQ(adopted.configure(test_config()), "");
  EXPECT_EQ(verdict_of(prog, out), XDP_DROP);  // configured through the adopted maps: NAT
  SteerStats st;
  ASSERT_EQ(adopted.read_stats(st), "");
  EXPECT_EQ(st.packets[STEER_STAT_NAT_INSIDE_OUT], 1u);
  EXPECT_EQ(st.packets[STEER_STAT_PASS_UNCONFIGURED], 1u);

  AttachedSteer moved = std::move(adopted);
  EXPECT_TRUE(moved.adopted());
  EXPECT_FALSE(adopted.adopted());  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_EQ(prog.detach(), "");
}

}  // namespace

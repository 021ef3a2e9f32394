// Several workers, one engine each: a new flow is created by the worker the NIC's RSS gives its
// first packet (handoff otherwise), and its outside port is chosen so that the NIC delivers the
// replies to that same worker. The NIC is simulated independently with the Toeplitz hash (checked
// against the Microsoft vectors in rss_test.cc) and a 128-entry round-robin redirection table.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "dataplane/engine/rss.h"
#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Engine;
using engine::Event;
using engine::Result;
using engine::Verdict;

constexpr std::array<uint8_t, 40> kMsKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
constexpr uint32_t kRetaSize = 128;

uint32_t net32(uint32_t host) { return __builtin_bswap32(host); }
uint16_t net16(uint16_t host) { return __builtin_bswap16(host); }

// A frame in a buffer that keeps its PacketBuf (and so its PacketMeta) across workers, the way an
// mbuf travels through a handoff ring.
struct Frame {
  Bytes buf;
  engine::PacketBuf pkt{};

  explicit Frame(const Bytes& frame, size_t headroom = 600) : buf(frame) {
    buf.resize(frame.size() + headroom);
    pkt.data = buf.data();
    pkt.len = static_cast<uint32_t>(frame.size());
    pkt.cap = static_cast<uint32_t>(buf.size());
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  [[nodiscard]] Bytes bytes() const { return Bytes(buf.begin(), buf.begin() + pkt.len); }
};

class Workers {
 public:
  explicit Workers(uint16_t n, engine::EngineConfig base = default_config()) : nic_(kMsKey), n_(n) {
    base.worker_count = n;
    base.rss.key = kMsKey;
    base.rss.reta.resize(kRetaSize);
    for (uint32_t i = 0; i < kRetaSize; ++i) base.rss.reta[i] = static_cast<uint16_t>(i % n);
    reta_ = base.rss.reta;
    cfg_ = base;
    for (uint16_t w = 0; w < n; ++w) {
      base.worker_id = w;
      engines_.push_back(std::make_unique<Engine>(base));
    }
  }

  Result send(uint16_t w, Frame& f) {
    Result r;
    engine::PacketBuf* p = &f.pkt;
    engines_.at(w)->process_burst(&p, 1, now_ns_, &r);
    return r;
  }

  // The worker whose RX queue the NIC puts a packet on (host-order tuple).
  uint16_t nic_l4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) const {
    return reta_[nic_.hash_l4(net32(src), net32(dst), net16(sport), net16(dport)) % kRetaSize];
  }
  uint16_t nic_l3(uint32_t src, uint32_t dst) const {
    return reta_[nic_.hash_l3(net32(src), net32(dst)) % kRetaSize];
  }

  Engine& at(uint16_t w) { return *engines_.at(w); }
  uint16_t count() const { return n_; }
  const engine::EngineConfig& config() const { return cfg_; }
  uint64_t now_ns() const { return now_ns_; }
  uint64_t flows() const {
    uint64_t n = 0;
    for (const auto& e : engines_) n += e->active_flows();
    return n;
  }
  uint64_t event(uint16_t w, Event e) const { return engines_.at(w)->counters().get(e); }
  uint64_t drop(uint16_t w, DropReason r) const { return engines_.at(w)->counters().get(r); }

 private:
  engine::Toeplitz nic_;
  uint16_t n_;
  std::vector<uint16_t> reta_;
  engine::EngineConfig cfg_;
  std::vector<std::unique_ptr<Engine>> engines_;
  uint64_t now_ns_ = 1'000'000'000ull;
};

// Random public destination: 198.18.0.0/15 (benchmarking range), never inside or outside.
uint32_t random_remote(std::mt19937_64& rng) {
  return ip("198.18.0.0") | static_cast<uint32_t>(rng() & 0x1ffff);
}
uint32_t random_inside(std::mt19937_64& rng) {
  return ip("10.0.0.0") | static_cast<uint32_t>(rng() % 0xfffe + 1);
}
uint16_t random_port(std::mt19937_64& rng) { return static_cast<uint16_t>(1 + rng() % 65535); }

// --- new TCP / UDP flows ---------------------------------------------------------------------

struct FlowCase {
  uint16_t workers;
  uint8_t proto;
};

class MultiWorkerFlows : public ::testing::TestWithParam<FlowCase> {};

TEST_P(MultiWorkerFlows, RepliesReachTheCreatorWithoutHandoff) {
  const FlowCase fc = GetParam();
  Workers ws(fc.workers);
  std::mt19937_64 rng(1000 + fc.workers * 10 + fc.proto);
  constexpr int kFlows = 400;
  std::vector<uint64_t> created(fc.workers, 0);
  std::vector<uint64_t> handed_in(fc.workers, 0);
  for (int n = 0; n < kFlows; ++n) {
    const uint32_t in_ip = random_inside(rng);
    const uint32_t remote = random_remote(rng);
    const uint16_t iport = random_port(rng);
    const uint16_t rport = random_port(rng);
    auto out = Packet().ipv4(in_ip, remote).ttl(64);
    auto back = Packet().ipv4(remote, ip(kOutside)).ttl(50);
    if (fc.proto == kProtoTcp) {
      out.tcp(iport, rport, kTcpSyn).seq(100);
    } else {
      out.udp(iport, rport).payload("q");
    }
    const uint16_t owner = ws.nic_l4(in_ip, remote, iport, rport);

    // Delivered to worker 0 first: it translates or hands off to the owner, exactly once.
    Frame f(out.build());
    uint16_t w = 0;
    Result r = ws.send(0, f);
    if (r.verdict == Verdict::Handoff) {
      ASSERT_NE(r.worker, 0) << "handed off to itself";
      ASSERT_EQ(r.worker, owner);
      w = r.worker;
      ++handed_in[w];
      r = ws.send(w, f);
    }
    ASSERT_EQ(r.verdict, Verdict::ToOutside) << "flow " << n << " at worker " << w;
    ASSERT_EQ(w, owner);
    ++created[w];
    const Parsed o = parse(f.bytes());
    ASSERT_EQ(o.ip_src, ip(kOutside));
    ASSERT_EQ(o.ip_dst, remote);
    ASSERT_EQ(o.dport, rport);
    ASSERT_GE(o.sport, 1024);
    ASSERT_TRUE(l4_checksum_ok(f.bytes()));
    const uint16_t oport = o.sport;

    // The NIC's choice for the reply is the creator; the engine agrees.
    ASSERT_EQ(ws.nic_l4(remote, ip(kOutside), rport, oport), w) << "port " << oport;
    ASSERT_EQ(ws.at(0).rss_worker(remote, ip(kOutside), rport, oport, fc.proto), w);

    if (fc.proto == kProtoTcp) {
      back.tcp(rport, oport, kTcpSyn | kTcpAck).seq(900).ack(101);
    } else {
      back.udp(rport, oport).payload("a");
    }
    // Delivered to a wrong worker first: handed to the creator, no flow made there.
    const uint16_t wrong = static_cast<uint16_t>((w + 1) % fc.workers);
    const uint64_t wrong_flows = ws.at(wrong).active_flows();
    const uint64_t wrong_handoffs = ws.event(wrong, Event::PacketsHandedOff);
    Frame b(back.build());
    const Bytes before = b.bytes();
    Result rb = ws.send(wrong, b);
    ASSERT_EQ(rb.verdict, Verdict::Handoff);
    ASSERT_EQ(rb.worker, w);
    ASSERT_EQ(b.bytes(), before) << "a handed-off packet must be untouched";
    EXPECT_EQ(ws.at(wrong).active_flows(), wrong_flows);
    EXPECT_EQ(ws.event(wrong, Event::PacketsHandedOff), wrong_handoffs + 1);

    rb = ws.send(w, b);
    ASSERT_EQ(rb.verdict, Verdict::ToInside);
    const Parsed ro = parse(b.bytes());
    EXPECT_EQ(ro.ip_src, remote);
    EXPECT_EQ(ro.ip_dst, in_ip);
    EXPECT_EQ(ro.sport, rport);
    EXPECT_EQ(ro.dport, iport);
    EXPECT_TRUE(ip_checksum_ok(b.bytes()));
    EXPECT_TRUE(l4_checksum_ok(b.bytes()));

    // And a second reply, delivered where the NIC puts it, is translated with no handoff.
    Frame b2(back.build());
    const uint64_t handoffs = ws.event(w, Event::PacketsHandedOff);
    ASSERT_EQ(ws.send(ws.nic_l4(remote, ip(kOutside), rport, oport), b2).verdict,
              Verdict::ToInside);
    EXPECT_EQ(ws.event(w, Event::PacketsHandedOff), handoffs);
  }
  EXPECT_EQ(ws.flows(), static_cast<uint64_t>(kFlows));
  for (uint16_t w = 0; w < fc.workers; ++w) {
    EXPECT_EQ(ws.at(w).active_flows(), created[w]) << "worker " << w;
    EXPECT_EQ(ws.event(w, Event::FlowsCreated), created[w]) << "worker " << w;
    // Round-robin RETA: every worker owns some of 400 random flows.
    EXPECT_GT(created[w], 0u) << "worker " << w;
  }
  // Worker 0 handed off exactly the flows it does not own (plus nothing else on the way out).
  EXPECT_EQ(ws.event(0, Event::PacketsHandedOff),
            static_cast<uint64_t>(kFlows) - created[0] +
                // replies sent to worker 0 while the creator was the last worker
                (fc.workers > 1 ? created[fc.workers - 1] : 0));
}

INSTANTIATE_TEST_SUITE_P(Rss, MultiWorkerFlows,
                         ::testing::Values(FlowCase{2, kProtoTcp}, FlowCase{2, kProtoUdp},
                                           FlowCase{4, kProtoTcp}, FlowCase{4, kProtoUdp}),
                         [](const ::testing::TestParamInfo<FlowCase>& i) {
                           return std::to_string(i.param.workers) + "Workers" +
                                  (i.param.proto == kProtoTcp ? "Tcp" : "Udp");
                         });

// Same tuple from the NIC's point of view, already established: every packet of the flow in both
// directions stays on the owner (no handoff at all when delivered as the NIC would).
TEST(MultiWorker, EstablishedTcpFlowNeverHandedOff) {
  Workers ws(4);
  const uint32_t in_ip = ip(kInsideHost);
  const uint32_t remote = ip(kServer);
  const uint16_t owner = ws.nic_l4(in_ip, remote, 40000, 443);
  Frame syn(Packet().ipv4(in_ip, remote).tcp(40000, 443, kTcpSyn).build());
  ASSERT_EQ(ws.send(owner, syn).verdict, Verdict::ToOutside);
  const uint16_t oport = parse(syn.bytes()).sport;
  const uint16_t reply_q = ws.nic_l4(remote, ip(kOutside), 443, oport);
  ASSERT_EQ(reply_q, owner);
  Frame sa(Packet().ipv4(remote, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build());
  ASSERT_EQ(ws.send(reply_q, sa).verdict, Verdict::ToInside);
  for (int i = 0; i < 10; ++i) {
    Frame d(Packet().ipv4(in_ip, remote).tcp(40000, 443, kTcpAck).payload("x").build());
    ASSERT_EQ(ws.send(owner, d).verdict, Verdict::ToOutside);
    Frame e(Packet().ipv4(remote, kOutside).tcp(443, oport, kTcpAck).payload("y").build());
    ASSERT_EQ(ws.send(reply_q, e).verdict, Verdict::ToInside);
  }
  for (uint16_t w = 0; w < 4; ++w) EXPECT_EQ(ws.event(w, Event::PacketsHandedOff), 0u);
  EXPECT_EQ(ws.event(owner, Event::ConnectionEstablishedCount), 1u);
}

// A non-SYN for an unknown flow is handed to its owner, which answers with the RST (the wrong
// worker neither resets nor creates anything).
TEST(MultiWorker, NonSynWithoutFlowHandedOffThenReset) {
  Workers ws(2);
  std::mt19937_64 rng(5);
  for (int n = 0; n < 50; ++n) {
    const uint32_t in_ip = random_inside(rng);
    const uint32_t remote = random_remote(rng);
    const uint16_t iport = random_port(rng), rport = random_port(rng);
    const uint16_t owner = ws.nic_l4(in_ip, remote, iport, rport);
    const uint16_t other = static_cast<uint16_t>(1 - owner);
    Frame f(Packet().ipv4(in_ip, remote).tcp(iport, rport, kTcpAck).seq(7).ack(9).build());
    const uint64_t rst_other = ws.event(other, Event::TcpRstSentToInside);
    const uint64_t rst_owner = ws.event(owner, Event::TcpRstSentToInside);
    Result r = ws.send(other, f);
    ASSERT_EQ(r.verdict, Verdict::Handoff);
    ASSERT_EQ(r.worker, owner);
    EXPECT_EQ(ws.event(other, Event::TcpRstSentToInside), rst_other);
    r = ws.send(owner, f);
    EXPECT_EQ(ws.event(owner, Event::TcpRstSentToInside), rst_owner + 1);
    ASSERT_EQ(r.verdict, Verdict::ToInside);
    const Parsed o = parse(f.bytes());
    EXPECT_EQ(o.tcp_flags, kTcpRst);
    EXPECT_EQ(o.seq, 9u);
  }
  EXPECT_EQ(ws.flows(), 0u);
}

// --- ICMP echo -------------------------------------------------------------------------------

TEST(MultiWorker, IcmpEchoOwnedByTheL3HashOfTheReply) {
  for (uint16_t n : {uint16_t{2}, uint16_t{4}}) {
    SCOPED_TRACE(n);
    Workers ws(n);
    std::mt19937_64 rng(77 + n);
    uint64_t handed = 0;
    for (int k = 0; k < 200; ++k) {
      const uint32_t in_ip = random_inside(rng);
      const uint32_t remote = random_remote(rng);
      const uint16_t id = random_port(rng);
      // NICs hash ICMP on the addresses only, both ways.
      const uint16_t rx = ws.nic_l3(in_ip, remote);
      const uint16_t owner = ws.nic_l3(remote, ip(kOutside));
      Frame req(Packet()
                    .ipv4(in_ip, remote)
                    .icmp_echo(kIcmpEchoRequest, 0, id, 1)
                    .payload("ping")
                    .build());
      Result r = ws.send(rx, req);
      uint16_t w = rx;
      if (owner != rx) {
        ASSERT_EQ(r.verdict, Verdict::Handoff);
        ASSERT_EQ(r.worker, owner);
        ++handed;
        w = r.worker;
        r = ws.send(w, req);
      }
      ASSERT_EQ(r.verdict, Verdict::ToOutside);
      const Parsed o = parse(req.bytes());
      ASSERT_EQ(o.ip_src, ip(kOutside));
      ASSERT_TRUE(l4_checksum_ok(req.bytes()));
      const uint16_t oid = o.icmp_id;
      EXPECT_EQ(ws.at(w).rss_worker(remote, ip(kOutside), 0, oid, kProtoIcmp), owner);

      // The reply lands on the owner (L3 hash) and is translated there.
      Frame rep(Packet()
                    .ipv4(remote, kOutside)
                    .icmp_echo(kIcmpEchoReply, 0, oid, 1)
                    .payload("ping")
                    .build());
      const uint16_t wrong = static_cast<uint16_t>((owner + 1) % n);
      r = ws.send(wrong, rep);
      ASSERT_EQ(r.verdict, Verdict::Handoff);
      ASSERT_EQ(r.worker, owner);
      ++handed;
      r = ws.send(ws.nic_l3(remote, ip(kOutside)), rep);
      ASSERT_EQ(r.verdict, Verdict::ToInside);
      const Parsed ro = parse(rep.bytes());
      EXPECT_EQ(ro.ip_dst, in_ip);
      EXPECT_EQ(ro.icmp_id, id);
      EXPECT_TRUE(l4_checksum_ok(rep.bytes()));
    }
    EXPECT_EQ(ws.flows(), 200u);
    uint64_t total_handoffs = 0;
    for (uint16_t w = 0; w < n; ++w) total_handoffs += ws.event(w, Event::PacketsHandedOff);
    EXPECT_EQ(total_handoffs, handed);
  }
}

// --- ICMP errors about a flow reach its owner ---------------------------------------------------

TEST(MultiWorker, IcmpErrorsHandedOffToTheFlowOwner) {
  Workers ws(2);
  std::mt19937_64 rng(99);
  for (int k = 0; k < 40; ++k) {
    const uint32_t in_ip = random_inside(rng);
    const uint32_t remote = random_remote(rng);
    const uint16_t iport = random_port(rng), rport = random_port(rng);
    const uint16_t owner = ws.nic_l4(in_ip, remote, iport, rport);
    const uint16_t other = static_cast<uint16_t>(1 - owner);
    Frame f(Packet().ipv4(in_ip, remote).udp(iport, rport).payload("data").build());
    ASSERT_EQ(ws.send(owner, f).verdict, Verdict::ToOutside);
    const uint16_t oport = parse(f.bytes()).sport;

    // From the internet: "fragmentation needed" quoting what we sent, at the wrong worker.
    const uint32_t router = ip("192.0.2.254");
    Frame e(
        Packet()
            .ipv4(router, kOutside)
            .icmp_error(kIcmpDestUnreachable, kIcmpCodeFragNeeded,
                        Packet().ipv4(kOutside, remote).ttl(63).udp(oport, rport).payload("data"))
            .mtu(1400)
            .build());
    Result r = ws.send(other, e);
    ASSERT_EQ(r.verdict, Verdict::Handoff);
    ASSERT_EQ(r.worker, owner);
    r = ws.send(owner, e);
    ASSERT_EQ(r.verdict, Verdict::ToInside);
    const Parsed eo = parse(e.bytes());
    EXPECT_EQ(eo.ip_dst, in_ip);
    EXPECT_EQ(eo.inner_ip_src, in_ip);
    EXPECT_EQ(eo.inner_sport, iport);
    EXPECT_TRUE(ip_checksum_ok(e.bytes()));
    EXPECT_TRUE(l4_checksum_ok(e.bytes()));
    EXPECT_TRUE(inner_ip_checksum_ok(e.bytes()));

    // From the inside host: "port unreachable" quoting the translated reply, at the wrong worker.
    Frame u(Packet()
                .ipv4(in_ip, remote)
                .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable,
                            Packet().ipv4(remote, in_ip).ttl(60).udp(rport, iport).payload("resp"))
                .build());
    r = ws.send(other, u);
    ASSERT_EQ(r.verdict, Verdict::Handoff);
    ASSERT_EQ(r.worker, owner);
    r = ws.send(owner, u);
    ASSERT_EQ(r.verdict, Verdict::ToOutside);
    const Parsed uo = parse(u.bytes());
    EXPECT_EQ(uo.ip_src, ip(kOutside));
    EXPECT_EQ(uo.inner_ip_dst, ip(kOutside));
    EXPECT_EQ(uo.inner_dport, oport);
    EXPECT_TRUE(l4_checksum_ok(u.bytes()));
  }
  EXPECT_EQ(ws.event(0, Event::IcmpErrorsTranslatedIn) + ws.event(1, Event::IcmpErrorsTranslatedIn),
            40u);
  EXPECT_EQ(
      ws.event(0, Event::IcmpErrorsTranslatedOut) + ws.event(1, Event::IcmpErrorsTranslatedOut),
      40u);
}

// --- endpoint-independent UDP ------------------------------------------------------------------

TEST(MultiWorker, EimUdpOneOutsidePortOwnedByPort) {
  auto cfg = default_config();
  cfg.udp_endpoint_independent = true;
  Workers ws(2, cfg);
  std::mt19937_64 rng(4242);
  std::set<uint16_t> owners_seen;
  for (int k = 0; k < 64; ++k) {
    const uint32_t in_ip = random_inside(rng);
    const uint16_t iport = random_port(rng);
    const uint32_t dst1 = random_remote(rng);
    const uint32_t dst2 = dst1 ^ 0x100;
    const uint16_t rport1 = 53, rport2 = 3478;

    // First destination via worker 0, second via worker 1: both end up on the same owner.
    uint16_t owner = 0xffff;
    uint16_t oport = 0;
    int sent = 0;
    for (auto [rx, dst, rport] :
         {std::tuple{uint16_t{0}, dst1, rport1}, std::tuple{uint16_t{1}, dst2, rport2}}) {
      Frame f(Packet().ipv4(in_ip, dst).udp(iport, rport).payload("stun").build());
      Result r = ws.send(rx, f);
      uint16_t w = rx;
      if (r.verdict == Verdict::Handoff) {
        ASSERT_NE(r.worker, rx);
        w = r.worker;
        r = ws.send(w, f);
      }
      ASSERT_EQ(r.verdict, Verdict::ToOutside);
      const Parsed o = parse(f.bytes());
      if (sent++ == 0) {
        owner = w;
        oport = o.sport;
      }
      ASSERT_EQ(w, owner) << "both destinations map through the same owner";
      ASSERT_EQ(o.sport, oport) << "endpoint-independent mapping";
    }
    owners_seen.insert(owner);
    EXPECT_EQ(oport % 2, owner) << "EIM outside ports are owned by port % workers";
    EXPECT_EQ(ws.at(0).rss_worker(dst1, ip(kOutside), rport1, oport, kProtoUdp), owner);

    // Replies from either destination: the other worker hands off by port; the owner translates.
    const uint16_t other = static_cast<uint16_t>(1 - owner);
    for (auto [dst, rport] : {std::pair{dst1, rport1}, std::pair{dst2, rport2}}) {
      Frame b(Packet().ipv4(dst, kOutside).udp(rport, oport).payload("resp").build());
      const uint64_t flows_other = ws.at(other).active_flows();
      Result r = ws.send(other, b);
      ASSERT_EQ(r.verdict, Verdict::Handoff);
      ASSERT_EQ(r.worker, owner);
      EXPECT_EQ(ws.at(other).active_flows(), flows_other);
      r = ws.send(owner, b);
      ASSERT_EQ(r.verdict, Verdict::ToInside);
      const Parsed ro = parse(b.bytes());
      EXPECT_EQ(ro.ip_dst, in_ip);
      EXPECT_EQ(ro.dport, iport);
      EXPECT_TRUE(l4_checksum_ok(b.bytes()));
    }
    // Filtering stays address+port dependent: an unknown sender is dropped by the owner.
    Frame x(Packet().ipv4(dst1 ^ 0x200, kOutside).udp(rport1, oport).payload("x").build());
    EXPECT_EQ(ws.send(owner, x).verdict, Verdict::Drop);
  }
  EXPECT_EQ(owners_seen.size(), 2u) << "64 sockets should spread over both workers";
  EXPECT_EQ(ws.flows(), 128u);
}

// --- fragments -----------------------------------------------------------------------------------

// Finds a UDP tuple whose NIC owner is `owner`.
struct Tuple {
  uint32_t in_ip, remote;
  uint16_t iport, rport;
};
Tuple tuple_owned_by(const Workers& ws, uint16_t owner, std::mt19937_64& rng) {
  for (;;) {
    Tuple t{random_inside(rng), random_remote(rng), random_port(rng), random_port(rng)};
    if (ws.nic_l4(t.in_ip, t.remote, t.iport, t.rport) == owner) return t;
  }
}

TEST(MultiWorker, FragmentsFollowTheirFirstToTheOwner) {
  Workers ws(2);
  std::mt19937_64 rng(31337);
  for (uint16_t owner : {uint16_t{0}, uint16_t{1}}) {
    SCOPED_TRACE(owner);
    const uint16_t first_rx = static_cast<uint16_t>(1 - owner);  // NIC hashed the fragments there
    const Tuple t = tuple_owned_by(ws, owner, rng);
    const Bytes whole = Packet()
                            .ipv4(t.in_ip, t.remote)
                            .id(0x4242)
                            .udp(t.iport, t.rport)
                            .payload_fill(1000)
                            .build();
    const std::vector<Bytes> frags = fragment(whole, 400);
    ASSERT_EQ(frags.size(), 3u);

    const uint64_t translated_before = ws.event(owner, Event::FragmentsTranslated);
    std::vector<Bytes> out;
    for (size_t i = 0; i < frags.size(); ++i) {
      Frame f(frags[i]);
      Result r = ws.send(first_rx, f);
      ASSERT_EQ(r.verdict, Verdict::Handoff) << "fragment " << i;
      ASSERT_EQ(r.worker, owner);
      if (i == 0) {
        EXPECT_FALSE(f.pkt.meta.frag_ports_valid) << "the first fragment carries its own ports";
      } else {
        ASSERT_TRUE(f.pkt.meta.frag_ports_valid);
        EXPECT_EQ(f.pkt.meta.frag_sport, net16(t.iport));
        EXPECT_EQ(f.pkt.meta.frag_dport, net16(t.rport));
      }
      r = ws.send(owner, f);
      ASSERT_EQ(r.verdict, Verdict::ToOutside) << "fragment " << i;
      EXPECT_FALSE(f.pkt.meta.frag_ports_valid) << "meta consumed";
      const Parsed o = parse(f.bytes());
      EXPECT_EQ(o.ip_src, ip(kOutside));
      EXPECT_TRUE(ip_checksum_ok(f.bytes()));
      out.push_back(f.bytes());
    }
    // Worker 0 holds the flow of the first round (owner 0); the non-owner creates none.
    EXPECT_EQ(ws.at(first_rx).active_flows(), owner == 1 ? 1u : 0u) << "no flow at the non-owner";
    EXPECT_EQ(ws.flows(), owner + 1u);
    EXPECT_EQ(ws.event(owner, Event::FragmentsTranslated), translated_before + 3);
    const auto joined = reassemble(out);
    ASSERT_TRUE(joined.has_value());
    const Parsed j = parse(*joined);
    EXPECT_EQ(j.ip_src, ip(kOutside));
    EXPECT_EQ(j.dport, t.rport);
    EXPECT_TRUE(l4_checksum_ok(*joined));
    const uint16_t oport = j.sport;
    EXPECT_EQ(ws.nic_l4(t.remote, ip(kOutside), t.rport, oport), owner);

    // The fragmented reply also lands (NIC: L3 hash) on the wrong worker and follows its first.
    const Bytes reply =
        Packet().ipv4(t.remote, kOutside).id(0x5151).udp(t.rport, oport).payload_fill(900).build();
    std::vector<Bytes> in;
    for (const Bytes& fr : fragment(reply, 304)) {
      Frame f(fr);
      Result r = ws.send(first_rx, f);
      ASSERT_EQ(r.verdict, Verdict::Handoff);
      ASSERT_EQ(r.worker, owner);
      r = ws.send(owner, f);
      ASSERT_EQ(r.verdict, Verdict::ToInside);
      in.push_back(f.bytes());
    }
    const auto joined_in = reassemble(in);
    ASSERT_TRUE(joined_in.has_value());
    const Parsed ji = parse(*joined_in);
    EXPECT_EQ(ji.ip_dst, t.in_ip);
    EXPECT_EQ(ji.dport, t.iport);
    EXPECT_TRUE(l4_checksum_ok(*joined_in));
  }
  EXPECT_EQ(ws.flows(), 2u);
}

// A later fragment that overtook its first is held by the worker that saw it, then released as a
// handoff (with the first's ports) once the first fragment shows that another worker owns it.
TEST(MultiWorker, HeldFragmentReleasedAsHandoff) {
  Workers ws(2);
  std::mt19937_64 rng(8);
  const uint16_t owner = 1;
  const Tuple t = tuple_owned_by(ws, owner, rng);
  const std::vector<Bytes> frags = fragment(
      Packet().ipv4(t.in_ip, t.remote).id(7).udp(t.iport, t.rport).payload_fill(600).build(), 304);
  ASSERT_EQ(frags.size(), 2u);
  Frame later(frags[1]);
  ASSERT_EQ(ws.send(0, later).verdict, Verdict::Held);
  EXPECT_EQ(ws.event(0, Event::FragmentsHeld), 1u);
  Frame first(frags[0]);
  Result r = ws.send(0, first);
  ASSERT_EQ(r.verdict, Verdict::Handoff);
  ASSERT_EQ(r.worker, owner);

  engine::PacketBuf* rel[4];
  Result rres[4];
  ASSERT_EQ(ws.at(0).pop_released(rel, rres, 4, ws.now_ns()), 1u);
  ASSERT_EQ(rel[0], &later.pkt);
  ASSERT_EQ(rres[0].verdict, Verdict::Handoff);
  ASSERT_EQ(rres[0].worker, owner);
  ASSERT_TRUE(later.pkt.meta.frag_ports_valid);

  ASSERT_EQ(ws.send(owner, first).verdict, Verdict::ToOutside);
  ASSERT_EQ(ws.send(owner, later).verdict, Verdict::ToOutside);
  const auto joined = reassemble({first.bytes(), later.bytes()});
  ASSERT_TRUE(joined.has_value());
  EXPECT_EQ(parse(*joined).ip_src, ip(kOutside));
  EXPECT_TRUE(l4_checksum_ok(*joined));
  EXPECT_EQ(ws.at(0).active_flows(), 0u);
}

// A handed-off later fragment whose flow the owner does not have (it never got the first) is
// dropped, never translated with stale ports.
TEST(MultiWorker, HandedOffFragmentWithoutFlowDropped) {
  Workers ws(2);
  std::mt19937_64 rng(9);
  const Tuple t = tuple_owned_by(ws, 1, rng);
  const std::vector<Bytes> frags = fragment(
      Packet().ipv4(t.in_ip, t.remote).id(9).udp(t.iport, t.rport).payload_fill(600).build(), 304);
  Frame first(frags[0]);
  ASSERT_EQ(ws.send(0, first).verdict, Verdict::Handoff);
  Frame later(frags[1]);
  ASSERT_EQ(ws.send(0, later).verdict, Verdict::Handoff);
  // The first fragment got lost on the way; the later one reaches the owner alone.
  const uint64_t drops = ws.drop(1, DropReason::FragNoFirst);
  const Result r = ws.send(1, later);
  EXPECT_EQ(r.verdict, Verdict::Drop);
  EXPECT_EQ(r.reason, DropReason::FragNoFirst);
  EXPECT_EQ(ws.drop(1, DropReason::FragNoFirst), drops + 1);
  EXPECT_EQ(ws.flows(), 0u);
}

// --- capacity: the workers' RSS shares of the port range add up to the whole range -------------

TEST(MultiWorker, PortCapacityTowardOneDestinationIsTheWholeRange) {
  auto cfg = default_config();
  cfg.port_min = 1024;
  cfg.port_max = 1279;
  Workers ws(2, cfg);
  const uint32_t remote = ip(kServer);
  const uint16_t rport = 443;

  // Each worker's share: the ports whose reply the NIC would deliver to it.
  std::vector<uint32_t> share(2, 0);
  for (uint32_t p = cfg.port_min; p <= cfg.port_max; ++p) {
    ++share[ws.nic_l4(remote, ip(kOutside), rport, static_cast<uint16_t>(p))];
  }
  ASSERT_EQ(share[0] + share[1], 256u);

  std::mt19937_64 rng(2024);
  std::vector<std::set<uint16_t>> ports(2);
  std::vector<uint64_t> full(2, 0);
  for (int k = 0; k < 20000 && (full[0] < 3 || full[1] < 3); ++k) {
    const uint32_t in_ip = random_inside(rng);
    const uint16_t iport = random_port(rng);
    Frame f(Packet().ipv4(in_ip, remote).udp(iport, rport).payload("x").build());
    Result r = ws.send(0, f);
    uint16_t w = 0;
    if (r.verdict == Verdict::Handoff) {
      w = r.worker;
      r = ws.send(w, f);
    }
    if (r.verdict == Verdict::Drop) {
      ASSERT_EQ(r.reason, DropReason::PortAllocation);
      ++full[w];
      continue;
    }
    ASSERT_EQ(r.verdict, Verdict::ToOutside);
    const uint16_t oport = parse(f.bytes()).sport;
    ASSERT_GE(oport, 1024);
    ASSERT_LE(oport, 1279);
    ASSERT_EQ(ws.nic_l4(remote, ip(kOutside), rport, oport), w);
    ASSERT_TRUE(ports[w].insert(oport).second) << "port " << oport << " given twice";
  }
  for (uint16_t w = 0; w < 2; ++w) {
    SCOPED_TRACE(w);
    EXPECT_GE(full[w], 3u) << "worker never ran out of ports";
    EXPECT_EQ(ports[w].size(), share[w]) << "worker fills exactly its RSS share";
    EXPECT_EQ(ws.at(w).active_flows(), share[w]);
    EXPECT_EQ(ws.event(w, Event::ErrorPortAllocation), full[w]);
    EXPECT_EQ(ws.drop(w, DropReason::PortAllocation), full[w]);
  }
  EXPECT_EQ(ports[0].size() + ports[1].size(), 256u);
  // A different destination port is a different tuple: capacity is per destination.
  Frame other(Packet().ipv4(kInsideHost, remote).udp(1, 80).payload("x").build());
  Result r = ws.send(0, other);
  if (r.verdict == Verdict::Handoff) r = ws.send(r.worker, other);
  EXPECT_EQ(r.verdict, Verdict::ToOutside);
}

}  // namespace
}  // namespace eipgate::testing

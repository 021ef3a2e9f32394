// TCP through the NAT: handshake, data, every way a connection closes, timeouts per state
// (injected clock), SYN retransmission and reopen, RSTs for unknown segments, MSS clamping.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Event;
using engine::FlowView;
using engine::TcpState;
using engine::Verdict;

constexpr uint16_t kInsidePort = 40000;
constexpr uint16_t kServerPort = 443;
constexpr uint32_t kIsn = 1000;  // inside's initial sequence number
constexpr uint32_t kServerIsn = 700000;

// One TCP connection kInsideHost:40000 -> kServer:443 (by default) through a harness. Learns the
// outside port from the first translated outbound segment.
class Conn {
 public:
  explicit Conn(EngineHarness& h, const char* inside = kInsideHost, uint16_t iport = kInsidePort,
                const char* server = kServer, uint16_t sport = kServerPort)
      : h_(h), inside_(inside), server_(server), iport_(iport), sport_(sport) {}

  [[nodiscard]] Bytes seg_out(uint8_t flags, uint32_t seq = kIsn, uint32_t ack = 0,
                              std::string_view data = {}) const {
    return Packet()
        .ipv4(inside_, server_)
        .tcp(iport_, sport_, flags)
        .seq(seq)
        .ack(ack)
        .payload(data)
        .build();
  }
  [[nodiscard]] Bytes seg_in(uint8_t flags, uint32_t seq = kServerIsn, uint32_t ack = 0,
                             std::string_view data = {}) const {
    return Packet()
        .ipv4(server_, kOutside)
        .tcp(sport_, oport_, flags)
        .seq(seq)
        .ack(ack)
        .payload(data)
        .build();
  }

  Sent out(uint8_t flags, uint32_t seq = kIsn, uint32_t ack = 0, std::string_view data = {}) {
    Sent s = h_.send(seg_out(flags, seq, ack, data));
    if (s.res.verdict == Verdict::ToOutside && oport_ == 0) oport_ = parse(s.out).sport;
    return s;
  }
  Sent in(uint8_t flags, uint32_t seq = kServerIsn, uint32_t ack = 0, std::string_view data = {}) {
    return h_.send(seg_in(flags, seq, ack, data));
  }

  // SYN out, SYN-ACK in, ACK out; every segment must be translated.
  void open() {
    ASSERT_EQ(out(kTcpSyn, kIsn).res.verdict, Verdict::ToOutside);
    ASSERT_NE(oport_, 0);
    ASSERT_EQ(in(kTcpSyn | kTcpAck, kServerIsn, kIsn + 1).res.verdict, Verdict::ToInside);
    ASSERT_EQ(out(kTcpAck, kIsn + 1, kServerIsn + 1).res.verdict, Verdict::ToOutside);
  }

  [[nodiscard]] std::optional<FlowView> flow() const {
    std::optional<FlowView> found;
    h_.engine().for_each_flow(
        [&](const FlowView& f) {
          if (f.proto == kProtoTcp && f.inside_ip == ip(inside_) && f.inside_port == iport_ &&
              f.remote_ip == ip(server_) && f.remote_port == sport_) {
            found = f;
          }
        },
        h_.now_ns());
    return found;
  }
  [[nodiscard]] std::optional<TcpState> state() const {
    auto f = flow();
    return f ? std::optional<TcpState>(f->tcp_state) : std::nullopt;
  }
  [[nodiscard]] uint16_t oport() const { return oport_; }

 private:
  EngineHarness& h_;
  const char* inside_;
  const char* server_;
  uint16_t iport_;
  uint16_t sport_;
  uint16_t oport_ = 0;
};

uint32_t expire_all(EngineHarness& h) { return h.engine().expire(h.now_ns(), 1u << 20); }

// ---------------------------------------------------------------------------------------------
// Opening

TEST(TcpOpen, HandshakeEstablishesAndCounts) {
  EngineHarness h;
  Conn c(h);
  EXPECT_EQ(c.out(kTcpSyn).res.verdict, Verdict::ToOutside);
  EXPECT_EQ(c.state(), TcpState::SynSent);
  EXPECT_EQ(h.events(Event::ConnectionAttemptCount), 1u);
  EXPECT_EQ(h.events(Event::ConnectionEstablishedCount), 0u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 1u);

  EXPECT_EQ(c.in(kTcpSyn | kTcpAck, kServerIsn, kIsn + 1).res.verdict, Verdict::ToInside);
  EXPECT_EQ(c.state(), TcpState::Established);
  EXPECT_EQ(h.events(Event::ConnectionEstablishedCount), 1u);

  EXPECT_EQ(c.out(kTcpAck, kIsn + 1, kServerIsn + 1).res.verdict, Verdict::ToOutside);
  EXPECT_EQ(c.state(), TcpState::Established);
  EXPECT_EQ(h.events(Event::ConnectionAttemptCount), 1u);
  EXPECT_EQ(h.events(Event::ConnectionEstablishedCount), 1u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 1u);
  EXPECT_EQ(h.engine().active_flows(), 1u);

  auto f = c.flow();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->proto, kProtoTcp);
  EXPECT_EQ(f->inside_ip, ip(kInsideHost));
  EXPECT_EQ(f->inside_port, kInsidePort);
  EXPECT_EQ(f->remote_ip, ip(kServer));
  EXPECT_EQ(f->remote_port, kServerPort);
  EXPECT_EQ(f->outside_ip, ip(kOutside));
  EXPECT_EQ(f->outside_port, c.oport());
  EXPECT_EQ(f->idle_ms, 0u);
  EXPECT_EQ(f->bytes_out, 80u);  // SYN + ACK, 40 bytes each
  EXPECT_EQ(f->bytes_in, 40u);
}

TEST(TcpOpen, SynAckFromOutsideBeforeAnySynSeenIsNotForwarded) {
  // Outside -> inside never creates state, whatever the flags.
  EngineHarness h;
  for (uint8_t flags :
       {uint8_t{kTcpSyn}, uint8_t{kTcpSyn | kTcpAck}, uint8_t{kTcpAck}, uint8_t{kTcpRst}}) {
    SCOPED_TRACE(static_cast<int>(flags));
    const uint64_t before = h.drops(DropReason::NoFlowOutside);
    Sent s = h.send(Packet().ipv4(kServer, kOutside).tcp(443, 5555, flags).build());
    EXPECT_EQ(s.res.verdict, Verdict::Drop);
    EXPECT_EQ(s.res.reason, DropReason::NoFlowOutside);
    EXPECT_EQ(h.drops(DropReason::NoFlowOutside), before + 1);
  }
  EXPECT_EQ(h.engine().active_flows(), 0u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 0u);
  EXPECT_EQ(h.events(Event::ConnectionAttemptCount), 0u);
  EXPECT_EQ(h.events(Event::TcpRstSentToInside), 0u);
}

TEST(TcpOpen, UnsolicitedSynToAMappedPortFromAnotherRemoteIsDropped) {
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  // Same outside port, but a different remote address, then a different remote port.
  Sent a = h.send(Packet().ipv4(kServer2, kOutside).tcp(kServerPort, c.oport(), kTcpSyn).build());
  EXPECT_EQ(a.res.verdict, Verdict::Drop);
  EXPECT_EQ(a.res.reason, DropReason::NoFlowOutside);
  Sent b = h.send(Packet().ipv4(kServer, kOutside).tcp(8443, c.oport(), kTcpSyn).build());
  EXPECT_EQ(b.res.verdict, Verdict::Drop);
  EXPECT_EQ(b.res.reason, DropReason::NoFlowOutside);
  EXPECT_EQ(h.drops(DropReason::NoFlowOutside), 2u);
  EXPECT_EQ(h.engine().active_flows(), 1u);
}

TEST(TcpOpen, RetransmittedSynReusesTheMapping) {
  EngineHarness h;
  Conn c(h);
  Sent first = c.out(kTcpSyn, kIsn);
  ASSERT_EQ(first.res.verdict, Verdict::ToOutside);
  h.advance_s(1);
  Sent again = c.out(kTcpSyn, kIsn);
  ASSERT_EQ(again.res.verdict, Verdict::ToOutside);
  h.advance_s(2);
  Sent third = c.out(kTcpSyn, kIsn);
  ASSERT_EQ(third.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(first.out, again.out);  // byte for byte the same translation
  EXPECT_EQ(first.out, third.out);
  EXPECT_EQ(h.engine().active_flows(), 1u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 1u);
  EXPECT_EQ(h.events(Event::ConnectionAttemptCount), 1u);
  EXPECT_EQ(h.events(Event::TcpReopened), 0u);
  EXPECT_EQ(c.state(), TcpState::SynSent);
}

// ---------------------------------------------------------------------------------------------
// Data

TEST(TcpData, BothWaysTranslatedExactly) {
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  const std::string req = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

  Sent o = c.out(kTcpAck | kTcpPsh, kIsn + 1, kServerIsn + 1, req);
  ASSERT_EQ(o.res.verdict, Verdict::ToOutside);
  // The builder computes checksums from scratch; the engine's incremental update must agree.
  const Bytes want_out = Packet()
                             .ipv4(kOutside, kServer)
                             .ttl(63)
                             .tcp(c.oport(), kServerPort, kTcpAck | kTcpPsh)
                             .seq(kIsn + 1)
                             .ack(kServerIsn + 1)
                             .payload(req)
                             .build();
  EXPECT_EQ(hex(o.out), hex(want_out));
  EXPECT_TRUE(ip_checksum_ok(o.out));
  EXPECT_TRUE(l4_checksum_ok(o.out));

  Sent i =
      c.in(kTcpAck | kTcpPsh, kServerIsn + 1, kIsn + 1 + static_cast<uint32_t>(req.size()), resp);
  ASSERT_EQ(i.res.verdict, Verdict::ToInside);
  const Bytes want_in = Packet()
                            .ipv4(kServer, kInsideHost)
                            .ttl(63)
                            .tcp(kServerPort, kInsidePort, kTcpAck | kTcpPsh)
                            .seq(kServerIsn + 1)
                            .ack(kIsn + 1 + static_cast<uint32_t>(req.size()))
                            .payload(resp)
                            .build();
  EXPECT_EQ(hex(i.out), hex(want_in));
  EXPECT_TRUE(ip_checksum_ok(i.out));
  EXPECT_TRUE(l4_checksum_ok(i.out));

  auto f = c.flow();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->bytes_out, 80u + 40u + req.size());
  EXPECT_EQ(f->bytes_in, 40u + 40u + resp.size());
  EXPECT_EQ(h.events(Event::PacketsOutToDestination), 3u);
  EXPECT_EQ(h.events(Event::PacketsOutToSource), 2u);
  EXPECT_EQ(h.events(Event::BytesOutToDestination), 80u + 40u + req.size());
  EXPECT_EQ(h.events(Event::BytesOutToSource), 40u + 40u + resp.size());
}

TEST(TcpData, ManySegmentsKeepChecksumsValid) {
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  uint32_t seq = kIsn + 1;
  for (uint32_t n = 0; n < 64; ++n) {
    std::string data(n * 7 + 1, static_cast<char>('a' + n % 26));
    Sent o = c.out(kTcpAck, seq, kServerIsn + 1, data);
    ASSERT_EQ(o.res.verdict, Verdict::ToOutside);
    ASSERT_TRUE(ip_checksum_ok(o.out));
    ASSERT_TRUE(l4_checksum_ok(o.out));
    Parsed p = parse(o.out);
    EXPECT_EQ(p.seq, seq);
    EXPECT_EQ(p.sport, c.oport());
    seq += static_cast<uint32_t>(data.size());
    Sent i = c.in(kTcpAck, kServerIsn + 1, seq, data);
    ASSERT_EQ(i.res.verdict, Verdict::ToInside);
    ASSERT_TRUE(ip_checksum_ok(i.out));
    ASSERT_TRUE(l4_checksum_ok(i.out));
    EXPECT_EQ(parse(i.out).dport, kInsidePort);
  }
}

// ---------------------------------------------------------------------------------------------
// Closing: table of flag sequences after an established handshake.

struct Step {
  bool from_inside;
  uint8_t flags;
};

struct CloseCase {
  const char* name;
  std::vector<Step> steps;
  std::vector<TcpState> states;  // state after each step
};

std::vector<CloseCase> close_cases() {
  constexpr uint8_t kFinAck = kTcpFin | kTcpAck;
  using S = TcpState;
  return {
      {"InsideFirst",
       {{true, kFinAck}, {false, kTcpAck}, {false, kFinAck}, {true, kTcpAck}},
       {S::FinWait, S::FinWait, S::TimeWait, S::TimeWait}},
      {"OutsideFirst",
       {{false, kFinAck}, {true, kTcpAck}, {true, kFinAck}, {false, kTcpAck}},
       {S::FinWait, S::FinWait, S::TimeWait, S::TimeWait}},
      {"Simultaneous",
       {{true, kFinAck}, {false, kFinAck}, {true, kTcpAck}, {false, kTcpAck}},
       {S::FinWait, S::TimeWait, S::TimeWait, S::TimeWait}},
      {"RstFromInside", {{true, kTcpRst}}, {S::Reset}},
      {"RstAckFromInside", {{true, kTcpRst | kTcpAck}}, {S::Reset}},
      {"RstFromOutside", {{false, kTcpRst}}, {S::Reset}},
      {"RstAfterFinFromOutside",
       {{true, kFinAck}, {false, kTcpRst | kTcpAck}},
       {S::FinWait, S::Reset}},
  };
}

class TcpClose : public ::testing::TestWithParam<CloseCase> {};

TEST_P(TcpClose, ReachesClosedStateAndExpiresAfterTimeWait) {
  const CloseCase& tc = GetParam();
  engine::EngineConfig cfg = default_config();
  const uint32_t tw = cfg.timeouts.tcp_time_wait_s;
  EngineHarness h(cfg);
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  ASSERT_EQ(tc.steps.size(), tc.states.size());
  for (size_t k = 0; k < tc.steps.size(); ++k) {
    SCOPED_TRACE(k);
    const Step& s = tc.steps[k];
    Sent r = s.from_inside ? c.out(s.flags, kIsn + 1, kServerIsn + 1)
                           : c.in(s.flags, kServerIsn + 1, kIsn + 1);
    ASSERT_EQ(r.res.verdict, s.from_inside ? Verdict::ToOutside : Verdict::ToInside);
    Parsed p = parse(r.out);
    EXPECT_EQ(p.tcp_flags, s.flags);
    EXPECT_TRUE(ip_checksum_ok(r.out));
    EXPECT_TRUE(l4_checksum_ok(r.out));
    EXPECT_EQ(c.state(), tc.states[k]);
  }
  const uint64_t closed = h.events(Event::FlowsClosed);
  const uint64_t expired = h.events(Event::FlowsExpired);
  const uint64_t idle = h.events(Event::IdleTimeoutCount);

  // Kept for stray segments for tcp_time_wait_s after the last one, not a moment longer.
  h.advance_s(tw - 1);
  EXPECT_EQ(expire_all(h), 0u);
  EXPECT_TRUE(c.flow().has_value());
  h.advance_s(2);
  EXPECT_EQ(expire_all(h), 1u);
  EXPECT_FALSE(c.flow().has_value());
  EXPECT_EQ(h.engine().active_flows(), 0u);
  // A connection that closed is not an idle timeout (NAT Gateway's IdleTimeoutCount counts
  // connections that went idle without closing).
  EXPECT_EQ(h.events(Event::FlowsClosed), closed + 1);
  EXPECT_EQ(h.events(Event::FlowsExpired), expired + 1);
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), idle);

  Sent late = c.in(kTcpAck, kServerIsn + 2, kIsn + 2);
  EXPECT_EQ(late.res.verdict, Verdict::Drop);
  EXPECT_EQ(late.res.reason, DropReason::NoFlowOutside);
}

TEST_P(TcpClose, SynFromInsideReopensTheClosedFlowOnTheSameMapping) {
  const CloseCase& tc = GetParam();
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  for (const Step& s : tc.steps) {
    ASSERT_NE(s.from_inside ? c.out(s.flags).res.verdict : c.in(s.flags).res.verdict,
              Verdict::Drop);
  }
  const TcpState closed_state = tc.states.back();
  ASSERT_TRUE(closed_state == TcpState::TimeWait || closed_state == TcpState::Reset);
  const uint16_t oport = c.oport();
  const uint64_t attempts = h.events(Event::ConnectionAttemptCount);
  const uint64_t established = h.events(Event::ConnectionEstablishedCount);
  h.advance_s(5);

  // A SYN-ACK or a bare SYN from outside does not reopen.
  EXPECT_EQ(c.in(kTcpSyn | kTcpAck).res.verdict, Verdict::ToInside);
  EXPECT_EQ(c.state(), closed_state);
  EXPECT_EQ(h.events(Event::TcpReopened), 0u);

  Sent syn = c.out(kTcpSyn, kIsn + 100000);
  ASSERT_EQ(syn.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(syn.out).sport, oport);
  EXPECT_EQ(c.state(), TcpState::SynSent);
  EXPECT_EQ(h.events(Event::TcpReopened), 1u);
  EXPECT_EQ(h.events(Event::ConnectionAttemptCount), attempts + 1);
  EXPECT_EQ(h.events(Event::FlowsCreated), 1u);
  EXPECT_EQ(h.engine().active_flows(), 1u);

  ASSERT_EQ(c.in(kTcpSyn | kTcpAck, kServerIsn, kIsn + 100001).res.verdict, Verdict::ToInside);
  EXPECT_EQ(c.state(), TcpState::Established);
  EXPECT_EQ(h.events(Event::ConnectionEstablishedCount), established + 1);

  // Back on the established timer: outlives the time-wait timeout.
  h.advance_s(default_config().timeouts.tcp_time_wait_s + 1);
  expire_all(h);
  EXPECT_EQ(c.state(), TcpState::Established);
}

INSTANTIATE_TEST_SUITE_P(Engine, TcpClose, ::testing::ValuesIn(close_cases()),
                         [](const ::testing::TestParamInfo<CloseCase>& i) {
                           return std::string(i.param.name);
                         });

// ---------------------------------------------------------------------------------------------
// Timeouts

TEST(TcpTimeout, EstablishedIdleExpiryThenLateSegments) {
  engine::EngineConfig cfg = default_config();
  ASSERT_EQ(cfg.timeouts.tcp_established_s, 350u);
  EngineHarness h(cfg);
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());

  h.advance_s(349);
  EXPECT_EQ(expire_all(h), 0u);
  ASSERT_TRUE(c.flow().has_value());
  EXPECT_EQ(c.state(), TcpState::Established);
  EXPECT_EQ(c.flow()->idle_ms, 349'000u);
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 0u);

  h.advance_s(2);
  EXPECT_EQ(expire_all(h), 1u);
  EXPECT_FALSE(c.flow().has_value());
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 1u);
  EXPECT_EQ(h.events(Event::FlowsExpired), 1u);
  EXPECT_EQ(h.events(Event::FlowsClosed), 0u);
  EXPECT_EQ(h.engine().active_flows(), 0u);

  // Late reply from the server: nothing lets it in.
  Sent late_in = c.in(kTcpAck | kTcpPsh, kServerIsn + 1, kIsn + 1, "late");
  EXPECT_EQ(late_in.res.verdict, Verdict::Drop);
  EXPECT_EQ(late_in.res.reason, DropReason::NoFlowOutside);
  EXPECT_EQ(h.drops(DropReason::NoFlowOutside), 1u);

  // Late data from the inside host: it learns the connection is gone from a RST.
  Sent late_out = c.out(kTcpAck | kTcpPsh, kIsn + 1, kServerIsn + 1, "still there?");
  ASSERT_EQ(late_out.res.verdict, Verdict::ToInside);
  Parsed r = parse(late_out.out);
  EXPECT_EQ(r.ip_src, ip(kServer));
  EXPECT_EQ(r.ip_dst, ip(kInsideHost));
  EXPECT_EQ(r.sport, kServerPort);
  EXPECT_EQ(r.dport, kInsidePort);
  EXPECT_EQ(r.tcp_flags, kTcpRst);
  EXPECT_EQ(r.seq, kServerIsn + 1);
  EXPECT_TRUE(ip_checksum_ok(late_out.out));
  EXPECT_TRUE(l4_checksum_ok(late_out.out));
  EXPECT_EQ(h.drops(DropReason::TcpNoFlowNonSyn), 1u);
  EXPECT_EQ(h.events(Event::TcpRstSentToInside), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);  // a non-SYN never creates a flow
}

TEST(TcpTimeout, UnansweredSynExpiresAtTransitoryTimeout) {
  engine::EngineConfig cfg = default_config();
  const uint32_t tr = cfg.timeouts.tcp_transitory_s;
  EngineHarness h(cfg);
  Conn c(h);
  ASSERT_EQ(c.out(kTcpSyn).res.verdict, Verdict::ToOutside);
  h.advance_s(tr - 1);
  EXPECT_EQ(expire_all(h), 0u);
  EXPECT_EQ(c.state(), TcpState::SynSent);
  h.advance_s(2);
  EXPECT_EQ(expire_all(h), 1u);
  EXPECT_FALSE(c.flow().has_value());
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 1u);
  EXPECT_EQ(h.events(Event::ConnectionEstablishedCount), 0u);
}

TEST(TcpTimeout, HalfClosedUsesTransitoryTimeout) {
  engine::EngineConfig cfg = default_config();
  cfg.timeouts.tcp_transitory_s = 100;  // distinct from every other timeout
  EngineHarness h(cfg);
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  ASSERT_EQ(c.out(kTcpFin | kTcpAck, kIsn + 1, kServerIsn + 1).res.verdict, Verdict::ToOutside);
  ASSERT_EQ(c.state(), TcpState::FinWait);
  h.advance_s(99);
  expire_all(h);
  EXPECT_EQ(c.state(), TcpState::FinWait);
  h.advance_s(2);
  EXPECT_EQ(expire_all(h), 1u);
  EXPECT_FALSE(c.flow().has_value());
}

TEST(TcpTimeout, TimeoutsAreConfigurable) {
  engine::EngineConfig cfg = default_config();
  cfg.timeouts.tcp_established_s = 30;
  cfg.timeouts.tcp_time_wait_s = 5;
  EngineHarness h(cfg);
  Conn a(h, kInsideHost, 40001);
  Conn b(h, kInsideHost, 40002);
  ASSERT_NO_FATAL_FAILURE(a.open());
  ASSERT_NO_FATAL_FAILURE(b.open());
  ASSERT_EQ(b.out(kTcpRst, kIsn + 1).res.verdict, Verdict::ToOutside);
  h.advance_s(6);
  expire_all(h);
  EXPECT_TRUE(a.flow().has_value());
  EXPECT_FALSE(b.flow().has_value());
  h.advance_s(25);
  expire_all(h);
  EXPECT_FALSE(a.flow().has_value());
}

TEST(TcpTimeout, TrafficEitherWayRefreshesTheIdleTimer) {
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  h.advance_s(300);
  ASSERT_EQ(c.out(kTcpAck, kIsn + 1, kServerIsn + 1, "x").res.verdict, Verdict::ToOutside);
  h.advance_s(300);  // 600 s since the handshake, 300 s since the data
  expire_all(h);
  ASSERT_TRUE(c.flow().has_value());
  EXPECT_EQ(c.flow()->idle_ms, 300'000u);
  ASSERT_EQ(c.in(kTcpAck, kServerIsn + 1, kIsn + 2, "y").res.verdict, Verdict::ToInside);
  h.advance_s(349);
  expire_all(h);
  EXPECT_EQ(c.state(), TcpState::Established);
  h.advance_s(2);
  expire_all(h);
  EXPECT_FALSE(c.flow().has_value());
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 1u);
}

// A refreshed flow must not wait behind flows queued after it: the LRU list is kept in queue-time
// order (a packet re-queues its flow at most once a second), so expiry is exact to 1 s.
TEST(TcpTimeout, RefreshedFlowQueuedBehindANewerOneExpiresOnTime) {
  EngineHarness h;
  Conn a(h, kInsideHost, 40001);
  Conn b(h, kInsideHost, 40002);
  ASSERT_NO_FATAL_FAILURE(a.open());  // t = 0
  h.advance_s(50);
  ASSERT_EQ(a.out(kTcpAck, kIsn + 1, kServerIsn + 1, "x").res.verdict,
            Verdict::ToOutside);  // t = 50
  h.advance_s(50);
  ASSERT_NO_FATAL_FAILURE(b.open());  // t = 100
  h.advance_s(250);                   // t = 350: a is examined and requeued behind b
  expire_all(h);
  EXPECT_TRUE(a.flow().has_value());
  h.advance_s(51);  // t = 401: a idle for 351 s, b for 301 s
  expire_all(h);
  EXPECT_FALSE(a.flow().has_value());
  EXPECT_TRUE(b.flow().has_value());
}

TEST(TcpTimeout, ExpiryAlsoRunsInsideBursts) {
  // No explicit expire(): the bounded per-burst work removes due flows.
  EngineHarness h;
  Conn c(h);
  ASSERT_NO_FATAL_FAILURE(c.open());
  h.advance_s(351);
  h.send(Packet().ipv4(kInsideHost2, kServer2).udp(1, 2).build());
  EXPECT_FALSE(c.flow().has_value());
  EXPECT_EQ(h.events(Event::IdleTimeoutCount), 1u);
}

// ---------------------------------------------------------------------------------------------
// RST for a non-SYN from inside without a flow (RFC 793 §3.4 reset generation)

struct RstCase {
  const char* name;
  uint8_t flags;
  uint32_t seq;
  uint32_t ack;
  std::string data;
  uint8_t want_flags;
  uint32_t want_seq;
  uint32_t want_ack;
};

class TcpRst : public ::testing::TestWithParam<RstCase> {};

TEST_P(TcpRst, RstBackToTheInsideHost) {
  const RstCase& tc = GetParam();
  EngineHarness h;
  const Bytes in = Packet()
                       .eth(mac("02:aa:00:00:00:01"), mac("02:bb:00:00:00:02"))
                       .ipv4(kInsideHost, kServer)
                       .ttl(17)
                       .tcp(kInsidePort, kServerPort, tc.flags)
                       .seq(tc.seq)
                       .ack(tc.ack)
                       .payload(tc.data)
                       .build();
  Sent s = h.send(in);
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  Parsed r = parse(s.out);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(mac_str(r.eth_src), "02:bb:00:00:00:02");
  EXPECT_EQ(mac_str(r.eth_dst), "02:aa:00:00:00:01");
  EXPECT_EQ(r.ip_src, ip(kServer));
  EXPECT_EQ(r.ip_dst, ip(kInsideHost));
  EXPECT_EQ(r.proto, kProtoTcp);
  EXPECT_EQ(r.total_length, 40);
  EXPECT_EQ(s.out.size(), 14u + 40u);
  EXPECT_GT(r.ttl, 1);
  EXPECT_EQ(r.sport, kServerPort);
  EXPECT_EQ(r.dport, kInsidePort);
  EXPECT_EQ(r.tcp_flags, tc.want_flags);
  EXPECT_EQ(r.seq, tc.want_seq);
  EXPECT_EQ(r.ack, tc.want_ack);
  EXPECT_EQ(r.tcp_data_offset, 5);
  EXPECT_TRUE(r.payload.empty());
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  EXPECT_EQ(h.drops(DropReason::TcpNoFlowNonSyn), 1u);
  EXPECT_EQ(h.events(Event::TcpRstSentToInside), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  EXPECT_EQ(h.events(Event::FlowsCreated), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Engine, TcpRst,
    ::testing::Values(
        // ACK set: RST with seq = the segment's ack, no ACK.
        RstCase{"Ack", kTcpAck, 5000, 9000, "", kTcpRst, 9000, 0},
        RstCase{"AckWithData", kTcpAck | kTcpPsh, 5000, 9000, "hello", kTcpRst, 9000, 0},
        RstCase{"FinAck", kTcpFin | kTcpAck, 5000, 0xfffffff0u, "", kTcpRst, 0xfffffff0u, 0},
        RstCase{"SynAck", kTcpSyn | kTcpAck, 5000, 77, "", kTcpRst, 77, 0},
        // No ACK: RST|ACK with seq 0 and ack = seq + segment length (SYN and FIN count one).
        RstCase{"NoFlags", 0, 5000, 0, "", kTcpRst | kTcpAck, 0, 5000},
        RstCase{"PshData", kTcpPsh, 5000, 0, "hello", kTcpRst | kTcpAck, 0, 5005},
        RstCase{"Fin", kTcpFin, 5000, 0, "", kTcpRst | kTcpAck, 0, 5001},
        RstCase{"FinData", kTcpFin | kTcpPsh, 5000, 0, "abc", kTcpRst | kTcpAck, 0, 5004},
        RstCase{"SeqWraps", kTcpPsh, 0xfffffffeu, 0, "abcd", kTcpRst | kTcpAck, 0, 2}),
    [](const ::testing::TestParamInfo<RstCase>& i) { return std::string(i.param.name); });

TEST(TcpRstUnknown, RstBehindVlanAndIpOptionsIsAPlainTwentyByteHeader) {
  EngineHarness h;
  const Bytes in = Packet()
                       .vlan(42)
                       .ipv4(kInsideHost, kServer)
                       .ip_options({1, 1, 1, 0})  // NOPs + EOL: 24-byte header in
                       .tcp(kInsidePort, kServerPort, kTcpAck | kTcpPsh)
                       .seq(10)
                       .ack(20)
                       .payload("data")
                       .build();
  Sent s = h.send(in);
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  Parsed r = parse(s.out);
  EXPECT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.vlan_ids, (std::vector<uint16_t>{42}));
  EXPECT_EQ(r.ihl, 5);
  EXPECT_EQ(r.total_length, 40);
  EXPECT_EQ(s.out.size(), 18u + 40u);
  EXPECT_EQ(r.ip_src, ip(kServer));
  EXPECT_EQ(r.ip_dst, ip(kInsideHost));
  EXPECT_EQ(r.sport, kServerPort);
  EXPECT_EQ(r.dport, kInsidePort);
  EXPECT_EQ(r.tcp_flags, kTcpRst);
  EXPECT_EQ(r.seq, 20u);
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

TEST(TcpRstUnknown, RstWithoutFlowIsDroppedSilently) {
  EngineHarness h;
  Sent s = h.send(
      Packet().ipv4(kInsideHost, kServer).tcp(kInsidePort, kServerPort, kTcpRst | kTcpAck).build());
  EXPECT_EQ(s.res.verdict, Verdict::Drop);
  EXPECT_EQ(s.res.reason, DropReason::TcpNoFlowNonSyn);
  EXPECT_EQ(h.drops(DropReason::TcpNoFlowNonSyn), 1u);
  EXPECT_EQ(h.events(Event::TcpRstSentToInside), 0u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
}

TEST(TcpRstUnknown, DisabledMeansPlainDrop) {
  engine::EngineConfig cfg = default_config();
  cfg.tcp_rst_unknown = false;
  EngineHarness h(cfg);
  for (uint8_t flags : {uint8_t{kTcpAck}, uint8_t{kTcpPsh}, uint8_t{kTcpFin | kTcpAck}}) {
    Sent s = h.send(Packet()
                        .ipv4(kInsideHost, kServer)
                        .tcp(kInsidePort, kServerPort, flags)
                        .payload("x")
                        .build());
    EXPECT_EQ(s.res.verdict, Verdict::Drop);
    EXPECT_EQ(s.res.reason, DropReason::TcpNoFlowNonSyn);
  }
  EXPECT_EQ(h.drops(DropReason::TcpNoFlowNonSyn), 3u);
  EXPECT_EQ(h.events(Event::TcpRstSentToInside), 0u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  // SYNs still open connections.
  EXPECT_EQ(
      h.send(Packet().ipv4(kInsideHost, kServer).tcp(kInsidePort, kServerPort, kTcpSyn).build())
          .res.verdict,
      Verdict::ToOutside);
}

// ---------------------------------------------------------------------------------------------
// MSS clamping

struct MssCase {
  const char* name;
  bool syn_out;          // SYN from inside; else SYN-ACK from outside
  Bytes options_before;  // options placed before the MSS option
  uint16_t mss;
  uint16_t want_mss;
};

class TcpMss : public ::testing::TestWithParam<MssCase> {};

TEST_P(TcpMss, ClampsSynsBothWays) {
  const MssCase& tc = GetParam();
  engine::EngineConfig cfg = default_config();
  cfg.tcp_mss_clamp = 1400;
  EngineHarness h(cfg);
  Conn c(h);
  Sent s;
  if (tc.syn_out) {
    s = h.send(Packet()
                   .ipv4(kInsideHost, kServer)
                   .tcp(kInsidePort, kServerPort, kTcpSyn)
                   .tcp_options(tc.options_before)
                   .mss(tc.mss)
                   .build());
    ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  } else {
    ASSERT_EQ(c.out(kTcpSyn).res.verdict, Verdict::ToOutside);
    ASSERT_EQ(h.events(Event::MssClamped), 0u);  // the SYN carried no MSS
    s = h.send(Packet()
                   .ipv4(kServer, kOutside)
                   .tcp(kServerPort, c.oport(), kTcpSyn | kTcpAck)
                   .tcp_options(tc.options_before)
                   .mss(tc.mss)
                   .build());
    ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  }
  Parsed p = parse(s.out);
  ASSERT_TRUE(p.mss.has_value());
  EXPECT_EQ(*p.mss, tc.want_mss);
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  EXPECT_EQ(h.events(Event::MssClamped), tc.mss != tc.want_mss ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Engine, TcpMss,
    ::testing::Values(
        MssCase{"Out1460", true, {}, 1460, 1400}, MssCase{"Out1200", true, {}, 1200, 1200},
        MssCase{"Out1400", true, {}, 1400, 1400}, MssCase{"Out1401", true, {}, 1401, 1400},
        MssCase{"Out65535", true, {}, 65535, 1400}, MssCase{"In1460", false, {}, 1460, 1400},
        MssCase{"In1200", false, {}, 1200, 1200},
        // After NOPs / other options, at an even and at an odd offset.
        MssCase{"OutAfterTwoNops", true, {1, 1}, 1460, 1400},
        MssCase{"OutAfterOneNop", true, {1}, 1460, 1400},
        MssCase{"InAfterOneNop", false, {1}, 9000, 1400},
        MssCase{"OutAfterWscale", true, {3, 3, 7}, 1460, 1400}),
    [](const ::testing::TestParamInfo<MssCase>& i) { return std::string(i.param.name); });

TEST(TcpMssClamp, OffByDefaultAndOnlyOnSyns) {
  EngineHarness h;  // tcp_mss_clamp = 0
  Sent s = h.send(
      Packet().ipv4(kInsideHost, kServer).tcp(kInsidePort, kServerPort, kTcpSyn).mss(9001).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(s.out).mss.value_or(0), 9001);

  engine::EngineConfig cfg = default_config();
  cfg.tcp_mss_clamp = 1400;
  EngineHarness h2(cfg);
  Conn c(h2);
  ASSERT_NO_FATAL_FAILURE(c.open());
  // An MSS option on a non-SYN segment means nothing to TCP and is left alone.
  Sent d = h2.send(
      Packet().ipv4(kInsideHost, kServer).tcp(kInsidePort, kServerPort, kTcpAck).mss(1460).build());
  ASSERT_EQ(d.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(d.out).mss.value_or(0), 1460);
  EXPECT_TRUE(l4_checksum_ok(d.out));
  EXPECT_EQ(h2.events(Event::MssClamped), 0u);
}

}  // namespace
}  // namespace eipgate::testing

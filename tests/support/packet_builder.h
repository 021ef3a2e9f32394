// Test-only fluent builder for Ethernet/IPv4 frames and independent parsers/checksum validators,
// so NAT tests can be written as tables of {input frame, expected frame}. Header-only; depends on
// nothing in the engine, on purpose: a bug shared by the engine and its oracle would hide itself.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// NOTE for users: this namespace shadows GoogleTest's ::testing inside namespace eipgate, so code
// in eipgate::* must spell GoogleTest names as ::testing::TestWithParam etc.
namespace eipgate::testing {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr Mac kDefaultSrcMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kDefaultDstMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
// RFC 3692 "use for experimentation and testing": the protocol of an IP packet with no L4 set.
inline constexpr uint8_t kProtoTest = 253;

// Largest fragment offset in bytes (13-bit field in 8-byte units).
inline constexpr size_t kMaxFragOffset = size_t{0x1FFF} * 8;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
inline constexpr uint8_t kTcpUrg = 0x20;
inline constexpr uint8_t kTcpEce = 0x40;
inline constexpr uint8_t kTcpCwr = 0x80;

inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpSourceQuench = 4;
inline constexpr uint8_t kIcmpRedirect = 5;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParameterProblem = 12;
// Codes of kIcmpDestUnreachable.
inline constexpr uint8_t kIcmpCodeHostUnreachable = 1;
inline constexpr uint8_t kIcmpCodeProtoUnreachable = 2;
inline constexpr uint8_t kIcmpCodePortUnreachable = 3;
inline constexpr uint8_t kIcmpCodeFragNeeded = 4;

// ICMP types whose body quotes the offending datagram (RFC 792).
inline constexpr bool is_icmp_error_type(uint8_t type) {
  return type == kIcmpDestUnreachable || type == kIcmpSourceQuench || type == kIcmpRedirect ||
         type == kIcmpTimeExceeded || type == kIcmpParameterProblem;
}

// ---------------------------------------------------------------------------------------------
// Addresses and formatting

// "192.0.2.1" -> 0xC0000201 (host order). Throws std::invalid_argument on anything inet_pton
// rejects, so a typo in a test table fails the test instead of becoming 0.0.0.0.
inline uint32_t ip(const char* dotted) {
  in_addr a{};
  if (dotted == nullptr || inet_pton(AF_INET, dotted, &a) != 1) {
    throw std::invalid_argument(std::string("bad IPv4 address: ") +
                                (dotted != nullptr ? dotted : "(null)"));
  }
  return ntohl(a.s_addr);
}

inline std::string ip_str(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// "02:00:00:00:00:01" (or with '-') -> bytes. Throws std::invalid_argument.
inline Mac mac(std::string_view s) {
  Mac m{};
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bool ok = s.size() == 17;
  for (size_t i = 0; ok && i < 6; ++i) {
    const int hi = nibble(s[3 * i]);
    const int lo = nibble(s[3 * i + 1]);
    ok = hi >= 0 && lo >= 0 && (i == 5 || s[3 * i + 2] == ':' || s[3 * i + 2] == '-');
    if (ok) m[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok) throw std::invalid_argument("bad MAC address: " + std::string(s));
  return m;
}

inline std::string mac_str(const Mac& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

// Lower-case hex with no separators: "0200000000010200...".
inline std::string hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

// 16 bytes a line with an offset column. Multi-line, so EXPECT_EQ(hexdump(a), hexdump(b)) makes
// GoogleTest print a line diff that points at the differing bytes.
inline std::string hexdump(ByteView bytes) {
  std::string out;
  char buf[24];
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i % 16 == 0) {
      std::snprintf(buf, sizeof buf, "%04zx ", i);
      out += buf;
    }
    std::snprintf(buf, sizeof buf, " %02x", bytes[i]);
    out += buf;
    if (i % 16 == 15 || i + 1 == bytes.size()) out.push_back('\n');
  }
  return out;
}

// Inverse of hex(); ignores whitespace, ':' and '-' so captures can be pasted as they are.
// Throws std::invalid_argument on other characters or an odd digit count.
inline Bytes from_hex(std::string_view s) {
  Bytes out;
  int hi = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ':' || c == '-') {
      continue;
    } else {
      throw std::invalid_argument(std::string("bad hex character: ") + c);
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd number of hex digits");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checksums

namespace detail {

inline uint16_t get16(ByteView b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
inline uint32_t get32(ByteView b, size_t off) {
  return static_cast<uint32_t>(b[off]) << 24 | static_cast<uint32_t>(b[off + 1]) << 16 |
         static_cast<uint32_t>(b[off + 2]) << 8 | b[off + 3];
}
inline void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
inline void put32(Bytes& b, size_t off, uint32_t v) {
  b[off] = static_cast<uint8_t>(v >> 24);
  b[off + 1] = static_cast<uint8_t>(v >> 16);
  b[off + 2] = static_cast<uint8_t>(v >> 8);
  b[off + 3] = static_cast<uint8_t>(v);
}

// Plain (unfolded) sum of big-endian 16-bit words, odd tail padded with a zero byte.
inline uint64_t sum16(ByteView b, uint64_t acc = 0) {
  size_t i = 0;
  for (; i + 1 < b.size(); i += 2) acc += static_cast<uint64_t>(b[i]) << 8 | b[i + 1];
  if (i < b.size()) acc += static_cast<uint64_t>(b[i]) << 8;
  return acc;
}

inline uint16_t fold(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

inline uint64_t pseudo_header_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t l4_len) {
  return static_cast<uint64_t>(src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto +
         l4_len;
}

inline bool is_vlan_tpid(uint16_t ethertype) {
  return ethertype == kEtherTypeVlan || ethertype == kEtherTypeQinQ || ethertype == 0x9100;
}

// Where the IPv4 datagram of a frame is, as a receiver would judge it. Shared by the validators
// and fragment helpers; parse() has its own, more forgiving, walk.
struct Ipv4View {
  size_t l3 = 0;          // offset of the IP header in the frame
  size_t hlen = 0;        // IHL * 4
  ByteView datagram;      // header + data, bounded by Total Length
  bool complete = false;  // Total Length fits in the frame
};

inline std::optional<Ipv4View> locate_ipv4(ByteView f) {
  if (f.size() < 14) return std::nullopt;
  size_t off = 12;
  uint16_t et = get16(f, off);
  while (is_vlan_tpid(et)) {
    off += 4;
    if (f.size() < off + 2) return std::nullopt;
    et = get16(f, off);
  }
  off += 2;
  if (et != kEtherTypeIpv4 || f.size() < off + 20 || (f[off] >> 4) != 4) return std::nullopt;
  Ipv4View v;
  v.l3 = off;
  v.hlen = static_cast<size_t>(f[off] & 0xF) * 4;
  if (v.hlen < 20 || f.size() < off + v.hlen) return std::nullopt;
  const size_t total = get16(f, off + 2);
  if (total < v.hlen) return std::nullopt;
  v.complete = off + total <= f.size();
  v.datagram = f.subspan(off, std::min(total, f.size() - off));
  return v;
}

inline bool is_fragment(ByteView ip_header) { return (get16(ip_header, 6) & 0x3FFF) != 0; }

}  // namespace detail

// RFC 1071 Internet checksum of `bytes`, with `initial` (an unfolded partial sum, e.g. of a
// pseudo header) added in. Returns the value to store in the checksum field.
inline uint16_t inet_checksum(ByteView bytes, uint64_t initial = 0) {
  return static_cast<uint16_t>(~detail::fold(detail::sum16(bytes, initial)));
}

// ---------------------------------------------------------------------------------------------
// Builder

// An IPv4 address given as "192.0.2.1" or as a host-order integer (0xC0000201).
struct Addr {
  uint32_t value;
  // Implicit on purpose: `.ipv4("10.0.0.5", 0xC0000201u)`.
  Addr(const char* dotted) : value(ip(dotted)) {}  // NOLINT(google-explicit-constructor)
  Addr(const std::string& dotted)                  // NOLINT(google-explicit-constructor)
      : value(ip(dotted.c_str())) {}
  template <std::integral T>
  Addr(T host_order)  // NOLINT(google-explicit-constructor)
      : value(static_cast<uint32_t>(host_order)) {}
};

// Fluent frame builder. Every setter returns *this; setters may be called in any order and a
// builder may be copied to make a variant (the usual way to write the expected output of a NAT
// test: copy the input, change addresses/ports/TTL). build() recomputes every derived field
// (lengths, checksums) unless an override (ihl, total_length, ip_checksum, l4_checksum, ...) was
// set. Invalid requests (an option list that cannot fit, an offset not a multiple of 8, a
// datagram over 64 KiB) throw std::invalid_argument / std::logic_error.
class Packet {
 public:
  // ---- L2
  Packet& eth(const Mac& src = kDefaultSrcMac, const Mac& dst = kDefaultDstMac) {
    eth_src_ = src;
    eth_dst_ = dst;
    return *this;
  }
  // "02:00:00:00:00:01" form; throws std::invalid_argument.
  Packet& eth(std::string_view src, std::string_view dst) { return eth(mac(src), mac(dst)); }
  // EtherType after the tags. Default 0x0800 even without ipv4(), so `Packet().payload({0x45})`
  // is a frame that claims IPv4 but carries a truncated header.
  Packet& ethertype(uint16_t v) {
    ethertype_ = v;
    return *this;
  }
  // Appends an 802.1Q tag; the first call is the outermost tag.
  Packet& vlan(uint16_t vid, uint8_t pcp = 0, uint16_t tpid = kEtherTypeVlan) {
    if (vid > 0xFFF || pcp > 7) throw std::invalid_argument("vlan: vid > 4095 or pcp > 7");
    vlans_.push_back({tpid, static_cast<uint16_t>(pcp << 13 | vid)});
    return *this;
  }

  // ---- IPv4
  Packet& ipv4(Addr src, Addr dst) {
    has_ip_ = true;
    src_ = src.value;
    dst_ = dst.value;
    return *this;
  }
  Packet& ip_src(Addr a) {
    src_ = a.value;
    return *this;
  }
  Packet& ip_dst(Addr a) {
    dst_ = a.value;
    return *this;
  }
  Packet& ttl(uint8_t v) {
    ttl_ = v;
    return *this;
  }
  Packet& id(uint16_t v) {
    id_ = v;
    return *this;
  }
  Packet& tos(uint8_t v) {
    tos_ = v;
    return *this;
  }
  Packet& df(bool on = true) {
    df_ = on;
    return *this;
  }
  Packet& mf(bool on = true) {
    mf_ = on;
    return *this;
  }
  // In bytes, as the data sits in the original datagram; must be a multiple of 8 and <= 65528.
  // The builder still emits whatever L4 header was asked for: a hand-made non-first fragment
  // is normally `.proto(kProtoUdp).payload(data)` with no .udp().
  Packet& frag_offset(uint32_t bytes) {
    if (bytes % 8 != 0 || bytes > kMaxFragOffset) {
      throw std::invalid_argument("frag_offset must be a multiple of 8 and <= 65528");
    }
    frag_offset_ = static_cast<uint16_t>(bytes);
    return *this;
  }
  // Appends raw option bytes; the list is padded with zeros (EOL) to a multiple of 4 at build().
  Packet& ip_options(const Bytes& opts) {
    ip_options_.insert(ip_options_.end(), opts.begin(), opts.end());
    return *this;
  }
  // Protocol field. Default: that of the L4 chosen (kProtoTest without one). Overriding it does
  // not change how the L4 header or its checksum are built.
  Packet& proto(uint8_t v) {
    proto_ = v;
    return *this;
  }
  // Malformed-packet overrides: the field is written verbatim, nothing else changes. The header
  // checksum is still computed (over IHL*4 bytes when that fits in the datagram, else over the
  // header actually emitted) unless ip_checksum() is set too, so one defect is tested at a time.
  Packet& version(uint8_t v) {
    if (v > 15) throw std::invalid_argument("version > 15");
    version_ = v;
    return *this;
  }
  Packet& ihl(uint8_t words) {
    if (words > 15) throw std::invalid_argument("ihl > 15");
    ihl_ = words;
    return *this;
  }
  Packet& total_length(uint16_t v) {
    total_length_ = v;
    return *this;
  }
  Packet& ip_checksum(uint16_t v) {
    ip_checksum_ = v;
    return *this;
  }

  // ---- TCP
  Packet& tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    l4_ = L4::kTcp;
    sport_ = sport;
    dport_ = dport;
    tcp_flags_ = flags;
    return *this;
  }
  Packet& tcp_flags(uint8_t flags) {
    tcp_flags_ = flags;
    return *this;
  }
  Packet& seq(uint32_t v) {
    seq_ = v;
    return *this;
  }
  Packet& ack(uint32_t v) {
    ack_ = v;
    return *this;
  }
  Packet& window(uint16_t v) {
    window_ = v;
    return *this;
  }
  // Appends raw option bytes (padded with zeros to a multiple of 4 at build(), max 40).
  Packet& tcp_options(const Bytes& opts) {
    tcp_options_.insert(tcp_options_.end(), opts.begin(), opts.end());
    return *this;
  }
  // Appends an MSS option (kind 2, length 4).
  Packet& mss(uint16_t v) {
    return tcp_options({2, 4, static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
  }
  // Malformed override of the Data Offset field (32-bit words).
  Packet& tcp_data_offset(uint8_t words) {
    if (words > 15) throw std::invalid_argument("tcp data offset > 15");
    tcp_doff_ = words;
    return *this;
  }

  // ---- UDP
  Packet& udp(uint16_t sport, uint16_t dport) {
    l4_ = L4::kUdp;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }
  // Sends checksum 0 ("none", RFC 768). A computed checksum of 0 is sent as 0xFFFF otherwise.
  Packet& udp_zero_checksum() {
    udp_zero_checksum_ = true;
    return *this;
  }
  // Malformed override of the UDP Length field.
  Packet& udp_length(uint16_t v) {
    udp_length_ = v;
    return *this;
  }

  // Port setters for copies of a TCP/UDP builder (e.g. the expected translated packet).
  Packet& sport(uint16_t v) {
    sport_ = v;
    return *this;
  }
  Packet& dport(uint16_t v) {
    dport_ = v;
    return *this;
  }

  // ---- ICMP
  Packet& icmp_echo(uint8_t type = kIcmpEchoRequest, uint8_t code = 0, uint16_t id = 0,
                    uint16_t seq = 0) {
    l4_ = L4::kIcmpEcho;
    icmp_type_ = type;
    icmp_code_ = code;
    icmp_id_ = id;
    icmp_seq_ = seq;
    return *this;
  }
  Packet& icmp_id(uint16_t v) {
    icmp_id_ = v;
    return *this;
  }
  Packet& icmp_seq(uint16_t v) {
    icmp_seq_ = v;
    return *this;
  }
  // ICMP error quoting `inner_ip` (an IP datagram from the IP header on, e.g. another builder's
  // build_ip(), or ip_layer() of a frame). Payload, if any, is appended after the quote.
  Packet& icmp_error(uint8_t type, uint8_t code, Bytes inner_ip) {
    l4_ = L4::kIcmpError;
    icmp_type_ = type;
    icmp_code_ = code;
    inner_ = std::move(inner_ip);
    return *this;
  }
  Packet& icmp_error(uint8_t type, uint8_t code, const Packet& inner) {
    return icmp_error(type, code, inner.build_ip());
  }
  // Quote only the first n bytes of the inner datagram (routers often quote IP header + 8).
  Packet& inner_truncate(size_t n) {
    inner_truncate_ = n;
    return *this;
  }
  // Next-hop MTU of "fragmentation needed" (low 16 bits of the 4-byte rest-of-header field).
  Packet& mtu(uint16_t v) { return icmp_rest(v); }
  // The 4 bytes after the ICMP checksum, verbatim (overrides echo id/seq too).
  Packet& icmp_rest(uint32_t v) {
    icmp_rest_ = v;
    return *this;
  }

  // Checksum field of TCP/UDP/ICMP written verbatim.
  Packet& l4_checksum(uint16_t v) {
    l4_checksum_ = v;
    return *this;
  }

  // ---- data
  Packet& payload(const Bytes& data) {
    payload_ = data;
    return *this;
  }
  Packet& payload(std::initializer_list<uint8_t> data) {
    payload_.assign(data.begin(), data.end());
    return *this;
  }
  Packet& payload(std::string_view text) {
    payload_.assign(text.begin(), text.end());
    return *this;
  }
  // n bytes 0, 1, 2, ... 255, 0, ... (position-dependent so misplaced fragments show).
  Packet& payload_fill(size_t n) {
    payload_.resize(n);
    for (size_t i = 0; i < n; ++i) payload_[i] = static_cast<uint8_t>(i);
    return *this;
  }
  // n bytes of L2 padding after the IP datagram (not counted in Total Length), e.g. the padding
  // to the 60-byte Ethernet minimum. Nothing pads automatically.
  Packet& trailer(size_t n, uint8_t fill = 0) {
    trailer_len_ = n;
    trailer_fill_ = fill;
    return *this;
  }

  // ---- output
  // The whole frame: Ethernet [+ tags] + IP datagram (or payload without ipv4()) + trailer.
  [[nodiscard]] Bytes build() const {
    Bytes f(12);
    std::copy(eth_dst_.begin(), eth_dst_.end(), f.begin());
    std::copy(eth_src_.begin(), eth_src_.end(), f.begin() + 6);
    auto push16 = [&f](uint16_t v) {
      f.push_back(static_cast<uint8_t>(v >> 8));
      f.push_back(static_cast<uint8_t>(v));
    };
    for (const auto& tag : vlans_) {
      push16(tag.tpid);
      push16(tag.tci);
    }
    push16(ethertype_.value_or(kEtherTypeIpv4));
    if (has_ip_) {
      const Bytes ipb = build_ip();
      f.insert(f.end(), ipb.begin(), ipb.end());
    } else if (l4_ != L4::kNone) {
      throw std::logic_error("Packet: an L4 header needs ipv4() first");
    } else {
      f.insert(f.end(), payload_.begin(), payload_.end());
    }
    f.insert(f.end(), trailer_len_, trailer_fill_);
    return f;
  }

  // The IP datagram alone (no L2, no trailer): what an ICMP error quotes.
  [[nodiscard]] Bytes build_ip() const {
    if (!has_ip_) throw std::logic_error("Packet: build_ip() needs ipv4()");
    Bytes opts = ip_options_;
    opts.resize((opts.size() + 3) / 4 * 4, 0);
    const size_t hlen = 20 + opts.size();
    if (hlen > 60) throw std::invalid_argument("IP options longer than 40 bytes");
    const Bytes l4 = build_l4();
    if (hlen + l4.size() > 0xFFFF) throw std::invalid_argument("IP datagram over 65535 bytes");

    Bytes d(hlen);
    d[0] = static_cast<uint8_t>(version_.value_or(4) << 4 | ihl_.value_or(hlen / 4));
    d[1] = tos_;
    detail::put16(d, 2, total_length_.value_or(static_cast<uint16_t>(hlen + l4.size())));
    detail::put16(d, 4, id_);
    detail::put16(
        d, 6, static_cast<uint16_t>((df_ ? 0x4000 : 0) | (mf_ ? 0x2000 : 0) | frag_offset_ / 8));
    d[8] = ttl_;
    d[9] = proto_.value_or(natural_proto());
    detail::put32(d, 12, src_);
    detail::put32(d, 16, dst_);
    std::copy(opts.begin(), opts.end(), d.begin() + 20);
    d.insert(d.end(), l4.begin(), l4.end());

    if (ip_checksum_) {
      detail::put16(d, 10, *ip_checksum_);
    } else {
      const size_t declared = static_cast<size_t>(d[0] & 0xF) * 4;
      const size_t cover = declared >= 20 && declared <= d.size() ? declared : hlen;
      detail::put16(d, 10, inet_checksum(ByteView(d).first(cover)));
    }
    return d;
  }

 private:
  enum class L4 : uint8_t { kNone, kTcp, kUdp, kIcmpEcho, kIcmpError };
  struct VlanTag {
    uint16_t tpid;
    uint16_t tci;
  };

  [[nodiscard]] uint8_t natural_proto() const {
    switch (l4_) {
      case L4::kTcp:
        return kProtoTcp;
      case L4::kUdp:
        return kProtoUdp;
      case L4::kIcmpEcho:
      case L4::kIcmpError:
        return kProtoIcmp;
      case L4::kNone:
        break;
    }
    return kProtoTest;
  }

  [[nodiscard]] Bytes build_l4() const {
    Bytes b;
    size_t csum_at = 0;
    bool pseudo = true;
    switch (l4_) {
      case L4::kNone:
        return payload_;
      case L4::kTcp: {
        Bytes opts = tcp_options_;
        opts.resize((opts.size() + 3) / 4 * 4, 0);
        if (opts.size() > 40) throw std::invalid_argument("TCP options longer than 40 bytes");
        const size_t hlen = 20 + opts.size();
        b.resize(hlen);
        detail::put16(b, 0, sport_);
        detail::put16(b, 2, dport_);
        detail::put32(b, 4, seq_);
        detail::put32(b, 8, ack_);
        b[12] = static_cast<uint8_t>(tcp_doff_.value_or(hlen / 4) << 4);
        b[13] = tcp_flags_;
        detail::put16(b, 14, window_);
        std::copy(opts.begin(), opts.end(), b.begin() + 20);
        csum_at = 16;
        break;
      }
      case L4::kUdp:
        b.resize(8);
        detail::put16(b, 0, sport_);
        detail::put16(b, 2, dport_);
        if (payload_.size() + 8 > 0xFFFF) throw std::invalid_argument("UDP datagram too long");
        detail::put16(b, 4, udp_length_.value_or(static_cast<uint16_t>(8 + payload_.size())));
        csum_at = 6;
        break;
      case L4::kIcmpEcho:
      case L4::kIcmpError: {
        b.resize(8);
        b[0] = icmp_type_;
        b[1] = icmp_code_;
        const uint32_t echo_rest = static_cast<uint32_t>(icmp_id_) << 16 | icmp_seq_;
        detail::put32(b, 4, icmp_rest_.value_or(l4_ == L4::kIcmpEcho ? echo_rest : 0));
        if (l4_ == L4::kIcmpError) {
          const size_t n = std::min(inner_.size(), inner_truncate_.value_or(inner_.size()));
          b.insert(b.end(), inner_.begin(), inner_.begin() + static_cast<std::ptrdiff_t>(n));
        }
        csum_at = 2;
        pseudo = false;
        break;
      }
    }
    b.insert(b.end(), payload_.begin(), payload_.end());

    uint16_t csum;
    if (l4_checksum_) {
      csum = *l4_checksum_;
    } else if (l4_ == L4::kUdp && udp_zero_checksum_) {
      csum = 0;
    } else {
      const uint64_t ph =
          pseudo ? detail::pseudo_header_sum(src_, dst_, natural_proto(), b.size()) : 0;
      csum = inet_checksum(b, ph);
      if (l4_ == L4::kUdp && csum == 0) csum = 0xFFFF;
    }
    detail::put16(b, csum_at, csum);
    return b;
  }

  Mac eth_src_ = kDefaultSrcMac;
  Mac eth_dst_ = kDefaultDstMac;
  std::optional<uint16_t> ethertype_;
  std::vector<VlanTag> vlans_;

  bool has_ip_ = false;
  uint32_t src_ = 0;
  uint32_t dst_ = 0;
  uint8_t ttl_ = 64;
  uint8_t tos_ = 0;
  uint16_t id_ = 1;
  bool df_ = false;
  bool mf_ = false;
  uint16_t frag_offset_ = 0;  // bytes
  Bytes ip_options_;
  std::optional<uint8_t> proto_;
  std::optional<uint8_t> version_;
  std::optional<uint8_t> ihl_;
  std::optional<uint16_t> total_length_;
  std::optional<uint16_t> ip_checksum_;

  L4 l4_ = L4::kNone;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint8_t tcp_flags_ = 0;
  uint32_t seq_ = 1;
  uint32_t ack_ = 0;
  uint16_t window_ = 65535;
  Bytes tcp_options_;
  std::optional<uint8_t> tcp_doff_;
  bool udp_zero_checksum_ = false;
  std::optional<uint16_t> udp_length_;
  uint8_t icmp_type_ = 0;
  uint8_t icmp_code_ = 0;
  uint16_t icmp_id_ = 0;
  uint16_t icmp_seq_ = 0;
  std::optional<uint32_t> icmp_rest_;
  Bytes inner_;
  std::optional<size_t> inner_truncate_;
  std::optional<uint16_t> l4_checksum_;

  Bytes payload_;
  size_t trailer_len_ = 0;
  uint8_t trailer_fill_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Inspection

// What parse() found. Fields of a layer are meaningful only when its has_* flag is set. Never
// throws and never reads past the frame; `error` names the first problem (empty when every
// layer present parsed cleanly). `payload` points into the parsed frame: into the caller's buffer
// for an lvalue (keep it alive), into owned_frame for a temporary.
struct Parsed {
  std::string error;

  // L2
  Mac eth_dst{};
  Mac eth_src{};
  uint16_t ethertype = 0;  // after the tags
  size_t vlan_count = 0;
  std::vector<uint16_t> vlan_ids;  // outermost first, 12-bit VID only
  size_t l3_offset = 0;

  // IPv4
  bool has_ip = false;
  uint8_t ip_version = 0;
  uint8_t ihl = 0;  // 32-bit words
  uint8_t tos = 0;
  uint16_t total_length = 0;
  uint16_t ip_id = 0;
  uint8_t ip_flags = 0;  // the 3 flag bits: 0x4 reserved, 0x2 DF, 0x1 MF
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;  // bytes
  uint8_t ttl = 0;
  uint8_t proto = 0;
  uint16_t ip_checksum = 0;
  uint32_t ip_src = 0;  // host order
  uint32_t ip_dst = 0;
  size_t trailer_len = 0;  // bytes after Total Length
  [[nodiscard]] bool is_fragment() const { return mf || frag_offset != 0; }

  // L4: only in a first (or unfragmented) datagram with enough bytes.
  size_t l4_offset = 0;
  bool has_l4 = false;
  uint16_t sport = 0;  // TCP/UDP
  uint16_t dport = 0;
  uint16_t l4_checksum = 0;  // TCP/UDP/ICMP checksum field
  uint8_t tcp_flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  uint8_t tcp_data_offset = 0;  // 32-bit words
  std::optional<uint16_t> mss;
  uint16_t udp_length = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t icmp_id = 0;    // bytes 4-5 (meaningful for echo and the like)
  uint16_t icmp_seq = 0;   // bytes 6-7
  uint32_t icmp_rest = 0;  // bytes 4-7 verbatim (MTU of frag-needed in the low 16 bits)

  // The datagram quoted by an ICMP error; has_inner once its IP header is all there.
  bool has_inner = false;
  uint32_t inner_ip_src = 0;
  uint32_t inner_ip_dst = 0;
  uint8_t inner_proto = 0;
  uint8_t inner_ttl = 0;
  uint16_t inner_ip_id = 0;
  uint16_t inner_total_length = 0;  // as declared: usually more than was quoted
  uint16_t inner_ip_checksum = 0;
  bool inner_has_ports = false;  // TCP/UDP with >= 4 bytes of L4 quoted
  uint16_t inner_sport = 0;
  uint16_t inner_dport = 0;
  bool inner_has_icmp = false;  // ICMP with >= 8 bytes quoted
  uint8_t inner_icmp_type = 0;
  uint8_t inner_icmp_code = 0;
  uint16_t inner_icmp_id = 0;
  uint16_t inner_icmp_seq = 0;
  bool inner_has_l4_checksum = false;  // UDP >= 8 / TCP >= 18 / ICMP >= 4 bytes quoted
  uint16_t inner_l4_checksum = 0;

  // After the TCP/UDP/ICMP(8-byte) header, bounded by Total Length and the frame (for an ICMP
  // error: the quote). Whole IP data without an L4 or in a non-first fragment; the L2 payload
  // for a non-IPv4 EtherType.
  ByteView payload;
  // Set when parse() was given a temporary: the frame `payload` points into.
  std::shared_ptr<const Bytes> owned_frame;
};

inline Parsed parse(ByteView f) {
  using detail::get16;
  using detail::get32;
  Parsed p;
  if (f.size() < 14) {
    p.error = "frame shorter than an Ethernet header";
    return p;
  }
  std::copy(f.begin(), f.begin() + 6, p.eth_dst.begin());
  std::copy(f.begin() + 6, f.begin() + 12, p.eth_src.begin());
  size_t off = 14;
  uint16_t et = get16(f, 12);
  while (detail::is_vlan_tpid(et)) {
    if (f.size() < off + 4) {
      p.error = "truncated VLAN tag";
      return p;
    }
    p.vlan_ids.push_back(get16(f, off) & 0x0FFF);
    et = get16(f, off + 2);
    off += 4;
  }
  p.vlan_count = p.vlan_ids.size();
  p.ethertype = et;
  p.l3_offset = off;
  if (et != kEtherTypeIpv4) {
    p.payload = f.subspan(off);
    return p;
  }
  if (f.size() < off + 20) {
    p.error = "truncated IPv4 header";
    p.payload = f.subspan(off);
    return p;
  }
  const ByteView ip = f.subspan(off);
  p.has_ip = true;
  p.ip_version = ip[0] >> 4;
  p.ihl = ip[0] & 0xF;
  p.tos = ip[1];
  p.total_length = get16(ip, 2);
  p.ip_id = get16(ip, 4);
  const uint16_t flags_frag = get16(ip, 6);
  p.ip_flags = static_cast<uint8_t>(flags_frag >> 13);
  p.df = (flags_frag & 0x4000) != 0;
  p.mf = (flags_frag & 0x2000) != 0;
  p.frag_offset = static_cast<uint16_t>((flags_frag & 0x1FFF) * 8);
  p.ttl = ip[8];
  p.proto = ip[9];
  p.ip_checksum = get16(ip, 10);
  p.ip_src = get32(ip, 12);
  p.ip_dst = get32(ip, 16);

  const size_t hlen = static_cast<size_t>(p.ihl) * 4;
  if (p.ip_version != 4) {
    p.error = "IP version is not 4";
    return p;
  }
  if (hlen < 20) {
    p.error = "IHL below 5";
    return p;
  }
  if (ip.size() < hlen) {
    p.error = "truncated IPv4 options";
    return p;
  }
  if (p.total_length < hlen) {
    p.error = "Total Length shorter than the IP header";
    return p;
  }
  size_t dlen = p.total_length;
  if (dlen > ip.size()) {
    p.error = "truncated: Total Length runs past the frame";
    dlen = ip.size();
  } else {
    p.trailer_len = ip.size() - dlen;
  }
  const ByteView l4 = ip.subspan(hlen, dlen - hlen);
  p.l4_offset = off + hlen;
  p.payload = l4;
  if (p.frag_offset != 0) return p;  // no L4 header in a non-first fragment

  auto fail = [&p](const char* what) {
    if (p.error.empty()) p.error = what;
    return p;
  };
  switch (p.proto) {
    case kProtoTcp: {
      if (l4.size() < 20) return fail("truncated TCP header");
      p.has_l4 = true;
      p.sport = get16(l4, 0);
      p.dport = get16(l4, 2);
      p.seq = get32(l4, 4);
      p.ack = get32(l4, 8);
      p.tcp_data_offset = l4[12] >> 4;
      p.tcp_flags = l4[13];
      p.window = get16(l4, 14);
      p.l4_checksum = get16(l4, 16);
      const size_t thl = static_cast<size_t>(p.tcp_data_offset) * 4;
      if (thl < 20 || thl > l4.size()) return fail("bad TCP data offset");
      for (size_t i = 20; i < thl;) {
        const uint8_t kind = l4[i];
        if (kind == 0) break;
        if (kind == 1) {
          ++i;
          continue;
        }
        if (i + 1 >= thl || l4[i + 1] < 2 || i + l4[i + 1] > thl) break;
        if (kind == 2 && l4[i + 1] == 4) p.mss = get16(l4, i + 2);
        i += l4[i + 1];
      }
      p.payload = l4.subspan(thl);
      break;
    }
    case kProtoUdp: {
      if (l4.size() < 8) return fail("truncated UDP header");
      p.has_l4 = true;
      p.sport = get16(l4, 0);
      p.dport = get16(l4, 2);
      p.udp_length = get16(l4, 4);
      p.l4_checksum = get16(l4, 6);
      size_t end = l4.size();
      if (p.udp_length < 8) {
        fail("UDP Length below 8");
      } else if (p.udp_length > l4.size()) {
        if (!p.mf) fail("UDP Length runs past the IP datagram");
      } else {
        end = p.udp_length;
      }
      p.payload = l4.subspan(8, end - 8);
      break;
    }
    case kProtoIcmp: {
      if (l4.size() < 8) return fail("truncated ICMP header");
      p.has_l4 = true;
      p.icmp_type = l4[0];
      p.icmp_code = l4[1];
      p.l4_checksum = get16(l4, 2);
      p.icmp_rest = get32(l4, 4);
      p.icmp_id = get16(l4, 4);
      p.icmp_seq = get16(l4, 6);
      p.payload = l4.subspan(8);
      if (!is_icmp_error_type(p.icmp_type)) break;
      const ByteView in = p.payload;
      if (in.size() < 20 || (in[0] >> 4) != 4 || (in[0] & 0xF) < 5 ||
          in.size() < static_cast<size_t>(in[0] & 0xF) * 4) {
        return fail("ICMP error quotes no complete IPv4 header");
      }
      p.has_inner = true;
      p.inner_total_length = get16(in, 2);
      p.inner_ip_id = get16(in, 4);
      p.inner_ttl = in[8];
      p.inner_proto = in[9];
      p.inner_ip_checksum = get16(in, 10);
      p.inner_ip_src = get32(in, 12);
      p.inner_ip_dst = get32(in, 16);
      if ((get16(in, 6) & 0x1FFF) != 0) break;  // quoted a non-first fragment: no L4 header
      const ByteView il4 = in.subspan(static_cast<size_t>(in[0] & 0xF) * 4);
      if ((p.inner_proto == kProtoTcp || p.inner_proto == kProtoUdp) && il4.size() >= 4) {
        p.inner_has_ports = true;
        p.inner_sport = get16(il4, 0);
        p.inner_dport = get16(il4, 2);
        const size_t at = p.inner_proto == kProtoTcp ? 16 : 6;
        if (il4.size() >= at + 2) {
          p.inner_has_l4_checksum = true;
          p.inner_l4_checksum = get16(il4, at);
        }
      } else if (p.inner_proto == kProtoIcmp && il4.size() >= 4) {
        p.inner_has_l4_checksum = true;
        p.inner_l4_checksum = get16(il4, 2);
        if (il4.size() >= 8) {
          p.inner_has_icmp = true;
          p.inner_icmp_type = il4[0];
          p.inner_icmp_code = il4[1];
          p.inner_icmp_id = get16(il4, 4);
          p.inner_icmp_seq = get16(il4, 6);
        }
      }
      break;
    }
    default:
      break;
  }
  return p;
}
// Parsing a temporary (`parse(pkt.build())`) keeps the frame alive inside the result (shared by
// copies), so `payload` never dangles.
inline Parsed parse(Bytes&& frame) {
  auto owned = std::make_shared<const Bytes>(std::move(frame));
  Parsed p = parse(ByteView(*owned));
  p.owned_frame = std::move(owned);
  return p;
}

// The IP datagram of a frame (IP header to Total Length, no L2, no trailer), e.g. to quote a
// forwarded packet in an expected ICMP error. Empty if the frame holds no complete datagram.
inline Bytes ip_layer(ByteView frame) {
  const auto v = detail::locate_ipv4(frame);
  if (!v || !v->complete) return {};
  Bytes out(v->datagram.begin(), v->datagram.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validators: recompute from the bytes as a receiver does (the one's-complement sum over the
// covered bytes, checksum field included, must be 0xFFFF), independent of parse().

// The IPv4 header checksum; false when there is no IPv4 header of valid IHL in the frame.
inline bool ip_checksum_ok(ByteView frame) {
  const auto v = detail::locate_ipv4(frame);
  return v && detail::fold(detail::sum16(frame.subspan(v->l3, v->hlen))) == 0xFFFF;
}

namespace detail {
// 1/0: the L4 checksum of `dgram` (IP header + data) verifies or not; nullopt: nothing to check.
inline std::optional<bool> l4_checksum_verdict(ByteView dgram, size_t hlen) {
  const uint8_t proto = dgram[9];
  const ByteView l4 = dgram.subspan(hlen);
  const uint32_t src = get32(dgram, 12);
  const uint32_t dst = get32(dgram, 16);
  switch (proto) {
    case kProtoTcp:
      if (l4.size() < 20) return false;
      return fold(sum16(l4, pseudo_header_sum(src, dst, proto, l4.size()))) == 0xFFFF;
    case kProtoUdp: {
      if (l4.size() < 8) return false;
      if (get16(l4, 6) == 0) return std::nullopt;  // sender sent no checksum
      const size_t ulen = get16(l4, 4);
      if (ulen < 8 || ulen > l4.size()) return false;
      return fold(sum16(l4.first(ulen), pseudo_header_sum(src, dst, proto, ulen))) == 0xFFFF;
    }
    case kProtoIcmp:
      if (l4.size() < 4) return false;
      return fold(sum16(l4)) == 0xFFFF;
    default:
      return std::nullopt;
  }
}
}  // namespace detail

// TCP/UDP (with pseudo header) or ICMP (whole message) checksum of an unfragmented datagram.
// True when there is nothing to verify: UDP checksum 0, another protocol, or any fragment (the
// checksum covers the whole datagram: reassemble() first). False for a truncated datagram.
inline bool l4_checksum_ok(ByteView frame) {
  const auto v = detail::locate_ipv4(frame);
  if (!v || !v->complete) return false;
  if (detail::is_fragment(v->datagram)) return true;
  return detail::l4_checksum_verdict(v->datagram, v->hlen).value_or(true);
}

namespace detail {
// The quoted datagram of an ICMP error frame, from its IP header to the end of the quote.
inline std::optional<ByteView> icmp_error_quote(ByteView frame) {
  const auto v = locate_ipv4(frame);
  if (!v || !v->complete || is_fragment(v->datagram) || v->datagram[9] != kProtoIcmp) {
    return std::nullopt;
  }
  const ByteView icmp = v->datagram.subspan(v->hlen);
  if (icmp.size() < 8 + 20 || !is_icmp_error_type(icmp[0])) return std::nullopt;
  const ByteView in = icmp.subspan(8);
  const size_t ihlen = static_cast<size_t>(in[0] & 0xF) * 4;
  if ((in[0] >> 4) != 4 || ihlen < 20 || in.size() < ihlen) return std::nullopt;
  return in;
}
}  // namespace detail

// Header checksum of the datagram quoted by an ICMP error; false when the frame is not an ICMP
// error or the quoted header is incomplete.
inline bool inner_ip_checksum_ok(ByteView frame) {
  const auto in = detail::icmp_error_quote(frame);
  return in &&
         detail::fold(detail::sum16(in->first(static_cast<size_t>((*in)[0] & 0xF) * 4))) == 0xFFFF;
}

// L4 checksum of the quoted datagram. Verifiable only when the whole inner datagram was quoted
// (small packets): true when it was cut short (cannot tell), false when not an ICMP error.
inline bool inner_l4_checksum_ok(ByteView frame) {
  const auto in = detail::icmp_error_quote(frame);
  if (!in) return false;
  const size_t total = detail::get16(*in, 2);
  const size_t ihlen = static_cast<size_t>((*in)[0] & 0xF) * 4;
  if (total < ihlen || total > in->size() || detail::is_fragment(*in)) return true;
  return detail::l4_checksum_verdict(in->first(total), ihlen).value_or(true);
}

// What a full recompute would put in the IP header checksum field (for failure messages), or
// nullopt without a valid IPv4 header.
inline std::optional<uint16_t> expected_ip_checksum(ByteView frame) {
  const auto v = detail::locate_ipv4(frame);
  if (!v) return std::nullopt;
  const ByteView h = frame.subspan(v->l3, v->hlen);
  return static_cast<uint16_t>(
      ~detail::fold(detail::sum16(h) + 0xFFFF - detail::get16(h, 10)));  // sum with field = 0
}

// Same for the TCP/UDP/ICMP checksum field of a complete unfragmented datagram (UDP: 0xFFFF for
// a computed 0); nullopt for other protocols, fragments and truncated frames.
inline std::optional<uint16_t> expected_l4_checksum(ByteView frame) {
  const auto v = detail::locate_ipv4(frame);
  if (!v || !v->complete || detail::is_fragment(v->datagram)) return std::nullopt;
  const ByteView d = v->datagram;
  const ByteView l4 = d.subspan(v->hlen);
  const uint8_t proto = d[9];
  const uint32_t src = detail::get32(d, 12);
  const uint32_t dst = detail::get32(d, 16);
  size_t at;
  uint64_t acc;
  switch (proto) {
    case kProtoTcp:
      at = 16;
      acc = detail::pseudo_header_sum(src, dst, proto, l4.size());
      break;
    case kProtoUdp:
      at = 6;
      acc = detail::pseudo_header_sum(src, dst, proto, l4.size());
      break;
    case kProtoIcmp:
      at = 2;
      acc = 0;
      break;
    default:
      return std::nullopt;
  }
  if (l4.size() < at + 2) return std::nullopt;
  acc = detail::sum16(l4, acc) + 0xFFFF - detail::get16(l4, at);  // as if the field were 0
  const auto c = static_cast<uint16_t>(~detail::fold(acc));
  return proto == kProtoUdp && c == 0 ? uint16_t{0xFFFF} : c;
}

// ---------------------------------------------------------------------------------------------
// Fragments

// Splits the IPv4 datagram of `frame` as a router would (RFC 791): each fragment carries at most
// max_payload_per_frag data bytes (rounded down to a multiple of 8 for all but the last), the L2
// header (tags included) of the original, the original header with MF/offset/Total Length/
// checksum rewritten, all options in the first and only "copied" options in the rest. The L4
// checksum is whatever the whole datagram had. A datagram that fits comes back as the one frame
// unchanged; the trailer of a split frame is dropped. Re-fragmenting a fragment keeps its
// offset base and its MF on the last piece. DF is copied, not honoured. Throws
// std::invalid_argument for a frame without a complete IPv4 datagram or max < 8.
inline std::vector<Bytes> fragment(ByteView frame, size_t max_payload_per_frag) {
  const auto v = detail::locate_ipv4(frame);
  if (!v || !v->complete) throw std::invalid_argument("fragment: no complete IPv4 datagram");
  const ByteView d = v->datagram;
  const ByteView data = d.subspan(v->hlen);
  if (data.size() <= max_payload_per_frag) return {Bytes(frame.begin(), frame.end())};
  const size_t step = max_payload_per_frag / 8 * 8;
  if (step == 0) throw std::invalid_argument("fragment: max_payload_per_frag below 8");

  // Options with the copy bit (0x80) go in every fragment.
  Bytes copied;
  const ByteView opts = d.subspan(20, v->hlen - 20);
  for (size_t i = 0; i < opts.size();) {
    const uint8_t type = opts[i];
    if (type == 0) break;
    if (type == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= opts.size() || opts[i + 1] < 2 || i + opts[i + 1] > opts.size()) break;
    if (type & 0x80) {
      const ByteView opt = opts.subspan(i, opts[i + 1]);
      copied.insert(copied.end(), opt.begin(), opt.end());
    }
    i += opts[i + 1];
  }
  copied.resize((copied.size() + 3) / 4 * 4, 0);

  const uint16_t orig_flags = detail::get16(d, 6);
  const size_t base = static_cast<size_t>(orig_flags & 0x1FFF) * 8;
  const bool orig_mf = (orig_flags & 0x2000) != 0;
  std::vector<Bytes> out;
  for (size_t pos = 0; pos < data.size(); pos += step) {
    const size_t n = std::min(step, data.size() - pos);
    const bool last = pos + n == data.size();
    Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(v->l3));
    size_t hlen;
    if (pos == 0) {
      hlen = v->hlen;
      f.insert(f.end(), d.begin(), d.begin() + static_cast<std::ptrdiff_t>(hlen));
    } else {
      hlen = 20 + copied.size();
      f.insert(f.end(), d.begin(), d.begin() + 20);
      f.insert(f.end(), copied.begin(), copied.end());
      f[v->l3] = static_cast<uint8_t>(0x40 | hlen / 4);
    }
    const size_t offset = base + pos;
    if (offset > kMaxFragOffset) throw std::invalid_argument("fragment: offset past 65528");
    detail::put16(f, v->l3 + 2, static_cast<uint16_t>(hlen + n));
    detail::put16(f, v->l3 + 6,
                  static_cast<uint16_t>((orig_flags & 0x4000) | (!last || orig_mf ? 0x2000 : 0) |
                                        offset / 8));
    detail::put16(f, v->l3 + 10, 0);
    detail::put16(f, v->l3 + 10, inet_checksum(ByteView(f).subspan(v->l3, hlen)));
    f.insert(f.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
             data.begin() + static_cast<std::ptrdiff_t>(pos + n));
    out.push_back(std::move(f));
  }
  return out;
}

// Inverse of fragment(), fragments in any order (duplicates and consistent overlaps allowed):
// the L2 and IP header of the offset-0 fragment with MF and offset cleared, Total Length and
// checksum recomputed, the data joined. nullopt if fragments of different datagrams are mixed,
// a piece is missing, or a frame is not a complete IPv4 datagram.
inline std::optional<Bytes> reassemble(const std::vector<Bytes>& fragments) {
  struct Piece {
    ByteView frame;
    detail::Ipv4View v;
    size_t offset;
    bool mf;
  };
  std::vector<Piece> pieces;
  for (const Bytes& f : fragments) {
    const auto v = detail::locate_ipv4(f);
    if (!v || !v->complete) return std::nullopt;
    const uint16_t ff = detail::get16(v->datagram, 6);
    pieces.push_back({f, *v, static_cast<size_t>(ff & 0x1FFF) * 8, (ff & 0x2000) != 0});
  }
  if (pieces.empty()) return std::nullopt;
  const Piece* first = nullptr;
  std::optional<size_t> total;
  for (const Piece& p : pieces) {
    const ByteView d = p.v.datagram;
    const ByteView d0 = pieces[0].v.datagram;
    // Same datagram: same source, destination, protocol and ID (RFC 791).
    if (!std::equal(d.begin() + 12, d.begin() + 20, d0.begin() + 12) || d[9] != d0[9] ||
        detail::get16(d, 4) != detail::get16(d0, 4)) {
      return std::nullopt;
    }
    if (p.offset == 0) first = &p;
    if (!p.mf) {
      const size_t end = p.offset + d.size() - p.v.hlen;
      if (total && *total != end) return std::nullopt;
      total = end;
    }
  }
  if (first == nullptr || !total || first->v.hlen + *total > 0xFFFF) return std::nullopt;
  Bytes data(*total);
  std::vector<bool> have(*total, false);
  for (const Piece& p : pieces) {
    const ByteView chunk = p.v.datagram.subspan(p.v.hlen);
    if (p.offset + chunk.size() > *total) return std::nullopt;
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (have[p.offset + i] && data[p.offset + i] != chunk[i]) return std::nullopt;
      data[p.offset + i] = chunk[i];
      have[p.offset + i] = true;
    }
  }
  if (std::find(have.begin(), have.end(), false) != have.end()) return std::nullopt;

  const size_t l3 = first->v.l3;
  const size_t hlen = first->v.hlen;
  Bytes out(first->frame.begin(), first->frame.begin() + static_cast<std::ptrdiff_t>(l3 + hlen));
  detail::put16(out, l3 + 2, static_cast<uint16_t>(hlen + *total));
  detail::put16(out, l3 + 6, static_cast<uint16_t>(detail::get16(out, l3 + 6) & 0x4000));
  detail::put16(out, l3 + 10, 0);
  detail::put16(out, l3 + 10, inet_checksum(ByteView(out).subspan(l3, hlen)));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

}  // namespace eipgate::testing

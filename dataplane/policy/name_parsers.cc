// SNI and Host extraction from a connection's first bytes, and name pattern matching. Every read
// is checked against what the caller gave us (Short -> NeedMore) and against the length the
// framing declares (Over -> Malformed), so no input can read out of bounds.
#include "dataplane/policy/name_parsers.h"

#include <algorithm>
#include <vector>

namespace eipgate::policy {

std::string_view name_status_name(NameStatus s) {
  switch (s) {
    case NameStatus::Found:
      return "found";
    case NameStatus::NeedMore:
      return "need-more";
    case NameStatus::NotPresent:
      return "not-present";
    case NameStatus::Malformed:
      return "malformed";
  }
  return "?";
}

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view strip_trailing_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

// Lower-cases, strips one trailing dot and validates; the parsers' common exit.
NameStatus emit_name(std::string_view raw, std::string* out) {
  std::string_view name = strip_trailing_dot(raw);
  if (!valid_host_name(name)) return NameStatus::Malformed;
  out->resize(name.size());
  std::transform(name.begin(), name.end(), out->begin(), lower);
  return NameStatus::Found;
}

// ---- TLS -----------------------------------------------------------------------------------

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxPlaintextRecord = 16384;  // RFC 8446 §5.1
constexpr uint16_t kExtServerName = 0;
constexpr uint8_t kServerNameHost = 0;

enum class Need : uint8_t { Ok, Short, Over };

// Reads a byte stream of which `avail` bytes are here and `total` are declared by the framing.
class Reader {
 public:
  Reader(const uint8_t* p, size_t avail, size_t total)
      : p_(p), avail_(std::min(avail, total)), total_(total) {}
  Need need(size_t n) const {
    if (n > total_ - pos_) return Need::Over;
    if (n > avail_ - pos_) return Need::Short;
    return Need::Ok;
  }
  uint8_t u8() { return p_[pos_++]; }
  uint16_t u16() {
    const auto v = static_cast<uint16_t>((p_[pos_] << 8) | p_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  uint32_t u24() {
    const uint32_t v = (uint32_t{p_[pos_]} << 16) | (uint32_t{p_[pos_ + 1]} << 8) | p_[pos_ + 2];
    pos_ += 3;
    return v;
  }
  const uint8_t* here() const { return p_ + pos_; }
  void skip(size_t n) { pos_ += n; }
  size_t pos() const { return pos_; }
  size_t total() const { return total_; }
  bool at_end() const { return pos_ == total_; }

 private:
  const uint8_t* p_;
  size_t avail_;
  size_t total_;
  size_t pos_ = 0;
};

NameStatus short_or_over(Need n) {
  return n == Need::Short ? NameStatus::NeedMore : NameStatus::Malformed;
}

NameStatus parse_server_name_ext(Reader& r, size_t ext_len, std::string* out) {
  // The extension's whole body is available (checked by the caller).
  Reader e(r.here(), ext_len, ext_len);
  if (e.need(2) != Need::Ok) return NameStatus::Malformed;
  const uint16_t list_len = e.u16();
  if (list_len == 0 || size_t{list_len} + 2 != ext_len) return NameStatus::Malformed;
  while (!e.at_end()) {
    if (e.need(3) != Need::Ok) return NameStatus::Malformed;
    const uint8_t type = e.u8();
    const uint16_t name_len = e.u16();
    if (e.need(name_len) != Need::Ok) return NameStatus::Malformed;
    if (type == kServerNameHost) {
      return emit_name(std::string_view(reinterpret_cast<const char*>(e.here()), name_len), out);
    }
    e.skip(name_len);  // other name types (none defined today) are skipped
  }
  return NameStatus::NotPresent;
}

// `avail` bytes of a handshake stream whose records ended (a non-handshake record followed)
// when `ended`; otherwise more may come.
NameStatus parse_client_hello(const uint8_t* hs, size_t avail, bool ended, std::string* out) {
  auto ran_out = [ended] { return ended ? NameStatus::Malformed : NameStatus::NeedMore; };
  if (avail < 4) return ran_out();
  if (hs[0] != kHandshakeClientHello) return NameStatus::Malformed;
  Reader head(hs + 1, 3, 3);
  const uint32_t body_len = head.u24();
  // version 2 + random 32 + session id len 1 + suites len 2 + one suite 2 + comp len 1 + null 1
  if (body_len < 41) return NameStatus::Malformed;
  Reader r(hs + 4, avail - 4, body_len);
  auto need = [&](size_t n) {
    const Need k = r.need(n);
    if (k == Need::Short && ended) return Need::Over;  // nothing more will come
    return k;
  };
#define EIPGATE_NEED_HELLO(n)                     \
  do {                                            \
    const Need k_ = need(n);                      \
    if (k_ != Need::Ok) return short_or_over(k_); \
  } while (0)
  EIPGATE_NEED_HELLO(2 + 32 + 1);
  if (r.u8() != 3) return NameStatus::Malformed;  // legacy_version 3.x
  r.skip(1 + 32);
  const uint8_t sid_len = r.u8();
  if (sid_len > 32) return NameStatus::Malformed;
  EIPGATE_NEED_HELLO(size_t{sid_len} + 2);
  r.skip(sid_len);
  const uint16_t suites_len = r.u16();
  if (suites_len < 2 || suites_len % 2 != 0) return NameStatus::Malformed;
  EIPGATE_NEED_HELLO(size_t{suites_len} + 1);
  r.skip(suites_len);
  const uint8_t comp_len = r.u8();
  if (comp_len < 1) return NameStatus::Malformed;
  EIPGATE_NEED_HELLO(comp_len);
  r.skip(comp_len);
  if (r.at_end()) return NameStatus::NotPresent;  // no extensions at all (TLS 1.0 style)
  EIPGATE_NEED_HELLO(2);
  const uint16_t ext_total = r.u16();
  if (size_t{ext_total} != r.total() - r.pos()) return NameStatus::Malformed;
  while (!r.at_end()) {
    EIPGATE_NEED_HELLO(4);
    const uint16_t type = r.u16();
    const uint16_t ext_len = r.u16();
    EIPGATE_NEED_HELLO(ext_len);
    if (type == kExtServerName) return parse_server_name_ext(r, ext_len, out);
    r.skip(ext_len);  // GREASE (0x?a?a), key shares, padding, ...: not ours to read
  }
#undef EIPGATE_NEED_HELLO
  return NameStatus::NotPresent;
}

// ---- HTTP ----------------------------------------------------------------------------------

bool is_tchar(uint8_t c) {  // RFC 9110 §5.6.2
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

constexpr size_t kMaxMethod = 32;

// Checks the request line from `p`; NeedMore while it is an incomplete but valid prefix.
NameStatus parse_request_line(std::string_view s, size_t* next) {
  size_t i = 0;
  while (i < s.size() && is_tchar(static_cast<uint8_t>(s[i]))) {
    if (++i > kMaxMethod) return NameStatus::Malformed;
  }
  if (i == s.size()) return NameStatus::NeedMore;
  if (i == 0 || s[i] != ' ') return NameStatus::Malformed;
  ++i;
  const size_t target = i;
  while (i < s.size() && s[i] > 0x20 && s[i] < 0x7f) ++i;
  if (i == s.size()) return NameStatus::NeedMore;
  if (i == target || s[i] != ' ') return NameStatus::Malformed;
  ++i;
  static constexpr std::string_view kVersion = "HTTP/1.";
  for (size_t k = 0; k < kVersion.size(); ++k, ++i) {
    if (i == s.size()) return NameStatus::NeedMore;
    if (s[i] != kVersion[k]) return NameStatus::Malformed;
  }
  if (i == s.size()) return NameStatus::NeedMore;
  if (s[i] != '0' && s[i] != '1') return NameStatus::Malformed;
  ++i;
  if (i < s.size() && s[i] == '\r') ++i;
  if (i == s.size()) return NameStatus::NeedMore;
  if (s[i] != '\n') return NameStatus::Malformed;
  *next = i + 1;
  return NameStatus::Found;  // here: "request line complete"
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

NameStatus parse_tls_sni(const uint8_t* data, size_t len, std::string* out) {
  if (data == nullptr || len == 0) return NameStatus::NeedMore;
  // Handshake bytes are the concatenated payloads of the leading handshake records. Almost
  // always the ClientHello sits in one record and is parsed in place; otherwise it is copied.
  const uint8_t* first = nullptr;
  size_t first_len = 0;
  std::vector<uint8_t> joined;  // only when the hello spans records
  size_t records = 0;
  bool ended = false;  // a non-handshake record follows: no more handshake bytes will come
  size_t pos = 0;
  while (pos < len) {
    const size_t left = len - pos;
    if (data[pos] != kContentHandshake) {
      if (records == 0) return NameStatus::Malformed;
      ended = true;
      break;
    }
    if (left >= 2 && data[pos + 1] != 3) return NameStatus::Malformed;
    if (left >= 3 && data[pos + 2] > 4) return NameStatus::Malformed;
    if (left < kRecordHeader) break;
    const size_t rlen = (size_t{data[pos + 3]} << 8) | data[pos + 4];
    if (rlen == 0 || rlen > kMaxPlaintextRecord) return NameStatus::Malformed;
    const uint8_t* payload = data + pos + kRecordHeader;
    const size_t here = std::min(rlen, left - kRecordHeader);
    if (records == 0) {
      first = payload;
      first_len = here;
    } else {
      if (records == 1) joined.assign(first, first + first_len);
      joined.insert(joined.end(), payload, payload + here);
    }
    ++records;
    pos += kRecordHeader + rlen;
    // Once the handshake bytes hold the whole ClientHello (4-byte header + its length), what
    // follows is not read: a later record must not change an answer already final.
    const uint8_t* hs = records == 1 ? first : joined.data();
    const size_t hs_len = records == 1 ? first_len : joined.size();
    if (hs_len >= 4) {
      const size_t body = (size_t{hs[1]} << 16) | (size_t{hs[2]} << 8) | hs[3];
      if (hs_len >= 4 + body) break;
    }
  }
  if (records == 0) return NameStatus::NeedMore;
  if (records == 1) return parse_client_hello(first, first_len, ended, out);
  return parse_client_hello(joined.data(), joined.size(), ended, out);
}

NameStatus parse_http_host(const uint8_t* data, size_t len, std::string* out) {
  if (data == nullptr || len == 0) return NameStatus::NeedMore;
  std::string_view s(reinterpret_cast<const char*>(data), len);
  size_t pos = 0;
  // RFC 9112 §2.2: ignore empty lines before the request line.
  while (pos < s.size() && (s[pos] == '\r' || s[pos] == '\n')) ++pos;
  if (pos == s.size()) return NameStatus::NeedMore;
  size_t next = 0;
  const NameStatus rl = parse_request_line(s.substr(pos), &next);
  if (rl != NameStatus::Found) return rl;
  pos += next;
  bool have_host = false;
  bool last_was_host = false;
  std::string_view host;
  while (true) {
    const size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) {
      // Reject binary junk early instead of waiting for name_max_bytes.
      for (size_t i = pos; i < s.size(); ++i) {
        const auto c = static_cast<uint8_t>(s[i]);
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) return NameStatus::Malformed;
      }
      return NameStatus::NeedMore;
    }
    std::string_view line = s.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header block
    for (char ch : line) {
      const auto c = static_cast<uint8_t>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return NameStatus::Malformed;
    }
    if (line.front() == ' ' || line.front() == '\t') {  // obs-fold continuation
      if (last_was_host) return NameStatus::Malformed;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return NameStatus::Malformed;
    const std::string_view name = line.substr(0, colon);
    for (char ch : name) {
      if (!is_tchar(static_cast<uint8_t>(ch))) return NameStatus::Malformed;
    }
    last_was_host = iequals(name, "host");
    if (!last_was_host) continue;
    if (have_host) return NameStatus::Malformed;
    have_host = true;
    host = trim_ows(line.substr(colon + 1));
  }
  if (!have_host || host.empty()) return NameStatus::NotPresent;
  if (host.front() == '[') return NameStatus::Malformed;  // IP literal: no name to check
  const size_t port_colon = host.rfind(':');
  if (port_colon != std::string_view::npos) {
    const std::string_view port = host.substr(port_colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return NameStatus::Malformed;
    }
    host = host.substr(0, port_colon);
  }
  return emit_name(host, out);
}

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

bool valid_name_pattern(std::string_view pattern, std::string* why) {
  auto fail = [why](const char* reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  std::string_view p = strip_trailing_dot(pattern);
  if (p.empty()) return fail("empty host name pattern");
  if (p.front() == '*') {
    if (p.size() < 3 || p[1] != '.') return fail("a wildcard must be a whole first label: *.name");
    p.remove_prefix(2);
  }
  if (p.find('*') != std::string_view::npos) {
    return fail("'*' is allowed only as the whole first label (*.example.com)");
  }
  if (!valid_host_name(p)) {
    return fail("not a host name (labels of 1-63 letters, digits, '-' or '_'; 253 at most)");
  }
  // Four all-digit labels: an address, which belongs in `dst`, where it is enforced by address.
  int labels = 1;
  bool digits_only = true;
  for (char c : p) {
    if (c == '.') {
      ++labels;
    } else if (c < '0' || c > '9') {
      digits_only = false;
    }
  }
  if (digits_only && labels == 4) return fail("an IPv4 address is not a host name: use dst");
  return true;
}

bool name_matches(std::string_view pattern, std::string_view host) {
  pattern = strip_trailing_dot(pattern);
  host = strip_trailing_dot(host);
  if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() &&
           iequals(host.substr(host.size() - suffix.size()), suffix) &&
           host[host.size() - suffix.size() - 1] != '.';
  }
  return iequals(pattern, host);
}

}  // namespace eipgate::policy

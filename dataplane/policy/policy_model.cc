// The egress policy's data model: prefixes, names of enums, issues, the overlap analysis and
// which inside prefixes the groups govern. Standard library only (the engine may use it).
#include "dataplane/policy/policy_model.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace eipgate::policy {

std::string Prefix::to_string() const {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
         std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255) + "/" +
         std::to_string(len);
}

std::optional<Prefix> parse_prefix(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<Prefix> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  const std::string_view orig = text;
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) about `"'" + std::string(...)` here.
  auto fail_quoted = [&](std::string_view tail) {
    std::string m = "'";
    m.append(orig);
    m.append(tail);
    return fail(m);
  };
  uint32_t addr = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (text.empty() || text.front() != '.')
        return fail_quoted("' is not an IPv4 address or CIDR");
      text.remove_prefix(1);
    }
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    const auto n = static_cast<size_t>(end - text.data());
    if (ec != std::errc{} || n == 0 || n > 3 || v > 255 || (n > 1 && text.front() == '0')) {
      return fail_quoted("' is not an IPv4 address or CIDR");
    }
    addr = (addr << 8) | v;
    text.remove_prefix(n);
  }
  uint8_t len = 32;
  if (!text.empty()) {
    if (text.front() != '/') return fail_quoted("' is not an IPv4 address or CIDR");
    text.remove_prefix(1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    // No leading zero (`/08`): the prefix grammar of every config file (common/README.md).
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || v > 32 ||
        (text.size() > 1 && text.front() == '0')) {
      return fail_quoted("': prefix length must be 0-32");
    }
    len = static_cast<uint8_t>(v);
  }
  const Prefix p{addr & Prefix::mask(len), len};
  if (p.addr != addr) {
    return fail_quoted("' has host bits set (did you mean " + p.to_string() + "?)");
  }
  return p;
}

std::string_view proto_name(Proto p) {
  switch (p) {
    case Proto::Any:
      return "any";
    case Proto::Tcp:
      return "tcp";
    case Proto::Udp:
      return "udp";
    case Proto::Icmp:
      return "icmp";
  }
  return "?";
}

std::string_view deny_action_name(DenyAction a) {
  return a == DenyAction::Drop ? "drop" : "reject";
}

std::string Issue::to_string() const {
  if (line > 0) return file + ":" + std::to_string(line) + ": " + reason;
  return file + ": " + reason;
}

namespace {

// Which of TCP, UDP, ICMP a rule applies to (bits 0, 1, 2).
unsigned proto_bits(const Rule& r) {
  switch (r.proto) {
    case Proto::Tcp:
      return 1;
    case Proto::Udp:
      return 2;
    case Proto::Icmp:
      return 4;
    case Proto::Any:
      return r.has_ports ? 3 : 7;
  }
  return 0;
}

bool same_hosts(const Rule& a, const Rule& b) {
  std::vector<std::string> x = a.hosts;
  std::vector<std::string> y = b.hosts;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

// Earlier rule `a` matches everything later rule `b` matches.
bool covers(const Rule& a, const Rule& b) {
  const unsigned pa = proto_bits(a);
  const unsigned pb = proto_bits(b);
  if ((pb & ~pa) != 0) return false;
  if ((pb & 3) != 0 && (a.port_lo > b.port_lo || a.port_hi < b.port_hi)) return false;
  if (!a.hosts.empty() && !same_hosts(a, b)) return false;
  return std::all_of(b.dst.begin(), b.dst.end(), [&](const Prefix& q) {
    return std::any_of(a.dst.begin(), a.dst.end(), [&](const Prefix& p) { return p.covers(q); });
  });
}

bool overlaps(const Rule& a, const Rule& b) {
  const unsigned both = proto_bits(a) & proto_bits(b);
  if (both == 0) return false;
  if ((both & 4) == 0 && (a.port_hi < b.port_lo || b.port_hi < a.port_lo)) return false;
  return std::any_of(b.dst.begin(), b.dst.end(), [&](const Prefix& q) {
    return std::any_of(a.dst.begin(), a.dst.end(), [&](const Prefix& p) { return p.overlaps(q); });
  });
}

}  // namespace

std::vector<Issue> overlap_warnings(const PolicyConfig& config, std::string_view file) {
  std::vector<Issue> out;
  for (const auto& g : config.groups) {
    for (size_t j = 0; j < g.rules.size(); ++j) {
      const Rule& b = g.rules[j];
      for (size_t i = 0; i < j; ++i) {
        const Rule& a = g.rules[i];
        if (covers(a, b)) {
          out.push_back(Issue{std::string(file), b.line,
                              "rule '" + b.name + "' (group '" + g.name +
                                  "') never matches: rule '" + a.name + "' (line " +
                                  std::to_string(a.line) + ") comes first and covers it"});
          break;
        }
        if (a.allow != b.allow && a.hosts.empty() && b.hosts.empty() && overlaps(a, b)) {
          out.push_back(Issue{std::string(file), b.line,
                              "rule '" + b.name + "' (group '" + g.name + "') overlaps rule '" +
                                  a.name + "' (line " + std::to_string(a.line) +
                                  ") with the opposite action; the earlier rule wins"});
          break;
        }
      }
    }
  }
  return out;
}

UngovernedSources ungoverned_sources(const PolicyConfig& config,
                                     const std::vector<Prefix>& inside) {
  // The groups' sources as sorted, merged address intervals [lo, hi].
  std::vector<std::pair<uint64_t, uint64_t>> covered;
  for (const auto& g : config.groups) {
    for (const auto& s : g.sources) {
      const uint64_t lo = s.addr;
      covered.emplace_back(lo, lo + (uint64_t{1} << (32 - s.len)) - 1);
    }
  }
  std::sort(covered.begin(), covered.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& iv : covered) {
    if (!merged.empty() && iv.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, iv.second);
    } else {
      merged.push_back(iv);
    }
  }
  UngovernedSources out;
  for (const auto& p : inside) {
    const uint64_t lo = p.addr & Prefix::mask(p.len);
    const uint64_t hi = lo + (uint64_t{1} << (32 - p.len)) - 1;
    uint64_t inside_groups = 0;
    for (const auto& [mlo, mhi] : merged) {
      const uint64_t a = std::max(lo, mlo);
      const uint64_t b = std::min(hi, mhi);
      if (a <= b) inside_groups += b - a + 1;
    }
    const uint64_t left = (hi - lo + 1) - inside_groups;
    if (left == 0) continue;
    ++out.prefixes;
    out.addresses += left;
    out.which.push_back(Prefix{static_cast<uint32_t>(lo), p.len});
    if (inside_groups != 0) ++out.partly;
  }
  return out;
}

std::string ungoverned_summary(const PolicyConfig& config, const std::vector<Prefix>& inside) {
  if (config.empty()) return {};
  const UngovernedSources u = ungoverned_sources(config, inside);
  if (u.prefixes == 0) return {};
  std::string line = "policy: ";
  line += std::to_string(u.prefixes);
  line += " of ";
  line += std::to_string(inside.size());
  line += " inside prefixes (";
  for (size_t k = 0; k < u.which.size(); ++k) {
    if (k != 0) line += ", ";
    line += u.which[k].to_string();
  }
  line += ") hold ";
  line += std::to_string(u.addresses);
  line += " addresses in no group";
  if (u.partly != 0) {
    line += " (";
    line += std::to_string(u.partly);
    line += " partly)";
  }
  line += ": their connections are ";
  if (config.unmatched_allow) {
    line += "allowed everywhere (unmatched_sources: allow)";
  } else {
    line += "refused (unmatched_sources: ";
    line += deny_action_name(config.unmatched_deny);
    line += ")";
  }
  return line;
}

}  // namespace eipgate::policy

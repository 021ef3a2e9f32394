// The config schema toolkit (yaml_schema.h); the grammar it implements: common/README.md.
#include "common/yaml_schema.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/ipv4_text.h"

namespace eipgate::yaml_schema {

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void set_why(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
}

}  // namespace

std::string SchemaError::to_string() const {
  // One error, one line: control bytes from the file (a quoted "a\nb", a NUL in a syntax
  // error) are written as escapes, so a reader or a log collector never sees a line split.
  std::string text = line > 0 ? file + ":" + std::to_string(line) + ": " : file + ": ";
  for (const char c : reason) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      text += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      text += "\\x";
      text += kHex[u >> 4];
      text += kHex[u & 15];
    } else {
      text += c;
    }
  }
  return text;
}

std::optional<uint64_t> parse_duration_ms(std::string_view s, std::string* why) {
  if (s.empty()) {
    set_why(why, "empty duration");
    return std::nullopt;
  }
  std::string_view rest = s;
  uint64_t total = 0;
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || digits > 19) {
      set_why(why, quoted(s) + " is not a duration (e.g. 350s, 5m, 1h, 500ms)");
      return std::nullopt;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < digits; ++i) {
      const uint64_t d = static_cast<uint64_t>(rest[i] - '0');
      if (n > (kMaxDurationMs - d) / 10) {  // far beyond the bound: stop before it overflows
        set_why(why, quoted(s) + " is too long");
        return std::nullopt;
      }
      n = n * 10 + d;
    }
    rest.remove_prefix(digits);
    size_t unit_len = 0;
    while (unit_len < rest.size() && (rest[unit_len] < '0' || rest[unit_len] > '9')) ++unit_len;
    const std::string_view unit = rest.substr(0, unit_len);
    rest.remove_prefix(unit_len);
    uint64_t scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = uint64_t{60} * 1000;
    } else if (unit == "h") {
      scale = uint64_t{3600} * 1000;
    } else if (unit.empty()) {
      set_why(why, quoted(s) + " has no unit (use ms, s, m or h, e.g. " + std::string(s) + "s)");
      return std::nullopt;
    } else {
      set_why(why, quoted(s) + ": unknown unit '" + std::string(unit) + "' (use ms, s, m or h)");
      return std::nullopt;
    }
    if (n > kMaxDurationMs / scale || total + n * scale > kMaxDurationMs) {
      set_why(why, quoted(s) + " is too long");
      return std::nullopt;
    }
    total += n * scale;
  }
  return total;
}

std::optional<bool> parse_bool(std::string_view s, std::string* why) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  set_why(why, quoted(s) + " is not a boolean (true or false)");
  return std::nullopt;
}

std::optional<uint32_t> parse_address(std::string_view s, std::string* why) {
  if (auto a = parse_ipv4(s)) return a;
  set_why(why, quoted(s) + " is not an IPv4 address");
  return std::nullopt;
}

std::string Cidr::to_string() const { return ipv4_to_string(addr) + "/" + std::to_string(len); }

std::optional<Cidr> parse_cidr(std::string_view s, std::string* why) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) {
    set_why(why, quoted(s) + " has no prefix length (write it as address/length)");
    return std::nullopt;
  }
  const auto addr = parse_ipv4(s.substr(0, slash));
  if (!addr) {
    set_why(why, quoted(s) + " is not an IPv4 prefix");
    return std::nullopt;
  }
  const std::string_view len = s.substr(slash + 1);
  if (!all_digits(len) || len.size() > 2 || (len.size() > 1 && len[0] == '0') ||
      (len.size() == 2 && (len[0] - '0') * 10 + (len[1] - '0') > 32)) {
    set_why(why, quoted(s) + ": prefix length must be 0..32");
    return std::nullopt;
  }
  const int n = len.size() == 1 ? len[0] - '0' : (len[0] - '0') * 10 + (len[1] - '0');
  return Cidr{*addr, static_cast<uint8_t>(n)};
}

std::optional<Cidr> parse_network(std::string_view s, std::string* why) {
  auto c = parse_cidr(s, why);
  if (!c) return std::nullopt;
  const Cidr net{c->addr & c->mask(), c->len};
  if (net.addr != c->addr) {
    set_why(why, quoted(s) + " has host bits set (the network would be " + net.to_string() + ")");
    return std::nullopt;
  }
  return c;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string did_you_mean(std::string_view name,
                         std::initializer_list<std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = 3;  // close matches only: typos, not other keys
  for (const std::string_view c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

int line_of(const YAML::Node& n) {
  if (!n.IsDefined()) return 0;
  return n.Mark().is_null() ? 0 : n.Mark().line + 1;
}

const char* type_name(const YAML::Node& n) {
  if (!n.IsDefined()) return "nothing";
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::vector<Entry> map_entries(const YAML::Node& node, int line, std::string_view path,
                               std::initializer_list<std::string_view> allowed,
                               std::vector<Issue>* issues) {
  std::vector<Entry> out;
  const std::string where = path.empty() ? std::string() : std::string(path) + ": ";
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsMap()) {
    issues->push_back(Issue{line, where + "expected a mapping, got " + type_name(node)});
    return out;
  }
  for (const auto& kv : node) {
    const YAML::Node key = kv.first;  // copies: yaml-cpp's iterator yields temporaries
    const int key_line = line_of(key);
    if (!key.IsScalar()) {
      issues->push_back(Issue{key_line, where + "keys must be plain names"});
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      issues->push_back(
          Issue{key_line, where + "unknown key '" + name + "'" + did_you_mean(name, allowed)});
      continue;
    }
    const auto dup =
        std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.key == name; });
    if (dup != out.end()) {
      issues->push_back(Issue{key_line, where + "duplicate key '" + name + "' (first on line " +
                                            std::to_string(dup->line) + ")"});
      continue;
    }
    out.push_back(Entry{name, key_line, kv.second});
  }
  return out;
}

std::vector<ScalarEntry> scalar_entries(const YAML::Node& node, int line, const std::string& file,
                                        std::string_view path,
                                        std::initializer_list<std::string_view> allowed,
                                        std::vector<SchemaError>* errors) {
  std::vector<ScalarEntry> out;
  const std::string where(path);
  if (!node.IsDefined() || node.IsNull()) {
    errors->push_back(SchemaError{file, line, where + ": expected a mapping, got nothing"});
    return out;
  }
  std::vector<Issue> issues;
  const auto entries = map_entries(node, line, path, allowed, &issues);
  for (auto& i : issues) errors->push_back(SchemaError{file, i.line, std::move(i.reason)});
  for (const auto& e : entries) {
    const int at = e.value.IsNull() ? e.line : line_of(e.value);
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      errors->push_back(SchemaError{
          file, at, where + "." + e.key + ": expected a value, got " + type_name(e.value)});
      continue;
    }
    out.push_back(ScalarEntry{e.key, at, e.value.Scalar()});
  }
  return out;
}

namespace {

// yaml-cpp 0.7 never returns (it allocates until killed) on a ',' at the top level of a
// document: as its first token ("," or "# c\n  ,x"), after the first node's anchor or tag
// ("&a ,", "!t,") or right after a top-level flow collection ("{a: 1},"). Such a file is not valid
// YAML, so it is refused before yaml-cpp sees it. Returns the 1-based line of that ',' or 0.
int stray_top_level_comma(std::string_view s) {
  size_t i = 0;
  int line = 1;
  auto skip_space_and_comments = [&] {
    while (i < s.size()) {
      if (s[i] == '\n') {
        ++line;
        ++i;
      } else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
        ++i;
      } else if (s[i] == '#') {
        while (i < s.size() && s[i] != '\n') ++i;
      } else {
        break;
      }
    }
  };
  skip_space_and_comments();
  // Node properties first (an anchor &a, a tag !t; an alias *a): their names end at a ','.
  while (i < s.size() && (s[i] == '&' || s[i] == '!' || s[i] == '*')) {
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != ',') ++i;
    skip_space_and_comments();
  }
  if (i < s.size() && s[i] == ',') return line;
  if (i >= s.size() || (s[i] != '{' && s[i] != '[')) return 0;
  // A document that is one flow collection: find its end, then look at what follows.
  int depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') {
      ++line;
    } else if (c == '"' || c == '\'') {
      for (++i; i < s.size() && s[i] != c; ++i) {
        if (s[i] == '\n') ++line;
        if (c == '"' && s[i] == '\\' && i + 1 < s.size()) ++i;
      }
    } else if (c == '#' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) {
      while (i + 1 < s.size() && s[i + 1] != '\n') ++i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        ++i;
        skip_space_and_comments();
        return i < s.size() && s[i] == ',' ? line : 0;
      }
    }
    ++i;
  }
  return 0;
}

}  // namespace

std::optional<YAML::Node> load_document(const std::string& text, Issue* error) {
  // YAML allows no C0 control byte but tab, LF and CR, nor DEL; yaml-cpp 0.7 can loop forever on
  // some ("\0,,"), so they are refused here, with their line.
  int at = 1;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') ++at;
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      *error = Issue{at, std::string("YAML syntax error: control byte 0x") + kHex[u >> 4] +
                             kHex[u & 15] + " is not allowed in a YAML file"};
      return std::nullopt;
    }
  }
  if (const int line = stray_top_level_comma(text); line > 0) {
    *error = Issue{line, "YAML syntax error: ',' outside a flow collection ([...] or {...})"};
    return std::nullopt;
  }
  try {
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      *error = Issue{line_of(docs[1]),
                     "expected one YAML document, found " + std::to_string(docs.size())};
      return std::nullopt;
    }
    return docs.empty() ? YAML::Node() : docs[0];
  } catch (const YAML::Exception& e) {
    *error = Issue{e.mark.is_null() ? 0 : e.mark.line + 1, "YAML syntax error: " + e.msg};
    return std::nullopt;
  }
}

std::optional<std::string> read_config_file(const std::string& path, SchemaError* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *error = SchemaError{path, 0, std::string("cannot open: ") + std::strerror(errno)};
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    *error = SchemaError{path, 0, std::string("cannot read: ") + std::strerror(err)};
    return std::nullopt;
  }
  return text;
}

}  // namespace eipgate::yaml_schema

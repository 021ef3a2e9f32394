// Translation log lines, the rotating file and the `who` lookup (translation_log.h).
#include "dataplane/admin/translation_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

namespace eipgate::txlog {

namespace {

void append_addr(std::string& out, uint32_t ip, uint16_t port) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255,
                              (ip >> 8) & 255, ip & 255, port);
  out.append(buf, static_cast<size_t>(n));
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// A JSON string body: rule names are operator-chosen, so escape what JSON requires.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string_view proto_name(uint8_t p) {
  switch (p) {
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 1:
      return "icmp";
    default:
      return "other";
  }
}

bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t k = pos; k < pos + n; ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    v = v * 10 + (s[k] - '0');
  }
  *out = v;
  return true;
}

// ".fff..." at pos: milliseconds (more digits are truncated); advances pos.
bool fraction_ms(std::string_view s, size_t* pos, uint64_t* ms) {
  *ms = 0;
  if (*pos >= s.size() || s[*pos] != '.') return true;
  ++*pos;
  size_t n = 0;
  uint64_t scale = 100;
  while (*pos < s.size() && s[*pos] >= '0' && s[*pos] <= '9') {
    *ms += scale * static_cast<uint64_t>(s[*pos] - '0');
    scale /= 10;
    ++*pos;
    ++n;
  }
  return n > 0;
}

}  // namespace

std::string iso8601_ms(uint64_t unix_ms) {
  const auto secs = static_cast<time_t>(unix_ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<unsigned>(unix_ms % 1000));
  return buf;
}

bool parse_time(std::string_view s, uint64_t* unix_ms) {
  if (s.empty()) return false;
  if (s.find('-') == std::string_view::npos || s.size() < 19) {
    uint64_t secs = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (r.ec != std::errc() || r.ptr == s.data()) return false;
    size_t pos = static_cast<size_t>(r.ptr - s.data());
    uint64_t ms = 0;
    if (!fraction_ms(s, &pos, &ms) || pos != s.size()) return false;
    *unix_ms = secs * 1000 + ms;
    return true;
  }
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, &y) || s[4] != '-' || !digits(s, 5, 2, &mo) || s[7] != '-' ||
      !digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, &h) || s[13] != ':' || !digits(s, 14, 2, &mi) || s[16] != ':' ||
      !digits(s, 17, 2, &se)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  size_t pos = 19;
  uint64_t ms = 0;
  if (!fraction_ms(s, &pos, &ms)) return false;
  int64_t offset_s = 0;
  if (pos < s.size()) {
    if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
      pos = s.size();
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om;
      const size_t colon = s.size() == pos + 6 ? 1 : 0;
      if (!digits(s, pos + 1, 2, &oh) || (colon && s[pos + 3] != ':') ||
          !digits(s, pos + 3 + colon, 2, &om) || pos + 5 + colon != s.size() || oh > 23 ||
          om > 59) {
        return false;
      }
      offset_s = (s[pos] == '-' ? -1 : 1) * (int64_t{oh} * 3600 + om * 60);
    } else {
      return false;
    }
  }
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = se;
  const int64_t secs = static_cast<int64_t>(timegm(&t)) - offset_s;
  if (secs < 0) return false;
  *unix_ms = static_cast<uint64_t>(secs) * 1000 + ms;
  return true;
}

void append_line(std::string& out, const engine::TxLogRecord& r, uint64_t unix_ms,
                 std::string_view rule) {
  const bool close = r.event == engine::TxEvent::Close;
  out += "{\"t\":\"";
  out += iso8601_ms(unix_ms);
  out += close ? "\",\"ev\":\"close\",\"proto\":\"" : "\",\"ev\":\"open\",\"proto\":\"";
  out += proto_name(r.proto);
  out += "\",\"in\":\"";
  append_addr(out, r.inside_ip, r.inside_port);
  out += "\",\"out\":\"";
  append_addr(out, r.outside_ip, r.outside_port);
  out += "\",\"remote\":\"";
  append_addr(out, r.remote_ip, r.remote_port);
  out += "\",\"rule\":";
  if (rule.empty()) {
    out += "null";
  } else {
    append_json_string(out, rule);
  }
  if (close) {
    out += ",\"bytes_out\":";
    append_uint(out, r.bytes_out);
    out += ",\"bytes_in\":";
    append_uint(out, r.bytes_in);
    out += ",\"dur_ms\":";
    append_uint(out, r.duration_ms);
    out += ",\"end\":\"";
    out += engine::tx_end_name(r.end);
    out += '"';
  }
  if (r.synced) out += ",\"synced\":true";
  out += "}\n";
}

// ---- RotatingFile ----

RotatingFile::RotatingFile(std::string path, uint64_t max_bytes, uint32_t keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {}

RotatingFile::~RotatingFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool RotatingFile::open_file() {
  if (fd_ >= 0) return true;
  const size_t slash = path_.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    // mkdir -p of the parent (each level; EEXIST is fine).
    for (size_t k = 1; k <= slash; ++k) {
      if (k == slash || path_[k] == '/') {
        const std::string dir = path_.substr(0, k);
        if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
          error_ = "mkdir " + dir + ": " + std::strerror(errno);
          return false;
        }
      }
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    error_ = "open " + path_ + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

bool RotatingFile::rotate() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (keep_ == 0) {
    ::unlink(path_.c_str());
  } else {
    for (uint32_t k = keep_; k > 1; --k) {
      const std::string from = path_ + "." + std::to_string(k - 1);
      const std::string to = path_ + "." + std::to_string(k);
      ::rename(from.c_str(), to.c_str());  // a missing one is fine
    }
    if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0 && errno != ENOENT) {
      error_ = "rename " + path_ + ": " + std::strerror(errno);
      return false;
    }
  }
  ++rotations_;
  size_ = 0;
  return open_file();
}

bool RotatingFile::write(std::string_view data) {
  if (!open_file()) return false;
  if (size_ > 0 && size_ + data.size() > max_bytes_ && !rotate()) return false;
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = "write " + path_ + ": " + std::strerror(errno);
      ::close(fd_);  // reopened (and its size read again) on the next write
      fd_ = -1;
      return false;
    }
    size_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ---- who ----

std::vector<std::string> log_files(const std::string& path) {
  std::vector<std::string> rotated;
  for (uint32_t k = 1; k <= 100000; ++k) {
    const std::string p = path + "." + std::to_string(k);
    if (::access(p.c_str(), R_OK) != 0) break;
    rotated.push_back(p);
  }
  std::vector<std::string> out(rotated.rbegin(), rotated.rend());
  if (::access(path.c_str(), R_OK) == 0) out.push_back(path);
  return out;
}

std::vector<Use> who(const std::vector<std::string>& files, std::string_view outside,
                     uint64_t at_ms, uint64_t* bad_lines) {
  using Key = std::tuple<std::string, std::string, std::string>;  // proto, inside, remote
  std::map<Key, Use> open;  // connections on `outside` with an open and no close yet
  std::vector<Use> found;
  const auto consider = [&](const Use& u) {
    if (u.open_ms <= at_ms && (!u.close_ms || at_ms <= *u.close_ms)) found.push_back(u);
  };
  const auto str = [](const nlohmann::json& j, const char* k) {
    const auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto num = [](const nlohmann::json& j, const char* k) {
    const auto it = j.find(k);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
  };
  uint64_t bad = 0;
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(outside) == std::string::npos) continue;  // cheap filter before parsing
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      uint64_t t = 0;
      if (j.is_discarded() || !j.is_object() || !parse_time(str(j, "t"), &t)) {
        ++bad;
        continue;
      }
      if (str(j, "out") != outside) continue;
      const std::string ev = str(j, "ev");
      Use u;
      u.proto = str(j, "proto");
      u.inside = str(j, "in");
      u.outside = str(j, "out");
      u.remote = str(j, "remote");
      u.rule = str(j, "rule");
      const auto sy = j.find("synced");
      u.synced = sy != j.end() && sy->is_boolean() && sy->get<bool>();
      // Another flow of the same outside tuple and remote cannot coexist with an open one: one
      // still open here lost its close record (a restart); it ended when the next one began.
      const auto supersede = [&](uint64_t when) {
        for (auto it = open.begin(); it != open.end();) {
          if (std::get<0>(it->first) == u.proto && std::get<2>(it->first) == u.remote) {
            it->second.close_ms = when;
            it->second.end = "unknown";
            consider(it->second);
            it = open.erase(it);
          } else {
            ++it;
          }
        }
      };
      if (ev == "open") {
        supersede(t);
        u.open_ms = t;
        open[Key{u.proto, u.inside, u.remote}] = u;
      } else if (ev == "close") {
        const Key k{u.proto, u.inside, u.remote};
        const auto it = open.find(k);
        if (it != open.end()) {
          u.open_ms = it->second.open_ms;
          u.synced = it->second.synced;
          if (u.rule.empty()) u.rule = it->second.rule;
          open.erase(it);
        } else {
          supersede(t);
          const uint64_t dur = num(j, "dur_ms");
          u.open_ms = t >= dur ? t - dur : 0;  // its open is in a file rotated away
        }
        u.close_ms = t;
        u.end = str(j, "end");
        u.bytes_out = num(j, "bytes_out");
        u.bytes_in = num(j, "bytes_in");
        consider(u);
      } else {
        ++bad;
      }
    }
  }
  for (const auto& [k, u] : open) consider(u);
  if (bad_lines) *bad_lines = bad;
  return found;
}

}  // namespace eipgate::txlog

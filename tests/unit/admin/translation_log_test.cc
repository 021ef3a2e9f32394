// Translation log files: the JSON line of a record, the size-rotated file, the time parser and the
// `eipgatectl who` lookup over current and rotated files.
#include "dataplane/admin/translation_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace eipgate::txlog {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/txlog_test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

engine::TxLogRecord rec(engine::TxEvent ev, uint16_t in_port, uint16_t out_port) {
  engine::TxLogRecord r;
  r.event = ev;
  r.proto = 6;
  r.inside_ip = 0x0a00010a;  // 10.0.1.10
  r.inside_port = in_port;
  r.outside_ip = 0xcb007101;  // 203.0.113.1
  r.outside_port = out_port;
  r.remote_ip = 0xc6336407;  // 198.51.100.7
  r.remote_port = 443;
  if (ev == engine::TxEvent::Close) {
    r.bytes_out = 1234;
    r.bytes_in = 56789;
    r.duration_ms = 4500;
    r.end = engine::TxEnd::Fin;
  }
  return r;
}

constexpr uint64_t kT0 = 1796474096000;  // 2026-12-05T12:34:56Z

TEST(TxLogTime, ParsesIso8601AndUnixSeconds) {
  uint64_t ms = 0;
  ASSERT_TRUE(parse_time("2026-12-05T12:34:56Z", &ms));
  EXPECT_EQ(ms, kT0);
  ASSERT_TRUE(parse_time("2026-12-05T12:34:56.250Z", &ms));
  EXPECT_EQ(ms, kT0 + 250);
  ASSERT_TRUE(parse_time("2026-12-05T13:34:56+01:00", &ms));
  EXPECT_EQ(ms, kT0);
  ASSERT_TRUE(parse_time("2026-12-05 12:34:56", &ms));
  EXPECT_EQ(ms, kT0);
  ASSERT_TRUE(parse_time("1796474096", &ms));
  EXPECT_EQ(ms, kT0);
  ASSERT_TRUE(parse_time("1796474096.5", &ms));
  EXPECT_EQ(ms, kT0 + 500);
  EXPECT_EQ(iso8601_ms(kT0 + 7), "2026-12-05T12:34:56.007Z");
  for (const char* bad : {"", "yesterday", "2026-13-05T11:14:56Z", "2026-12-05T11:14", "12x",
                          "2026-12-05T12:34:56Q"}) {
    EXPECT_FALSE(parse_time(bad, &ms)) << bad;
  }
}

TEST(TxLogLine, OpenAndCloseAreCompactJsonWithTheDocumentedFields) {
  std::string out;
  append_line(out, rec(engine::TxEvent::Open, 40000, 1024), kT0, "dns");
  auto r = rec(engine::TxEvent::Close, 40000, 1024);
  r.synced = true;
  append_line(out, r, kT0 + 4500, "");
  const size_t nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(out.substr(0, nl),
            R"({"t":"2026-12-05T12:34:56.000Z","ev":"open","proto":"tcp","in":"10.0.1.10:40000",)"
            R"("out":"203.0.113.1:1024","remote":"198.51.100.7:443","rule":"dns"})");
  const auto c = nlohmann::json::parse(out.substr(nl + 1));
  EXPECT_EQ(c["ev"], "close");
  EXPECT_EQ(c["bytes_out"], 1234);
  EXPECT_EQ(c["bytes_in"], 56789);
  EXPECT_EQ(c["dur_ms"], 4500);
  EXPECT_EQ(c["end"], "fin");
  EXPECT_TRUE(c["rule"].is_null());
  EXPECT_EQ(c["synced"], true);
  EXPECT_EQ(out.back(), '\n');
  // A rule name is escaped as JSON requires.
  std::string esc;
  append_line(esc, rec(engine::TxEvent::Open, 1, 2), kT0, "a\"b\\c");
  EXPECT_EQ(nlohmann::json::parse(esc)["rule"], "a\"b\\c");
}

TEST(TxLogFile, RotatesBySizeAndKeepsNFiles) {
  TempDir dir;
  const std::string path = dir.file("sub/translations.jsonl");  // the directory is created
  RotatingFile f(path, 4096, 2);
  std::string line;
  append_line(line, rec(engine::TxEvent::Open, 40000, 1024), kT0, "");
  const size_t per_file = 4096 / line.size();
  for (size_t k = 0; k < per_file * 4; ++k) ASSERT_TRUE(f.write(line)) << f.error();
  EXPECT_EQ(f.rotations(), 3u);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3"));  // keep: 2
  for (const auto& p : {path, path + ".1", path + ".2"}) {
    EXPECT_LE(fs::file_size(p), 4096u) << p;
    EXPECT_EQ(fs::file_size(p) % line.size(), 0u) << p;  // whole lines only
  }
  EXPECT_EQ(fs::file_size(path + ".1"), per_file * line.size());
  const auto files = log_files(path);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], path + ".2");
  EXPECT_EQ(files[2], path);
  // Reopened, it knows the existing file's size: the current file is full, so the next line
  // rotates first; a file with room is appended to.
  {
    RotatingFile again(path, 4096, 2);
    ASSERT_TRUE(again.write(line));
    EXPECT_EQ(again.rotations(), 1u);
    EXPECT_EQ(again.size(), line.size());
  }
  {
    RotatingFile more(path, 4096, 2);
    ASSERT_TRUE(more.write(line));
    EXPECT_EQ(more.rotations(), 0u);
    EXPECT_EQ(more.size(), 2 * line.size());
    EXPECT_EQ(fs::file_size(path), 2 * line.size());
  }
}

TEST(TxLogFile, KeepZeroRemovesTheOldFileAndAnUnwritablePathFails) {
  TempDir dir;
  const std::string path = dir.file("t.jsonl");
  RotatingFile f(path, 4096, 0);
  const std::string big(3000, 'x');
  ASSERT_TRUE(f.write(big + "\n"));
  ASSERT_TRUE(f.write(big + "\n"));
  EXPECT_EQ(f.rotations(), 1u);
  EXPECT_FALSE(fs::exists(path + ".1"));
  EXPECT_EQ(fs::file_size(path), big.size() + 1);
  std::ofstream(dir.file("plainfile")) << "x";
  RotatingFile bad(dir.file("plainfile/t.jsonl"), 4096, 1);
  EXPECT_FALSE(bad.write("{}\n"));
  EXPECT_NE(bad.error().find("plainfile"), std::string::npos) << bad.error();
}

TEST(TxLogWho, FindsTheInsideTupleAcrossRotatedFiles) {
  TempDir dir;
  const std::string path = dir.file("t.jsonl");
  // 10.0.1.10:40000 used :1024 from T0 to T0+4.5s (open in a rotated file, close in the
  // current one); then 10.0.1.10:40001 used it from T0+10s and is still open.
  {
    std::string a, b;
    append_line(a, rec(engine::TxEvent::Open, 40000, 1024), kT0, "web");
    append_line(a, rec(engine::TxEvent::Open, 50000, 2048), kT0 + 100, "");
    append_line(b, rec(engine::TxEvent::Close, 40000, 1024), kT0 + 4500, "web");
    append_line(b, rec(engine::TxEvent::Open, 40001, 1024), kT0 + 10000, "");
    b += "not json\n";
    std::ofstream(path + ".1") << a;
    std::ofstream(path) << b;
  }
  const auto files = log_files(path);
  uint64_t bad = 0;
  auto u = who(files, "203.0.113.1:1024", kT0 + 2000, &bad);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].inside, "10.0.1.10:40000");
  EXPECT_EQ(u[0].remote, "198.51.100.7:443");
  EXPECT_EQ(u[0].open_ms, kT0);
  ASSERT_TRUE(u[0].close_ms);
  EXPECT_EQ(*u[0].close_ms, kT0 + 4500);
  EXPECT_EQ(u[0].end, "fin");
  EXPECT_EQ(u[0].rule, "web");
  EXPECT_EQ(u[0].bytes_in, 56789u);
  EXPECT_EQ(bad, 0u);  // the bad line does not mention the tuple: never parsed
  // Inclusive bounds.
  EXPECT_EQ(who(files, "203.0.113.1:1024", kT0).size(), 1u);
  EXPECT_EQ(who(files, "203.0.113.1:1024", kT0 + 4500).size(), 1u);
  // Between the two connections: nobody.
  EXPECT_TRUE(who(files, "203.0.113.1:1024", kT0 + 5000).empty());
  // Before the first: nobody.
  EXPECT_TRUE(who(files, "203.0.113.1:1024", kT0 - 1).empty());
  // Later: the open one.
  u = who(files, "203.0.113.1:1024", kT0 + 3'600'000);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].inside, "10.0.1.10:40001");
  EXPECT_FALSE(u[0].close_ms);
  // Another port, a prefix of none: exact match only ("...:102" is not ":1024").
  EXPECT_TRUE(who(files, "203.0.113.1:102", kT0 + 2000).empty());
  EXPECT_EQ(who(files, "203.0.113.1:2048", kT0 + 200).size(), 1u);
}

TEST(TxLogWho, CloseWithoutOpenAndLostCloseAreHandled) {
  TempDir dir;
  const std::string path = dir.file("t.jsonl");
  std::string s;
  // Its open was rotated away: the close's dur_ms places it.
  append_line(s, rec(engine::TxEvent::Close, 40000, 1024), kT0 + 4500, "");
  // An open whose close was lost (restart), then another flow on the same tuple.
  append_line(s, rec(engine::TxEvent::Open, 41000, 3000), kT0, "");
  append_line(s, rec(engine::TxEvent::Open, 42000, 3000), kT0 + 60000, "");
  std::ofstream(path) << s;
  auto u = who({path}, "203.0.113.1:1024", kT0 + 1000);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].open_ms, kT0);
  u = who({path}, "203.0.113.1:3000", kT0 + 120000);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].inside, "10.0.1.10:42000");  // not the superseded one
  u = who({path}, "203.0.113.1:3000", kT0 + 30000);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].inside, "10.0.1.10:41000");
  EXPECT_EQ(u[0].end, "unknown");
}

}  // namespace
}  // namespace eipgate::txlog

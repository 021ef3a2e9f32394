// Admin socket tests: the protocol over a real unix socket in a temp dir with a fake handler,
// socket permissions, peer-credential refusal, bad input, shutdown with clients, and eipgatectl
// run end to end against the test server.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/admin/admin_client.h"
#include "dataplane/admin/admin_protocol.h"
#include "dataplane/admin/admin_server.h"
#include "dataplane/admin/stats_json.h"
#include "dataplane/engine/engine.h"

namespace eipgate::admin {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

std::vector<engine::EngineStats> fake_stats() {
  std::vector<engine::EngineStats> w(2);
  w[0].active_flows = 3;
  w[0].active_tcp_flows = 2;
  w[0].max_flows = 1000;
  w[0].counters.add(engine::Event::ConnectionAttemptCount, 120);
  w[0].counters.add(engine::Event::FlowsCreated, 7);
  w[0].counters.add(engine::Event::PacketsInFromSource, 5000);
  w[0].counters.drops[static_cast<std::size_t>(engine::DropReason::NoFlowOutside)] = 11;
  w[1].active_flows = 4;
  w[1].active_tcp_flows = 3;
  w[1].max_flows = 1000;
  w[1].counters.add(engine::Event::ConnectionAttemptCount, 80);
  w[1].counters.add(engine::Event::ErrorPortAllocation, 2);
  w[1].counters.drops[static_cast<std::size_t>(engine::DropReason::NoFlowOutside)] = 31;
  w[1].counters.drops[static_cast<std::size_t>(engine::DropReason::PortAllocation)] = 2;
  return w;
}

std::vector<engine::FlowView> fake_flows() {
  std::vector<engine::FlowView> f(3);
  f[0].proto = 6;
  f[0].inside_ip = ip(10, 0, 1, 5);
  f[0].inside_port = 40000;
  f[0].remote_ip = ip(198, 51, 100, 7);
  f[0].remote_port = 443;
  f[0].outside_ip = ip(203, 0, 113, 10);
  f[0].outside_port = 40000;
  f[0].tcp_state = engine::TcpState::Established;
  f[0].idle_ms = 1500;
  f[0].bytes_out = 1234;
  f[0].bytes_in = 98765;
  f[1].proto = 17;
  f[1].inside_ip = ip(10, 0, 1, 6);
  f[1].inside_port = 5353;
  f[1].remote_ip = ip(198, 51, 100, 8);
  f[1].remote_port = 53;
  f[1].outside_ip = ip(203, 0, 113, 10);
  f[1].outside_port = 40001;
  f[2].proto = 1;
  f[2].inside_ip = ip(10, 0, 2, 9);
  f[2].inside_port = 77;
  f[2].remote_ip = ip(198, 51, 100, 7);
  f[2].outside_ip = ip(203, 0, 113, 10);
  f[2].outside_port = 1100;
  return f;
}

// Stands in for the dataplane; records what reached it.
class FakeHandler : public AdminHandler {
 public:
  json stats() override {
    std::lock_guard lock(mu_);
    if (throw_in_stats) throw std::runtime_error("counter snapshot failed");
    json j = stats_to_json(fake_stats());
    if (!ports.is_null()) j["ports"] = ports;
    return j;
  }
  json xstats() override {
    std::lock_guard lock(mu_);
    return {
        {"ports", json::array({{{"name", "data"},
                                {"port_id", 0},
                                {"device", "net_af_packet0"},
                                {"xstats", {{"rx_good_packets", 12}, {"tx_good_packets", 7}}}}})},
        {"age_ms", 300}};
  }
  json flows(const FlowFilter& filter) override {
    std::lock_guard lock(mu_);
    last_filter = filter;
    FlowDump dump(filter);
    int worker = 0;
    for (const auto& f : fake_flows()) dump.add(f, worker++ % 2);
    return dump.result();
  }
  ReloadResult reload(const std::string& path) override {
    std::lock_guard lock(mu_);
    reload_paths.push_back(path);
    if (path.ends_with("bad.yaml")) return {false, path + ":3: unknown key 'foo'", {}};
    return {true, "", {{"generation", 2}}};
  }
  json health() override {
    std::lock_guard lock(mu_);
    return {{"status", health_status}, {"workers", 2}};
  }
  json announce() override {
    std::lock_guard lock(mu_);
    ++announces;
    return {{"garps", 3}};
  }
  std::optional<std::string> set_ha_role(const std::string& role, uint64_t epoch) override {
    std::lock_guard lock(mu_);
    roles.emplace_back(role, epoch);
    return std::nullopt;
  }
  int announces = 0;
  std::vector<std::pair<std::string, uint64_t>> roles;

  std::vector<std::string> reload_paths_copy() {
    std::lock_guard lock(mu_);
    return reload_paths;
  }

  std::mutex mu_;
  json ports;  // the dataplane's "ports" section of stats, when a test sets one
  bool throw_in_stats = false;
  std::string health_status = "ok";
  std::optional<FlowFilter> last_filter;
  std::vector<std::string> reload_paths;
};

// A raw protocol client, so tests see exactly the bytes on the wire.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] bool connected() const { return connected_; }
  bool send_all(const std::string& data) {
    for (std::size_t off = 0; off < data.size();) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // One line without its newline; nullopt on EOF or error. The 20 s bound only keeps a broken
  // server from hanging the suite; nothing here measures time.
  std::optional<std::string> read_line() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20000) <= 0) return std::nullopt;
      char chunk[65536];
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  // True when the server closed the connection (EOF or reset) with nothing more to read.
  bool at_eof() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }
  json request(const json& req) {
    if (!send_all(req.dump() + "\n")) return {};
    auto line = read_line();
    return line ? json::parse(*line, nullptr, false) : json();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command and captures its stdout (stderr too when the command redirects it).
CommandResult run(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eipgate-admin-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/run/eipgate/dataplane.sock";
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // The peer check admits the uid running the test (root in CI).
  void start(std::optional<uid_t> allowed = std::nullopt) {
    server_ = std::make_unique<AdminServer>(path_, handler_, "9.8.7");
    server_->set_allowed_uid_for_test(allowed.value_or(::geteuid()));
    server_->start();
  }
  std::string ctl(const std::string& args) {
    return std::string(EIPGATECTL_PATH) + " --socket " + path_ + " " + args;
  }

  std::string dir_;
  std::string path_;
  FakeHandler handler_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTest, SocketIs0600InA0700DirectoryItCreated) {
  start();
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  for (const std::string& d : {dir_ + "/run", dir_ + "/run/eipgate"}) {
    ASSERT_EQ(::stat(d.c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
}

TEST_F(AdminServerTest, StopRemovesTheSocketFile) {
  start();
  server_->stop();
  EXPECT_FALSE(fs::exists(path_));
  server_->stop();  // idempotent
}

TEST_F(AdminServerTest, VersionRoundTrip) {
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.connected());
  json r = c.request({{"cmd", "version"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(r["result"]["version"], "9.8.7");
  EXPECT_EQ(r["result"]["protocol"], kProtocolVersion);
}

TEST_F(AdminServerTest, StatsRoundTripCarriesWorkersTotalsNatGatewayAndDrops) {
  start();
  RawClient c(path_);
  json r = c.request({{"cmd", "stats"}, {"args", json::object()}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  const json& s = r["result"];
  ASSERT_EQ(s["workers"].size(), 2u);
  EXPECT_EQ(s["workers"][0]["worker"], 0);
  EXPECT_EQ(s["workers"][0]["counters"]["flows_created"], 7);
  EXPECT_EQ(s["workers"][1]["drops"]["port_allocation"], 2);
  EXPECT_EQ(s["totals"]["active_flows"], 7);
  EXPECT_EQ(s["totals"]["max_flows"], 2000);
  EXPECT_EQ(s["nat_gateway"]["ActiveConnectionCount"], 5);  // TCP only
  EXPECT_EQ(s["nat_gateway"]["ActiveNonTcpFlowCount"], 2);
  EXPECT_EQ(s["nat_gateway"]["ConnectionAttemptCount"], 200);
  EXPECT_EQ(s["nat_gateway"]["ErrorPortAllocation"], 2);
  EXPECT_EQ(s["drops"]["no_flow_outside"], 42);
  EXPECT_EQ(s["drops"]["too_short"], 0);
}

TEST_F(AdminServerTest, FlowsRoundTripAppliesFilters) {
  start();
  RawClient c(path_);
  json all = c.request({{"cmd", "flows"}});
  ASSERT_TRUE(all.value("ok", false)) << all.dump();
  EXPECT_EQ(all["result"]["flows"].size(), 3u);
  EXPECT_EQ(all["result"]["matched"], 3);
  EXPECT_EQ(all["result"]["limit"], kFlowLimitDefault);
  EXPECT_FALSE(all["result"]["truncated"].get<bool>());

  json tcp = c.request({{"cmd", "flows"}, {"args", {{"proto", "tcp"}}}});
  ASSERT_EQ(tcp["result"]["flows"].size(), 1u);
  const json& f = tcp["result"]["flows"][0];
  EXPECT_EQ(f["inside_ip"], "10.0.1.5");
  EXPECT_EQ(f["inside_port"], 40000);
  EXPECT_EQ(f["remote_ip"], "198.51.100.7");
  EXPECT_EQ(f["outside_ip"], "203.0.113.10");
  EXPECT_EQ(f["tcp_state"], "established");
  EXPECT_EQ(f["bytes_in"], 98765);
  EXPECT_EQ(f["worker"], 0);

  json inside = c.request({{"cmd", "flows"}, {"args", {{"inside", "10.0.1.0/24"}}}});
  EXPECT_EQ(inside["result"]["flows"].size(), 2u);
  json remote = c.request({{"cmd", "flows"}, {"args", {{"remote", "198.51.100.7"}}}});
  EXPECT_EQ(remote["result"]["flows"].size(), 2u);
  json port = c.request({{"cmd", "flows"}, {"args", {{"outside_port", 40001}}}});
  ASSERT_EQ(port["result"]["flows"].size(), 1u);
  EXPECT_EQ(port["result"]["flows"][0]["proto"], "udp");

  json limited = c.request({{"cmd", "flows"}, {"args", {{"limit", 1}}}});
  EXPECT_EQ(limited["result"]["flows"].size(), 1u);
  EXPECT_EQ(limited["result"]["matched"], 3);
  EXPECT_TRUE(limited["result"]["truncated"].get<bool>());

  json huge = c.request({{"cmd", "flows"}, {"args", {{"limit", 1u << 30}}}});
  EXPECT_EQ(huge["result"]["limit"], kFlowLimitMax);
}

TEST_F(AdminServerTest, FlowsRejectsBadArguments) {
  start();
  RawClient c(path_);
  for (const json& args :
       {json{{"porto", "tcp"}}, json{{"proto", "sctpx"}}, json{{"inside", "10.0.1.5/24"}},
        json{{"remote", "300.1.1.1"}}, json{{"outside_port", 70000}}, json{{"limit", 0}},
        json{{"limit", -5}}}) {
    json r = c.request({{"cmd", "flows"}, {"args", args}});
    EXPECT_FALSE(r.value("ok", true)) << args.dump();
    EXPECT_TRUE(r["error"].is_string()) << args.dump();
  }
  // The connection survives argument errors.
  EXPECT_TRUE(c.request({{"cmd", "version"}}).value("ok", false));
}

TEST_F(AdminServerTest, ReloadPassesThePathAndReportsConfigErrors) {
  start();
  RawClient c(path_);
  json ok = c.request({{"cmd", "reload"}, {"args", {{"path", "/etc/eipgate/good.yaml"}}}});
  ASSERT_TRUE(ok.value("ok", false)) << ok.dump();
  EXPECT_EQ(ok["result"]["generation"], 2);
  json bad = c.request({{"cmd", "reload"}, {"args", {{"path", "/etc/eipgate/bad.yaml"}}}});
  EXPECT_FALSE(bad.value("ok", true));
  EXPECT_EQ(bad["error"], "/etc/eipgate/bad.yaml:3: unknown key 'foo'");
  json typed = c.request({{"cmd", "reload"}, {"args", {{"path", 5}}}});
  EXPECT_FALSE(typed.value("ok", true));
  EXPECT_EQ(handler_.reload_paths_copy(),
            (std::vector<std::string>{"/etc/eipgate/good.yaml", "/etc/eipgate/bad.yaml"}));
}

TEST_F(AdminServerTest, HealthRoundTrip) {
  start();
  RawClient c(path_);
  json r = c.request({{"cmd", "health"}});
  ASSERT_TRUE(r.value("ok", false));
  EXPECT_EQ(r["result"]["status"], "ok");
}

TEST_F(AdminServerTest, MalformedJsonAndUnknownCommandKeepTheConnection) {
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.send_all("{\"cmd\": \"stats\"\n"));
  auto line = c.read_line();
  ASSERT_TRUE(line);
  json r = json::parse(*line);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("malformed JSON"), std::string::npos);

  for (const char* bad : {"[1,2]", "{}", R"({"cmd": 7})", R"({"cmd":"stats","args":[1]})", ""}) {
    ASSERT_TRUE(c.send_all(std::string(bad) + "\n"));
    line = c.read_line();
    ASSERT_TRUE(line) << bad;
    EXPECT_FALSE(json::parse(*line)["ok"].get<bool>()) << bad;
  }

  json unknown = c.request({{"cmd", "selfdestruct"}});
  EXPECT_FALSE(unknown.value("ok", true));
  EXPECT_NE(unknown["error"].get<std::string>().find("unknown command"), std::string::npos);
  EXPECT_TRUE(c.request({{"cmd", "version"}}).value("ok", false));
}

TEST_F(AdminServerTest, OversizedRequestIsAnsweredThenClosedAndServerServesNextClient) {
  start();
  {
    RawClient c(path_);
    ASSERT_TRUE(c.connected());
    // No newline at all: the server must give up at the cap instead of buffering forever. The
    // send may fail once the server has closed; the answer is already on its way.
    (void)c.send_all(std::string(kMaxRequestBytes + 4096, 'x'));
    auto line = c.read_line();
    ASSERT_TRUE(line);
    json r = json::parse(*line);
    EXPECT_FALSE(r["ok"].get<bool>());
    EXPECT_NE(r["error"].get<std::string>().find("longer than"), std::string::npos);
    EXPECT_TRUE(c.at_eof());
  }
  {
    // A long line that does end in a newline within one write is refused the same way.
    RawClient c(path_);
    (void)c.send_all(R"({"cmd":")" + std::string(kMaxRequestBytes, 'y') + "\"}\n");
    auto line = c.read_line();
    ASSERT_TRUE(line);
    EXPECT_FALSE(json::parse(*line)["ok"].get<bool>());
  }
  RawClient next(path_);
  EXPECT_TRUE(next.request({{"cmd", "health"}}).value("ok", false));
}

TEST_F(AdminServerTest, LastRequestWithoutNewlineIsAnsweredAfterHalfClose) {
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.send_all("{\"cmd\":\"version\"}"));
  c.shutdown_write();
  auto line = c.read_line();
  ASSERT_TRUE(line);
  EXPECT_TRUE(json::parse(*line)["ok"].get<bool>());
  EXPECT_TRUE(c.at_eof());
}

TEST_F(AdminServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.send_all("{\"cmd\":\"version\"}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"health\"}\n"));
  auto a = c.read_line(), b = c.read_line(), h = c.read_line();
  ASSERT_TRUE(a && b && h);
  EXPECT_EQ(json::parse(*a)["result"]["protocol"], kProtocolVersion);
  EXPECT_FALSE(json::parse(*b)["ok"].get<bool>());
  EXPECT_EQ(json::parse(*h)["result"]["status"], "ok");
}

TEST_F(AdminServerTest, HandlerExceptionBecomesAnErrorResponse) {
  start();
  handler_.throw_in_stats = true;
  RawClient c(path_);
  json r = c.request({{"cmd", "stats"}});
  EXPECT_FALSE(r.value("ok", true));
  EXPECT_NE(r["error"].get<std::string>().find("counter snapshot failed"), std::string::npos);
  EXPECT_TRUE(c.request({{"cmd", "health"}}).value("ok", false));
}

TEST_F(AdminServerTest, PeerWithAnotherUidIsRefusedAndClosed) {
  const uid_t other = ::geteuid() == 12345 ? 12346 : 12345;
  start(other);
  RawClient c(path_);
  ASSERT_TRUE(c.connected());
  auto line = c.read_line();
  ASSERT_TRUE(line);
  json r = json::parse(*line);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("permission denied"), std::string::npos);
  EXPECT_TRUE(c.at_eof());
  EXPECT_TRUE(handler_.reload_paths_copy().empty());
}

TEST_F(AdminServerTest, ConcurrentClientsAreEachAnswered) {
  start();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<RawClient>(path_));
    ASSERT_TRUE(clients.back()->connected());
    // Half a request each, so all ten are open mid-request at once.
    ASSERT_TRUE(clients.back()->send_all("{\"cmd\":"));
  }
  for (int i = 9; i >= 0; --i) {
    ASSERT_TRUE(clients[i]->send_all(i % 2 ? "\"health\"}\n" : "\"version\"}\n"));
    auto line = clients[i]->read_line();
    ASSERT_TRUE(line) << i;
    json r = json::parse(*line);
    EXPECT_TRUE(r["ok"].get<bool>()) << i;
    EXPECT_EQ(r["result"].contains("status"), i % 2 == 1) << i;
  }
}

TEST_F(AdminServerTest, StopReturnsWithClientsConnectedAndClosesThem) {
  start();
  RawClient idle(path_), partial(path_), done(path_);
  ASSERT_TRUE(idle.connected() && partial.connected() && done.connected());
  ASSERT_TRUE(partial.send_all("{\"cmd\":\"sta"));
  ASSERT_TRUE(done.request({{"cmd", "version"}}).value("ok", false));
  server_->stop();
  EXPECT_TRUE(idle.at_eof());
  EXPECT_TRUE(partial.at_eof());
  EXPECT_TRUE(done.at_eof());
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(AdminServerTest, StaleSocketFromADeadProcessIsReplaced) {
  fs::create_directories(fs::path(path_).parent_path());
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);  // the file stays, nobody listens: what a crashed dataplane leaves
  }
  ASSERT_TRUE(fs::is_socket(path_));
  start();
  RawClient c(path_);
  EXPECT_TRUE(c.request({{"cmd", "version"}}).value("ok", false));
}

TEST_F(AdminServerTest, RefusesAPathALiveServerOwns) {
  start();
  FakeHandler other_handler;
  AdminServer second(path_, other_handler, "x");
  second.set_allowed_uid_for_test(::geteuid());
  EXPECT_THROW(second.start(), std::system_error);
  // The first server is untouched.
  RawClient c(path_);
  EXPECT_TRUE(c.request({{"cmd", "version"}}).value("ok", false));
}

TEST_F(AdminServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  fs::create_directories(fs::path(path_).parent_path());
  {
    std::FILE* f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  server_ = std::make_unique<AdminServer>(path_, handler_, "x");
  EXPECT_THROW(server_->start(), std::system_error);
  EXPECT_TRUE(fs::is_regular_file(path_));
}

TEST_F(AdminServerTest, RefusesAPathLongerThanSunPath) {
  const std::string long_path = dir_ + "/" + std::string(sizeof(sockaddr_un::sun_path), 'p');
  AdminServer s(long_path, handler_, "x");
  EXPECT_THROW(s.start(), std::system_error);
  EXPECT_FALSE(fs::exists(long_path));
}

TEST_F(AdminServerTest, AnExistingParentDirectoryKeepsItsMode) {
  // A shared directory such as /run is not ours to tighten.
  const std::string parent = dir_ + "/shared";
  fs::create_directories(parent);
  ASSERT_EQ(::chmod(parent.c_str(), 0755), 0);
  path_ = parent + "/dataplane.sock";
  start();
  struct stat st {};
  ASSERT_EQ(::stat(parent.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AdminServerTest, AdminClientRoundTripAndConnectError) {
  start();
  AdminClient client(path_);
  json resp;
  ClientError err;
  ASSERT_TRUE(client.call("health", json::object(), &resp, &err)) << err.message;
  EXPECT_TRUE(resp["ok"].get<bool>());
  ASSERT_TRUE(client.call("stats", json::object(), &resp, &err)) << err.message;  // reused
  EXPECT_EQ(resp["result"]["nat_gateway"]["ActiveConnectionCount"], 5);

  AdminClient missing(dir_ + "/nothing.sock");
  EXPECT_FALSE(missing.call("health", json::object(), &resp, &err));
  EXPECT_EQ(err.kind, ClientError::Kind::Connect);
  EXPECT_NE(err.message.find("No such file or directory (is eipgate-dataplane running?)"),
            std::string::npos)
      << err.message;
}

// --- protocol helpers, without sockets ---

TEST(AdminProtocol, HaCommandsValidateTheirArguments) {
  FakeHandler h;
  auto run = [&](const json& req) {
    return json::parse(handle_request(h, req.dump(), "t").dump());
  };
  json r = run({{"cmd", "announce"}});
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["garps"], 3);
  EXPECT_EQ(h.announces, 1);
  r = run({{"cmd", "ha_role"}, {"args", {{"role", "active"}, {"epoch", 7}}}});
  ASSERT_TRUE(r.value("ok", false)) << r;
  ASSERT_EQ(h.roles.size(), 1u);
  EXPECT_EQ(h.roles[0], (std::pair<std::string, uint64_t>{"active", 7}));
  for (const json& bad : {json{{"cmd", "ha_role"}, {"args", {{"role", "primary"}}}},
                          json{{"cmd", "ha_role"}, {"args", json::object()}},
                          json{{"cmd", "ha_role"}, {"args", {{"role", "standby"}, {"epoch", -1}}}},
                          json{{"cmd", "ha_role"}, {"args", {{"role", "standby"}, {"x", 1}}}},
                          json{{"cmd", "announce"}, {"args", {{"now", true}}}}}) {
    r = run(bad);
    EXPECT_FALSE(r.value("ok", true)) << bad;
  }
  EXPECT_EQ(h.roles.size(), 1u);  // refused requests change nothing
  EXPECT_EQ(h.announces, 1);
}

TEST(AdminProtocol, ParsesPrefixes) {
  auto p = parse_ipv4_prefix("10.0.1.0/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->addr, ip(10, 0, 1, 0));
  EXPECT_EQ(p->len, 24);
  EXPECT_TRUE(p->contains(ip(10, 0, 1, 200)));
  EXPECT_FALSE(p->contains(ip(10, 0, 2, 1)));
  auto host = parse_ipv4_prefix("198.51.100.7");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->len, 32);
  EXPECT_TRUE(host->contains(ip(198, 51, 100, 7)));
  EXPECT_FALSE(host->contains(ip(198, 51, 100, 8)));
  auto any = parse_ipv4_prefix("0.0.0.0/0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->contains(ip(1, 2, 3, 4)));
  for (const char* bad : {"", "10.0.1.0/33", "10.0.1.0/", "10.0.1.1/24", "10.0.1", "a.b.c.d",
                          "10.0.1.0/2x", "10.0.0.0/-1"}) {
    EXPECT_FALSE(parse_ipv4_prefix(bad)) << bad;
  }
}

TEST(AdminProtocol, ProtocolNames) {
  EXPECT_EQ(parse_proto("tcp"), 6);
  EXPECT_EQ(parse_proto("udp"), 17);
  EXPECT_EQ(parse_proto("icmp"), 1);
  EXPECT_EQ(parse_proto("47"), 47);
  EXPECT_FALSE(parse_proto("256"));
  EXPECT_FALSE(parse_proto("TCPX"));
  EXPECT_EQ(proto_name(17), "udp");
  EXPECT_EQ(proto_name(47), "47");
}

TEST(AdminProtocol, StatsJsonHasEveryCounterOnce) {
  json s = stats_to_json(fake_stats());
  EXPECT_EQ(s["drops"].size(), engine::kDropReasonCount);
  EXPECT_EQ(s["totals"]["counters"].size(), engine::kEventCount);
  // ActiveConnectionCount, ActiveNonTcpFlowCount and the CloudWatch block of counters.h.
  std::size_t cloudwatch = 0;
  for (std::size_t i = 0; i < engine::kEventCount; ++i) {
    if (is_nat_gateway_metric(static_cast<engine::Event>(i))) ++cloudwatch;
  }
  EXPECT_EQ(s["nat_gateway"].size(), cloudwatch + 2);
  EXPECT_TRUE(s["nat_gateway"].contains("PacketsDropCount"));
  EXPECT_TRUE(s["nat_gateway"].contains("BytesOutToSource"));
  EXPECT_FALSE(s["nat_gateway"].contains("flows_created"));
  EXPECT_EQ(s["totals"]["counters"]["PacketsInFromSource"], 5000);
  EXPECT_TRUE(stats_to_json({})["workers"].empty());
}

TEST(AdminProtocol, InvalidUtf8FromAHandlerIsReplacedNotThrown) {
  json r = {{"ok", true}, {"result", std::string("bad \xff byte")}};
  std::string line = response_line(r);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded());
}

// --- eipgatectl, the built binary, against the test server ---

TEST_F(AdminServerTest, CtlStatsPrintsNatGatewayCountersAndNonZeroDrops) {
  start();
  CommandResult r = run(ctl("stats"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ActiveConnectionCount"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ConnectionAttemptCount"), std::string::npos);
  EXPECT_NE(r.output.find("200"), std::string::npos);
  EXPECT_NE(r.output.find("no_flow_outside"), std::string::npos);
  EXPECT_NE(r.output.find("42"), std::string::npos);
  EXPECT_NE(r.output.find("port_allocation"), std::string::npos);
  EXPECT_EQ(r.output.find("too_short"), std::string::npos) << "zero drops are not listed";
  // The counter and its value are on one line of the table.
  bool same_line = false;
  std::size_t pos = 0;
  while ((pos = r.output.find('\n', pos)) != std::string::npos && !same_line) {
    std::size_t start = r.output.rfind('\n', pos - 1);
    std::string line = r.output.substr(start == std::string::npos ? 0 : start + 1, pos - start);
    same_line = line.find("ConnectionAttemptCount") != std::string::npos &&
                line.find("200") != std::string::npos;
    ++pos;
  }
  EXPECT_TRUE(same_line) << r.output;
}

TEST_F(AdminServerTest, CtlJsonPrintsTheRawResult) {
  start();
  CommandResult r = run(ctl("--json stats 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j, stats_to_json(fake_stats()));

  // Global options also work after the subcommand.
  r = run(ctl("flows --proto udp --json 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  ASSERT_EQ(j["flows"].size(), 1u);
  EXPECT_EQ(j["flows"][0]["remote_port"], 53);
}

TEST_F(AdminServerTest, CtlFlowsPrintsOneRowPerFlowAndPassesFilters) {
  start();
  CommandResult r = run(ctl("flows"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("10.0.1.5:40000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("198.51.100.7:443"), std::string::npos);
  EXPECT_NE(r.output.find("203.0.113.10:40000"), std::string::npos);
  EXPECT_NE(r.output.find("established"), std::string::npos);
  EXPECT_NE(r.output.find("3 flows"), std::string::npos);

  r =
      run(ctl("flows --proto tcp --inside 10.0.1.0/24 --remote 198.51.100.7 --port 40000 "
              "--limit 5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 flow"), std::string::npos) << r.output;
  std::lock_guard lock(handler_.mu_);
  ASSERT_TRUE(handler_.last_filter);
  EXPECT_EQ(handler_.last_filter->proto, 6);
  EXPECT_EQ(handler_.last_filter->outside_port, 40000);
  EXPECT_EQ(handler_.last_filter->limit, 5u);
  ASSERT_TRUE(handler_.last_filter->inside);
  EXPECT_EQ(handler_.last_filter->inside->len, 24);
}

TEST_F(AdminServerTest, CtlFlowsSaysWhenTruncated) {
  start();
  CommandResult r = run(ctl("flows --limit 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("showing 2 of 3"), std::string::npos) << r.output;
}

TEST_F(AdminServerTest, CtlReloadSendsAnAbsolutePathAndReportsErrors) {
  start();
  CommandResult ok = run("cd " + dir_ + " && " + ctl("reload good.yaml 2>&1"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  CommandResult bad = run(ctl("reload /etc/eipgate/bad.yaml 2>&1"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("/etc/eipgate/bad.yaml:3: unknown key 'foo'"), std::string::npos)
      << bad.output;
  auto paths = handler_.reload_paths_copy();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], (fs::path(dir_) / "good.yaml").string());
}

TEST_F(AdminServerTest, CtlHealthExitCodeFollowsStatus) {
  start();
  CommandResult r = run(ctl("health"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("status"), std::string::npos);
  {
    std::lock_guard lock(handler_.mu_);
    handler_.health_status = "degraded";
  }
  r = run(ctl("health"));
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("degraded"), std::string::npos);
}

TEST_F(AdminServerTest, CtlVersionShowsBothSides) {
  start();
  CommandResult r = run(ctl("version"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("eipgate-dataplane 9.8.7"), std::string::npos) << r.output;
}

TEST_F(AdminServerTest, CtlMissingSocketFailoverAndUsageErrors) {
  CommandResult missing = run(ctl("stats 2>&1"));  // no server started
  EXPECT_EQ(missing.exit_code, 3) << missing.output;
  EXPECT_NE(missing.output.find("cannot connect to " + path_ +
                                ": No such file or directory (is eipgate-dataplane running?)"),
            std::string::npos)
      << missing.output;

  // failover talks to eipgate-control (control/daemon), not to the dataplane.
  CommandResult failover = run(ctl("--control-socket /nonexistent/control.sock failover 2>&1"));
  EXPECT_EQ(failover.exit_code, 3) << failover.output;
  EXPECT_NE(failover.output.find("is eipgate-control running?"), std::string::npos)
      << failover.output;

  EXPECT_EQ(run(ctl("frobnicate 2>&1")).exit_code, 2);
  EXPECT_EQ(run(ctl("2>&1")).exit_code, 2);
  EXPECT_EQ(run(ctl("reload 2>&1")).exit_code, 2);
}

TEST_F(AdminServerTest, CtlRefusedPeerIsReportedAsAnError) {
  start(::geteuid() == 12345 ? 12346 : 12345);
  CommandResult r = run(ctl("stats 2>&1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("permission denied"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace eipgate::admin

namespace eipgate::admin {
namespace {

TEST_F(AdminServerTest, CtlStatsShowsEnaAllowancesAndWarnsWhenOneWasExceeded) {
  handler_.ports = json::array({{{"name", "data"},
                                 {"port_id", 0},
                                 {"device", "0000:00:06.0"},
                                 {"allowance",
                                  {{"pps_allowance_exceeded", 17},
                                   {"bw_in_allowance_exceeded", 0},
                                   {"conntrack_allowance_available", 123456}}}}});
  start();
  CommandResult r = run(ctl("stats 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ENA allowances, port data"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conntrack_allowance_available"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("123456"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("WARNING: port data: pps_allowance_exceeded = 17"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("WARNING: port data: bw_in"), std::string::npos) << "zero: no warning";
  EXPECT_EQ(r.output.find("conntrack_allowance_available ="), std::string::npos)
      << "a gauge is not a warning";

  // --json: stdout is the JSON (ports[0].allowance as the dataplane sent it), the warning on
  // stderr.
  r = run(ctl("--json stats 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["ports"][0]["allowance"]["pps_allowance_exceeded"], 17);
  r = run(ctl("--json stats 2>&1 >/dev/null"));
  EXPECT_NE(r.output.find("WARNING: port data: pps_allowance_exceeded = 17"), std::string::npos)
      << r.output;
}

TEST_F(AdminServerTest, CtlStatsWithoutAllowancesHasNoWarning) {
  handler_.ports = json::array({{{"name", "data"}, {"port_id", 0}, {"device", "net_af_packet0"}}});
  start();
  CommandResult r = run(ctl("stats 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("net_af_packet0"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("WARNING"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ENA allowances"), std::string::npos) << r.output;
}

TEST_F(AdminServerTest, CtlXstatsPrintsEveryPortsCounters) {
  start();
  CommandResult r = run(ctl("xstats"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("port data (net_af_packet0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rx_good_packets"), std::string::npos) << r.output;
  r = run(ctl("xstats --json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["ports"][0]["xstats"]["tx_good_packets"], 7);
}

TEST(AdminProtocol, XstatsTakesNoArgumentsAndIsOptionalForAHandler) {
  struct Minimal : AdminHandler {
    json stats() override { return json::object(); }
    json flows(const FlowFilter&) override { return json::object(); }
    ReloadResult reload(const std::string&) override { return {}; }
    json health() override { return {{"status", "ok"}}; }
  } minimal;
  json r = handle_request(minimal, R"({"cmd":"xstats"})", "t");
  EXPECT_FALSE(r.value("ok", true)) << r;
  EXPECT_NE(r.value("error", std::string()).find("not supported"), std::string::npos) << r;
  FakeHandler h;
  r = handle_request(h, R"({"cmd":"xstats","args":{"port":0}})", "t");
  EXPECT_FALSE(r.value("ok", true)) << r;
  r = handle_request(h, R"({"cmd":"xstats"})", "t");
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["ports"][0]["name"], "data");
}

}  // namespace
}  // namespace eipgate::admin

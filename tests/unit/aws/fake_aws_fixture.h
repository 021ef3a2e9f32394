// Starts tests/sim/fake_aws.py on a free loopback port for one test and always stops it.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "control/aws/http.h"

namespace eipgate::aws::testing {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FakeAwsProcess {
 public:
  // Binds port 0 and reports the port through a file, so there is no race for a free port.
  explicit FakeAwsProcess(const std::string& state_file = EIPGATE_FAKE_AWS_STATE) {
    char tmpl[] = "/tmp/eipgate-aws-test-XXXXXX";
    const char* dir = mkdtemp(tmpl);
    if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    const std::string port_file = (dir_ / "port").string();
    const std::string log_file = (dir_ / "fake_aws.log").string();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no server behind
      FILE* log = std::fopen(log_file.c_str(), "w");
      if (log != nullptr) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
      }
      execl(EIPGATE_PYTHON, EIPGATE_PYTHON, EIPGATE_FAKE_AWS_PY, "--state", state_file.c_str(),
            "--port", "0", "--port-file", port_file.c_str(), "--verbose",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = read_file(port_file);
      if (!text.empty()) {
        port_ = std::stoi(text);
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("fake_aws.py exited early: " + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ == 0) {
      stop();
      throw std::runtime_error("fake_aws.py did not start in 30 s: " + log());
    }
    if (control("GET", "health").status != 200) throw std::runtime_error("fake_aws.py not healthy");
  }

  ~FakeAwsProcess() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FakeAwsProcess(const FakeAwsProcess&) = delete;
  FakeAwsProcess& operator=(const FakeAwsProcess&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string imds_url(const std::string& instance) const {
    return base_url() + "/" + instance;
  }
  [[nodiscard]] std::string log() const { return read_file(dir_ / "fake_aws.log"); }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  HttpResponse control(const std::string& method, const std::string& what,
                       const nlohmann::json& body = nlohmann::json::object()) {
    HttpRequest req;
    req.method = method;
    req.url = base_url() + "/_fake/" + what;
    if (method != "GET") {
      req.body = body.dump();
      req.headers = {{"Content-Type", "application/json"}};
    }
    return transport_.perform(req);
  }
  nlohmann::json state() { return nlohmann::json::parse(control("GET", "state").body); }
  nlohmann::json calls() { return nlohmann::json::parse(control("GET", "calls").body); }
  void faults(const nlohmann::json& spec) { control("POST", "faults", spec); }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  CurlTransport transport_;
};

}  // namespace eipgate::aws::testing

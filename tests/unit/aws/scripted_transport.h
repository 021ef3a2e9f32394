// Test doubles: a transport that answers from a script and records requests, and a retry
// environment whose clock only moves when the code under test "sleeps".
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <variant>
#include <vector>

#include "control/aws/error.h"
#include "control/aws/http.h"
#include "control/aws/retry.h"

namespace eipgate::aws::testing {

class ScriptedTransport final : public HttpTransport {
 public:
  using Step = std::variant<HttpResponse, AwsError>;

  void push(long status, std::string body) {
    script_.emplace_back(HttpResponse{status, {}, std::move(body)});
  }
  void push_error(AwsError e) { script_.emplace_back(std::move(e)); }

  HttpResponse perform(const HttpRequest& request) override {
    std::lock_guard lock(mutex_);
    requests.push_back(request);
    if (script_.empty())
      throw std::runtime_error("ScriptedTransport: no response left for " + request.url);
    Step step = std::move(script_.front());
    script_.pop_front();
    if (auto* e = std::get_if<AwsError>(&step)) throw *e;
    return std::get<HttpResponse>(step);
  }

  [[nodiscard]] size_t remaining() const { return script_.size(); }
  std::vector<HttpRequest> requests;

 private:
  std::mutex mutex_;
  std::deque<Step> script_;
};

// Sleeping advances the fake clock; the random source returns a fixed fraction.
struct FakeTime {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::vector<std::chrono::milliseconds> sleeps;
  double fraction = 1.0;

  RetryEnv env() {
    RetryEnv e;
    e.sleep = [this](std::chrono::milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    e.now = [this] { return now; };
    e.uniform01 = [this] { return fraction; };
    return e;
  }
};

}  // namespace eipgate::aws::testing

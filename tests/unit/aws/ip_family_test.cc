// CurlTransport honours HttpRequest::ip_family (CURLOPT_IPRESOLVE): against a loopback server that
// listens on one address family only, the request of the other family fails and its own succeeds.
// "localhost" is resolved by libcurl itself to both 127.0.0.1 and ::1 (curl >= 7.78).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "control/aws/error.h"
#include "control/aws/http.h"

namespace eipgate::aws {
namespace {

// Answers every request with 200 "ok" until destroyed; listens on 127.0.0.1 or ::1 only.
class OneFamilyServer {
 public:
  explicit OneFamilyServer(bool v6) {
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    if (v6) {
      setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("bind [::1] failed");
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("bind 127.0.0.1 failed");
    }
    if (listen(fd_, 8) != 0) throw std::runtime_error("listen failed");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneFamilyServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  [[nodiscard]] std::string url() const {
    return "http://localhost:" + std::to_string(port_) + "/";
  }
  std::atomic<int> served{0};

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      // Counted before the answer goes out: the client may check `served` as soon as it has read
      // the answer (counting after close() raced with it under load).
      ++served;
      const char* resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      (void)!write(c, resp, std::strlen(resp));
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

HttpResponse get(const std::string& url, IpFamily family) {
  CurlTransport http;
  HttpRequest req;
  req.url = url;
  req.ip_family = family;
  req.connect_timeout = std::chrono::milliseconds(1000);
  req.timeout = std::chrono::milliseconds(2000);
  return http.perform(req);
}

TEST(IpFamily, Ipv6OnlyRequestDoesNotReachAnIpv4Server) {
  OneFamilyServer v4(false);
  EXPECT_EQ(get(v4.url(), IpFamily::V4).body, "ok");
  EXPECT_THROW(get(v4.url(), IpFamily::V6), AwsError);
  EXPECT_EQ(v4.served.load(), 1);
}

TEST(IpFamily, Ipv6RequestReachesAnIpv6OnlyServer) {
  OneFamilyServer v6(true);
  EXPECT_EQ(get(v6.url(), IpFamily::V6).body, "ok");
  EXPECT_THROW(get(v6.url(), IpFamily::V4), AwsError);
  EXPECT_EQ(v6.served.load(), 1);
}

TEST(IpFamily, Names) {
  EXPECT_EQ(to_string(IpFamily::Any), "any");
  EXPECT_EQ(to_string(IpFamily::V4), "ipv4");
  EXPECT_EQ(to_string(IpFamily::V6), "ipv6");
}

}  // namespace
}  // namespace eipgate::aws

// HttpTransport over libcurl. SigV4 signing is libcurl's own (CURLOPT_AWS_SIGV4): no crypto here.
#include "control/aws/http.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "control/aws/error.h"

namespace eipgate::aws {
namespace {

// Loopback and the IMDS link-local address never go through a proxy, whatever the environment.
constexpr const char* kNoProxy = "127.0.0.1,localhost,::1,169.254.169.254";

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(data, size * count);
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    headers->emplace_back(std::move(name), std::string(value));
  } else if (line.substr(0, 5) == "HTTP/") {
    headers->clear();  // a new response (after 100 Continue or a redirect): keep only the last
  }
  return size * count;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

void check(CURLcode rc, const char* what) {
  if (rc != CURLE_OK) {
    throw AwsError(ErrorKind::Transport, "CurlSetup",
                   std::string(what) + ": " + curl_easy_strerror(rc));
  }
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return std::nullopt;
}

CurlTransport::CurlTransport() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpResponse CurlTransport::perform(const HttpRequest& request) {
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) throw AwsError(ErrorKind::Transport, "CurlInit", "curl_easy_init failed");
  CURL* h = easy.get();
  HttpResponse response;
  char errbuf[CURL_ERROR_SIZE] = {};

  std::string no_proxy = kNoProxy;
  for (const char* var : {"NO_PROXY", "no_proxy"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
      no_proxy = std::string(v) + "," + no_proxy;
      break;
    }
  }

  check(curl_easy_setopt(h, CURLOPT_URL, request.url.c_str()), "url");
  check(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols");
  check(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), "nosignal");
  check(curl_easy_setopt(h, CURLOPT_NOPROXY, no_proxy.c_str()), "noproxy");
  check(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf), "errorbuffer");
  check(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(request.connect_timeout.count())),
        "connect timeout");
  check(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count())),
        "timeout");
  const long resolve = request.ip_family == IpFamily::V6   ? CURL_IPRESOLVE_V6
                       : request.ip_family == IpFamily::V4 ? CURL_IPRESOLVE_V4
                                                           : CURL_IPRESOLVE_WHATEVER;
  check(curl_easy_setopt(h, CURLOPT_IPRESOLVE, resolve), "ip resolve");
  check(curl_easy_setopt(h, CURLOPT_USERAGENT, "eipgate-control"), "user agent");
  check(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body), "write function");
  check(curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body), "write data");
  check(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header), "header function");
  check(curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers), "header data");

  if (request.method == "POST" || request.method == "PUT") {
    check(curl_easy_setopt(h, CURLOPT_POST, 1L), "post");
    check(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(request.body.size())),
          "post size");
    check(curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str()), "post fields");
    if (request.method == "PUT") {
      check(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT"), "method");
    }
  } else if (request.method != "GET") {
    check(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str()), "method");
  }

  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  auto append = [&header_list](const std::string& line) {
    curl_slist* head = curl_slist_append(header_list.get(), line.c_str());
    if (head == nullptr) throw AwsError(ErrorKind::Transport, "CurlSetup", "out of memory");
    (void)header_list.release();  // same list, possibly a new head: keep owning it
    header_list.reset(head);
  };
  for (const auto& [name, value] : request.headers) append(name + ": " + value);
  if (request.sigv4) {
    const auto& s = *request.sigv4;
    // libcurl's SigV4 signs the request's own headers, so the token is signed as AWS requires.
    if (!s.session_token.empty()) append("X-Amz-Security-Token: " + s.session_token);
    const std::string provider = "aws:amz:" + s.region + ":" + s.service;
    check(curl_easy_setopt(h, CURLOPT_AWS_SIGV4, provider.c_str()), "aws sigv4");
    check(curl_easy_setopt(h, CURLOPT_USERNAME, s.access_key_id.c_str()), "username");
    check(curl_easy_setopt(h, CURLOPT_PASSWORD, s.secret_access_key.c_str()), "password");
  }
  // No "Expect:" override here: libcurl's SigV4 would sign that empty header without sending it.
  check(curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get()), "headers");

  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
    const char* code = rc == CURLE_OPERATION_TIMEDOUT ? "Timeout"
                       : rc == CURLE_COULDNT_CONNECT  ? "ConnectFailed"
                                                      : "TransportError";
    throw AwsError(ErrorKind::Transport, code, request.method + " " + request.url + ": " + detail);
  }
  check(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status), "status");
  return response;
}

std::string_view to_string(IpFamily family) {
  switch (family) {
    case IpFamily::V4:
      return "ipv4";
    case IpFamily::V6:
      return "ipv6";
    case IpFamily::Any:
      break;
  }
  return "any";
}

std::string url_encode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace eipgate::aws

// IMDSv2: session token handling, metadata reads, ENIs by MAC, instance-role credentials.
#include "control/aws/imds.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "control/aws/error.h"

namespace eipgate::aws {
namespace {

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) out.emplace_back(line);
    pos = nl + 1;
  }
  return out;
}

AwsError imds_error(long status, std::string_view path) {
  const std::string what = "IMDS " + std::string(path) + " answered HTTP " + std::to_string(status);
  if (status == 404) return AwsError(ErrorKind::NotFound, "ImdsNotFound", what, status);
  if (status == 401 || status == 403)
    return AwsError(ErrorKind::Auth, "ImdsUnauthorized", what, status);
  if (status >= 500 || status == 429)
    return AwsError(ErrorKind::Server, "ImdsUnavailable", what, status);
  return AwsError(ErrorKind::Other, "ImdsError", what, status);
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (text.size() < 20) return std::nullopt;
  auto num = [&](size_t at, size_t len, int& out) {
    const char* b = text.data() + at;
    auto [p, ec] = std::from_chars(b, b + len, out);
    return ec == std::errc() && p == b + len;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!num(0, 4, y) || text[4] != '-' || !num(5, 2, mo) || text[7] != '-' || !num(8, 2, d) ||
      (text[10] != 'T' && text[10] != 't') || !num(11, 2, h) || text[13] != ':' ||
      !num(14, 2, mi) || text[16] != ':' || !num(17, 2, s)) {
    return std::nullopt;
  }
  size_t i = 19;
  if (text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  if (i + 1 != text.size() || (text[i] != 'Z' && text[i] != 'z')) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const time_t t = timegm(&tm);
  return std::chrono::system_clock::from_time_t(t);
}

Credentials parse_role_credentials(std::string_view json, const std::string& role) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    throw AwsError(ErrorKind::Protocol, "ImdsBadCredentials",
                   "instance role credentials for " + role + " are not a JSON object");
  }
  auto str = [&](const char* key) -> std::string {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (const auto code = str("Code"); !code.empty() && code != "Success") {
    throw AwsError(ErrorKind::Auth, code, "IMDS refused credentials for role " + role);
  }
  Credentials c;
  c.access_key_id = str("AccessKeyId");
  c.secret_access_key = str("SecretAccessKey");
  c.session_token = str("Token");
  c.source = "imds:" + role;
  const std::string expiration = str("Expiration");
  if (c.access_key_id.empty() || c.secret_access_key.empty() || expiration.empty()) {
    throw AwsError(ErrorKind::Protocol, "ImdsBadCredentials",
                   "instance role credentials for " + role +
                       " lack AccessKeyId, SecretAccessKey or Expiration");
  }
  c.expiration = parse_iso8601(expiration);
  if (!c.expiration) {
    throw AwsError(
        ErrorKind::Protocol, "ImdsBadCredentials",
        "instance role credentials for " + role + ": bad Expiration '" + expiration + "'");
  }
  return c;
}

ImdsClient::ImdsClient(HttpTransport& http, ImdsOptions options, RetryEnv env)
    : http_(http),
      options_(std::move(options)),
      env_(env),
      retrier_(options_.retry, std::move(env)) {
  while (!options_.endpoint.empty() && options_.endpoint.back() == '/')
    options_.endpoint.pop_back();
  if (!env_.now) env_.now = RetryEnv::real().now;
}

std::string ImdsClient::token(bool force_new) {
  std::lock_guard lock(mutex_);
  // Renew a minute early so a token never expires between being read here and being used.
  if (!force_new && !token_.empty() && env_.now() + std::chrono::seconds(60) < token_expiry_) {
    return token_;
  }
  HttpRequest req;
  req.method = "PUT";
  req.url = options_.endpoint + "/latest/api/token";
  req.headers = {
      {"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(options_.token_ttl.count())}};
  req.connect_timeout = options_.connect_timeout;
  req.timeout = options_.timeout;
  const auto start = env_.now();
  HttpResponse resp = http_.perform(req);
  if (resp.status != 200 || resp.body.empty()) throw imds_error(resp.status, "api/token");
  token_ = resp.body;
  token_expiry_ = start + options_.token_ttl;
  ++tokens_fetched_;
  return token_;
}

std::string ImdsClient::get_once(std::string_view path) {
  for (int pass = 0;; ++pass) {
    HttpRequest req;
    req.url = options_.endpoint + "/latest/" + std::string(path);
    req.headers = {{"X-aws-ec2-metadata-token", token(pass > 0)}};
    req.connect_timeout = options_.connect_timeout;
    req.timeout = options_.timeout;
    HttpResponse resp = http_.perform(req);
    // 401: the token expired or IMDS restarted; one new token, then it is a real refusal.
    if (resp.status == 401 && pass == 0) continue;
    if (resp.status != 200) throw imds_error(resp.status, path);
    return resp.body;
  }
}

std::string ImdsClient::get_metadata(std::string_view path) {
  const std::string full = "meta-data/" + std::string(path);
  return retrier_.run("imds:GET " + full, [&] { return get_once(full); });
}

std::string ImdsClient::instance_id() { return get_metadata("instance-id"); }
std::string ImdsClient::region() { return get_metadata("placement/region"); }
std::string ImdsClient::availability_zone() { return get_metadata("placement/availability-zone"); }

InstanceIdentity ImdsClient::identity() {
  return InstanceIdentity{instance_id(), region(), availability_zone()};
}

std::vector<std::string> ImdsClient::macs() {
  std::vector<std::string> out;
  for (auto& line : split_lines(get_metadata("network/interfaces/macs/"))) {
    if (line.back() == '/') line.pop_back();
    std::transform(line.begin(), line.end(), line.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.push_back(std::move(line));
  }
  return out;
}

ImdsEni ImdsClient::eni(std::string_view mac) {
  const std::string base = "network/interfaces/macs/" + std::string(mac) + "/";
  ImdsEni e;
  e.mac = std::string(mac);
  e.interface_id = get_metadata(base + "interface-id");
  e.subnet_id = get_metadata(base + "subnet-id");
  e.local_ipv4s = split_lines(get_metadata(base + "local-ipv4s"));
  const std::string dev = get_metadata(base + "device-number");
  auto [p, ec] = std::from_chars(dev.data(), dev.data() + dev.size(), e.device_number);
  if (ec != std::errc() || p != dev.data() + dev.size()) {
    throw AwsError(ErrorKind::Protocol, "ImdsBadValue",
                   "device-number of " + e.mac + " is not a number: '" + dev + "'");
  }
  return e;
}

std::vector<ImdsEni> ImdsClient::enis() {
  std::vector<ImdsEni> out;
  for (const auto& mac : macs()) out.push_back(eni(mac));
  std::sort(out.begin(), out.end(),
            [](const ImdsEni& a, const ImdsEni& b) { return a.device_number < b.device_number; });
  return out;
}

std::string ImdsClient::role_name() {
  auto roles = split_lines(get_metadata("iam/security-credentials/"));
  if (roles.empty()) {
    throw AwsError(ErrorKind::NotFound, "ImdsNoRole", "the instance has no instance profile role");
  }
  return roles.front();
}

Credentials ImdsClient::role_credentials(const std::string& role) {
  return parse_role_credentials(get_metadata("iam/security-credentials/" + role), role);
}

}  // namespace eipgate::aws

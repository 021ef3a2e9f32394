// The shared part of the AWS clients (service_client.h).
#include "control/aws/service_client.h"

#include "common/log.h"

namespace eipgate::aws {

ServiceClient::ServiceClient(HttpTransport& http, CredentialsProvider& credentials,
                             ClientOptions options, ServiceSpec spec, RetryEnv env)
    : http_(http),
      credentials_(credentials),
      options_(std::move(options)),
      spec_(spec),
      retrier_(options_.retry, std::move(env)) {
  const std::string host(spec_.host);
  if (options_.region.empty()) {
    throw AwsError(ErrorKind::InvalidParameter, "NoRegion",
                   "the " + std::string(spec_.display) + " client needs a region");
  }
  const bool dual =
      options_.endpoint.empty() && (options_.dual_stack || options_.ip_family == IpFamily::V6);
  if (dual && !spec_.has_dual_stack) {
    throw AwsError(ErrorKind::InvalidParameter, "NoIpv6Endpoint",
                   host + "." + options_.region +
                       ".amazonaws.com is IPv4 only and has no dual-stack endpoint: give an "
                       "endpoint that serves IPv6");
  }
  endpoint_ = !options_.endpoint.empty() ? options_.endpoint
              : dual                     ? "https://" + host + "." + options_.region + ".api.aws/"
                     : "https://" + host + "." + options_.region + ".amazonaws.com/";
  // SigV4 signs the path: the Query and JSON APIs both live at "/".
  if (endpoint_.find('/', endpoint_.find("://") + 3) == std::string::npos) endpoint_ += '/';
}

HttpResponse ServiceClient::post(std::string_view label,
                                 std::vector<std::pair<std::string, std::string>> headers,
                                 std::string body, Credentials* used) {
  const Credentials creds = credentials_.get();
  *used = creds;
  HttpRequest req;
  req.method = "POST";
  req.url = endpoint_;
  req.headers = std::move(headers);
  req.body = std::move(body);
  req.connect_timeout = options_.connect_timeout;
  req.timeout = options_.timeout;
  req.ip_family = options_.ip_family;
  req.sigv4 = SigV4Signing{options_.region, std::string(spec_.signing_name), creds.access_key_id,
                           creds.secret_access_key, creds.session_token};
  const size_t bytes = req.body.size();
  const auto start = std::chrono::steady_clock::now();
  HttpResponse resp = http_.perform(req);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  eipgate::log::get()->debug("{} {} ({} bytes) -> HTTP {} in {} ms (key {})", spec_.host, label,
                             bytes, resp.status, ms, creds.redacted_key_id());
  return resp;
}

std::string ServiceClient::run(const std::string& operation,
                               const std::function<std::string(Credentials* used)>& once) {
  Credentials used;
  auto attempt = [&] {
    used = Credentials{};
    return retrier_.run(operation, [&] { return once(&used); });
  };
  try {
    try {
      return attempt();
    } catch (const AwsError& e) {
      if (!credentials_rejected(e) || used.access_key_id.empty()) throw;
      if (!credentials_.invalidate(used)) {
        throw AwsError(e.kind(), e.code(),
                       e.message() + "; the credentials from " + used.source + " (key " +
                           used.redacted_key_id() +
                           ") cannot be refreshed: replace them and restart eipgate-control",
                       e.http_status(), e.request_id());
      }
      const std::string old_key = used.redacted_key_id();
      credential_refreshes_.fetch_add(1, std::memory_order_relaxed);
      eipgate::log::get()->warn(
          "{}: {} rejected the credentials (key {}: {}); retrying once with fresh instance role "
          "credentials",
          operation, spec_.display, old_key, e.code());
      std::string out = attempt();
      eipgate::log::get()->info("{}: succeeded with the refreshed credentials (key {})", operation,
                                used.redacted_key_id());
      return out;
    }
  } catch (const AwsError& e) {
    errors_[static_cast<size_t>(e.kind())].fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

}  // namespace eipgate::aws

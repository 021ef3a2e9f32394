#include "dataplane/dpdk/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <utility>

namespace eipgate::dataplane {
namespace {

constexpr uint64_t kRetryMinMs = 5000;
constexpr uint64_t kRetryMaxMs = 60000;
constexpr uint32_t kMinTtlS = 5;

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

const char* h_error_name(int h) {
  switch (h) {
    case HOST_NOT_FOUND:
      return "NXDOMAIN";
    case TRY_AGAIN:
      return "timeout or SERVFAIL";
    case NO_RECOVERY:
      return "non-recoverable error (REFUSED/FORMERR)";
    case NO_DATA:
      return "no A record";
    default:
      return "lookup failed";
  }
}

}  // namespace

Resolver::Resolver(std::shared_ptr<spdlog::logger> log, Callback cb)
    : log_(std::move(log)), cb_(std::move(cb)) {}

Resolver::~Resolver() { stop(); }

void Resolver::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Resolver::retarget(std::shared_ptr<const policy::CompiledPolicy> base) {
  const bool has_names = base && !base->names_to_resolve().empty();
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    pending_ = std::move(base);
    has_pending_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable() && has_names) thread_ = std::thread([this] { loop(); });
}

bool Resolver::resolve_a(const std::string& name, std::vector<uint32_t>* addrs, uint32_t* ttl_s,
                         std::string* error) {
  addrs->clear();
  struct __res_state st {};
  if (res_ninit(&st) != 0) {
    *error = "res_ninit failed (/etc/resolv.conf)";
    return false;
  }
  st.retrans = 2;
  st.retry = 2;
  std::vector<unsigned char> buf(4096);
  const int n =
      res_nquery(&st, name.c_str(), ns_c_in, ns_t_a, buf.data(), static_cast<int>(buf.size()));
  if (n < 0) {
    *error = h_error_name(st.res_h_errno);
    res_nclose(&st);
    return false;
  }
  res_nclose(&st);
  ns_msg msg{};
  if (ns_initparse(buf.data(), std::min(n, static_cast<int>(buf.size())), &msg) < 0) {
    *error = "malformed DNS answer";
    return false;
  }
  uint32_t ttl = std::numeric_limits<uint32_t>::max();
  const int count = msg._counts[ns_s_an];
  for (int i = 0; i < count; ++i) {
    ns_rr rr{};
    if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) break;
    if (rr.type != ns_t_a || rr.rr_class != ns_c_in || rr.rdlength != 4) continue;
    uint32_t a = 0;
    std::memcpy(&a, rr.rdata, 4);
    addrs->push_back(ntohl(a));
    ttl = std::min(ttl, rr.ttl);
  }
  if (addrs->empty()) {
    *error = "no A record";
    return false;
  }
  std::sort(addrs->begin(), addrs->end());
  addrs->erase(std::unique(addrs->begin(), addrs->end()), addrs->end());
  *ttl_s = ttl;
  return true;
}

void Resolver::loop() {
  struct NameState {
    uint64_t due_ms = 0;
    uint64_t backoff_ms = kRetryMinMs;
  };
  std::shared_ptr<const policy::CompiledPolicy> base;
  std::map<std::string, NameState, std::less<>> names;
  policy::NameCache cache;
  std::unique_lock lock(mu_);
  for (;;) {
    if (stop_) return;
    bool changed = false;
    if (has_pending_) {
      base = std::move(pending_);
      has_pending_ = false;
      names.clear();
      if (base) {
        for (const auto& n : base->names_to_resolve()) names[n] = NameState{};
      }
      changed = cache.snapshot().size() > 0;  // rebuild the new base with what is known
    }
    lock.unlock();
    const uint64_t now = now_ms();
    for (auto& [name, ns] : names) {
      if (ns.due_ms > now) continue;
      std::vector<uint32_t> addrs;
      uint32_t ttl = 0;
      std::string err;
      if (resolve_a(name, &addrs, &ttl, &err)) {
        std::string list;
        for (uint32_t a : addrs) {
          in_addr ia{htonl(a)};
          char s[INET_ADDRSTRLEN] = {};
          ::inet_ntop(AF_INET, &ia, s, sizeof s);
          list += std::string(list.empty() ? "" : ",") + s;
        }
        const bool c = cache.update(name, std::move(addrs), ttl, now_ms());
        changed |= c;
        if (c) log_->info("resolver: {} -> {} (ttl {} s)", name, list, ttl);
        ns.backoff_ms = kRetryMinMs;
        ns.due_ms = now_ms() + uint64_t{std::max(ttl, kMinTtlS)} * 1000;
      } else {
        log_->warn("resolver: {}: {} (retry in {} s)", name, err, ns.backoff_ms / 1000);
        ns.due_ms = now_ms() + ns.backoff_ms;
        ns.backoff_ms = std::min(ns.backoff_ms * 2, kRetryMaxMs);
      }
    }
    changed |= cache.expire(now_ms());
    if (changed && base) {
      std::string err;
      std::shared_ptr<const policy::CompiledPolicy> next =
          base->with_resolved(cache.snapshot(), &err);
      if (next) {
        cb_(base, std::move(next));
      } else {
        log_->warn("resolver: policy not rebuilt with the resolved addresses: {}", err);
      }
    }
    uint64_t wake = std::numeric_limits<uint64_t>::max();
    for (const auto& [name, ns] : names) wake = std::min(wake, ns.due_ms);
    if (const auto e = cache.next_expiry_ms()) wake = std::min(wake, *e);
    lock.lock();
    if (stop_ || has_pending_) continue;
    if (wake == std::numeric_limits<uint64_t>::max()) {
      cv_.wait(lock, [this] { return stop_ || has_pending_; });
    } else {
      const uint64_t t = now_ms();
      const auto wait = std::chrono::milliseconds(wake > t ? wake - t : 0);
      cv_.wait_for(lock, wait, [this] { return stop_ || has_pending_; });
    }
  }
}

}  // namespace eipgate::dataplane

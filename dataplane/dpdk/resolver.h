// Keeps the exact names a policy needs resolved (CompiledPolicy::names_to_resolve()): one
// background thread asks the namespace's DNS (/etc/resolv.conf, glibc res_nquery) for A records,
// feeds a policy::NameCache with the answers' TTLs and, when the live address sets change, hands
// policy->with_resolved(snapshot) to a callback (which publishes it as a new config generation).
#pragma once

#include <spdlog/logger.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/policy/compiled_policy.h"

namespace eipgate::dataplane {

class Resolver {
 public:
  // base: the policy the names came from; resolved: base->with_resolved(...). Called on the
  // resolver thread; the callback should drop it when base is no longer the running policy.
  using Callback = std::function<void(const std::shared_ptr<const policy::CompiledPolicy>& base,
                                      std::shared_ptr<const policy::CompiledPolicy> resolved)>;

  Resolver(std::shared_ptr<spdlog::logger> log, Callback cb);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Follows `base` from now on (every name re-resolved at once); starts the thread on first use
  // with names to resolve. A policy without names leaves the thread idle.
  void retarget(std::shared_ptr<const policy::CompiledPolicy> base);
  void stop();

  // Synchronous A lookup (res_nquery): addresses in host order and the smallest TTL; false with
  // *error (e.g. "NXDOMAIN") on failure or no A record.
  static bool resolve_a(const std::string& name, std::vector<uint32_t>* addrs, uint32_t* ttl_s,
                        std::string* error);

 private:
  void loop();

  std::shared_ptr<spdlog::logger> log_;
  Callback cb_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                      // guarded by mu_
  std::shared_ptr<const policy::CompiledPolicy> pending_;  // guarded by mu_
  bool has_pending_ = false;                               // guarded by mu_
  std::thread thread_;
};

}  // namespace eipgate::dataplane

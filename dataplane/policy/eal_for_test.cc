// One EAL per process for tests and benchmarks: see eal_for_test.h.
#include "dataplane/policy/eal_for_test.h"

#include <rte_eal.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "dataplane/policy/acl_classifier.h"

namespace eipgate::policy {

bool init_eal_for_test() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    // --no-huge rules out --in-memory; --no-shconf and a per-process prefix let several test
    // binaries run at once (ctest -j) without meeting in a shared runtime config.
    static std::vector<std::string> args{
        "eipgate_policy_test",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
        "--file-prefix=eipgate_policy_" + std::to_string(::getpid()),
        "--log-level=*:warning",
        "-l",
        "0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ok = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
    if (ok) register_acl_backend();
  });
  return ok;
}

}  // namespace eipgate::policy

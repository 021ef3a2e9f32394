// One EAL per process for tests and benchmarks: see eal_for_test.h.
#include "policy/eal_for_test.h"

#include <rte_eal.h>

#include <array>
#include <mutex>

namespace eipgate::policy {

bool init_eal_for_test() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    // --in-memory: no runtime files, so several test binaries can run at once (ctest -j).
    static std::array<char[32], 1> argv0{{"eipgate_policy_test"}};
    std::array<char*, 10> argv{argv0[0],
                               const_cast<char*>("--no-huge"),
                               const_cast<char*>("-m"),
                               const_cast<char*>("256"),
                               const_cast<char*>("--no-pci"),
                               const_cast<char*>("--no-telemetry"),
                               const_cast<char*>("--in-memory"),
                               const_cast<char*>("--log-level=*:warning"),
                               const_cast<char*>("-l"),
                               const_cast<char*>("0")};
    ok = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  });
  return ok;
}

}  // namespace eipgate::policy

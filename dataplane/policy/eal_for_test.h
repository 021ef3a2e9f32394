// DPDK's EAL for tests and benchmarks of the policy classifier (rte_lpm/rte_acl allocate from
// EAL memory): no hugepages, no PCI, in-memory, one lcore. The dataplane process initialises
// the EAL itself and never calls this.
#pragma once

namespace eipgate::policy {

// Initialises the EAL once per process and registers the rte_acl backend (later calls return the
// first result); true on success.
bool init_eal_for_test();

}  // namespace eipgate::policy

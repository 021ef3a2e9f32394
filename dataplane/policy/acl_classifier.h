// DPDK's rte_acl as the egress policy's alternative per-group classifier (library
// eipgate_policy_acl): for groups the segment table cannot hold, and for comparison in tests and
// the benchmark. Needs the EAL initialised before a policy that uses it is compiled.
#pragma once

#include "dataplane/policy/compiled_policy.h"

namespace eipgate::policy {

// The rte_acl backend (static lifetime).
const ClassifierBackend& acl_backend();
// register_classifier_backend(&acl_backend()): the dataplane calls it at start-up.
void register_acl_backend();

}  // namespace eipgate::policy

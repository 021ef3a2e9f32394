// The egress policy's parser from the `policy:` node of the dataplane's YAML config into the data
// model (policy_model.h). Schema and semantics: dataplane/policy/README.md.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "dataplane/policy/policy_model.h"

namespace YAML {
class Node;
}

namespace eipgate::policy {

struct ParseResult {
  std::optional<PolicyConfig> config;  // set only when errors is empty
  std::vector<Issue> errors;           // every error found, in file order
  std::vector<Issue> warnings;         // shadowed/overlapping rules, overlapping groups
};

// Parses the `policy:` node (a mapping; null/undefined = no policy, an empty PolicyConfig).
// Never throws.
ParseResult parse_policy(const YAML::Node& policy_node, std::string_view file);
// Convenience for tests and tools: the text of a whole config file holding a `policy:` key.
ParseResult parse_policy_text(std::string_view yaml_text, std::string_view file);

}  // namespace eipgate::policy

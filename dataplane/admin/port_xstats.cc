// ENA allowance filter and xstats JSON (port_xstats.h).
#include "dataplane/admin/port_xstats.h"

#include <cctype>

namespace eipgate::admin {

namespace {

// The bare counter name `name` stands for, or empty.
std::string_view allowance_name(std::string_view name) {
  for (std::string_view bare : kEnaAllowanceCounters) {
    if (name == bare) return bare;
    if (name.size() > bare.size() && name.ends_with(bare)) {
      const auto sep = static_cast<unsigned char>(name[name.size() - bare.size() - 1]);
      if (std::isalnum(sep) == 0) return bare;
    }
  }
  return {};
}

}  // namespace

std::map<std::string, uint64_t> allowance_counters(const std::vector<XstatValue>& xstats) {
  std::map<std::string, uint64_t> out;
  for (const auto& x : xstats) {
    const std::string_view bare = allowance_name(x.name);
    if (!bare.empty()) out.emplace(std::string(bare), x.value);  // emplace keeps the first
  }
  return out;
}

bool is_allowance_exceeded(std::string_view name) { return name.ends_with("_allowance_exceeded"); }

nlohmann::json xstats_to_json(const std::vector<XstatValue>& xstats) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& x : xstats) {
    if (!out.contains(x.name)) out[x.name] = x.value;
  }
  return out;
}

}  // namespace eipgate::admin

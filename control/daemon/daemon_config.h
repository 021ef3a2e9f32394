// The daemon's view of the shared YAML file (aws:, ha:, admin:) from text, for tests and the
// control-config fuzz target; load_daemon_config() (daemon.h) reads the file and calls it.
#pragma once

#include <string>

#include "control/daemon/daemon.h"

namespace eipgate::control {

// Parses and checks `text` as the file named `file` (used only in messages). On error returns
// false with every problem as a "file:line: reason" line in *errors; never throws.
bool parse_daemon_config(const std::string& text, const std::string& file, DaemonConfig* out,
                         std::string* errors);

}  // namespace eipgate::control

// Logging of failover decisions through the process logger (common/log.h): transitions and
// decisions with actions at info, routine "stay" decisions at debug, so ticks do not flood logs.
#pragma once

#include "control/ha/state_machine.h"

namespace eipgate::ha {

// True for a decision an operator needs to see (a state change, or anything to do).
[[nodiscard]] inline bool notable(const Decision& d) { return d.changed() || !d.actions.empty(); }

void log_decision(const Decision& d);

}  // namespace eipgate::ha

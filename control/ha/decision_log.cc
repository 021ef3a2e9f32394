// log_decision(): one line per decision, never anything secret (decisions hold none).
#include "control/ha/decision_log.h"

#include "common/log.h"

namespace eipgate::ha {

void log_decision(const Decision& d) {
  const auto logger = log::get();
  if (notable(d)) {
    logger->info("ha: {}", d.to_string());
  } else {
    logger->debug("ha: {}", d.to_string());
  }
}

}  // namespace eipgate::ha

// eipgate-control: wires the HA core (control/ha) to the AWS layer (control/aws) and the
// dataplane (admin socket + sync socket). One poll() loop owns all state; blocking work (EC2
// calls, dataplane admin requests) runs on two worker threads whose results come back to the loop.
#pragma once

#include <atomic>
#include <string>

#include "control/aws/config.h"
#include "control/daemon/cloudwatch_publisher.h"
#include "control/daemon/logs_shipper.h"
#include "control/ha/config.h"

namespace eipgate::control {

struct DaemonConfig {
  std::string file;
  ha::HaConfig ha;
  aws::AwsConfig aws;
  CloudWatchConfig cloudwatch;           // the cloudwatch: section (off by default)
  CloudWatchLogsConfig cloudwatch_logs;  // the cloudwatch_logs: section (off by default)
  std::string dataplane_admin_socket = "/run/eipgate/dataplane.sock";
  std::string sync_socket;  // <dirname of admin.socket>/sync.sock
};

// Parses the YAML file: `aws:`, `ha:` and `admin.socket` (other sections are the dataplane's).
// On error returns false with every message as "file:line: reason" lines in *errors.
bool load_daemon_config(const std::string& file, DaemonConfig* out, std::string* errors);

// Runs until *stop is set (SIGTERM/SIGINT). Returns the process exit code.
int run_daemon(const DaemonConfig& config, ha::Secret secret, const std::atomic<bool>& stop);

}  // namespace eipgate::control

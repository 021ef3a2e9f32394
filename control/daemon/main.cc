// eipgate-control: the HA control daemon of an eipgate pair (control/daemon/README.md).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>

#include "common/log.h"
#include "control/daemon/daemon.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eipgate-control: failover, AWS route/address moves and flow sync for an HA pair"};
  std::string config_file;
  std::string level = "info";
  bool check_only = false;
  app.add_option("--config", config_file, "the eipgate YAML file (aws:, ha:, admin.socket)")
      ->required();
  app.add_option("--log-level", level, "trace, debug, info, warn, error");
  app.add_flag("--check", check_only, "validate the configuration and the secret file, then exit");
  CLI11_PARSE(app, argc, argv);
  eipgate::log::init("eipgate-control", level);

  eipgate::control::DaemonConfig config;
  std::string errors;
  if (!eipgate::control::load_daemon_config(config_file, &config, &errors)) {
    std::cerr << errors << "\n";
    return 2;
  }
  eipgate::ha::Secret secret;
  if (auto e = eipgate::ha::load_secret(config.ha, &secret)) {
    std::cerr << e->to_string() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << config_file << ": ok\n";
    return 0;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return eipgate::control::run_daemon(config, std::move(secret), g_stop);
}

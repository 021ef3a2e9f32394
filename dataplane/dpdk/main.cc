// eipgate-dataplane: loads the YAML config, starts the DPDK process, stops cleanly on SIGTERM.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "common/log.h"
#include "dataplane/config/dataplane_config.h"
#include "dataplane/dpdk/dataplane.h"
#include "dataplane/policy/acl_classifier.h"

namespace {
eipgate::dataplane::Dataplane* g_dataplane = nullptr;
extern "C" void on_signal(int) {
  if (g_dataplane) g_dataplane->stop();  // one relaxed atomic store: async-signal-safe
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eipgate-dataplane: the eipgate NAT data plane (DPDK)"};
  std::string config_path;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML configuration file")->required();
  app.add_flag("--check", check_only, "validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);
  // rte_acl for policy groups the segment table cannot hold (used once the EAL is up: reloads).
  eipgate::policy::register_acl_backend();

  const auto loaded = eipgate::dataplane::load_config(config_path);
  if (loaded.error) {
    std::fprintf(stderr, "eipgate-dataplane: %s\n", loaded.error->to_string().c_str());
    return 2;
  }
  const auto& cfg = *loaded.config;
  eipgate::log::init("eipgate-dataplane", cfg.logging.level, cfg.logging.json);
  if (check_only) {
    for (const auto& w : cfg.warnings) std::printf("warning: %s\n", w.c_str());
    for (const auto& p : cfg.ports) {
      if (p.device.starts_with("net_af_packet")) {
        std::printf(
            "%s: note: port '%s' uses af_packet: DPDK 22.11's PMD has the kernel reassemble IP "
            "fragments (PACKET_FANOUT_FLAG_DEFRAG), so a fragmented datagram larger than one "
            "frame is dropped; use af_xdp or a PCI device for fragmented traffic\n",
            config_path.c_str(), p.name.c_str());
      }
    }
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  eipgate::dataplane::Dataplane dp;
  g_dataplane = &dp;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  if (std::string err = dp.init(cfg, argv[0]); !err.empty()) {
    eipgate::log::get()->error("{}", err);
    std::fprintf(stderr, "eipgate-dataplane: %s\n", err.c_str());
    return 1;
  }
  const int rc = dp.run();
  g_dataplane = nullptr;
  return rc;
}

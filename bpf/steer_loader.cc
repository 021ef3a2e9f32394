// SteerProgram: the libbpf skeleton of xdp_steer.bpf.c behind a small RAII class, and the
// BPF_PROG_TEST_RUN helper its tests use.
#include "bpf/steer_loader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>
#include <utility>

#include "xdp_steer.skel.h"

namespace eipgate::bpf {
namespace {

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err < 0 ? -err : err);
}

uint32_t mask_of(uint8_t len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }

struct LpmKeyLess {
  bool operator()(const steer_lpm_key& a, const steer_lpm_key& b) const {
    return std::pair(a.prefixlen, a.addr) < std::pair(b.prefixlen, b.addr);
  }
};

// All keys of a hash or trie map (get_next_key from "no key" walks the whole map).
template <typename Key>
std::vector<Key> map_keys(int fd) {
  std::vector<Key> keys;
  Key cur{};
  Key next{};
  const Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    cur = next;
    prev = &cur;
  }
  return keys;
}

}  // namespace

std::string validate(const SteerConfig& cfg) {
  if (cfg.inside_prefixes.empty()) return "no inside prefix";
  if (cfg.inside_prefixes.size() > STEER_MAX_INSIDE_PREFIXES) {
    return "more than " + std::to_string(STEER_MAX_INSIDE_PREFIXES) + " inside prefixes";
  }
  for (const SteerPrefix& p : cfg.inside_prefixes) {
    if (p.len > 32) return "inside prefix length above 32";
  }
  if (cfg.outside_addrs.empty()) return "no outside address";
  if (cfg.outside_addrs.size() + cfg.host_addrs.size() > STEER_MAX_LOCAL_ADDRS) {
    return "more than " + std::to_string(STEER_MAX_LOCAL_ADDRS) + " outside and host addresses";
  }
  if (cfg.port_min > cfg.port_max) return "port_min above port_max";
  return {};
}

std::string_view steer_stat_name(uint32_t slot) {
  static constexpr std::string_view kNames[] = {
#define EIPGATE_STEER_STAT_NAME(id, name) #name,
      EIPGATE_STEER_STATS(EIPGATE_STEER_STAT_NAME)
#undef EIPGATE_STEER_STAT_NAME
  };
  static_assert(std::size(kNames) == STEER_STAT_COUNT);
  return slot < STEER_STAT_COUNT ? kNames[slot] : std::string_view("unknown");
}

SteerProgram::~SteerProgram() { reset(); }

SteerProgram::SteerProgram(SteerProgram&& other) noexcept
    : skel_(std::exchange(other.skel_, nullptr)),
      ifindex_(std::exchange(other.ifindex_, 0)),
      attach_flags_(std::exchange(other.attach_flags_, 0)) {}

SteerProgram& SteerProgram::operator=(SteerProgram&& other) noexcept {
  if (this != &other) {
    reset();
    skel_ = std::exchange(other.skel_, nullptr);
    ifindex_ = std::exchange(other.ifindex_, 0);
    attach_flags_ = std::exchange(other.attach_flags_, 0);
  }
  return *this;
}

void SteerProgram::reset() {
  if (skel_ == nullptr) return;
  (void)detach();  // a destructor has nobody to tell; the device going away detaches it too
  xdp_steer__destroy(skel_);
  skel_ = nullptr;
}

int SteerProgram::prog_fd() const {
  return skel_ != nullptr ? bpf_program__fd(skel_->progs.xdp_steer) : -1;
}

std::string SteerProgram::load(const SteerLoadOptions& options) {
  if (skel_ != nullptr) return "already loaded";
  if (options.fastpath_max_entries == 0) return "fastpath_max_entries is 0 (the least is 1)";
  xdp_steer* skel = xdp_steer__open();
  if (skel == nullptr) return errno_text("opening the xdp_steer skeleton", errno);
  if (options.fastpath_counter_slots == 0) return "fastpath_counter_slots is 0 (the least is 1)";
  if (const int err = bpf_map__set_max_entries(skel->maps.fp_flows, options.fastpath_max_entries);
      err != 0) {
    xdp_steer__destroy(skel);
    return errno_text("sizing " STEER_MAP_FP_FLOWS, err);
  }
  if (const int err =
          bpf_map__set_max_entries(skel->maps.fp_counters, options.fastpath_counter_slots);
      err != 0) {
    xdp_steer__destroy(skel);
    return errno_text("sizing " STEER_MAP_FP_COUNTERS, err);
  }
  if (const int err = xdp_steer__load(skel); err != 0) {
    xdp_steer__destroy(skel);
    return errno_text("loading xdp_steer (needs root, or CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN)", err);
  }
  skel_ = skel;
  return {};
}

std::string SteerProgram::configure(const SteerConfig& cfg) {
  if (skel_ == nullptr) return "not loaded";
  return configure_maps(map_fds(), cfg);
}

SteerMapFds SteerProgram::map_fds() const {
  SteerMapFds f;
  if (skel_ == nullptr) return f;
  f.xsks = bpf_map__fd(skel_->maps.xsks_map);
  f.inside_prefixes = bpf_map__fd(skel_->maps.inside_prefixes);
  f.local_addrs = bpf_map__fd(skel_->maps.local_addrs);
  f.steer_config = bpf_map__fd(skel_->maps.steer_config);
  f.steer_stats = bpf_map__fd(skel_->maps.steer_stats);
  f.fp_flows = bpf_map__fd(skel_->maps.fp_flows);
  f.fp_tx_ports = bpf_map__fd(skel_->maps.fp_tx_ports);
  f.fp_counters = bpf_map__fd(skel_->maps.fp_counters);
  return f;
}

std::string SteerProgram::attach(int ifindex, XdpMode mode) {
  if (skel_ == nullptr) return "not loaded";
  if (ifindex_ != 0) return "already attached to ifindex " + std::to_string(ifindex_);
  // UPDATE_IF_NOEXIST: never silently replace another program (another dataplane, a firewall).
  const uint32_t flags = (mode == XdpMode::Skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
  if (const int err =
          bpf_xdp_attach(ifindex, prog_fd(), flags | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
      err != 0) {
    return errno_text(("attaching to ifindex " + std::to_string(ifindex)).c_str(), err);
  }
  ifindex_ = ifindex;
  attach_flags_ = flags;
  return {};
}

std::string SteerProgram::detach() {
  if (ifindex_ == 0) return {};
  // REPLACE with old_prog_fd: removes the program only if it is still ours.
  bpf_xdp_attach_opts opts{};  // not LIBBPF_OPTS: a GNU statement expression, -Wpedantic in C++
  opts.sz = sizeof opts;
  opts.old_prog_fd = prog_fd();
  const int err = bpf_xdp_attach(ifindex_, -1, attach_flags_ | XDP_FLAGS_REPLACE, &opts);
  const int ifindex = std::exchange(ifindex_, 0);
  if (err != 0 && err != -ENODEV) {
    return errno_text(("detaching from ifindex " + std::to_string(ifindex)).c_str(), err);
  }
  return {};
}

std::string remove_stale_steer(int ifindex, uint32_t* removed_id) {
  *removed_id = 0;
  uint32_t prog_id = 0;
  if (const int err = bpf_xdp_query_id(ifindex, 0, &prog_id); err != 0) {
    return errno_text(("querying the XDP program of ifindex " + std::to_string(ifindex)).c_str(),
                      err);
  }
  if (prog_id == 0) return {};
  const int prog_fd = bpf_prog_get_fd_by_id(prog_id);
  if (prog_fd < 0) return errno_text("opening the attached XDP program", errno);
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    const int e = errno;
    ::close(prog_fd);
    return errno_text("reading the attached XDP program's info", e);
  }
  if (std::string_view(info.name) != "xdp_steer") {
    ::close(prog_fd);
    return "ifindex " + std::to_string(ifindex) + " has another XDP program attached ('" +
           info.name + "', id " + std::to_string(prog_id) + "); not removing it";
  }
  // REPLACE with old_prog_fd: removes it only if it is still that program.
  bpf_xdp_attach_opts opts{};
  opts.sz = sizeof opts;
  opts.old_prog_fd = prog_fd;
  int err = bpf_xdp_attach(ifindex, -1, XDP_FLAGS_REPLACE, &opts);
  if (err != 0) err = bpf_xdp_attach(ifindex, -1, XDP_FLAGS_REPLACE | XDP_FLAGS_DRV_MODE, &opts);
  if (err != 0) err = bpf_xdp_attach(ifindex, -1, XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE, &opts);
  ::close(prog_fd);
  if (err != 0) {
    return errno_text(
        ("removing the stale xdp_steer from ifindex " + std::to_string(ifindex)).c_str(), err);
  }
  *removed_id = prog_id;
  return {};
}

std::string SteerProgram::register_socket(uint32_t queue, int xsk_fd) {
  if (skel_ == nullptr) return "not loaded";
  if (queue >= STEER_MAX_QUEUES) return "queue " + std::to_string(queue) + " out of range";
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.xsks_map), &queue, &xsk_fd, BPF_ANY) != 0) {
    return errno_text(("registering the AF_XDP socket of queue " + std::to_string(queue)).c_str(),
                      errno);
  }
  return {};
}

std::string SteerProgram::unregister_socket(uint32_t queue) {
  if (skel_ == nullptr) return "not loaded";
  if (queue >= STEER_MAX_QUEUES) return "queue " + std::to_string(queue) + " out of range";
  if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.xsks_map), &queue) != 0 && errno != ENOENT) {
    return errno_text("unregistering an AF_XDP socket", errno);
  }
  return {};
}

std::string configure_maps(const SteerMapFds& fds, const SteerConfig& cfg) {
  if (std::string err = validate(cfg); !err.empty()) return err;
  if (cfg.fastpath && fds.fp_flows < 0) {
    return "the fast path is asked for, but this xdp_steer object has no " STEER_MAP_FP_FLOWS;
  }

  std::set<steer_lpm_key, LpmKeyLess> prefixes;
  for (const SteerPrefix& p : cfg.inside_prefixes) {
    prefixes.insert(steer_lpm_key{p.len, htonl(p.addr & mask_of(p.len))});
  }
  // Outside wins over host for an address given as both (the engine's order, steer_abi.h).
  std::vector<std::pair<uint32_t, uint32_t>> locals;  // network-order address, kinds
  auto add_local = [&locals](uint32_t host_order, uint32_t kind) {
    const uint32_t net = htonl(host_order);
    auto it = std::find_if(locals.begin(), locals.end(), [net](auto& e) { return e.first == net; });
    if (it == locals.end()) {
      locals.emplace_back(net, kind);
    } else {
      it->second |= kind;
    }
  };
  for (uint32_t a : cfg.outside_addrs) add_local(a, STEER_ADDR_OUTSIDE);
  for (uint32_t a : cfg.host_addrs) add_local(a, STEER_ADDR_HOST);

  const int prefix_fd = fds.inside_prefixes;
  const int local_fd = fds.local_addrs;
  const int config_fd = fds.steer_config;

  // 1. add the new entries
  for (const steer_lpm_key& k : prefixes) {
    const steer_prefix_value v{};
    if (bpf_map_update_elem(prefix_fd, &k, &v, BPF_ANY) != 0) {
      return errno_text("writing " STEER_MAP_INSIDE, errno);
    }
  }
  for (const auto& [addr, kinds] : locals) {
    const steer_addr_key k{addr};
    const steer_addr_value v{kinds};
    if (bpf_map_update_elem(local_fd, &k, &v, BPF_ANY) != 0) {
      return errno_text("writing " STEER_MAP_LOCAL, errno);
    }
  }
  // 2. the port range and flags, which also enable the program on the first call
  steer_config c{};
  c.port_min = cfg.port_min;
  c.port_max = cfg.port_max;
  c.flags = STEER_F_ENABLED | (cfg.echo_request_to_host ? STEER_F_ECHO_REQUEST_TO_HOST : 0u) |
            (cfg.fastpath ? STEER_F_FASTPATH : 0u);
  const uint32_t zero = 0;
  if (bpf_map_update_elem(config_fd, &zero, &c, BPF_ANY) != 0) {
    return errno_text("writing " STEER_MAP_CONFIG, errno);
  }
  // 3. remove the stale entries
  for (const steer_lpm_key& k : map_keys<steer_lpm_key>(prefix_fd)) {
    if (prefixes.count(k) == 0 && bpf_map_delete_elem(prefix_fd, &k) != 0 && errno != ENOENT) {
      return errno_text("pruning " STEER_MAP_INSIDE, errno);
    }
  }
  for (const steer_addr_key& k : map_keys<steer_addr_key>(local_fd)) {
    const bool wanted =
        std::any_of(locals.begin(), locals.end(), [&k](auto& e) { return e.first == k.addr; });
    if (!wanted && bpf_map_delete_elem(local_fd, &k) != 0 && errno != ENOENT) {
      return errno_text("pruning " STEER_MAP_LOCAL, errno);
    }
  }
  return {};
}

std::string read_stats_map(int fd, SteerStats& out) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return errno_text("counting possible CPUs", cpus);
  // A per-CPU lookup fills one 8-byte-aligned value per possible CPU.
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t slot = 0; slot < STEER_STAT_COUNT; ++slot) {
    if (bpf_map_lookup_elem(fd, &slot, per_cpu.data()) != 0) {
      return errno_text("reading " STEER_MAP_STATS, errno);
    }
    uint64_t sum = 0;
    for (uint64_t v : per_cpu) sum += v;
    out.packets[slot] = sum;
  }
  return {};
}

std::string SteerProgram::read_stats(SteerStats& out) const {
  if (skel_ == nullptr) return "not loaded";
  return read_stats_map(map_fds().steer_stats, out);
}

// ---- AttachedSteer ------------------------------------------------------------------------------

AttachedSteer::~AttachedSteer() { close_all(); }

AttachedSteer::AttachedSteer(AttachedSteer&& o) noexcept
    : fds_(std::exchange(o.fds_, SteerMapFds{})),
      prog_id_(std::exchange(o.prog_id_, 0)),
      ifindex_(std::exchange(o.ifindex_, 0)) {}

AttachedSteer& AttachedSteer::operator=(AttachedSteer&& o) noexcept {
  if (this != &o) {
    close_all();
    fds_ = std::exchange(o.fds_, SteerMapFds{});
    prog_id_ = std::exchange(o.prog_id_, 0);
    ifindex_ = std::exchange(o.ifindex_, 0);
  }
  return *this;
}

void AttachedSteer::close_all() {
  for (int* fd : {&fds_.xsks, &fds_.inside_prefixes, &fds_.local_addrs, &fds_.steer_config,
                  &fds_.steer_stats, &fds_.fp_flows, &fds_.fp_tx_ports, &fds_.fp_counters}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  prog_id_ = 0;
  ifindex_ = 0;
}

std::string AttachedSteer::adopt(int ifindex) {
  close_all();
  uint32_t prog_id = 0;
  if (const int err = bpf_xdp_query_id(ifindex, 0, &prog_id); err != 0) {
    return errno_text(("querying the XDP program of ifindex " + std::to_string(ifindex)).c_str(),
                      err);
  }
  if (prog_id == 0) return "no XDP program attached to ifindex " + std::to_string(ifindex);
  const int prog_fd = bpf_prog_get_fd_by_id(prog_id);
  if (prog_fd < 0) return errno_text("opening the attached XDP program", errno);
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  std::vector<uint32_t> map_ids(16);
  info.nr_map_ids = static_cast<uint32_t>(map_ids.size());
  info.map_ids = reinterpret_cast<uint64_t>(map_ids.data());
  const int rc = bpf_obj_get_info_by_fd(prog_fd, &info, &len);
  const int info_errno = errno;
  ::close(prog_fd);
  if (rc != 0) return errno_text("reading the attached XDP program's info", info_errno);
  if (std::string_view(info.name) != "xdp_steer") {
    return "the XDP program on ifindex " + std::to_string(ifindex) + " is '" + info.name +
           "', not eipgate's xdp_steer";
  }
  map_ids.resize(std::min<size_t>(info.nr_map_ids, map_ids.size()));
  for (const uint32_t id : map_ids) {
    const int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_map_info mi{};
    uint32_t mlen = sizeof mi;
    if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) != 0) {
      ::close(fd);
      continue;
    }
    const std::string_view name(mi.name);
    int* slot = name == STEER_MAP_XSKS          ? &fds_.xsks
                : name == STEER_MAP_INSIDE      ? &fds_.inside_prefixes
                : name == STEER_MAP_LOCAL       ? &fds_.local_addrs
                : name == STEER_MAP_CONFIG      ? &fds_.steer_config
                : name == STEER_MAP_STATS       ? &fds_.steer_stats
                : name == STEER_MAP_FP_FLOWS    ? &fds_.fp_flows
                : name == STEER_MAP_FP_TX_PORTS ? &fds_.fp_tx_ports
                : name == STEER_MAP_FP_COUNTERS ? &fds_.fp_counters
                                                : nullptr;
    if (slot == nullptr || *slot >= 0) {
      ::close(fd);
      continue;
    }
    *slot = fd;
  }
  if (fds_.inside_prefixes < 0 || fds_.local_addrs < 0 || fds_.steer_config < 0 ||
      fds_.steer_stats < 0) {
    close_all();
    return "the xdp_steer program on ifindex " + std::to_string(ifindex) +
           " lacks one of its maps (an object of another version?)";
  }
  prog_id_ = prog_id;
  ifindex_ = ifindex;
  return {};
}

std::string AttachedSteer::configure(const SteerConfig& cfg) {
  if (prog_id_ == 0) return "no program adopted";
  return configure_maps(fds_, cfg);
}

std::string AttachedSteer::read_stats(SteerStats& out) const {
  if (prog_id_ == 0) return "no program adopted";
  return read_stats_map(fds_.steer_stats, out);
}

XdpRunResult run_on_packet(int prog_fd, std::span<const uint8_t> frame, XdpRunContext ctx) {
  XdpRunResult r;
  // Room for a program that grows the frame with bpf_xdp_adjust_tail.
  std::vector<uint8_t> out(frame.size() + 4096);
  xdp_md md{};
  md.data_end = static_cast<uint32_t>(frame.size());  // the kernel requires data 0, end = size
  md.ingress_ifindex = static_cast<uint32_t>(ctx.ifindex);
  md.rx_queue_index = ctx.rx_queue;
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = frame.data();
  opts.data_out = out.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.ctx_in = &md;
  opts.ctx_size_in = sizeof md;
  opts.repeat = 1;
  if (const int err = bpf_prog_test_run_opts(prog_fd, &opts); err != 0) {
    r.error = errno_text("BPF_PROG_TEST_RUN", err);
    return r;
  }
  r.verdict = opts.retval;
  out.resize(opts.data_size_out);
  r.output = std::move(out);
  return r;
}

}  // namespace eipgate::bpf

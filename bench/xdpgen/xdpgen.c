// eipgate-xdpgen: a UDP traffic generator for forwarding benchmarks that is not their bottleneck.
// BPF_PROG_TEST_RUN in live-frames mode sends one template frame many times; the XDP program
// (xdpgen.bpf.c) rewrites each frame for the next flow and redirects it out of --dev.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <getopt.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/xdpgen/xdpgen_abi.h"
#include "bench/xdpgen/xdpgen_cli.h"
#include "xdpgen.skel.h"

_Static_assert(sizeof(struct xdpgen_config) == 96, "xdpgen_config layout");
_Static_assert(sizeof(struct xdpgen_state) == 72, "xdpgen_state layout");

// A run's repeat count aims at this long: long enough that the 15-30 ms of setup per run is
// small, short enough that --duration is kept to within a fraction of a second.
#define RUN_TARGET_S 0.25

struct options {
  const char* dev;
  uint8_t src_mac[6];
  bool src_mac_set;
  uint8_t dst_mac[6];
  uint32_t src_ip;  // network order
  uint32_t dst_ip;  // network order
  uint16_t dst_port;
  uint16_t sport_base;
  uint32_t ports_per_addr;  // 0: every port from sport_base up
  uint32_t dst_count;
  uint32_t count;  // 0: no limit
  uint32_t flows;
  uint32_t size;
  uint32_t keep;
  uint32_t stamp_every;
  double duration;
  uint32_t batch;
  int cpu;
  bool json;
  bool verbose;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void usage(FILE* out) {
  fprintf(out,
          "Usage: eipgate-xdpgen --dev IFNAME [options]\n"
          "Sends UDP frames out of IFNAME (they arrive at its peer) with BPF_PROG_TEST_RUN in\n"
          "live-frames mode. Needs root. A veth peer only receives redirected frames while it\n"
          "has an XDP program (eipgate-xdpsink, the NAT's own) or GRO on.\n"
          "  --dev IFNAME        device the frames are redirected into (required)\n"
          "  --src-mac MAC       Ethernet source (default: IFNAME's address)\n"
          "  --dst-mac MAC       Ethernet destination (default ff:ff:ff:ff:ff:ff; give the\n"
          "                      receiver's address when a kernel forwards the frames)\n"
          "  --src-ip A          first inside source address (default 10.0.1.10)\n"
          "  --dst-ip A          destination address (default 198.51.100.7)\n"
          "  --dst-count N       destinations: flow f goes to dst-ip + f %% N (default 1)\n"
          "  --dst-port P        UDP destination port (default 9)\n"
          "  --sport-base P      first UDP source port (default 1024)\n"
          "  --flows N           distinct (source address, source port) pairs, round robin\n"
          "                      (default 4096); ports sport-base..65535 per address, then\n"
          "                      the next address\n"
          "  --ports-per-addr N  source ports per source address before the next address\n"
          "                      (default: every port from sport-base up)\n"
          "  --count N           stop after N frames sent (default 0: --duration decides);\n"
          "                      --count FLOWS sends one frame per flow\n"
          "  --size B            frame bytes without the FCS, %d..%d (default %d: 64 on the\n"
          "                      wire)\n"
          "  --keep K            send 1 in K of the program's runs, drop the rest in the\n"
          "                      program: the rate control (default 1: as fast as it goes).\n"
          "                      Not proportional (dropped runs cost too): read offered_pps\n"
          "  --stamp M           latency stamp in 1 in M sent frames (default 0: none), read by\n"
          "                      eipgate-xdpsink\n"
          "  --duration S        seconds to send (default 1; 0: until SIGINT or SIGTERM)\n"
          "  --batch N           live-frames batch size, 1..256 (default 128)\n"
          "  --cpu N             pin the sending thread (and so the program) to CPU N\n"
          "  --json              print one JSON line instead of text\n"
          "  --verbose           libbpf's messages\n",
          XDPGEN_MIN_FRAME, XDPGEN_MAX_FRAME, XDPGEN_MIN_FRAME);
}

static struct options parse_options(int argc, char** argv) {
  struct options o = {
      .dst_mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
      .src_ip = htonl(0x0a00010a),  // 10.0.1.10
      .dst_ip = htonl(0xc6336407),  // 198.51.100.7
      .dst_port = 9,
      .sport_base = 1024,
      .dst_count = 1,
      .flows = 4096,
      .size = XDPGEN_MIN_FRAME,
      .keep = 1,
      .duration = 1.0,
      .batch = 128,
      .cpu = -1,
  };
  enum {
    kDev = 256,
    kSrcMac,
    kDstMac,
    kSrcIp,
    kDstIp,
    kDstPort,
    kSportBase,
    kPortsPerAddr,
    kDstCount,
    kCount,
    kFlows,
    kSize,
    kKeep,
    kStamp,
    kDuration,
    kBatch,
    kCpu,
    kJson,
    kVerbose,
    kHelp,
  };
  static const struct option longopts[] = {
      {"dev", required_argument, NULL, kDev},
      {"src-mac", required_argument, NULL, kSrcMac},
      {"dst-mac", required_argument, NULL, kDstMac},
      {"src-ip", required_argument, NULL, kSrcIp},
      {"dst-ip", required_argument, NULL, kDstIp},
      {"dst-port", required_argument, NULL, kDstPort},
      {"sport-base", required_argument, NULL, kSportBase},
      {"ports-per-addr", required_argument, NULL, kPortsPerAddr},
      {"dst-count", required_argument, NULL, kDstCount},
      {"count", required_argument, NULL, kCount},
      {"flows", required_argument, NULL, kFlows},
      {"size", required_argument, NULL, kSize},
      {"keep", required_argument, NULL, kKeep},
      {"stamp", required_argument, NULL, kStamp},
      {"duration", required_argument, NULL, kDuration},
      {"batch", required_argument, NULL, kBatch},
      {"cpu", required_argument, NULL, kCpu},
      {"json", no_argument, NULL, kJson},
      {"verbose", no_argument, NULL, kVerbose},
      {"help", no_argument, NULL, kHelp},
      {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case kDev:
        o.dev = optarg;
        break;
      case kSrcMac:
        parse_mac("src-mac", optarg, o.src_mac);
        o.src_mac_set = true;
        break;
      case kDstMac:
        parse_mac("dst-mac", optarg, o.dst_mac);
        break;
      case kSrcIp:
        o.src_ip = parse_ipv4("src-ip", optarg);
        break;
      case kDstIp:
        o.dst_ip = parse_ipv4("dst-ip", optarg);
        break;
      case kDstPort:
        o.dst_port = (uint16_t)parse_u64("dst-port", optarg, 1, 65535);
        break;
      case kSportBase:
        o.sport_base = (uint16_t)parse_u64("sport-base", optarg, 1, 65535);
        break;
      case kPortsPerAddr:
        o.ports_per_addr = (uint32_t)parse_u64("ports-per-addr", optarg, 1, 65535);
        break;
      case kDstCount:
        o.dst_count = (uint32_t)parse_u64("dst-count", optarg, 1, 1u << 16);
        break;
      case kCount:
        o.count = (uint32_t)parse_u64("count", optarg, 0, UINT32_MAX);
        break;
      case kFlows:
        o.flows = (uint32_t)parse_u64("flows", optarg, 1, 1u << 24);
        break;
      case kSize:
        o.size = (uint32_t)parse_u64("size", optarg, XDPGEN_MIN_FRAME, XDPGEN_MAX_FRAME);
        break;
      case kKeep:
        o.keep = (uint32_t)parse_u64("keep", optarg, 1, 1u << 20);
        break;
      case kStamp:
        o.stamp_every = (uint32_t)parse_u64("stamp", optarg, 0, 1u << 30);
        break;
      case kDuration:
        o.duration = parse_seconds("duration", optarg);
        break;
      case kBatch:
        o.batch = (uint32_t)parse_u64("batch", optarg, 1, 256);
        break;
      case kCpu:
        o.cpu = (int)parse_u64("cpu", optarg, 0, CPU_SETSIZE - 1);
        break;
      case kJson:
        o.json = true;
        break;
      case kVerbose:
        o.verbose = true;
        break;
      case kHelp:
        usage(stdout);
        exit(0);
      default:
        usage(stderr);
        exit(2);
    }
  }
  if (optind != argc) die("unexpected argument '%s' (see --help)", argv[optind]);
  if (o.dev == NULL) die("--dev is required (see --help)");
  return o;
}

static int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  (void)level;
  return vfprintf(stderr, fmt, ap);
}

static void device_mac(const char* dev, uint8_t mac[6]) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
    die("reading %s's MAC address: %s", dev, strerror(errno));
  close(fd);
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
}

// One's complement sum of len bytes, as 16-bit words in memory order (an odd byte padded).
static uint32_t sum16(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  uint16_t w;
  for (; len >= 2; p += 2, len -= 2) {
    memcpy(&w, p, 2);
    sum += w;
  }
  if (len == 1) {
    const uint8_t last[2] = {p[0], 0};
    memcpy(&w, last, 2);
    sum += w;
  }
  return sum;
}

static uint16_t fold_invert(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void put16(uint8_t* p, uint16_t host) {
  const uint16_t n = htons(host);
  memcpy(p, &n, 2);
}

// The template frame (saddr, sport and checksums zero) and the checksum sums of its fixed part.
static void build_frame(const struct options* o, uint8_t* frame, struct xdpgen_config* cfg) {
  memset(frame, 0, o->size);
  memcpy(frame, o->dst_mac, 6);
  memcpy(frame + 6, o->src_mac, 6);
  put16(frame + 12, ETH_P_IP);
  uint8_t* ip = frame + XDPGEN_IP_OFF;
  ip[0] = 0x45;
  put16(ip + 2, (uint16_t)(o->size - XDPGEN_IP_OFF));
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP; saddr and daddr are written per frame
  uint8_t* udp = frame + XDPGEN_UDP_OFF;
  const uint16_t udp_len = (uint16_t)(o->size - XDPGEN_UDP_OFF);
  put16(udp + 2, o->dst_port);
  put16(udp + 4, udp_len);

  memset(cfg, 0, sizeof *cfg);
  memcpy(cfg->hdr.bytes, frame, XDPGEN_HDR_LEN);
  cfg->ip_sum = sum16(ip, 20);
  uint8_t pseudo[4];  // zero, protocol, UDP length (saddr and daddr added per frame)
  pseudo[0] = 0;
  pseudo[1] = 17;
  put16(pseudo + 2, udp_len);
  cfg->udp_sum = sum16(pseudo, sizeof pseudo) + sum16(udp, udp_len);
}

// Runs the program once in ordinary (not live) test mode and recomputes both checksums of its
// output from scratch: a wrong incremental checksum fails here, before any traffic.
static void self_check(int prog_fd, const uint8_t* frame, uint32_t size) {
  uint8_t out[XDPGEN_MAX_FRAME];
  struct bpf_test_run_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;
  opts.data_in = frame;
  opts.data_size_in = size;
  opts.data_out = out;
  opts.data_size_out = sizeof out;
  opts.repeat = 1;
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
    die("BPF_PROG_TEST_RUN (self-check): %s", strerror(errno));
  }
  if (opts.retval != XDP_REDIRECT) die("self-check: verdict %u, not XDP_REDIRECT", opts.retval);
  if (fold_invert(sum16(out + XDPGEN_IP_OFF, 20)) != 0) die("self-check: bad IPv4 checksum");
  uint8_t pseudo[12];
  memcpy(pseudo, out + XDPGEN_IP_OFF + 12, 8);  // saddr, daddr
  pseudo[8] = 0;
  pseudo[9] = 17;
  put16(pseudo + 10, (uint16_t)(size - XDPGEN_UDP_OFF));
  if (fold_invert(sum16(pseudo, sizeof pseudo) +
                  sum16(out + XDPGEN_UDP_OFF, size - XDPGEN_UDP_OFF)) != 0) {
    die("self-check: bad UDP checksum");
  }
}

// veth's counters of redirected frames, summed over its queues: handed to the peer's ring
// (tx_queue_N_xdp_xmit) and refused by it, full (tx_queue_N_xdp_xmit_errors). A peer without
// NAPI (no XDP program, GRO off) refuses frames before either counter moves.
struct xmit_counters {
  bool known;  // false: not a veth, or its counters could not be read
  uint64_t xmit, errors;
};

static bool has_suffix(const char* s, size_t len, const char* suffix) {
  const size_t n = strlen(suffix);
  return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static struct xmit_counters veth_xmit_counters(const char* dev) {
  struct xmit_counters c = {.known = false};
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return c;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
  struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
  ifr.ifr_data = (char*)&info;
  if (ioctl(fd, SIOCETHTOOL, &ifr) != 0 || strcmp(info.driver, "veth") != 0 || info.n_stats == 0) {
    close(fd);
    return c;
  }
  const size_t n = info.n_stats;
  struct ethtool_gstrings* names = calloc(1, sizeof *names + n * ETH_GSTRING_LEN);
  struct ethtool_stats* stats = calloc(1, sizeof *stats + n * sizeof(uint64_t));
  if (names != NULL && stats != NULL) {
    names->cmd = ETHTOOL_GSTRINGS;
    names->string_set = ETH_SS_STATS;
    names->len = (uint32_t)n;
    stats->cmd = ETHTOOL_GSTATS;
    stats->n_stats = (uint32_t)n;
    ifr.ifr_data = (char*)names;
    const bool ok_names = ioctl(fd, SIOCETHTOOL, &ifr) == 0;
    ifr.ifr_data = (char*)stats;
    if (ok_names && ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
      c.known = true;
      for (size_t i = 0; i < n; i++) {
        const char* name = (const char*)names->data + i * ETH_GSTRING_LEN;
        const size_t len = strnlen(name, ETH_GSTRING_LEN);
        if (len < 9 || memcmp(name, "tx_queue_", 9) != 0) continue;
        if (has_suffix(name, len, "_xdp_xmit")) c.xmit += stats->data[i];
        if (has_suffix(name, len, "_xdp_xmit_errors")) c.errors += stats->data[i];
      }
    }
  }
  free(names);
  free(stats);
  close(fd);
  return c;
}

struct totals {
  uint64_t kept, filtered, stamped, counted;
  uint64_t first_ns, last_ns;
};

// Sums the per-CPU state: the clock window spans every CPU the program ran on; "counted" are the
// frames sent inside it (after the first, up to the last clock reading).
static struct totals read_totals(int map_fd, int ncpus) {
  struct xdpgen_state* per_cpu = calloc((size_t)ncpus, sizeof *per_cpu);
  if (per_cpu == NULL) die("out of memory");
  const uint32_t zero = 0;
  if (bpf_map_lookup_elem(map_fd, &zero, per_cpu) != 0)
    die("reading xdpgen_state: %s", strerror(errno));
  struct totals t = {.first_ns = UINT64_MAX};
  for (int c = 0; c < ncpus; c++) {
    const struct xdpgen_state* s = &per_cpu[c];
    if (s->kept == 0) continue;
    t.kept += s->kept;
    t.filtered += s->filtered;
    t.stamped += s->stamped;
    t.counted += s->kept_at_last - 1;
    if (s->first_ns < t.first_ns) t.first_ns = s->first_ns;
    if (s->last_ns > t.last_ns) t.last_ns = s->last_ns;
  }
  free(per_cpu);
  if (t.kept == 0) t.first_ns = t.last_ns = 0;
  return t;
}

int main(int argc, char** argv) {
  g_prog = "eipgate-xdpgen";
  struct options o = parse_options(argc, argv);
  if (o.verbose)
    libbpf_set_print(libbpf_print);
  else
    libbpf_set_print(NULL);

  const unsigned int ifindex = if_nametoindex(o.dev);
  if (ifindex == 0) die("no device '%s' in this network namespace", o.dev);
  if (!o.src_mac_set) device_mac(o.dev, o.src_mac);
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("--cpu %d: %s", o.cpu, strerror(errno));
  }

  uint8_t frame[XDPGEN_MAX_FRAME];
  struct xdpgen_config cfg;
  build_frame(&o, frame, &cfg);
  uint32_t ports = 65536u - o.sport_base;
  if (o.ports_per_addr > ports) {
    die("--ports-per-addr %u: only %u ports from --sport-base %u", o.ports_per_addr, ports,
        o.sport_base);
  }
  if (o.ports_per_addr > 0) ports = o.ports_per_addr;
  cfg.sport_base = o.sport_base;
  cfg.ifindex = ifindex;
  cfg.flows = o.flows;
  cfg.ports_per_addr = o.flows < ports ? o.flows : ports;
  cfg.dst_ip = ntohl(o.dst_ip);
  cfg.dst_count = o.dst_count;
  cfg.count = o.count;
  cfg.src_ip = ntohl(o.src_ip);
  cfg.keep = o.keep;
  cfg.stamp_every = o.stamp_every;

  struct xdpgen* skel = xdpgen__open();
  if (skel == NULL) die("opening the xdpgen skeleton: %s", strerror(errno));
  memcpy((void*)&skel->rodata->cfg, &cfg, sizeof cfg);
  if (xdpgen__load(skel) != 0) die("loading xdpgen (needs root): %s", strerror(errno));
  const int prog_fd = bpf_program__fd(skel->progs.xdpgen);
  const int state_fd = bpf_map__fd(skel->maps.xdpgen_state);
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) die("counting possible CPUs: %s", strerror(-ncpus));

  self_check(prog_fd, frame, o.size);
  // Start from zero: the self-check ran the program once.
  {
    struct xdpgen_state* zeros = calloc((size_t)ncpus, sizeof *zeros);
    const uint32_t zero = 0;
    if (zeros == NULL || bpf_map_update_elem(state_fd, &zero, zeros, BPF_ANY) != 0) {
      die("resetting xdpgen_state: %s", strerror(errno));
    }
    free(zeros);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGALRM, &sa, NULL);

  const struct xmit_counters dev_before = veth_xmit_counters(o.dev);
  // A test run ends early with EINTR when a signal is pending: SIGALRM at the deadline cuts the
  // last run short, so --duration holds however the runs were sized.
  if (o.duration > 0) {
    struct itimerval deadline = {.it_value = {.tv_sec = (time_t)o.duration}};
    deadline.it_value.tv_usec = (suseconds_t)((o.duration - (double)(time_t)o.duration) * 1e6);
    if (deadline.it_value.tv_sec == 0 && deadline.it_value.tv_usec == 0) {
      deadline.it_value.tv_usec = 1;
    }
    setitimer(ITIMER_REAL, &deadline, NULL);
  }
  // A first guess of ~5 M program runs per second; later runs are sized from the measured rate.
  double runs_per_s = 5e6;
  unsigned int test_runs = 0;
  const double start = mono_seconds();
  while (!g_stop) {
    double want = RUN_TARGET_S * runs_per_s;
    if (want < o.batch) want = o.batch;
    if (want > 2e9) want = 2e9;  // repeat is an int
    if (o.count > 0) {           // no more program runs than the frames still to send need
      const uint64_t kept = read_totals(state_fd, ncpus).kept;
      if (kept >= o.count) break;
      const double left = (double)(o.count - kept) * o.keep + o.batch;
      if (want > left) want = left;
    }
    struct bpf_test_run_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.sz = sizeof opts;
    opts.data_in = frame;
    opts.data_size_in = o.size;
    opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
    opts.repeat = (int)want;
    opts.batch_size = o.batch;
    const double now = mono_seconds();
    const int err = bpf_prog_test_run_opts(prog_fd, &opts);
    const double took = mono_seconds() - now;
    test_runs++;
    if (err != 0) {
      if (errno == EINTR && g_stop) break;
      die("BPF_PROG_TEST_RUN (live frames): %s%s", strerror(errno),
          errno == EINVAL ? " (live frames need Linux >= 5.18)" : "");
    }
    if (took > 0.01) runs_per_s = (double)opts.repeat / took;
  }
  const double wall = mono_seconds() - start;
  struct xmit_counters dev = veth_xmit_counters(o.dev);
  dev.known = dev.known && dev_before.known;
  dev.xmit -= dev_before.xmit;
  dev.errors -= dev_before.errors;

  const struct totals t = read_totals(state_fd, ncpus);
  const double seconds = (double)(t.last_ns - t.first_ns) * 1e-9;
  const double pps = seconds > 0 ? (double)t.counted / seconds : 0.0;
  if (dev.known && t.kept > 0 && dev.xmit == 0 && dev.errors == 0) {
    fprintf(stderr,
            "eipgate-xdpgen: warning: %s transmitted none of the frames: a veth peer receives "
            "redirected frames only with an XDP program attached (or GRO on)\n",
            o.dev);
  }
  if (o.json) {
    char dev_json[96] = "\"dev_xdp_xmit\":null,\"dev_xdp_xmit_errors\":null";
    if (dev.known) {
      snprintf(dev_json, sizeof dev_json, "\"dev_xdp_xmit\":%llu,\"dev_xdp_xmit_errors\":%llu",
               (unsigned long long)dev.xmit, (unsigned long long)dev.errors);
    }
    printf(
        "{\"offered_pps\":%.0f,\"sent\":%llu,\"seconds\":%.6f,\"flows\":%u,\"dst_count\":%u,"
        "\"keep\":%u,\"size\":%u,\"batch\":%u,\"filtered\":%llu,\"stamped\":%llu,"
        "\"test_runs\":%u,\"wall_seconds\":%.6f,%s}\n",
        pps, (unsigned long long)t.kept, seconds, o.flows, o.dst_count, o.keep, o.size, o.batch,
        (unsigned long long)t.filtered, (unsigned long long)t.stamped, test_runs, wall, dev_json);
  } else {
    printf("sent %llu frames of %u bytes on %s, %u flows, keep 1 in %u, batch %u\n",
           (unsigned long long)t.kept, o.size, o.dev, o.flows, o.keep, o.batch);
    printf(
        "offered %.0f pps over %.3f s (in-program clock; %u test runs, %.3f s wall, %llu "
        "program runs)\n",
        pps, seconds, test_runs, wall, (unsigned long long)t.kept + t.filtered);
    if (o.stamp_every) printf("latency stamps: %llu\n", (unsigned long long)t.stamped);
    if (dev.known) {
      printf("%s (veth) handed %llu to its peer; the peer's full ring refused %llu\n", o.dev,
             (unsigned long long)dev.xmit, (unsigned long long)dev.errors);
    }
  }
  xdpgen__destroy(skel);
  return 0;
}

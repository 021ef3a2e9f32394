// eipgate-xdpsink: the receiving end of a forwarding benchmark. Attaches xdpsink.bpf.c in driver
// mode, counts and drops everything, and reports rate, checksum and source-address errors and the
// latency of eipgate-xdpgen's stamps.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "bench/xdpgen/xdpgen_abi.h"
#include "bench/xdpgen/xdpgen_cli.h"
#include "xdpsink.skel.h"

_Static_assert(sizeof(struct xdpsink_config) == 24, "xdpsink_config layout");
_Static_assert(sizeof(struct xdpsink_flow_key) == 16, "xdpsink_flow_key layout");
_Static_assert(sizeof(struct xdpsink_stats) == 112, "xdpsink_stats layout");

struct options {
  const char* dev;
  double duration;  // 0: until SIGINT/SIGTERM
  double interval;  // 0: no per-interval lines
  uint32_t expect_src;
  uint32_t sample;
  bool skb_mode;
  bool clobber_for_test;
  bool reflect;
  bool pass_arp;
  uint32_t count_flows;  // 0: off
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
          "Usage: eipgate-xdpsink --dev IFNAME [options]\n"
          "Counts and drops every frame arriving on IFNAME at its XDP hook (driver mode). Needs\n"
          "root. Detaches on exit, whatever ends it (the attachment is a BPF link).\n"
          "  --dev IFNAME          device to receive on (required)\n"
          "  --duration S          stop after S seconds (default 0: at SIGINT or SIGTERM)\n"
          "  --interval S          print the received rate every S seconds (default 0: never)\n"
          "  --expect-src A        count IPv4 packets whose source is not A (the NAT's address)\n"
          "  --sample N            verify checksums on 1 in N packets, a power of two\n"
          "                        (default 64)\n"
          "  --skb                 generic (skb) mode instead of driver mode\n"
          "  --reflect             send UDP/TCP back out of IFNAME (a redirect) with MACs,\n"
          "                        addresses and ports swapped, after the checks: the reply\n"
          "                        that makes a NAT's flow established; the rest is dropped\n"
          "  --pass-arp            let ARP through to the kernel (the device answers ARP)\n"
          "  --count-flows N       count distinct UDP/TCP 5-tuples, up to N (flows_seen; also\n"
          "                        on --interval lines)\n"
          "  --clobber-for-test    overwrite every frame's headers after the checks (shows that\n"
          "                        the generator rewrites the pages it gets back)\n"
          "  --json                final report as one JSON line\n"
          "  --verbose             libbpf's messages\n"
          "It prints \"attached\" on stderr once frames are counted.\n");
}

static struct options parse_options(int argc, char** argv) {
  struct options o = {.sample = 64};
  enum {
    kDev = 256,
    kDuration,
    kInterval,
    kExpectSrc,
    kSample,
    kSkb,
    kReflect,
    kPassArp,
    kCountFlows,
    kClobber,
    kJson,
    kVerbose,
    kHelp
  };
  static const struct option longopts[] = {
      {"dev", required_argument, NULL, kDev},
      {"duration", required_argument, NULL, kDuration},
      {"interval", required_argument, NULL, kInterval},
      {"expect-src", required_argument, NULL, kExpectSrc},
      {"sample", required_argument, NULL, kSample},
      {"skb", no_argument, NULL, kSkb},
      {"reflect", no_argument, NULL, kReflect},
      {"pass-arp", no_argument, NULL, kPassArp},
      {"count-flows", required_argument, NULL, kCountFlows},
      {"clobber-for-test", no_argument, NULL, kClobber},
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
      case kDuration:
        o.duration = parse_seconds("duration", optarg);
        break;
      case kInterval:
        o.interval = parse_seconds("interval", optarg);
        break;
      case kExpectSrc:
        o.expect_src = parse_ipv4("expect-src", optarg);
        break;
      case kSample:
        o.sample = (uint32_t)parse_u64("sample", optarg, 1, 1u << 20);
        if (o.sample & (o.sample - 1)) die("--sample: %u is not a power of two", o.sample);
        break;
      case kSkb:
        o.skb_mode = true;
        break;
      case kReflect:
        o.reflect = true;
        break;
      case kPassArp:
        o.pass_arp = true;
        break;
      case kCountFlows:
        o.count_flows = (uint32_t)parse_u64("count-flows", optarg, 1, 1u << 26);
        break;
      case kClobber:
        o.clobber_for_test = true;
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

struct report {
  struct xdpsink_stats s;  // summed; first_ns/last_ns: earliest/latest over CPUs
  uint64_t counted;        // packets inside [first_ns, last_ns]
  uint64_t ports_seen;
  uint64_t lat_p50_ns, lat_p99_ns;  // 0 when nothing was stamped
};

static void read_percpu(int fd, uint32_t key, void* values) {
  if (bpf_map_lookup_elem(fd, &key, values) != 0) die("reading a map: %s", strerror(errno));
}

static struct xdpsink_stats read_stats(int fd, int ncpus, uint64_t* counted) {
  struct xdpsink_stats* per_cpu = calloc((size_t)ncpus, sizeof *per_cpu);
  if (per_cpu == NULL) die("out of memory");
  read_percpu(fd, 0, per_cpu);
  struct xdpsink_stats t;
  memset(&t, 0, sizeof t);
  t.first_ns = UINT64_MAX;
  *counted = 0;
  for (int c = 0; c < ncpus; c++) {
    const struct xdpsink_stats* s = &per_cpu[c];
    if (s->packets == 0) continue;
    t.packets += s->packets;
    t.bytes += s->bytes;
    t.not_ipv4 += s->not_ipv4;
    t.wrong_src += s->wrong_src;
    t.sampled += s->sampled;
    t.bad_ip_csum += s->bad_ip_csum;
    t.bad_l4_csum += s->bad_l4_csum;
    t.stamped += s->stamped;
    t.reflected += s->reflected;
    t.flows_seen += s->flows_seen;
    t.flows_full += s->flows_full;
    *counted += s->packets_at_last - 1;
    if (s->first_ns < t.first_ns) t.first_ns = s->first_ns;
    if (s->last_ns > t.last_ns) t.last_ns = s->last_ns;
  }
  free(per_cpu);
  if (t.packets == 0) t.first_ns = 0;
  return t;
}

// The lower bound of a latency bucket (xdpgen_abi.h) and the middle of its range.
static uint64_t bucket_mid(uint32_t b) {
  if (b < (2u << XDPSINK_LAT_SUB_BITS)) return b;
  const uint32_t k = (b >> XDPSINK_LAT_SUB_BITS) - 1;
  const uint64_t mant = b - (k << XDPSINK_LAT_SUB_BITS);
  return (mant << k) + ((1ull << k) >> 1);
}

static void latency(int fd, int ncpus, struct report* r) {
  uint64_t* per_cpu = calloc((size_t)ncpus, sizeof *per_cpu);
  uint64_t* hist = calloc(XDPSINK_LAT_BUCKETS, sizeof *hist);
  if (per_cpu == NULL || hist == NULL) die("out of memory");
  uint64_t total = 0;
  for (uint32_t b = 0; b < XDPSINK_LAT_BUCKETS; b++) {
    read_percpu(fd, b, per_cpu);
    for (int c = 0; c < ncpus; c++) hist[b] += per_cpu[c];
    total += hist[b];
  }
  if (total > 0) {
    const uint64_t p50 = (total + 1) / 2;
    const uint64_t p99 = total - total / 100;  // the rank at or above 99%
    uint64_t seen = 0;
    for (uint32_t b = 0; b < XDPSINK_LAT_BUCKETS; b++) {
      if (hist[b] == 0) continue;
      if (seen < p50 && seen + hist[b] >= p50) r->lat_p50_ns = bucket_mid(b);
      if (seen < p99 && seen + hist[b] >= p99) r->lat_p99_ns = bucket_mid(b);
      seen += hist[b];
    }
  }
  free(hist);
  free(per_cpu);
}

static uint64_t ports_seen(int fd, int ncpus) {
  uint64_t* per_cpu = calloc((size_t)ncpus, sizeof *per_cpu);
  if (per_cpu == NULL) die("out of memory");
  uint64_t n = 0;
  for (uint32_t w = 0; w < XDPSINK_PORT_WORDS; w++) {
    read_percpu(fd, w, per_cpu);
    uint64_t bits = 0;
    for (int c = 0; c < ncpus; c++) bits |= per_cpu[c];
    n += (uint64_t)__builtin_popcountll(bits);
  }
  free(per_cpu);
  return n;
}

int main(int argc, char** argv) {
  g_prog = "eipgate-xdpsink";
  const struct options o = parse_options(argc, argv);
  libbpf_set_print(o.verbose ? libbpf_print : NULL);
  const unsigned int ifindex = if_nametoindex(o.dev);
  if (ifindex == 0) die("no device '%s' in this network namespace", o.dev);

  struct xdpsink* skel = xdpsink__open();
  if (skel == NULL) die("opening the xdpsink skeleton: %s", strerror(errno));
  struct xdpsink_config cfg = {.expect_src = o.expect_src,
                               .sample_mask = o.sample - 1,
                               .clobber_for_test = o.clobber_for_test,
                               .reflect = o.reflect,
                               .pass_arp = o.pass_arp,
                               .count_flows = o.count_flows > 0};
  memcpy((void*)&skel->rodata->cfg, &cfg, sizeof cfg);
  if (o.count_flows > 0 && bpf_map__set_max_entries(skel->maps.xdpsink_flows, o.count_flows) != 0) {
    die("sizing the flow map: %s", strerror(errno));
  }
  if (xdpsink__load(skel) != 0) die("loading xdpsink (needs root): %s", strerror(errno));
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) die("counting possible CPUs: %s", strerror(-ncpus));

  // A BPF link, not a plain attachment: the kernel detaches it when the last descriptor closes,
  // so even a SIGKILLed sink leaves the device clean. Fails (EBUSY) if a program is attached.
  struct bpf_link_create_opts lopts;
  memset(&lopts, 0, sizeof lopts);
  lopts.sz = sizeof lopts;
  lopts.flags = o.skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  const int link_fd =
      bpf_link_create(bpf_program__fd(skel->progs.xdpsink), (int)ifindex, BPF_XDP, &lopts);
  if (link_fd < 0) {
    die("attaching to %s in %s mode: %s", o.dev, o.skb_mode ? "skb" : "driver", strerror(errno));
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  fprintf(stderr, "eipgate-xdpsink: attached to %s (%s mode)\n", o.dev,
          o.skb_mode ? "skb" : "driver");

  const int stats_fd = bpf_map__fd(skel->maps.xdpsink_stats);
  const double start = mono_seconds();
  double last_print = start;
  uint64_t last_packets = 0;
  while (!g_stop) {
    const double now = mono_seconds();
    if (o.duration > 0 && now - start >= o.duration) break;
    double wait = 0.1;
    if (o.interval > 0 && last_print + o.interval - now < wait)
      wait = last_print + o.interval - now;
    if (wait > 0) poll(NULL, 0, (int)(wait * 1000) + 1);
    if (o.interval > 0 && mono_seconds() - last_print >= o.interval) {
      uint64_t counted;
      const struct xdpsink_stats s = read_stats(stats_fd, ncpus, &counted);
      const double t = mono_seconds();
      FILE* out = o.json ? stderr : stdout;
      fprintf(out, "%8.3f s  received %llu  %.0f pps", t - start, (unsigned long long)s.packets,
              (double)(s.packets - last_packets) / (t - last_print));
      if (o.count_flows > 0) fprintf(out, "  flows %llu", (unsigned long long)s.flows_seen);
      fputc('\n', out);
      fflush(out);
      last_packets = s.packets;
      last_print = t;
    }
  }
  close(link_fd);  // detach first: the counters below are final

  struct report r;
  memset(&r, 0, sizeof r);
  r.s = read_stats(stats_fd, ncpus, &r.counted);
  r.ports_seen = ports_seen(bpf_map__fd(skel->maps.xdpsink_ports), ncpus);
  latency(bpf_map__fd(skel->maps.xdpsink_latency), ncpus, &r);
  const double seconds = (double)(r.s.last_ns - r.s.first_ns) * 1e-9;
  const double pps = seconds > 0 ? (double)r.counted / seconds : 0.0;
  if (o.json) {
    printf(
        "{\"received\":%llu,\"bytes\":%llu,\"pps\":%.0f,\"seconds\":%.6f,\"not_ipv4\":%llu,"
        "\"sampled\":%llu,\"bad_ip_csum\":%llu,\"bad_l4_csum\":%llu,\"wrong_src\":%llu,"
        "\"src_ports_seen\":%llu,\"stamped\":%llu,\"reflected\":%llu,",
        (unsigned long long)r.s.packets, (unsigned long long)r.s.bytes, pps, seconds,
        (unsigned long long)r.s.not_ipv4, (unsigned long long)r.s.sampled,
        (unsigned long long)r.s.bad_ip_csum, (unsigned long long)r.s.bad_l4_csum,
        (unsigned long long)r.s.wrong_src, (unsigned long long)r.ports_seen,
        (unsigned long long)r.s.stamped, (unsigned long long)r.s.reflected);
    if (o.count_flows > 0) {
      printf("\"flows_seen\":%llu,\"flows_full\":%llu,", (unsigned long long)r.s.flows_seen,
             (unsigned long long)r.s.flows_full);
    } else {
      printf("\"flows_seen\":null,\"flows_full\":null,");
    }
    if (r.s.stamped > 0) {
      printf("\"lat_p50_ns\":%llu,\"lat_p99_ns\":%llu}\n", (unsigned long long)r.lat_p50_ns,
             (unsigned long long)r.lat_p99_ns);
    } else {
      printf("\"lat_p50_ns\":null,\"lat_p99_ns\":null}\n");
    }
  } else {
    printf("received %llu packets, %llu bytes on %s; %.0f pps over %.3f s (in-program clock)\n",
           (unsigned long long)r.s.packets, (unsigned long long)r.s.bytes, o.dev, pps, seconds);
    printf(
        "not IPv4 %llu, wrong source %llu; checksums of %llu sampled: bad IPv4 %llu, bad "
        "UDP/TCP %llu; source ports seen %llu\n",
        (unsigned long long)r.s.not_ipv4, (unsigned long long)r.s.wrong_src,
        (unsigned long long)r.s.sampled, (unsigned long long)r.s.bad_ip_csum,
        (unsigned long long)r.s.bad_l4_csum, (unsigned long long)r.ports_seen);
    if (o.reflect) printf("reflected %llu\n", (unsigned long long)r.s.reflected);
    if (o.count_flows > 0) {
      printf("distinct flows %llu (not counted, table full: %llu)\n",
             (unsigned long long)r.s.flows_seen, (unsigned long long)r.s.flows_full);
    }
    if (r.s.stamped > 0) {
      printf("latency of %llu stamped packets: p50 %llu ns, p99 %llu ns\n",
             (unsigned long long)r.s.stamped, (unsigned long long)r.lat_p50_ns,
             (unsigned long long)r.lat_p99_ns);
    }
  }
  xdpsink__destroy(skel);
  return 0;
}

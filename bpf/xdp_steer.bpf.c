/* XDP steering for the dataplane's AF_XDP mode: NAT traffic goes to the AF_XDP socket of its RX
 * queue, everything else (ARP, IPv6, the instance's own traffic) to the kernel. With
 * STEER_F_FASTPATH, a fast-path stage first translates and sends the packets of flows the engine
 * offloaded to fp_flows. See README.md. */
/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* libbpf's BPF headers need the kernel types first; keep this order. */
// clang-format off
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on

#include "bpf/steer_abi.h"

/* GPL-compatible (the kernel reads "Dual BSD/GPL" as GPL): bpf_redirect_map and the other
 * helpers used are only offered to GPL-compatible programs. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, STEER_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, STEER_MAX_INSIDE_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* the kernel requires it for LPM tries */
  __type(key, struct steer_lpm_key);
  __type(value, struct steer_prefix_value);
} inside_prefixes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, STEER_MAX_LOCAL_ADDRS);
  __type(key, struct steer_addr_key);
  __type(value, struct steer_addr_value);
} local_addrs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct steer_config);
} steer_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STEER_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} steer_stats SEC(".maps");

/* Not preallocated: only the dataplane inserts (a syscall, where allocating is fine), and a
 * large table costs memory only for the flows offloaded. A full table refuses with E2BIG. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FP_DEFAULT_MAX_ENTRIES); /* SteerLoadOptions::fastpath_max_entries */
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct fp_flow_key);
  __type(value, struct fp_flow_value);
} fp_flows SEC(".maps");

/* The flows' activity, memory-mapped by the dataplane (its engine reads it in place). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, FP_COUNTER_SLOTS); /* SteerLoadOptions::fastpath_counter_slots */
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, struct fp_flow_counters);
} fp_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP);
  __uint(max_entries, FP_MAX_TX_PORTS);
  __type(key, __u32);
  __type(value, __u32); /* ifindex */
} fp_tx_ports SEC(".maps");

struct vlan_tag {
  __be16 tci;
  __be16 next_proto;
};

/* linux/icmp.h drags in glibc headers that do not exist for -target bpf; type is all we read. */
struct icmp_head {
  __u8 type;
  __u8 code;
  __sum16 checksum;
};
#define ICMP_ECHO_REQUEST 8
#define ICMP_ECHO_REPLY 0

/* The L4 headers as far as the fast path reads and writes them (linux/tcp.h and linux/udp.h
 * would do, but their bitfields say nothing the flags byte does not). */
struct tcp_head {
  __be16 source;
  __be16 dest;
  __be32 seq;
  __be32 ack_seq;
  __u8 doff;
  __u8 flags;
  __be16 window;
  __sum16 check;
  __be16 urg_ptr;
};
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04

struct udp_head {
  __be16 source;
  __be16 dest;
  __be16 len;
  __sum16 check;
};

struct icmp_echo_head {
  __u8 type;
  __u8 code;
  __sum16 checksum;
  __be16 id;
  __be16 sequence;
};

#define IP_FRAG_OFFSET_MASK 0x1fff
#define IP_FLAG_MF 0x2000

static __always_inline void count(__u32 slot) {
  __u64* c = bpf_map_lookup_elem(&steer_stats, &slot);
  if (c) *c += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline int to_kernel(__u32 slot) {
  count(slot);
  return XDP_PASS;
}

/* NAT traffic without a socket on its queue is dropped, not passed: the kernel would answer a
 * reply to an outside address with a RST (killing a flow the dataplane is about to take over
 * after a restart), and would route or drop an inside packet without translating it. */
static __always_inline int to_dataplane(struct xdp_md* ctx, __u32 slot) {
  count(slot);
  long verdict = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_DROP);
  if (verdict != XDP_REDIRECT) count(STEER_STAT_NAT_NO_SOCKET);
  return (int)verdict;
}

/* ---- the fast-path stage ------------------------------------------------------------------- */

#define FP_NOT_TAKEN (-1) /* not a verdict: steering decides */

static __always_inline int punt(__u32 reason) {
  count(reason);
  return FP_NOT_TAKEN;
}

static __always_inline __u16 csum_fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + delta), delta being the sum of ~m + m' over the changed words.
 * Byte order does not matter to a one's-complement sum as long as every term has the same one:
 * the field and the delta are both in network order. */
static __always_inline __u16 csum_apply(__u16 check, __u32 delta) {
  return (__u16)~csum_fold((__u32)(__u16)~check + delta);
}

/* The TTL decrement as a checksum addend: the word (TTL, protocol) goes from m to m - 0x100, so
 * ~m + m' = 0xffff - 0x100 = 0xfeff (host order; the field is in network order). */
#define TTL_DEC_DELTA bpf_htons(0xfeff)

static __always_inline struct fp_flow_value* fp_lookup(const struct iphdr* ip, __be16 sport,
                                                       __be16 dport) {
  const struct fp_flow_key key = {.saddr = ip->saddr,
                                  .daddr = ip->daddr,
                                  .sport = sport,
                                  .dport = dport,
                                  .proto = ip->protocol};
  struct fp_flow_value* v = bpf_map_lookup_elem(&fp_flows, &key);
  if (!v) count(STEER_STAT_FP_MISS);
  return v;
}

/* The last checks of a hit, then the egress is claimed before a byte changes, so a packet punted
 * here is still unchanged. bpf_redirect_map only records the target; the kernel sends once the
 * program returns XDP_REDIRECT. Returns the verdict, or FP_NOT_TAKEN. */
static __always_inline int fp_egress(const struct fp_flow_value* v, __u16 total) {
  if (total > v->mtu) return punt(STEER_STAT_FP_PUNT_TOO_BIG);
  if (v->flags & FP_F_TX_SAME_PORT) return XDP_TX;
  if (bpf_redirect_map(&fp_tx_ports, v->tx_slot, 0) != XDP_REDIRECT) {
    return punt(STEER_STAT_FP_PUNT_NO_TX_PORT);
  }
  return XDP_REDIRECT;
}

static __always_inline void fp_rewrite_l2_l3(struct ethhdr* eth, struct iphdr* ip,
                                             const struct fp_flow_value* v) {
  __builtin_memcpy(eth->h_dest, v->dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
  ip->saddr = v->new_saddr;
  ip->daddr = v->new_daddr;
  ip->check = csum_apply(ip->check, (__u32)v->l3_csum_delta + TTL_DEC_DELTA);
  ip->ttl -= 1;
}

/* The engine reads these for timeouts and accounting, in place (fp_counters is memory-mapped).
 * A plain store for the time (any CPU's recent value will do), atomic adds for the counts (a
 * flow's packets may arrive on several CPUs, and the engine takes them with atomic exchanges). */
static __always_inline int fp_forwarded(const struct fp_flow_value* v, __u16 total, int verdict) {
  const __u32 slot = v->counter_slot;
  struct fp_flow_counters* c = bpf_map_lookup_elem(&fp_counters, &slot);
  if (c) {
    c->last_seen_ns = bpf_ktime_get_ns();
    if (v->flags & FP_F_INBOUND) {
      __sync_fetch_and_add(&c->packets_in, 1);
      __sync_fetch_and_add(&c->bytes_in, total);
    } else {
      __sync_fetch_and_add(&c->packets_out, 1);
      __sync_fetch_and_add(&c->bytes_out, total);
    }
  }
  count(verdict == XDP_TX ? STEER_STAT_FP_FWD_TX : STEER_STAT_FP_FWD_REDIRECT);
  return verdict;
}

/* Translates and sends a packet of an offloaded flow, returning its verdict, or FP_NOT_TAKEN to
 * leave it (unchanged) to steering. The caller checked that the frame is untagged and carries a
 * valid IPv4 header whose Total Length fits the frame, so the offsets here are constants. Each
 * protocol has a path of its own: merged, the compiler would merge their bounds checks into one
 * the verifier cannot follow. An L4 header must lie within the datagram, not only the frame (an
 * Ethernet trailer is no header); a packet whose header does not steering judges. */
static __always_inline int fast_path(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end) return FP_NOT_TAKEN;
  const __u8 proto = ip->protocol;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) return FP_NOT_TAKEN;

  /* What needs the engine whatever the flow. */
  if (ip->ihl != 5) return punt(STEER_STAT_FP_PUNT_IP_OPTIONS);
  if (ip->frag_off & bpf_htons(IP_FLAG_MF | IP_FRAG_OFFSET_MASK)) {
    return punt(STEER_STAT_FP_PUNT_FRAGMENT);
  }
  if (ip->ttl <= 1) return punt(STEER_STAT_FP_PUNT_TTL);
  const __u16 total = bpf_ntohs(ip->tot_len);

  if (proto == IPPROTO_TCP) {
    struct tcp_head* tcp = (void*)(ip + 1);
    if ((void*)(tcp + 1) > end || total < sizeof(*ip) + sizeof(*tcp)) return FP_NOT_TAKEN;
    struct fp_flow_value* v = fp_lookup(ip, tcp->source, tcp->dest);
    if (!v) return FP_NOT_TAKEN;
    /* The engine tracks opening and closing (and withdraws the entry). */
    if (tcp->flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST)) {
      return punt(STEER_STAT_FP_PUNT_TCP_FLAGS);
    }
    const int verdict = fp_egress(v, total);
    if (verdict == FP_NOT_TAKEN) return verdict;
    fp_rewrite_l2_l3(eth, ip, v);
    tcp->source = v->new_sport;
    tcp->dest = v->new_dport;
    tcp->check = csum_apply(tcp->check, v->l4_csum_delta);
    return fp_forwarded(v, total, verdict);
  }
  if (proto == IPPROTO_UDP) {
    struct udp_head* udp = (void*)(ip + 1);
    if ((void*)(udp + 1) > end || total < sizeof(*ip) + sizeof(*udp)) return FP_NOT_TAKEN;
    struct fp_flow_value* v = fp_lookup(ip, udp->source, udp->dest);
    if (!v) return FP_NOT_TAKEN;
    const int verdict = fp_egress(v, total);
    if (verdict == FP_NOT_TAKEN) return verdict;
    fp_rewrite_l2_l3(eth, ip, v);
    udp->source = v->new_sport;
    udp->dest = v->new_dport;
    /* 0 is "no checksum" (RFC 768) and stays so; a computed 0 is sent as its other form. */
    if (udp->check) {
      const __u16 c = csum_apply(udp->check, v->l4_csum_delta);
      udp->check = c ? c : 0xffff;
    }
    return fp_forwarded(v, total, verdict);
  }
  struct icmp_echo_head* icmp = (void*)(ip + 1);
  if ((void*)(icmp + 1) > end || total < sizeof(*ip) + sizeof(*icmp)) return FP_NOT_TAKEN;
  /* Errors quote another packet, which the engine translates too. */
  if ((icmp->type != ICMP_ECHO_REQUEST && icmp->type != ICMP_ECHO_REPLY) || icmp->code != 0) {
    return punt(STEER_STAT_FP_PUNT_ICMP);
  }
  struct fp_flow_value* v = fp_lookup(ip, icmp->id, 0);
  if (!v) return FP_NOT_TAKEN;
  const __u8 want = icmp->type == ICMP_ECHO_REQUEST ? FP_F_ICMP_ECHO_REQUEST : FP_F_ICMP_ECHO_REPLY;
  if (!(v->flags & want)) return punt(STEER_STAT_FP_PUNT_ICMP);
  const int verdict = fp_egress(v, total);
  if (verdict == FP_NOT_TAKEN) return verdict;
  fp_rewrite_l2_l3(eth, ip, v);
  icmp->id = v->new_sport;
  icmp->checksum = csum_apply(icmp->checksum, v->l4_csum_delta);
  return fp_forwarded(v, total, verdict);
}

/* ---- steering ------------------------------------------------------------------------------ */

static __always_inline int is_inside(__u32 addr_net) {
  struct steer_lpm_key key = {.prefixlen = 32, .addr = addr_net};
  return bpf_map_lookup_elem(&inside_prefixes, &key) != NULL;
}

/* To an outside address: only what the engine can match to a flow is NAT traffic. */
static __always_inline int outside_in(struct xdp_md* ctx, const struct steer_config* cfg,
                                      const struct iphdr* ip, const void* l4, const void* end) {
  const __u16 frag = bpf_ntohs(ip->frag_off);
  if (frag & IP_FRAG_OFFSET_MASK) return to_dataplane(ctx, STEER_STAT_NAT_FRAGMENT);

  switch (ip->protocol) {
    case IPPROTO_TCP:
    case IPPROTO_UDP: {
      const __be16* ports = l4;
      if ((const void*)(ports + 2) > end) return to_kernel(STEER_STAT_PASS_MALFORMED);
      const __u16 dport = bpf_ntohs(ports[1]);
      if (dport < cfg->port_min || dport > cfg->port_max) {
        return to_kernel(STEER_STAT_PASS_OUTSIDE_SERVICE);
      }
      return to_dataplane(ctx, STEER_STAT_NAT_OUTSIDE_IN);
    }
    case IPPROTO_ICMP: {
      const struct icmp_head* icmp = l4;
      if ((const void*)(icmp + 1) > end) return to_kernel(STEER_STAT_PASS_MALFORMED);
      /* A fragmented echo request still goes to the dataplane, which hands the whole datagram to
       * the host: splitting its fragments between the two paths would lose it. */
      if (icmp->type == ICMP_ECHO_REQUEST && !(frag & IP_FLAG_MF) &&
          (cfg->flags & STEER_F_ECHO_REQUEST_TO_HOST)) {
        return to_kernel(STEER_STAT_PASS_OUTSIDE_SERVICE);
      }
      return to_dataplane(ctx, STEER_STAT_NAT_OUTSIDE_IN);
    }
    default:
      return to_kernel(STEER_STAT_PASS_OUTSIDE_SERVICE);
  }
}

SEC("xdp")
int xdp_steer(struct xdp_md* ctx) {
  const void* data = (const void*)(long)ctx->data;
  const void* end = (const void*)(long)ctx->data_end;

  const __u32 zero = 0;
  const struct steer_config* cfg = bpf_map_lookup_elem(&steer_config, &zero);
  if (!cfg || !(cfg->flags & STEER_F_ENABLED)) return to_kernel(STEER_STAT_PASS_UNCONFIGURED);

  const struct ethhdr* eth = data;
  if ((const void*)(eth + 1) > end) return to_kernel(STEER_STAT_PASS_MALFORMED);
  __be16 proto = eth->h_proto;
  const void* cur = eth + 1;
  __u32 l3_off = sizeof(*eth); /* a number, for the length check: the verifier limits ptr - ptr */
#pragma unroll
  for (int i = 0; i < STEER_MAX_VLAN_TAGS; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    const struct vlan_tag* tag = cur;
    if ((const void*)(tag + 1) > end) return to_kernel(STEER_STAT_PASS_MALFORMED);
    proto = tag->next_proto;
    cur = tag + 1;
    l3_off += sizeof(*tag);
  }
  if (proto != bpf_htons(ETH_P_IP)) return to_kernel(STEER_STAT_PASS_NOT_IPV4);

  const struct iphdr* ip = cur;
  if ((const void*)(ip + 1) > end) return to_kernel(STEER_STAT_PASS_MALFORMED);
  if (ip->version != 4 || ip->ihl < 5) return to_kernel(STEER_STAT_PASS_MALFORMED);
  const __u32 hlen = (__u32)ip->ihl * 4;
  /* A datagram longer than the frame was cut in transit: the kernel drops it and counts it. An
   * Ethernet trailer (frame longer than the datagram) is fine. The buffer length includes the
   * fragments of a multi-buffer (jumbo) frame. */
  const __u16 total = bpf_ntohs(ip->tot_len);
  const __u64 frame_len = bpf_xdp_get_buff_len(ctx);
  if (total < hlen || (__u64)total + l3_off > frame_len) {
    return to_kernel(STEER_STAT_PASS_MALFORMED);
  }
  const void* l4 = cur + hlen;

  /* VLAN-tagged frames are steered only: AWS hands none to an instance, and a tag would make
   * every offset below variable for the verifier. */
  if ((cfg->flags & STEER_F_FASTPATH) && l3_off == sizeof(*eth)) {
    const int verdict = fast_path(ctx);
    if (verdict != FP_NOT_TAKEN) return verdict;
  }

  const __u32 dst = ip->daddr;
  const __u32 src = ip->saddr;
  /* Same order as the engine's classify(): outside address, host address, then direction. */
  const struct steer_addr_key key = {.addr = dst};
  const struct steer_addr_value* local = bpf_map_lookup_elem(&local_addrs, &key);
  if (local) {
    if (local->kinds & STEER_ADDR_OUTSIDE) return outside_in(ctx, cfg, ip, l4, end);
    return to_kernel(STEER_STAT_PASS_HOST_ADDR);
  }
  /* 224.0.0.0/4 and 255.255.255.255: never a NAT flow (DHCP, mDNS, ...), whatever the source. */
  if ((bpf_ntohl(dst) >> 28) == 0xe || dst == 0xffffffff) {
    return to_kernel(STEER_STAT_PASS_MULTICAST);
  }
  if (!is_inside(src) || is_inside(dst)) return to_kernel(STEER_STAT_PASS_NOT_NAT);
  /* Every protocol: the engine drops and counts what it cannot translate. */
  return to_dataplane(ctx, STEER_STAT_NAT_INSIDE_OUT);
}

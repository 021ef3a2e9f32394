/* XDP steering for the dataplane's AF_XDP mode: NAT traffic goes to the AF_XDP socket of its RX
 * queue, everything else (ARP, IPv6, the instance's own traffic) to the kernel. See README.md. */
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

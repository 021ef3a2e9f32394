/* Benchmark sink: counts and drops every frame at the driver hook (or, in reflect mode, sends
 * UDP/TCP back out of the same device, swapped); verifies checksums on a sample, the source address
 * on every IPv4 packet, and collects the generator's latency stamps. */
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

#include "bench/xdpgen/xdpgen_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct xdpsink_config cfg = {.sample_mask = 63};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct xdpsink_stats);
} xdpsink_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XDPSINK_LAT_BUCKETS);
  __type(key, __u32);
  __type(value, __u64);
} xdpsink_latency SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XDPSINK_PORT_WORDS);
  __type(key, __u32);
  __type(value, __u64);
} xdpsink_ports SEC(".maps");

/* Distinct flows (count_flows): the loader sets max_entries; entries are allocated as they come. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct xdpsink_flow_key);
  __type(value, __u8);
} xdpsink_flows SEC(".maps");

/* The longest L4 segment checksummed: a 1500-byte MTU less the smallest IPv4 header. Longer
 * segments (jumbo frames) are not checked and not counted bad. */
#define MAX_L4_LEN 1480
#define MAX_IP_HDR_WORDS 15 /* 32-bit words: IHL's maximum */

static __always_inline __u32 fold(__u64 sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u32)(sum & 0xffff) + (__u32)(sum >> 16);
}

static __always_inline int ip_csum_ok(const struct iphdr* ip, const void* end) {
  const __u32* w = (const __u32*)ip;
  __u64 sum = 0;
#pragma unroll
  for (int i = 0; i < MAX_IP_HDR_WORDS; i++) {
    if (i >= ip->ihl) break;
    if ((const void*)(w + i + 1) > end) return 0;
    sum += w[i];
  }
  return fold(sum) == 0xffff;
}

/* L4 checksum over the pseudo header and len bytes at l4 (which the caller bounds-checked only
 * for its header). Returns 1 if it verifies, 0 if not, -1 if it is not checked (too long). */
static __always_inline int l4_csum_ok(const struct iphdr* ip, const __u8* l4, __u32 len,
                                      const void* end) {
  if (len > MAX_L4_LEN) return -1;
  __u64 sum = (__u64)ip->saddr + ip->daddr + bpf_htons((__u16)ip->protocol) + bpf_htons((__u16)len);
  const __u8* p = l4;
  /* Bounded loop (verified once per iteration): 4 bytes a step, the tail byte by byte. */
  for (int i = 0; i < MAX_L4_LEN / 4; i++) {
    if (len < 4) break;
    /* Hides p's history from clang, which would otherwise turn the bounds check into
     * arithmetic on the end pointer (rejected by the verifier). */
    asm volatile("" : "+r"(p));
    if ((const void*)(p + 4) > end) return 0;
    sum += *(const __u32*)p;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    if ((const void*)(p + 2) > end) return 0;
    sum += *(const __u16*)p;
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    if ((const void*)(p + 1) > end) return 0;
    /* The odd byte is the high byte of a zero-padded word, in network order. */
    sum += bpf_htons((__u16)(*p << 8));
  }
  return fold(sum) == 0xffff;
}

static __always_inline __u32 msb64(__u64 v) {
  __u32 r = 0;
#pragma unroll
  for (__u32 shift = 32; shift > 0; shift >>= 1) {
    if (v >> shift) {
      v >>= shift;
      r += shift;
    }
  }
  return r;
}

/* See XDPSINK_LAT_BUCKETS in xdpgen_abi.h. */
static __always_inline __u32 xdpsink_lat_bucket(__u64 v) {
  if (v < (2u << XDPSINK_LAT_SUB_BITS)) return (__u32)v;
  const __u32 k = msb64(v) - XDPSINK_LAT_SUB_BITS;
  return (k << XDPSINK_LAT_SUB_BITS) + (__u32)(v >> k);
}

static __always_inline void record_latency(struct xdpsink_stats* st, const __u8* payload,
                                           const void* end) {
  if ((const void*)(payload + XDPGEN_STAMP_LEN) > end) return;
  if (*(const __u32*)payload != XDPGEN_STAMP_MAGIC) return;
  const __u64 sent = *(const __u64*)(payload + 4);
  const __u64 now = bpf_ktime_get_ns();
  st->stamped++;
  __u32 bucket = xdpsink_lat_bucket(now > sent ? now - sent : 0);
  if (bucket >= XDPSINK_LAT_BUCKETS) bucket = XDPSINK_LAT_BUCKETS - 1;
  __u64* slot = bpf_map_lookup_elem(&xdpsink_latency, &bucket);
  if (slot) *slot += 1;
}

static __always_inline void record_port(__be16 port) {
  const __u16 p = bpf_ntohs(port);
  const __u32 word = p >> 6;
  __u64* bits = bpf_map_lookup_elem(&xdpsink_ports, &word);
  if (bits) *bits |= 1ull << (p & 63);
}

static __always_inline void record_flow(struct xdpsink_stats* st, const struct iphdr* ip,
                                        const __u8* l4) {
  struct xdpsink_flow_key k = {.saddr = ip->saddr,
                               .daddr = ip->daddr,
                               .sport = *(const __u16*)l4,
                               .dport = *(const __u16*)(l4 + 2),
                               .proto = ip->protocol};
  const __u8 one = 1;
  const long err = bpf_map_update_elem(&xdpsink_flows, &k, &one, BPF_NOEXIST);
  if (err == 0)
    st->flows_seen++;
  else if (err != -17) /* EEXIST: seen before */
    st->flows_full++;
}

/* Ports, latency stamp and (sampled) L4 checksum of an unfragmented UDP or TCP datagram. */
static __always_inline void inspect_l4(struct xdpsink_stats* st, const struct iphdr* ip,
                                       const void* end, int sample) {
  if (ip->frag_off & bpf_htons(0x3fff)) return; /* MF or an offset: no (whole) L4 header */
  const __u32 hlen = (__u32)ip->ihl * 4;
  const __u16 total = bpf_ntohs(ip->tot_len);
  if (total < hlen) return;
  const __u8* l4 = (const __u8*)ip + hlen;
  const __u32 l4_len = total - hlen;

  if (ip->protocol == IPPROTO_UDP) {
    if ((const void*)(l4 + 8) > end) return;
    record_port(*(const __be16*)l4);
    if (cfg.count_flows) record_flow(st, ip, l4);
    record_latency(st, l4 + 8, end);
    /* A zero UDP checksum means "not computed" (RFC 768). */
    if (sample && *(const __u16*)(l4 + 6) != 0 && l4_csum_ok(ip, l4, l4_len, end) == 0) {
      st->bad_l4_csum++;
    }
  } else if (ip->protocol == IPPROTO_TCP) {
    if ((const void*)(l4 + 20) > end) return;
    record_port(*(const __be16*)l4);
    if (cfg.count_flows) record_flow(st, ip, l4);
    if (sample && l4_csum_ok(ip, l4, l4_len, end) == 0) st->bad_l4_csum++;
  }
}

/* Turns a UDP/TCP datagram around: MACs, addresses and ports swapped. Both checksums stay valid
 * as they are: a one's complement sum does not depend on the order of the words it adds. The TTL
 * is left alone (the reply's own first hop). Returns 0 when the frame is not one to reflect. */
static __always_inline int reflect(__u8* data, const void* end) {
  struct ethhdr* eth = (struct ethhdr*)data;
  struct iphdr* ip = (struct iphdr*)(eth + 1);
  if ((const void*)(ip + 1) > end) return 0;
  if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP) return 0;
  if (ip->frag_off & bpf_htons(0x3fff)) return 0;
  __u16* ports = (__u16*)((__u8*)ip + (__u32)ip->ihl * 4);
  if ((const void*)(ports + 2) > end) return 0;
  __u8 mac[ETH_ALEN];
  __builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
  __builtin_memcpy(eth->h_source, mac, ETH_ALEN);
  const __u32 addr = ip->saddr;
  ip->saddr = ip->daddr;
  ip->daddr = addr;
  const __u16 port = ports[0];
  ports[0] = ports[1];
  ports[1] = port;
  return 1;
}

static __always_inline void clobber(__u8* data, const void* end) {
  if ((const void*)(data + XDPGEN_HDR_LEN + XDPGEN_STAMP_LEN) > end) return;
#pragma unroll
  for (int i = 0; i < (XDPGEN_HDR_LEN + XDPGEN_STAMP_LEN) / 2; i++) ((__u16*)data)[i] = 0xa5a5;
}

SEC("xdp")
int xdpsink(struct xdp_md* ctx) {
  const __u32 zero = 0;
  struct xdpsink_stats* st = bpf_map_lookup_elem(&xdpsink_stats, &zero);
  if (!st) return XDP_DROP;
  __u8* data = (__u8*)(long)ctx->data;
  const void* end = (const void*)(long)ctx->data_end;

  const __u64 n = ++st->packets;
  st->bytes += bpf_xdp_get_buff_len(ctx);
  if (n == 1 || (n & (XDPGEN_CLOCK_EVERY - 1)) == 0) {
    const __u64 now = bpf_ktime_get_ns();
    if (n == 1) st->first_ns = now;
    st->last_ns = now;
    st->packets_at_last = n;
  }

  const struct ethhdr* eth = (const struct ethhdr*)data;
  const struct iphdr* ip = (const struct iphdr*)(eth + 1);
  if ((const void*)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 ||
      ip->ihl < 5) {
    st->not_ipv4++;
    if (cfg.pass_arp && (const void*)(eth + 1) <= end && eth->h_proto == bpf_htons(ETH_P_ARP))
      return XDP_PASS;
    return XDP_DROP;
  }
  if (cfg.expect_src && ip->saddr != cfg.expect_src) st->wrong_src++;

  const int sample = (n & cfg.sample_mask) == 0;
  if (sample) {
    st->sampled++;
    if (!ip_csum_ok(ip, end)) st->bad_ip_csum++;
  }
  inspect_l4(st, ip, end, sample);
  if (cfg.clobber_for_test) clobber(data, end);
  if (cfg.reflect && reflect(data, end)) {
    st->reflected++;
    /* A redirect to the device itself rather than XDP_TX: veth flushes XDP_TX to its peer only
     * when the peer runs an XDP program, so a peer with only GRO (a kernel NAT's veth) would
     * hold the frames in its ring, unpolled (6.18). A redirect flushes in every case. */
    return bpf_redirect(ctx->ingress_ifindex, 0);
  }
  return XDP_DROP;
}

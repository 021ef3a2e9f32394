/* The one contract between the generator and sink BPF programs and their loaders: configuration
 * (written to .rodata before load), per-CPU state and counters, the latency stamp, histogram
 * layout. Fixed-width types and explicit padding; the loaders _Static_assert the sizes. */
/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
#ifndef EIPGATE_BENCH_XDPGEN_ABI_H_
#define EIPGATE_BENCH_XDPGEN_ABI_H_

#include <linux/types.h>

/* Ethernet (14) + IPv4 without options (20) + UDP (8): what the generator rewrites per frame. */
#define XDPGEN_HDR_LEN 42
#define XDPGEN_IP_OFF 14
#define XDPGEN_UDP_OFF 34
/* The latency stamp at the start of the UDP payload: magic (4 bytes) then bpf_ktime_get_ns()
 * (8 bytes), both in host byte order (generator and sink share the host and its clock). Frames
 * without a stamp carry 12 zero bytes there, so that a recycled page never shows a stale one. */
#define XDPGEN_STAMP_OFF XDPGEN_HDR_LEN
#define XDPGEN_STAMP_LEN 12
#define XDPGEN_STAMP_MAGIC 0x53544745u /* "EGTS" in memory on little-endian hosts */
/* 60 bytes (64 on the wire with the FCS): the smallest Ethernet frame, what bench/nat_xdp.sh
 * sends. 1514: a 1500-byte MTU. */
#define XDPGEN_MIN_FRAME 60
#define XDPGEN_MAX_FRAME 1514
/* kept-frame clock: bpf_ktime_get_ns() is read on the first kept frame and then every this many
 * (not on every frame: a helper call is a visible share of a 50-100 ns frame). Power of two. */
#define XDPGEN_CLOCK_EVERY 64

/* Generator configuration, .rodata (const volatile): the verifier sees constants. */
struct xdpgen_config {
  /* The frame's first XDPGEN_HDR_LEN bytes, copied in words: saddr, sport, checksums zero. */
  union {
    __u8 bytes[48];
    __u16 halves[24];
    __u64 words[6];
  } hdr;
  __u16 sport_base; /* host order */
  __u16 pad0;
  __u32 ifindex;        /* bpf_redirect target: the frames leave through this device */
  __u32 flows;          /* distinct (saddr, sport) pairs, round robin */
  __u32 ports_per_addr; /* sport runs sport_base .. +ports_per_addr-1, then saddr + 1 */
  __u32 src_ip;         /* first source address, host order */
  __u32 keep;           /* keep 1 in keep frames (XDP_REDIRECT), drop the rest */
  __u32 stamp_every;    /* latency stamp on 1 in stamp_every kept frames; 0: never */
  /* One's complement sums (not folded, not inverted) of everything that does not change per
   * frame: the IPv4 header with saddr, daddr and checksum zero; the UDP pseudo header, header
   * and payload with saddr, daddr, sport, checksum and stamp zero. */
  __u32 ip_sum;
  __u32 udp_sum;
  /* Destinations: flow f goes to dst_ip + f % dst_count (a NAT's ports are per destination, so
   * more flows than one destination's 64k ports need several). */
  __u32 dst_count;
  __u32 dst_ip; /* first destination address, host order */
  __u32 count;  /* stop after this many kept frames (XDP_DROP after); 0: no limit */
};

/* Generator per-CPU state (PERCPU_ARRAY, one slot). The program's own cursor and counters. */
struct xdpgen_state {
  __u64 kept;         /* frames redirected */
  __u64 filtered;     /* frames dropped by the 1-in-keep filter */
  __u64 first_ns;     /* clock at the first kept frame (kept == 1) */
  __u64 last_ns;      /* clock at the latest kept frame with kept % XDPGEN_CLOCK_EVERY == 0 */
  __u64 kept_at_last; /* kept when last_ns was read */
  __u64 stamped;      /* frames that carried a latency stamp */
  __u32 skip;         /* frames left to drop before the next kept one */
  __u32 flow;         /* flow index, 0 .. flows-1 */
  __u32 port_i;       /* flow % ports_per_addr */
  __u32 addr_i;       /* flow / ports_per_addr */
  __u32 stamp_left;   /* kept frames until the next stamp */
  __u32 dst_i;        /* flow % dst_count */
};

/* Sink configuration, .rodata. */
struct xdpsink_config {
  __u32 expect_src;  /* network order; 0: any source */
  __u32 sample_mask; /* checksums verified on packets with (count & mask) == 0 */
  /* Test only: after the checks, overwrite what the generator promises to rewrite (the first
   * XDPGEN_HDR_LEN + XDPGEN_STAMP_LEN bytes), so that a page the generator gets back carries
   * junk. */
  __u32 clobber_for_test;
  /* After the checks, send unfragmented UDP/TCP back out of the device it came in on, with MACs,
   * addresses and ports swapped: the reply that makes a NAT's flow established. Other frames
   * are dropped. */
  __u32 reflect;
  /* ARP frames go to the kernel (XDP_PASS), so that the sink's device still answers ARP. */
  __u32 pass_arp;
  /* Count distinct UDP/TCP 5-tuples in the xdpsink_flows hash (its size set by the loader). */
  __u32 count_flows;
};

/* xdpsink_flows key: a UDP/TCP 5-tuple as it arrived (network order). */
struct xdpsink_flow_key {
  __u32 saddr;
  __u32 daddr;
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 pad[3];
};

/* Sink per-CPU counters (PERCPU_ARRAY, one slot). */
struct xdpsink_stats {
  __u64 packets;
  __u64 bytes;
  __u64 not_ipv4;    /* not IPv4, or its header cut: dropped uninspected */
  __u64 wrong_src;   /* IPv4 with a source other than expect_src (every packet checked) */
  __u64 sampled;     /* packets whose checksums were verified */
  __u64 bad_ip_csum; /* of the sampled */
  __u64 bad_l4_csum; /* of the sampled: UDP (0 counts as valid) and TCP */
  __u64 stamped;     /* packets with a latency stamp */
  __u64 first_ns;    /* clock at the first packet */
  __u64 last_ns;     /* clock at the latest packet with packets % XDPGEN_CLOCK_EVERY == 0 */
  __u64 packets_at_last;
  __u64 reflected;  /* sent back out (reflect mode) */
  __u64 flows_seen; /* distinct 5-tuples (count_flows) */
  __u64 flows_full; /* 5-tuples not counted: xdpsink_flows was full */
};

/* Latency histogram (ns), log-linear: exact below 32; above, 16 linear sub-buckets per power of
 * two (~6% resolution). With m = msb(v) >= 5 and k = m - 4: bucket = k * 16 + (v >> k), which
 * lies in 32 .. 1023. Inverse: k = (b >> 4) - 1, v in [(b - 16k) << k, (b - 16k + 1) << k). */
#define XDPSINK_LAT_SUB_BITS 4
#define XDPSINK_LAT_BUCKETS (64 << XDPSINK_LAT_SUB_BITS)
/* Source ports seen (any IPv4 UDP/TCP packet): a 65536-bit bitmap in 64-bit words. */
#define XDPSINK_PORT_WORDS (65536 / 64)

#endif /* EIPGATE_BENCH_XDPGEN_ABI_H_ */

/* Traffic generator: run by BPF_PROG_TEST_RUN in live-frames mode on one template frame, it
 * rewrites every kept frame's headers for the next flow and redirects it out of a device. */
/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* libbpf's BPF headers need the kernel types first; keep this order. */
// clang-format off
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on

#include "bench/xdpgen/xdpgen_abi.h"

/* GPL-compatible: bpf_redirect is offered to GPL-compatible programs only. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct xdpgen_config cfg = {};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct xdpgen_state);
} xdpgen_state SEC(".maps");

static __always_inline __u32 fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  return (sum & 0xffff) + (sum >> 16);
}

/* Sum of the 16-bit words of a value as it lies in memory (byte order does not matter to a one's
 * complement sum as long as the result is stored the same way). */
static __always_inline __u32 words32(__u32 v) { return (v & 0xffff) + (v >> 16); }

/* Live frames recycle pages with whatever the last receiver wrote into them, so every kept frame
 * gets its whole header (and the stamp area the checksum covers) written afresh. */
SEC("xdp")
int xdpgen(struct xdp_md* ctx) {
  const __u32 zero = 0;
  struct xdpgen_state* st = bpf_map_lookup_elem(&xdpgen_state, &zero);
  if (!st) return XDP_ABORTED;
  /* --count reached: the loader stops at its next look; the rest of this test run is dropped. */
  if (cfg.count && st->kept >= cfg.count) return XDP_DROP;

  if (cfg.keep > 1) {
    if (st->skip) {
      st->skip--;
      st->filtered++;
      return XDP_DROP;
    }
    st->skip = cfg.keep - 1;
  }

  __u8* data = (__u8*)(long)ctx->data;
  const __u8* end = (const __u8*)(long)ctx->data_end;
  if (data + XDPGEN_HDR_LEN + XDPGEN_STAMP_LEN > end) return XDP_ABORTED;

  const __u32 saddr = bpf_htonl(cfg.src_ip + st->addr_i);
  const __u32 daddr = bpf_htonl(cfg.dst_ip + st->dst_i);
  const __u16 sport = bpf_htons((__u16)(cfg.sport_base + st->port_i));
  if (++st->flow >= cfg.flows) {
    st->flow = 0;
    st->port_i = 0;
    st->addr_i = 0;
    st->dst_i = 0;
  } else {
    if (++st->port_i >= cfg.ports_per_addr) {
      st->port_i = 0;
      st->addr_i++;
    }
    if (++st->dst_i >= cfg.dst_count) st->dst_i = 0;
  }

  const __u64 kept = ++st->kept;
  __u64 now = 0;
  if (kept == 1 || (kept & (XDPGEN_CLOCK_EVERY - 1)) == 0) {
    now = bpf_ktime_get_ns();
    if (kept == 1) st->first_ns = now;
    st->last_ns = now;
    st->kept_at_last = kept;
  }

  /* Word stores: a memcpy from a u8 pointer would be compiled into 42 byte stores. */
#pragma unroll
  for (int i = 0; i < 5; i++) ((__u64*)data)[i] = cfg.hdr.words[i];
  *(__u16*)(data + 40) = cfg.hdr.halves[20];
  *(__u32*)(data + XDPGEN_IP_OFF + 12) = saddr;
  *(__u32*)(data + XDPGEN_IP_OFF + 16) = daddr;
  *(__u16*)(data + XDPGEN_UDP_OFF) = sport;
  const __u32 addr_sum = words32(saddr) + words32(daddr);
  *(__u16*)(data + XDPGEN_IP_OFF + 10) = (__u16)~fold(cfg.ip_sum + addr_sum);

  __u32 udp_sum = cfg.udp_sum + addr_sum + sport;
  __u32 magic = 0;
  __u64 stamp = 0;
  if (cfg.stamp_every && st->stamp_left-- == 0) {
    st->stamp_left = cfg.stamp_every - 1;
    st->stamped++;
    magic = XDPGEN_STAMP_MAGIC;
    stamp = now ? now : bpf_ktime_get_ns();
    udp_sum += words32(magic) + words32((__u32)stamp) + words32((__u32)(stamp >> 32));
  }
  *(__u32*)(data + XDPGEN_STAMP_OFF) = magic;
  *(__u64*)(data + XDPGEN_STAMP_OFF + 4) = stamp;
  const __u16 udp_csum = (__u16)~fold(udp_sum);
  *(__u16*)(data + XDPGEN_UDP_OFF + 6) = udp_csum ? udp_csum : 0xffff;

  return bpf_redirect(cfg.ifindex, 0);
}

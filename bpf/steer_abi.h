/* The one ABI between xdp_steer.bpf.c and the C++ that fills its maps: map names and sizes, key
 * and value layouts (steering and the fast path), config flags and the verdict counters. Included
 * by BPF C and by C++. */
/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
#ifndef EIPGATE_BPF_STEER_ABI_H
#define EIPGATE_BPF_STEER_ABI_H

/* Kernel fixed-width types: the same spelling compiles for -target bpf and for the host, so no
 * second copy of any struct exists (Katran keeps two; they drift). */
#include <linux/types.h>

/* Sizes. The dataplane rejects a config with more entries than these (SteerProgram::configure). */
#define STEER_MAX_QUEUES 64 /* XSKMAP slots = RX queues; ENA has at most 32 */
#define STEER_MAX_INSIDE_PREFIXES 1024
#define STEER_MAX_LOCAL_ADDRS 256 /* outside (service) plus host addresses */
#define STEER_MAX_VLAN_TAGS 2     /* as the engine's parser: 802.1Q and QinQ (802.1ad) */
/* fp_flows entries (one per direction of a flow: 1M flows) when the loader does not set another
 * number before load (SteerLoadOptions); DPDK loading the .o itself gets this. The hash is not
 * preallocated: memory is taken per entry as the engine offloads (bpf/README.md). */
#define FP_DEFAULT_MAX_ENTRIES (1u << 21)
/* fp_counters slots (one per engine flow record, all workers together), preallocated: 40 B each. */
#define FP_COUNTER_SLOTS (1u << 20)
#define FP_MAX_TX_PORTS 64 /* fp_tx_ports slots: egress ports of the two-armed layout */

/* Map names as libbpf sees them (<= 15 characters). The XSKMAP is called "xsks_map" because that
 * is the name DPDK's af_xdp PMD looks for in a custom program (its xdp_prog= devarg). */
#define STEER_MAP_XSKS "xsks_map"
#define STEER_MAP_INSIDE "inside_prefixes"
#define STEER_MAP_LOCAL "local_addrs"
#define STEER_MAP_CONFIG "steer_config"
#define STEER_MAP_STATS "steer_stats"
#define STEER_MAP_FP_FLOWS "fp_flows"
#define STEER_MAP_FP_TX_PORTS "fp_tx_ports"
#define STEER_MAP_FP_COUNTERS "fp_counters"

/* inside_prefixes (LPM_TRIE) key. The trie compares addr bytes from the first, so addr is in
 * network byte order; lookups use prefixlen 32. */
struct steer_lpm_key {
  __u32 prefixlen;
  __u32 addr; /* network order */
};

struct steer_prefix_value {
  __u32 reserved; /* zero; the trie is used as a set */
};

/* local_addrs (HASH) key: an address of the instance, network order. */
struct steer_addr_key {
  __u32 addr;
};

/* local_addrs value: what the address is to us. An address that is both is treated as outside,
 * the order the engine classifies in (outside address first, then host address). */
#define STEER_ADDR_OUTSIDE 0x1u /* a service (NAT) address: replies come back to it */
#define STEER_ADDR_HOST 0x2u    /* the instance's own address: SSH, health checks, HA heartbeats */

struct steer_addr_value {
  __u32 kinds; /* STEER_ADDR_* bits */
};

/* steer_config (ARRAY, one entry) flags. A zeroed entry (the state right after load) has
 * STEER_F_ENABLED clear, so a program attached before the dataplane configured it passes every
 * packet to the kernel and never cuts the operator off the instance. */
#define STEER_F_ENABLED 0x1u
/* Unfragmented ICMP echo requests to an outside address go to the kernel, which answers them:
 * the engine would send them to the host anyway (dataplane/README.md, "Direction"). */
#define STEER_F_ECHO_REQUEST_TO_HOST 0x2u
/* The fast-path stage runs (bpf/README.md, "Fast path"): packets of offloaded flows are
 * translated and sent in XDP. Clear: the program steers exactly as without the fast path. */
#define STEER_F_FASTPATH 0x4u

struct steer_config {
  __u16 port_min; /* NAT port range, host order, inclusive */
  __u16 port_max;
  __u32 flags; /* STEER_F_* */
};

/* ---- the fast path: fp_flows (HASH, preallocated) and fp_tx_ports (DEVMAP) ------------------
 *
 * One fp_flows entry per direction of an offloaded flow: inside->outside and outside->inside each
 * have their own key. The C++ (bpf/fastpath.h) writes the rewrite half of the value; the program
 * writes the activity half. Memory per entry, kernel overhead included: bpf/README.md. */

/* The 5-tuple as the packet carries it, all in network order, pad zero. ICMP echo: sport is the
 * echo identifier and dport 0 (requests and replies alike). */
struct fp_flow_key {
  __u32 saddr;
  __u32 daddr;
  __u16 sport;
  __u16 dport;
  __u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP */
  __u8 pad[3];
};

/* fp_flow_value.flags */
#define FP_F_TX_SAME_PORT 0x1u      /* XDP_TX (one-armed, AWS); else fp_tx_ports[tx_slot] */
#define FP_F_ICMP_ECHO_REQUEST 0x2u /* ICMP: the entry matches echo requests (type 8) */
#define FP_F_ICMP_ECHO_REPLY 0x4u   /* ICMP: the entry matches echo replies (type 0) */
#define FP_F_INBOUND 0x8u           /* outside -> inside: counts in the slot's _in half */

struct fp_flow_value {
  /* The rewrite, written by the loader. Addresses and ports in network order; for ICMP echo
   * new_sport is the new identifier and new_dport is unused (0). */
  __u32 new_saddr;
  __u32 new_daddr;
  __u16 new_sport;
  __u16 new_dport;
  /* One's-complement addends (RFC 1624: the sum of ~old + new over the changed 16-bit words), in
   * the byte order of the checksum fields (network order), so the program adds them to the field
   * as it sits in the packet. l3: the address change (the program adds the TTL decrement). l4:
   * TCP/UDP the pseudo-header address change plus the port change; ICMP the identifier change. */
  __u16 l3_csum_delta;
  __u16 l4_csum_delta;
  __u8 dmac[6]; /* next hop */
  __u8 smac[6]; /* the egress port's own */
  __u16 mtu;    /* host order: largest IPv4 Total Length the egress link takes; above: punt */
  __u8 tx_slot; /* fp_tx_ports slot when FP_F_TX_SAME_PORT is clear */
  __u8 flags;   /* FP_F_* */
  /* Where the program counts this direction's packets: fp_counters[counter_slot] (the engine's
   * slot of the flow, OffloadRecord::slot); FP_F_INBOUND says which half of it. */
  __u32 counter_slot;
};

/* fp_counters (ARRAY, BPF_F_MMAPABLE) value: one offloaded flow's activity, both directions. The
 * dataplane maps the array into its memory and its engine takes the counts with atomic exchanges
 * (dataplane/engine/engine.h, OffloadCounters: the same layout). One slot per engine flow record:
 * the slot is written by no one but the program between the engine's offload and withdrawal. */
struct fp_flow_counters {
  __u64 last_seen_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last forwarded packet */
  __u64 packets_out;  /* inside -> outside (entries without FP_F_INBOUND) */
  __u64 bytes_out;    /* IPv4 Total Length: L3 bytes, as conntrack counts */
  __u64 packets_in;   /* outside -> inside (FP_F_INBOUND) */
  __u64 bytes_in;
};

/* steer_stats (PERCPU_ARRAY) slots: one list gives the enum here and the names in C++.
 * Every packet counts in exactly one verdict slot: a PASS_, a NAT_ or an FP_FWD_ slot. The other
 * slots count in addition to a verdict: NAT_NO_SOCKET the NAT packets dropped because no AF_XDP
 * socket is registered on their RX queue; FP_MISS and FP_PUNT_* what the fast-path stage looked
 * at and left to steering, which then counts the packet's verdict (the packet unchanged).
 *   PASS_UNCONFIGURED     config not written yet (STEER_F_ENABLED clear): everything to the kernel
 *   PASS_MALFORMED        truncated frame, or not a valid IPv4 header
 *   PASS_NOT_IPV4         ARP, IPv6, LLDP, a third VLAN tag, ...
 *   PASS_HOST_ADDR        to one of the instance's own addresses
 *   PASS_OUTSIDE_SERVICE  to an outside address but not NAT: TCP/UDP port outside the NAT range,
 *                         an unfragmented echo request, another protocol
 *   PASS_MULTICAST        multicast or limited-broadcast destination
 *   PASS_NOT_NAT          neither direction: source not in an inside prefix, or inside to inside
 *   NAT_INSIDE_OUT        from an inside prefix to a destination that is neither inside nor ours
 *   NAT_OUTSIDE_IN        to an outside address: TCP/UDP port in the NAT range, or ICMP
 *   NAT_FRAGMENT          a non-first fragment to an outside address (it carries no ports)
 *   NAT_NO_SOCKET         a NAT packet dropped for want of an AF_XDP socket on its queue
 *   FP_FWD_TX             translated by the fast path and sent back out of its port (XDP_TX)
 *   FP_FWD_REDIRECT       translated by the fast path and redirected to fp_tx_ports[tx_slot]
 *   FP_MISS               fast path: untagged TCP/UDP/ICMP echo, no fp_flows entry
 * Punts, counted before the lookup (whether or not the flow is offloaded):
 *   FP_PUNT_IP_OPTIONS    IHL above 5
 *   FP_PUNT_FRAGMENT      MF set or a fragment offset
 *   FP_PUNT_TTL           TTL 0 or 1 (the engine answers with time exceeded)
 *   FP_PUNT_ICMP          ICMP other than echo request/reply of code 0 (errors above all), or
 *                         (after the lookup) an echo of the type its entry does not match
 * Punts after a hit (the flow is offloaded):
 *   FP_PUNT_TCP_FLAGS     SYN, FIN or RST: the engine tracks the state change (and withdraws)
 *   FP_PUNT_TOO_BIG       Total Length above the entry's mtu
 *   FP_PUNT_NO_TX_PORT    no device in the entry's fp_tx_ports slot */
#define EIPGATE_STEER_STATS(X)                  \
  X(PASS_UNCONFIGURED, pass_unconfigured)       \
  X(PASS_MALFORMED, pass_malformed)             \
  X(PASS_NOT_IPV4, pass_not_ipv4)               \
  X(PASS_HOST_ADDR, pass_host_addr)             \
  X(PASS_OUTSIDE_SERVICE, pass_outside_service) \
  X(PASS_MULTICAST, pass_multicast)             \
  X(PASS_NOT_NAT, pass_not_nat)                 \
  X(NAT_INSIDE_OUT, nat_inside_out)             \
  X(NAT_OUTSIDE_IN, nat_outside_in)             \
  X(NAT_FRAGMENT, nat_fragment)                 \
  X(NAT_NO_SOCKET, nat_no_socket)               \
  X(FP_FWD_TX, fp_fwd_tx)                       \
  X(FP_FWD_REDIRECT, fp_fwd_redirect)           \
  X(FP_MISS, fp_miss)                           \
  X(FP_PUNT_IP_OPTIONS, fp_punt_ip_options)     \
  X(FP_PUNT_FRAGMENT, fp_punt_fragment)         \
  X(FP_PUNT_TTL, fp_punt_ttl)                   \
  X(FP_PUNT_ICMP, fp_punt_icmp)                 \
  X(FP_PUNT_TCP_FLAGS, fp_punt_tcp_flags)       \
  X(FP_PUNT_TOO_BIG, fp_punt_too_big)           \
  X(FP_PUNT_NO_TX_PORT, fp_punt_no_tx_port)

enum steer_stat {
#define EIPGATE_STEER_STAT_ENUM(id, name) STEER_STAT_##id,
  EIPGATE_STEER_STATS(EIPGATE_STEER_STAT_ENUM)
#undef EIPGATE_STEER_STAT_ENUM
      STEER_STAT_COUNT
};

#ifdef __cplusplus
#include <cstddef>

/* The layouts the kernel maps were created with; a change here is an ABI change for a running
 * dataplane and a loaded program (e.g. one pinned or loaded by DPDK from the .o file). */
static_assert(sizeof(steer_lpm_key) == 8 && offsetof(steer_lpm_key, addr) == 4);
static_assert(sizeof(steer_prefix_value) == 4);
static_assert(sizeof(steer_addr_key) == 4);
static_assert(sizeof(steer_addr_value) == 4);
static_assert(sizeof(steer_config) == 8 && offsetof(steer_config, port_max) == 2 &&
              offsetof(steer_config, flags) == 4);
static_assert(sizeof(fp_flow_key) == 16 && offsetof(fp_flow_key, sport) == 8 &&
              offsetof(fp_flow_key, proto) == 12 && offsetof(fp_flow_key, pad) == 13);
static_assert(sizeof(fp_flow_value) == 36 && offsetof(fp_flow_value, new_sport) == 8 &&
              offsetof(fp_flow_value, l3_csum_delta) == 12 && offsetof(fp_flow_value, dmac) == 16 &&
              offsetof(fp_flow_value, smac) == 22 && offsetof(fp_flow_value, mtu) == 28 &&
              offsetof(fp_flow_value, tx_slot) == 30 && offsetof(fp_flow_value, flags) == 31 &&
              offsetof(fp_flow_value, counter_slot) == 32);
static_assert(sizeof(fp_flow_counters) == 40 && offsetof(fp_flow_counters, packets_out) == 8 &&
              offsetof(fp_flow_counters, bytes_out) == 16 &&
              offsetof(fp_flow_counters, packets_in) == 24 &&
              offsetof(fp_flow_counters, bytes_in) == 32);
static_assert(FP_MAX_TX_PORTS <= 256, "tx_slot is a __u8");
static_assert(STEER_STAT_COUNT == 21);
#endif

#endif /* EIPGATE_BPF_STEER_ABI_H */

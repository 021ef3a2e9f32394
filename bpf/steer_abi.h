/* The one ABI between xdp_steer.bpf.c and the C++ that fills its maps: map names and sizes, key
 * and value layouts, config flags and the verdict counters. Included by BPF C and by C++. */
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

/* Map names as libbpf sees them (<= 15 characters). The XSKMAP is called "xsks_map" because that
 * is the name DPDK's af_xdp PMD looks for in a custom program (its xdp_prog= devarg). */
#define STEER_MAP_XSKS "xsks_map"
#define STEER_MAP_INSIDE "inside_prefixes"
#define STEER_MAP_LOCAL "local_addrs"
#define STEER_MAP_CONFIG "steer_config"
#define STEER_MAP_STATS "steer_stats"

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

struct steer_config {
  __u16 port_min; /* NAT port range, host order, inclusive */
  __u16 port_max;
  __u32 flags; /* STEER_F_* */
};

/* steer_stats (PERCPU_ARRAY) slots: one list gives the enum here and the names in C++.
 * Every packet counts in exactly one PASS_ or NAT_ slot; NAT_NO_SOCKET counts, in addition, the NAT
 * packets dropped because no AF_XDP socket is registered on their RX queue.
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
 *   NAT_NO_SOCKET         a NAT packet dropped for want of an AF_XDP socket on its queue */
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
  X(NAT_NO_SOCKET, nat_no_socket)

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
static_assert(STEER_STAT_COUNT == 11);
#endif

#endif /* EIPGATE_BPF_STEER_ABI_H */

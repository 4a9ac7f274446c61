/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Map names, key/value layouts and counter indexes shared by the XDP program (sluice_xdp.c)
 * and user space (Sources/CSluiceXDP includes this file by relative path: one source of
 * truth). Only fixed-width UAPI types, explicit padding, no pointers: the layout is the same
 * for the BPF target and for x86_64/aarch64 user space.
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include <linux/types.h>

/* Section/program name user space attaches, and the map names it looks up in the object. */
#define SLUICE_XDP_PROG_NAME      "sluice_steer"
#define SLUICE_MAP_XSKS           "sluice_xsks"
#define SLUICE_MAP_GATEWAY_ADDRS  "sluice_gw_addrs"
#define SLUICE_MAP_COUNTERS       "sluice_counters"
#define SLUICE_MAP_FLOWS          "sluice_flows"
#define SLUICE_MAP_EGRESS         "sluice_egress"
#define SLUICE_MAP_OFFLOAD_GEN    "sluice_offload_gen"
/* One u32 at key 0: nonzero passes UDP/TCP port-53 packets to the kernel (--dns-redirect). */
#define SLUICE_MAP_DNS_REDIRECT   "sluice_dns_redirect"

/* XSKMAP size: the highest rx queue index that can be steered, plus one. */
#define SLUICE_MAX_QUEUES         64
/* How many own addresses (both families together) the gateway can register. */
#define SLUICE_MAX_GATEWAY_ADDRS  64

/*
 * Default size of the offloaded-flow LRU hash (per program instance, i.e. per arrival
 * interface: one entry per direction of a flow). User space sets it to the flow table's
 * capacity before loading (bpf_map__set_max_entries).
 */
#define SLUICE_DEFAULT_OFFLOAD_FLOWS 65536
/* Egress interfaces the devmap can hold (keyed by ifindex). */
#define SLUICE_MAX_EGRESS         8

#define SLUICE_FAMILY_V4 4
#define SLUICE_FAMILY_V6 6

/*
 * Key of the gateway-address hash map. The address is in network byte order; an IPv4
 * address fills addr[0..3] and leaves addr[4..15] zero. User space must zero the whole key
 * (padding included) because the hash compares all 20 bytes.
 */
struct sluice_addr_key {
	__u8 family;	/* SLUICE_FAMILY_V4 or SLUICE_FAMILY_V6 */
	__u8 pad[3];
	__u8 addr[16];
};

/* Value of the gateway-address map: reserved for per-address flags, 0 today. */
struct sluice_addr_value {
	__u32 flags;
};

/* Indexes of the per-CPU counter array; one struct sluice_counter per index and CPU. */
enum sluice_counter_index {
	SLUICE_CTR_REDIRECT_V4 = 0,	/* transit IPv4 steered to an AF_XDP socket */
	SLUICE_CTR_REDIRECT_V6,		/* transit IPv6 steered to an AF_XDP socket */
	SLUICE_CTR_PASS_ARP,		/* ARP to the kernel */
	SLUICE_CTR_PASS_ND,		/* ICMPv6 router/neighbour discovery (133-137) to the kernel */
	SLUICE_CTR_PASS_LOCAL,		/* addressed to one of the gateway's own addresses */
	SLUICE_CTR_PASS_LINK_SCOPE,	/* multicast, broadcast, IPv6 link-local: never routed */
	SLUICE_CTR_PASS_NON_IP,		/* other EtherTypes (LLDP, ...): the kernel does not route them */
	SLUICE_CTR_DROP_MALFORMED,	/* IP header cut short or VLAN-in-VLAN: fail closed */
	SLUICE_CTR_DROP_NO_SOCKET,	/* transit packet on a queue with no AF_XDP socket: fail closed */
	SLUICE_CTR_OFFLOAD_FORWARD,	/* offloaded flow: forwarded by the program (bpf_redirect_map) */
	SLUICE_CTR_OFFLOAD_DROP,	/* offloaded flow whose verdict is drop: dropped by the program */
	SLUICE_CTR_OFFLOAD_STALE,	/* offloaded entry of an older generation: back to the workers */
	SLUICE_CTR_OFFLOAD_PUNT,	/* offloaded flow, but TTL <= 1, SYN/FIN/RST or no devmap entry: workers */
	SLUICE_CTR_MAX
};

struct sluice_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * Flow offload (issue 6). Key of the offloaded-flow LRU hash: the 5-tuple exactly as a packet
 * of that direction arrives on the interface whose program instance holds the map, so each
 * direction of a flow is one entry, in the arrival interface's map. Addresses and ports in
 * network byte order; IPv4 fills saddr/daddr[0..3]. Zero the whole key (padding included).
 * Only TCP and UDP are offloaded.
 */
struct sluice_flow_key {
	__u8 family;	/* SLUICE_FAMILY_V4 or SLUICE_FAMILY_V6 */
	__u8 proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	__be16 sport;
	__be16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

#define SLUICE_FLOW_FORWARD 1	/* rewrite, decrement TTL, bpf_redirect_map(sluice_egress) */
#define SLUICE_FLOW_DROP    2	/* XDP_DROP (a denied flow) */

/*
 * Value of the offloaded-flow map. User space writes action..src_mac and zero counters at
 * install; the program adds to the counters (atomically: several CPUs may carry one flow) and
 * stores last_seen_ns (bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC_COARSE, the workers' clock).
 */
struct sluice_flow_value {
	__u8 action;		/* SLUICE_FLOW_FORWARD or SLUICE_FLOW_DROP */
	__u8 pad[3];
	__u32 generation;	/* must equal sluice_offload_gen[0], else the workers judge again */
	__u32 egress_ifindex;	/* key in sluice_egress */
	__u8 dst_mac[6];	/* next hop's MAC */
	__u8 src_mac[6];	/* egress interface's MAC */
	__u64 packets;
	__u64 bytes;		/* frame bytes (what the workers count as allowed/denied bytes) */
	__u64 ip_bytes;		/* IP total length (what flow entries count) */
	__u64 last_seen_ns;
};

#endif /* SLUICE_MAPS_H */

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
/* One u32 at key 0: nonzero passes UDP/TCP port-53 packets to the kernel (--dns-redirect). */
#define SLUICE_MAP_DNS_REDIRECT   "sluice_dns_redirect"

/* XSKMAP size: the highest rx queue index that can be steered, plus one. */
#define SLUICE_MAX_QUEUES         64
/* How many own addresses (both families together) the gateway can register. */
#define SLUICE_MAX_GATEWAY_ADDRS  64

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
	SLUICE_CTR_MAX
};

struct sluice_counter {
	__u64 packets;
	__u64 bytes;
};

#endif /* SLUICE_MAPS_H */

/*
 * CSluiceXDP: what SluiceDataplane needs from C. libbpf (object loading, maps, links) and
 * libxdp's xsk.h (UMEM and AF_XDP sockets; its ring helpers are static inline, and Swift
 * calls them directly through the Clang importer, with their acquire/release barriers), the
 * map layouts shared with the XDP program, and sluice_* functions for libbpf and libxdp
 * calls Swift cannot make itself (out-parameter structs, the memlock limit). Thread pinning,
 * naming and nice moved to CSluiceSystem, which needs no libbpf.
 */
#ifndef CSLUICEXDP_H
#define CSLUICEXDP_H

#include <stdint.h>
#include <stddef.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>
#include <netpacket/packet.h>

/*
 * The one copy of the map layouts lives next to the XDP program; include it by relative path
 * (from Sources/CSluiceXDP/include/) so the BPF build and the Swift build read the same file.
 */
#include "../../../bpf/sluice_maps.h"

/*
 * Raises RLIMIT_MEMLOCK to unlimited (UMEM and maps are locked memory). RLIMIT_MEMLOCK is a
 * macro over a glibc enum Swift does not import by that name. Returns 0 or -1 with errno set.
 */
int sluice_raise_memlock_limit(void);

/* Number of CPUs the BPF per-CPU maps hold values for (possible CPUs), or a negative errno. */
int sluice_possible_cpus(void);

/*
 * Name of the XDP program attached to ifindex in the given mode (XDP_FLAGS_DRV_MODE or
 * XDP_FLAGS_SKB_MODE) and its id. Returns 0 and fills name (NUL-terminated) and *prog_id, which
 * is 0 when nothing is attached; or a negative errno.
 */
int sluice_xdp_attached_program(int ifindex, uint32_t mode_flags, char *name, size_t name_len,
				uint32_t *prog_id);

/*
 * Routing and neighbour tables over rtnetlink (netlink.c). Addresses are in network byte order;
 * an IPv4 address fills the first 4 bytes of its 16.
 */
struct sluice_route {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t dst_len;	/* prefix length */
	uint8_t has_gateway;	/* 0: directly connected */
	uint8_t pad;
	uint32_t oif;		/* egress interface index */
	uint32_t priority;	/* metric: lower wins among equal prefixes */
	uint32_t table;
	uint8_t dst[16];
	uint8_t gateway[16];
};

struct sluice_neighbour {
	uint8_t family;
	uint8_t has_lladdr;
	uint16_t state;		/* NUD_* bits */
	uint32_t ifindex;
	uint8_t addr[16];
	uint8_t lladdr[6];
	uint8_t pad[2];
};

/* Unicast routes of the main table of a family; returns how many were written, or -errno
 * (-ENOSPC when capacity is too small). */
int sluice_nl_routes(int family, struct sluice_route *out, int capacity);

/* The neighbour table of a family (every state); returns how many, or -errno. */
int sluice_nl_neighbours(int family, struct sluice_neighbour *out, int capacity);

/* Asks the kernel to resolve addr on ifindex (ARP / neighbour solicitation); 0 or -errno. */
int sluice_nl_neighbour_resolve(int ifindex, int family, const uint8_t *addr);

/* The CPU's cycle counter (TSC on x86-64; the virtual counter on arm64), for the workers' own
 * busy-cycle count: a few cycles to read, no system call. */
static inline uint64_t sluice_cycles(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t value;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(value));
    return value;
#else
    return 0;
#endif
}

#endif /* CSLUICEXDP_H */

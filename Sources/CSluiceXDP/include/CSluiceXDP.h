/*
 * CSluiceXDP: what SluiceDataplane needs from C. libbpf (object loading, maps, links) and
 * libxdp's xsk.h (UMEM and AF_XDP sockets; its ring helpers are static inline, and Swift
 * calls them directly through the Clang importer, with their acquire/release barriers), the
 * map layouts shared with the XDP program, and sluice_* functions for what Swift cannot
 * import: CPU_SET/CPU_ZERO are macros, pthread_setaffinity_np and sched_getcpu need
 * _GNU_SOURCE before the system headers.
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

/*
 * The one copy of the map layouts lives next to the XDP program; include it by relative path
 * (from Sources/CSluiceXDP/include/) so the BPF build and the Swift build read the same file.
 */
#include "../../../bpf/sluice_maps.h"

/* Pins the calling thread to one CPU. Returns 0, or an errno value. */
int sluice_pin_current_thread(int cpu);

/* The CPU the calling thread runs on now, or -1 with errno set. */
int sluice_current_cpu(void);

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

#endif /* CSLUICEXDP_H */

/*
 * Counts heap allocations of the whole process by interposing malloc and friends (glibc's
 * __libc_* entry points do the work). Linked only into benchmarks: it proves the per-packet
 * path allocates nothing, in the release build that matters.
 */
#ifndef ALLOC_COUNTER_H
#define ALLOC_COUNTER_H
#include <stdint.h>

/* Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) so far. */
uint64_t alloc_counter_total(void);

/* Cycle counter of this CPU (TSC on x86, the virtual counter on arm64). */
static inline uint64_t alloc_counter_cycles(void) { return __builtin_readcyclecounter(); }

#endif

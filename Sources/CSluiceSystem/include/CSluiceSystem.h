/*
 * Linux calls Swift's Glibc module does not import, because glibc declares them only under
 * _GNU_SOURCE (or as macros) or in headers the module leaves out (epoll, eventfd): batched
 * datagram I/O, readiness, thread placement, and a cache prefetch hint. Shared by the dataplane's
 * workers and the DNS proxy's UDP threads; no library beyond libc.
 */
#ifndef CSLUICE_SYSTEM_H
#define CSLUICE_SYSTEM_H

#include <stddef.h>
#include <sys/epoll.h>   /* not in Swift's Glibc module at all; imported through this one */
#include <sys/eventfd.h>
#include <sys/socket.h>

/* struct mmsghdr under its own name: the same layout (checked in system.c), visible to Swift. */
struct sluice_mmsghdr {
	struct msghdr msg_hdr;
	unsigned int msg_len;
};

/* recvmmsg(2) without a timeout. Returns the number of messages, or -1 with errno set. */
int sluice_recvmmsg(int fd, struct sluice_mmsghdr *messages, unsigned int count, int flags);

/* sendmmsg(2). Returns the number of messages sent, or -1 with errno set. */
int sluice_sendmmsg(int fd, struct sluice_mmsghdr *messages, unsigned int count, int flags);

/*
 * Asks the CPU to start loading the cache line at `address` for writing (x86 PREFETCHW where
 * available): Swift has no prefetch of its own. A hint: any address is allowed, nothing faults.
 */
static inline void sluice_prefetch(const void *address) {
	__builtin_prefetch(address, 1, 3);
}

/* Pins the calling thread to one CPU. Returns 0, or an errno value. */
int sluice_pin_current_thread(int cpu);

/* The CPU the calling thread runs on now, or -1 with errno set. */
int sluice_current_cpu(void);

/* Names the calling thread (cut to 15 bytes). Returns 0, or an errno value. */
int sluice_set_current_thread_name(const char *name);

/*
 * Gives the calling thread the nice level of the process (its main thread): Linux keeps nice per
 * thread and a new thread inherits its creator's. Returns 0, or an errno value.
 */
int sluice_adopt_process_nice(void);

#endif

/*
 * The functions of CSluiceSystem.h: glibc's _GNU_SOURCE-only calls, wrapped for Swift.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "CSluiceSystem.h"

_Static_assert(sizeof(struct sluice_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct sluice_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int sluice_recvmmsg(int fd, struct sluice_mmsghdr *messages, unsigned int count, int flags)
{
	return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int sluice_sendmmsg(int fd, struct sluice_mmsghdr *messages, unsigned int count, int flags)
{
	return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int sluice_pin_current_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Returns the error number itself, not -1/errno. */
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int sluice_current_cpu(void)
{
	return sched_getcpu();
}

int sluice_set_current_thread_name(const char *name)
{
	char truncated[16];

	/* The kernel keeps 15 bytes and a NUL; longer names are refused with ERANGE. */
	snprintf(truncated, sizeof(truncated), "%s", name);
	return pthread_setname_np(pthread_self(), truncated);
}

int sluice_adopt_process_nice(void)
{
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, getpid());
	if (nice == -1 && errno != 0)
		return errno;
	/* `who` 0 is the calling thread alone: Linux applies PRIO_PROCESS per thread. */
	if (setpriority(PRIO_PROCESS, 0, nice) != 0)
		return errno;
	return 0;
}

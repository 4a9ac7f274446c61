/*
 * The sluice_* functions of CSluiceXDP.h: thin wrappers over glibc and libbpf calls that
 * Swift cannot make itself (macros, _GNU_SOURCE-only prototypes, out-parameter structs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "CSluiceXDP.h"

int sluice_raise_memlock_limit(void)
{
	struct rlimit limit = { RLIM_INFINITY, RLIM_INFINITY };

	return setrlimit(RLIMIT_MEMLOCK, &limit);
}

int sluice_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}

int sluice_xdp_attached_program(int ifindex, uint32_t mode_flags, char *name, size_t name_len,
				uint32_t *prog_id)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	__u32 id = 0;
	int fd, err;

	if (name_len > 0)
		name[0] = '\0';
	err = bpf_xdp_query_id(ifindex, (int)mode_flags, &id);
	if (err)
		return err;
	*prog_id = id;
	if (id == 0)
		return 0;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	if (err)
		err = -errno;
	else if (name_len > 0) {
		strncpy(name, info.name, name_len - 1);
		name[name_len - 1] = '\0';
	}
	close(fd);
	return err;
}

/*
 * The routing and neighbour tables, read over rtnetlink (RTM_GETROUTE/RTM_GETNEIGH dumps), and
 * neighbour resolution on demand (RTM_NEWNEIGH with NTF_USE, what `ip neigh replace ... use`
 * sends). Plain C because the netlink message macros (NLMSG_*, RTA_*) are not importable into
 * Swift. Control plane only: the forwarding snapshot is built from these results off the hot path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/neighbour.h>

#include "CSluiceXDP.h"

static int nl_open(void)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int nl_send(int fd, struct nlmsghdr *request)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(fd, request, request->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

typedef int (*nl_handler)(struct nlmsghdr *msg, void *ctx);

/* Reads replies until NLMSG_DONE (dumps) or an NLMSG_ERROR (acks); returns 0 or -errno. */
static int nl_receive(int fd, uint32_t seq, nl_handler handle, void *ctx)
{
	/* 32 KiB holds any one datagram of a dump: the kernel sizes them to the reader's page. */
	static __thread char buffer[32768];

	for (;;) {
		ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
		struct nlmsghdr *msg;
		int len;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		len = (int)got;
		for (msg = (struct nlmsghdr *)buffer; NLMSG_OK(msg, len); msg = NLMSG_NEXT(msg, len)) {
			if (msg->nlmsg_seq != seq)
				continue;
			if (msg->nlmsg_type == NLMSG_DONE)
				return 0;
			if (msg->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *err = NLMSG_DATA(msg);
				return err->error;	/* 0 for an ack, -errno otherwise */
			}
			if (handle) {
				int status = handle(msg, ctx);
				if (status < 0)
					return status;
			}
		}
	}
}

static void copy_address(uint8_t *out, const struct rtattr *attr)
{
	size_t len = RTA_PAYLOAD(attr);

	memcpy(out, RTA_DATA(attr), len > 16 ? 16 : len);
}

struct route_ctx {
	struct sluice_route *out;
	int capacity;
	int count;
};

static int handle_route(struct nlmsghdr *msg, void *opaque)
{
	struct route_ctx *ctx = opaque;
	struct rtmsg *rtm = NLMSG_DATA(msg);
	struct rtattr *attr;
	int len = (int)RTM_PAYLOAD(msg);
	struct sluice_route route;

	if (msg->nlmsg_type != RTM_NEWROUTE || rtm->rtm_type != RTN_UNICAST)
		return 0;
	memset(&route, 0, sizeof(route));
	route.family = rtm->rtm_family;
	route.dst_len = rtm->rtm_dst_len;
	route.table = rtm->rtm_table;
	for (attr = RTM_RTA(rtm); RTA_OK(attr, len); attr = RTA_NEXT(attr, len)) {
		switch (attr->rta_type) {
		case RTA_DST:
			copy_address(route.dst, attr);
			break;
		case RTA_GATEWAY:
			copy_address(route.gateway, attr);
			route.has_gateway = 1;
			break;
		case RTA_OIF:
			route.oif = *(uint32_t *)RTA_DATA(attr);
			break;
		case RTA_PRIORITY:
			route.priority = *(uint32_t *)RTA_DATA(attr);
			break;
		case RTA_TABLE:
			route.table = *(uint32_t *)RTA_DATA(attr);
			break;
		}
	}
	/* Only the main table: policy routing is out of scope for now (docs/design). */
	if (route.table != RT_TABLE_MAIN || route.oif == 0)
		return 0;
	if (ctx->count >= ctx->capacity)
		return -ENOSPC;
	ctx->out[ctx->count++] = route;
	return 0;
}

int sluice_nl_routes(int family, struct sluice_route *out, int capacity)
{
	struct {
		struct nlmsghdr hdr;
		struct rtmsg rtm;
	} request;
	struct route_ctx ctx = { out, capacity, 0 };
	int fd = nl_open(), err;

	if (fd < 0)
		return fd;
	memset(&request, 0, sizeof(request));
	request.hdr.nlmsg_len = sizeof(request);
	request.hdr.nlmsg_type = RTM_GETROUTE;
	request.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	request.hdr.nlmsg_seq = 1;
	request.rtm.rtm_family = (unsigned char)family;
	err = nl_send(fd, &request.hdr);
	if (!err)
		err = nl_receive(fd, 1, handle_route, &ctx);
	close(fd);
	return err < 0 ? err : ctx.count;
}

struct neighbour_ctx {
	struct sluice_neighbour *out;
	int capacity;
	int count;
};

static int handle_neighbour(struct nlmsghdr *msg, void *opaque)
{
	struct neighbour_ctx *ctx = opaque;
	struct ndmsg *ndm = NLMSG_DATA(msg);
	struct rtattr *attr;
	int len = (int)(msg->nlmsg_len - NLMSG_LENGTH(sizeof(*ndm)));
	struct sluice_neighbour entry;

	if (msg->nlmsg_type != RTM_NEWNEIGH)
		return 0;
	memset(&entry, 0, sizeof(entry));
	entry.family = ndm->ndm_family;
	entry.state = ndm->ndm_state;
	entry.ifindex = (uint32_t)ndm->ndm_ifindex;
	for (attr = (struct rtattr *)((char *)ndm + NLMSG_ALIGN(sizeof(*ndm))); RTA_OK(attr, len);
	     attr = RTA_NEXT(attr, len)) {
		if (attr->rta_type == NDA_DST)
			copy_address(entry.addr, attr);
		else if (attr->rta_type == NDA_LLADDR && RTA_PAYLOAD(attr) == 6) {
			memcpy(entry.lladdr, RTA_DATA(attr), 6);
			entry.has_lladdr = 1;
		}
	}
	if (ctx->count >= ctx->capacity)
		return -ENOSPC;
	ctx->out[ctx->count++] = entry;
	return 0;
}

int sluice_nl_neighbours(int family, struct sluice_neighbour *out, int capacity)
{
	struct {
		struct nlmsghdr hdr;
		struct ndmsg ndm;
	} request;
	struct neighbour_ctx ctx = { out, capacity, 0 };
	int fd = nl_open(), err;

	if (fd < 0)
		return fd;
	memset(&request, 0, sizeof(request));
	request.hdr.nlmsg_len = sizeof(request);
	request.hdr.nlmsg_type = RTM_GETNEIGH;
	request.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	request.hdr.nlmsg_seq = 2;
	request.ndm.ndm_family = (unsigned char)family;
	err = nl_send(fd, &request.hdr);
	if (!err)
		err = nl_receive(fd, 2, handle_neighbour, &ctx);
	close(fd);
	return err < 0 ? err : ctx.count;
}

int sluice_nl_neighbour_resolve(int ifindex, int family, const uint8_t *addr)
{
	struct {
		struct nlmsghdr hdr;
		struct ndmsg ndm;
		char attrs[64];
	} request;
	struct rtattr *dst;
	int addr_len = family == AF_INET ? 4 : 16;
	int fd = nl_open(), err;

	if (fd < 0)
		return fd;
	memset(&request, 0, sizeof(request));
	request.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
	request.hdr.nlmsg_type = RTM_NEWNEIGH;
	/* NTF_USE makes the kernel start resolution (neigh_event_send) instead of setting a state. */
	request.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	request.hdr.nlmsg_seq = 3;
	request.ndm.ndm_family = (unsigned char)family;
	request.ndm.ndm_ifindex = ifindex;
	request.ndm.ndm_state = NUD_NONE;
	request.ndm.ndm_flags = NTF_USE;
	dst = (struct rtattr *)((char *)&request + NLMSG_ALIGN(request.hdr.nlmsg_len));
	dst->rta_type = NDA_DST;
	dst->rta_len = RTA_LENGTH(addr_len);
	memcpy(RTA_DATA(dst), addr, addr_len);
	request.hdr.nlmsg_len = NLMSG_ALIGN(request.hdr.nlmsg_len) + RTA_ALIGN(dst->rta_len);
	err = nl_send(fd, &request.hdr);
	if (!err)
		err = nl_receive(fd, 3, NULL, NULL);
	close(fd);
	return err;
}

/*
 * A small UDP flood for bench/gateway-forward.sh: sendmmsg batches of 64 datagrams of 18 bytes
 * (64-byte Ethernet frames on the wire, FCS included) to `flows` consecutive destination ports,
 * for `seconds`. Prints datagrams sent. Kernel sockets are the slowest generator here (about
 * 0.6-0.8 Mpps, notes/afxdp-on-these-machines.md); enough to load a debug or copy-mode gateway.
 *   udpgen DST_IPV4 FIRST_PORT FLOWS SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char **argv)
{
	struct sockaddr_in targets[BATCH];
	struct mmsghdr messages[BATCH];
	struct iovec vector = { .iov_base = "sluice-bench-64-b!", .iov_len = 18 };
	struct timespec start, now;
	unsigned long long sent = 0;
	int fd, flows, seconds, port, i;

	if (argc != 5) {
		fprintf(stderr, "usage: %s DST_IPV4 FIRST_PORT FLOWS SECONDS\n", argv[0]);
		return 2;
	}
	port = atoi(argv[2]);
	flows = atoi(argv[3]);
	seconds = atoi(argv[4]);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || flows < 1) {
		perror("socket");
		return 1;
	}
	memset(messages, 0, sizeof(messages));
	for (i = 0; i < BATCH; i++) {
		targets[i].sin_family = AF_INET;
		targets[i].sin_port = htons((unsigned short)(port + i % flows));
		inet_pton(AF_INET, argv[1], &targets[i].sin_addr);
		messages[i].msg_hdr.msg_name = &targets[i];
		messages[i].msg_hdr.msg_namelen = sizeof(targets[i]);
		messages[i].msg_hdr.msg_iov = &vector;
		messages[i].msg_hdr.msg_iovlen = 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		int done = sendmmsg(fd, messages, BATCH, 0);

		if (done > 0)
			sent += (unsigned long long)done;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < seconds);
	printf("%llu\n", sent);
	return 0;
}

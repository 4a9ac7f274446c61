// A live-frames packet generator for bench/gateway-forward.sh (GEN=live): BPF_PROG_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES runs livegen.bpf.c on a 64-byte (60 + FCS) IPv4/UDP template and
// the program XDP_TXes every frame out of IFACE: the fastest generator on these machines (the
// kernel's pktgen module is absent, xdp-trafficgen does not start). Prints the frames sent.
//   livegen IFACE SRC_MAC DST_MAC SRC_IP DST_IP DST_PORT FLOWS SECONDS OBJECT
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void mac(const char *text, unsigned char *out)
{
	if (sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &out[0], &out[1], &out[2], &out[3], &out[4], &out[5]) != 6) {
		fprintf(stderr, "bad MAC %s\n", text);
		exit(2);
	}
}

static unsigned short checksum(const void *data, int length)
{
	const unsigned short *words = data;
	unsigned int sum = 0;

	for (; length > 1; length -= 2)
		sum += *words++;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return ~sum;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned char frame[60] = { 0 };
	struct ethhdr *eth = (void *)frame;
	struct iphdr *ip = (void *)(frame + 14);
	struct udphdr *udp = (void *)(frame + 34);
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct bpf_object *object;
	struct bpf_program *program;
	unsigned int flows, ifindex;
	unsigned long long sent = 0;
	double seconds, deadline;

	if (argc != 10) {
		fprintf(stderr, "usage: livegen IFACE SRC_MAC DST_MAC SRC_IP DST_IP DST_PORT FLOWS SECONDS OBJECT\n");
		return 2;
	}
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	ifindex = if_nametoindex(argv[1]);
	flows = atoi(argv[7]);
	seconds = atof(argv[8]);
	if (!ifindex || flows == 0 || (flows & (flows - 1))) {
		fprintf(stderr, "unknown interface or FLOWS not a power of two\n");
		return 2;
	}
	mac(argv[3], eth->h_dest);
	mac(argv[2], eth->h_source);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(frame) - 14);
	inet_pton(AF_INET, argv[4], &ip->saddr);
	inet_pton(AF_INET, argv[5], &ip->daddr);
	ip->check = checksum(ip, sizeof(*ip));
	udp->dest = htons(atoi(argv[6]));
	udp->len = htons(sizeof(frame) - 34);

	object = bpf_object__open_file(argv[9], NULL);
	if (!object) {
		fprintf(stderr, "cannot open %s\n", argv[9]);
		return 1;
	}
	if (bpf_object__load(object)) {
		fprintf(stderr, "cannot load %s\n", argv[9]);
		return 1;
	}
	{
		/* struct livegen_config of livegen.bpf.c: the flow mask, then the 34 header bytes. */
		unsigned char config[4 + 34 + 2] = { 0 };
		unsigned int zero = 0, mask = flows - 1;

		memcpy(config, &mask, 4);
		memcpy(config + 4, frame, 34);
		bpf_map_update_elem(bpf_object__find_map_fd_by_name(object, "livegen_config"), &zero, config, BPF_ANY);
	}
	program = bpf_object__find_program_by_name(object, "livegen_tx");
	deadline = now() + seconds;
	while (now() < deadline) {
		struct xdp_md context = { .data_end = sizeof(frame), .ingress_ifindex = ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, options, .data_in = frame, .data_size_in = sizeof(frame),
			    .ctx_in = &context, .ctx_size_in = sizeof(context), .repeat = 1 << 16,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);

		if (bpf_prog_test_run_opts(bpf_program__fd(program), &options)) {
			perror("BPF_PROG_RUN");
			return 1;
		}
		sent += 1 << 16;
	}
	printf("%llu\n", sent);
	return 0;
}

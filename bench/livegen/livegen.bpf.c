// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * The XDP program of bench/livegen/livegen.c: run by BPF_PROG_RUN in live-frames mode on a
 * template UDP frame, it spreads frames over `flows` source ports from 10000 (a per-CPU counter; the
 * UDP checksum is 0, allowed for IPv4) and transmits each (XDP_TX out of the interface given
 * in the run's ctx). Only UAPI headers.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FIRST_PORT 10000
#define HEADERS 34	/* Ethernet + IPv4 without options */

/*
 * Written by user space before the run. Frames are recycled by the page pool as the gateway
 * left them (MACs rewritten, TTL decremented), so every run restores the headers.
 */
struct livegen_config {
	__u32 flow_mask;	/* flows - 1, flows a power of two */
	__u8 headers[HEADERS];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct livegen_config);
} livegen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} livegen_next SEC(".maps");

SEC("xdp")
int livegen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u16 *source_port = data + HEADERS;	/* UDP source port */
	__u32 zero = 0;
	__u32 *next = bpf_map_lookup_elem(&livegen_next, &zero);
	struct livegen_config *config = bpf_map_lookup_elem(&livegen_config, &zero);

	if ((void *)(source_port + 1) > end || !next || !config)
		return XDP_ABORTED;
	__builtin_memcpy(data, config->headers, HEADERS);
	*source_port = bpf_htons(FIRST_PORT + (*next & config->flow_mask));
	*next += 1;
	return XDP_TX;
}

/*
 * The sink for GEN=live: drops what reaches the upstream's veth end (veth counts it as
 * received); ARP goes on to the kernel so the gateway can resolve the upstream.
 */
SEC("xdp")
int livegen_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u16 *proto = data + 12;

	if ((void *)(proto + 1) <= end && *proto == bpf_htons(0x0806))
		return XDP_PASS;
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";

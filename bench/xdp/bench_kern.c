// SPDX-License-Identifier: GPL-2.0
// The XDP programs of the benchmark harness (bench/run.sh), one object, built with clang by the
// harness itself (never by the test suite):
//   xdp_gen      run by the generator through BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: turns
//                the template frame into flow N (source port and the low 16 bits of the source
//                address, checksums fixed incrementally) and returns XDP_TX into the client veth.
//   xdp_sink     on the upstream veth: counts and drops UDP/TCP (the flood), passes the rest (ARP,
//                neighbour discovery, ICMP for the latency probe).
//   xdp_ceiling  on the gateway's inside veth: the same, as the XDP_DROP ceiling.
//   xdp_xsk      on the gateway's inside veth for the C AF_XDP loop (xskfwd.c): IPv4/IPv6 into the
//                XSKMAP by rx queue, ARP and the rest to the kernel.
//   xdp_pass     lets a veth receive redirected frames (a veth peer needs an XDP program or GRO).
// No kernel types, no CO-RE: plain packet parsing over fixed headers.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/// Generator configuration, written once by xdpgen before the first run.
struct gen_config {
    __u32 flows;      // distinct flows; 0 = a new tuple for every frame (SYN flood)
    __u32 ports;      // source ports per source address (flow % ports), at most 60,000
    __u16 port_base;  // first source port
    __u16 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct gen_config);
} gen_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} gen_counter SEC(".maps");

/// Pristine headers of each template, keyed by frame length | (IPv6 << 16). Live frames live in
/// recycled pages that keep what the receiver wrote into them (kernel forwarding rewrites the MACs
/// and the TTL in place): every run starts by restoring the headers.
struct gen_header {
    __u8 bytes[80];
    __u32 length;  // header bytes: 42 (IPv4 UDP), 54 (IPv4 TCP), 62 (IPv6 UDP), 74 (IPv6 TCP)
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, struct gen_header);
} gen_headers SEC(".maps");

/// Packets and bytes the sink (or the ceiling) dropped, per CPU: [0] packets, [1] bytes.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} sink_counter SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// One's complement update of a 16-bit checksum for one 16-bit word changing (RFC 1624, eqn. 3).
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 new)
{
    __u32 sum = (__u16)~check + (__u16)~old + new;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    struct gen_config *cfg = bpf_map_lookup_elem(&gen_config, &zero);
    __u64 *counter = bpf_map_lookup_elem(&gen_counter, &zero);
    if (!cfg || !counter) return XDP_ABORTED;
    // xdpgen starts each CPU's counter at its own offset, so generator threads send distinct flows.
    __u64 n = (*counter)++;
    __u32 flow = cfg->flows ? (__u32)(n % cfg->flows) : (__u32)n;
    __u32 ports = cfg->ports ? cfg->ports : 1;
    __u16 new_port = bpf_htons((__u16)(cfg->port_base + flow % ports));
    __u16 new_host = bpf_htons((__u16)(0x100 + flow / ports)); // never .0.x: no network or gateway address

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return XDP_ABORTED;
    __u32 key = (__u32)(end - data) | (eth->h_proto == bpf_htons(ETH_P_IPV6) ? 1u << 16 : 0);
    struct gen_header *pristine = bpf_map_lookup_elem(&gen_headers, &key);
    if (pristine) {
        switch (pristine->length) {
        case 42: if (data + 42 > end) return XDP_ABORTED; __builtin_memcpy(data, pristine->bytes, 42); break;
        case 54: if (data + 54 > end) return XDP_ABORTED; __builtin_memcpy(data, pristine->bytes, 54); break;
        case 62: if (data + 62 > end) return XDP_ABORTED; __builtin_memcpy(data, pristine->bytes, 62); break;
        case 74: if (data + 74 > end) return XDP_ABORTED; __builtin_memcpy(data, pristine->bytes, 74); break;
        }
    }
    __u8 proto;
    __u16 *host;       // the low 16 bits of the source address
    __u8 *l4;
    __u16 *ip_check = 0;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        __u8 *ip = (__u8 *)(eth + 1);
        if (ip + 20 > (__u8 *)end) return XDP_ABORTED;
        proto = ip[9];
        host = (__u16 *)(ip + 14);
        ip_check = (__u16 *)(ip + 10);
        l4 = ip + 20;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        __u8 *ip = (__u8 *)(eth + 1);
        if (ip + 40 > (__u8 *)end) return XDP_ABORTED;
        proto = ip[6];
        host = (__u16 *)(ip + 22);
        l4 = ip + 40;
    } else {
        return XDP_TX;
    }
    __u16 *port = (__u16 *)l4;
    __u16 *l4_check;
    if (proto == IPPROTO_UDP) {
        if (l4 + 8 > (__u8 *)end) return XDP_ABORTED;
        l4_check = (__u16 *)(l4 + 6);
    } else if (proto == IPPROTO_TCP) {
        if (l4 + 20 > (__u8 *)end) return XDP_ABORTED;
        l4_check = (__u16 *)(l4 + 16);
        // SYN flood: a fresh sequence number per frame costs nothing and looks more real.
    } else {
        return XDP_TX;
    }
    __u16 old_port = *port, old_host = *host;
    *port = new_port;
    *host = new_host;
    __u16 check = csum_replace(*l4_check, old_port, new_port);
    check = csum_replace(check, old_host, new_host);
    if (proto == IPPROTO_UDP && check == 0) check = 0xffff;
    *l4_check = check;
    if (ip_check) *ip_check = csum_replace(*ip_check, old_host, new_host);
    return XDP_TX;
}

// Counts and drops the flood (UDP, TCP); everything else goes on to the kernel.
static __always_inline int count_drop(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return XDP_PASS;
    __u8 proto;
    __u8 *ip = (__u8 *)(eth + 1);
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        if (ip + 20 > (__u8 *)end) return XDP_PASS;
        proto = ip[9];
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        if (ip + 40 > (__u8 *)end) return XDP_PASS;
        proto = ip[6];
    } else {
        return XDP_PASS;
    }
    if (proto != IPPROTO_UDP && proto != IPPROTO_TCP) return XDP_PASS;
    __u32 key = 0;
    __u64 *packets = bpf_map_lookup_elem(&sink_counter, &key);
    if (packets) *packets += 1;
    key = 1;
    __u64 *bytes = bpf_map_lookup_elem(&sink_counter, &key);
    if (bytes) *bytes += (__u64)(end - data);
    return XDP_DROP;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx) { return count_drop(ctx); }

SEC("xdp")
int xdp_ceiling(struct xdp_md *ctx) { return count_drop(ctx); }

SEC("xdp")
int xdp_xsk(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return XDP_PASS;
    if (eth->h_proto != bpf_htons(ETH_P_IP) && eth->h_proto != bpf_htons(ETH_P_IPV6)) return XDP_PASS;
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

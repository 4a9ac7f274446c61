// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * Sluice's XDP program, attached to the inside and outside interfaces. It decides only where a
 * frame goes, never whether a flow is allowed:
 *
 *   ARP, ICMPv6 ND (133-137)           -> XDP_PASS (kernel keeps neighbour tables working)
 *   to a gateway address (DNS, API)    -> XDP_PASS (kernel sockets)
 *   UDP/TCP to port 53, when the       -> XDP_PASS (nftables redirects it to the DNS proxy;
 *     dns_redirect entry is set           set only on the inside interface's program instance)
 *   multicast/broadcast/link-local     -> XDP_PASS (link scope, never forwarded)
 *   other transit IPv4/IPv6            -> XSKMAP[rx_queue_index] (Swift worker judges it)
 *   no socket on that queue, malformed -> XDP_DROP (fail closed: nothing bypasses the policy)
 *
 * Only UAPI headers and direct packet access: no kernel-type CO-RE relocations, so the object
 * loads on kernels without BTF. Map layouts live in sluice_maps.h, shared with user space.
 *
 * Flow offload (issue 6): after the gateway-address and link-scope checks, TCP/UDP transit
 * packets are looked up in sluice_flows (filled by user space with flows the workers judged).
 * Only while sluice_offload_gen[0] is not 0 (0: offload off, no lookup at all):
 *
 *   miss, fragment, VLAN-tagged, other protocol        -> XSKMAP (workers)
 *   hit, entry generation != sluice_offload_gen[0]     -> XSKMAP (stale: workers judge again)
 *   hit, SLUICE_FLOW_DROP                              -> XDP_DROP, counted in the entry
 *   hit, TCP SYN/FIN/RST, TTL/hop limit <= 1, no egress -> XSKMAP (TCP state, ICMP errors)
 *   hit, SLUICE_FLOW_FORWARD                           -> TTL-1 (incremental checksum), MACs,
 *                                                         counted, bpf_redirect_map(sluice_egress)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice_maps.h"

#define ETH_P_8021Q_BE	bpf_htons(0x8100)
#define ETH_P_8021AD_BE	bpf_htons(0x88A8)

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, SLUICE_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} sluice_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_GATEWAY_ADDRS);
	__type(key, struct sluice_addr_key);
	__type(value, struct sluice_addr_value);
} sluice_gw_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_CTR_MAX);
	__type(key, __u32);
	__type(value, struct sluice_counter);
} sluice_counters SEC(".maps");

/* Offloaded flows of packets arriving on this interface (one entry per direction). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_DEFAULT_OFFLOAD_FLOWS);
	__type(key, struct sluice_flow_key);
	__type(value, struct sluice_flow_value);
} sluice_flows SEC(".maps");

/* Egress interfaces for offloaded flows, keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, SLUICE_MAX_EGRESS);
	__type(key, __u32);
	__type(value, __u32);
} sluice_egress SEC(".maps");

/* [0]: the generation offloaded entries must carry to be used; 0 turns offload off. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sluice_offload_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sluice_dns_redirect SEC(".maps");

/* Whether this is DNS (UDP/TCP destination port 53) to hand to the kernel for redirection. */
static __always_inline int is_redirected_dns(__u8 proto, void *l4, void *end)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&sluice_dns_redirect, &zero);
	__be16 *ports = l4;

	if (!on || !*on || (proto != IPPROTO_UDP && proto != IPPROTO_TCP))
		return 0;
	if ((void *)(ports + 2) > end)
		return 0;
	return ports[1] == bpf_htons(53);
}

/* Per-CPU slot: no atomics needed, XDP runs with preemption off on one CPU. */
static __always_inline int count(struct xdp_md *ctx, __u32 index, int action)
{
	struct sluice_counter *c = bpf_map_lookup_elem(&sluice_counters, &index);

	if (c) {
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
	return action;
}

static __always_inline int is_gateway_addr(__u8 family, const void *addr, int len)
{
	struct sluice_addr_key key = { .family = family };

	__builtin_memcpy(key.addr, addr, len == 4 ? 4 : 16);
	return bpf_map_lookup_elem(&sluice_gw_addrs, &key) != NULL;
}

/*
 * Steer to the AF_XDP socket of this rx queue. The explicit lookup lets the no-socket case
 * be counted; the XDP_DROP in the flags argument is what bpf_redirect_map() returns if the
 * entry vanishes between the lookup and the redirect (a socket closing). XDP_PASS there would
 * hand a transit packet to the kernel's forwarding path, around the policy.
 */
static __always_inline int steer(struct xdp_md *ctx, __u32 counter)
{
	__u32 queue = ctx->rx_queue_index;

	if (!bpf_map_lookup_elem(&sluice_xsks, &queue))
		return count(ctx, SLUICE_CTR_DROP_NO_SOCKET, XDP_DROP);
	count(ctx, counter, XDP_REDIRECT);
	return bpf_redirect_map(&sluice_xsks, queue, XDP_DROP);
}

/*
 * The entry of this packet's flow if offload is on and it is current; *control tells whether
 * the packet is a TCP SYN/FIN/RST (which a forward entry leaves to the workers).
 */
static __always_inline struct sluice_flow_value *offloaded(struct xdp_md *ctx, struct sluice_flow_key *key,
							    void *l4, void *end, int tagged, int *control)
{
	__u32 zero = 0;
	__u32 *generation = bpf_map_lookup_elem(&sluice_offload_gen, &zero);
	struct sluice_flow_value *flow;
	struct tcphdr *tcp = l4;
	struct udphdr *udp = l4;

	if (!generation || *generation == 0 || tagged)
		return NULL;
	if (key->proto == IPPROTO_TCP) {
		if ((void *)(tcp + 1) > end)
			return NULL;
		key->sport = tcp->source;
		key->dport = tcp->dest;
		*control = tcp->syn | tcp->fin | tcp->rst;
	} else if (key->proto == IPPROTO_UDP) {
		if ((void *)(udp + 1) > end)
			return NULL;
		key->sport = udp->source;
		key->dport = udp->dest;
	} else {
		return NULL;
	}
	flow = bpf_map_lookup_elem(&sluice_flows, key);
	if (!flow)
		return NULL;
	if (flow->generation != *generation) {
		count(ctx, SLUICE_CTR_OFFLOAD_STALE, 0);
		return NULL;
	}
	return flow;
}

/* Counts a packet in its flow entry. Several CPUs may carry one flow: atomic adds. */
static __always_inline void account(struct sluice_flow_value *flow, struct xdp_md *ctx, __u64 ip_bytes)
{
	__u64 now = bpf_ktime_get_coarse_ns();

	__sync_fetch_and_add(&flow->packets, 1);
	__sync_fetch_and_add(&flow->bytes, ctx->data_end - ctx->data);
	__sync_fetch_and_add(&flow->ip_bytes, ip_bytes);
	if (flow->last_seen_ns != now)	/* the coarse clock ticks every few ms: few writes */
		flow->last_seen_ns = now;
}

/*
 * Drops a packet of an offloaded flow (XDP_DROP), readies it for forwarding (XDP_REDIRECT: MACs
 * rewritten, counted; the caller decrements the TTL/hop limit and redirects), or returns -1 for
 * the workers. `hop` is the packet's TTL/hop limit.
 */
static __always_inline int forward(struct xdp_md *ctx, struct sluice_flow_value *flow, __u8 hop, __u64 ip_bytes,
				   int control)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	__u32 egress = flow->egress_ifindex;

	if (flow->action == SLUICE_FLOW_DROP) {
		account(flow, ctx, ip_bytes);
		return count(ctx, SLUICE_CTR_OFFLOAD_DROP, XDP_DROP);
	}
	/*
	 * SYN, FIN and RST move the workers' TCP state (and end flows); a TTL running out is
	 * answered by the workers with ICMP time exceeded: they see those.
	 */
	if (control || hop <= 1 || !bpf_map_lookup_elem(&sluice_egress, &egress)) {
		count(ctx, SLUICE_CTR_OFFLOAD_PUNT, 0);
		return -1;
	}
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return -1;
	account(flow, ctx, ip_bytes);
	__builtin_memcpy(eth->h_dest, flow->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, flow->src_mac, ETH_ALEN);
	return count(ctx, SLUICE_CTR_OFFLOAD_FORWARD, XDP_REDIRECT);
}

static __always_inline int handle_ipv4(struct xdp_md *ctx, void *l3, void *end, int tagged)
{
	struct iphdr *ip = l3;
	struct sluice_flow_key key = { .family = SLUICE_FAMILY_V4 };
	struct sluice_flow_value *flow;
	int action, control = 0;
	__u32 check;

	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
	if (is_gateway_addr(SLUICE_FAMILY_V4, &ip->daddr, 4))
		return count(ctx, SLUICE_CTR_PASS_LOCAL, XDP_PASS);
	/* First fragments only carry the ports; later ones go to the workers (and are denied there). */
	if ((ip->frag_off & bpf_htons(0x1FFF)) == 0 &&
	    is_redirected_dns(ip->protocol, (void *)ip + ip->ihl * 4, end))
		return count(ctx, SLUICE_CTR_PASS_LOCAL, XDP_PASS);
	/* 224.0.0.0/4 multicast and 255.255.255.255: DHCP, mDNS, IGMP stay on the link. */
	if ((ip->daddr & bpf_htonl(0xF0000000)) == bpf_htonl(0xE0000000) || ip->daddr == 0xFFFFFFFF)
		return count(ctx, SLUICE_CTR_PASS_LINK_SCOPE, XDP_PASS);
	/* Not a fragment (offset 0, no MF): the ports are there. */
	if ((ip->frag_off & bpf_htons(0x3FFF)) == 0) {
		key.proto = ip->protocol;
		__builtin_memcpy(key.saddr, &ip->saddr, 4);
		__builtin_memcpy(key.daddr, &ip->daddr, 4);
		flow = offloaded(ctx, &key, (void *)ip + ip->ihl * 4, end, tagged, &control);
		if (flow) {
			__u8 ttl = ip->ttl;

			action = forward(ctx, flow, ttl, bpf_ntohs(ip->tot_len), control);
			if (action >= 0) {
				if (action != XDP_REDIRECT)
					return action;
				/* RFC 1624 incremental update, as the kernel's ip_decrease_ttl. */
				check = ip->check;
				check += bpf_htons(0x0100);
				ip->check = (__sum16)(check + (check >= 0xFFFF));
				ip->ttl = ttl - 1;
				return bpf_redirect_map(&sluice_egress, flow->egress_ifindex, XDP_DROP);
			}
		}
	}
	return steer(ctx, SLUICE_CTR_REDIRECT_V4);
}

static __always_inline int handle_ipv6(struct xdp_md *ctx, void *l3, void *end, int tagged)
{
	struct ipv6hdr *ip6 = l3;
	struct sluice_flow_key key = { .family = SLUICE_FAMILY_V6 };
	struct sluice_flow_value *flow;
	__u8 *icmp_type;
	int action, control = 0;

	if ((void *)(ip6 + 1) > end)
		return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
	/* ND travels without extension headers (RFC 4861 checks hop limit 255 instead). */
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		icmp_type = (__u8 *)(ip6 + 1);
		if ((void *)(icmp_type + 1) > end)
			return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
		if (*icmp_type >= 133 && *icmp_type <= 137)
			return count(ctx, SLUICE_CTR_PASS_ND, XDP_PASS);
	}
	if (is_gateway_addr(SLUICE_FAMILY_V6, &ip6->daddr, 16))
		return count(ctx, SLUICE_CTR_PASS_LOCAL, XDP_PASS);
	if (is_redirected_dns(ip6->nexthdr, ip6 + 1, end))
		return count(ctx, SLUICE_CTR_PASS_LOCAL, XDP_PASS);
	/* ff00::/8 multicast (MLD, DHCPv6) and fe80::/10 link-local are never forwarded. */
	if (ip6->daddr.s6_addr[0] == 0xFF ||
	    (ip6->daddr.s6_addr[0] == 0xFE && (ip6->daddr.s6_addr[1] & 0xC0) == 0x80))
		return count(ctx, SLUICE_CTR_PASS_LINK_SCOPE, XDP_PASS);
	/* TCP/UDP right after the fixed header (no extension headers). */
	key.proto = ip6->nexthdr;
	__builtin_memcpy(key.saddr, &ip6->saddr, 16);
	__builtin_memcpy(key.daddr, &ip6->daddr, 16);
	flow = offloaded(ctx, &key, ip6 + 1, end, tagged, &control);
	if (flow) {
		__u8 hop = ip6->hop_limit;

		action = forward(ctx, flow, hop, bpf_ntohs(ip6->payload_len) + sizeof(*ip6), control);
		if (action >= 0) {
			if (action != XDP_REDIRECT)
				return action;
			ip6->hop_limit = hop - 1;
			return bpf_redirect_map(&sluice_egress, flow->egress_ifindex, XDP_DROP);
		}
	}
	return steer(ctx, SLUICE_CTR_REDIRECT_V6);
}

SEC("xdp")
int sluice_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__be16 proto;
	int tagged = 0;

	if (l3 > end)
		return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
	proto = eth->h_proto;
	/* One 802.1Q tag, as the Swift parser accepts; stacked tags are not routed. */
	if (proto == ETH_P_8021Q_BE) {
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > end)
			return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
		proto = vlan->encapsulated_proto;
		l3 = vlan + 1;
		tagged = 1;	/* offload handles untagged frames only; tagged ones go to the workers */
		if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE)
			return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
	}
	if (proto == bpf_htons(ETH_P_IP))
		return handle_ipv4(ctx, l3, end, tagged);
	if (proto == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(ctx, l3, end, tagged);
	if (proto == bpf_htons(ETH_P_ARP))
		return count(ctx, SLUICE_CTR_PASS_ARP, XDP_PASS);
	return count(ctx, SLUICE_CTR_PASS_NON_IP, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";

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
 * Room for flow offload (issue 6, not implemented): after the "transit" decision and before
 * the XSKMAP redirect, look the 5-tuple up in an LRU hash that workers fill with judged flows
 * (action, egress ifindex, MACs, policy generation, counters). On a hit whose generation equals
 * a global generation held in a one-entry array map, rewrite MACs, decrement TTL with an
 * incremental checksum and bpf_redirect_map() through a DEVMAP, or XDP_DROP; on a miss or a
 * stale generation fall through to the XSKMAP redirect below, so workers judge it again.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
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

static __always_inline int handle_ipv4(struct xdp_md *ctx, void *l3, void *end)
{
	struct iphdr *ip = l3;

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
	return steer(ctx, SLUICE_CTR_REDIRECT_V4);
}

static __always_inline int handle_ipv6(struct xdp_md *ctx, void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;
	__u8 *icmp_type;

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
		if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE)
			return count(ctx, SLUICE_CTR_DROP_MALFORMED, XDP_DROP);
	}
	if (proto == bpf_htons(ETH_P_IP))
		return handle_ipv4(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_ARP))
		return count(ctx, SLUICE_CTR_PASS_ARP, XDP_PASS);
	return count(ctx, SLUICE_CTR_PASS_NON_IP, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";

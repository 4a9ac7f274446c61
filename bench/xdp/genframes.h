// genframes.h: what the benchmark's two traffic generators share (issue 6): xdpgen.c (XDP live
// frames) and xskgen.c (AF_XDP transmit). The frames (Ethernet, IPv4/IPv6, UDP/TCP headers with
// correct checksums, 64-byte or IMIX sizes), the flow tuple of frame n (source port and the low 16
// bits of the source address, as the xdp_gen program of bench_kern.c stamps it), the command line
// both take and the line both print. Header only: each generator is one `gcc` command.
// Everything is `static inline` so that a generator that does not use a helper gets no warning.
#ifndef GENFRAMES_H
#define GENFRAMES_H

#include <arpa/inet.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/// One template frame (no FCS) and its share of the traffic (IMIX weight).
struct template { uint8_t bytes[1600]; uint32_t length; uint32_t weight; };

/// The flow tuple layout of the frames: flow f uses source port GEN_PORT_BASE + f % ports and
/// source address low 16 bits 0x100 + f / ports, with ports = min(flows, GEN_MAX_PORTS).
#define GEN_PORT_BASE 1024
#define GEN_MAX_PORTS 60000

static inline double gen_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline uint16_t gen_fold(uint32_t sum)
{
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static inline uint32_t gen_add_words(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1) sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static inline void gen_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline uint16_t gen_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

// One frame of `length` bytes (no FCS): Ethernet, IPv4 or IPv6, UDP or TCP, zero payload, with
// correct IP and L4 checksums (the generators update them incrementally per flow).
static inline void gen_build(struct template *t, const uint8_t dmac[6], const uint8_t smac[6], int family,
                             const void *src, const void *dst, int proto, int syn, uint16_t dport, uint32_t length)
{
    uint8_t *f = t->bytes;
    uint32_t ip_len = family == 4 ? 20 : 40, l4_len = proto == IPPROTO_UDP ? 8 : 20;
    uint32_t minimum = 14 + ip_len + l4_len;
    if (length < minimum) length = minimum;
    if (length < 60) length = 60;
    memset(f, 0, sizeof t->bytes);
    memcpy(f, dmac, 6);
    memcpy(f + 6, smac, 6);
    gen_put16(f + 12, family == 4 ? ETH_P_IP : ETH_P_IPV6);
    uint8_t *ip = f + 14, *l4 = ip + ip_len;
    uint32_t payload = length - 14 - ip_len; // L4 header + data
    if (family == 4) {
        ip[0] = 0x45;
        gen_put16(ip + 2, (uint16_t)(ip_len + payload));
        ip[8] = 64;
        ip[9] = (uint8_t)proto;
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
        gen_put16(ip + 10, gen_fold(gen_add_words(ip, 20, 0)));
    } else {
        ip[0] = 0x60;
        gen_put16(ip + 4, (uint16_t)payload);
        ip[6] = (uint8_t)proto;
        ip[7] = 64;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
    }
    gen_put16(l4, 1024);
    gen_put16(l4 + 2, dport);
    if (proto == IPPROTO_UDP) {
        gen_put16(l4 + 4, (uint16_t)payload);
    } else {
        gen_put16(l4 + 4, 0x1234); // sequence number
        l4[12] = 5 << 4;
        l4[13] = syn ? 0x02 : 0x10; // SYN, or ACK for an established-looking flood
        gen_put16(l4 + 14, 65535);
    }
    // Pseudo header + L4.
    uint32_t sum = family == 4 ? gen_add_words(ip + 12, 8, 0) : gen_add_words(ip + 8, 32, 0);
    sum += proto + payload;
    sum = gen_add_words(l4, payload, sum);
    uint16_t check = gen_fold(sum);
    if (proto == IPPROTO_UDP && check == 0) check = 0xffff;
    gen_put16(l4 + (proto == IPPROTO_UDP ? 6 : 16), check);
    t->length = length;
}

/// Header bytes of a template (Ethernet + IP + L4 header): 42, 54, 62 or 74.
static inline uint32_t gen_header_length(const struct template *t)
{
    int v6 = t->bytes[12] == 0x86;
    return 14 + (v6 ? 40 : 20) + (t->bytes[14 + (v6 ? 6 : 9)] == IPPROTO_UDP ? 8 : 20);
}

// One's complement update of a 16-bit checksum for one 16-bit word changing (RFC 1624, eqn. 3).
static inline uint16_t gen_csum_replace(uint16_t check, uint16_t old, uint16_t new)
{
    uint32_t sum = (uint16_t)~check + (uint16_t)~old + new;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/// Source ports per source address for `flows` flows (0 flows: a new tuple per frame).
static inline uint32_t gen_ports(uint32_t flows) { return flows && flows < GEN_MAX_PORTS ? flows : GEN_MAX_PORTS; }

/// The first frame number of generator thread i of `count`: distinct flows per thread, and unique
/// tuples per thread for --flows 0.
static inline uint64_t gen_start(int i, int count, uint32_t flows)
{
    return flows ? (uint64_t)i * (flows / (uint32_t)(count ? count : 1)) : (uint64_t)i << 28;
}

/// Makes a frame built from a template (and stamped before or not) frame number n: flow n % flows
/// (n with 0 flows). The same arithmetic as xdp_gen in bench_kern.c, in user space.
static inline void gen_stamp(uint8_t *frame, uint64_t n, uint32_t flows)
{
    uint32_t flow = flows ? (uint32_t)(n % flows) : (uint32_t)n, ports = gen_ports(flows);
    uint16_t port = (uint16_t)(GEN_PORT_BASE + flow % ports), host = (uint16_t)(0x100 + flow / ports);
    int v6 = frame[12] == 0x86;
    uint8_t *ip = frame + 14, *l4 = ip + (v6 ? 40 : 20), *host_at = ip + (v6 ? 22 : 14);
    int udp = ip[v6 ? 6 : 9] == IPPROTO_UDP;
    uint8_t *l4_check = l4 + (udp ? 6 : 16);
    uint16_t old_port = gen_get16(l4), old_host = gen_get16(host_at);
    gen_put16(l4, port);
    gen_put16(host_at, host);
    uint16_t check = gen_csum_replace(gen_get16(l4_check), old_port, port);
    check = gen_csum_replace(check, old_host, host);
    if (udp && check == 0) check = 0xffff;
    gen_put16(l4_check, check);
    if (!v6) gen_put16(ip + 10, gen_csum_replace(gen_get16(ip + 10), old_host, host));
}

static inline int gen_parse_mac(const char *s, uint8_t mac[6])
{
    return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6;
}

/// The command line both generators take. `obj` and `hold_dev` are xdpgen's own.
struct gen_args {
    const char *dev, *obj_path, *proto_name, *size, *family, *cpus, *hold_dev;
    const char *src4, *dst4, *src6, *dst6;
    uint8_t dmac[6], smac[6];
    uint32_t flows;
    uint16_t dport;
    double seconds, rate;
    int cpu_list[64], cpu_count;
    int proto, syn;                  // IPPROTO_UDP or IPPROTO_TCP; SYN flood
    struct template templates[8];    // by size, then family: IPv4 before IPv6
    int template_count;
};

static inline void gen_usage(const char *name, int xdp)
{
    fprintf(stderr, "usage: %s --dev IF --dst-mac MAC --src4 A --dst4 B [--src6 A --dst6 B] [--family 4|6|mix]\n"
                    "              [--proto udp|tcp|syn] [--size 64|imix|BYTES] [--flows N] [--dport P]\n"
                    "              [--seconds S] [--cpus 0,1] [--rate PPS]%s\n",
            name, xdp ? " [--obj bench_kern.o] [--hold-dev IF]" : "");
    exit(2);
}

/// Parses the command line (`xdp`: accept --obj and --hold-dev), reads the source MAC of --dev and
/// builds the templates. Exits with the usage on a bad command line.
static inline void gen_parse(struct gen_args *a, int argc, char **argv, const char *name, int xdp)
{
    memset(a, 0, sizeof *a);
    a->proto_name = "udp"; a->size = "64"; a->family = "4"; a->cpus = "0";
    a->flows = 4096; a->dport = 9000; a->seconds = 10;
    int have_dmac = 0;
    static struct option options[] = {
        {"dev", 1, 0, 'd'}, {"dst-mac", 1, 0, 'm'}, {"src4", 1, 0, 's'}, {"dst4", 1, 0, 't'},
        {"src6", 1, 0, 'S'}, {"dst6", 1, 0, 'T'}, {"family", 1, 0, 'f'}, {"proto", 1, 0, 'p'},
        {"size", 1, 0, 'z'}, {"flows", 1, 0, 'n'}, {"dport", 1, 0, 'P'}, {"seconds", 1, 0, 'x'},
        {"cpus", 1, 0, 'c'}, {"rate", 1, 0, 'r'}, {"obj", 1, 0, 'o'}, {"hold-dev", 1, 0, 'H'}, {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd': a->dev = optarg; break;
        case 'm': have_dmac = gen_parse_mac(optarg, a->dmac); break;
        case 's': a->src4 = optarg; break;
        case 't': a->dst4 = optarg; break;
        case 'S': a->src6 = optarg; break;
        case 'T': a->dst6 = optarg; break;
        case 'f': a->family = optarg; break;
        case 'p': a->proto_name = optarg; break;
        case 'z': a->size = optarg; break;
        case 'n': a->flows = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'P': a->dport = (uint16_t)atoi(optarg); break;
        case 'x': a->seconds = atof(optarg); break;
        case 'c': a->cpus = optarg; break;
        case 'r': a->rate = atof(optarg); break;
        case 'o': if (!xdp) gen_usage(name, xdp); a->obj_path = optarg; break;
        case 'H': if (!xdp) gen_usage(name, xdp); a->hold_dev = optarg; break;
        default: gen_usage(name, xdp);
        }
    }
    if (!a->dev || !have_dmac) gen_usage(name, xdp);
    for (char *list = strdup(a->cpus), *tok = strtok(list, ","); tok && a->cpu_count < 64; tok = strtok(NULL, ","))
        a->cpu_list[a->cpu_count++] = atoi(tok);
    if (!if_nametoindex(a->dev)) { fprintf(stderr, "%s: no interface %s\n", name, a->dev); exit(1); }
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", a->dev);
    if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0) { fprintf(stderr, "%s: SIOCGIFHWADDR: %m\n", name); exit(1); }
    memcpy(a->smac, ifr.ifr_hwaddr.sa_data, 6);
    close(sock);

    a->proto = strcmp(a->proto_name, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
    a->syn = strcmp(a->proto_name, "syn") == 0;
    uint32_t sizes[3] = {60, 0, 0}, weights[3] = {1, 0, 0};
    int size_count = 1;
    if (strcmp(a->size, "imix") == 0) { // simple IMIX 7:4:1 of 64, 594 and 1518 bytes on the wire (less FCS)
        sizes[0] = 60; sizes[1] = 590; sizes[2] = 1514; weights[0] = 7; weights[1] = 4; weights[2] = 1;
        size_count = 3;
    } else if (strcmp(a->size, "64") != 0) {
        sizes[0] = (uint32_t)atoi(a->size) - 4;
    }
    int want4 = strcmp(a->family, "6") != 0, want6 = strcmp(a->family, "4") != 0;
    uint8_t a4[4], b4[4], a6[16], b6[16];
    if (want4 && (!a->src4 || !a->dst4 || inet_pton(AF_INET, a->src4, a4) != 1 || inet_pton(AF_INET, a->dst4, b4) != 1))
        gen_usage(name, xdp);
    if (want6 && (!a->src6 || !a->dst6 || inet_pton(AF_INET6, a->src6, a6) != 1 || inet_pton(AF_INET6, a->dst6, b6) != 1))
        gen_usage(name, xdp);
    for (int s = 0; s < size_count; s++) {
        if (want4) {
            gen_build(&a->templates[a->template_count], a->dmac, a->smac, 4, a4, b4, a->proto, a->syn, a->dport, sizes[s]);
            a->templates[a->template_count++].weight = weights[s];
        }
        if (want6) {
            gen_build(&a->templates[a->template_count], a->dmac, a->smac, 6, a6, b6, a->proto, a->syn, a->dport, sizes[s]);
            a->templates[a->template_count++].weight = weights[s];
        }
    }
}

/// The one line both generators print at the end (bench/run.sh parses it).
static inline void gen_report(unsigned long sent, double elapsed)
{
    printf("sent=%lu seconds=%.3f pps=%.0f\n", sent, elapsed, sent / elapsed);
}

#endif

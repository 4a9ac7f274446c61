// xdpgen: the benchmark's traffic generator. Runs the xdp_gen program of bench_kern.c through
// BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: the kernel builds frames from a template in a page
// pool and the program's XDP_TX puts them on the wire of the given interface (a veth: they arrive on
// its peer, which needs an XDP program or GRO). The program turns each frame into flow N (source port,
// low 16 bits of the source address), so one template gives thousands of flows. The fastest
// generator on these machines (notes/afxdp-on-these-machines.md): about 4-5 Mpps from one core.
// One thread per CPU of --cpus, pinned. Prints `sent=N seconds=S pps=R` at the end.
//
//   xdpgen --dev c0 --dst-mac MAC --src4 A --dst4 B [--src6 A --dst6 B] [--family 4|6|mix]
//          [--proto udp|tcp|syn] [--size 64|imix|BYTES] [--flows N] [--dport P] [--seconds S]
//          [--cpus 0,1] [--rate PPS] [--obj bench_kern.o] [--hold-dev IF]
// --hold-dev: an idle interface (e.g. one end of a spare veth pair) that xdp_gen is attached to
// while the generator runs, so that each BPF_PROG_RUN does not update the XDP dispatcher.
// --flows 0 gives every frame a new tuple (with --proto syn: a SYN flood of unique tuples).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct gen_config { uint32_t flows, ports; uint16_t port_base, pad; };

struct template { uint8_t bytes[1600]; uint32_t length; uint32_t weight; };
struct gen_header { uint8_t bytes[80]; uint32_t length; };

static struct template templates[8];
static int template_count;
static int prog_fd, ifindex;
static double seconds = 10, rate;
static int cpu_list[64], cpu_count;
static atomic_ulong total_sent;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t add_words(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1) sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

// One frame of `length` bytes (no FCS): Ethernet, IPv4 or IPv6, UDP or TCP, zero payload, with
// correct IP and L4 checksums (the program updates them incrementally).
static void build(struct template *t, const uint8_t dmac[6], const uint8_t smac[6], int family,
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
    put16(f + 12, family == 4 ? ETH_P_IP : ETH_P_IPV6);
    uint8_t *ip = f + 14, *l4 = ip + ip_len;
    uint32_t payload = length - 14 - ip_len; // L4 header + data
    if (family == 4) {
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t)(ip_len + payload));
        ip[8] = 64;
        ip[9] = (uint8_t)proto;
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
        put16(ip + 10, fold(add_words(ip, 20, 0)));
    } else {
        ip[0] = 0x60;
        put16(ip + 4, (uint16_t)payload);
        ip[6] = (uint8_t)proto;
        ip[7] = 64;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
    }
    put16(l4, 1024);
    put16(l4 + 2, dport);
    if (proto == IPPROTO_UDP) {
        put16(l4 + 4, (uint16_t)payload);
    } else {
        put16(l4 + 4, 0x1234); // sequence number
        l4[12] = 5 << 4;
        l4[13] = syn ? 0x02 : 0x10; // SYN, or ACK for an established-looking flood
        put16(l4 + 14, 65535);
    }
    // Pseudo header + L4.
    uint32_t sum = family == 4 ? add_words(ip + 12, 8, 0) : add_words(ip + 8, 32, 0);
    sum += proto + payload;
    sum = add_words(l4, payload, sum);
    uint16_t check = fold(sum);
    if (proto == IPPROTO_UDP && check == 0) check = 0xffff;
    put16(l4 + (proto == IPPROTO_UDP ? 6 : 16), check);
    t->length = length;
}

static void *generate(void *arg)
{
    int cpu = (int)(long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    struct xdp_md ctx = { .ingress_ifindex = (uint32_t)ifindex };
    double start = now(), end = start + seconds, per_thread = rate / cpu_count;
    // Frames per BPF_PROG_RUN call and template weight unit: large at full rate (fewer syscalls),
    // about 1/200 s worth when a rate is set, so pacing stays smooth.
    uint32_t chunk = 4096;
    if (rate > 0 && per_thread / 200 < chunk) chunk = per_thread / 200 < 16 ? 16 : (uint32_t)(per_thread / 200);
    unsigned long sent = 0;
    while (1) {
        for (int i = 0; i < template_count; i++) {
            ctx.data_end = templates[i].length; // the kernel wants the context to describe the frame
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = templates[i].bytes,
                        .data_size_in = templates[i].length, .ctx_in = &ctx, .ctx_size_in = sizeof ctx,
                        .repeat = chunk * templates[i].weight, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                        .batch_size = 64);
            int err = bpf_prog_test_run_opts(prog_fd, &opts);
            if (err) {
                fprintf(stderr, "xdpgen: BPF_PROG_RUN failed on cpu %d: %s\n", cpu, strerror(errno));
                exit(1);
            }
            sent += opts.repeat;
        }
        double t = now();
        if (t >= end) break;
        if (rate > 0) {
            double due = start + sent / per_thread; // when `sent` frames are due at the target rate
            if (due > t) {
                if (due > end) due = end;
                struct timespec sleep = { (time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9) };
                nanosleep(&sleep, NULL);
                if (due >= end) break;
            }
        }
    }
    atomic_fetch_add(&total_sent, sent);
    return NULL;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6;
}

static void usage(void)
{
    fprintf(stderr, "usage: xdpgen --dev IF --dst-mac MAC --src4 A --dst4 B [--src6 A --dst6 B] [--family 4|6|mix]\n"
                    "              [--proto udp|tcp|syn] [--size 64|imix|BYTES] [--flows N] [--dport P]\n"
                    "              [--seconds S] [--cpus 0,1] [--rate PPS] [--obj bench_kern.o] [--hold-dev IF]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dev = NULL, *obj_path = NULL, *proto_name = "udp", *size = "64", *family = "4";
    const char *src4 = NULL, *dst4 = NULL, *src6 = NULL, *dst6 = NULL, *cpus = "0", *hold_dev = NULL;
    uint8_t dmac[6] = {0}, smac[6];
    int have_dmac = 0;
    uint32_t flows = 4096;
    uint16_t dport = 9000;
    static struct option options[] = {
        {"dev", 1, 0, 'd'}, {"dst-mac", 1, 0, 'm'}, {"src4", 1, 0, 's'}, {"dst4", 1, 0, 't'},
        {"src6", 1, 0, 'S'}, {"dst6", 1, 0, 'T'}, {"family", 1, 0, 'f'}, {"proto", 1, 0, 'p'},
        {"size", 1, 0, 'z'}, {"flows", 1, 0, 'n'}, {"dport", 1, 0, 'P'}, {"seconds", 1, 0, 'x'},
        {"cpus", 1, 0, 'c'}, {"rate", 1, 0, 'r'}, {"obj", 1, 0, 'o'}, {"hold-dev", 1, 0, 'H'}, {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd': dev = optarg; break;
        case 'm': have_dmac = parse_mac(optarg, dmac); break;
        case 's': src4 = optarg; break;
        case 't': dst4 = optarg; break;
        case 'S': src6 = optarg; break;
        case 'T': dst6 = optarg; break;
        case 'f': family = optarg; break;
        case 'p': proto_name = optarg; break;
        case 'z': size = optarg; break;
        case 'n': flows = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'P': dport = (uint16_t)atoi(optarg); break;
        case 'x': seconds = atof(optarg); break;
        case 'c': cpus = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'o': obj_path = optarg; break;
        case 'H': hold_dev = optarg; break;
        default: usage();
        }
    }
    if (!dev || !have_dmac) usage();
    for (char *list = strdup(cpus), *tok = strtok(list, ","); tok && cpu_count < 64; tok = strtok(NULL, ","))
        cpu_list[cpu_count++] = atoi(tok);
    if (!obj_path) obj_path = "bench_kern.o";
    ifindex = (int)if_nametoindex(dev);
    if (!ifindex) { fprintf(stderr, "xdpgen: no interface %s\n", dev); return 1; }
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
    if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0) { perror("xdpgen: SIOCGIFHWADDR"); return 1; }
    memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
    close(sock);

    int proto = strcmp(proto_name, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP, syn = strcmp(proto_name, "syn") == 0;
    uint32_t sizes[3] = {60, 0, 0}, weights[3] = {1, 0, 0};
    int size_count = 1;
    if (strcmp(size, "imix") == 0) { // simple IMIX 7:4:1 of 64, 594 and 1518 bytes on the wire (less FCS)
        sizes[0] = 60; sizes[1] = 590; sizes[2] = 1514; weights[0] = 7; weights[1] = 4; weights[2] = 1;
        size_count = 3;
    } else if (strcmp(size, "64") != 0) {
        sizes[0] = (uint32_t)atoi(size) - 4;
    }
    int want4 = strcmp(family, "6") != 0, want6 = strcmp(family, "4") != 0;
    uint8_t a4[4], b4[4], a6[16], b6[16];
    if (want4 && (!src4 || !dst4 || inet_pton(AF_INET, src4, a4) != 1 || inet_pton(AF_INET, dst4, b4) != 1)) usage();
    if (want6 && (!src6 || !dst6 || inet_pton(AF_INET6, src6, a6) != 1 || inet_pton(AF_INET6, dst6, b6) != 1)) usage();
    for (int s = 0; s < size_count; s++) {
        if (want4) {
            build(&templates[template_count], dmac, smac, 4, a4, b4, proto, syn, dport, sizes[s]);
            templates[template_count++].weight = weights[s];
        }
        if (want6) {
            build(&templates[template_count], dmac, smac, 6, a6, b6, proto, syn, dport, sizes[s]);
            templates[template_count++].weight = weights[s];
        }
    }

    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &unlimited);
    struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
    if (!obj || bpf_object__load(obj)) { fprintf(stderr, "xdpgen: cannot load %s\n", obj_path); return 1; }
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, "xdp_gen");
    if (!prog) { fprintf(stderr, "xdpgen: no xdp_gen in %s\n", obj_path); return 1; }
    prog_fd = bpf_program__fd(prog);
    // Every XDP BPF_PROG_RUN puts its program into the kernel's XDP dispatcher and takes it out
    // again, each change costing a synchronize_rcu() (tens of ms on a busy VM: it capped the rate
    // at about 0.1 Mpps). A program the dispatcher already holds changes nothing: attach xdp_gen
    // natively to an idle interface (through a link, gone when this process ends).
    struct bpf_link *hold = NULL;
    if (hold_dev) {
        hold = bpf_program__attach_xdp(prog, (int)if_nametoindex(hold_dev));
        if (!hold) fprintf(stderr, "xdpgen: cannot attach to --hold-dev %s (slow runs): %s\n", hold_dev, strerror(errno));
    }
    int cfg_fd = bpf_object__find_map_fd_by_name(obj, "gen_config");
    int counter_fd = bpf_object__find_map_fd_by_name(obj, "gen_counter");
    uint32_t zero = 0;
    struct gen_config cfg = {.flows = flows, .ports = flows && flows < 60000 ? flows : 60000, .port_base = 1024};
    if (bpf_map_update_elem(cfg_fd, &zero, &cfg, 0)) { perror("xdpgen: gen_config"); return 1; }
    // Each CPU starts at its own offset: distinct flows per thread, unique tuples for --flows 0.
    int possible = libbpf_num_possible_cpus();
    uint64_t *starts = calloc((size_t)possible, sizeof *starts);
    for (int c = 0; c < possible; c++) starts[c] = flows ? (uint64_t)c * (flows / (uint32_t)(cpu_count ? cpu_count : 1)) : (uint64_t)c << 28;
    for (int i = 0; i < cpu_count; i++) starts[cpu_list[i]] = flows ? (uint64_t)i * (flows / (uint32_t)cpu_count) : (uint64_t)i << 28;
    if (bpf_map_update_elem(counter_fd, &zero, starts, 0)) { perror("xdpgen: gen_counter"); return 1; }
    // Pristine headers, restored by the program on every run (pages keep what receivers wrote).
    int headers_fd = bpf_object__find_map_fd_by_name(obj, "gen_headers");
    for (int i = 0; i < template_count; i++) {
        struct gen_header header = {0};
        int v6 = templates[i].bytes[12] == 0x86;
        header.length = 14 + (v6 ? 40 : 20) + (proto == IPPROTO_UDP ? 8 : 20);
        memcpy(header.bytes, templates[i].bytes, header.length);
        uint32_t key = templates[i].length | (v6 ? 1u << 16 : 0);
        if (bpf_map_update_elem(headers_fd, &key, &header, 0)) { perror("xdpgen: gen_headers"); return 1; }
    }

    pthread_t threads[64];
    double start = now();
    for (int i = 0; i < cpu_count; i++) pthread_create(&threads[i], NULL, generate, (void *)(long)cpu_list[i]);
    for (int i = 0; i < cpu_count; i++) pthread_join(threads[i], NULL);
    double elapsed = now() - start;
    unsigned long sent = atomic_load(&total_sent);
    printf("sent=%lu seconds=%.3f pps=%.0f\n", sent, elapsed, sent / elapsed);
    return 0;
}

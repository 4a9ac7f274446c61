// xskfwd: the AF_XDP baseline (issue 3 "Measure as you go", issue 6 "The harness"): the least a
// C program must do to forward through AF_XDP sockets in the topology Sluice runs in. Per queue q,
// one pinned thread owns a socket on queue q of the inside interface (receive, fill ring) and one on
// queue q of the outside interface (transmit, completion ring), sharing one UMEM, so a frame is
// never copied in user space: receive → rewrite MACs, decrement TTL / hop limit (incremental IPv4
// checksum, RFC 1624) → transmit → completion → fill. No policy, no flow table, no neighbour
// lookup (the next hop's MAC is an argument). The xdp_xsk program of bench_kern.c steers IPv4 and
// IPv6 into the sockets and passes the rest (ARP) to the kernel.
//
// Runs until stdin closes or SIGINT/SIGTERM, then prints one line:
//   forwarded=N dropped=N busy_cycles=N busy_cycles_per_packet=X
// busy cycles: TSC cycles from a non-empty receive to the end of that batch's transmit kick, summed
// over the workers: the cost of forwarding, without the idle polling between batches.
//
//   xskfwd --in gin --out gout --dst-mac MAC [--queues N] [--cpus 0,1] [--busy-poll] [--one-kick] [--obj bench_kern.o]
// --one-kick: one transmit kick per batch and drop what does not fit in the transmit ring (no
// waiting): the experiment that shows the cost of copy mode's 32 frames per sendto.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <x86intrin.h>
#include <xdp/xsk.h>

#define FRAMES 4096
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define BATCH 64

struct worker {
    int queue, cpu;
    void *area;
    struct xsk_umem *umem;
    struct xsk_ring_prod fill, unused_fill;
    struct xsk_ring_cons comp, unused_comp;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    struct xsk_socket *in, *out;
    uint64_t forwarded, dropped, busy_cycles;
    pthread_t thread;
};

static atomic_int stopping;
static int busy_poll, one_kick;
static uint8_t dst_mac[6], src_mac[6];
static const char *in_name, *out_name;

static void stop(int sig) { (void)sig; atomic_store(&stopping, 1); }

static void *watch_stdin(void *arg)
{
    (void)arg;
    char buffer[256];
    while (read(0, buffer, sizeof buffer) > 0) {}
    atomic_store(&stopping, 1);
    return NULL;
}

static int mac_of(const char *name, uint8_t mac[6])
{
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    int ok = ioctl(sock, SIOCGIFHWADDR, &ifr) == 0;
    if (ok) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    close(sock);
    return ok;
}

// Rewrites the frame for the next hop; returns 0 when it must be dropped (TTL, not IP, too short).
static inline int rewrite(uint8_t *frame, uint32_t length)
{
    if (length < 14 + 20) return 0;
    uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
    uint8_t *ip = frame + 14;
    if (type == ETH_P_IP) {
        if (ip[8] <= 1) return 0;
        // TTL is the high byte of the 16-bit word at offset 8: the word drops by 0x0100.
        uint16_t check = (uint16_t)(ip[10] << 8 | ip[11]);
        uint32_t sum = (uint32_t)check + 0x0100;
        sum = (sum & 0xffff) + (sum >> 16);
        ip[8]--;
        ip[10] = (uint8_t)(sum >> 8);
        ip[11] = (uint8_t)sum;
    } else if (type == ETH_P_IPV6) {
        if (length < 14 + 40 || ip[7] <= 1) return 0;
        ip[7]--;
    } else {
        return 0;
    }
    memcpy(frame, dst_mac, 6);
    memcpy(frame + 6, src_mac, 6);
    return 1;
}

// Completed transmissions go back to the fill ring of the inside socket.
static void recycle(struct worker *w)
{
    uint32_t done_index, fill_index;
    uint32_t done = xsk_ring_cons__peek(&w->comp, BATCH * 4, &done_index);
    if (!done) return;
    while (xsk_ring_prod__reserve(&w->fill, done, &fill_index) != done) {}
    for (uint32_t i = 0; i < done; i++)
        *xsk_ring_prod__fill_addr(&w->fill, fill_index + i) = *xsk_ring_cons__comp_addr(&w->comp, done_index + i);
    xsk_ring_prod__submit(&w->fill, done);
    xsk_ring_cons__release(&w->comp, done);
}

static void *forward(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    int in_fd = xsk_socket__fd(w->in), out_fd = xsk_socket__fd(w->out);
    struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        recycle(w);
        uint32_t rx_index, tx_index;
        uint32_t received = xsk_ring_cons__peek(&w->rx, BATCH, &rx_index);
        if (!received) {
            if (xsk_ring_prod__needs_wakeup(&w->fill)) recvfrom(in_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
            if (!busy_poll) poll(&pfd, 1, 1);
            continue;
        }
        uint64_t start = __rdtsc();
        uint32_t reserved = xsk_ring_prod__reserve(&w->tx, received, &tx_index);
        if (one_kick && reserved < received) { // --one-kick: drop what does not fit, as a worker that never waits
            w->tx.cached_prod -= reserved;
            reserved = 0;
            uint32_t fill_index;
            while (xsk_ring_prod__reserve(&w->fill, received, &fill_index) != received) {}
            for (uint32_t i = 0; i < received; i++)
                *xsk_ring_prod__fill_addr(&w->fill, fill_index + i) = xsk_ring_cons__rx_desc(&w->rx, rx_index + i)->addr;
            xsk_ring_prod__submit(&w->fill, received);
            xsk_ring_cons__release(&w->rx, received);
            w->dropped += received;
            sendto(out_fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
            w->busy_cycles += __rdtsc() - start;
            continue;
        }
        while (reserved < received) { // transmit ring full: kick it and wait for room
            sendto(out_fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
            recycle(w);
            reserved = xsk_ring_prod__reserve(&w->tx, received, &tx_index);
        }
        uint32_t sent = 0, fill_index;
        uint64_t dropped_addrs[BATCH];
        uint32_t dropped = 0;
        for (uint32_t i = 0; i < received; i++) {
            const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&w->rx, rx_index + i);
            uint8_t *frame = xsk_umem__get_data(w->area, desc->addr);
            if (rewrite(frame, desc->len)) {
                struct xdp_desc *out = xsk_ring_prod__tx_desc(&w->tx, tx_index + sent++);
                out->addr = desc->addr;
                out->len = desc->len;
                out->options = 0;
            } else {
                dropped_addrs[dropped++] = xsk_umem__extract_addr(desc->addr);
            }
        }
        xsk_ring_cons__release(&w->rx, received);
        if (sent < reserved) w->tx.cached_prod -= reserved - sent; // give back unused slots
        xsk_ring_prod__submit(&w->tx, sent);
        if (dropped) {
            while (xsk_ring_prod__reserve(&w->fill, dropped, &fill_index) != dropped) {}
            for (uint32_t i = 0; i < dropped; i++) *xsk_ring_prod__fill_addr(&w->fill, fill_index + i) = dropped_addrs[i];
            xsk_ring_prod__submit(&w->fill, dropped);
        }
        // Copy mode transmits only inside sendmsg: every batch needs its kick.
        if (sent && xsk_ring_prod__needs_wakeup(&w->tx)) sendto(out_fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
        w->forwarded += sent;
        w->dropped += dropped;
        w->busy_cycles += __rdtsc() - start;
    }
    return NULL;
}

static int setup(struct worker *w, int xsks_fd)
{
    size_t size = (size_t)FRAMES * FRAME_SIZE;
    w->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w->area == MAP_FAILED) return -errno;
    struct xsk_umem_config ucfg = {.fill_size = FRAMES, .comp_size = FRAMES, .frame_size = FRAME_SIZE,
                                   .frame_headroom = 0};
    int err = xsk_umem__create(&w->umem, w->area, size, &w->fill, &w->comp, &ucfg);
    if (err) return err;
    struct xsk_socket_config cfg = {.rx_size = 2048, .tx_size = 2048,
                                    .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                                    .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP};
    // Inside socket: receive + the UMEM's own fill/completion rings. Outside socket: transmit, with
    // the rings of its own (unused) fill and completion pair... except that transmit completions
    // come back on the outside socket's completion ring, so the roles are swapped below.
    err = xsk_socket__create_shared(&w->in, in_name, (uint32_t)w->queue, w->umem, &w->rx, NULL,
                                    &w->fill, &w->unused_comp, &cfg);
    if (err) return err;
    err = xsk_socket__create_shared(&w->out, out_name, (uint32_t)w->queue, w->umem, NULL, &w->tx,
                                    &w->unused_fill, &w->comp, &cfg);
    if (err) return err;
    err = xsk_socket__update_xskmap(w->in, xsks_fd);
    if (err) return err;
    uint32_t index;
    if (xsk_ring_prod__reserve(&w->fill, FRAMES, &index) != FRAMES) return -ENOSPC;
    for (uint32_t i = 0; i < FRAMES; i++) *xsk_ring_prod__fill_addr(&w->fill, index + i) = (uint64_t)i * FRAME_SIZE;
    xsk_ring_prod__submit(&w->fill, FRAMES);
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6;
}

int main(int argc, char **argv)
{
    const char *obj_path = "bench_kern.o", *cpus = NULL;
    int queues = 1, have_mac = 0;
    static struct option options[] = {{"in", 1, 0, 'i'}, {"out", 1, 0, 'o'}, {"dst-mac", 1, 0, 'm'},
                                      {"queues", 1, 0, 'q'}, {"cpus", 1, 0, 'c'}, {"busy-poll", 0, 0, 'b'}, {"one-kick", 0, 0, 'k'},
                                      {"obj", 1, 0, 'O'}, {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'i': in_name = optarg; break;
        case 'o': out_name = optarg; break;
        case 'm': have_mac = parse_mac(optarg, dst_mac); break;
        case 'q': queues = atoi(optarg); break;
        case 'c': cpus = optarg; break;
        case 'b': busy_poll = 1; break;
        case 'k': one_kick = 1; break;
        case 'O': obj_path = optarg; break;
        default: goto usage;
        }
    }
    if (!in_name || !out_name || !have_mac || queues < 1 || queues > 64) {
    usage:
        fprintf(stderr, "usage: xskfwd --in IF --out IF --dst-mac MAC [--queues N] [--cpus 0,1] [--busy-poll] [--obj F]\n");
        return 2;
    }
    if (!mac_of(out_name, src_mac)) { fprintf(stderr, "xskfwd: no interface %s\n", out_name); return 1; }
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &unlimited);
    signal(SIGINT, stop);
    signal(SIGTERM, stop);

    struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
    if (!obj || bpf_object__load(obj)) { fprintf(stderr, "xskfwd: cannot load %s\n", obj_path); return 1; }
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, "xdp_xsk");
    int xsks_fd = bpf_object__find_map_fd_by_name(obj, "xsks");
    // Through a BPF link: the program goes away with this process, even after a crash.
    struct bpf_link *link = bpf_program__attach_xdp(prog, (int)if_nametoindex(in_name));
    if (!link) { fprintf(stderr, "xskfwd: cannot attach xdp_xsk to %s: %s\n", in_name, strerror(errno)); return 1; }

    struct worker *workers = calloc((size_t)queues, sizeof *workers);
    char *list = cpus ? strdup(cpus) : NULL, *tok = list ? strtok(list, ",") : NULL;
    for (int q = 0; q < queues; q++) {
        workers[q].queue = q;
        workers[q].cpu = tok ? atoi(tok) : q;
        if (tok) tok = strtok(NULL, ",");
        int err = setup(&workers[q], xsks_fd);
        if (err) { fprintf(stderr, "xskfwd: queue %d: %s\n", q, strerror(-err)); return 1; }
    }
    for (int q = 0; q < queues; q++) pthread_create(&workers[q].thread, NULL, forward, &workers[q]);
    printf("ready\n");
    fflush(stdout);
    pthread_t watcher;
    pthread_create(&watcher, NULL, watch_stdin, NULL);
    pthread_detach(watcher);
    uint64_t forwarded = 0, dropped = 0, busy = 0;
    for (int q = 0; q < queues; q++) {
        pthread_join(workers[q].thread, NULL);
        forwarded += workers[q].forwarded;
        dropped += workers[q].dropped;
        busy += workers[q].busy_cycles;
    }
    for (int q = 0; q < queues; q++) {
        xsk_socket__delete(workers[q].out);
        xsk_socket__delete(workers[q].in);
        xsk_umem__delete(workers[q].umem);
    }
    bpf_link__destroy(link);
    printf("forwarded=%lu dropped=%lu busy_cycles=%lu busy_cycles_per_packet=%.0f\n", (unsigned long)forwarded,
           (unsigned long)dropped, (unsigned long)busy, forwarded ? (double)busy / forwarded : 0.0);
    return 0;
}

// xskgen: the benchmark's AF_XDP traffic generator (issue 6: "XDP live frames and AF_XDP"), the
// second mode next to xdpgen.c, with the same frames, flows, command line and result line
// (genframes.h). Per CPU of --cpus one pinned thread owns a transmit-only AF_XDP socket (libxdp's
// xsk API, copy mode: veth has no zero-copy) on its own queue of --dev, with a UMEM of pre-written
// frames: slot s holds template s % L of an interleaved IMIX pattern of length L (7:4:1 of 64, 594
// and 1518 bytes; IPv4 and IPv6 alternate with --family mix). Per frame only the flow tuple is
// stamped (source port, low 16 bits of the source address, checksums updated incrementally: what
// xdp_gen of bench_kern.c does in the kernel), so frame n is flow n % flows in both generators.
// Batches of 64 descriptors; copy mode transmits only inside sendmsg and at most 32 frames per call
// on these kernels (notes/afxdp-on-these-machines.md), so each batch is kicked until the kernel has
// taken the whole ring; completed slots come back through the completion ring into a FIFO, so slots
// (and the IMIX pattern) are used round-robin.
// No XDP program is needed anywhere for transmit only: the socket has no rx ring and libxdp is told
// not to load its program (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD).
// Runs --seconds, or until SIGINT/SIGTERM, then prints `sent=N seconds=S pps=R` (frames the kernel
// took from the transmit rings, as xdpgen counts frames it XDP_TX'd: some may be dropped later).
//
//   xskgen --dev c0 --dst-mac MAC --src4 A --dst4 B [--src6 A --dst6 B] [--family 4|6|mix]
//          [--proto udp|tcp|syn] [--size 64|imix|BYTES] [--flows N] [--dport P] [--seconds S]
//          [--cpus 0,1] [--rate PPS]
// Thread i sends on queue i: with more CPUs than --dev has transmit queues, the extra CPUs stay
// unused (said on stderr): each queue takes one UMEM, and a second socket on it would share its
// completion ring across threads.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/if_xdp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <xdp/xsk.h>

#include "genframes.h"

#define SLOTS 4096 // UMEM frames per socket (a power of two: the free FIFO masks with SLOTS - 1)
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define BATCH 64
#define TX_SIZE 256
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9 // linux/if_xdp.h from 6.17 (the build host's headers may be older)
#endif

struct worker {
    int index, cpu;
    void *area;
    uint32_t slots;                 // slots in use: a multiple of the pattern length
    struct xsk_umem *umem;
    struct xsk_ring_prod fill;      // required by the UMEM, never used
    struct xsk_ring_cons comp;
    struct xsk_ring_prod tx;
    struct xsk_socket *xsk;
    uint64_t free_addr[SLOTS];      // FIFO of slots not in flight
    uint32_t free_head, free_tail;  // free running counters
    unsigned long sent;
    pthread_t thread;
};

static struct gen_args args;
static atomic_int stopping;
static uint8_t pattern[64];         // template index of slot s % pattern_length
static uint32_t pattern_length;

static void stop(int sig) { (void)sig; atomic_store(&stopping, 1); }

// IMIX weights interleaved (smooth weighted round-robin), so that a batch holds a mix of sizes
// rather than runs of one size.
static void make_pattern(void)
{
    int32_t total = 0, current[8] = {0};
    for (int i = 0; i < args.template_count; i++) total += (int32_t)args.templates[i].weight;
    for (int32_t k = 0; k < total && k < 64; k++) {
        int best = 0;
        for (int i = 0; i < args.template_count; i++) {
            current[i] += (int32_t)args.templates[i].weight;
            if (current[i] > current[best]) best = i;
        }
        current[best] -= total;
        pattern[pattern_length++] = (uint8_t)best;
    }
}

static uint32_t slot_length(uint64_t addr) { return args.templates[pattern[(addr / FRAME_SIZE) % pattern_length]].length; }

// Completed slots back into the free FIFO.
static void recycle(struct worker *w)
{
    uint32_t index, done = xsk_ring_cons__peek(&w->comp, SLOTS, &index);
    for (uint32_t i = 0; i < done; i++)
        w->free_addr[w->free_tail++ & (SLOTS - 1)] = *xsk_ring_cons__comp_addr(&w->comp, index + i);
    if (done) xsk_ring_cons__release(&w->comp, done);
}

// Descriptors still in the transmit ring (not yet taken by the kernel).
static uint32_t in_ring(struct worker *w) { return w->tx.size - xsk_prod_nb_free(&w->tx, w->tx.size); }

static void *generate(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    int fd = xsk_socket__fd(w->xsk);
    uint64_t n = gen_start(w->index, args.cpu_count, args.flows);
    double start = gen_now(), end = start + args.seconds, per_thread = args.rate / args.cpu_count;
    // At a set rate, about 1/2000 s worth per batch, so pacing stays smooth at low rates.
    uint32_t batch = BATCH;
    if (args.rate > 0 && per_thread / 2000 < BATCH) batch = per_thread / 2000 < 1 ? 1 : (uint32_t)(per_thread / 2000);
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        double t = gen_now();
        if (t >= end) break;
        if (args.rate > 0) {
            double due = start + w->sent / per_thread; // when `sent` frames are due at the target rate
            if (due >= end) break;
            if (due > t) { // short sleeps: a signal ends the run soon
                struct timespec sleep = {0, (long)((due - t > 0.01 ? 0.01 : due - t) * 1e9)};
                nanosleep(&sleep, NULL);
                continue;
            }
        }
        recycle(w);
        uint32_t count = w->free_tail - w->free_head, index;
        if (count > batch) count = batch;
        if (!count || xsk_ring_prod__reserve(&w->tx, count, &index) != count) { // all slots in flight
            sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
            continue;
        }
        for (uint32_t i = 0; i < count; i++) {
            uint64_t addr = w->free_addr[w->free_head++ & (SLOTS - 1)];
            gen_stamp(xsk_umem__get_data(w->area, addr), n++, args.flows);
            struct xdp_desc *desc = xsk_ring_prod__tx_desc(&w->tx, index + i);
            desc->addr = addr;
            desc->len = slot_length(addr);
            desc->options = 0;
        }
        xsk_ring_prod__submit(&w->tx, count);
        // Kick until the kernel has taken the whole batch (at most 32 frames per sendto in copy
        // mode). EAGAIN/EBUSY: the completion ring or the device is full for now: recycle, retry.
        while (in_ring(w) && !atomic_load_explicit(&stopping, memory_order_relaxed)) {
            if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN && errno != EBUSY &&
                errno != ENOBUFS && errno != EINTR) {
                fprintf(stderr, "xskgen: sendto on queue %d: %s\n", w->index, strerror(errno));
                exit(1);
            }
            recycle(w);
        }
        w->sent += count - in_ring(w);
    }
    return NULL;
}

static int setup(struct worker *w)
{
    w->slots = SLOTS / pattern_length * pattern_length;
    size_t size = (size_t)SLOTS * FRAME_SIZE;
    w->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w->area == MAP_FAILED) return -errno;
    // Pre-written frames: each slot its template once; afterwards only the tuple changes.
    for (uint32_t s = 0; s < w->slots; s++) {
        const struct template *t = &args.templates[pattern[s % pattern_length]];
        memcpy((uint8_t *)w->area + (size_t)s * FRAME_SIZE, t->bytes, t->length);
        w->free_addr[w->free_tail++] = (uint64_t)s * FRAME_SIZE;
    }
    struct xsk_umem_config ucfg = {.fill_size = XSK_RING_PROD__DEFAULT_NUM_DESCS, .comp_size = SLOTS,
                                   .frame_size = FRAME_SIZE, .frame_headroom = 0};
    int err = xsk_umem__create(&w->umem, w->area, size, &w->fill, &w->comp, &ucfg);
    if (err) return err;
    struct xsk_socket_config cfg = {.tx_size = TX_SIZE, .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                                    .bind_flags = XDP_COPY};
    err = xsk_socket__create(&w->xsk, args.dev, (uint32_t)w->index, w->umem, NULL, &w->tx, &cfg);
    if (err) return err;
    // Kernels from 6.17 let one sendto take more than 32 descriptors in copy mode: a whole batch
    // per kick. Older kernels refuse the option and keep 32 (the kick loop covers both). Measured on
    // 6.18: no change in rate (32, 64 or 256 per call) — the syscalls are not what costs.
    unsigned int budget = BATCH;
    setsockopt(xsk_socket__fd(w->xsk), SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget);
    return 0;
}

// Transmit queues of the interface (sysfs of the current network namespace).
static int tx_queues(const char *dev)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/queues", dev);
    DIR *dir = opendir(path);
    if (!dir) return 1;
    int count = 0;
    for (struct dirent *e; (e = readdir(dir));) count += strncmp(e->d_name, "tx-", 3) == 0;
    closedir(dir);
    return count ? count : 1;
}

int main(int argc, char **argv)
{
    gen_parse(&args, argc, argv, "xskgen", 0);
    make_pattern();
    int queues = tx_queues(args.dev);
    if (args.cpu_count > queues) {
        fprintf(stderr, "xskgen: %s has %d transmit queue(s): %d of the %d CPUs in --cpus send\n", args.dev, queues,
                queues, args.cpu_count);
        args.cpu_count = queues;
    }
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &unlimited);
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    struct worker *workers = calloc((size_t)args.cpu_count, sizeof *workers);
    for (int i = 0; i < args.cpu_count; i++) {
        workers[i].index = i;
        workers[i].cpu = args.cpu_list[i];
        int err = setup(&workers[i]);
        if (err) { fprintf(stderr, "xskgen: socket on %s queue %d: %s\n", args.dev, i, strerror(-err)); return 1; }
    }
    double start = gen_now();
    for (int i = 0; i < args.cpu_count; i++) pthread_create(&workers[i].thread, NULL, generate, &workers[i]);
    unsigned long sent = 0;
    for (int i = 0; i < args.cpu_count; i++) {
        pthread_join(workers[i].thread, NULL);
        sent += workers[i].sent;
    }
    double elapsed = gen_now() - start;
    for (int i = 0; i < args.cpu_count; i++) {
        struct xdp_statistics stats;
        socklen_t len = sizeof stats;
        if (!getsockopt(xsk_socket__fd(workers[i].xsk), SOL_XDP, XDP_STATISTICS, &stats, &len) && stats.tx_invalid_descs)
            fprintf(stderr, "xskgen: queue %d: %llu invalid descriptors\n", i, (unsigned long long)stats.tx_invalid_descs);
        xsk_socket__delete(workers[i].xsk);
        xsk_umem__delete(workers[i].umem);
    }
    gen_report(sent, elapsed);
    return 0;
}

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
// Frames, flow tuples, the command line and the result line: genframes.h, shared with xskgen.c.
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

#include "genframes.h"

struct gen_config { uint32_t flows, ports; uint16_t port_base, pad; };

struct gen_header { uint8_t bytes[80]; uint32_t length; };

static struct gen_args args;
static int prog_fd, ifindex;
static atomic_ulong total_sent;

static void *generate(void *arg)
{
    int cpu = (int)(long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    struct xdp_md ctx = { .ingress_ifindex = (uint32_t)ifindex };
    double start = gen_now(), end = start + args.seconds, rate = args.rate, per_thread = rate / args.cpu_count;
    // Frames per BPF_PROG_RUN call and template weight unit: large at full rate (fewer syscalls),
    // about 1/200 s worth when a rate is set, so pacing stays smooth.
    uint32_t chunk = 4096;
    if (rate > 0 && per_thread / 200 < chunk) chunk = per_thread / 200 < 16 ? 16 : (uint32_t)(per_thread / 200);
    unsigned long sent = 0;
    while (1) {
        for (int i = 0; i < args.template_count; i++) {
            ctx.data_end = args.templates[i].length; // the kernel wants the context to describe the frame
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = args.templates[i].bytes,
                        .data_size_in = args.templates[i].length, .ctx_in = &ctx, .ctx_size_in = sizeof ctx,
                        .repeat = chunk * args.templates[i].weight, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                        .batch_size = 64);
            int err = bpf_prog_test_run_opts(prog_fd, &opts);
            if (err) {
                fprintf(stderr, "xdpgen: BPF_PROG_RUN failed on cpu %d: %s\n", cpu, strerror(errno));
                exit(1);
            }
            sent += opts.repeat;
        }
        double t = gen_now();
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

int main(int argc, char **argv)
{
    gen_parse(&args, argc, argv, "xdpgen", 1);
    const char *obj_path = args.obj_path ? args.obj_path : "bench_kern.o";
    uint32_t flows = args.flows;
    int cpu_count = args.cpu_count;
    ifindex = (int)if_nametoindex(args.dev);

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
    if (args.hold_dev) {
        hold = bpf_program__attach_xdp(prog, (int)if_nametoindex(args.hold_dev));
        if (!hold) fprintf(stderr, "xdpgen: cannot attach to --hold-dev %s (slow runs): %s\n", args.hold_dev, strerror(errno));
    }
    int cfg_fd = bpf_object__find_map_fd_by_name(obj, "gen_config");
    int counter_fd = bpf_object__find_map_fd_by_name(obj, "gen_counter");
    uint32_t zero = 0;
    struct gen_config cfg = {.flows = flows, .ports = gen_ports(flows), .port_base = GEN_PORT_BASE};
    if (bpf_map_update_elem(cfg_fd, &zero, &cfg, 0)) { perror("xdpgen: gen_config"); return 1; }
    // Each CPU starts at its own offset: distinct flows per thread, unique tuples for --flows 0.
    int possible = libbpf_num_possible_cpus();
    uint64_t *starts = calloc((size_t)possible, sizeof *starts);
    for (int c = 0; c < possible; c++) starts[c] = gen_start(c, cpu_count, flows);
    for (int i = 0; i < cpu_count; i++) starts[args.cpu_list[i]] = gen_start(i, cpu_count, flows);
    if (bpf_map_update_elem(counter_fd, &zero, starts, 0)) { perror("xdpgen: gen_counter"); return 1; }
    // Pristine headers, restored by the program on every run (pages keep what receivers wrote).
    int headers_fd = bpf_object__find_map_fd_by_name(obj, "gen_headers");
    for (int i = 0; i < args.template_count; i++) {
        struct gen_header header = {0};
        int v6 = args.templates[i].bytes[12] == 0x86;
        header.length = gen_header_length(&args.templates[i]);
        memcpy(header.bytes, args.templates[i].bytes, header.length);
        uint32_t key = args.templates[i].length | (v6 ? 1u << 16 : 0);
        if (bpf_map_update_elem(headers_fd, &key, &header, 0)) { perror("xdpgen: gen_headers"); return 1; }
    }

    pthread_t threads[64];
    double start = gen_now();
    for (int i = 0; i < cpu_count; i++) pthread_create(&threads[i], NULL, generate, (void *)(long)args.cpu_list[i]);
    for (int i = 0; i < cpu_count; i++) pthread_join(threads[i], NULL);
    double elapsed = gen_now() - start;
    gen_report(atomic_load(&total_sent), elapsed);
    return 0;
}

// Pinning worker threads to cores and giving them the process's priority. The CPU_SET macros and
// pthread_setaffinity_np are behind _GNU_SOURCE, so the work is done by CSluiceSystem's sluice_* shim;
// this file gives it Swift errors. A pinned worker keeps its queue's cache lines and its per-CPU
// BPF counters local.

import CSluiceSystem

/// Thread placement on CPUs. Callable from any thread; each call affects only the caller.
public enum CPUAffinity {
    /// Pins the calling thread to `cpu`.
    public static func pinCurrentThread(to cpu: Int) throws(SystemError) {
        let status = sluice_pin_current_thread(Int32(cpu))
        if status != 0 { throw SystemError("pthread_setaffinity_np(cpu \(cpu))", code: status) }
    }

    /// The CPU the calling thread is running on now.
    public static func currentCPU() throws(SystemError) -> Int {
        Int(try System.check("sched_getcpu") { sluice_current_cpu() })
    }

    /// Gives the calling thread the nice level of the process's main thread, and a name for `top -H`
    /// and `ps -L`. Linux keeps nice per thread, and a thread inherits its creator's: workers
    /// started from a Swift concurrency task would run at the nice of that dispatch thread (0, or
    /// whatever libdispatch chose), not at the level the operator started the gateway with —
    /// measured: under `nice -n -19` with one busy nice-0 process on the worker's core, the worker
    /// got half the core and forwarded 0.37 Mpps where the C AF_XDP loop (plain pthreads) kept 0.83.
    public static func adoptProcessPriority(name: String) throws(SystemError) {
        _ = name.withCString { sluice_set_current_thread_name($0) }
        let status = sluice_adopt_process_nice()
        if status != 0 { throw SystemError("getpriority/setpriority(the process's nice)", code: status) }
    }
}

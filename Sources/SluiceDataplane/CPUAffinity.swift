// Pinning worker threads to cores. The CPU_SET macros and pthread_setaffinity_np are behind
// _GNU_SOURCE, so the work is done by CSluiceXDP's sluice_* shim; this file gives it Swift
// errors. A pinned worker keeps its queue's cache lines and its per-CPU BPF counters local.

import CSluiceXDP

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
}

// Every system and libbpf/libxdp call the dataplane makes goes through here: each wrapper is
// @inline(never) and reads errno right after the call, before Swift code (ARC, allocation)
// can run and clobber it. Failures become a `SystemError` that names the call and the errno.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSluiceXDP

/// A failed system or library call: which operation, and the errno it reported.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    /// What was attempted, e.g. `"setsockopt(XDP_STATISTICS)"` or `"bpf_object__load(obj)"`.
    public var operation: String
    /// The errno value (positive).
    public var code: Int32

    /// An error for `operation` with errno `code` (the sign is ignored: libbpf returns -errno).
    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code < 0 ? -code : code
    }

    public var description: String {
        let text = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return "\(operation): \(text) (errno \(code))"
    }
}

/// A dataplane failure that is not one call's errno: a missing file, a map absent from the
/// BPF object, an interface that does not exist, a program of someone else's in the way.
public struct DataplaneError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in words an operator can act on.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Thin errno-preserving wrappers. Callable from any thread.
enum System {
    /// Runs a call that returns a negative value (libbpf: -errno, libc: -1 with errno) on failure.
    @inline(never)
    static func check(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(SystemError) -> Int32 {
        let result = call()
        if result < 0 {
            let code = result == -1 ? errno : -result
            throw SystemError(operation(), code: code)
        }
        return result
    }

    /// Runs a call that returns a pointer, or nil with errno set.
    @inline(never)
    static func checkPointer<T>(
        _ operation: @autoclosure () -> String, _ call: () -> T?
    ) throws(SystemError) -> T {
        errno = 0
        guard let result = call() else {
            let code = errno
            throw SystemError(operation(), code: code == 0 ? EINVAL : code)
        }
        return result
    }

    /// `if_nametoindex`, failing with the interface name in the message.
    @inline(never)
    static func interfaceIndex(_ name: String) throws(SystemError) -> Int32 {
        let index = if_nametoindex(name)
        if index == 0 { throw SystemError("if_nametoindex(\(name))", code: errno) }
        return Int32(index)
    }

    /// Raises RLIMIT_MEMLOCK to unlimited, best effort. Kernels since 5.11 charge BPF maps to
    /// the memory cgroup instead, and CAP_IPC_LOCK exempts the UMEM, so a refusal (no
    /// CAP_SYS_RESOURCE, as in containers) is not an error by itself; an UMEM that still
    /// exceeds the limit fails later with ENOBUFS, named by `Umem.init`. Returns whether raised.
    @inline(never)
    @discardableResult
    static func raiseMemlockLimit() -> Bool {
        sluice_raise_memlock_limit() == 0
    }

    /// Wakes the kernel to process the rx/fill rings (need_wakeup set): a zero-length
    /// non-blocking recvfrom, as the kernel's AF_XDP documentation does. EAGAIN, EBUSY and
    /// ENOBUFS only mean "try again next batch".
    @inline(never)
    static func kickReceive(_ fd: Int32) {
        _ = recvfrom(fd, nil, 0, Int32(MSG_DONTWAIT), nil, nil)
    }

    /// Wakes the kernel to transmit what the tx ring holds. Returns true when it stopped with
    /// descriptors left (EAGAIN): copy mode sends at most 32 frames per call, so a batch of 64
    /// needs two kicks, and one kick per batch lets the ring fill up and frames be dropped.
    @inline(never)
    @discardableResult
    static func kickTransmit(_ fd: Int32) -> Bool {
        sendto(fd, nil, 0, Int32(MSG_DONTWAIT), nil, 0) < 0 && errno == EAGAIN
    }

    /// Kicks until the kernel has taken everything the tx ring holds, or says it cannot take
    /// more now (EBUSY/ENOBUFS: the device queue is full), at most `limit` times.
    @inline(__always)
    static func drainTransmit(_ fd: Int32, limit: Int = 8) {
        var kicks = 0
        while kicks < limit && kickTransmit(fd) { kicks += 1 }
    }
}

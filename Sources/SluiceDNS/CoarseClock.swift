// The clock learned addresses and cached answers expire by: monotonic milliseconds from
// CLOCK_MONOTONIC_COARSE (a vDSO read of a few nanoseconds, no syscall, no allocation), which the packet
// hot path can afford on every lookup. A few milliseconds of resolution is plenty for TTLs in seconds.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Monotonic time in milliseconds. Stateless; callable from any thread.
public enum CoarseClock {
    /// Milliseconds since an arbitrary fixed point (boot), never going backwards.
    @inline(__always)
    public static func nowMilliseconds() -> UInt64 {
        var spec = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC_COARSE, &spec)
        #else
        clock_gettime(CLOCK_MONOTONIC, &spec)
        #endif
        return UInt64(spec.tv_sec) &* 1000 &+ UInt64(spec.tv_nsec) / 1_000_000
    }

    /// The wall-clock time of a monotonic instant, for reports (`expires_at` in the API).
    public static func date(ofMilliseconds instant: UInt64, now: UInt64 = nowMilliseconds()) -> Date {
        Date(timeIntervalSinceNow: (Double(instant) - Double(now)) / 1000)
    }
}

extension CoarseClock {
    /// Monotonic microseconds from the precise clock, for latency measurements (not for expiry).
    public static func preciseMicroseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000 &+ UInt64(spec.tv_nsec) / 1000
    }
}

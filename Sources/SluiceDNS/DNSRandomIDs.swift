// Random 16-bit DNS ids for the upstream leg, drawn from a buffer of kernel randomness. Asking the kernel
// once per query (`UInt16.random`, one getrandom(2) each) cost ~2.5 % of the forwarding loop's CPU in the
// cache-hostile dns-bench profile; one call per 256 ids keeps the ids as unpredictable (they still come
// from the kernel's CSPRNG via glibc's arc4random_buf) at a 256th of the system calls.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffer of random query ids. Not thread-safe: one per UDP thread (each `DNSUpstreamPool` owns one).
struct DNSRandomIDs {
    /// Ids drawn per refill.
    static let batch = 256
    private var buffer = [UInt16](repeating: 0, count: DNSRandomIDs.batch)
    private var position = DNSRandomIDs.batch

    /// The next random id.
    mutating func next() -> UInt16 {
        if position == buffer.count {
            buffer.withUnsafeMutableBytes { raw in
                if let base = raw.baseAddress { arc4random_buf(base, raw.count) }
            }
            position = 0
        }
        defer { position += 1 }
        return buffer[position]
    }
}

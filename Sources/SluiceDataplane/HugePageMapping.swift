// Anonymous memory for the large areas the packet path touches at random — the flow table and
// the UMEM — mapped on a 2 MiB boundary and advised for transparent huge pages. With 4 KiB pages
// a 32 MiB flow table is 8,192 pages: a few thousand live flows hit a different page per packet
// and miss the TLB; with 2 MiB pages the whole table needs 16 entries. Where THP is off
// ("never") or no huge page is free, the kernel uses ordinary pages and nothing else changes.

#if canImport(Glibc)
import Glibc
#endif

/// A zero-filled anonymous mapping aligned to 2 MiB with MADV_HUGEPAGE. Unmap with `unmap`.
enum HugePageMapping {
    static let hugePageSize = 2 << 20

    /// Maps at least `bytes` bytes (rounded up to whole huge pages). Throws with errno on failure.
    static func map(bytes: Int, what: String) throws(SystemError) -> (base: UnsafeMutableRawPointer, size: Int) {
        let size = (bytes + hugePageSize - 1) / hugePageSize * hugePageSize
        // Over-map by one huge page, then trim both ends so the start is 2 MiB aligned.
        let reserved = size + hugePageSize
        guard let raw = mmap(nil, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemError("mmap(\(what), \(reserved) bytes)", code: errno)
        }
        let address = Int(bitPattern: raw)
        let aligned = (address + hugePageSize - 1) / hugePageSize * hugePageSize
        let head = aligned - address
        if head > 0 { munmap(raw, head) }
        let tail = reserved - head - size
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + size), tail) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        // Advice only: refused where THP is compiled out, which costs nothing but the TLB reach.
        _ = madvise(base, size, MADV_HUGEPAGE)
        return (base, size)
    }

    /// Unmaps what `map` returned.
    static func unmap(_ mapping: (base: UnsafeMutableRawPointer, size: Int)) {
        munmap(mapping.base, mapping.size)
    }
}

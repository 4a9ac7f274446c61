// Batched datagram I/O on raw non-blocking UDP sockets, for the proxy's UDP threads (DNSUDPLoop): a
// receive batch (one recvmmsg fills up to `capacity` datagrams with their senders), a send batch (replies
// and upstream queries copied into one arena, sent per socket with one sendmmsg each), and the few socket
// calls the loop needs. Everything is allocated once per thread: a datagram costs no allocation here, no
// reference counting and no address formatting, which is what NIO's per-datagram pipeline spent most of
// a forwarded query's user time on (docs/dns.md, "UDP threads").
#if canImport(Glibc)
import Glibc
#endif
import CSluiceSystem
import NIOCore
import SluicePolicy

/// A datagram's far end as the kernel gives it: a sockaddr_in or sockaddr_in6 in one inline storage.
struct DatagramPeer: Sendable {
    /// Large enough for either family (sockaddr_in is a prefix-compatible 16 bytes).
    var storage = sockaddr_in6()
    /// The kernel's length of the address in `storage`.
    var length: socklen_t = 0

    /// The address as the policy sees it (IPv4-mapped IPv6 as IPv4); nil for other families.
    var policyAddress: IPAddress? {
        withUnsafeBytes(of: storage) { raw -> IPAddress? in
            switch Int32(raw.load(as: sa_family_t.self)) {
            case AF_INET:
                let v4 = raw.load(as: sockaddr_in.self)
                return .v4(UInt32(bigEndian: v4.sin_addr.s_addr))
            case AF_INET6:
                var value: UInt128 = 0
                for byte in raw[8..<24] { value = value << 8 | UInt128(byte) }  // sin6_addr
                if value >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: value)) }
                return .v6(value)
            default:
                return nil
            }
        }
    }
}

extension DatagramPeer {
    /// The peer behind a SwiftNIO address (a TCP client's); nil for none or a non-IP one.
    init?(_ address: SocketAddress?) {
        guard let address, address.protocol == .inet || address.protocol == .inet6 else { return nil }
        var storage = sockaddr_in6()
        let length = address.withSockAddr { pointer, size -> Int in
            let count = min(size, MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: count))
            }
            return count
        }
        self.init(storage: storage, length: socklen_t(length))
    }
}

/// One recvmmsg worth of datagrams. Not thread-safe: one per UDP thread, reused for every read.
final class DatagramInbox {
    /// Largest datagram accepted; a longer one arrives cut (`isTruncated`) and is dropped. DNS over UDP
    /// stays far below: clients' queries are small, and upstreams answer within our EDNS size.
    static let slotSize = 4096
    /// Datagrams per system call.
    let capacity = 32
    private let headers: UnsafeMutablePointer<sluice_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    private let buffer: UnsafeMutableRawPointer

    init() {
        headers = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        names = .allocate(capacity: capacity)
        buffer = .allocate(byteCount: capacity * Self.slotSize, alignment: 64)
        for index in 0..<capacity {
            vectors[index] = iovec(iov_base: buffer + index * Self.slotSize, iov_len: Self.slotSize)
            names[index] = sockaddr_in6()
            headers[index] = sluice_mmsghdr(
                msg_hdr: msghdr(msg_name: UnsafeMutableRawPointer(names + index), msg_namelen: 0,
                                msg_iov: vectors + index, msg_iovlen: 1, msg_control: nil, msg_controllen: 0,
                                msg_flags: 0),
                msg_len: 0)
        }
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
        names.deallocate()
        buffer.deallocate()
    }

    /// Reads up to `capacity` datagrams from `fd` without blocking: their count (0 when none was
    /// waiting), or a negative errno.
    func receive(from fd: Int32) -> Int {
        for index in 0..<capacity {
            // The kernel overwrites the name length (and the flags and length): the room for an address is
            // given again; everything else stays as `init` set it up.
            headers[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        while true {
            let count = sluice_recvmmsg(fd, headers, UInt32(capacity), Int32(MSG_DONTWAIT))
            if count >= 0 { return Int(count) }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -Int(errno)
        }
    }

    /// The bytes of datagram `index` of the last `receive`.
    func bytes(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer + index * Self.slotSize, count: Int(headers[index].msg_len))
    }

    /// The datagram was longer than a slot and arrived cut.
    func isTruncated(_ index: Int) -> Bool {
        headers[index].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0
    }

    /// Who sent datagram `index`.
    func sender(_ index: Int) -> DatagramPeer {
        DatagramPeer(storage: names[index], length: headers[index].msg_hdr.msg_namelen)
    }
}

/// Datagrams waiting to be sent, possibly to several sockets, copied into one arena and sent with one
/// sendmmsg per socket by `flush`. Not thread-safe: one per UDP thread.
final class DatagramOutbox {
    private struct Entry {
        var fd: Int32
        var offset: Int
        var length: Int
        /// Destination for an unconnected socket (the listener); nil for a connected one.
        var peer: DatagramPeer?
    }

    /// A send that failed other than for a full buffer (the loop tells the owner of `fd`).
    struct Failure {
        var fd: Int32
        var errorNumber: Int32
    }

    static let arenaSize = 256 * 1024
    static let maxEntries = 256
    private let arena: UnsafeMutableRawPointer
    private var used = 0
    private var entries: [Entry] = []
    private var fds: [Int32] = []
    private let headers: UnsafeMutablePointer<sluice_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    /// Datagrams not sent because a socket's buffer was full (or the send failed), since the last read.
    private var dropped = 0
    /// Failures collected by `flush` since the last `takeFailures`.
    private var failures: [Failure] = []

    init() {
        arena = .allocate(byteCount: Self.arenaSize, alignment: 64)
        headers = .allocate(capacity: Self.maxEntries)
        vectors = .allocate(capacity: Self.maxEntries)
        names = .allocate(capacity: Self.maxEntries)
        entries.reserveCapacity(Self.maxEntries)
        fds.reserveCapacity(16)
    }

    deinit {
        arena.deallocate()
        headers.deallocate()
        vectors.deallocate()
        names.deallocate()
    }

    /// Nothing waits to be sent.
    var isEmpty: Bool { entries.isEmpty }

    /// Queues `bytes` for `fd` (to `peer` when the socket is not connected). Flushes first when the batch
    /// is full; a datagram larger than the whole arena (256 KiB, four times DNS's largest message) is
    /// dropped and counted.
    func append(_ bytes: [UInt8], fd: Int32, to peer: DatagramPeer?) {
        append(count: bytes.count, fd: fd, to: peer) { target in
            bytes.withUnsafeBytes { target.copyMemory(from: $0) }
        }
    }

    /// `append` for bytes written in place: `write` fills the `count` bytes it is handed.
    func append(count: Int, fd: Int32, to peer: DatagramPeer?, write: (UnsafeMutableRawBufferPointer) -> Void) {
        if entries.count == Self.maxEntries || used + count > Self.arenaSize { flush() }
        guard count <= Self.arenaSize else {
            dropped += 1  // cannot happen with DNS's 65,535-byte ceiling; counted, never half-sent
            return
        }
        write(UnsafeMutableRawBufferPointer(start: arena + used, count: count))
        if !fds.contains(fd) { fds.append(fd) }
        entries.append(Entry(fd: fd, offset: used, length: count, peer: peer))
        used += count
    }

    /// Forgets what is queued for `fd`, and its failures not yet taken: the descriptor is about to be
    /// closed, and its number may be handed to the next socket opened, which must not inherit either.
    func discard(fd: Int32) {
        entries.removeAll { $0.fd == fd }
        fds.removeAll { $0 == fd }
        failures.removeAll { $0.fd == fd }
    }

    /// Sends everything queued: one sendmmsg per socket (more when the kernel takes part of a batch).
    /// A full socket buffer drops the rest of that socket's batch (UDP: the client or the pool's timeout
    /// recovers); any other error skips that datagram and is reported through `takeFailures`.
    func flush() {
        guard !entries.isEmpty else { return }
        for fd in fds {
            var count = 0
            for entry in entries where entry.fd == fd {
                var header = msghdr()
                header.msg_iov = vectors + count
                header.msg_iovlen = 1
                if let peer = entry.peer {
                    names[count] = peer.storage
                    header.msg_name = UnsafeMutableRawPointer(names + count)
                    header.msg_namelen = peer.length
                }
                vectors[count] = iovec(iov_base: arena + entry.offset, iov_len: entry.length)
                headers[count] = sluice_mmsghdr(msg_hdr: header, msg_len: 0)
                count += 1
            }
            send(fd: fd, count: count)
        }
        entries.removeAll(keepingCapacity: true)
        fds.removeAll(keepingCapacity: true)
        used = 0
    }

    private func send(fd: Int32, count: Int) {
        var sent = 0
        while sent < count {
            let result = sluice_sendmmsg(fd, headers + sent, UInt32(count - sent), 0)
            if result > 0 {
                sent += Int(result)
                continue
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS {
                dropped += count - sent
                return
            }
            failures.append(Failure(fd: fd, errorNumber: error))
            dropped += 1
            sent += 1  // the failing datagram; the rest may still go
        }
    }

    /// The failures since the last call, and the drop count reset.
    func takeFailures() -> (failures: [Failure], dropped: Int) {
        defer {
            failures.removeAll(keepingCapacity: true)
            dropped = 0
        }
        return (failures, dropped)
    }
}

/// The socket calls of the UDP threads, with NIO's `IOError` so callers see one error type for both the
/// UDP (raw) and the TCP (NIO) listeners.
enum UDPSocket {
    /// A non-blocking UDP socket bound to `address`; `reusePort` lets the other UDP threads bind the same.
    static func listener(on address: SocketAddress, reusePort: Bool) throws -> Int32 {
        let fd = try open(family: address.protocol.rawValue)
        do {
            try enable(SO_REUSEADDR, on: fd)
            if reusePort { try enable(SO_REUSEPORT, on: fd) }
            let status = address.withSockAddr { pointer, size in bind(fd, pointer, socklen_t(size)) }
            if status != 0 { throw IOError(errnoCode: errno, reason: "bind(\(address))") }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// A non-blocking UDP socket connected to `server` (the kernel picks a random source port and delivers
    /// only datagrams from `server`).
    static func connected(to server: SocketAddress) throws -> Int32 {
        let fd = try open(family: server.protocol.rawValue)
        let status = server.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) }
        if status != 0 {
            let error = errno
            Glibc.close(fd)
            throw IOError(errnoCode: error, reason: "connect(\(server))")
        }
        return fd
    }

    /// The port `fd` is bound to.
    static func localPort(of fd: Int32) -> Int? {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // sin_port and sin6_port sit at the same offset.
        return status == 0 ? Int(UInt16(bigEndian: storage.sin6_port)) : nil
    }

    private static func open(family: Int32) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                            | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw IOError(errnoCode: errno, reason: "socket") }
        return fd
    }

    private static func enable(_ option: Int32, on fd: Int32) throws {
        var one: Int32 = 1
        if setsockopt(fd, SOL_SOCKET, option, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError(errnoCode: errno, reason: "setsockopt(\(option))")
        }
    }
}

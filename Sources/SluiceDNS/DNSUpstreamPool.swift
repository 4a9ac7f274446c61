// Long-lived connected UDP sockets to the upstream resolvers, owned by one UDP thread (DNSUDPLoop), so a
// forwarded query costs one datagram each way and no socket setup, no thread hop and no lock. Many
// queries share a socket, told apart by a random 16-bit id per query; a reply must come from the socket's
// connected upstream (the kernel filters the source address and port), be a well-formed message
// (`DNSWireScan`: the parser's rules, checked on the bytes without building a DNSMessage), carry an id
// that is outstanding on that socket, QR, the opcode and the same question (`DNSWireScan.answers`), else
// it is ignored and counted and the query goes on waiting.
//
// Spoofing: a blind forger must hit one of the pool's few source ports (random ephemeral ports) and an
// outstanding id on it, instead of the one fresh port per query the async path uses. To keep ports
// from being learnt over time, each socket is retired after `upstreamSocketReuse` queries: it takes no
// new queries, closes once its last reply or timeout is in, and a new socket (new random port) takes
// its place. docs/dns.md discusses the trade-off.
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SluiceWire

/// Where a UDP query came from and which listener socket its reply leaves by.
struct DNSClient: Sendable {
    var peer: DatagramPeer
    var listener: Int32
}

/// The upstream pool of one UDP thread. Not thread-safe: everything runs on the loop's thread.
final class DNSUpstreamPool {
    /// A query waiting for its upstream's reply (or for the TCP retry of a truncated one).
    struct Pending: Sendable {
        /// Its question is what the reply must repeat (`queryBytes`; the id is the pending key).
        let request: DNSProxy.ForwardRequest
        let client: DNSClient
        /// When this upstream was asked (the latency histogram times each exchange, as the TCP path does).
        let started: UInt64
        let serial: UInt32
    }

    /// The owning loop (which holds the pool for its whole life, so no reference count is kept).
    unowned(unsafe) let loop: DNSUDPLoop
    let proxy: DNSProxy
    /// `sockets[upstream][slot]`.
    private var sockets: [[PooledSocket?]]
    /// Every open socket by descriptor (what epoll reports), retired ones included.
    private var byDescriptor: [Int32: PooledSocket] = [:]
    private var nextSlot = 0
    /// Closed with its loop: queries failing over get no new sockets.
    private var isClosed = false
    /// Upstream query ids (kernel randomness drawn 256 at a time).
    private var ids = DNSRandomIDs()
    private let timeoutMilliseconds: UInt64

    init(loop: DNSUDPLoop, proxy: DNSProxy) {
        self.loop = loop
        self.proxy = proxy
        let perUpstream = max(1, proxy.configuration.upstreamSocketsPerLoop)
        sockets = proxy.configuration.upstreams.map { _ in Array(repeating: nil, count: perUpstream) }
        timeoutMilliseconds = UInt64(max(1, proxy.configuration.upstreamTimeout.nanoseconds / 1_000_000))
    }

    /// Asks the upstreams in order, from `index`: an error rcode, a timeout or a failure moves on to the
    /// next; TC is retried over TCP on the same upstream. The loop's `finish` gets the first usable reply,
    /// or nil when all failed.
    func forward(_ request: DNSProxy.ForwardRequest, client: DNSClient, from index: Int = 0) {
        guard index < proxy.configuration.upstreams.count, !isClosed else {
            loop.finish(request, client: client, reply: nil)
            return
        }
        proxy.counters.increment(.upstreamQueries)
        guard let socket = pick(upstream: index) else {
            proxy.counters.increment(.upstreamErrors)
            forward(request, client: client, from: index + 1)
            return
        }
        var id = ids.next()
        while socket.pending[id] != nil { id = ids.next() }
        socket.track(id: id, Pending(request: request, client: client, started: CoarseClock.preciseMicroseconds(),
                                     serial: socket.nextSerial()),
                     deadline: CoarseClock.nowMilliseconds() + timeoutMilliseconds)
        socket.sent += 1
        // Straight into the send arena, with our id.
        loop.outbox.append(count: request.queryBytes.count, fd: socket.fd, to: nil) { target in
            request.writeUpstreamQuery(into: target, id: id)
        }
    }

    /// What one exchange gave.
    private enum Outcome {
        case answer(DNSWireScan, [UInt8])
        /// The TCP retry's reply (the thread's mailbox brought it back).
        case retried(DNSMessage)
        case timeout
        case failed
    }

    /// What an exchange with upstream `index` gave decides the query: its answer goes to the client, a
    /// truncated one is retried over TCP, anything else moves on to the next upstream.
    private func settle(_ entry: Pending, upstream index: Int, _ outcome: Outcome) {
        let counters = proxy.counters
        let code: DNSResponseCode, reply: DNSUpstreamReply
        switch outcome {
        case .answer(let scan, let bytes):
            if scan.isTruncated {
                counters.increment(.upstreamTruncated)
                counters.increment(.upstreamQueries)
                loop.retryOverTCP(entry, upstream: index)
                return
            }
            (code, reply) = (scan.responseCode, .wire(bytes, scan))
        case .retried(let message):
            (code, reply) = (message.responseCode, .message(message))
        case .timeout:
            counters.increment(.upstreamTimeouts)
            forward(entry.request, client: entry.client, from: index + 1)
            return
        case .failed:
            counters.increment(.upstreamErrors)
            forward(entry.request, client: entry.client, from: index + 1)
            return
        }
        if code == .noError || code == .nameError {
            counters.recordUpstreamLatency(microseconds: CoarseClock.preciseMicroseconds() &- entry.started)
            loop.finish(entry.request, client: entry.client, reply: reply)
        } else {
            counters.increment(.upstreamErrors)  // SERVFAIL, REFUSED, ...: the next may do better
            forward(entry.request, client: entry.client, from: index + 1)
        }
    }

    /// The TCP retry of a truncated answer from upstream `index` ended: its reply, or nil on timeout or
    /// failure.
    func retryFinished(_ entry: Pending, upstream index: Int, reply: DNSMessage?, timedOut: Bool) {
        settle(entry, upstream: index, reply.map { .retried($0) } ?? (timedOut ? .timeout : .failed))
    }

    /// The socket `fd` is readable: its datagrams complete matching queries; others are counted and ignored.
    func readable(_ fd: Int32, inbox: DatagramInbox) {
        guard let socket = byDescriptor[fd] else { return }
        let counters = proxy.counters
        while !socket.closed {
            let count = inbox.receive(from: fd)
            if count < 0 {
                // ECONNREFUSED from an ICMP port unreachable: nobody listens there, no need to wait for timeouts.
                fail(socket)
                return
            }
            for index in 0..<count {
                let raw = inbox.bytes(index)
                guard raw.count >= 12, !inbox.isTruncated(index) else {
                    counters.increment(.upstreamMismatched)
                    continue
                }
                let id = UInt16(raw[0]) << 8 | UInt16(raw[1])
                guard let entry = socket.pending[id] else {
                    counters.increment(.upstreamMismatched)
                    continue
                }
                let bytes = Array(raw)
                guard let scan = DNSWireScan(bytes), scan.answers(entry.request.queryBytes, id: id, in: bytes) else {
                    counters.increment(.upstreamMismatched)
                    continue
                }
                socket.pending[id] = nil
                settle(entry, upstream: socket.upstream, .answer(scan, bytes))
            }
            loop.flush()  // this batch's replies leave before the next is read (see DNSUDPLoop.drain)
            if count < inbox.capacity { break }
        }
        closeIfDrained(socket)
    }

    /// A send to `fd` failed (other than a full buffer): the socket is broken, its queries move on.
    func sendFailed(_ fd: Int32) {
        if let socket = byDescriptor[fd] { fail(socket) }
    }

    /// Times out what waited too long, on every socket.
    func sweep(now: UInt64) {
        for socket in Array(byDescriptor.values) {
            for entry in socket.expire(now: now) { settle(entry, upstream: socket.upstream, .timeout) }
            closeIfDrained(socket)
        }
    }

    /// The next socket for `upstream` (round robin over the slots), replacing worn-out ones; nil
    /// when a new socket cannot be made (no route, descriptors exhausted).
    private func pick(upstream index: Int) -> PooledSocket? {
        let slots = sockets[index].count
        let slot = nextSlot % slots
        nextSlot &+= 1
        if let socket = sockets[index][slot], socket.sent < proxy.configuration.upstreamSocketReuse {
            return socket
        }
        if let old = sockets[index][slot] {
            old.retiring = true
            sockets[index][slot] = nil
            closeIfDrained(old)
        }
        guard let fd = try? UDPSocket.connected(to: proxy.configuration.upstreams[index]) else { return nil }
        guard loop.watch(fd, token: DNSUDPLoop.upstreamToken(fd)) else {
            Glibc.close(fd)
            return nil
        }
        let socket = PooledSocket(fd: fd, upstream: index)
        sockets[index][slot] = socket
        byDescriptor[fd] = socket
        return socket
    }

    /// Fails every query outstanding on `socket` over to the next upstream and closes it; its slot gets a
    /// new socket on next use.
    private func fail(_ socket: PooledSocket) {
        socket.retiring = true
        let entries = Array(socket.pending.values)
        socket.clear()
        for entry in entries { settle(entry, upstream: socket.upstream, .failed) }
        closeIfDrained(socket)
    }

    private func closeIfDrained(_ socket: PooledSocket) {
        guard socket.retiring || isClosed, socket.pending.isEmpty, !socket.closed else { return }
        socket.closed = true
        byDescriptor[socket.fd] = nil
        for row in sockets.indices {
            for slot in sockets[row].indices where sockets[row][slot] === socket { sockets[row][slot] = nil }
        }
        // Anything still queued for it belongs to queries already settled (a drained socket has none left
        // waiting); dropped, with its unreported send failures, before the number can go to a new socket.
        loop.outbox.discard(fd: socket.fd)
        Glibc.close(socket.fd)  // also leaves the epoll set
    }

    /// Closes every socket; outstanding queries are given up (the loop stops: no reply is sent).
    func close() {
        isClosed = true
        for socket in Array(byDescriptor.values) {
            for _ in socket.pending.values { proxy.leave() }  // given up: the loop stops, no reply
            socket.clear()
            closeIfDrained(socket)
        }
    }
}

/// What the upstreams answered a forwarded query with.
package enum DNSUpstreamReply {
    /// A UDP reply as received, checked by its scan (the common case: nothing parsed).
    case wire([UInt8], DNSWireScan)
    /// A parsed reply (the TCP retry of a truncated answer).
    case message(DNSMessage)
}

/// One connected UDP socket of the pool, with the queries outstanding on it.
final class PooledSocket {
    let fd: Int32
    /// Index of its upstream in the configuration.
    let upstream: Int
    var pending: [UInt16: DNSUpstreamPool.Pending] = [:]
    var sent = 0
    /// Takes no new queries (worn out, or a send or receive failed); closes once `pending` is empty.
    var retiring = false
    var closed = false
    /// Deadlines in sending order (so they are sorted): (id, serial, CoarseClock ms).
    private var deadlines: [(id: UInt16, serial: UInt32, deadline: UInt64)] = []
    private var deadlineHead = 0
    private var serial: UInt32 = 0

    init(fd: Int32, upstream: Int) {
        self.fd = fd
        self.upstream = upstream
    }

    /// A serial for the next tracked query (tells a reused id's deadline from an older one's).
    func nextSerial() -> UInt32 {
        serial &+= 1
        return serial
    }

    /// Registers an outstanding query.
    func track(id: UInt16, _ entry: DNSUpstreamPool.Pending, deadline: UInt64) {
        pending[id] = entry
        deadlines.append((id, entry.serial, deadline))
    }

    /// Removes and returns the queries past their deadline.
    func expire(now: UInt64) -> [DNSUpstreamPool.Pending] {
        var expired: [DNSUpstreamPool.Pending] = []
        while deadlineHead < deadlines.count, deadlines[deadlineHead].deadline <= now {
            let entry = deadlines[deadlineHead]
            deadlineHead += 1
            if let waiting = pending[entry.id], waiting.serial == entry.serial {
                pending[entry.id] = nil
                expired.append(waiting)
            }
        }
        if deadlineHead == deadlines.count {
            deadlines.removeAll(keepingCapacity: true)
            deadlineHead = 0
        } else if deadlineHead > 4096 && deadlineHead * 2 > deadlines.count {
            deadlines.removeFirst(deadlineHead)
            deadlineHead = 0
        }
        return expired
    }

    /// Forgets every outstanding query.
    func clear() {
        pending = [:]
        deadlines.removeAll()
        deadlineHead = 0
    }
}

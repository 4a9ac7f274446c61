// Long-lived connected UDP sockets to the upstream resolvers, owned by one event loop (the UDP
// listener's), so a forwarded query costs one datagram each way and no socket setup, no thread hop
// and no lock. Many queries share a socket, told apart by a random 16-bit id per query; a reply must
// come from the socket's connected upstream (the kernel filters the source address and port), be a
// well-formed message (`DNSWireScan`: the parser's rules, checked on the bytes without building a
// DNSMessage), carry an id that is outstanding on that socket, QR, the opcode and the same question
// (`DNSWireScan.answers`), else it is ignored and counted and the query goes on waiting.
//
// Spoofing: a blind forger must hit one of the pool's few source ports (random ephemeral ports) and an
// outstanding id on it, instead of the one fresh port per query the async path uses. To keep ports
// from being learnt over time, each socket is retired after `upstreamSocketReuse` queries: it takes no
// new queries, closes once its last reply or timeout is in, and a new socket (new random port) takes
// its place. docs/dns.md discusses the trade-off.
import NIOCore
import NIOPosix
import SluiceWire

/// The upstream pool of one event loop. Not thread-safe: everything runs on `eventLoop`.
final class DNSUpstreamPool {
    /// What one exchange gave.
    enum Outcome {
        /// A matching reply: its bytes as received and their scan.
        case answer(DNSWireScan, [UInt8])
        case timeout
        case failed
    }

    let eventLoop: any EventLoop
    let proxy: DNSProxy
    /// `sockets[upstream][slot]`.
    private var sockets: [[PooledSocket?]]
    private var nextSlot = 0
    /// Called after a batch of replies (one read burst) and after a timeout: the listener flushes.
    var onBatchEnd: () -> Void = {}
    /// Sockets with queries written but not flushed.
    private var unflushed: [PooledSocket] = []
    /// Retired sockets still waiting for replies (swept for timeouts until they close).
    private var retired: [PooledSocket] = []
    /// Expires outstanding queries every `sweepInterval`: one timer for the pool instead of one per query
    /// (a timeout fires up to one interval late, which is nothing against the 2 s default).
    private var sweeper: Scheduled<Void>?
    /// Closed with its listener: queries still failing over to the next upstream get SERVFAIL instead
    /// of opening new sockets nobody would close.
    private var isClosed = false
    /// Upstream query ids (kernel randomness drawn 256 at a time).
    private var ids = DNSRandomIDs()
    /// A batch end is queued on the loop (`batchEndSoon`).
    private var batchEndQueued = false
    static let sweepInterval = TimeAmount.milliseconds(100)

    /// Flushes the queries written since the last flush (the listener calls it at the end of a read burst).
    func flushQueries() {
        guard !unflushed.isEmpty else { return }
        for socket in unflushed { socket.flush() }
        unflushed.removeAll(keepingCapacity: true)
    }

    /// The end of anything that may have written queries or replies: flush both.
    func afterBatch() {
        flushQueries()
        onBatchEnd()
    }

    /// `afterBatch` once the event loop has handled every socket that is readable now: replies read from
    /// several pooled sockets in one loop iteration leave in one flush (one sendmmsg) instead of one each.
    /// NIO runs tasks queued from the loop itself after the iteration's I/O, without a wake-up.
    func batchEndSoon() {
        guard !batchEndQueued else { return }
        batchEndQueued = true
        eventLoop.assumeIsolated().execute {
            self.batchEndQueued = false
            self.afterBatch()
        }
    }

    init(eventLoop: any EventLoop, proxy: DNSProxy) {
        self.eventLoop = eventLoop
        self.proxy = proxy
        let perUpstream = max(1, proxy.configuration.upstreamSocketsPerLoop)
        sockets = proxy.configuration.upstreams.map { _ in Array(repeating: nil, count: perUpstream) }
        scheduleSweep()
    }

    private func scheduleSweep() {
        sweeper = eventLoop.assumeIsolated().scheduleTask(in: Self.sweepInterval) {
            self.sweep()
            if self.sweeper != nil { self.scheduleSweep() }
        }
    }

    /// Times out what waited too long, on every socket.
    private func sweep() {
        let now = CoarseClock.nowMilliseconds()
        var expired: [(DNSUpstreamPool.Outcome) -> Void] = []
        for row in sockets {
            for socket in row { socket?.expire(now: now, into: &expired) }
        }
        for socket in retired { socket.expire(now: now, into: &expired) }
        retired.removeAll { $0.closed }
        guard !expired.isEmpty else { return }
        for completion in expired { completion(.timeout) }
        afterBatch()
    }

    /// Asks the upstreams in order, from `index`, as `DNSProxy.answer` does: an error rcode, a timeout or
    /// a failure moves on to the next; TC is retried over TCP on the same upstream. `completion` gets
    /// the first usable reply (and its bytes), or nil when all failed; it runs on the event loop.
    func forward(_ request: DNSProxy.ForwardRequest, from index: Int = 0,
                 completion: @escaping (DNSUpstreamReply?) -> Void) {
        let upstreams = proxy.configuration.upstreams
        guard index < upstreams.count, !isClosed else {
            completion(nil)
            return
        }
        let counters = proxy.counters
        let started = CoarseClock.preciseMicroseconds()
        counters.increment(.upstreamQueries)
        exchange(request, upstream: index) { outcome in
            switch outcome {
            case .answer(let scan, let bytes):
                if scan.isTruncated {
                    self.retryOverTCP(request, index: index, started: started, completion: completion)
                    return
                }
                counters.recordUpstreamLatency(microseconds: CoarseClock.preciseMicroseconds() &- started)
                let code = scan.responseCode
                if code == .noError || code == .nameError {
                    completion(.wire(bytes, scan))
                } else {
                    counters.increment(.upstreamErrors)  // SERVFAIL, REFUSED, ...: the next may do better
                    self.forward(request, from: index + 1, completion: completion)
                }
            case .timeout:
                counters.increment(.upstreamTimeouts)
                self.forward(request, from: index + 1, completion: completion)
            case .failed:
                counters.increment(.upstreamErrors)
                self.forward(request, from: index + 1, completion: completion)
            }
        }
    }

    /// The rare truncated answer: the async TCP client, back on this loop afterwards.
    private func retryOverTCP(_ request: DNSProxy.ForwardRequest, index: Int, started: UInt64,
                              completion: @escaping (DNSUpstreamReply?) -> Void) {
        let counters = proxy.counters
        counters.increment(.upstreamTruncated)
        counters.increment(.upstreamQueries)
        let client = proxy.upstream
        let server = proxy.configuration.upstreams[index]
        let timeout = proxy.configuration.upstreamTimeout
        let bytes = request.outgoingBytes
        let outgoing = request.outgoing
        eventLoop.makeFutureWithTask {
            try await client.exchangeTCP(bytes, expecting: outgoing, server: server, timeout: timeout)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let reply) where reply.responseCode == .noError || reply.responseCode == .nameError:
                counters.recordUpstreamLatency(microseconds: CoarseClock.preciseMicroseconds() &- started)
                completion(.message(reply))
            case .success:
                counters.increment(.upstreamErrors)
                self.forward(request, from: index + 1, completion: completion)
            case .failure(let error):
                counters.increment(error as? DNSUpstreamError == .timeout ? .upstreamTimeouts : .upstreamErrors)
                self.forward(request, from: index + 1, completion: completion)
            }
            self.afterBatch()  // not inside a read burst: nothing else would flush the reply
        }
    }

    /// One UDP exchange with upstream `index` on a pooled socket: `request.outgoingBytes` under a fresh
    /// random id. The datagram leaves at the next `flushQueries`.
    func exchange(_ request: DNSProxy.ForwardRequest, upstream index: Int,
                  completion: @escaping (Outcome) -> Void) {
        let socket = pick(upstream: index)
        let bytes = request.outgoingBytes
        var id = ids.next()
        while socket.pending[id] != nil { id = ids.next() }
        // Straight into the buffer NIO sends from, the id patched there (no intermediate array).
        var datagram = PooledSocket.allocator.buffer(capacity: bytes.count)
        datagram.writeBytes(bytes)
        datagram.setInteger(id, at: datagram.readerIndex)
        socket.track(id: id, request: request,
                     deadline: CoarseClock.nowMilliseconds() + UInt64(proxy.configuration.upstreamTimeout.nanoseconds
                         / 1_000_000), completion: completion)
        socket.sent += 1
        if socket.send(datagram) { unflushed.append(socket) }
    }

    /// The next socket for `upstream` (round robin over the slots), replacing retired or failed ones.
    private func pick(upstream index: Int) -> PooledSocket {
        let slots = sockets[index].count
        let slot = nextSlot % slots
        nextSlot &+= 1
        if let socket = sockets[index][slot], !socket.broken, socket.sent < proxy.configuration.upstreamSocketReuse {
            return socket
        }
        if let old = sockets[index][slot] {
            old.retiring = true
            old.closeIfDrained()
            if !old.closed { retired.append(old) }
        }
        let socket = PooledSocket(server: proxy.configuration.upstreams[index], pool: self)
        sockets[index][slot] = socket
        socket.connect()
        return socket
    }

    /// Closes every socket; outstanding queries fail.
    func close() {
        isClosed = true
        sweeper?.cancel()
        sweeper = nil
        for socket in retired { socket.failAll() }
        retired = []
        for row in sockets {
            for socket in row {
                socket?.retiring = true
                socket?.failAll()
            }
        }
        sockets = sockets.map { $0.map { _ in nil } }
    }
}

/// What the upstreams answered a forwarded query with.
enum DNSUpstreamReply {
    /// A UDP reply as received, checked by its scan (the common case: nothing parsed).
    case wire([UInt8], DNSWireScan)
    /// A parsed reply (the TCP retry of a truncated answer).
    case message(DNSMessage)
}

/// One connected UDP socket of the pool, with the queries outstanding on it.
final class PooledSocket {
    struct Pending {
        /// Its question is what the reply must repeat (`outgoingBytes`; the id is the pending key).
        let request: DNSProxy.ForwardRequest
        let serial: UInt32
        let completion: (DNSUpstreamPool.Outcome) -> Void
    }

    let server: SocketAddress
    /// Strong: a retiring socket outlives its slot; `DNSUpstreamPool.close` breaks the cycle.
    let pool: DNSUpstreamPool
    var pending: [UInt16: Pending] = [:]
    var sent = 0
    /// Takes no new queries; closes once `pending` is empty.
    var retiring = false
    /// The socket failed (connect error or ICMP-reported error): replaced on next use.
    var broken = false
    private var channel: (any Channel)?
    /// Datagrams written before the socket was connected.
    private var queued: [ByteBuffer] = []
    /// Where datagrams to the upstream are made.
    static let allocator = ByteBufferAllocator()
    private var connecting = false
    private var needsFlush = false
    /// Closed (or never to be used again).
    private(set) var closed = false
    /// Deadlines in sending order (so they are sorted): (id, serial, CoarseClock ms).
    private var deadlines: [(id: UInt16, serial: UInt32, deadline: UInt64)] = []
    private var deadlineHead = 0
    private var serial: UInt32 = 0

    /// Registers an outstanding query.
    func track(id: UInt16, request: DNSProxy.ForwardRequest, deadline: UInt64,
               completion: @escaping (DNSUpstreamPool.Outcome) -> Void) {
        serial &+= 1
        pending[id] = Pending(request: request, serial: serial, completion: completion)
        deadlines.append((id, serial, deadline))
    }

    /// Moves the completions of queries past their deadline into `expired`.
    func expire(now: UInt64, into expired: inout [(DNSUpstreamPool.Outcome) -> Void]) {
        while deadlineHead < deadlines.count, deadlines[deadlineHead].deadline <= now {
            let entry = deadlines[deadlineHead]
            deadlineHead += 1
            if let waiting = pending[entry.id], waiting.serial == entry.serial {
                pending[entry.id] = nil
                expired.append(waiting.completion)
            }
        }
        if deadlineHead == deadlines.count {
            deadlines.removeAll(keepingCapacity: true)
            deadlineHead = 0
        } else if deadlineHead > 4096 && deadlineHead * 2 > deadlines.count {
            deadlines.removeFirst(deadlineHead)
            deadlineHead = 0
        }
        closeIfDrained()
    }

    init(server: SocketAddress, pool: DNSUpstreamPool) {
        self.server = server
        self.pool = pool
    }

    func connect() {
        connecting = true
        let loop = pool.eventLoop
        let handler = NIOLoopBound(PooledSocketHandler(socket: self), eventLoop: loop)
        DatagramBootstrap(group: loop)
            .channelOption(.datagramVectorReadMessageCount, value: dnsVectorReadCount)
            .channelOption(.recvAllocator, value: dnsVectorReadAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(to: server)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel):
                    self.channel = channel
                    for datagram in self.queued { self.write(datagram, on: channel) }
                    self.queued = []
                    channel.flush()
                    self.closeIfDrained()
                case .failure:
                    self.broken = true
                    self.queued = []
                    self.failAll()
                }
            }
    }

    /// Writes `datagram`, or queues it until connected; true when this made the socket need a flush.
    func send(_ datagram: ByteBuffer) -> Bool {
        guard let channel else {
            queued.append(datagram)
            return false
        }
        write(datagram, on: channel)
        defer { needsFlush = true }
        return !needsFlush
    }

    func flush() {
        needsFlush = false
        channel?.flush()
    }

    /// A bare ByteBuffer, not an AddressedEnvelope: the socket is connected, so NIO sends it without a
    /// destination (the kernel uses the connected route) and skips comparing the envelope's address.
    private func write(_ datagram: ByteBuffer, on channel: any Channel) {
        channel.write(datagram, promise: nil)
    }

    /// A datagram from the upstream: completes the matching query, or is counted and ignored.
    func received(_ bytes: [UInt8], from address: SocketAddress?) {
        let counters = pool.proxy.counters
        guard bytes.count >= 12, address == nil || address == server else {
            counters.increment(.upstreamMismatched)
            return
        }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let entry = pending[id], let scan = DNSWireScan(bytes),
              scan.answers(entry.request.outgoingBytes, id: id, in: bytes)
        else {
            counters.increment(.upstreamMismatched)
            return
        }
        pending[id] = nil
        entry.completion(.answer(scan, bytes))
        closeIfDrained()
    }

    /// Fails every outstanding query (the socket reported an error, or the pool closes).
    func failAll() {
        broken = true
        let entries = pending.values
        pending = [:]
        deadlines.removeAll()
        deadlineHead = 0
        for entry in entries { entry.completion(.failed) }
        if !entries.isEmpty { pool.afterBatch() }
        closeIfDrained()
    }

    func closeIfDrained() {
        guard retiring || broken, pending.isEmpty, !connecting else { return }
        closed = true
        guard let channel else { return }
        self.channel = nil
        channel.close(promise: nil)
    }
}

/// Hands a pooled socket's datagrams and errors to it. Runs on the pool's event loop.
private final class PooledSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let socket: PooledSocket

    init(socket: PooledSocket) {
        self.socket = socket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        socket.received(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        socket.pool.batchEndSoon()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ECONNREFUSED from an ICMP port unreachable: nobody listens there, no need to wait for timeouts.
        socket.failAll()
    }
}

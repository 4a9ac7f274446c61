// One UDP thread of the proxy: its listener sockets (one per listen address, the port shared with the
// other threads by SO_REUSEPORT, so the kernel spreads clients over them), its upstream pool, and an
// epoll loop over both. A readable listener is drained in batches of `DatagramInbox.capacity`; each query
// is parsed, judged and, when denied or cached, answered right there, else forwarded on the pool; replies
// and forwarded queries collect in the outbox and leave after each batch (one sendmmsg per socket). Replies from upstream come back on the same thread. The only cross-thread traffic is the
// rare TCP retry of a truncated answer (a task on SwiftNIO, its result posted back through the mailbox) and
// the stop request.
//
// Why not NIO's DatagramChannel, as before: per datagram it built an AddressedEnvelope, a SocketAddress
// (formatting the address as text), a ByteBuffer and ran the pipeline, about 5 µs of reference counting
// and allocation per forwarded query on this machine against ~2 µs of our own work (docs/dns.md).
#if canImport(Glibc)
import Glibc
#endif
import CSluiceSystem
import NIOCore
import SluiceWire
import Synchronization

/// What other threads hand a UDP thread: TCP retry results, and the stop request. Wakes it by eventfd.
final class DNSUDPMailbox: Sendable {
    /// A finished TCP retry of a truncated answer.
    struct TCPRetryResult: Sendable {
        let entry: DNSUpstreamPool.Pending
        let upstream: Int
        let reply: DNSMessage?
        let timedOut: Bool
    }

    private struct State {
        var results: [TCPRetryResult] = []
        var stopped = false
    }

    private let state = Mutex(State())
    /// The eventfd the loop watches.
    let wakeDescriptor: Int32
    let proxy: DNSProxy

    init(proxy: DNSProxy) throws {
        self.proxy = proxy
        wakeDescriptor = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        if wakeDescriptor < 0 { throw IOError(errnoCode: errno, reason: "eventfd") }
    }

    deinit { Glibc.close(wakeDescriptor) }

    /// Hands a TCP retry's result to the loop; after `stop` the query is given up instead.
    func post(_ result: TCPRetryResult) {
        let accepted = state.withLock { state in
            if state.stopped { return false }
            state.results.append(result)
            return true
        }
        if accepted { wake() } else { proxy.leave() }
    }

    /// Asks the loop to stop; it answers nothing more.
    func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Takes what was posted (the loop, after its eventfd fired).
    func take() -> [TCPRetryResult] {
        var counter: UInt64 = 0
        _ = read(wakeDescriptor, &counter, 8)
        return state.withLock { state in
            defer { state.results = [] }
            return state.results
        }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
    }
}

/// The state of one UDP thread. Created on the starting thread, then used only by its own thread (`run`).
final class DNSUDPLoop {
    let proxy: DNSProxy
    let listeners: [Int32]
    let mailbox: DNSUDPMailbox
    let outbox = DatagramOutbox()
    private let inbox = DatagramInbox()
    private let epoll: Int32
    private var pool: DNSUpstreamPool!

    private static let listenerTag: UInt64 = 1 << 32
    private static let upstreamTag: UInt64 = 2 << 32
    private static let wakeToken: UInt64 = 3 << 32
    /// Batches read from one listener before the loop looks at its other sockets (fairness to replies).
    private static let burstsPerWake = 4
    /// How often outstanding upstream queries are checked for their timeout.
    private static let sweepMilliseconds: UInt64 = 100

    /// The epoll token of an upstream socket.
    static func upstreamToken(_ fd: Int32) -> UInt64 { upstreamTag | UInt64(UInt32(bitPattern: fd)) }

    /// A loop over `listeners` (already bound; closed by the server, not here).
    init(proxy: DNSProxy, listeners: [Int32]) throws {
        self.proxy = proxy
        self.listeners = listeners
        mailbox = try DNSUDPMailbox(proxy: proxy)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epoll < 0 { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        pool = DNSUpstreamPool(loop: self, proxy: proxy)
        // Every property is set by now, so a throw below still runs deinit, which closes `epoll`.
        guard watch(mailbox.wakeDescriptor, token: Self.wakeToken) else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(eventfd)")
        }
        for (index, fd) in listeners.enumerated() where !watch(fd, token: Self.listenerTag | UInt64(index)) {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(listener)")
        }
    }

    deinit { Glibc.close(epoll) }

    /// Adds `fd` to the epoll set, readable events reported with `token`.
    func watch(_ fd: Int32, token: UInt64) -> Bool {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = token
        return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0
    }

    /// Runs until the mailbox is stopped, then gives up what is outstanding.
    func run() {
        let capacity: Int32 = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        var nextSweep = CoarseClock.nowMilliseconds() + Self.sweepMilliseconds
        while !mailbox.isStopped {
            let now = CoarseClock.nowMilliseconds()
            let wait = nextSweep > now ? Int32(nextSweep - now) : 0
            let count = epoll_wait(epoll, events, capacity, wait)
            if count < 0 && errno != EINTR { break }
            for index in 0..<max(0, Int(count)) {
                let token = events[index].data.u64
                switch token & ~0xFFFF_FFFF {
                case Self.listenerTag: drain(listener: listeners[Int(token & 0xFFFF_FFFF)])
                case Self.upstreamTag: pool.readable(Int32(bitPattern: UInt32(token & 0xFFFF_FFFF)), inbox: inbox)
                default: deliverMail()
                }
            }
            flush()
            let afterBatch = CoarseClock.nowMilliseconds()
            if afterBatch >= nextSweep {
                pool.sweep(now: afterBatch)
                nextSweep = afterBatch + Self.sweepMilliseconds
                flush()
            }
        }
        pool.close()
        for _ in mailbox.take() { proxy.leave() }  // given up: no reply
    }

    /// Reads and answers the queries waiting on `fd`. What one batch produced leaves before the next batch
    /// is read: a query's wait for its batch-mates is bounded by one batch (32 × ~11 µs when all miss),
    /// not by everything a burst brought (measured: flushing once per wake-up put up to 128 queries'
    /// processing in front of the first one's forwarding, ~1 ms at the 99th percentile).
    private func drain(listener fd: Int32) {
        for _ in 0..<Self.burstsPerWake {
            let count = inbox.receive(from: fd)
            guard count > 0 else { return }  // nothing more, or an error a listener can ignore
            for index in 0..<count { query(index, listener: fd) }
            flush()
            if count < inbox.capacity { return }
        }
    }

    private func query(_ index: Int, listener fd: Int32) {
        guard !inbox.isTruncated(index) else {
            proxy.counters.increment(.droppedMalformed)
            return
        }
        let peer = inbox.sender(index)
        guard let source = peer.policyAddress, proxy.enter() else { return }
        switch proxy.prepare(Array(inbox.bytes(index)), from: source, overTCP: false, upstreamID: 0) {
        case .reply(let reply):
            proxy.leave()
            outbox.append(reply, fd: fd, to: peer)
        case .drop:
            proxy.leave()
        case .forward(let request):
            pool.forward(request, client: DNSClient(peer: peer, listener: fd))
        }
    }

    /// A forwarded query is done: its reply (SERVFAIL when `reply` is nil) goes back to the client.
    func finish(_ request: DNSProxy.ForwardRequest, client: DNSClient, reply: DNSUpstreamReply?) {
        proxy.leave()
        outbox.append(proxy.complete(request, upstream: reply), fd: client.listener, to: client.peer)
    }

    /// The rare truncated answer: the async TCP client on SwiftNIO, its result posted back to this thread.
    func retryOverTCP(_ entry: DNSUpstreamPool.Pending, upstream index: Int) {
        let mailbox = self.mailbox
        let tcp = proxy.upstream
        let server = proxy.configuration.upstreams[index]
        let timeout = proxy.configuration.upstreamTimeout
        // The request's bytes carry id 0 (the pool patches its own into each datagram): this leg gets a
        // random one too.
        let id = UInt16.random(in: 0...UInt16.max)
        var bytes = entry.request.outgoingBytes
        bytes[0] = UInt8(id >> 8)
        bytes[1] = UInt8(truncatingIfNeeded: id)
        guard var expected = entry.request.outgoing else {
            mailbox.post(.init(entry: entry, upstream: index, reply: nil, timedOut: false))
            return
        }
        expected.header.id = id
        Task {
            var reply: DNSMessage? = nil
            var timedOut = false
            do {
                reply = try await tcp.exchangeTCP(bytes, expecting: expected, server: server, timeout: timeout)
            } catch {
                timedOut = error as? DNSUpstreamError == .timeout
            }
            mailbox.post(.init(entry: entry, upstream: index, reply: reply, timedOut: timedOut))
        }
    }

    private func deliverMail() {
        for result in mailbox.take() {
            pool.retryFinished(result.entry, upstream: result.upstream, reply: result.reply, timedOut: result.timedOut)
        }
    }

    /// Sends what was queued; a broken upstream socket's queries move on (which may queue more).
    func flush() {
        while !outbox.isEmpty {
            outbox.flush()
            let (failures, dropped) = outbox.takeFailures()
            if dropped > 0 { proxy.counters.increment(.sendDropped, by: UInt64(dropped)) }
            for failure in failures { pool.sendFailed(failure.fd) }
        }
    }
}

// One exchange with an upstream resolver, over UDP or TCP, bounded by a timeout, for the async path
// (queries from TCP clients, `DNSProxy.answer`) and the TCP retry of truncated answers; UDP queries from
// the UDP threads go through their DNSUpstreamPool instead. Every UDP exchange here uses a fresh connected socket: the kernel then delivers only datagrams from the upstream's address and port,
// and the random source port plus a random id make blind spoofing expensive (RFC 5452). A reply must also
// carry our id, the QR bit and our question, else it is ignored (counted) and the wait goes on, so a
// forged datagram cannot cut a real answer short.
import NIOCore
import NIOPosix
import SluiceWire

/// Why an exchange failed.
enum DNSUpstreamError: Error {
    case timeout
    case closed
}

/// Sends queries to upstream resolvers. Stateless apart from the event loop group; any task may call it.
struct DNSUpstreamClient: Sendable {
    let group: any EventLoopGroup
    let counters: DNSProxyCounters

    /// Sends `query` (already carrying `expected.id`) over UDP and returns the first matching answer.
    func exchangeUDP(_ query: [UInt8], expecting expected: DNSMessage, server: SocketAddress,
                     timeout: TimeAmount) async throws -> DNSMessage {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: DNSMessage.self)
        let counters = self.counters
        let bootstrap = DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamUDPHandler(expected: expected, server: server, promise: promise, counters: counters))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: server).get()
        } catch {
            promise.fail(error)
            throw error
        }
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(DNSUpstreamError.timeout) }
        var buffer = channel.allocator.buffer(capacity: query.count)
        buffer.writeBytes(query)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: server, data: buffer), promise: nil)
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    /// Sends `query` over a new TCP connection and returns the matching answer.
    func exchangeTCP(_ query: [UInt8], expecting expected: DNSMessage, server: SocketAddress,
                     timeout: TimeAmount) async throws -> DNSMessage {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: DNSMessage.self)
        let counters = self.counters
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(DNSUpstreamError.timeout) }
        defer { timer.cancel() }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamTCPHandler(expected: expected, promise: promise, counters: counters))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: server).get()
        } catch {
            promise.fail(error)
            throw error
        }
        defer { channel.close(promise: nil) }
        channel.writeAndFlush(ByteBuffer.dnsTCPFrame(query, allocator: channel.allocator), promise: nil)
        return try await promise.futureResult.get()
    }
}

/// Whether `reply` answers `query`: a response with its id and its question (names case-insensitively).
func dnsReply(_ reply: DNSMessage, matches query: DNSMessage) -> Bool {
    reply.header.isResponse && reply.header.id == query.header.id && reply.header.opcode == query.header.opcode
        && reply.questions == query.questions
}

/// Completes the exchange with the first valid datagram. Runs on the socket's event loop.
private final class UpstreamUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let expected: DNSMessage
    let server: SocketAddress
    let promise: EventLoopPromise<DNSMessage>
    let counters: DNSProxyCounters

    init(expected: DNSMessage, server: SocketAddress, promise: EventLoopPromise<DNSMessage>,
         counters: DNSProxyCounters) {
        self.expected = expected
        self.server = server
        self.promise = promise
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == server,
              let reply = try? DNSMessage(parsing: Array(envelope.data.readableBytesView)),
              dnsReply(reply, matches: expected)
        else {
            counters.increment(.upstreamMismatched)
            return
        }
        promise.succeed(reply)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ECONNREFUSED from an ICMP port unreachable: nobody listens there, no need to wait for the timeout.
        promise.fail(error)
    }
}

/// Completes the exchange with the first frame that matches. Runs on the connection's event loop.
private final class UpstreamTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let expected: DNSMessage
    let promise: EventLoopPromise<DNSMessage>
    let counters: DNSProxyCounters

    init(expected: DNSMessage, promise: EventLoopPromise<DNSMessage>, counters: DNSProxyCounters) {
        self.expected = expected
        self.promise = promise
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let reply = try? DNSMessage(parsing: Array(buffer.readableBytesView)), dnsReply(reply, matches: expected)
        else {
            counters.increment(.upstreamMismatched)
            return
        }
        promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSUpstreamError.closed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

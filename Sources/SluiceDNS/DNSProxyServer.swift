// The proxy's sockets, on SwiftNIO: per configured address one UDP listener per event loop (SO_REUSEPORT,
// so the kernel spreads clients over the loops and misses scale with cores) and one TCP listener. A UDP
// query is handled on its listener's event loop: parsed, judged and, when denied or cached, answered right
// there (replies of one read burst leave in one flush, sendmmsg); a forwarded one goes out on the
// loop's pool of long-lived upstream sockets (DNSUpstreamPool) and is answered from its read. Datagrams
// are read in bursts (recvmmsg). TCP queries are answered in a task each (DNSProxy.answer, fresh
// upstream sockets); TCP replies may leave out of order, which RFC 7766 allows (clients match on id). DNSProxyService wraps
// the listeners as a swift-service-lifecycle Service for `sluice run`.
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluicePolicy

/// The bound listeners. Created by `start`, closed by `close`; both may be called from any task.
public final class DNSProxyServer: Sendable {
    /// The query logic.
    public let proxy: DNSProxy
    /// The first UDP listener and the TCP listener of each configured address, in that order.
    private let channels: [any Channel]
    /// The UDP listeners of the other event loops (same addresses and ports, SO_REUSEPORT).
    private let extraUDP: [any Channel]

    private init(proxy: DNSProxy, channels: [any Channel], extraUDP: [any Channel]) {
        self.proxy = proxy
        self.channels = channels
        self.extraUDP = extraUDP
    }

    /// The local addresses actually bound (UDP first, then TCP, per configured address); useful with port 0.
    public var boundAddresses: [SocketAddress] { channels.compactMap(\.localAddress) }

    /// UDP listener sockets in all (one per event loop used, per configured address).
    public var udpListenerCount: Int { channels.count / 2 + extraUDP.count }

    /// Binds UDP and TCP on every configured listen address: one UDP socket per event loop of `group`
    /// (`DNSProxyConfiguration.udpListenersPerAddress`), sharing the port with SO_REUSEPORT so the kernel
    /// spreads clients over the loops, each with its own upstream pool; one TCP listener.
    public static func start(proxy: DNSProxy, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> DNSProxyServer
    {
        var channels: [any Channel] = []
        var extraUDP: [any Channel] = []
        let loops = Array(group.makeIterator())
        let listeners = max(1, min(proxy.configuration.udpListenersPerAddress ?? loops.count, loops.count))
        do {
            var index = 0
            var attempt = 0
            while index < proxy.configuration.listen.count {
                let address = proxy.configuration.listen[index]
                func bindUDP(_ loop: any EventLoop, to address: SocketAddress) async throws -> any Channel {
                    var bootstrap = DatagramBootstrap(group: loop)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelOption(.datagramVectorReadMessageCount, value: dnsVectorReadCount)
                        .channelOption(.recvAllocator, value: dnsVectorReadAllocator)
                    if listeners > 1 {
                        // Only then: a lone listener keeps EADDRINUSE against a second proxy on its port.
                        bootstrap = bootstrap.channelOption(
                            .socketOption(NIOBSDSocket.Option(rawValue: CInt(SO_REUSEPORT))), value: 1)
                    }
                    return try await bootstrap
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(DNSUDPQueryHandler(proxy: proxy))
                            }
                        }
                        .bind(to: address).get()
                }
                let udp = try await bindUDP(loops[0], to: address)
                channels.append(udp)
                // The same port for TCP as UDP got (matters when the configured port is 0).
                let tcpAddress = try udp.localAddress.map { bound in
                    var copy = address
                    if let port = bound.port {
                        copy = try SocketAddress(ipAddress: address.ipAddress ?? "", port: port)
                    }
                    return copy
                } ?? address
                let idle = proxy.configuration.tcpIdleTimeout
                let tcpBootstrap = ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(DNSTCPQueryHandler(proxy: proxy))
                        }
                    }
                let tcp: any Channel
                do {
                    tcp = try await tcpBootstrap.bind(to: tcpAddress).get()
                } catch let error as IOError where error.errnoCode == EADDRINUSE && address.port == 0 && attempt < 5 {
                    // Port 0: the number UDP got may be taken for TCP (another socket's ephemeral port).
                    try? await udp.close()
                    channels.removeLast()
                    attempt += 1
                    continue
                }
                channels.append(tcp)
                // The other loops' UDP listeners, on the port the first got.
                for loop in loops.dropFirst().prefix(listeners - 1) {
                    extraUDP.append(try await bindUDP(loop, to: tcpAddress))
                }
                attempt = 0
                index += 1
            }
        } catch {
            for channel in channels + extraUDP { try? await channel.close() }
            throw error
        }
        return DNSProxyServer(proxy: proxy, channels: channels, extraUDP: extraUDP)
    }

    /// Closes every listener (TCP connections already accepted finish on their own or time out).
    public func close() async {
        for channel in channels + extraUDP { try? await channel.close() }
    }
}

/// Datagrams read per system call (recvmmsg) on the UDP listener and the pooled upstream sockets.
let dnsVectorReadCount = 32
/// Room for `dnsVectorReadCount` datagrams of up to 4 KiB each: NIO splits one buffer among the messages
/// of a vector read, and a datagram longer than its share would be cut (then it fails to parse).
var dnsVectorReadAllocator: FixedSizeRecvByteBufferAllocator {
    FixedSizeRecvByteBufferAllocator(capacity: dnsVectorReadCount * 4096)
}

/// The source address of a query as the policy sees it (IPv4-mapped IPv6 as IPv4). Read from the socket
/// address's bytes: formatting it as text and parsing that back cost more than judging the query.
func policyAddress(_ address: SocketAddress?) -> IPAddress? {
    switch address {
    case .v4(let v4):
        return .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
    case .v6(let v6):
        var value: UInt128 = 0
        withUnsafeBytes(of: v6.address.sin6_addr) { bytes in
            for byte in bytes { value = value << 8 | UInt128(byte) }
        }
        if value >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: value)) }
        return .v6(value)
    default:
        return nil
    }
}

/// Answers datagrams on the listener's event loop; forwards through this loop's upstream pool.
private final class DNSUDPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let proxy: DNSProxy
    private var pool: DNSUpstreamPool?
    /// Replies written since the last flush.
    private var unflushed = false

    init(proxy: DNSProxy) {
        self.proxy = proxy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let pool = DNSUpstreamPool(eventLoop: context.eventLoop, proxy: proxy)
        let channel = context.channel
        pool.onBatchEnd = { [weak self] in
            guard let self, self.unflushed else { return }
            self.unflushed = false
            channel.flush()
        }
        self.pool = pool
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pool?.close()
        pool = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = policyAddress(envelope.remoteAddress) else { return }
        guard proxy.enter() else { return }
        let bytes = Array(envelope.data.readableBytesView)
        let client = envelope.remoteAddress
        switch proxy.prepare(bytes, from: source, overTCP: false, upstreamID: 0) {
        case .reply(let reply):
            proxy.leave()
            send(reply, to: client, on: context.channel)
        case .drop:
            proxy.leave()
        case .forward(let request):
            guard let pool else {
                proxy.leave()
                return
            }
            let channel = context.channel
            let proxy = self.proxy
            pool.forward(request) { [weak self] reply in
                proxy.leave()
                let answer = proxy.complete(request, upstream: reply)
                self?.send(answer, to: client, on: channel)
            }
        }
    }

    private func send(_ reply: [UInt8], to client: SocketAddress, on channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: reply.count)
        buffer.writeBytes(reply)
        channel.write(AddressedEnvelope(remoteAddress: client, data: buffer), promise: nil)
        unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        pool?.flushQueries()  // the burst's forwarded queries leave together (sendmmsg)
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP listener must survive errors (e.g. ICMP-induced ones from a client that went away).
    }
}

/// Answers each framed query of one TCP connection in a task. Runs on the connection's event loop.
private final class DNSTCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let proxy: DNSProxy

    init(proxy: DNSProxy) {
        self.proxy = proxy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let source = policyAddress(context.channel.remoteAddress) else {
            context.close(promise: nil)
            return
        }
        guard proxy.enter() else {
            context.close(promise: nil)
            return
        }
        let bytes = Array(frame.readableBytesView)
        let channel = context.channel
        let proxy = self.proxy
        Task {
            defer { proxy.leave() }
            guard let reply = await proxy.answer(bytes, from: source, overTCP: true) else {
                channel.close(promise: nil)  // unparsable without a header: the stream cannot be trusted
                return
            }
            channel.writeAndFlush(ByteBuffer.dnsTCPFrame(reply, allocator: channel.allocator), promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The proxy as a Service: binds on `run`, purges expired learned bindings every few seconds, and closes
/// the listeners on graceful shutdown.
public struct DNSProxyService: Service {
    /// The query logic (policy, cache, learned set, counters).
    public let proxy: DNSProxy
    let logger: Logger
    let group: any EventLoopGroup

    /// A service for `proxy`.
    public init(proxy: DNSProxy, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.proxy = proxy
        self.logger = logger
        self.group = group
    }

    public func run() async throws {
        let server = try await DNSProxyServer.start(proxy: proxy, group: group)
        let bound = Set(server.boundAddresses.map { "\($0)" }).sorted()
        logger.info("DNS proxy listening", metadata: ["addresses": "\(bound)",
                                                      "upstreams": "\(proxy.configuration.upstreams)"])
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(5))
                proxy.learned.purgeExpired()
            }
        }
        await server.close()
        logger.info("DNS proxy stopped")
    }
}

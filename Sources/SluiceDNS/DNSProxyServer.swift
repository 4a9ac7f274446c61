// The proxy's sockets: per configured address one UDP listener per UDP thread (SO_REUSEPORT, so the kernel
// spreads clients over the threads and misses scale with cores) and one TCP listener on SwiftNIO. The UDP
// threads (DNSUDPLoop) answer denials and cache hits at once and forward the rest over their own pools of
// long-lived upstream sockets, in batches (recvmmsg/sendmmsg). TCP queries are answered in a task each
// (DNSProxy.answer, fresh upstream sockets); TCP replies may leave out of order, which RFC 7766 allows
// (clients match on id). DNSProxyService wraps the listeners as a swift-service-lifecycle Service for
// `sluice run`.
#if canImport(Glibc)
import Glibc
#endif
import CSluiceSystem
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluicePolicy
import Synchronization

/// The bound listeners and the UDP threads. Created by `start`, stopped by `close`; both may be called
/// from any task.
public final class DNSProxyServer: Sendable {
    /// The query logic.
    public let proxy: DNSProxy
    /// Per configured address, the UDP listeners' port and the TCP listener, in that order.
    public let boundAddresses: [SocketAddress]
    /// The TCP listeners (SwiftNIO).
    private let tcp: [any Channel]
    /// The UDP threads' mailboxes (to stop them) and the threads (to join them).
    private let threads: [(mailbox: DNSUDPMailbox, thread: pthread_t)]
    /// Every UDP listener descriptor, closed once the threads have stopped.
    private let udpDescriptors: [Int32]
    private let closed = Mutex(false)

    private init(proxy: DNSProxy, boundAddresses: [SocketAddress], tcp: [any Channel],
                 threads: [(mailbox: DNSUDPMailbox, thread: pthread_t)], udpDescriptors: [Int32]) {
        self.proxy = proxy
        self.boundAddresses = boundAddresses
        self.tcp = tcp
        self.threads = threads
        self.udpDescriptors = udpDescriptors
    }

    /// UDP listener sockets in all (one per UDP thread, per configured address).
    public var udpListenerCount: Int { udpDescriptors.count }

    /// Binds UDP and TCP on every configured listen address and starts the UDP threads
    /// (`DNSProxyConfiguration.udpThreads`, each with its own listener per address on the shared port);
    /// TCP connections are served on `group`.
    public static func start(proxy: DNSProxy, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> DNSProxyServer
    {
        let threadCount = max(1, proxy.configuration.udpThreads ?? ProcessInfo.processInfo.activeProcessorCount)
        // listeners[thread][address]
        var listeners: [[Int32]] = Array(repeating: [], count: threadCount)
        var tcp: [any Channel] = []
        var bound: [SocketAddress] = []
        func closeAll() async {
            for fd in listeners.joined() { Glibc.close(fd) }
            for channel in tcp { try? await channel.close() }
        }
        do {
            for address in proxy.configuration.listen {
                var attempt = 0
                while true {
                    let first = try UDPSocket.listener(on: address, reusePort: threadCount > 1)
                    // The same port for TCP and the other threads as the first UDP socket got (port 0).
                    var shared = address
                    if let port = UDPSocket.localPort(of: first), let ip = address.ipAddress {
                        shared = try SocketAddress(ipAddress: ip, port: port)
                    }
                    do {
                        tcp.append(try await bindTCP(shared, proxy: proxy, group: group))
                    } catch let error as IOError where error.errnoCode == EADDRINUSE && address.port == 0 && attempt < 5 {
                        // Port 0: the number UDP got may be taken for TCP (another socket's ephemeral port).
                        Glibc.close(first)
                        attempt += 1
                        continue
                    } catch {
                        Glibc.close(first)
                        throw error
                    }
                    listeners[0].append(first)
                    for thread in 1..<threadCount {
                        listeners[thread].append(try UDPSocket.listener(on: shared, reusePort: true))
                    }
                    bound += [shared, tcp.last?.localAddress ?? shared]
                    break
                }
            }
        } catch {
            await closeAll()
            throw error
        }
        var threads: [(mailbox: DNSUDPMailbox, thread: pthread_t)] = []
        do {
            let loops = try listeners.map { try DNSUDPLoop(proxy: proxy, listeners: $0) }
            for (index, loop) in loops.enumerated() {
                threads.append((loop.mailbox, try startThread(loop, index: index)))
            }
        } catch {
            stop(threads)
            await closeAll()
            throw error
        }
        return DNSProxyServer(proxy: proxy, boundAddresses: bound, tcp: tcp, threads: threads,
                              udpDescriptors: Array(listeners.joined()))
    }

    /// Runs `loop` on a thread of its own named `sluice-dnsN`, at the process's nice (a thread inherits its
    /// creator's, here a Swift concurrency thread's). A plain pthread, so `close` can join it: once joined,
    /// nothing of the proxy runs any more.
    private static func startThread(_ loop: DNSUDPLoop, index: Int) throws -> pthread_t {
        final class Start {
            let loop: DNSUDPLoop
            let name: String
            init(loop: DNSUDPLoop, name: String) {
                self.loop = loop
                self.name = name
            }
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 1 << 20)
        let argument = Unmanaged.passRetained(Start(loop: loop, name: "sluice-dns\(index)")).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { raw in
            // The loop is handed over to this thread here and used by it alone from now on.
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            _ = start.name.withCString { sluice_set_current_thread_name($0) }
            _ = sluice_adopt_process_nice()
            start.loop.run()
            return nil
        }, argument)
        guard status == 0 else {
            Unmanaged<Start>.fromOpaque(argument).release()
            throw IOError(errnoCode: status, reason: "pthread_create")
        }
        return thread
    }

    /// Stops and joins `threads` (each wakes at once from its eventfd; the join takes microseconds).
    private static func stop(_ threads: [(mailbox: DNSUDPMailbox, thread: pthread_t)]) {
        for thread in threads { thread.mailbox.stop() }
        for thread in threads { pthread_join(thread.thread, nil) }
    }

    private static func bindTCP(_ address: SocketAddress, proxy: DNSProxy, group: any EventLoopGroup)
        async throws -> any Channel
    {
        let idle = proxy.configuration.tcpIdleTimeout
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(DNSTCPQueryHandler(proxy: proxy))
                }
            }
            .bind(to: address).get()
    }

    /// Stops the UDP threads (queries they were forwarding are given up) and closes every listener (TCP
    /// connections already accepted finish on their own or time out). Only the first call does anything.
    public func close() async {
        guard closed.withLock({ state in
            defer { state = true }
            return !state
        }) else { return }
        Self.stop(threads)
        for fd in udpDescriptors { Glibc.close(fd) }
        for channel in tcp { try? await channel.close() }
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
        guard let source = DatagramPeer(context.channel.remoteAddress)?.policyAddress else {
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

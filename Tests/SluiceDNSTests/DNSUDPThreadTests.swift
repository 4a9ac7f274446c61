// The proxy's UDP threads below DNSProxyServer: peer addresses as the policy reads them, the send batch
// (one sendmmsg per socket, failures reported), thread names and their end on close, fail-over on an
// upstream that refuses, and datagrams too long for a receive slot.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
@testable import SluiceDNS
import SluicePolicy
import SluiceWire
import Testing

/// This process's threads now: kernel id → name.
private func threads() -> [String: String] {
    var result: [String: String] = [:]
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        result[task] = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return result
}

/// Reads one datagram from non-blocking `fd`, waiting up to a second.
private func receiveOne(_ fd: Int32) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: 2048)
    for _ in 0..<100 {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count >= 0 { return Array(buffer.prefix(count)) }
        usleep(10_000)
    }
    return nil
}

@Suite(.serialized) struct DNSUDPThreadTests {
    @Test func peersReadAsThePolicySeesThem() throws {
        #expect(DatagramPeer(try SocketAddress(ipAddress: "10.1.2.3", port: 53))?.policyAddress == IPAddress("10.1.2.3"))
        #expect(DatagramPeer(try SocketAddress(ipAddress: "2001:db8::1", port: 53))?.policyAddress
            == IPAddress("2001:db8::1"))
        // A dual-stack listener sees IPv4 clients as mapped addresses; the policy must see IPv4.
        #expect(DatagramPeer(try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 53))?.policyAddress
            == IPAddress("10.1.2.3"))
        #expect(DatagramPeer(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
        #expect(DatagramPeer(nil) == nil)
    }

    @Test func outboxSendsEverySocketsBatchInOrderAndReportsFailures() throws {
        let receiverA = try UDPSocket.listener(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
        let receiverB = try UDPSocket.listener(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
        let addressB = try SocketAddress(ipAddress: "127.0.0.1", port: try #require(UDPSocket.localPort(of: receiverB)))
        let toA = try UDPSocket.connected(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: try #require(UDPSocket.localPort(of: receiverA))))
        let unconnected = try UDPSocket.listener(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
        // A port nobody listens on: the first datagram draws an ICMP port unreachable, the next send fails.
        let gone = try UDPSocket.listener(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
        let gonePort = try #require(UDPSocket.localPort(of: gone))
        close(gone)
        let refused = try UDPSocket.connected(to: try SocketAddress(ipAddress: "127.0.0.1", port: gonePort))
        defer { for fd in [receiverA, receiverB, toA, unconnected, refused] { close(fd) } }

        let outbox = DatagramOutbox()
        let peerB = try #require(DatagramPeer(addressB))
        // Interleaved on two sockets; each socket's datagrams must arrive in the order queued.
        outbox.append([1], fd: toA, to: nil)
        outbox.append([2], fd: unconnected, to: peerB)
        outbox.append([3], fd: toA, to: nil)
        outbox.append([4], fd: unconnected, to: peerB)
        outbox.append([5], fd: refused, to: nil)
        #expect(!outbox.isEmpty)
        outbox.flush()
        #expect(outbox.isEmpty)
        #expect([receiveOne(receiverA), receiveOne(receiverA)] == [[1], [3]])
        #expect([receiveOne(receiverB), receiveOne(receiverB)] == [[2], [4]])
        _ = outbox.takeFailures()
        usleep(50_000)  // the ICMP error reaches the socket
        outbox.append([6], fd: refused, to: nil)
        outbox.append([7], fd: toA, to: nil)
        outbox.flush()
        let (failures, dropped) = outbox.takeFailures()
        #expect(failures.map(\.fd) == [refused] && failures.first?.errorNumber == ECONNREFUSED)
        #expect(dropped == 1)
        #expect(receiveOne(receiverA) == [7], "a failing socket does not hold back the others")
    }

    @Test func udpThreadsAreNamedAndEndOnClose() async throws {
        var configuration = DNSProxyConfiguration(listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                                                  upstreams: [try SocketAddress(ipAddress: "127.0.0.1", port: 9)])
        configuration.udpThreads = 3
        // Other suites run proxies at the same time: this server's threads are the ones that are new.
        let before = Set(threads().keys)
        let server = try await DNSProxyServer.start(proxy: DNSProxy(configuration: configuration))
        var ours: [String: String] = [:]
        for _ in 0..<100 {  // each thread names itself as it starts
            ours = threads().filter { !before.contains($0.key) && $0.value.hasPrefix("sluice-dns") }
            if ours.count == 3 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        await server.close()
        #expect(Set(ours.values) == ["sluice-dns0", "sluice-dns1", "sluice-dns2"], "\(ours)")
        #expect(server.udpListenerCount == 3)
        // `close` returns once the threads have been joined.
        let left = Set(threads().keys)
        #expect(ours.keys.allSatisfy { !left.contains($0) })
    }

    @Test func aRefusingUpstreamFailsOverBeforeItsTimeout() async throws {
        let answering = try await ScriptedUpstream { query in [try! upstreamAnswer(to: query).serialized()] }
        let gone = try UDPSocket.listener(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
        let gonePort = try #require(UDPSocket.localPort(of: gone))
        close(gone)
        var configuration = DNSProxyConfiguration(
            listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
            upstreams: [try SocketAddress(ipAddress: "127.0.0.1", port: gonePort), answering.address])
        configuration.upstreamTimeout = .seconds(5)
        configuration.cache.maxEntries = 0
        configuration.udpThreads = 1
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(loopbackPolicyJSON))
        let server = try await DNSProxyServer.start(proxy: proxy)
        let started = ContinuousClock.now
        let reply = try? await DNSUpstreamPoolTests().ask(server, "www.example.com", id: 7)
        let elapsed = ContinuousClock.now - started
        await server.close()
        await answering.close()
        #expect(reply?.answers.count == 2, "the second upstream's answer")
        // The ICMP port unreachable ends the first exchange (upstream_errors), not its 5 s timeout.
        #expect(elapsed < .seconds(2), "took \(elapsed)")
        #expect(proxy.counters.value(.upstreamErrors) >= 1 && proxy.counters.value(.upstreamTimeouts) == 0)
    }

    @Test func aDatagramLongerThanAReceiveSlotIsDroppedAndCounted() async throws {
        let answering = try await ScriptedUpstream { query in [try! upstreamAnswer(to: query).serialized()] }
        var configuration = DNSProxyConfiguration(listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                                                  upstreams: [answering.address])
        configuration.udpThreads = 1
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(loopbackPolicyJSON))
        let server = try await DNSProxyServer.start(proxy: proxy)
        // A valid query padded past the slot: cut by the kernel, so it must not be parsed as if whole.
        var long = DNSMessage.query(id: 9, name: try DNSName("www.example.com"), type: .a).serialized()
        long += [UInt8](repeating: 0, count: DatagramInbox.slotSize + 100 - long.count)
        let client = try UDPSocket.connected(to: server.boundAddresses[0])
        _ = long.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
        close(client)
        // The thread is still serving: a normal query after it is answered.
        let reply = try? await DNSUpstreamPoolTests().ask(server, "www.example.com", id: 10)
        await server.close()
        await answering.close()
        #expect(reply?.header.id == 10 && reply?.answers.count == 2)
        #expect(proxy.counters.value(.droppedMalformed) == 1)
    }
}

// The processor's TCP resets (docs/design/dataplane-workers-and-flows.md, "TCP resets"), on frames
// built in memory: a TLS deny (client's or server's packet) and a policy cut reset both ends with
// the addresses, ports, MACs, sequence numbers and checksums each end accepts; a denied new flow
// is dropped silently unless `resetDeniedTCP` is on, and then only its sender is reset; a missing
// neighbour skips the receiver's reset and is counted.

import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite(.serialized) struct TCPResetProcessorTests {
    /// One decoded reset frame.
    struct Reset {
        var packet: ParsedPacket
        var sequence: UInt32
        var ack: UInt32
        var destinationMAC: MACAddress
        var sourceMAC: MACAddress

        init(_ frame: [UInt8]) throws {
            packet = try frame.withUnsafeBytes { try PacketParser.parse($0) }
            let l4 = packet.l4Offset
            (sequence, ack, destinationMAC, sourceMAC) = frame.withUnsafeBytes {
                ($0.bigEndianUInt32(at: l4 + 4), $0.bigEndianUInt32(at: l4 + 8), MACAddress(from: $0, at: 0),
                 MACAddress(from: $0, at: 6))
            }
            let checksumsHold = frame.withUnsafeBytes { [packet] in
                InternetChecksum.verifyTransport($0, packet)
                    && (packet.tuple.family == .v6 || InternetChecksum.verifyIPv4Header($0, l3Offset: packet.l3Offset))
            }
            #expect(checksumsHold, "reset checksum")
        }
    }

    static let clientISN: UInt32 = 0xFFFF_FF00
    static let serverISN: UInt32 = 7000

    /// Opens a TCP connection with realistic sequence numbers; returns the client's segment template
    /// (ACK set, acknowledging the SYN+ACK).
    func open(_ gateway: ProcessorHarness, v6: Bool = false) -> FrameBuilder {
        var syn = v6 ? Frames.tcp(from: Topology.client6, to: Topology.server6, sourcePort: 41000, flags: .syn, v6: true)
            : Frames.tcp(sourcePort: 41000, flags: .syn)
        syn.sequenceNumber = Self.clientISN
        #expect(gateway.send(syn, from: .inside, payload: []).action == .forward(.outside))
        var synAck = Frames.reply(syn, flags: [.syn, .ack])
        synAck.sequenceNumber = Self.serverISN
        synAck.acknowledgementNumber = Self.clientISN &+ 1
        #expect(gateway.send(synAck, from: .outside, payload: []).action == .forward(.inside))
        var data = syn
        data.tcpFlags = [.ack, .psh]
        data.sequenceNumber = Self.clientISN &+ 1
        data.acknowledgementNumber = Self.serverISN &+ 1
        return data
    }

    /// Checks the two resets answering a client segment `client` (seq, ack) that the gateway dropped.
    func expectBothEndsReset(_ resets: [(side: Side, frame: [UInt8])], client: FiveTuple, clientSequence: UInt32,
                             clientAck: UInt32) throws {
        try #require(resets.count == 2)
        #expect(resets[0].side == .inside && resets[1].side == .outside)
        let toClient = try Reset(resets[0].frame)
        #expect(toClient.packet.tuple == client.reversed())
        #expect(toClient.packet.tcpFlags == .rst && toClient.sequence == clientAck)
        #expect(toClient.destinationMAC == Topology.clientMAC && toClient.sourceMAC == Topology.insideMAC)
        let toServer = try Reset(resets[1].frame)
        #expect(toServer.packet.tuple == client)
        #expect(toServer.packet.tcpFlags == [.rst, .ack])
        #expect(toServer.sequence == clientSequence && toServer.ack == clientAck)
        #expect(toServer.destinationMAC == Topology.routerMAC && toServer.sourceMAC == Topology.outsideMAC)
    }

    @Test(arguments: [false, true])
    func aTLSDenyOnTheClientHelloResetsBothEnds(v6: Bool) throws {
        let policy = TLSPolicies.sni(#"["api.example.com"]"#).replacingOccurrences(
            of: #"["10.0.0.0/24"]"#, with: #"["10.0.0.0/24", "fd00::/64"]"#)
        let gateway = ProcessorHarness(policy: try compilePolicy(policy))
        let data = open(gateway, v6: v6)
        let decision = gateway.send(data, from: .inside, payload: Handshake.clientHello(sni: "evil.example.com"))
        #expect(decision.action == .reset(.tlsDenied, bothEnds: true))
        try expectBothEndsReset(gateway.resets(for: decision, from: .inside), client: data.tuple,
                                clientSequence: Self.clientISN &+ 1, clientAck: Self.serverISN &+ 1)
        #expect(gateway.count(.tlsDenied) == 1 && gateway.count(.tcpResetsNoNeighbour) == 0)
    }

    @Test func aTLS13DenyOnTheServerHelloResetsBothEnds() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(TLSPolicies.certificate(
            #"{"server_san": ["api.example.com"], "tls13_uninspectable": "deny"}"#)))
        let data = open(gateway)
        let hello = Handshake.clientHello(sni: "api.example.com")
        #expect(gateway.send(data, from: .inside, payload: hello).action == .forward(.outside))
        var server = Frames.reply(data, flags: [.ack, .psh])
        server.sequenceNumber = Self.serverISN &+ 1
        server.acknowledgementNumber = Self.clientISN &+ 1 &+ UInt32(hello.count)
        let decision = gateway.send(server, from: .outside,
                                    payload: Handshake.records(Handshake.serverHello(tls13: true)))
        #expect(decision.action == .reset(.tlsDenied, bothEnds: true))
        let resets = gateway.resets(for: decision, from: .outside)
        try #require(resets.count == 2)
        // The server sent it: its reset goes back out of the outside, the client's out of the inside.
        #expect(resets[0].side == .outside && resets[1].side == .inside)
        let toServer = try Reset(resets[0].frame)
        #expect(toServer.packet.tuple == data.tuple && toServer.packet.tcpFlags == .rst)
        #expect(toServer.sequence == Self.clientISN &+ 1 &+ UInt32(hello.count))
        #expect(toServer.destinationMAC == Topology.routerMAC && toServer.sourceMAC == Topology.outsideMAC)
        let toClient = try Reset(resets[1].frame)
        #expect(toClient.packet.tuple == data.tuple.reversed() && toClient.packet.tcpFlags == [.rst, .ack])
        #expect(toClient.sequence == Self.serverISN &+ 1 && toClient.ack == server.acknowledgementNumber)
        #expect(toClient.destinationMAC == Topology.clientMAC && toClient.sourceMAC == Topology.insideMAC)
    }

    @Test func aPolicyCutResetsBothEndsAtTheNextPacket() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let data = open(gateway)
        #expect(gateway.send(data, from: .inside, payload: [1, 2, 3]).action == .forward(.outside))
        gateway.policy = try compilePolicy(Policies.web.replacingOccurrences(of: "[443]", with: "[8443]"))
        gateway.generation = 2
        var next = data
        next.sequenceNumber = Self.clientISN &+ 4
        let decision = gateway.send(next, from: .inside, payload: [4, 5])
        #expect(decision.action == .reset(.droppedFlowCut, bothEnds: true))
        #expect(gateway.count(.flowsCut) == 1)
        try expectBothEndsReset(gateway.resets(for: decision, from: .inside), client: data.tuple,
                                clientSequence: Self.clientISN &+ 4, clientAck: Self.serverISN &+ 1)
        // A reset arriving afterwards is never answered with a reset.
        var rst = next
        rst.tcpFlags = [.rst]
        #expect(gateway.send(rst, from: .inside, payload: []).action == .drop(.deniedPackets))
    }

    @Test func aCutSeenFirstFromTheServerResetsBothEndsToo() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let data = open(gateway)
        gateway.policy = try compilePolicy(Policies.noDNS.replacingOccurrences(of: "[443]", with: "[8443]"))
        gateway.generation = 2
        var server = Frames.reply(data, flags: [.ack, .psh])
        server.sequenceNumber = Self.serverISN &+ 1
        server.acknowledgementNumber = Self.clientISN &+ 1
        let decision = gateway.send(server, from: .outside, payload: [9])
        #expect(decision.action == .reset(.droppedFlowCut, bothEnds: true))
        let resets = gateway.resets(for: decision, from: .outside)
        #expect(resets.map(\.side) == [.outside, .inside])
        let toClient = try Reset(try #require(resets.last).frame)
        #expect(toClient.packet.tuple == data.tuple.reversed() && toClient.sequence == Self.serverISN &+ 1)
    }

    @Test func aCutUDPFlowIsOnlyDropped() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        #expect(gateway.send(Frames.udp(), from: .inside).action == .forward(.outside))
        gateway.policy = try compilePolicy(Policies.noDNS)
        gateway.generation = 2
        #expect(gateway.send(Frames.udp(), from: .inside).action == .drop(.droppedFlowCut))
    }

    @Test func deniedNewTCPFlowsAreSilentByDefaultAndRefusedWithTheSetting() throws {
        var ssh = Frames.tcp(port: 22, flags: .syn)
        ssh.sequenceNumber = 5000
        let silent = ProcessorHarness(policy: try compilePolicy(Policies.web))
        #expect(silent.send(ssh, from: .inside, payload: []).action == .drop(.deniedPackets))

        let refusing = ProcessorHarness(policy: try compilePolicy(Policies.web), resetDeniedTCP: true)
        let decision = refusing.send(ssh, from: .inside, payload: [])
        #expect(decision.action == .reset(.deniedPackets, bothEnds: false))
        #expect(refusing.count(.deniedPackets) == 1)
        let resets = refusing.resets(for: decision, from: .inside)
        try #require(resets.count == 1)
        #expect(resets[0].side == .inside)
        // RFC 9293: a SYN without ACK is refused with <SEQ=0><ACK=ISN+1><CTL=RST,ACK>.
        let refusal = try Reset(resets[0].frame)
        #expect(refusal.packet.tuple == ssh.tuple.reversed() && refusal.packet.tcpFlags == [.rst, .ack])
        #expect(refusal.sequence == 0 && refusal.ack == 5001)
        // Denied UDP stays a silent drop.
        #expect(refusing.send(Frames.udp(port: 123), from: .inside).action == .drop(.deniedPackets))
    }

    @Test func aMissingNeighbourSkipsTheReceiversResetAndIsCounted() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(TLSPolicies.sni(#"["api.example.com"]"#)))
        let data = open(gateway)
        gateway.forwarding = Topology.snapshot(routerResolved: false)
        let decision = gateway.send(data, from: .inside, payload: Handshake.clientHello(sni: "evil.example.com"))
        #expect(decision.action == .reset(.tlsDenied, bothEnds: true))
        let resets = gateway.resets(for: decision, from: .inside)
        #expect(resets.map(\.side) == [.inside])
        #expect(gateway.count(.tcpResetsNoNeighbour) == 1)
        var requests = gateway.neighbourRequests.consumer
        #expect(requests.pop()?.address == ipv4("192.0.2.254"))
    }
}

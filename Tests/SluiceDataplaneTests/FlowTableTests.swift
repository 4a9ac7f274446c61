// The flow table and the TCP state machine alone, and the packet processor on frames built in
// memory: forwarding, replies, unsolicited traffic, denies and audit findings, re-judging on a
// new policy generation, TCP phases and timeouts, ICMP errors, hop limits, fail-closed drops.
// No root, no rings.

import Atomics
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite struct FlowKeyTests {
    @Test func bothDirectionsShareKeyAndHash() {
        let tuple = FiveTuple(family: .v6, protocolNumber: 6, source: ipv6("2001:db8::9"), destination: ipv6("fd00::2"),
                              sourcePort: 443, destinationPort: 50000)
        let (key, sourceIsLow) = FlowKey.canonical(tuple)
        let (reverseKey, reverseIsLow) = FlowKey.canonical(tuple.reversed())
        #expect(key == reverseKey)
        #expect(sourceIsLow != reverseIsLow)
        #expect(key.hash(seed: 7) == reverseKey.hash(seed: 7))
        #expect(key.tuple(fromLow: sourceIsLow) == tuple)
    }

    @Test func aFlowEntryIsOneCacheLine() {
        #expect(MemoryLayout<FlowEntry>.size == 64 && MemoryLayout<FlowEntry>.stride == 64)
    }
}

@Suite struct TCPFlowStateTests {
    @Test func handshakeDataAndClose() {
        var state = TCPFlowState.initial([.syn])
        #expect(state == .synSent)
        state = state.next([.syn, .ack], fromInitiator: false)
        #expect(state == .synReceived)
        state = state.next([.ack], fromInitiator: true)
        #expect(state == .established)
        state = state.next([.fin, .ack], fromInitiator: false)
        #expect(state == .finFromResponder)
        state = state.next([.fin, .ack], fromInitiator: true)
        #expect(state == .closing)
        #expect(state.next([.syn], fromInitiator: true) == .synSent, "port reuse reopens")
        #expect(TCPFlowState.established.next([.rst], fromInitiator: false) == .closed)
        #expect(TCPFlowState.initial([.ack]) == .established, "mid-stream pickup")
    }
}

@Suite struct PacketProcessorTests {
    @Test func allowedUDPIsForwardedWithRewriteAndItsReplyComesBack() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let request = Frames.udp()
        var decision = gateway.send(request, from: .inside)
        #expect(decision.action == .forward(.outside))
        let out = gateway.frameBytes
        #expect(MACAddress(from: out.withUnsafeBytes { $0 }, at: 0) == Topology.routerMAC)
        #expect(MACAddress(from: out.withUnsafeBytes { $0 }, at: 6) == Topology.outsideMAC)
        #expect(out[14 + 8] == 63, "TTL decremented")
        #expect(out.withUnsafeBytes { InternetChecksum.verifyIPv4Header($0, l3Offset: 14) }, "checksum updated")
        #expect(gateway.count(.flowsOpened) == 1)

        decision = gateway.send(Frames.reply(request), from: .outside)
        #expect(decision.action == .forward(.inside))
        #expect(MACAddress(from: gateway.frameBytes.withUnsafeBytes { $0 }, at: 0) == Topology.clientMAC)
        #expect(gateway.flows.entries().first?.packets == 2)

        // Unsolicited: another port from the outside, and a packet from the outside that claims
        // to be the inside client (the initiator's direction arriving on the wrong side).
        var unsolicited = Frames.reply(request)
        unsolicited.tuple.sourcePort = 54
        #expect(gateway.send(unsolicited, from: .outside).action == .drop(.droppedNoFlow))
        #expect(gateway.send(request, from: .outside).action == .drop(.droppedNoFlow))
        #expect(gateway.count(.droppedNoFlow) == 2)
    }

    @Test func deniedFlowIsDroppedAndReported() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let decision = gateway.send(Frames.udp(port: 123), from: .inside)
        #expect(decision.action == .drop(.deniedPackets))
        #expect(gateway.flows.count == 0)
        let events = gateway.drainEvents()
        #expect(events.count == 1)
        #expect(events.first?.kind == .finding && events.first?.enforced == true && events.first?.group == -1)
    }

    @Test func eventsStopWhenTheControlPlaneTurnsThemOff() throws {
        let enabled = UnsafeAtomic<Bool>.create(false)
        defer { enabled.destroy() }
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web), eventsEnabled: enabled)
        gateway.send(Frames.udp(port: 123), from: .inside)
        #expect(gateway.drainEvents().isEmpty && gateway.count(.deniedPackets) == 1, "counted, not reported")
        enabled.store(true, ordering: .relaxed)
        gateway.send(Frames.udp(port: 123), from: .inside)
        #expect(gateway.drainEvents().count == 1)
    }

    @Test func auditModeLetsTheDenyThroughAndRecordsIt() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.webAudit))
        #expect(gateway.send(Frames.udp(port: 123), from: .inside).action == .forward(.outside))
        let events = gateway.drainEvents()
        #expect(events.count == 1 && events.first?.enforced == false)
        // The flow carries the verdict: its later packets produce no new finding.
        gateway.send(Frames.udp(port: 123), from: .inside)
        #expect(gateway.drainEvents().isEmpty)
    }

    @Test func aNewGenerationRejudgesAndCutsFlowsItDenies() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let dns = Frames.udp()
        let https = Frames.tcp(flags: [.syn])
        #expect(gateway.send(dns, from: .inside).action == .forward(.outside))
        #expect(gateway.send(https, from: .inside).action == .forward(.outside))
        gateway.policy = try compilePolicy(Policies.noDNS)
        gateway.generation = 2
        // The DNS reply arrives first after the swap: judged again, cut.
        #expect(gateway.send(Frames.reply(dns), from: .outside).action == .drop(.droppedFlowCut))
        #expect(gateway.count(.flowsCut) == 1)
        #expect(gateway.drainEvents().contains { $0.kind == .flowCut })
        #expect(gateway.send(Frames.reply(dns), from: .outside).action == .drop(.droppedNoFlow))
        // HTTPS is still allowed: re-judged once, kept, now under generation 2.
        #expect(gateway.send(Frames.reply(https, flags: [.syn, .ack]), from: .outside).action == .forward(.inside))
        #expect(gateway.flows.entries().map(\.generation) == [2])
    }

    @Test func tcpPhasesPickTheirTimeouts() throws {
        var timeouts = FlowTimeouts()
        timeouts.tcpOpening = 5
        timeouts.tcpEstablished = 100
        timeouts.tcpClosing = 3
        let gateway = ProcessorHarness(
            flowTable: FlowTableConfiguration(capacity: 64, shardCount: 2, timeouts: timeouts),
            policy: try compilePolicy(Policies.web))
        let syn = Frames.tcp(flags: [.syn])
        gateway.send(syn, from: .inside, at: 0)
        #expect(gateway.flows.entries().first?.tcpState == .synSent)
        // Half-open for longer than tcpOpening: gone, the late SYN+ACK is unsolicited.
        #expect(gateway.send(Frames.reply(syn, flags: [.syn, .ack]), from: .outside, at: 6).action
            == .drop(.droppedNoFlow))
        #expect(gateway.count(.flowsClosed) == 1)

        gateway.send(syn, from: .inside, at: 10)
        gateway.send(Frames.reply(syn, flags: [.syn, .ack]), from: .outside, at: 10)
        var ack = syn
        ack.tcpFlags = [.ack]
        gateway.send(ack, from: .inside, at: 11)
        #expect(gateway.flows.entries().first?.tcpState == .established)
        // Established: 50 s of silence is fine.
        #expect(gateway.send(Frames.reply(syn, flags: [.ack]), from: .outside, at: 61).action == .forward(.inside))
        var fin = syn
        fin.tcpFlags = [.fin, .ack]
        gateway.send(fin, from: .inside, at: 62)
        gateway.send(Frames.reply(syn, flags: [.fin, .ack]), from: .outside, at: 62)
        #expect(gateway.flows.entries().first?.tcpState == .closing)
        #expect(gateway.flows.sweep(now: UInt64(66 * 1e9)) == 1, "closing flows leave after tcpClosing")
    }

    @Test func udpIdleTimeoutAndSweep() throws {
        var timeouts = FlowTimeouts()
        timeouts.udp = 30
        let gateway = ProcessorHarness(
            flowTable: FlowTableConfiguration(capacity: 64, shardCount: 2, timeouts: timeouts),
            policy: try compilePolicy(Policies.web))
        gateway.send(Frames.udp(), from: .inside, at: 0)
        #expect(gateway.send(Frames.reply(Frames.udp()), from: .outside, at: 29).action == .forward(.inside))
        #expect(gateway.flows.sweep(now: UInt64(40 * 1e9)) == 0, "the reply refreshed it")
        #expect(gateway.flows.sweep(now: UInt64(60 * 1e9)) == 1)
        #expect(gateway.send(Frames.reply(Frames.udp()), from: .outside, at: 61).action == .drop(.droppedNoFlow))
    }

    @Test func fullTableRefusesNewFlowsAndKeepsOldOnes() throws {
        let gateway = ProcessorHarness(flowTable: FlowTableConfiguration(capacity: 2, shardCount: 1),
                                       policy: try compilePolicy(Policies.web))
        #expect(gateway.send(Frames.udp(sourcePort: 1), from: .inside).action == .forward(.outside))
        #expect(gateway.send(Frames.udp(sourcePort: 2), from: .inside).action == .forward(.outside))
        #expect(gateway.send(Frames.udp(sourcePort: 3), from: .inside).action == .drop(.droppedFlowTableFull))
        #expect(gateway.count(.flowsRefused) == 1)
        #expect(gateway.send(Frames.reply(Frames.udp(sourcePort: 1)), from: .outside).action == .forward(.inside))
    }

    @Test func manyFlowsInsertFindAndDeleteAcrossProbeRuns() throws {
        var timeouts = FlowTimeouts()
        timeouts.udp = 10
        let gateway = ProcessorHarness(
            flowTable: FlowTableConfiguration(capacity: 4000, shardCount: 4, timeouts: timeouts),
            policy: try compilePolicy(Policies.web))
        for port in 1...3000 {
            gateway.send(Frames.udp(sourcePort: UInt16(port)), from: .inside, at: port % 2 == 0 ? 0 : 5)
        }
        #expect(gateway.flows.count == 3000)
        // Half expire; backward-shift deletion must keep the other half findable.
        #expect(gateway.flows.sweep(now: UInt64(12 * 1e9)) == 1500)
        for port in stride(from: 1, through: 3000, by: 2) {
            #expect(gateway.send(Frames.reply(Frames.udp(sourcePort: UInt16(port))), from: .outside, at: 12).action
                == .forward(.inside))
        }
    }

    @Test func icmpErrorsFollowTheFlowOfTheQuotedPacket() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let request = Frames.udp()
        gateway.send(request, from: .inside)
        // A router beyond the gateway answers the client's datagram with port unreachable.
        let original = request.bytes(payload: [1, 2, 3, 4])
        let parsed = try original.withUnsafeBytes { try PacketParser.parse($0) }
        var error = [UInt8](repeating: 0, count: 600)
        let length = original.withUnsafeBytes { originalBytes in
            error.withUnsafeMutableBytes { buffer in
                ICMPErrorBuilder.write(.destinationUnreachable(.port), answering: parsed, original: originalBytes,
                                       from: ipv4("203.0.113.1"), into: buffer, sourceMAC: Topology.routerMAC,
                                       destinationMAC: Topology.outsideMAC)
            }
        }
        let errorFrame = Array(error.prefix(length!))
        #expect(gateway.send(bytes: errorFrame, from: .outside).action == .forward(.inside))
        // The same error for a flow that does not exist is dropped.
        let stranger = ProcessorHarness(policy: try compilePolicy(Policies.web))
        #expect(stranger.send(bytes: errorFrame, from: .outside).action == .drop(.droppedNoFlow))
    }

    @Test func echoRepliesPassOnlyForTheirRequest() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let ping = Frames.echo()
        #expect(gateway.send(ping, from: .inside).action == .forward(.outside))
        #expect(gateway.send(Frames.reply(ping), from: .outside).action == .forward(.inside))
        #expect(gateway.send(Frames.reply(Frames.echo(identifier: 8)), from: .outside).action == .drop(.droppedNoFlow))
        // An echo request from the outside opens nothing.
        var inbound = Frames.reply(ping)
        inbound.icmpType = 8
        inbound.tuple.sourcePort = 99
        inbound.tuple.destinationPort = 99
        #expect(gateway.send(inbound, from: .outside).action == .drop(.droppedNoFlow))
    }

    @Test func hopLimitExhaustedAnswersTimeExceeded() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let decision = gateway.send(Frames.udp(ttl: 1), from: .inside)
        #expect(decision.action == .timeExceeded)
        var answer = [UInt8](repeating: 0, count: 1024)
        let original = gateway.frameBytes
        let length = original.withUnsafeBytes { originalBytes in
            answer.withUnsafeMutableBytes { buffer in
                gateway.processor.writeTimeExceeded(
                    original: originalBytes, side: .inside,
                    forwarding: Unmanaged.passUnretained(gateway.forwarding!), into: buffer)
            }
        }
        let reply = try Array(answer.prefix(length!)).withUnsafeBytes { try PacketParser.parse($0) }
        #expect(reply.icmp?.type == 11)
        #expect(reply.tuple.sourceV4 == UInt32(ipv4("10.0.0.1")) && reply.tuple.destination == Topology.client)
    }

    @Test func failClosed() throws {
        let gateway = ProcessorHarness(policy: nil)
        #expect(gateway.send(Frames.udp(), from: .inside).action == .drop(.droppedNoPolicy))
        gateway.policy = try compilePolicy(Policies.web)
        #expect(gateway.send(bytes: [1, 2, 3], from: .inside).action == .drop(.droppedMalformed))
        // A fragment (MF set) cannot be judged by port: dropped.
        var fragment = Frames.udp().bytes(payload: [1, 2, 3, 4])
        fragment[14 + 6] |= 0x20
        fragment.withUnsafeMutableBytes { InternetChecksum.writeIPv4Header($0, l3Offset: 14) }
        #expect(gateway.send(bytes: fragment, from: .inside).action == .drop(.droppedFragment))
        gateway.forwarding = nil
        #expect(gateway.send(Frames.udp(), from: .inside).action == .drop(.droppedNoRoute))
    }

    @Test func missingNeighbourIsDroppedAndResolutionRequested() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        gateway.forwarding = Topology.snapshot(routerResolved: false)
        #expect(gateway.send(Frames.udp(), from: .inside).action == .drop(.droppedNoNeighbour))
        var consumer = gateway.neighbourRequests.consumer
        #expect(consumer.pop() == NeighbourRequest(interfaceIndex: 2, family: .v4, address: ipv4("192.0.2.254")))
    }

    @Test func ipv6TCPIsForwardedWithHopLimitDecremented() throws {
        let gateway = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let syn = Frames.tcp(from: Topology.client6, to: Topology.server6, flags: [.syn], v6: true)
        #expect(gateway.send(syn, from: .inside).action == .forward(.outside))
        #expect(gateway.frameBytes[14 + 7] == 63)
        #expect(gateway.send(Frames.reply(syn, flags: [.syn, .ack]), from: .outside).action == .forward(.inside))
        let ssh = Frames.tcp(from: Topology.client6, to: Topology.server6, port: 22, flags: [.syn], v6: true)
        #expect(gateway.send(ssh, from: .inside).action == .drop(.deniedPackets))
    }
}

@Suite struct RingAndCounterTests {
    @Test func spscRingRefusesWhenFullAndKeepsOrder() {
        let ring = SPSCRing<Int>(capacity: 4)
        let producer = ring.producer
        for value in 0..<4 { #expect(producer.push(value)) }
        #expect(!producer.push(4), "full: refused, never blocks")
        var consumer = ring.consumer
        #expect(consumer.pop() == 0)
        #expect(producer.push(4))
        var drained: [Int] = []
        while let value = consumer.pop() { drained.append(value) }
        #expect(drained == [1, 2, 3, 4])
    }

    @Test func countersFlushPerWorkerAndSum() {
        let blocks = DataplaneCounterBlocks(workerCount: 2)
        for worker in 0..<2 {
            let pending = PendingCounters()
            pending.add(.allowedPackets, UInt64(worker + 1))
            pending.add(.flowsOpened)
            blocks.writer(worker: worker).flush(pending.slots)
            #expect(pending.slots[DataplaneCounter.allowedPackets.rawValue] == 0)
            pending.deallocate()
        }
        let total = blocks.snapshot()
        #expect(total[.allowedPackets] == 3 && total[.flowsOpened] == 2)
        #expect(DataplaneCounter.droppedNoFlow.name == "dropped_no_flow")
        #expect(DataplaneCounter.count == DataplaneCounter.allCases.count)
    }
}

// The table swap under traffic: worker threads run the real PacketProcessor against a shared
// flow table, reading the policy through Publication once per batch (the worker loop's
// protocol, with fake traffic instead of rings), while the test publishes a freshly compiled
// policy thousands of times. Each verdict must be the one of the generation the worker held
// (so never a half-built or freed table), and once a publish is confirmed no batch may use an
// older generation. At the end every retired table has been freed.

import Atomics
import Foundation
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite struct PolicySwapTests {
    /// Even generations allow UDP ports 1–32, odd ones 33–64.
    static func policy(generation: UInt64) throws -> CompiledPolicy {
        let ports = generation % 2 == 0 ? "1-32" : "33-64"
        return try compilePolicy("""
            {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
              {"id": "all", "sources": {"cidrs": ["0.0.0.0/0"]}, "rules": [
                {"id": "ports", "action": "allow", "match": {"proto": "udp", "dst_ports": ["\(ports)"]}}]}]}}
            """)
    }

    final class Shared: @unchecked Sendable {
        let publication: Publication<CompiledPolicy>
        let flows = FlowTable(FlowTableConfiguration(capacity: 4096, shardCount: 8))
        let stop = UnsafeAtomic<Bool>.create(false)
        let confirmed = UnsafeAtomic<UInt64>.create(0)
        let lock = NSLock()
        var failures: [String] = []
        var packets = 0
        var batches = 0

        init(workers: Int, initial: CompiledPolicy) {
            publication = Publication(initial: initial, generation: 0, workerCount: workers)
        }

        deinit {
            stop.destroy()
            confirmed.destroy()
        }

        func fail(_ message: String) {
            lock.lock()
            if failures.count < 10 { failures.append(message) }
            lock.unlock()
        }
    }

    static func worker(_ index: Int, _ shared: Shared) {
        let events = SPSCRing<DataplaneEvent>(capacity: 16)
        let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
        let pending = PendingCounters()
        defer { pending.deallocate() }
        let processor = PacketProcessor(flows: shared.flows.handle, learned: NoLearnedAddresses(), counters: pending,
                                        events: events.producer, neighbourRequests: neighbours.producer, worker: index)
        let reader = shared.publication.reader(worker: index)
        reader.start()
        defer { reader.stop() }
        // 64 flows per worker, one per destination port, replayed every batch.
        let frames: [[UInt8]] = (1...64).map { port in
            Frames.udp(from: ipv4("10.0.0.\(10 + index)"), sourcePort: 5000, port: UInt16(port)).bytes(payload: [0])
        }
        let frame = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 64)
        defer { frame.deallocate() }
        var packets = 0
        var batches = 0
        var lastGeneration: UInt64 = 0
        while !shared.stop.load(ordering: .relaxed) {
            let floor = shared.confirmed.load(ordering: .acquiring)
            let policy = reader.acquire()
            if policy.generation < floor {
                shared.fail("worker \(index) used generation \(policy.generation) after \(floor) was confirmed")
            }
            if policy.generation < lastGeneration { shared.fail("generation went backwards") }
            lastGeneration = policy.generation
            for (offset, bytes) in frames.enumerated() {
                bytes.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let decision = processor.process(frame: frame, length: bytes.count, side: .inside, now: 1,
                                                 policy: policy, forwarding: nil)
                // Allowed packets reach routing (none here: dropped as no route); denied ones don't.
                let allowed = decision.action == .drop(.droppedNoRoute)
                let port = offset + 1
                let expected = policy.generation % 2 == 0 ? port <= 32 : port > 32
                if allowed != expected {
                    shared.fail("worker \(index) generation \(policy.generation) port \(port): allowed \(allowed)")
                }
                packets += 1
            }
            var drain = events.consumer
            while drain.pop() != nil {}
            batches += 1
        }
        shared.lock.lock()
        shared.packets += packets
        shared.batches += batches
        shared.lock.unlock()
    }

    @Test func thousandsOfSwapsUnderTrafficNeverMixTables() async throws {
        let workers = 2
        let shared = Shared(workers: workers, initial: try PolicySwapTests.policy(generation: 0))
        let done = DispatchGroup()
        for index in 0..<workers {
            done.enter()
            Thread {
                PolicySwapTests.worker(index, shared)
                done.leave()
            }.start()
        }
        weak var firstRetired: CompiledPolicy?
        let swaps: UInt64 = 2000
        for generation in 1...swaps {
            let compiled = try PolicySwapTests.policy(generation: generation)
            if generation == 1 { firstRetired = compiled }
            shared.publication.publish(compiled, generation: generation)
            let confirmed = await shared.publication.waitUntilConfirmed(generation, timeout: .seconds(10))
            #expect(confirmed, "generation \(generation) confirmed by every worker")
            shared.confirmed.store(generation, ordering: .releasing)
        }
        shared.stop.store(true, ordering: .relaxed)
        done.wait()
        #expect(shared.failures.isEmpty, "\(shared.failures)")
        #expect(shared.batches > Int(swaps) / 2, "workers ran batches during the swaps (\(shared.batches))")
        #expect(shared.publication.reclaim() == 0, "every retired table was freed once the workers stopped")
        #expect(firstRetired == nil, "a retired table is really released")
        #expect(shared.flows.count <= 2 * 32)
    }
}

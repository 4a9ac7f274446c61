// The AF_XDP gateway as one object for the control plane: start loads and attaches the XDP
// program on both interfaces, blocks kernel forwarding between them (ForwardPathBlock), binds
// queue q of both interfaces to one UMEM per worker and starts one pinned thread per queue;
// a maintenance thread keeps the forwarding snapshot fresh, resolves missing neighbours,
// sweeps idle flows and frees retired tables. publish() swaps the compiled policy and waits
// until every worker runs it; stop() undoes everything start did, in reverse. With flow
// offload (on by default, FlowOffload.swift) the maintenance thread also installs the flows
// workers judged into the XDP program and harvests the program's per-flow counters.
//
//   control plane ──publish──► Publication<CompiledPolicy> ──► workers (per batch)
//   maintenance   ──refresh──► Publication<ForwardingSnapshot> ─┘
//   workers ──► counter blocks, event rings, neighbour-request rings ──► control plane

#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CSluiceXDP
import Foundation
import SluicePacket
import SluicePolicy

/// How to run the dataplane.
public struct DataplaneConfiguration: Sendable {
    /// The workloads' interface and the uplink.
    public var inside: String
    public var outside: String
    /// Worker count = queues used on both interfaces (nil: the inside interface's rx queues).
    public var queues: Int?
    /// Core of each worker (nil: worker i on CPU i modulo the CPU count).
    public var cores: [Int]?
    /// Flow table size and timeouts.
    public var flowTable = FlowTableConfiguration()
    /// UMEM per worker: frames and frame size; ring sizes.
    public var frameCount = 4096
    public var frameSize = 4096
    public var ringSize: UInt32 = 2048
    /// Frames kept in each fill ring (two per worker).
    public var fillTarget = 1024
    /// How long an idle worker sleeps in poll(2) (0: busy poll, one core per worker).
    public var idleTimeoutMilliseconds: Int32 = 5
    /// Events per worker ring.
    public var eventRingCapacity = 4096
    /// How often the routing/neighbour snapshot is re-read.
    public var forwardingRefresh: Duration = .milliseconds(250)
    /// Bounds of the TLS-pending pool (docs/design/tls-pending.md).
    public var tls = TLSInspectorConfiguration()
    /// XDP flow offload: judged flows are forwarded by the XDP program itself (false: every
    /// transit packet goes through the AF_XDP workers, `--no-offload`).
    public var offload = true
    /// Offload requests per worker ring.
    public var offloadRingCapacity = 4096
    /// Transparent DNS: UDP/TCP port 53 arriving on the inside interface goes to the kernel and is
    /// redirected to this local port (the DNS proxy) instead of being judged as transit (docs/dns.md).
    public var dnsRedirectPort: Int?
    /// A denied new TCP flow's sender gets an RST (a fast "connection refused") instead of silence
    /// (docs/design/dataplane-workers-and-flows.md, "TCP resets"). Off: denied packets are dropped
    /// silently. Cuts and TLS denies reset both ends either way.
    public var resetDeniedTCP = false

    public init(inside: String, outside: String) {
        self.inside = inside
        self.outside = outside
    }
}

/// The running gateway dataplane. Control-plane methods may be called from any thread.
public final class Dataplane: @unchecked Sendable {
    /// The configuration (queues and cores resolved at start).
    public var configuration: DataplaneConfiguration { lock.withLock { settings } }
    /// Guarded by `lock` (written by start).
    private var settings: DataplaneConfiguration
    /// The shared flow table.
    public let flows: FlowTable
    /// The TLS-pending pool and the remembered handshakes: `tls.serverName(for:)` gives a flow's
    /// SNI to the control plane (findings, wiretap).
    public let tls: TLSInspector
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var programs: [XDPProgram] = []
    private var attachments: [XDPAttachment] = []
    private var forwardBlock: ForwardPathBlock?
    private var sockets: [AFXDPSocket] = []
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    private let stopFlag: UnsafeAtomic<Bool>
    /// Read by the workers when they have an event to report.
    private let eventsFlag: UnsafeAtomic<Bool>
    private var policy: Publication<CompiledPolicy>!
    private var forwarding: Publication<ForwardingSnapshot>!
    private(set) var counterBlocks: DataplaneCounterBlocks!
    private var eventRings: [SPSCRing<DataplaneEvent>] = []
    private var neighbourRings: [SPSCRing<NeighbourRequest>] = []
    private var offload: FlowOffload?
    /// The forwarding snapshot last read (offload installs take MACs from it).
    private var latestSnapshot: ForwardingSnapshot?
    private var accounting: [FrameAccounting] = []
    private var internalGeneration: UInt64 = 0
    private var labels: [UInt64: (tag: String, external: UInt64, compiled: CompiledPolicy?)] = [:]
    private var confirmedExternal: UInt64?
    private var startWorkers: ((Dataplane) throws -> Void)?
    /// Whether the workers run.
    public var running: Bool { lock.withLock { isRunning } }
    private var isRunning = false

    /// A dataplane for `configuration`; `learned` answers DNS-learned address questions on
    /// the hot path (specialized into the workers, never dispatched dynamically).
    public init<Learned: LearnedAddressLookup & Sendable>(
        _ configuration: DataplaneConfiguration, learned: Learned, log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        settings = configuration
        self.log = log
        flows = FlowTable(configuration.flowTable)
        tls = TLSInspector(configuration.tls)
        stopFlag = .create(false)
        eventsFlag = .create(true)
        startWorkers = { dataplane in try dataplane.launchWorkers(learned: learned) }
    }

    deinit {
        stop()
        stopFlag.destroy()
        eventsFlag.destroy()
    }

    /// Brings the dataplane up (see the file header). On failure everything done so far is
    /// undone and the error thrown.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !isRunning else { return }
        do {
            try startLocked()
        } catch {
            stopLocked()
            throw error
        }
    }

    private func startLocked() throws {
        let queues = try settings.queues ?? Dataplane.receiveQueueCount(settings.inside)
        guard queues > 0 && queues <= Int(SLUICE_MAX_QUEUES) else {
            throw DataplaneError("queue count \(queues) out of range 1...\(SLUICE_MAX_QUEUES)")
        }
        settings.queues = queues
        let cpuCount = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let cores = settings.cores ?? (0..<queues).map { $0 % max(cpuCount, 1) }
        guard cores.count >= queues else {
            throw DataplaneError("--cores lists \(cores.count) cores for \(queues) queues")
        }
        settings.cores = cores
        policy = Publication(initial: nil, generation: 0, workerCount: queues)
        let snapshot = try ForwardingSnapshot.read(inside: settings.inside, outside: settings.outside)
        forwarding = Publication(initial: snapshot, generation: 1, workerCount: queues)
        latestSnapshot = snapshot
        counterBlocks = DataplaneCounterBlocks(workerCount: queues)
        eventRings = (0..<queues).map { _ in SPSCRing(capacity: settings.eventRingCapacity) }
        neighbourRings = (0..<queues).map { _ in SPSCRing(capacity: 256) }

        // One program instance per interface: each has its own XSKMAP indexed by rx queue.
        for interface in [settings.inside, settings.outside] {
            let program = try XDPProgram(offloadCapacity: settings.flowTable.capacity)
            programs.append(program)
            attachments.append(try program.attach(to: interface, log: log))
            log("XDP: \(SLUICE_XDP_PROG_NAME) attached to \(interface) (\(attachments.last!.mode.rawValue) mode)")
        }
        try refreshGatewayAddressesLocked()
        offload = try FlowOffload(
            inside: programs[0], outside: programs[1], insideIndex: attachments[0].interfaceIndex,
            outsideIndex: attachments[1].interfaceIndex, flows: flows, workers: queues,
            ringCapacity: settings.offloadRingCapacity, configured: settings.offload, log: log)
        log("flow offload: \(settings.offload ? "on" : "off (--no-offload)")")
        forwardBlock = try ForwardPathBlock.install(inside: settings.inside, outside: settings.outside,
                                                    dnsRedirectPort: settings.dnsRedirectPort)
        if let port = settings.dnsRedirectPort {
            try programs[0].setDNSRedirect(true)  // programs[0] is the inside interface's
            log("DNS redirect: port 53 from \(settings.inside) to the local DNS proxy on port \(port)")
        }
        log("nftables: table inet \(ForwardPathBlock.tableName) blocks kernel forwarding between "
            + "\(settings.inside) and \(settings.outside)")
        stopFlag.store(false, ordering: .relaxed)
        try startWorkers?(self)
        startMaintenance()
        isRunning = true
    }

    private func launchWorkers<Learned: LearnedAddressLookup & Sendable>(learned: Learned) throws {
        let queues = settings.queues!
        accountingLock.lock()
        defer { accountingLock.unlock() }
        accounting = Array(repeating: FrameAccounting(free: 0, withKernelForReceive: 0, inTransmit: 0, total: 0),
                           count: queues)
        for queue in 0..<queues {
            let umem = try Umem(frameCount: settings.frameCount, frameSize: settings.frameSize,
                                ringSize: settings.ringSize)
            let inside = try AFXDPSocket(interface: settings.inside, queue: UInt32(queue), umem: umem,
                                         program: programs[0], ringSize: settings.ringSize, sharing: false)
            let outside = try AFXDPSocket(interface: settings.outside, queue: UInt32(queue), umem: umem,
                                          program: programs[1], ringSize: settings.ringSize, sharing: true)
            sockets += [inside, outside]
            let processor = PacketProcessor(
                flows: flows.handle, learned: learned, counters: PendingCounters(),
                events: eventRings[queue].producer, neighbourRequests: neighbourRings[queue].producer, worker: queue,
                eventsEnabled: eventsFlag, tls: tls, offload: offload?.port(worker: queue),
                resetDeniedTCP: settings.resetDeniedTCP)
            let context = QueueWorkerContext(
                index: queue, inside: SideRings(socket: inside), outside: SideRings(socket: outside), area: umem.area,
                frameCount: umem.frameCount, frameSize: umem.frameSize, fillTarget: settings.fillTarget,
                processor: processor, counters: counterBlocks.writer(worker: queue), pending: processor.counters,
                policy: policy.reader(worker: queue), forwarding: forwarding.reader(worker: queue), stop: stopFlag,
                idleTimeoutMilliseconds: settings.idleTimeoutMilliseconds)
            let core = settings.cores![queue]
            let log = self.log
            finished.enter()
            let thread = Thread { [finished, weak self] in
                do {
                    try CPUAffinity.pinCurrentThread(to: core)
                } catch {
                    log("worker \(queue): not pinned to CPU \(core): \(error)")
                }
                do {
                    try CPUAffinity.adoptProcessPriority(name: "sluice-q\(queue)")
                } catch {
                    log("worker \(queue): runs at its creator's priority, not the process's: \(error)")
                }
                let result = runQueueWorker(context)
                context.pending.deallocate()
                self?.recordAccounting(queue, result)
                finished.leave()
            }
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
            log("worker \(queue): queue \(queue) of \(settings.inside) and \(settings.outside), CPU \(core)")
        }
    }

    /// Separate from `lock`: stop() holds `lock` while it waits for the workers to end, and
    /// the ending workers record their accounting here.
    private let accountingLock = NSLock()

    private func recordAccounting(_ queue: Int, _ result: FrameAccounting) {
        accountingLock.withLock { accounting[queue] = result }
    }

    /// Where each worker's frames were when it stopped (valid after `stop`).
    public var frameAccounting: [FrameAccounting] { accountingLock.withLock { accounting } }

    /// Stops the workers, detaches XDP, removes the forward-path block and closes the sockets.
    /// Idempotent; called by deinit too.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        stopLocked()
    }

    private func stopLocked() {
        stopFlag.store(true, ordering: .relaxed)
        finished.wait()
        threads.removeAll()
        maintenance?.cancel()
        maintenance = nil
        offload = nil
        latestSnapshot = nil
        for attachment in attachments { attachment.detach() }
        attachments.removeAll()
        sockets.removeAll()
        programs.removeAll()
        gatewayAddresses = []  // the next start's programs have empty maps
        if let forwardBlock {
            forwardBlock.remove()
            self.forwardBlock = nil
            log("nftables: table inet \(ForwardPathBlock.tableName) removed")
        }
        if isRunning { log("dataplane stopped") }
        isRunning = false
    }

    // MARK: - Policy

    /// Publishes `compiled` (nil: no policy, every transit packet is dropped), tagged for
    /// events (`tag`, e.g. the policy id) and with the caller's generation for status, and
    /// waits until every worker runs it. Returns false when not confirmed within `timeout`.
    @discardableResult
    public func publish(_ compiled: CompiledPolicy?, tag: String = "", externalGeneration: UInt64 = 0,
                        timeout: Duration = .seconds(5)) async -> Bool {
        let generation: UInt64 = lock.withLock {
            internalGeneration += 1
            labels[internalGeneration] = (tag, externalGeneration, compiled)
            // Events name group and rule ids through the compiled policy: keep a few generations.
            for old in labels.keys where old + 16 < internalGeneration { labels[old] = nil }
            return internalGeneration
        }
        guard let policy = lock.withLock({ self.policy }) else { return false }
        // Before the workers can see it: offloaded entries of older generations go back to them.
        lock.withLock { offload }?.policyWillPublish(generation: generation)
        policy.publish(compiled, generation: generation)
        let confirmed = await policy.waitUntilConfirmed(generation, timeout: timeout)
        if confirmed {
            lock.withLock {
                if let label = labels[generation] { confirmedExternal = label.external }
            }
        }
        return confirmed
    }

    /// The caller's generation of the newest policy every worker confirmed.
    public var confirmedGeneration: UInt64? { lock.withLock { confirmedExternal } }

    /// The policy tag and group/rule ids of an event (nil when its generation is long gone).
    public func describe(_ event: DataplaneEvent) -> (tag: String, group: String?, rule: String?)? {
        lock.withLock {
            guard let label = labels[event.generation] else { return nil }
            return Dataplane.names(label, group: event.group, rule: event.rule)
        }
    }

    /// The policy tag and group/rule ids of a flow entry, which keeps only the low 32 bits of
    /// its generation (nil when that generation is long gone).
    public func describe(_ flow: FlowEntry) -> (tag: String, group: String?, rule: String?)? {
        lock.withLock {
            guard let label = labels.first(where: { UInt32(truncatingIfNeeded: $0.key) == flow.generation })?.value
            else { return nil }
            return Dataplane.names(label, group: Int32(flow.group), rule: Int32(flow.rule))
        }
    }

    private static func names(_ label: (tag: String, external: UInt64, compiled: CompiledPolicy?), group: Int32,
                              rule: Int32) -> (tag: String, group: String?, rule: String?) {
        guard let compiled = label.compiled, group >= 0, Int(group) < compiled.groupIDs.count else {
            return (label.tag, nil, nil)
        }
        let rules = compiled.ruleIDs[Int(group)]
        return (label.tag, compiled.groupIDs[Int(group)], rule >= 0 && Int(rule) < rules.count ? rules[Int(rule)] : nil)
    }

    // MARK: - Counters and events

    /// All workers' counters summed, plus flow-table figures.
    public func counters() -> [String: UInt64] {
        guard let blocks = lock.withLock({ counterBlocks }) else { return [:] }
        var result: [String: UInt64] = [:]
        for (counter, value) in blocks.snapshot() { result[counter.name] = value }
        result["flows_active"] = UInt64(flows.count)
        result["flows_expired"] = flows.expiredBySweep
        result["flows_closed", default: 0] &+= flows.expiredBySweep
        result["tls_pending_active"] = UInt64(tls.pendingCount)
        result["tls_pending_abandoned"] = tls.abandonedCount
        if let programs = lock.withLock({ self.programs.isEmpty ? nil : self.programs }) {
            for (program, side) in zip(programs, ["inside", "outside"]) {
                guard let xdp = try? program.counters() else { continue }
                for (counter, value) in xdp.packets { result["xdp_\(side)_\(counter)"] = value }
                // Offloaded packets count as if a worker had handled them.
                let forwarded = xdp[.offloadForwarded], forwardedBytes = xdp.bytes[.offloadForwarded] ?? 0
                let dropped = xdp[.offloadDropped], droppedBytes = xdp.bytes[.offloadDropped] ?? 0
                result["received_packets", default: 0] &+= forwarded &+ dropped
                result["received_bytes", default: 0] &+= forwardedBytes &+ droppedBytes
                result["allowed_packets", default: 0] &+= forwarded
                result["allowed_bytes", default: 0] &+= forwardedBytes
                result["transmitted_packets", default: 0] &+= forwarded
                result["denied_packets", default: 0] &+= dropped
                result["denied_bytes", default: 0] &+= droppedBytes
                result["offloaded_packets", default: 0] &+= forwarded &+ dropped
                result["offloaded_bytes", default: 0] &+= forwardedBytes &+ droppedBytes
            }
        }
        if let offload = lock.withLock({ offload }) {
            for (name, value) in offload.figures() { result[name] = value }
        }
        return result
    }

    // MARK: - Flow offload

    /// Whether flow offload is on now (configured, running, and not paused).
    public var offloadActive: Bool { lock.withLock { offload }?.active ?? false }

    /// Pauses flow offload while something needs to see every packet in a worker (a wiretap
    /// capture), or resumes it. Takes effect in the XDP program before it returns; offloaded
    /// flows are handed back to the workers (their counts harvested first) and are offloaded
    /// again, at their next packet, after the resume. No effect with `--no-offload`.
    public func setOffloadPaused(_ paused: Bool) { lock.withLock { offload }?.setPaused(paused) }

    /// Installs pending offload requests and harvests the XDP program's per-flow counters into
    /// the flow table now, instead of at the next maintenance tick (1 s): call before a flow
    /// snapshot that must include offloaded packets to the last moment (tests, wiretap).
    public func syncOffloadedFlows() {
        lock.lock()
        let offload = self.offload
        let snapshot = latestSnapshot
        lock.unlock()
        offload?.install(snapshot: snapshot)
        offload?.harvest()
    }

    /// Counters of one worker.
    public func counters(worker: Int) -> [DataplaneCounter: UInt64] { counterBlocks.read(worker: worker) }

    /// Turns the workers' deny/audit/cut events on or off (the API's performance mode).
    public func setEventsEnabled(_ enabled: Bool) { eventsFlag.store(enabled, ordering: .relaxed) }

    /// Pops every queued event of every worker (call from one thread at a time).
    public func drainEvents(_ body: (DataplaneEvent) -> Void) {
        let rings = lock.withLock { eventRings }
        for ring in rings {
            var consumer = ring.consumer
            while let event = consumer.pop() { body(event) }
        }
    }

    // MARK: - Maintenance

    private var maintenance: Task<Void, Never>?

    private func startMaintenance() {
        let interval = settings.forwardingRefresh
        maintenance = Task.detached { [weak self] in
            var lastSweep = ContinuousClock.now
            var lastRefresh = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
                guard let self else { return }
                let resolved = self.resolveRequestedNeighbours()
                let now = ContinuousClock.now
                if resolved || now - lastRefresh >= interval {
                    if resolved { try? await Task.sleep(for: .milliseconds(30)) }
                    self.refreshForwarding()
                    lastRefresh = ContinuousClock.now
                }
                let offload = self.lock.withLock { self.offload }
                let snapshot = self.lock.withLock { self.latestSnapshot }
                offload?.install(snapshot: snapshot)
                if now - lastSweep >= .seconds(1) {
                    // Harvest before the sweep: offloaded flows' last-seen comes from the program.
                    if let offload { offload.sweep(now: monotonicNanoseconds()) } else {
                        self.flows.sweep(now: monotonicNanoseconds())
                    }
                    self.tls.sweep(now: monotonicNanoseconds())
                    lastSweep = now
                }
                self.lock.withLock { self.policy }?.reclaim()
            }
        }
    }

    private func resolveRequestedNeighbours() -> Bool {
        var wanted: [NeighbourRequest] = []
        for ring in lock.withLock({ neighbourRings }) {
            var consumer = ring.consumer
            while let request = consumer.pop() {
                if !wanted.contains(request) { wanted.append(request) }
            }
        }
        for request in wanted {
            do {
                try ForwardingSnapshot.resolveNeighbour(interfaceIndex: request.interfaceIndex, family: request.family,
                                                        address: request.address)
            } catch {
                log("neighbour resolution failed: \(error)")
            }
        }
        return !wanted.isEmpty
    }

    /// Runs under `lock`, so it never overlaps start or stop (which tear down the programs).
    private func refreshForwarding() {
        lock.lock()
        defer { lock.unlock() }
        guard isRunning, let forwarding else { return }
        do {
            let snapshot = try ForwardingSnapshot.read(inside: settings.inside, outside: settings.outside)
            forwarding.publish(snapshot, generation: forwarding.generation + 1)
            latestSnapshot = snapshot
            forwarding.reclaim()
            try refreshGatewayAddressesLocked()
        } catch {
            log("forwarding refresh failed (keeping the previous tables): \(error)")
        }
    }

    /// Guarded by `lock`.
    private var gatewayAddresses: [IPAddress] = []

    /// Traffic to any of the host's own addresses goes to the kernel (DNS proxy, API). Call
    /// with `lock` held.
    private func refreshGatewayAddressesLocked() throws {
        let addresses = try InterfaceAddresses.read().allAddresses.sorted()
        guard addresses != gatewayAddresses else { return }
        for program in programs { try program.setGatewayAddresses(addresses) }
        gatewayAddresses = addresses
    }

    /// Number of rx queues of `interface` (/sys/class/net/IF/queues/rx-N).
    public static func receiveQueueCount(_ interface: String) throws -> Int {
        let path = "/sys/class/net/\(interface)/queues"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            throw DataplaneError("interface \(interface) not found (no \(path))")
        }
        return max(1, entries.filter { $0.hasPrefix("rx-") }.count)
    }
}

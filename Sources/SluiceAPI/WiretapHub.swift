// The fan-out between the dataplane's flow events and the wiretap's SSE clients.
//
//   event collector ──publish()──► WiretapHub ──(filter, ≤1/s per flow)──► subscriber buffer ──► SSE writer
//
// publish() never waits for a client: each subscriber has a bounded buffer that drops its oldest
// event when full (the drop is counted and told to that client), so a slow or stalled client costs
// the producer one short lock and nothing else. With no subscriber, publish() is one atomic load.
import Foundation
import ServiceLifecycle
import Synchronization

/// What the dataplane's event collector calls for every flow event it drains from the worker rings.
public protocol FlowEventSink: Sendable {
    /// Offers one event to the wiretap. Never blocks and never allocates per subscriber beyond the
    /// subscriber's bounded buffer; safe from any thread. Not for packet workers themselves: they
    /// write to their own SPSC event ring, and the collector calls this.
    func publish(_ event: FlowEvent)
}

/// Where the API's wiretap reads live flow events from.
public protocol FlowEventSource: Sendable {
    /// Starts a subscription: events matching `filter`, at most `bufferSize` waiting (oldest dropped).
    func subscribe(_ filter: FlowFilter, bufferSize: Int) -> FlowSubscription
    /// Counters for `/api/v1/stats` and `/metrics`.
    var statistics: WiretapStatistics { get }
}

/// The wiretap's own counters.
public struct WiretapStatistics: Sendable, Equatable, Codable {
    /// Clients connected now.
    public var subscribers: Int
    /// Events offered by the dataplane.
    public var published: UInt64
    /// `flow` events held back by the once-per-second-per-flow limit.
    public var rateLimited: UInt64
    /// Events dropped from full subscriber buffers (slow clients), all subscribers together.
    public var dropped: UInt64

    enum CodingKeys: String, CodingKey {
        case subscribers, published, dropped
        case rateLimited = "rate_limited"
    }

    public init(subscribers: Int, published: UInt64, rateLimited: UInt64, dropped: UInt64) {
        self.subscribers = subscribers
        self.published = published
        self.rateLimited = rateLimited
        self.dropped = dropped
    }
}

/// One client's view of the stream. Ends when the hub shuts down; cancel it when the client leaves.
public struct FlowSubscription: Sendable {
    /// What the SSE writer receives.
    public enum Item: Sendable, Equatable {
        /// A flow event that passed the filter.
        case event(FlowEvent)
        /// Time to write a keep-alive comment (nothing happened for a while).
        case heartbeat
    }

    /// The items, in order.
    public let items: AsyncStream<Item>
    let id: UInt64
    let hub: WiretapHub

    /// Events this subscriber lost because its buffer was full.
    public var dropped: UInt64 { hub.dropped(subscriber: id) }

    /// Asks for a heartbeat item (the SSE writer's timer calls this).
    public func heartbeat() { hub.heartbeat(subscriber: id) }

    /// Ends the subscription and frees its buffer.
    public func cancel() { hub.remove(subscriber: id) }
}

/// The wiretap's hub: a FlowEventSink for the dataplane and a FlowEventSource for the API. Shared by
/// every thread; all state sits behind one Mutex held only for dictionary work and non-blocking yields.
public final class WiretapHub: FlowEventSink, FlowEventSource, Service {
    /// A `flow` event of the same flow id is passed on at most once per this interval.
    public let minimumInterval: Duration
    /// Flow ids remembered for the rate limit before old ones are forgotten (bounds memory).
    let maxTrackedFlows: Int

    private struct Subscriber {
        var filter: FlowFilter
        var continuation: AsyncStream<FlowSubscription.Item>.Continuation
        var dropped: UInt64 = 0
    }

    private struct State {
        var subscribers: [UInt64: Subscriber] = [:]
        var nextID: UInt64 = 0
        var lastSent: [UInt64: ContinuousClock.Instant] = [:]
        var published: UInt64 = 0
        var rateLimited: UInt64 = 0
        var dropped: UInt64 = 0
        var finished = false
    }

    private let state = Mutex(State())
    /// Read without the lock on every publish, so an unwatched wiretap costs the producer nothing.
    private let subscriberCount = Atomic<Int>(0)

    public init(minimumInterval: Duration = .seconds(1), maxTrackedFlows: Int = 65_536) {
        self.minimumInterval = minimumInterval
        self.maxTrackedFlows = maxTrackedFlows
    }

    /// Whether any client watches (one atomic load): producers skip building events otherwise.
    public var hasSubscribers: Bool { subscriberCount.load(ordering: .relaxed) > 0 }

    public func publish(_ event: FlowEvent) {
        guard subscriberCount.load(ordering: .relaxed) > 0 else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            state.published += 1
            switch event.kind {
            case .flowEnd:
                state.lastSent[event.flowID] = nil
            case .flow:
                if let last = state.lastSent[event.flowID], now - last < minimumInterval {
                    state.rateLimited += 1
                    return
                }
                if state.lastSent.count >= maxTrackedFlows {
                    // Forget flows not sent within the interval; they may send again anyway.
                    state.lastSent = state.lastSent.filter { now - $0.value < minimumInterval }
                    if state.lastSent.count >= maxTrackedFlows { state.lastSent.removeAll(keepingCapacity: true) }
                }
                state.lastSent[event.flowID] = now
            }
            for (id, subscriber) in state.subscribers where subscriber.filter.matches(event) {
                if case .dropped = subscriber.continuation.yield(.event(event)) {
                    state.subscribers[id]?.dropped += 1
                    state.dropped += 1
                }
            }
        }
    }

    public func subscribe(_ filter: FlowFilter, bufferSize: Int = 1024) -> FlowSubscription {
        let (stream, continuation) = AsyncStream<FlowSubscription.Item>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, bufferSize)))
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            if state.finished {
                continuation.finish()
            } else {
                state.subscribers[state.nextID] = Subscriber(filter: filter, continuation: continuation)
                subscriberCount.add(1, ordering: .relaxed)
            }
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in self?.remove(subscriber: id) }
        return FlowSubscription(items: stream, id: id, hub: self)
    }

    public var statistics: WiretapStatistics {
        state.withLock { state in
            WiretapStatistics(
                subscribers: state.subscribers.count, published: state.published, rateLimited: state.rateLimited,
                dropped: state.dropped)
        }
    }

    func dropped(subscriber id: UInt64) -> UInt64 {
        state.withLock { $0.subscribers[id]?.dropped ?? 0 }
    }

    func heartbeat(subscriber id: UInt64) {
        let continuation = state.withLock { $0.subscribers[id]?.continuation }
        continuation?.yield(.heartbeat)
    }

    func remove(subscriber id: UInt64) {
        let removed = state.withLock { $0.subscribers.removeValue(forKey: id) }
        guard let removed else { return }
        subscriberCount.subtract(1, ordering: .relaxed)
        removed.continuation.finish()
    }

    /// Ends every stream and refuses new ones: called at shutdown, so open SSE responses end and the
    /// HTTP server's graceful shutdown does not wait for clients that would never leave.
    public func finishAll() {
        let continuations = state.withLock { state in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return state.subscribers.values.map(\.continuation)
        }
        subscriberCount.store(0, ordering: .relaxed)
        for continuation in continuations { continuation.finish() }
    }

    /// Waits for graceful shutdown, then ends every stream (run it in the ServiceGroup after the API).
    public func run() async throws {
        try? await gracefulShutdown()
        finishAll()
    }
}

// What workers report to the control plane besides counters: the policy engine's findings
// (deny and audit), TLS handshake findings and flows a new policy cut. A plain value pushed into the worker's own
// SPSC ring; the ring never blocks the worker (full: the event is dropped and counted).

import SluicePacket
import SluicePolicy

/// One event of one worker. A plain value with no references.
public struct DataplaneEvent: Sendable, Equatable {
    /// Why it was emitted.
    public enum Kind: UInt8, Sendable {
        /// A finding of the policy engine for a new flow (a deny, enforced or audited).
        case finding
        /// A finding produced when an existing flow was judged again under a new generation.
        case rejudged
        /// An existing flow that the new policy denies was removed.
        case flowCut
        /// A finding of a TLS handshake decision (a deny, enforced or audited, or a fail-closed
        /// deny). The server name is not in the event (it stays a plain value): the control plane
        /// reads it from `TLSInspector.record(for:)` by the event's tuple.
        case tls
    }

    public var kind: Kind
    /// The packet's tuple in the initiator's direction.
    public var tuple: FiveTuple
    /// The policy generation that judged it.
    public var generation: UInt64
    /// Document indexes of the source group and rule of the finding (-1: none / default).
    public var group: Int32
    public var rule: Int32
    /// Whether the deny was enforced (false: audit, let through).
    public var enforced: Bool
    /// Monotonic nanoseconds.
    public var timestamp: UInt64
    /// The worker (queue) that saw it.
    public var worker: UInt16
}

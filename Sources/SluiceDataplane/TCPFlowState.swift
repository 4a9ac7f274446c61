// The TCP state a flow entry tracks, from the flags the gateway sees in both directions. Not a
// full TCP state machine (no sequence-number windows): enough to pick the timeout that fits
// the connection's phase, so half-open and closed connections leave the table quickly while
// established ones stay for hours.
//
//   SYN ─► synSent ─SYN+ACK(resp)─► synReceived ─ACK(init)─► established ─FIN─► finWait* ─FIN─► closing
//   any RST ─► closed;  a new SYN from the initiator after closing/closed ─► synSent (port reuse)

import SluicePacket

/// The tracked phase of a TCP flow. `none` for other protocols.
public enum TCPFlowState: UInt8, Sendable, CaseIterable {
    case none = 0
    /// The initiator's SYN was seen.
    case synSent
    /// The responder's SYN+ACK was seen.
    case synReceived
    /// The handshake completed (or the flow was picked up mid-stream).
    case established
    /// The initiator sent FIN.
    case finFromInitiator
    /// The responder sent FIN.
    case finFromResponder
    /// Both sent FIN.
    case closing
    /// A RST was seen.
    case closed

    /// The state of a new flow whose first packet (from the initiator) carries `flags`. A
    /// first packet without SYN is a connection picked up mid-stream (e.g. after a restart).
    @inline(__always)
    public static func initial(_ flags: TCPFlags) -> TCPFlowState {
        if flags.contains(.rst) { return .closed }
        if flags.contains(.syn) && !flags.contains(.ack) { return .synSent }
        return .established
    }

    /// The state after a packet with `flags` from the initiator (`fromInitiator`) or responder.
    @inline(__always)
    public func next(_ flags: TCPFlags, fromInitiator: Bool) -> TCPFlowState {
        if flags.contains(.rst) { return .closed }
        let fin = flags.contains(.fin)
        switch self {
        case .none:
            return .none
        case .synSent:
            if !fromInitiator && flags.contains(.syn) && flags.contains(.ack) { return .synReceived }
            return .synSent
        case .synReceived:
            if fromInitiator && fin { return .finFromInitiator }
            if fromInitiator && flags.contains(.ack) && !flags.contains(.syn) { return .established }
            return .synReceived
        case .established:
            if fin { return fromInitiator ? .finFromInitiator : .finFromResponder }
            return .established
        case .finFromInitiator:
            return fin && !fromInitiator ? .closing : .finFromInitiator
        case .finFromResponder:
            return fin && fromInitiator ? .closing : .finFromResponder
        case .closing, .closed:
            if fromInitiator && flags.contains(.syn) && !flags.contains(.ack) { return .synSent }
            return self
        }
    }
}

/// How long a flow may stay idle before it is removed, by protocol and TCP phase.
public struct FlowTimeouts: Sendable, Equatable {
    /// Handshake in progress (synSent, synReceived). Seconds.
    public var tcpOpening: Double = 30
    /// Established TCP (RFC 5382 asks for at least 2 h 4 min).
    public var tcpEstablished: Double = 7440
    /// After a FIN (half closed, closing).
    public var tcpClosing: Double = 60
    /// After a RST.
    public var tcpClosed: Double = 10
    /// UDP and other protocols.
    public var udp: Double = 60
    /// ICMP/ICMPv6 echo.
    public var icmp: Double = 30

    /// The defaults above.
    public init() {}

    /// Nanoseconds of idle time allowed for a flow of `protocolNumber` in `state`.
    @inline(__always)
    func nanoseconds(protocolNumber: UInt8, state: TCPFlowState) -> UInt64 {
        let seconds: Double
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            switch state {
            case .synSent, .synReceived: seconds = tcpOpening
            case .established, .none: seconds = tcpEstablished
            case .finFromInitiator, .finFromResponder, .closing: seconds = tcpClosing
            case .closed: seconds = tcpClosed
            }
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6: seconds = icmp
        default: seconds = udp
        }
        return UInt64(seconds * 1e9)
    }
}

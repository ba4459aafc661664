import NIOConcurrencyHelpers
import NIOCore

/// Slows CHAP guessing down per initiator name and per remote address (FabricLimits): after
/// the free failures, each verification for that name or address takes a turn, turns
/// `delay` apart, the delay doubling per failure. A queue of turns rather than a sleep after
/// a failure: a guesser with many parallel connections still gets one guess per turn, and an
/// early hang-up saves it nothing. Another initiator from another address is not affected.
public final class LoginThrottle: Sendable {
    private struct Peer {
        var failures = 0
        var lastFailure: NIODeadline
        /// The earliest time the next verification may run.
        var nextTurn: NIODeadline
    }

    private enum Key: Hashable {
        case initiator(String)
        case address(String)
    }

    private struct State {
        var limits: FabricLimits
        var peers: [Key: Peer] = [:]
    }

    private let state: NIOLockedValueBox<State>

    public init(limits: FabricLimits) {
        state = NIOLockedValueBox(State(limits: limits))
    }

    /// New limits for the next verifications; failures counted so far are kept.
    public func update(limits: FabricLimits) {
        state.withLockedValue { $0.limits = limits }
    }

    /// How long the verification of a CHAP response from this initiator and address must
    /// wait; the turn is reserved by this call.
    public func delayBeforeVerifying(initiator: String, address: String, now: NIODeadline = .now()) -> TimeAmount {
        state.withLockedValue { state in
            let limits = state.limits
            var start = now
            let keys = [Key.initiator(initiator), .address(address)]
            for key in keys {
                guard var peer = state.peers[key], !Self.forgotten(peer, now: now, limits),
                      peer.failures >= limits.chapFreeFailures else { continue }
                start = max(start, peer.nextTurn)
                peer.nextTurn = start + Self.delay(afterFailures: peer.failures, limits)
                state.peers[key] = peer
            }
            return start - now
        }
    }

    public func recordFailure(initiator: String, address: String, now: NIODeadline = .now()) {
        state.withLockedValue { state in
            let limits = state.limits
            for key in [Key.initiator(initiator), .address(address)] {
                var peer = state.peers[key].flatMap { Self.forgotten($0, now: now, limits) ? nil : $0 }
                    ?? Peer(lastFailure: now, nextTurn: now)
                peer.failures += 1
                peer.lastFailure = now
                if peer.failures >= limits.chapFreeFailures {
                    peer.nextTurn = max(peer.nextTurn, now + Self.delay(afterFailures: peer.failures, limits))
                }
                state.peers[key] = peer
            }
            if state.peers.count > limits.chapTrackedPeers { Self.prune(&state.peers, now: now, limits) }
        }
    }

    /// A successful login clears its initiator name (the address keeps its record: one
    /// valid account must not buy another name's guesses).
    public func recordSuccess(initiator: String) {
        _ = state.withLockedValue { $0.peers.removeValue(forKey: .initiator(initiator)) }
    }

    /// Names and addresses currently delayed (for /metrics).
    public func throttledPeers(now: NIODeadline = .now()) -> Int {
        state.withLockedValue { state in
            state.peers.values.filter {
                !Self.forgotten($0, now: now, state.limits) && $0.failures >= state.limits.chapFreeFailures
            }.count
        }
    }

    private static func delay(afterFailures failures: Int, _ limits: FabricLimits) -> TimeAmount {
        let doublings = min(max(0, failures - limits.chapFreeFailures), 30)
        let nanoseconds = limits.chapBaseDelay.nanoseconds.multipliedReportingOverflow(by: 1 << doublings)
        return nanoseconds.overflow ? limits.chapMaxDelay : min(.nanoseconds(nanoseconds.partialValue), limits.chapMaxDelay)
    }

    private static func forgotten(_ peer: Peer, now: NIODeadline, _ limits: FabricLimits) -> Bool {
        now - peer.lastFailure >= limits.chapForgetAfter && now >= peer.nextTurn
    }

    private static func prune(_ peers: inout [Key: Peer], now: NIODeadline, _ limits: FabricLimits) {
        peers = peers.filter { !forgotten($0.value, now: now, limits) }
        let excess = peers.count - limits.chapTrackedPeers
        guard excess > 0 else { return }
        for (key, _) in peers.sorted(by: { $0.value.lastFailure < $1.value.lastFailure }).prefix(excess) {
            peers.removeValue(forKey: key)
        }
    }
}

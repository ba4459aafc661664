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

    private let limits: FabricLimits
    private let peers = NIOLockedValueBox<[Key: Peer]>([:])

    public init(limits: FabricLimits) {
        self.limits = limits
    }

    /// How long the verification of a CHAP response from this initiator and address must
    /// wait; the turn is reserved by this call.
    public func delayBeforeVerifying(initiator: String, address: String, now: NIODeadline = .now()) -> TimeAmount {
        peers.withLockedValue { peers in
            var start = now
            let keys = [Key.initiator(initiator), .address(address)]
            for key in keys {
                guard var peer = peers[key], !forgotten(peer, now: now), peer.failures >= limits.chapFreeFailures else { continue }
                start = max(start, peer.nextTurn)
                peer.nextTurn = start + delay(afterFailures: peer.failures)
                peers[key] = peer
            }
            return start - now
        }
    }

    public func recordFailure(initiator: String, address: String, now: NIODeadline = .now()) {
        peers.withLockedValue { peers in
            for key in [Key.initiator(initiator), .address(address)] {
                var peer = peers[key].flatMap { forgotten($0, now: now) ? nil : $0 }
                    ?? Peer(lastFailure: now, nextTurn: now)
                peer.failures += 1
                peer.lastFailure = now
                if peer.failures >= limits.chapFreeFailures {
                    peer.nextTurn = max(peer.nextTurn, now + delay(afterFailures: peer.failures))
                }
                peers[key] = peer
            }
            if peers.count > limits.chapTrackedPeers { prune(&peers, now: now) }
        }
    }

    /// A successful login clears its initiator name (the address keeps its record: one
    /// valid account must not buy another name's guesses).
    public func recordSuccess(initiator: String) {
        _ = peers.withLockedValue { $0.removeValue(forKey: .initiator(initiator)) }
    }

    /// Names and addresses currently delayed (for /metrics).
    public func throttledPeers(now: NIODeadline = .now()) -> Int {
        peers.withLockedValue { peers in
            peers.values.filter { !forgotten($0, now: now) && $0.failures >= limits.chapFreeFailures }.count
        }
    }

    private func delay(afterFailures failures: Int) -> TimeAmount {
        let doublings = min(max(0, failures - limits.chapFreeFailures), 30)
        let nanoseconds = limits.chapBaseDelay.nanoseconds.multipliedReportingOverflow(by: 1 << doublings)
        return nanoseconds.overflow ? limits.chapMaxDelay : min(.nanoseconds(nanoseconds.partialValue), limits.chapMaxDelay)
    }

    private func forgotten(_ peer: Peer, now: NIODeadline) -> Bool {
        now - peer.lastFailure >= limits.chapForgetAfter && now >= peer.nextTurn
    }

    private func prune(_ peers: inout [Key: Peer], now: NIODeadline) {
        peers = peers.filter { !forgotten($0.value, now: now) }
        let excess = peers.count - limits.chapTrackedPeers
        guard excess > 0 else { return }
        for (key, _) in peers.sorted(by: { $0.value.lastFailure < $1.value.lastFailure }).prefix(excess) {
            peers.removeValue(forKey: key)
        }
    }
}

import NIOConcurrencyHelpers

/// Counts connections still in login, per remote address and in all (FabricLimits), so that
/// a flood of half-open logins cannot take every descriptor and megabyte before the login
/// timeout reaps them.
public final class LoginAdmission: Sendable {
    private struct Counts {
        var limits: FabricLimits
        var total = 0
        var perAddress: [String: Int] = [:]
    }

    private let counts: NIOLockedValueBox<Counts>

    public init(limits: FabricLimits) {
        counts = NIOLockedValueBox(Counts(limits: limits))
    }

    /// New caps for the next connections; those in login now keep their places.
    public func update(limits: FabricLimits) {
        counts.withLockedValue { $0.limits = limits }
    }

    /// Takes a place for a new connection; false when the address or the server is full.
    public func admit(_ address: String) -> Bool {
        counts.withLockedValue { counts in
            let mine = counts.perAddress[address, default: 0]
            guard mine < counts.limits.maxLoginsPerAddress, counts.total < counts.limits.maxLoginsTotal else { return false }
            counts.perAddress[address] = mine + 1
            counts.total += 1
            return true
        }
    }

    /// Gives the place back (login finished or the connection closed during it).
    public func release(_ address: String) {
        counts.withLockedValue { counts in
            guard let mine = counts.perAddress[address] else { return }
            counts.perAddress[address] = mine > 1 ? mine - 1 : nil
            counts.total -= 1
        }
    }

    public var inLogin: Int { counts.withLockedValue { $0.total } }
}

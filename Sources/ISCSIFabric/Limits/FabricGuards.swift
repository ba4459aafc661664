import NIOConcurrencyHelpers
import Synchronization

/// The limits in force and the shared state that enforces them, one per server.
public final class FabricGuards: Sendable {
    private let current: NIOLockedValueBox<FabricLimits>
    public let loginThrottle: LoginThrottle
    public let loginAdmission: LoginAdmission
    public let failedLoginLog: LogBudget
    private let buffered = Atomic<Int>(0)
    private let refused = Atomic<UInt64>(0)
    private let delayed = Atomic<UInt64>(0)

    public init(limits: FabricLimits = FabricLimits()) {
        current = NIOLockedValueBox(limits)
        loginThrottle = LoginThrottle(limits: limits)
        loginAdmission = LoginAdmission(limits: limits)
        failedLoginLog = LogBudget(perMinute: limits.failedLoginLogLinesPerMinute)
    }

    /// The limits in force now.
    public var limits: FabricLimits { current.withLockedValue { $0 } }

    /// Puts new limits in force: the next logins and new sessions use them; sessions and
    /// CHAP failure counts so far are kept.
    public func update(limits: FabricLimits) {
        current.withLockedValue { $0 = limits }
        loginThrottle.update(limits: limits)
        loginAdmission.update(limits: limits)
        failedLoginLog.update(perMinute: limits.failedLoginLogLinesPerMinute)
    }

    /// Data-Out bytes held by all sessions for writes still receiving data.
    public var bufferedWriteBytes: Int { buffered.load(ordering: .relaxed) }
    /// Connections closed at once because too many were in login.
    public var refusedConnections: UInt64 { refused.load(ordering: .relaxed) }
    /// CHAP verifications that had to wait their turn.
    public var delayedVerifications: UInt64 { delayed.load(ordering: .relaxed) }

    /// Adds (or, negative, removes) a session's change in buffered bytes.
    func addBuffered(_ bytes: Int) { if bytes != 0 { buffered.add(bytes, ordering: .relaxed) } }
    func countRefusedConnection() { refused.add(1, ordering: .relaxed) }
    func countDelayedVerification() { delayed.add(1, ordering: .relaxed) }
}

import Logging
import NIOCore
import SCSIEngine
import Synchronization

/// Security events the fabric counts (for metrics): CHAP failures, ACL denials, NOP timeouts.
public final class FabricSecurityCounters: Sendable {
    private let chap = Atomic<UInt64>(0)
    private let acl = Atomic<UInt64>(0)
    private let nop = Atomic<UInt64>(0)
    public init() {}
    public var chapFailures: UInt64 { chap.load(ordering: .relaxed) }
    public var aclDenials: UInt64 { acl.load(ordering: .relaxed) }
    public var nopTimeouts: UInt64 { nop.load(ordering: .relaxed) }
    func countCHAPFailure() { chap.add(1, ordering: .relaxed) }
    func countACLDenial() { acl.add(1, ordering: .relaxed) }
    func countNOPTimeout() { nop.add(1, ordering: .relaxed) }
}

/// What every connection shares: the targets, the session table, the I/O workers.
public struct ConnectionEnvironment: Sendable {
    public var catalog: TargetCatalog
    public var sessions: SessionRegistry
    public var ioPool: IOWorkerPool
    public var logger: Logger
    public var targetPortalGroupTag: UInt16 = 1
    /// Interval between target NOP-In pings; nil disables them.
    public var nopInInterval: TimeAmount? = .seconds(30)
    /// How long a ping may go unanswered before the connection is dropped.
    public var nopInTimeout: TimeAmount = .seconds(30)
    /// A connection that has not finished login by then is closed.
    public var loginTimeout: TimeAmount = .seconds(15)
    /// Commands an initiator may have queued (CmdSN window).
    public var commandWindowDepth: UInt32 = 128
    public var securityCounters = FabricSecurityCounters()
    /// Limits against guessing and exhaustion, and the state that enforces them.
    public var guards = FabricGuards()

    public init(catalog: TargetCatalog, sessions: SessionRegistry, ioPool: IOWorkerPool, logger: Logger) {
        self.catalog = catalog
        self.sessions = sessions
        self.ioPool = ioPool
        self.logger = logger
    }
}

/// Sent to a connection whose tasks on a LUN another nexus preempted (PREEMPT AND ABORT).
struct AbortTasksEvent: Sendable {
    var lun: UInt64
}

/// Sent down a connection's pipeline to ask the initiator to log out (§11.9, AsyncEvent 1).
public struct RequestLogoutEvent: Sendable {
    public var seconds: UInt16
    public init(seconds: UInt16) { self.seconds = seconds }
}

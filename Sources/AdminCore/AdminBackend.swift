import TargetConfig

// The one interface every administration face (CLI via the local API, web console,
// metrics) talks to. The daemon's runtime implements it; faces never touch the fabric.

/// What changing the configuration did, setting by setting.
public struct ApplyReport: Sendable, Codable, Equatable {
    /// Each changed setting with how it took effect.
    public var effects: [AppliedEffect]
    /// Validation warnings (e.g. a short CHAP secret); errors throw instead.
    public var warnings: [String]

    public init(effects: [AppliedEffect] = [], warnings: [String] = []) {
        self.effects = effects
        self.warnings = warnings
    }
}

public struct AppliedEffect: Sendable, Codable, Equatable {
    /// Setting name (TargetConfig.SettingKey raw value).
    public var setting: String
    public var target: String?
    public var lun: Int?
    /// "applies-now", "new-logins" or "target-restart" (TargetConfig.ApplyMode).
    public var applyMode: String
    /// What the daemon did: e.g. "applied", "applies to new logins", "target restarted".
    public var outcome: String

    public init(setting: String, target: String?, lun: Int?, applyMode: String, outcome: String) {
        self.setting = setting
        self.target = target
        self.lun = lun
        self.applyMode = applyMode
        self.outcome = outcome
    }
}

extension [SessionInfo] {
    /// The sessions logged in to `target` (names compare case-insensitively, RFC 3722).
    public func loggedIn(to target: String) -> [SessionInfo] {
        filter { $0.target?.lowercased() == target.lowercased() }
    }

    /// Their initiator names, each once, sorted: for "… has live sessions (…)" messages.
    public var initiatorNames: [String] { Set(map(\.initiator)).sorted() }
}

/// A live iSCSI session as an admin sees it.
public struct SessionInfo: Sendable, Codable, Equatable {
    public var tsih: UInt16
    public var target: String?          // nil for discovery sessions
    public var initiator: String
    public var isid: String             // 12 hex digits
    public var remoteAddress: String
    public var localAddress: String
    public var authenticatedUser: String?
    public var headerDigest: String     // "None" / "CRC32C"
    public var dataDigest: String
    public var negotiated: [String: String]  // key → value as negotiated (MaxBurstLength, …)
    public var commandsInFlight: Int
    public var connectedSince: Double   // seconds since 1970
    /// Cumulative since login: commands answered, bytes moved, commands not answered GOOD.
    public var commands: UInt64
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    public var errors: UInt64

    public init(tsih: UInt16, target: String?, initiator: String, isid: String, remoteAddress: String,
                localAddress: String, authenticatedUser: String?, headerDigest: String, dataDigest: String,
                negotiated: [String: String], commandsInFlight: Int, connectedSince: Double,
                commands: UInt64 = 0, bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, errors: UInt64 = 0) {
        self.tsih = tsih
        self.target = target
        self.initiator = initiator
        self.isid = isid
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.authenticatedUser = authenticatedUser
        self.headerDigest = headerDigest
        self.dataDigest = dataDigest
        self.negotiated = negotiated
        self.commandsInFlight = commandsInFlight
        self.connectedSince = connectedSince
        self.commands = commands
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.errors = errors
    }
}

/// Cumulative counters of one LUN since the daemon started (rates are derived by the reader).
public struct LUNStatistics: Sendable, Codable, Equatable {
    public var target: String
    public var lun: Int
    public var readCommands: UInt64
    public var writeCommands: UInt64
    public var otherCommands: UInt64
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    public var errors: UInt64
    /// Upper bounds (seconds) of latency buckets and the cumulative count at or below each.
    public var latencyBuckets: [Double]
    public var latencyCounts: [UInt64]
    public var latencySumSeconds: Double

    public init(target: String, lun: Int, readCommands: UInt64 = 0, writeCommands: UInt64 = 0, otherCommands: UInt64 = 0,
                bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, errors: UInt64 = 0, latencyBuckets: [Double] = [],
                latencyCounts: [UInt64] = [], latencySumSeconds: Double = 0) {
        self.target = target
        self.lun = lun
        self.readCommands = readCommands
        self.writeCommands = writeCommands
        self.otherCommands = otherCommands
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.errors = errors
        self.latencyBuckets = latencyBuckets
        self.latencyCounts = latencyCounts
        self.latencySumSeconds = latencySumSeconds
    }
}

/// Security events counted for /metrics.
public struct SecurityCounters: Sendable, Codable, Equatable {
    public var chapFailures: UInt64
    public var aclDenials: UInt64
    public var nopTimeouts: UInt64
    /// Hostile-input gauges (embedded target): connections in login, connections closed
    /// at once for being over the login limits, CHAP verifications that waited their turn,
    /// names/addresses being delayed, Data-Out bytes held for unfinished writes, and the
    /// daemon's resident memory.
    public var loginsInProgress: Int = 0
    public var refusedConnections: UInt64 = 0
    public var delayedCHAPVerifications: UInt64 = 0
    public var throttledPeers: Int = 0
    public var bufferedWriteBytes: Int = 0
    public var residentBytes: Int = 0

    public init(chapFailures: UInt64 = 0, aclDenials: UInt64 = 0, nopTimeouts: UInt64 = 0) {
        self.chapFailures = chapFailures
        self.aclDenials = aclDenials
        self.nopTimeouts = nopTimeouts
    }
}

/// Running state of a target.
public struct TargetStatus: Sendable, Codable, Equatable {
    public var name: String
    public var running: Bool
    public var sessions: Int
    /// LUN id → current size in bytes (as served).
    public var lunSizes: [Int: UInt64]
    public init(name: String, running: Bool, sessions: Int, lunSizes: [Int: UInt64]) {
        self.name = name
        self.running = running
        self.sessions = sessions
        self.lunSizes = lunSizes
    }
}

public enum ServiceAction: String, Sendable, Codable, CaseIterable {
    case start, stop, restart
}

/// Errors a face shows the admin as they are (no stack traces, no secrets).
public struct AdminError: Error, Sendable, Codable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        case invalid        // validation failed (HTTP 400 / exit 2)
        case notFound       // no such target, LUN or session (404 / exit 3)
        case conflict       // e.g. target already exists (409 / exit 4)
        case failed         // the system refused (open failed, port busy) (500 / exit 1)
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// Implemented by the daemon's runtime.
public protocol AdminBackend: Sendable {
    /// The configuration as saved (secrets included: faces must redact before showing).
    func configuration() async -> Config
    /// Validates, saves atomically and applies a change live; throws AdminError.invalid with
    /// the validation messages when the result would be invalid (nothing changes then).
    func update(_ change: @Sendable (inout Config) throws -> Void) async throws -> ApplyReport
    /// Re-reads the configuration file and applies the difference live (`ReloadSource`).
    func reload() async throws -> ApplyReport
    func targetStatuses() async -> [TargetStatus]
    func sessions() async -> [SessionInfo]
    /// Logs a session out politely (async logout request, then close).
    func logout(tsih: UInt16) async throws
    /// Start/stop/restart one target, or all when `target` is nil.
    func control(_ action: ServiceAction, target: String?) async throws
    func statistics() async -> [LUNStatistics]
    func securityCounters() async -> SecurityCounters
}

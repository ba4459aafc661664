// Types shared by the login phase and the full-feature phase: what the target offers,
// who may log in to what, and what a login settled on.

/// How a target (or discovery) authenticates initiators.
public struct AuthenticationPolicy: Sendable, Equatable {
    /// CHAP users the initiator may authenticate as (name → secret). Empty: no CHAP.
    public var incomingUsers: [String: String]
    /// Mutual CHAP: the name/secret the target answers with. nil: one-way only.
    public var outgoingUser: (name: String, secret: String)?

    public init(incomingUsers: [String: String] = [:], outgoingUser: (name: String, secret: String)? = nil) {
        self.incomingUsers = incomingUsers
        self.outgoingUser = outgoingUser
    }

    public static let none = AuthenticationPolicy()
    public var requiresCHAP: Bool { !incomingUsers.isEmpty }

    public static func == (a: Self, b: Self) -> Bool {
        a.incomingUsers == b.incomingUsers && a.outgoingUser?.name == b.outgoingUser?.name
            && a.outgoingUser?.secret == b.outgoingUser?.secret
    }
}

/// The limits and preferences the target brings to operational negotiation
/// (RFC 7143 §13). Defaults favour throughput within the RFC's ranges.
public struct TargetLoginSettings: Sendable, Equatable {
    public var maxRecvDataSegmentLength: UInt32 = 262_144
    public var maxBurstLength: UInt32 = 1_048_576
    public var firstBurstLength: UInt32 = 262_144
    public var initialR2T: Bool = false
    public var immediateData: Bool = true
    public var maxOutstandingR2T: UInt32 = 8
    public var maxConnections: UInt32 = 1
    public var defaultTime2Wait: UInt32 = 2
    public var defaultTime2Retain: UInt32 = 20
    /// Digests the target accepts, in preference order ("CRC32C", "None").
    public var headerDigests: [String] = ["None", "CRC32C"]
    public var dataDigests: [String] = ["None", "CRC32C"]
    public var targetPortalGroupTag: UInt16 = 1
    /// Cap on the data segments the target sends (our MaxXmitDataSegmentLength setting): the
    /// initiator's declared MaxRecvDataSegmentLength is lowered to this. nil: no cap.
    public var maxXmitDataSegmentLength: UInt32? = nil

    public init() {}
}

/// One target as the login phase sees it.
public struct TargetAccess: Sendable {
    public var name: String
    public var alias: String?
    public var authentication: AuthenticationPolicy
    public var settings: TargetLoginSettings
    /// Portals ("host:port,tpgt") advertised in SendTargets for this target.
    public var portals: [String]
    /// Whether an initiator (name, remote IP address) may log in to / discover this target.
    public var isAllowed: @Sendable (_ initiatorName: String, _ address: String) -> Bool

    public init(name: String, alias: String? = nil, authentication: AuthenticationPolicy = .none,
                settings: TargetLoginSettings = TargetLoginSettings(), portals: [String],
                isAllowed: @escaping @Sendable (String, String) -> Bool = { _, _ in true }) {
        self.name = name
        self.alias = alias
        self.authentication = authentication
        self.settings = settings
        self.portals = portals
        self.isAllowed = isAllowed
    }

    /// Sessions allowed at once on this target; 0 = unlimited. A login over the limit is
    /// refused with 0x0302 (out of resources).
    public var maxSessions: Int = 0
    /// NOP-In ping interval and answer timeout for this target's sessions, in seconds
    /// (nil: the server's default; interval 0: no pings).
    public var nopInIntervalSeconds: Int? = nil
    public var nopInTimeoutSeconds: Int? = nil
    /// Whether the target is reachable (login, SendTargets) through a connection whose local
    /// address is the argument. A target not exposed there is "not found".
    public var isExposed: @Sendable (_ localAddress: String) -> Bool = { _ in true }
}

/// Everything the login phase may ask about the targets behind a portal.
public struct TargetDirectory: Sendable {
    public var targets: [TargetAccess]
    /// Authentication for discovery sessions (separate from targets').
    public var discoveryAuthentication: AuthenticationPolicy
    /// Settings used to negotiate discovery sessions.
    public var discoverySettings: TargetLoginSettings

    public init(targets: [TargetAccess], discoveryAuthentication: AuthenticationPolicy = .none,
                discoverySettings: TargetLoginSettings = TargetLoginSettings()) {
        self.targets = targets
        self.discoveryAuthentication = discoveryAuthentication
        self.discoverySettings = discoverySettings
    }

    public func target(named name: String) -> TargetAccess? {
        targets.first { $0.name == name }
    }
}

public enum SessionType: Sendable, Equatable {
    case discovery, normal
}

/// What a completed login settled on (RFC 7143 §13). "Recv"/"Xmit" are from the target's view:
/// `maxRecvDataSegmentLength` bounds PDUs the target receives (it declared it),
/// `maxXmitDataSegmentLength` bounds PDUs the target sends (the initiator declared it).
public struct NegotiatedParameters: Sendable, Equatable {
    public var sessionType: SessionType = .normal
    public var initiatorName: String = ""
    public var initiatorAlias: String?
    public var targetName: String = ""
    public var isid: UInt64 = 0
    public var headerDigest: Bool = false
    public var dataDigest: Bool = false
    public var maxConnections: UInt32 = 1
    public var initialR2T: Bool = true
    public var immediateData: Bool = true
    public var maxRecvDataSegmentLength: UInt32 = 8192
    public var maxXmitDataSegmentLength: UInt32 = 8192
    public var maxBurstLength: UInt32 = 262_144
    public var firstBurstLength: UInt32 = 65_536
    public var defaultTime2Wait: UInt32 = 2
    public var defaultTime2Retain: UInt32 = 20
    public var maxOutstandingR2T: UInt32 = 1
    public var dataPDUInOrder: Bool = true
    public var dataSequenceInOrder: Bool = true
    public var errorRecoveryLevel: UInt8 = 0
    /// CHAP user the initiator authenticated as, if any (never the secret).
    public var authenticatedUser: String?

    public init() {}
}

import AdminCore
import Foundation
import TargetConfig

/// Default path of the daemon's API socket.
public let defaultAPISocketPath = "/run/swift-targetd/api.sock"

/// A target as the API lists it: its configuration (secrets redacted) and running state.
public struct TargetView: Codable, Sendable, Equatable {
    public var name: String
    public var alias: String?
    public var running: Bool
    public var sessions: Int
    public var luns: [LUNView]
    /// Effective authentication (redacted), and whether it is inherited from the defaults.
    public var auth: AuthSettings
    public var authInherited: Bool
    public var allowedClients: [AccessRule]
    public var allowedClientsInherited: Bool
    public var allowedServerAddresses: [String]
    public var connection: ConnectionSettings?
    public var timeouts: TimeoutSettings?

    public init(name: String, alias: String?, running: Bool, sessions: Int, luns: [LUNView], auth: AuthSettings,
                authInherited: Bool, allowedClients: [AccessRule], allowedClientsInherited: Bool,
                allowedServerAddresses: [String], connection: ConnectionSettings?, timeouts: TimeoutSettings?) {
        self.name = name
        self.alias = alias
        self.running = running
        self.sessions = sessions
        self.luns = luns
        self.auth = auth
        self.authInherited = authInherited
        self.allowedClients = allowedClients
        self.allowedClientsInherited = allowedClientsInherited
        self.allowedServerAddresses = allowedServerAddresses
        self.connection = connection
        self.timeouts = timeouts
    }
}

public struct LUNView: Codable, Sendable, Equatable {
    public var id: Int
    public var backstore: String
    public var path: String
    /// Size as served (bytes), or the configured size when the target is not running.
    public var size: UInt64?
    public var readOnly: Bool
    public var writeCache: String
    public var serial: String
    public var naaId: String
}

/// A LUN changed in place (`PATCH /v1/targets/{name}/luns/{id}`): the fields given change,
/// the rest (path, serial, NAA id) stay.
public struct LUNEditRequest: Codable, Sendable {
    /// A larger size grows the image; a smaller one is refused.
    public var size: UInt64?
    public var readOnly: Bool?
    public var writeCache: String?
    public init(size: UInt64? = nil, readOnly: Bool? = nil, writeCache: String? = nil) {
        self.size = size
        self.readOnly = readOnly
        self.writeCache = writeCache
    }
}

public struct NewTargetRequest: Codable, Sendable {
    public var name: String
    public var alias: String?
    public init(name: String, alias: String? = nil) {
        self.name = name
        self.alias = alias
    }
}

public struct NewLUNRequest: Codable, Sendable {
    public var id: Int?
    public var backstore: String
    public var path: String
    public var size: UInt64?
    public var readOnly: Bool?
    public var writeCache: String?
    /// The kind's settings (rbd: conf, id, keyring).
    public var options: [String: String]?
    public init(id: Int? = nil, backstore: String, path: String, size: UInt64? = nil, readOnly: Bool? = nil,
                writeCache: String? = nil, options: [String: String]? = nil) {
        self.options = options
        self.id = id
        self.backstore = backstore
        self.path = path
        self.size = size
        self.readOnly = readOnly
        self.writeCache = writeCache
    }
}

/// Adds a client rule at `position` (0-based; end when absent).
/// A LUN map to insert into a target's list (`position` 0 = first; default: last).
public struct NewLUNMapRequest: Codable, Sendable {
    public var map: LUNMapping
    public var position: Int?
    public init(map: LUNMapping, position: Int? = nil) {
        self.map = map
        self.position = position
    }
}

public struct NewAccessRuleRequest: Codable, Sendable {
    public var rule: AccessRule
    public var position: Int?
    public init(rule: AccessRule, position: Int? = nil) {
        self.rule = rule
        self.position = position
    }
}

public struct MoveRequest: Codable, Sendable {
    /// "up" or "down".
    public var direction: String
    public init(direction: String) { self.direction = direction }
}

/// Connection settings as configured at one level (nil = inherited) and as in effect.
public struct ConnectionSettingsView: Codable, Sendable, Equatable {
    public var configured: ConnectionSettings
    public var effective: ConnectionSettings
}

public struct TimeoutSettingsView: Codable, Sendable, Equatable {
    public var configured: TimeoutSettings
    public var effective: TimeoutSettings
}

/// `GET /v1/limits`: the configuration file's `limits` and every limit with defaults filled in.
/// (`swift-targetd run` flags of the same meaning override these; the daemon logs them at start.)
public struct LimitsView: Codable, Sendable, Equatable {
    public var configured: LimitSettings
    public var effective: LimitSettings
    public init(configured: LimitSettings) {
        self.configured = configured
        effective = configured.resolved
    }
}

public struct StatisticsView: Codable, Sendable, Equatable {
    public var luns: [LUNStatistics]
    public var security: SecurityCounters
    public init(luns: [LUNStatistics], security: SecurityCounters) {
        self.luns = luns
        self.security = security
    }
}

/// `{"error": kind, "message": …}`.
public struct APIErrorBody: Codable, Sendable {
    public var error: String
    public var message: String
}

extension AdminError.Kind {
    public var httpStatus: Int {
        switch self {
        case .invalid: return 400
        case .notFound: return 404
        case .conflict: return 409
        case .failed: return 500
        }
    }

    /// Exit status of swift-targetctl.
    public var exitCode: Int32 {
        switch self {
        case .invalid: return 2
        case .notFound: return 3
        case .conflict: return 4
        case .failed: return 1
        }
    }

    public init(httpStatus: Int) {
        switch httpStatus {
        case 400, 422: self = .invalid
        case 404: self = .notFound
        case 409: self = .conflict
        default: self = .failed
        }
    }
}

/// Exit codes swift-targetctl documents and scripts rely on.
public enum CtlExitCode {
    public static let ok: Int32 = 0
    public static let failure: Int32 = 1
    public static let invalid: Int32 = 2
    public static let notFound: Int32 = 3
    public static let conflict: Int32 = 4
    /// EX_UNAVAILABLE: the daemon's socket cannot be reached.
    public static let unreachable: Int32 = 69
}

extension ConnectionSettings {
    public init(_ e: EffectiveConnectionSettings) {
        self.init(maxSessions: e.maxSessions, maxConnections: e.maxConnections, initialR2T: e.initialR2T,
                  immediateData: e.immediateData, maxRecvDataSegmentLength: e.maxRecvDataSegmentLength,
                  maxXmitDataSegmentLength: e.maxXmitDataSegmentLength, maxBurstLength: e.maxBurstLength,
                  firstBurstLength: e.firstBurstLength, maxOutstandingR2T: e.maxOutstandingR2T,
                  defaultTime2Wait: e.defaultTime2Wait, defaultTime2Retain: e.defaultTime2Retain,
                  headerDigest: e.headerDigest, dataDigest: e.dataDigest)
    }

    /// Non-nil fields of `o` replace ours.
    public func merging(_ o: ConnectionSettings) -> ConnectionSettings {
        var r = self
        if let v = o.maxSessions { r.maxSessions = v }
        if let v = o.maxConnections { r.maxConnections = v }
        if let v = o.initialR2T { r.initialR2T = v }
        if let v = o.immediateData { r.immediateData = v }
        if let v = o.maxRecvDataSegmentLength { r.maxRecvDataSegmentLength = v }
        if let v = o.maxXmitDataSegmentLength { r.maxXmitDataSegmentLength = v }
        if let v = o.maxBurstLength { r.maxBurstLength = v }
        if let v = o.firstBurstLength { r.firstBurstLength = v }
        if let v = o.maxOutstandingR2T { r.maxOutstandingR2T = v }
        if let v = o.defaultTime2Wait { r.defaultTime2Wait = v }
        if let v = o.defaultTime2Retain { r.defaultTime2Retain = v }
        if let v = o.headerDigest { r.headerDigest = v }
        if let v = o.dataDigest { r.dataDigest = v }
        return r
    }
}

extension TimeoutSettings {
    public init(_ e: EffectiveTimeoutSettings) {
        self.init(nopInInterval: e.nopInInterval, nopInTimeout: e.nopInTimeout, loginTimeout: e.loginTimeout)
    }

    public func merging(_ o: TimeoutSettings) -> TimeoutSettings {
        var r = self
        if let v = o.nopInInterval { r.nopInInterval = v }
        if let v = o.nopInTimeout { r.nopInTimeout = v }
        if let v = o.loginTimeout { r.loginTimeout = v }
        return r
    }
}

enum JSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()
    static func encode<T: Encodable>(_ value: T) throws -> Data { try encoder.encode(value) }
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T { try JSONDecoder().decode(type, from: data) }
}

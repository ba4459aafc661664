import Backstores
import Foundation

// MARK: - Enumerations used in the file

/// String-valued enumerations give admins a precise message ("must be one of: …") on a typo.
public protocol ConfigEnum: CaseIterable, RawRepresentable, Codable, Sendable, Hashable where RawValue == String {}

extension ConfigEnum {
    static func decodeEnum(from decoder: Decoder) throws -> Self {
        let c = try decoder.singleValueContainer()
        let raw = try c.decode(String.self)
        guard let v = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "\"\(raw)\" is not one of \(allowed)")
        }
        return v
    }
}

/// How a LUN is backed.
/// The backstore kinds are Backstores' own (one type, with its capabilities).
public typealias BackstoreKind = Backstores.BackstoreKind
extension Backstores.BackstoreKind: ConfigEnum {}

public enum WriteCacheMode: String, ConfigEnum {
    case writeBack = "write-back"
    case writeThrough = "write-through"
    public init(from decoder: Decoder) throws { self = try Self.decodeEnum(from: decoder) }
}

public enum AuthMode: String, ConfigEnum {
    /// No CHAP; any initiator admitted by the ACL may log in.
    case none
    /// One-way CHAP: the initiator proves one of `incomingUsers`.
    case chap
    /// Mutual CHAP: as `chap`, and the target then proves `outgoingUser`.
    case mutualCHAP = "mutual-chap"
    public init(from decoder: Decoder) throws { self = try Self.decodeEnum(from: decoder) }
}

public enum DigestKind: String, ConfigEnum {
    case none = "None"
    case crc32c = "CRC32C"
    public init(from decoder: Decoder) throws { self = try Self.decodeEnum(from: decoder) }
}

public enum AccessAction: String, ConfigEnum {
    case allow
    case deny
    public init(from decoder: Decoder) throws { self = try Self.decodeEnum(from: decoder) }
}

// MARK: - Authentication

/// A CHAP account. Printing it (`description`, `debugDescription`, `dump`, test failure
/// messages) never shows the secret.
public struct CHAPCredential: Codable, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var user: String
    public var secret: String
    public init(user: String, secret: String) {
        self.user = user
        self.secret = secret
    }
    public var description: String { "\(user):<\(secret.utf8.count)-byte secret>" }
    public var debugDescription: String { "CHAPCredential(\(description))" }
    public var customMirror: Mirror { Mirror(self, children: ["user": user, "secret": "<redacted>"]) }
}

/// CHAP settings of a target, of the global defaults, or of discovery sessions.
public struct AuthSettings: Codable, Sendable, Hashable {
    public var mode: AuthMode
    /// Accounts an initiator may authenticate as (CHAP_N/CHAP_R). Required for `chap`/`mutual-chap`.
    public var incomingUsers: [CHAPCredential]
    /// The target's own account for mutual CHAP. Required for `mutual-chap`, forbidden otherwise.
    public var outgoingUser: CHAPCredential?

    public init(mode: AuthMode = .none, incomingUsers: [CHAPCredential] = [], outgoingUser: CHAPCredential? = nil) {
        self.mode = mode
        self.incomingUsers = incomingUsers
        self.outgoingUser = outgoingUser
    }

    public static let noAuth = AuthSettings()

    enum CodingKeys: String, CodingKey { case mode, incomingUsers, outgoingUser }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(AuthMode.self, forKey: .mode)
        incomingUsers = try c.decodeIfPresent([CHAPCredential].self, forKey: .incomingUsers) ?? []
        outgoingUser = try c.decodeIfPresent(CHAPCredential.self, forKey: .outgoingUser)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        if !incomingUsers.isEmpty { try c.encode(incomingUsers, forKey: .incomingUsers) }
        try c.encodeIfPresent(outgoingUser, forKey: .outgoingUser)
    }
}

// MARK: - Session and timeout settings

/// Login-negotiated iSCSI keys (RFC 7143 §13) plus session limits. `nil` means "inherit":
/// from `defaults.connection` for a target, from `EffectiveConnectionSettings.builtIn` for the defaults.
public struct ConnectionSettings: Codable, Sendable, Hashable {
    /// Maximum concurrent sessions on the target; 0 = unlimited.
    public var maxSessions: Int?
    public var maxConnections: Int?
    public var initialR2T: Bool?
    public var immediateData: Bool?
    public var maxRecvDataSegmentLength: Int?
    public var maxXmitDataSegmentLength: Int?
    public var maxBurstLength: Int?
    public var firstBurstLength: Int?
    public var maxOutstandingR2T: Int?
    public var defaultTime2Wait: Int?
    public var defaultTime2Retain: Int?
    /// Offered digests in order of preference, e.g. `["CRC32C", "None"]`.
    public var headerDigest: [DigestKind]?
    public var dataDigest: [DigestKind]?

    public init(
        maxSessions: Int? = nil, maxConnections: Int? = nil, initialR2T: Bool? = nil, immediateData: Bool? = nil,
        maxRecvDataSegmentLength: Int? = nil, maxXmitDataSegmentLength: Int? = nil, maxBurstLength: Int? = nil,
        firstBurstLength: Int? = nil, maxOutstandingR2T: Int? = nil, defaultTime2Wait: Int? = nil,
        defaultTime2Retain: Int? = nil, headerDigest: [DigestKind]? = nil, dataDigest: [DigestKind]? = nil
    ) {
        self.maxSessions = maxSessions
        self.maxConnections = maxConnections
        self.initialR2T = initialR2T
        self.immediateData = immediateData
        self.maxRecvDataSegmentLength = maxRecvDataSegmentLength
        self.maxXmitDataSegmentLength = maxXmitDataSegmentLength
        self.maxBurstLength = maxBurstLength
        self.firstBurstLength = firstBurstLength
        self.maxOutstandingR2T = maxOutstandingR2T
        self.defaultTime2Wait = defaultTime2Wait
        self.defaultTime2Retain = defaultTime2Retain
        self.headerDigest = headerDigest
        self.dataDigest = dataDigest
    }

    public var isEmpty: Bool { self == ConnectionSettings() }
}

/// Timers. `nil` means inherit, as for `ConnectionSettings`.
public struct TimeoutSettings: Codable, Sendable, Hashable {
    /// Seconds between NOP-In pings on an idle connection; 0 = never ping.
    public var nopInInterval: Int?
    /// Seconds to wait for the NOP-Out answer before dropping the connection.
    public var nopInTimeout: Int?
    /// Seconds a login may take from TCP accept to full feature phase.
    public var loginTimeout: Int?

    public init(nopInInterval: Int? = nil, nopInTimeout: Int? = nil, loginTimeout: Int? = nil) {
        self.nopInInterval = nopInInterval
        self.nopInTimeout = nopInTimeout
        self.loginTimeout = loginTimeout
    }
    public var isEmpty: Bool { self == TimeoutSettings() }
}

// MARK: - LUNs

public struct LUN: Codable, Sendable, Hashable {
    /// LUN number, 0...16383. Every target should have LUN 0.
    public var id: Int
    public var backstore: BackstoreKind
    /// Absolute path of the image file or block device; POOL/IMAGE for `rbd`.
    public var path: String
    /// The kind's own settings (`BackstoreKind.settings`): for `rbd`, `conf` (ceph.conf,
    /// default /etc/ceph/ceph.conf), `id` (client id, default admin), `keyring`.
    public var options: [String: String]
    /// Size in bytes used when creating a missing `file`/`sparse` image. Not allowed for `raw`.
    public var size: UInt64?
    /// Logical block size in bytes (512, 1024, 2048 or 4096); 512 when absent.
    public var blockSize: Int?
    public var readOnly: Bool
    public var writeCache: WriteCacheMode
    /// Unit serial number (VPD page 0x80). Generated once when the LUN is created, then kept.
    public var serial: String
    /// NAA designator in hex (VPD page 0x83), 16 or 32 digits. Generated once, then kept.
    public var naaId: String

    public init(
        id: Int, backstore: BackstoreKind, path: String, size: UInt64? = nil, blockSize: Int? = nil,
        readOnly: Bool = false, writeCache: WriteCacheMode = .writeThrough,
        serial: String? = nil, naaId: String? = nil, options: [String: String] = [:]
    ) {
        self.id = id
        self.backstore = backstore
        self.path = path
        self.options = options
        self.size = size
        self.blockSize = blockSize
        self.readOnly = readOnly
        self.writeCache = writeCache
        self.serial = serial ?? LUNIdentity.generateSerial()
        self.naaId = naaId ?? LUNIdentity.generateNAA()
    }

    public var effectiveBlockSize: Int { blockSize ?? 512 }

    enum CodingKeys: String, CodingKey {
        case id, backstore, path, options, size, blockSize, readOnly, writeCache, serial, naaId
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(backstore, forKey: .backstore)
        try c.encode(path, forKey: .path)
        if !options.isEmpty { try c.encode(options, forKey: .options) }
        try c.encodeIfPresent(size, forKey: .size)
        try c.encodeIfPresent(blockSize, forKey: .blockSize)
        try c.encode(readOnly, forKey: .readOnly)
        try c.encode(writeCache, forKey: .writeCache)
        try c.encode(serial, forKey: .serial)
        try c.encode(naaId, forKey: .naaId)
    }
    /// A LUN written by hand without `serial`/`naaId` gets them generated here; the loader
    /// reports that (`LoadedConfig.generatedIdentities`) and `ConfigStore.load` writes them
    /// back at once so they stay stable across restarts.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        backstore = try c.decode(BackstoreKind.self, forKey: .backstore)
        path = try c.decode(String.self, forKey: .path)
        options = try c.decodeIfPresent([String: String].self, forKey: .options) ?? [:]
        size = try c.decodeIfPresent(UInt64.self, forKey: .size)
        blockSize = try c.decodeIfPresent(Int.self, forKey: .blockSize)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
        writeCache = try c.decodeIfPresent(WriteCacheMode.self, forKey: .writeCache) ?? .writeThrough
        serial = try c.decodeIfPresent(String.self, forKey: .serial) ?? LUNIdentity.generateSerial()
        naaId = try c.decodeIfPresent(String.self, forKey: .naaId) ?? LUNIdentity.generateNAA()
    }
}

/// Generation of stable LUN identities.
extension LUN {
    /// The 64-bit value the SCSI engine builds the LU's NAA designator from: the last 16
    /// hex digits of `naaId` (a hash of it when those are zero or missing). Both runtimes
    /// use it, so a LUN keeps its identity whether LIO or the embedded target serves it.
    public var engineUniqueID: UInt64 {
        let hex = naaId.filter(\.isHexDigit)
        if let v = UInt64(String(hex.suffix(16)), radix: 16), v != 0 { return v }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in naaId.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}

public enum LUNIdentity {
    /// 16 upper-case hex digits (fits IET's 16-character ScsiSN and SPC's serial field).
    public static func generateSerial() -> String {
        var g = SystemRandomNumberGenerator()
        return String(format: "%016llX", g.next() as UInt64)
    }

    /// NAA IEEE Registered Extended (type 6) designator, 32 hex digits. We own no IEEE OUI, so
    /// the company id is random with the IEEE "locally administered" bit (0x02 of the first
    /// octet) set and the multicast bit clear, which cannot collide with any assigned OUI.
    public static func generateNAA() -> String {
        var g = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        let oui0 = (bytes[0] & 0xFC) | 0x02
        // Byte layout: 6 | OUI (24 bits) | vendor specific (36 bits) | extension (64 bits).
        let oui = [oui0, bytes[1], bytes[2]]
        bytes[0] = 0x60 | (oui[0] >> 4)
        bytes[1] = (oui[0] << 4) | (oui[1] >> 4)
        bytes[2] = (oui[1] << 4) | (oui[2] >> 4)
        bytes[3] = (oui[2] << 4) | (bytes[3] & 0x0F)
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}

// MARK: - Targets and the whole configuration

/// Settings shared by all targets unless a target overrides them.
public struct GlobalDefaults: Codable, Sendable, Hashable {
    /// Authentication of normal sessions for targets without their own `auth`.
    public var auth: AuthSettings?
    /// Client access rules for targets without their own `allowedClients`.
    public var allowedClients: [AccessRule]?
    /// Local addresses targets are exposed on, for targets without their own list.
    public var allowedServerAddresses: [IPNetwork]?
    public var connection: ConnectionSettings?
    public var timeouts: TimeoutSettings?

    public init(
        auth: AuthSettings? = nil, allowedClients: [AccessRule]? = nil, allowedServerAddresses: [IPNetwork]? = nil,
        connection: ConnectionSettings? = nil, timeouts: TimeoutSettings? = nil
    ) {
        self.auth = auth
        self.allowedClients = allowedClients
        self.allowedServerAddresses = allowedServerAddresses
        self.connection = connection
        self.timeouts = timeouts
    }
}

public struct Target: Codable, Sendable, Hashable {
    /// iSCSI name: `iqn.YYYY-MM.reversed.domain[:id]`, `eui.` + 16 hex, or `naa.` + 16/32 hex.
    public var name: String
    public var alias: String?
    public var luns: [LUN]
    /// `nil` = inherit `defaults.auth` (which defaults to no authentication).
    public var auth: AuthSettings?
    /// Ordered rules, first match wins. `nil` = inherit `defaults.allowedClients`;
    /// `[]` = allow everyone; non-empty and nothing matched = deny.
    public var allowedClients: [AccessRule]?
    /// Local addresses (CIDR) on which this target is reachable and advertised by SendTargets.
    /// `nil` = inherit `defaults.allowedServerAddresses`; `[]` or absent everywhere = every portal.
    public var allowedServerAddresses: [IPNetwork]?
    public var connection: ConnectionSettings?
    public var timeouts: TimeoutSettings?
    /// Per-initiator LUN maps; nil or [] = every initiator sees every LUN.
    public var lunMaps: [LUNMapping]?

    public init(
        name: String, alias: String? = nil, luns: [LUN] = [], auth: AuthSettings? = nil,
        allowedClients: [AccessRule]? = nil, allowedServerAddresses: [IPNetwork]? = nil,
        connection: ConnectionSettings? = nil, timeouts: TimeoutSettings? = nil, lunMaps: [LUNMapping]? = nil
    ) {
        self.name = name
        self.alias = alias
        self.luns = luns
        self.auth = auth
        self.allowedClients = allowedClients
        self.allowedServerAddresses = allowedServerAddresses
        self.connection = connection
        self.timeouts = timeouts
        self.lunMaps = lunMaps
    }

    enum CodingKeys: String, CodingKey {
        case name, alias, luns, auth, allowedClients, allowedServerAddresses, connection, timeouts, lunMaps
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        alias = try c.decodeIfPresent(String.self, forKey: .alias)
        luns = try c.decodeIfPresent([LUN].self, forKey: .luns) ?? []
        auth = try c.decodeIfPresent(AuthSettings.self, forKey: .auth)
        allowedClients = try c.decodeIfPresent([AccessRule].self, forKey: .allowedClients)
        allowedServerAddresses = try c.decodeIfPresent([IPNetwork].self, forKey: .allowedServerAddresses)
        connection = try c.decodeIfPresent(ConnectionSettings.self, forKey: .connection)
        timeouts = try c.decodeIfPresent(TimeoutSettings.self, forKey: .timeouts)
        lunMaps = try c.decodeIfPresent([LUNMapping].self, forKey: .lunMaps)
    }

    public func lun(_ id: Int) -> LUN? { luns.first { $0.id == id } }
}

/// The whole configuration: one JSON file, by default mode 0600 (it holds CHAP secrets).
/// Full example: `docs/config-example.json`. Format (all keys camelCase, unknown keys are errors):
///
/// ```
/// version                 1 (required)
/// portals                 ["0.0.0.0:3260", "[::]:3260"]  listening address:port list (default 0.0.0.0:3260)
/// discoveryAuth           auth object for SendTargets sessions (default none)
/// defaults                inherited by every target that does not set the same field:
///   auth                  {"mode": "none"|"chap"|"mutual-chap", "incomingUsers": [{"user","secret"}], "outgoingUser": {"user","secret"}}
///   allowedClients        ordered rules [{"action": "allow"|"deny", "initiator": glob, "initiatorRegex": ERE,
///                         "address": CIDR, "comment"}]; first match wins; [] or absent = everyone;
///                         non-empty and nothing matched = denied
///   allowedServerAddresses  CIDR list of local addresses targets are reachable/advertised on ([] = all)
///   connection            maxSessions (0 = unlimited), maxConnections, initialR2T, immediateData,
///                         maxRecvDataSegmentLength, maxXmitDataSegmentLength, maxBurstLength, firstBurstLength,
///                         maxOutstandingR2T, defaultTime2Wait, defaultTime2Retain,
///                         headerDigest/dataDigest (["CRC32C", "None"] in preference order)
///   timeouts              nopInInterval (s, 0 = never), nopInTimeout (s), loginTimeout (s)
/// gateway                 portGroup (this gateway's target port group = portal group tag, default 1),
///                         portGroups (every gateway's, for REPORT TARGET PORT GROUPS)
/// limits                  chapFreeFailures, chapDelaySeconds, chapMaxDelaySeconds, maxLoginsPerAddress,
///                         maxLogins, maxBufferedWriteMB, failedLoginLogLines, sanitizeMBPerSecond
///                         (LimitSettings; absent = default)
/// targets[]               name (iqn./eui./naa.), alias, luns[], and optionally auth, allowedClients,
///                         allowedServerAddresses, connection, timeouts (override `defaults` field by field),
///                         lunMaps
///   lunMaps[]             {"initiators": [glob], "luns": [{"mappedLun", "lun", "readOnly"}], "comment"}: the
///                         first map naming an initiator decides the LUNs it sees (mappedLun -> the target's
///                         LUN id); an initiator no map names sees every LUN
///   luns[]                id (0...16383), backstore ("file"|"sparse"|"raw"), path (absolute), size (bytes,
///                         for creating images; not for raw), blockSize (512/1024/2048/4096), readOnly,
///                         writeCache ("write-back"|"write-through", default write-through),
///                         serial, naaId (generated once, then kept)
/// ```
public struct Config: Codable, Sendable, Hashable {
    public static let currentVersion = 1

    public var version: Int
    /// Listening portals, `address:port` (`0.0.0.0:3260`, `[::]:3260`, `192.0.2.10:3260`).
    public var portals: [Portal]
    /// CHAP for discovery (SendTargets) sessions; independent of the targets' auth.
    public var discoveryAuth: AuthSettings
    public var defaults: GlobalDefaults
    /// This daemon as one of several gateways (absent: the only one, port group 1).
    public var gateway: GatewaySettings?
    /// Limits against guessing and exhaustion (embedded iSCSI target; LIO has its own).
    public var limits: LimitSettings?
    public var targets: [Target]

    public init(
        version: Int = Config.currentVersion, portals: [Portal] = [Portal(address: "0.0.0.0", port: 3260)],
        discoveryAuth: AuthSettings = .noAuth, defaults: GlobalDefaults = GlobalDefaults(),
        gateway: GatewaySettings? = nil, limits: LimitSettings? = nil, targets: [Target] = []
    ) {
        self.gateway = gateway
        self.version = version
        self.portals = portals
        self.discoveryAuth = discoveryAuth
        self.defaults = defaults
        self.limits = limits
        self.targets = targets
    }

    enum CodingKeys: String, CodingKey { case version, portals, discoveryAuth, defaults, gateway, limits, targets }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        portals = try c.decodeIfPresent([Portal].self, forKey: .portals) ?? [Portal(address: "0.0.0.0", port: 3260)]
        discoveryAuth = try c.decodeIfPresent(AuthSettings.self, forKey: .discoveryAuth) ?? .noAuth
        defaults = try c.decodeIfPresent(GlobalDefaults.self, forKey: .defaults) ?? GlobalDefaults()
        gateway = try c.decodeIfPresent(GatewaySettings.self, forKey: .gateway)
        limits = try c.decodeIfPresent(LimitSettings.self, forKey: .limits)
        targets = try c.decodeIfPresent([Target].self, forKey: .targets) ?? []
    }

    /// This gateway's port group (portal group tag, relative target port).
    public var portGroup: Int { gateway?.portGroup ?? 1 }

    /// Index of the target with this name (iSCSI names compare case-insensitively).
    public func targetIndex(named name: String) -> Int? {
        let n = name.lowercased()
        return targets.firstIndex { $0.name.lowercased() == n }
    }

    public func target(named name: String) -> Target? { targetIndex(named: name).map { targets[$0] } }

    /// Adds a LUN to a target, generating its serial and NAA id once. Returns the new LUN.
    @discardableResult
    public mutating func addLUN(
        toTarget name: String, id: Int? = nil, backstore: BackstoreKind, path: String, size: UInt64? = nil,
        readOnly: Bool = false, writeCache: WriteCacheMode = .writeThrough, options: [String: String] = [:]
    ) throws -> LUN {
        guard let t = targetIndex(named: name) else { throw ConfigError([.init(.error, "targets", "no target named \(name)")]) }
        let used = Set(targets[t].luns.map(\.id))
        let newID = id ?? (0...).first { !used.contains($0) }!
        if used.contains(newID) {
            throw ConfigError([.init(.error, ConfigPath("targets")[t] / "luns", "LUN \(newID) already exists")])
        }
        var serial = LUNIdentity.generateSerial()
        let serials = Set(targets.flatMap { $0.luns.map(\.serial) })
        while serials.contains(serial) { serial = LUNIdentity.generateSerial() }
        let lun = LUN(id: newID, backstore: backstore, path: path, size: size, readOnly: readOnly,
                      writeCache: writeCache, serial: serial, options: options)
        targets[t].luns.append(lun)
        targets[t].luns.sort { $0.id < $1.id }
        return lun
    }
}

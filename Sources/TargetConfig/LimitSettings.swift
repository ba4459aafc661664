/// The configuration file's `limits`: what one peer may cost the target before it is slowed
/// down or refused (CHAP guessing, login floods, buffered write data). Every field is
/// optional; an absent one keeps the built-in default. `swift-targetd run` flags of the same
/// names override the file.
public struct LimitSettings: Codable, Sendable, Hashable {
    /// CHAP failures per initiator name or address before each further attempt waits.
    public var chapFreeFailures: Int?
    /// Seconds the first delayed CHAP attempt waits; the wait doubles per further failure.
    public var chapDelaySeconds: Double?
    /// Longest wait for one CHAP attempt, in seconds.
    public var chapMaxDelaySeconds: Double?
    /// Connections still in login from one address; more are closed at once.
    public var maxLoginsPerAddress: Int?
    /// Connections still in login in all.
    public var maxLogins: Int?
    /// MiB a session may hold for writes still receiving Data-Out (more: TASK SET FULL).
    public var maxBufferedWriteMB: Int?
    /// Failed logins logged per minute; the rest are counted in one summary line.
    public var failedLoginLogLines: Int?
    /// MiB per second one LU's SANITIZE may write or erase (0: no limit), so it leaves the
    /// storage to the other LUs.
    public var sanitizeMBPerSecond: Int?

    public init(
        chapFreeFailures: Int? = nil, chapDelaySeconds: Double? = nil, chapMaxDelaySeconds: Double? = nil,
        maxLoginsPerAddress: Int? = nil, maxLogins: Int? = nil, maxBufferedWriteMB: Int? = nil,
        failedLoginLogLines: Int? = nil, sanitizeMBPerSecond: Int? = nil
    ) {
        self.chapFreeFailures = chapFreeFailures
        self.chapDelaySeconds = chapDelaySeconds
        self.chapMaxDelaySeconds = chapMaxDelaySeconds
        self.maxLoginsPerAddress = maxLoginsPerAddress
        self.maxLogins = maxLogins
        self.maxBufferedWriteMB = maxBufferedWriteMB
        self.failedLoginLogLines = failedLoginLogLines
        self.sanitizeMBPerSecond = sanitizeMBPerSecond
    }

    /// The built-in values (the same as the fabric's `FabricLimits()`).
    public static let defaults = LimitSettings(
        chapFreeFailures: 3, chapDelaySeconds: 1, chapMaxDelaySeconds: 30, maxLoginsPerAddress: 32,
        maxLogins: 1024, maxBufferedWriteMB: 64, failedLoginLogLines: 30, sanitizeMBPerSecond: 0)

    public var isEmpty: Bool { self == LimitSettings() }

    /// These settings with every field `other` sets replaced by `other`'s.
    public func overridden(by other: LimitSettings) -> LimitSettings {
        LimitSettings(
            chapFreeFailures: other.chapFreeFailures ?? chapFreeFailures,
            chapDelaySeconds: other.chapDelaySeconds ?? chapDelaySeconds,
            chapMaxDelaySeconds: other.chapMaxDelaySeconds ?? chapMaxDelaySeconds,
            maxLoginsPerAddress: other.maxLoginsPerAddress ?? maxLoginsPerAddress,
            maxLogins: other.maxLogins ?? maxLogins,
            maxBufferedWriteMB: other.maxBufferedWriteMB ?? maxBufferedWriteMB,
            failedLoginLogLines: other.failedLoginLogLines ?? failedLoginLogLines,
            sanitizeMBPerSecond: other.sanitizeMBPerSecond ?? sanitizeMBPerSecond)
    }

    /// The built-in defaults with these settings applied: every field set.
    public var resolved: LimitSettings { Self.defaults.overridden(by: self) }

    /// `field=value` pairs of the fields set, in declaration order (for logs and diffs).
    public var summary: String {
        let fields: [(String, String?)] = [
            ("chapFreeFailures", chapFreeFailures.map(String.init)),
            ("chapDelaySeconds", chapDelaySeconds.map { "\($0)" }),
            ("chapMaxDelaySeconds", chapMaxDelaySeconds.map { "\($0)" }),
            ("maxLoginsPerAddress", maxLoginsPerAddress.map(String.init)),
            ("maxLogins", maxLogins.map(String.init)),
            ("maxBufferedWriteMB", maxBufferedWriteMB.map(String.init)),
            ("failedLoginLogLines", failedLoginLogLines.map(String.init)),
            ("sanitizeMBPerSecond", sanitizeMBPerSecond.map(String.init)),
        ]
        let set = fields.compactMap { name, value in value.map { "\(name)=\($0)" } }
        return set.isEmpty ? "defaults" : set.joined(separator: " ")
    }

    /// Problems with these settings as resolved (field name, message); empty when usable.
    public func problems() -> [(field: String, message: String)] {
        let r = resolved
        var out: [(String, String)] = []
        if let v = chapFreeFailures, v < 0 { out.append(("chapFreeFailures", "must be 0 or more")) }
        if let v = chapDelaySeconds, !(v > 0 && v <= 3600) { out.append(("chapDelaySeconds", "must be above 0 and at most 3600")) }
        if let v = chapMaxDelaySeconds, !(v > 0 && v <= 3600) { out.append(("chapMaxDelaySeconds", "must be above 0 and at most 3600")) }
        if let d = r.chapDelaySeconds, let m = r.chapMaxDelaySeconds, d > 0, m > 0, m < d {
            out.append(("chapMaxDelaySeconds", "\(m) is below chapDelaySeconds \(d)"))
        }
        if let v = maxLoginsPerAddress, v < 1 { out.append(("maxLoginsPerAddress", "must be 1 or more")) }
        if let v = maxLogins, v < 1 { out.append(("maxLogins", "must be 1 or more")) }
        if let p = r.maxLoginsPerAddress, let t = r.maxLogins, p >= 1, t >= 1, t < p {
            out.append(("maxLogins", "\(t) is below maxLoginsPerAddress \(p)"))
        }
        if let v = maxBufferedWriteMB, !(1...65536).contains(v) { out.append(("maxBufferedWriteMB", "must be 1…65536")) }
        if let v = failedLoginLogLines, v < 1 { out.append(("failedLoginLogLines", "must be 1 or more")) }
        if let v = sanitizeMBPerSecond, !(0...1_048_576).contains(v) { out.append(("sanitizeMBPerSecond", "must be 0 (no limit)…1048576")) }
        return out
    }
}

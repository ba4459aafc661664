import Foundation

/// A logged-in browser: identified by a random cookie, carries its CSRF token.
struct WebSession: Sendable, Equatable {
    var id: String
    var csrfToken: String
    var user: String
    var created: Date
    var lastSeen: Date
}

/// Logged-in sessions and the login throttle, in memory (a daemon restart logs everyone out).
actor WebSessionStore {
    private var sessions: [String: WebSession] = [:]
    private var consecutiveFailures = 0
    private var lockedUntil: Date?
    let options: AdminWebOptions

    init(options: AdminWebOptions) { self.options = options }

    func create(user: String, now: Date = Date()) -> WebSession {
        purge(now: now)
        let s = WebSession(id: randomToken(), csrfToken: randomToken(), user: user, created: now, lastSeen: now)
        sessions[s.id] = s
        return s
    }

    /// The session for a cookie value, if it exists and has not expired (idle or absolute).
    func lookup(_ id: String, now: Date = Date()) -> WebSession? {
        guard var s = sessions[id] else { return nil }
        if now.timeIntervalSince(s.created) > options.sessionLifetime || now.timeIntervalSince(s.lastSeen) > options.idleTimeout {
            sessions[id] = nil
            return nil
        }
        s.lastSeen = now
        sessions[id] = s
        return s
    }

    func remove(_ id: String) { sessions[id] = nil }

    private func purge(now: Date) {
        sessions = sessions.filter {
            now.timeIntervalSince($0.value.created) <= options.sessionLifetime
                && now.timeIntervalSince($0.value.lastSeen) <= options.idleTimeout
        }
    }

    /// Seconds the login form stays locked, or nil when a login may be attempted.
    func lockoutRemaining(now: Date = Date()) -> Int? {
        guard let until = lockedUntil else { return nil }
        let left = until.timeIntervalSince(now)
        if left <= 0 {
            lockedUntil = nil
            return nil
        }
        return Int(left.rounded(.up))
    }

    func recordFailure(now: Date = Date()) {
        consecutiveFailures += 1
        if consecutiveFailures >= options.maxLoginFailures {
            lockedUntil = now.addingTimeInterval(options.lockoutSeconds)
            consecutiveFailures = 0
        }
    }

    func recordSuccess() { consecutiveFailures = 0 }
}

/// Tunables of the web console; the defaults are what the daemon should use.
public struct AdminWebOptions: Sendable {
    /// Absolute lifetime of a login session (seconds).
    public var sessionLifetime: TimeInterval = 8 * 3600
    /// A session unused for this long expires (seconds).
    public var idleTimeout: TimeInterval = 3600
    /// Delay added to every failed login (seconds).
    public var failedLoginDelay: TimeInterval = 1
    /// After this many consecutive failures the login form is locked …
    public var maxLoginFailures = 5
    /// … for this many seconds.
    public var lockoutSeconds: TimeInterval = 60
    /// Lists block devices and partitions for the LUN picker (default: /sys/block).
    public var blockDevices: @Sendable () -> [BlockDevice] = BlockDevice.scanSysBlock
    /// Lists a Ceph pool's images for the LUN picker: (pool, rbd options such as `conf`, `id`)
    /// → image names, or an error worded for the admin. Default: no Ceph support here.
    public var rbdImages: @Sendable (_ pool: String, _ options: [String: String]) throws -> [String] = { _, _ in
        throw RBDPickerUnavailable()
    }
    /// Seconds between the statistics samples the console takes while it runs.
    public var statisticsInterval: TimeInterval = 5
    /// Seconds of statistics history kept and charted.
    public var statisticsWindow: TimeInterval = 600
    /// A view of the statistics page within this many seconds of the last sample adds none.
    public var statisticsMinimumGap: TimeInterval = 1
    /// Seconds between the automatic reloads of the sessions and statistics pages (0: none).
    public var autoRefresh: Int = 5
    /// Host name used for the default target name prefix (default: the system's).
    public var hostName: @Sendable () -> String = { ProcessInfo.processInfo.hostName }
    /// Sets the `Secure` attribute on the session cookie (only when served through HTTPS).
    public var secureCookie = false

    public init() {}
}

/// The daemon gave the console no way to list rbd images.
public struct RBDPickerUnavailable: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "this daemon cannot list Ceph images" }
}

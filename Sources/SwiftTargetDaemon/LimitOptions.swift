import ArgumentParser
import TargetConfig

/// The hostile-input limits, the same flags for `serve` and `run`. For `run` a flag overrides
/// the configuration file's `limits` field of the same meaning; an absent flag leaves it.
struct LimitOptions: ParsableArguments {
    private static let defaults = LimitSettings.defaults

    @Option(help: "CHAP failures per initiator name or address before each further attempt waits (default \(defaults.chapFreeFailures!)).")
    var chapFreeFailures: Int?

    @Option(help: "Seconds the first delayed CHAP attempt waits, doubling per further failure (default \(defaults.chapDelaySeconds!)).")
    var chapDelay: Double?

    @Option(help: "Longest wait for a CHAP attempt, in seconds (default \(defaults.chapMaxDelaySeconds!)).")
    var chapMaxDelay: Double?

    @Option(help: "Connections in login at once from one address; more are closed at once (default \(defaults.maxLoginsPerAddress!)).")
    var maxLoginsPerAddress: Int?

    @Option(help: "Connections in login at once in all (default \(defaults.maxLogins!)).")
    var maxLogins: Int?

    @Option(help: "MiB a session may hold for writes still receiving data; more: TASK SET FULL (default \(defaults.maxBufferedWriteMB!)).")
    var maxBufferedWriteMb: Int?

    @Option(help: "Failed logins logged per minute; the rest are counted in a summary (default \(defaults.failedLoginLogLines!)).")
    var failedLoginLogLines: Int?

    @Option(name: .customLong("sanitize-mb-per-second"),
            help: "MiB/s one LU's SANITIZE may write or erase, leaving the storage to the others (default 0: no limit).")
    var sanitizeMBPerSecond: Int?

    /// The flags given, as configuration settings.
    var settings: LimitSettings {
        LimitSettings(
            chapFreeFailures: chapFreeFailures, chapDelaySeconds: chapDelay, chapMaxDelaySeconds: chapMaxDelay,
            maxLoginsPerAddress: maxLoginsPerAddress, maxLogins: maxLogins, maxBufferedWriteMB: maxBufferedWriteMb,
            failedLoginLogLines: failedLoginLogLines, sanitizeMBPerSecond: sanitizeMBPerSecond)
    }

    /// Flag spellings of the settings' fields, for error messages.
    private static let flags = [
        "chapFreeFailures": "--chap-free-failures", "chapDelaySeconds": "--chap-delay",
        "chapMaxDelaySeconds": "--chap-max-delay", "maxLoginsPerAddress": "--max-logins-per-address",
        "maxLogins": "--max-logins", "maxBufferedWriteMB": "--max-buffered-write-mb",
        "failedLoginLogLines": "--failed-login-log-lines", "sanitizeMBPerSecond": "--sanitize-mb-per-second",
    ]

    func validate() throws {
        if let problem = settings.problems().first {
            throw ValidationError("\(Self.flags[problem.field] ?? problem.field): \(problem.message)")
        }
    }
}

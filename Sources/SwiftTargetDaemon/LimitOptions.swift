import ArgumentParser
import ISCSIFabric
import NIOCore

/// The hostile-input limits (FabricLimits), the same flags for `serve` and `run`.
struct LimitOptions: ParsableArguments {
    @Option(help: "CHAP failures per initiator name or address before each further attempt waits.")
    var chapFreeFailures: Int = FabricLimits().chapFreeFailures

    @Option(help: "Seconds the first delayed CHAP attempt waits (doubling per further failure).")
    var chapDelay: Double = 1

    @Option(help: "Longest wait for a CHAP attempt, in seconds.")
    var chapMaxDelay: Double = 30

    @Option(help: "Connections in login at once from one address (more are closed at once).")
    var maxLoginsPerAddress: Int = FabricLimits().maxLoginsPerAddress

    @Option(help: "Connections in login at once in all.")
    var maxLogins: Int = FabricLimits().maxLoginsTotal

    @Option(help: "MiB a session may hold for writes still receiving data (more: TASK SET FULL).")
    var maxBufferedWriteMb: Int = FabricLimits().maxBufferedWriteBytesPerSession >> 20

    @Option(help: "Failed logins logged per minute (the rest are counted in a summary).")
    var failedLoginLogLines: Int = FabricLimits().failedLoginLogLinesPerMinute

    func validate() throws {
        guard chapFreeFailures >= 0 else { throw ValidationError("--chap-free-failures must be 0 or more") }
        guard chapDelay > 0, chapMaxDelay >= chapDelay, chapMaxDelay <= 3600 else {
            throw ValidationError("--chap-delay must be above 0 and at most --chap-max-delay (at most 3600)")
        }
        guard maxLoginsPerAddress >= 1, maxLogins >= maxLoginsPerAddress else {
            throw ValidationError("--max-logins-per-address must be 1 or more and at most --max-logins")
        }
        guard (1...65536).contains(maxBufferedWriteMb) else { throw ValidationError("--max-buffered-write-mb must be 1…65536") }
        guard failedLoginLogLines >= 1 else { throw ValidationError("--failed-login-log-lines must be 1 or more") }
    }

    var limits: FabricLimits {
        var limits = FabricLimits()
        limits.chapFreeFailures = chapFreeFailures
        limits.chapBaseDelay = .nanoseconds(Int64(chapDelay * 1e9))
        limits.chapMaxDelay = .nanoseconds(Int64(chapMaxDelay * 1e9))
        limits.maxLoginsPerAddress = maxLoginsPerAddress
        limits.maxLoginsTotal = maxLogins
        limits.maxBufferedWriteBytesPerSession = maxBufferedWriteMb << 20
        limits.failedLoginLogLinesPerMinute = failedLoginLogLines
        return limits
    }
}

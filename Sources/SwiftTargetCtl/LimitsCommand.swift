import AdminAPI
import ArgumentParser
import Foundation
import TargetConfig

/// `swift-targetctl limits`: shows or changes the limits against CHAP guessing and resource
/// exhaustion (the configuration's `limits`). Fields not given stay; `--reset` restores the
/// defaults. New values apply to the next logins.
struct Limits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits", abstract: "Show or change the limits against CHAP guessing and login/memory exhaustion.",
        discussion: "New values apply to the next logins and sessions. swift-targetd run flags of the same names override the file.")
    @OptionGroup var connection: Connection
    @Option(help: "CHAP failures per initiator name or address before each further attempt waits.") var chapFreeFailures: Int?
    @Option(help: "Seconds the first delayed CHAP attempt waits (doubling per further failure).") var chapDelay: Double?
    @Option(help: "Longest wait for a CHAP attempt, in seconds.") var chapMaxDelay: Double?
    @Option(help: "Connections in login at once from one address.") var maxLoginsPerAddress: Int?
    @Option(help: "Connections in login at once in all.") var maxLogins: Int?
    @Option(help: "MiB a session may hold for writes still receiving data.") var maxBufferedWriteMb: Int?
    @Option(help: "Failed logins logged per minute.") var failedLoginLogLines: Int?
    @Option(name: .customLong("sanitize-mb-per-second"), help: "MiB/s one LU's SANITIZE may write or erase (0: no limit).")
    var sanitizeMBPerSecond: Int?
    @Flag(help: "Back to the built-in defaults (before any value given here).") var reset = false
    @Flag(help: "JSON output.") var json = false

    var changes: LimitSettings {
        LimitSettings(
            chapFreeFailures: chapFreeFailures, chapDelaySeconds: chapDelay, chapMaxDelaySeconds: chapMaxDelay,
            maxLoginsPerAddress: maxLoginsPerAddress, maxLogins: maxLogins, maxBufferedWriteMB: maxBufferedWriteMb,
            failedLoginLogLines: failedLoginLogLines, sanitizeMBPerSecond: sanitizeMBPerSecond)
    }

    func run() async throws {
        try await perform {
            let client = connection.client
            if reset || !changes.isEmpty {
                printReport(try await client.call(.PUT, "/v1/limits" + (reset ? "?replace=true" : ""), body: changes))
                return
            }
            let data = try await client.raw(.GET, "/v1/limits")
            if json { printJSON(data); return }
            let view = try JSONDecoder().decode(LimitsView.self, from: data)
            let c = view.configured, e = view.effective
            func row(_ name: String, _ configured: (some Any)?, _ effective: (some Any)?) {
                let value = effective.map { "\($0)" } ?? "-"
                print(name.padding(toLength: 24, withPad: " ", startingAt: 0) + value.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + (configured == nil ? "(default)" : "(configured)"))
            }
            row("chap-free-failures", c.chapFreeFailures, e.chapFreeFailures)
            row("chap-delay", c.chapDelaySeconds, e.chapDelaySeconds)
            row("chap-max-delay", c.chapMaxDelaySeconds, e.chapMaxDelaySeconds)
            row("max-logins-per-address", c.maxLoginsPerAddress, e.maxLoginsPerAddress)
            row("max-logins", c.maxLogins, e.maxLogins)
            row("max-buffered-write-mb", c.maxBufferedWriteMB, e.maxBufferedWriteMB)
            row("failed-login-log-lines", c.failedLoginLogLines, e.failedLoginLogLines)
            row("sanitize-mb-per-second", c.sanitizeMBPerSecond, e.sanitizeMBPerSecond)
        }
    }
}

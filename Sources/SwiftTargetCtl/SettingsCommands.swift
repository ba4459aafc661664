import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

// Connection and timeout settings (negotiated sizes, NOP-In, login timeouts).

struct ShowSettings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show-settings", abstract: "Show connection and timeout settings (global or --target).")
    @OptionGroup var connection: Connection
    @Option(help: "A target instead of the global defaults.") var target: String?
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        let base = target.map { "/v1/targets/\(AdminClient.segment($0))/settings" } ?? "/v1/settings"
        try await perform {
            let client = connection.client
            let c: ConnectionSettingsView = try await client.call(.GET, base + "/connection")
            let t: TimeoutSettingsView = try await client.call(.GET, base + "/timeouts")
            if json {
                struct Both: Encodable { var connection: ConnectionSettingsView; var timeouts: TimeoutSettingsView }
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                printJSON(try e.encode(Both(connection: c, timeouts: t)))
                return
            }
            func row(_ name: String, _ configured: String?, _ effective: String) {
                print(name.padding(toLength: 28, withPad: " ", startingAt: 0) + effective.padding(toLength: 16, withPad: " ", startingAt: 0)
                      + (configured == nil ? "(inherited)" : "(set here)"))
            }
            let e = c.effective, s = c.configured
            func d(_ v: [DigestKind]?) -> String? { v.map { $0.map(\.rawValue).joined(separator: ",") } }
            row("MaxSessions", s.maxSessions.map(String.init), e.maxSessions == 0 ? "unlimited" : "\(e.maxSessions!)")
            row("MaxConnections", s.maxConnections.map(String.init), "\(e.maxConnections!)")
            row("InitialR2T", s.initialR2T.map { "\($0)" }, e.initialR2T! ? "Yes" : "No")
            row("ImmediateData", s.immediateData.map { "\($0)" }, e.immediateData! ? "Yes" : "No")
            row("MaxRecvDataSegmentLength", s.maxRecvDataSegmentLength.map(String.init), "\(e.maxRecvDataSegmentLength!)")
            row("MaxXmitDataSegmentLength", s.maxXmitDataSegmentLength.map(String.init), "\(e.maxXmitDataSegmentLength!)")
            row("MaxBurstLength", s.maxBurstLength.map(String.init), "\(e.maxBurstLength!)")
            row("FirstBurstLength", s.firstBurstLength.map(String.init), "\(e.firstBurstLength!)")
            row("MaxOutstandingR2T", s.maxOutstandingR2T.map(String.init), "\(e.maxOutstandingR2T!)")
            row("DefaultTime2Wait", s.defaultTime2Wait.map(String.init), "\(e.defaultTime2Wait!)")
            row("DefaultTime2Retain", s.defaultTime2Retain.map(String.init), "\(e.defaultTime2Retain!)")
            row("HeaderDigest", d(s.headerDigest), d(e.headerDigest) ?? "")
            row("DataDigest", d(s.dataDigest), d(e.dataDigest) ?? "")
            row("NOPInterval (s)", t.configured.nopInInterval.map(String.init), t.effective.nopInInterval == 0 ? "never" : "\(t.effective.nopInInterval!)")
            row("NOPTimeout (s)", t.configured.nopInTimeout.map(String.init), "\(t.effective.nopInTimeout!)")
            row("LoginTimeout (s)", t.configured.loginTimeout.map(String.init), "\(t.effective.loginTimeout!)")
        }
    }
}

struct SetSettings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-settings", abstract: "Change connection/timeout settings (global or --target); others stay.",
        discussion: "Negotiated settings apply to new logins; existing sessions keep theirs. MaxSessions 0 = unlimited.")
    @OptionGroup var connection: Connection
    @Option(help: "A target instead of the global defaults.") var target: String?
    @Option var maxSessions: Int?
    @Option var maxConnections: Int?
    @Option(help: "Yes or No.") var initialR2t: String?
    @Option(help: "Yes or No.") var immediateData: String?
    @Option var maxRecvDataSegmentLength: Int?
    @Option var maxXmitDataSegmentLength: Int?
    @Option var maxBurstLength: Int?
    @Option var firstBurstLength: Int?
    @Option var maxOutstandingR2t: Int?
    @Option var defaultTime2wait: Int?
    @Option var defaultTime2retain: Int?
    @Option(help: "Offered header digests in order, e.g. None,CRC32C.") var headerDigest: String?
    @Option(help: "Offered data digests in order, e.g. CRC32C,None.") var dataDigest: String?
    @Option(help: "Seconds between NOP-In pings (0 = never).") var nopInterval: Int?
    @Option(help: "Seconds to wait for a ping answer.") var nopTimeout: Int?
    @Option(help: "Seconds a login may take.") var loginTimeout: Int?

    static func yesNo(_ s: String?, _ name: String) throws -> Bool? {
        guard let s else { return nil }
        switch s.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw ValidationError("\(name) takes Yes or No")
        }
    }

    static func digests(_ s: String?, _ name: String) throws -> [DigestKind]? {
        guard let s else { return nil }
        return try s.split(separator: ",").map { item in
            switch item.trimmingCharacters(in: .whitespaces).lowercased() {
            case "none": return DigestKind.none
            case "crc32c": return DigestKind.crc32c
            default: throw ValidationError("\(name) takes None and/or CRC32C, comma separated")
            }
        }
    }

    func run() async throws {
        let c = ConnectionSettings(
            maxSessions: maxSessions, maxConnections: maxConnections, initialR2T: try Self.yesNo(initialR2t, "--initial-r2t"),
            immediateData: try Self.yesNo(immediateData, "--immediate-data"), maxRecvDataSegmentLength: maxRecvDataSegmentLength,
            maxXmitDataSegmentLength: maxXmitDataSegmentLength, maxBurstLength: maxBurstLength, firstBurstLength: firstBurstLength,
            maxOutstandingR2T: maxOutstandingR2t, defaultTime2Wait: defaultTime2wait, defaultTime2Retain: defaultTime2retain,
            headerDigest: try Self.digests(headerDigest, "--header-digest"), dataDigest: try Self.digests(dataDigest, "--data-digest"))
        let t = TimeoutSettings(nopInInterval: nopInterval, nopInTimeout: nopTimeout, loginTimeout: loginTimeout)
        guard !c.isEmpty || !t.isEmpty else { throw ValidationError("give at least one setting to change") }
        let base = target.map { "/v1/targets/\(AdminClient.segment($0))/settings" } ?? "/v1/settings"
        try await perform {
            let client = connection.client
            if !c.isEmpty { printReport(try await client.call(.PUT, base + "/connection", body: c)) }
            if !t.isEmpty { printReport(try await client.call(.PUT, base + "/timeouts", body: t)) }
        }
    }
}

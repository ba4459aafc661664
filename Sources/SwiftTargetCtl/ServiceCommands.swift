import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

// Start, stop, restart; live sessions and logout.

struct ServiceOptions: ParsableArguments {
    @OptionGroup var connection: Connection
    @Argument(help: "One target (default: all).") var target: String?

    func send(_ action: String) async throws {
        var p = "/v1/service/\(action)"
        if let target { p += "?target=" + (target.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? target) }
        try await perform {
            let _: [String: String] = try await connection.client.call(.POST, p)
            print("\(action): ok")
        }
    }
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a stopped target (or all).")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("start") }
}

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a target (or all): its sessions are asked to log out; logins get 'not found'.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("stop") }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart a target (or all); other targets are untouched.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("restart") }
}

struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions", abstract: "List live sessions.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, "/v1/sessions")
            if json { printJSON(data); return }
            let sessions = try JSONDecoder().decode([SessionInfo].self, from: data)
            if sessions.isEmpty { print("no sessions"); return }
            print("TSIH  TARGET / INITIATOR / FROM")
            for s in sessions {
                print("\(String(s.tsih).padding(toLength: 5, withPad: " ", startingAt: 0)) \(s.target ?? "(discovery)")")
                print("      \(s.initiator) isid \(s.isid) from \(s.remoteAddress) to \(s.localAddress)")
                print("      user \(s.authenticatedUser ?? "-") digests \(s.headerDigest)/\(s.dataDigest) in flight \(s.commandsInFlight) since \(Date(timeIntervalSince1970: s.connectedSince))")
            }
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Ask a session to log out (closed after a grace period).")
    @OptionGroup var connection: Connection
    @Argument(help: "TSIH (see sessions).") var tsih: UInt16

    func run() async throws {
        try await perform {
            let _: [String: String] = try await connection.client.call(.DELETE, "/v1/sessions/\(tsih)")
            print("logout requested")
        }
    }
}

import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

@main
struct SwiftTargetCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-targetctl",
        abstract: "Administer a running swift-targetd through its local API socket.",
        discussion: """
            Changes are validated, saved to the daemon's configuration file and applied live;
            each change prints how it took effect (applies-now, new-logins, target-restart).
            Read commands take --json for machine-readable output.

            Exit status:
              0   success
              1   failure (the daemon refused: open failed, port busy, …)
              2   invalid input (bad option, validation failed)
              3   not found (no such target, LUN, rule or session)
              4   conflict (e.g. the target already exists)
              69  the daemon is unreachable (socket missing or refusing)
            """,
        version: ProductVersion.current,
        subcommands: [
            ListCommand.self, TreeCommand.self, ShowCommand.self, AddTarget.self, EditTarget.self, RemoveTarget.self, AddLUN.self, EditLUN.self, RemoveLUN.self,
            SetAuth.self, ListClients.self, AllowClient.self, RemoveClient.self, MoveClient.self, AllowServer.self,
            ListLUNMaps.self, MapLUNs.self, UnmapLUNs.self,
            Portals.self, ShowSettings.self, SetSettings.self, Limits.self, Start.self, Stop.self, Restart.self, Sessions.self,
            Logout.self, Stats.self, ShowConfig.self, Reload.self, SaveConfig.self, RestoreConfig.self, ImportIETD.self, InstallService.self,
        ]
    )

    /// Maps usage errors to exit status 2 (ArgumentParser's default is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(CtlExitCode.invalid)
            }
            exit(withError: error)
        }
    }
}

struct Connection: ParsableArguments {
    @Option(help: "The daemon's API socket.")
    var socket: String = ProcessInfo.processInfo.environment["SWIFT_TARGETD_SOCKET"] ?? defaultAPISocketPath

    var client: AdminClient { AdminClient(socketPath: socket) }
}

/// Runs a command body; prints errors and exits with the documented status.
func perform(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as AdminClientError {
        FileHandle.standardError.write(Data("swift-targetctl: \(e)\n".utf8))
        throw ExitCode(e.exitCode)
    } catch let e as AdminError {
        FileHandle.standardError.write(Data("swift-targetctl: \(e.message)\n".utf8))
        throw ExitCode(e.kind.exitCode)
    }
}

func printJSON(_ data: Data) {
    FileHandle.standardOutput.write(data)
    if data.last != 0x0A { print("") }
}

func printReport(_ report: ApplyReport) {
    for w in report.warnings { print(w.hasPrefix("warning") || w.contains(": warning: ") ? w : "warning: \(w)") }
    if report.effects.isEmpty { print("no change") }
    for e in report.effects {
        var scope = e.target.map { "target \($0)" } ?? "global"
        if let l = e.lun { scope += " LUN \(l)" }
        print("\(scope): \(e.setting) [\(e.applyMode)]: \(e.outcome)")
    }
}

func path(_ parts: String...) -> String {
    "/v1/" + parts.map { AdminClient.segment($0) }.joined(separator: "/")
}

/// "10G" → bytes.
func parseSize(_ text: String) throws -> UInt64 {
    let t = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, UInt64)] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
    for (suffix, factor) in units where t.hasSuffix(suffix) || t.hasSuffix(suffix + "IB") || t.hasSuffix(suffix + "B") {
        let number = t.replacingOccurrences(of: suffix + "IB", with: "").replacingOccurrences(of: suffix + "B", with: "")
            .replacingOccurrences(of: suffix, with: "")
        guard let n = UInt64(number), n > 0 else { break }
        return n * factor
    }
    guard let n = UInt64(t), n > 0 else { throw ValidationError("size '\(text)': use a number with K, M, G or T (powers of 1024)") }
    return n
}

/// TARGET or --all / --global.
struct Scope: ParsableArguments {
    @Flag(name: [.customLong("all"), .customLong("global")], help: "The global default instead of one target.")
    var global = false

    func path(_ target: String?, _ rest: String) throws -> String {
        if global {
            guard target == nil else { throw ValidationError("give either a TARGET or --all, not both") }
            return "/v1/" + rest
        }
        guard let target else { throw ValidationError("give a TARGET or --all") }
        return "/v1/targets/\(AdminClient.segment(target))/" + rest
    }
}

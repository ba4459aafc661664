import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

// Targets and LUNs: list, show, add-target, remove-target, add-lun, remove-lun.

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List targets.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, "/v1/targets")
            if json { printJSON(data); return }
            let targets = try JSONDecoder().decode([TargetView].self, from: data)
            if targets.isEmpty { print("no targets"); return }
            print("TARGET".padding(toLength: 50, withPad: " ", startingAt: 0) + " STATE    SESSIONS LUNS AUTH")
            for t in targets {
                let name = t.name.count > 50 ? t.name : t.name.padding(toLength: 50, withPad: " ", startingAt: 0)
                print("\(name) \(t.running ? "running" : "stopped")  \(String(t.sessions).padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(t.luns.count).padding(toLength: 4, withPad: " ", startingAt: 0)) \(t.auth.mode.rawValue)")
            }
        }
    }
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one target.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false
    @Argument(help: "Target name.") var target: String

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, path("targets", target))
            if json { printJSON(data); return }
            let t = try JSONDecoder().decode(TargetView.self, from: data)
            print("target:   \(t.name)\(t.alias.map { " (\($0))" } ?? "")")
            print("state:    \(t.running ? "running" : "stopped"), \(t.sessions) session(s)")
            print("auth:     \(t.auth.mode.rawValue)\(t.auth.incomingUsers.isEmpty ? "" : " users " + t.auth.incomingUsers.map(\.user).joined(separator: ","))\(t.auth.outgoingUser.map { " outgoing \($0.user)" } ?? "")\(t.authInherited ? " (inherited)" : "")")
            print("clients:  \(t.allowedClients.isEmpty ? "everyone" : "\(t.allowedClients.count) rule(s)")\(t.allowedClientsInherited ? " (inherited)" : "")")
            for (i, r) in t.allowedClients.enumerated() { print("  \(i): \(describe(r))") }
            print("exposed:  \(t.allowedServerAddresses.isEmpty ? "all portals" : t.allowedServerAddresses.joined(separator: ", "))")
            for l in t.luns {
                print("LUN \(l.id): \(l.backstore):\(l.path) \(l.size.map { "\($0) bytes" } ?? "") \(l.readOnly ? "read-only" : "read-write") \(l.writeCache) serial \(l.serial)")
            }
        }
    }
}

func describe(_ r: AccessRule) -> String {
    var parts = [r.action.rawValue]
    if let i = r.initiator { parts.append("initiator \(i)") }
    if let i = r.initiatorRegex { parts.append("initiator ~ \(i)") }
    if let a = r.address { parts.append("address \(a)") }
    if parts.count == 1 { parts.append("all") }
    if let c = r.comment { parts.append("# \(c)") }
    return parts.joined(separator: " ")
}

struct AddTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-target", abstract: "Add a target (IQN).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name: iqn.YYYY-MM.reversed.domain[:id], eui.… or naa.…") var name: String
    @Option(help: "Alias shown to initiators.") var alias: String?

    func run() async throws {
        try await perform {
            printReport(try await connection.client.call(.POST, "/v1/targets", body: NewTargetRequest(name: name, alias: alias)))
        }
    }
}

struct RemoveTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-target",
        abstract: "Remove a target; one with live sessions only with --force (they are logged out).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var name: String
    @Flag(help: "Remove it even while initiators are logged in (their sessions are logged out).") var force = false

    func run() async throws {
        try await perform {
            if !force {
                let data = try await connection.client.raw(.GET, "/v1/sessions")
                let live = try JSONDecoder().decode([SessionInfo].self, from: data).loggedIn(to: name)
                if !live.isEmpty {
                    let who = live.initiatorNames.joined(separator: ", ")
                    throw AdminError(.conflict, "\(name) has \(live.count) live session(s) (\(who)); nothing was removed. "
                                     + "Run again with --force to log them out and remove it.")
                }
            }
            printReport(try await connection.client.call(.DELETE, path("targets", name)))
        }
    }
}

struct AddLUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-lun", abstract: "Add a LUN to a target (live).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Option(help: ArgumentHelp("\(BackstoreKind.spokenList).")) var backstore: String
    @Option(help: "Path of the image or block device (POOL/IMAGE for rbd).") var path: String
    @Option(name: .customLong("option"), help: "A setting of the kind, KEY=VALUE (rbd: conf, id, keyring); repeats.")
    var options: [String] = []
    @Option(help: "Size for a new image (K, M, G, T); not for raw.") var size: String?
    @Option(help: "LUN number (default: the lowest free).") var lun: Int?
    @Flag(help: "Export read-only.") var readOnly = false
    @Option(help: "write-back or write-through (default).") var writeCache: String?

    func validate() throws {
        guard BackstoreKind(rawValue: backstore) != nil else { throw ValidationError("--backstore must be \(BackstoreKind.spokenList)") }
        if let w = writeCache, WriteCacheMode(rawValue: w) == nil { throw ValidationError("--write-cache must be write-back or write-through") }
        if let size { _ = try parseSize(size) }
        let kind = BackstoreKind(rawValue: backstore)!
        for option in options {
            guard let eq = option.firstIndex(of: "="), kind.settings.contains(String(option[..<eq])) else {
                throw ValidationError("--option \(option): \(backstore) LUNs take \(kind.settings.isEmpty ? "no settings" : kind.settings.map { $0 + "=VALUE" }.joined(separator: ", "))")
            }
        }
    }

    func run() async throws {
        let kind = BackstoreKind(rawValue: backstore)!
        let absolute = kind.locator != .path || path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var settings: [String: String] = [:]
        for option in options {
            let eq = option.firstIndex(of: "=")!
            settings[String(option[..<eq])] = String(option[option.index(after: eq)...])
        }
        let bytes = try size.map(parseSize)
        try await perform {
            let body = NewLUNRequest(id: lun, backstore: backstore, path: absolute, size: bytes, readOnly: readOnly,
                                     writeCache: writeCache, options: settings.isEmpty ? nil : settings)
            printReport(try await connection.client.call(.POST, AdminAPI_path("targets", target, "luns"), body: body))
        }
    }
}

func AdminAPI_path(_ parts: String...) -> String {
    "/v1/" + parts.map { AdminClient.segment($0) }.joined(separator: "/")
}

struct RemoveLUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove-lun", abstract: "Remove a LUN from a target (live).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Argument(help: "LUN number.") var lun: Int

    func run() async throws {
        try await perform { printReport(try await connection.client.call(.DELETE, path("targets", target, "luns", String(lun)))) }
    }
}

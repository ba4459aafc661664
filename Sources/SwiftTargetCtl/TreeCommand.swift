import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

/// `swift-targetctl ls`: the whole export as a tree, as targetcli's `ls` shows it.
struct TreeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "Show the tree: targets → portals → LUNs → allowed clients → LUN maps → sessions.")
    @OptionGroup var connection: Connection
    @Argument(help: "Only this target.") var target: String?

    func run() async throws {
        try await perform {
            let client = connection.client
            let decoder = JSONDecoder()
            var targets = try decoder.decode([TargetView].self, from: try await client.raw(.GET, "/v1/targets"))
            let config = try decoder.decode(Config.self, from: try await client.raw(.GET, "/v1/config"))
            let portals = try decoder.decode([String].self, from: try await client.raw(.GET, "/v1/portals"))
            let sessions = try decoder.decode([SessionInfo].self, from: try await client.raw(.GET, "/v1/sessions"))
            if let target {
                targets = targets.filter { $0.name.lowercased() == target.lowercased() }
                if targets.isEmpty { throw AdminError(.notFound, "no target named \(target)") }
            }
            print(TreeCommand.render(targets: targets, config: config, portals: portals, sessions: sessions))
        }
    }

    static func render(targets: [TargetView], config: Config, portals: [String], sessions: [SessionInfo]) -> String {
        var out = Tree()
        out.node(0, "targets [\(targets.count)]", last: true)
        for (ti, t) in targets.enumerated() {
            let mine = sessions.filter { $0.target?.lowercased() == t.name.lowercased() }
            let state = "\(t.running ? "running" : "stopped"), \(mine.count) session\(mine.count == 1 ? "" : "s"), auth \(t.auth.mode.rawValue)\(t.authInherited ? ", global" : "")"
            out.node(1, "\(t.name)\(t.alias.map { " (\($0))" } ?? "") [\(state)]", last: ti == targets.count - 1)
            let lunMaps = config.target(named: t.name)?.lunMaps ?? []
            let sections: [(title: String, items: [String])] = [
                ("portals" + (t.allowedServerAddresses.isEmpty ? "" : " only on \(t.allowedServerAddresses.joined(separator: ", "))"), portals),
                ("luns", t.luns.map { l in
                    let size = l.size.map(ByteCount.formatted) ?? "?"
                    return "lun\(l.id) \(l.backstore) \(l.path) (\(size), \(l.writeCache)\(l.readOnly ? ", read-only" : "")) [serial \(l.serial)]"
                }),
                ("allowed clients" + (t.allowedClientsInherited ? ", global" : "") + (t.allowedClients.isEmpty ? ": everyone" : ""),
                 t.allowedClients.map(describe)),
                ("lun maps", lunMaps.map(describe)),
                ("sessions", mine.map { s in
                    "\(s.initiator) from \(s.remoteAddress) (TSIH \(s.tsih), ISID \(s.isid)\(s.authenticatedUser.map { ", CHAP user \($0)" } ?? ""))"
                }),
            ]
            for (si, (title, items)) in sections.enumerated() {
                out.node(2, "\(title) [\(items.count)]", last: si == sections.count - 1)
                for (ii, item) in items.enumerated() { out.node(3, item, last: ii == items.count - 1) }
            }
        }
        return out.text
    }

    /// targetcli's drawing: "o- " at each level, "| " where an earlier level goes on.
    struct Tree {
        var lines: [String] = []
        var open: [Bool] = []
        mutating func node(_ depth: Int, _ label: String, last: Bool) {
            open = Array(open.prefix(depth))
            let indent = open.map { $0 ? "| " : "  " }.joined()
            lines.append(indent + "o- " + label)
            open.append(!last)
        }
        var text: String { lines.joined(separator: "\n") }
    }
}

import AdminAPI
import ArgumentParser
import Foundation
import TargetConfig

/// `lun-maps`, `map-luns`, `unmap-luns`: per-initiator LUN maps of a target.
struct ListLUNMaps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lun-maps", abstract: "Show a target's LUN maps (the first map naming an initiator decides what it sees).")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false
    @Argument(help: "Target name.") var target: String

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, path("targets", target, "lun-maps"))
            if json { printJSON(data); return }
            let maps = try JSONDecoder().decode([LUNMapping].self, from: data)
            if maps.isEmpty { print("no LUN maps: every initiator sees every LUN") }
            for (i, m) in maps.enumerated() { print("\(i): \(describe(m))") }
            if !maps.isEmpty { print("initiators no map names see every LUN") }
        }
    }
}

struct MapLUNs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map-luns", abstract: "Add a LUN map: the initiators named see exactly these LUNs.",
        discussion: """
            map-luns TARGET --initiator 'iqn.1994-05.com.redhat:web*' --lun 0=2 --lun 1=0,ro
            shows the target's LUN 2 as LUN 0 and its LUN 0 read-only as LUN 1 to the web hosts.
            --lun MAPPED=LUN[,ro]; no --lun hides every LUN from them. Patterns: * and ?.
            Applied at once: the sessions whose view changes get REPORTED LUNS DATA HAS CHANGED.
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Option(name: .customLong("initiator"), help: "Initiator name or glob (repeat for more).") var initiators: [String] = []
    @Option(name: .customLong("lun"), help: "MAPPED=LUN[,ro]: the target's LUN as the initiator's MAPPED (repeat).") var luns: [String] = []
    @Option(help: "Position in the list (0 = first; default: last).") var position: Int?
    @Option(help: "Comment kept with the map.") var comment: String?

    func validate() throws {
        if initiators.isEmpty { throw ValidationError("name at least one --initiator (a name or glob; '*' for everyone)") }
        _ = try luns.map(Self.parse)
    }

    static func parse(_ text: String) throws -> MappedLUN {
        var parts = text.split(separator: ",").map(String.init)
        let readOnly = parts.count == 2 && parts[1] == "ro"
        if readOnly { parts.removeLast() }
        let numbers = parts.first?.split(separator: "=").map { Int($0) } ?? []
        guard parts.count == 1, numbers.count == 2, let mapped = numbers[0], let lun = numbers[1] else {
            throw ValidationError("--lun takes MAPPED=LUN or MAPPED=LUN,ro (got '\(text)')")
        }
        return MappedLUN(mappedLun: mapped, lun: lun, readOnly: readOnly)
    }

    func run() async throws {
        let map = LUNMapping(initiators: initiators, luns: try luns.map(Self.parse), comment: comment)
        try await perform {
            printReport(try await connection.client.call(.POST, path("targets", target, "lun-maps"),
                                                         body: NewLUNMapRequest(map: map, position: position)))
        }
    }
}

struct UnmapLUNs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmap-luns", abstract: "Remove the LUN map at INDEX (see lun-maps).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Argument(help: "Index of the map.") var index: Int

    func run() async throws {
        try await perform { printReport(try await connection.client.call(.DELETE, path("targets", target, "lun-maps", "\(index)"))) }
    }
}

func describe(_ m: LUNMapping) -> String {
    let luns = m.luns.isEmpty ? "no LUNs" : m.luns.map { "LUN \($0.mappedLun) = target LUN \($0.lun)\($0.readOnly ? " (read-only)" : "")" }
        .joined(separator: ", ")
    return m.initiators.joined(separator: " ") + ": " + luns + (m.comment.map { "  # \($0)" } ?? "")
}

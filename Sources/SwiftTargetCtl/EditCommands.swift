import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

struct EditLUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit-lun",
        abstract: "Change a LUN in place (live): grow it, write cache, read-only. Its path, serial and NAA id stay.",
        discussion: "A larger --size grows the image and the initiators get CAPACITY DATA HAS CHANGED; a smaller one is refused. Read-only and write cache apply at once (REPORTED LUNS DATA HAS CHANGED).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Argument(help: "LUN number.") var lun: Int
    @Option(help: "New size (K, M, G, T); only larger.") var size: String?
    @Flag(inversion: .prefixedNo, help: "Export read-only (--read-only) or read-write (--no-read-only).") var readOnly: Bool?
    @Option(help: "write-back or write-through.") var writeCache: String?

    func validate() throws {
        if let w = writeCache, WriteCacheMode(rawValue: w) == nil { throw ValidationError("--write-cache must be write-back or write-through") }
        if let size { _ = try parseSize(size) }
        if size == nil && readOnly == nil && writeCache == nil { throw ValidationError("nothing to change: give --size, --read-only/--no-read-only or --write-cache") }
    }

    func run() async throws {
        let body = LUNEditRequest(size: try size.map(parseSize), readOnly: readOnly, writeCache: writeCache)
        try await perform { printReport(try await connection.client.call(.PATCH, path("targets", target, "luns", String(lun)), body: body)) }
    }
}

struct EditTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edit-target", abstract: "Change a target's alias (new logins see it).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Option(help: "The alias (TargetAlias); an empty one removes it.") var alias: String

    func run() async throws {
        let body = NewTargetRequest(name: target, alias: alias.isEmpty ? nil : alias)
        try await perform { printReport(try await connection.client.call(.PATCH, path("targets", target), body: body)) }
    }
}

import Foundation
import TCMU
import TargetConfig

/// What this daemon created in LIO's configfs, kept in a state file so that a restarted
/// daemon removes or reuses exactly its own objects and never anyone else's. The default
/// lives under /run, which (like configfs) is empty after a reboot. Mode 0600: the spec
/// holds CHAP secrets.
public struct LIOExportRecord: Sendable {
    public static let defaultPath = "/run/swift-target/lio-export.json"
    public var path: String

    public init(path: String = LIOExportRecord.defaultPath) { self.path = path }

    /// What the file holds: the objects, and the targets whose configfs steps did not all
    /// run yet (a crash there leaves them partly made; the next start re-creates them).
    struct Contents: Codable {
        var spec: LIOExportSpec
        /// Lower-cased IQNs.
        var incomplete: Set<String>
    }

    /// The recorded export (empty when there is no record) and its incomplete targets.
    public func load() throws -> (spec: LIOExportSpec, incomplete: Set<String>) {
        guard FileManager.default.fileExists(atPath: path) else { return (LIOExportSpec(backstores: []), []) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            let c = try JSONDecoder().decode(Contents.self, from: data)
            return (c.spec, c.incomplete)
        } catch {
            throw LIOExportError("\(path): not a swift-targetd LIO record (\(error)); remove it after checking configfs by hand")
        }
    }

    public func save(_ spec: LIOExportSpec, incomplete: Set<String>) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(Contents(spec: spec, incomplete: incomplete)), to: path, mode: 0o600)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension LIOExportSpec {
    /// The part of the export that belongs to one target: its TPG and its LUNs' backstores.
    func part(forTarget iqn: String) -> LIOExportSpec? {
        guard let t = targets.first(where: { $0.iqn.lowercased() == iqn.lowercased() }) else { return nil }
        let names = Set(t.luns.map(\.backstore))
        return LIOExportSpec(backstores: backstores.filter { names.contains($0.name) }, targets: [t])
    }

    /// The union of two exports (targets and backstores by name; `other` wins).
    func merging(_ other: LIOExportSpec) -> LIOExportSpec {
        var r = self
        for b in other.backstores {
            r.backstores.removeAll { $0.path == b.path }
            r.backstores.append(b)
        }
        for t in other.targets {
            r.targets.removeAll { $0.iqn.lowercased() == t.iqn.lowercased() }
            r.targets.append(t)
        }
        return r
    }

    /// This export without the parts of `other`.
    func removing(_ other: LIOExportSpec) -> LIOExportSpec {
        let paths = Set(other.backstores.map(\.path))
        let iqns = Set(other.targets.map { $0.iqn.lowercased() })
        return LIOExportSpec(backstores: backstores.filter { !paths.contains($0.path) },
                             targets: targets.filter { !iqns.contains($0.iqn.lowercased()) })
    }
}

import Foundation
import TargetConfig

/// `ietd`: the IET importer (`IETImporter.importConfig`: ietd.conf with continuations, Target
/// stanzas, Lun parameters, users, session keys; initiators.allow / targets.allow) and the
/// OPTIONS= line parser of /etc/default/iscsitarget.
///
/// Input: ietd.conf [NUL initiators.allow [NUL targets.allow [NUL OPTIONS line]]].
/// Invariants: every message points at a line of its file; an import without validation
/// errors saves and loads back as a configuration file.
enum IETDFuzz {
    static let target = FuzzTarget(name: "ietd", summary: "IETImporter on ietd.conf + allow files", run: run)

    static func run(_ bytes: [UInt8]) {
        let parts = split(bytes, separator: [0]).map { String(decoding: $0, as: UTF8.self) }
        let result = IETImporter.importConfig(
            ietdConf: parts[0], initiatorsAllow: parts.count > 1 ? parts[1] : nil,
            targetsAllow: parts.count > 2 ? parts[2] : nil)
        let files = ["ietd.conf": parts[0], "initiators.allow": parts.count > 1 ? parts[1] : "",
                     "targets.allow": parts.count > 2 ? parts[2] : ""]
        for m in result.messages {
            guard let line = m.line else { continue }
            guard let text = files[m.file] else { fuzzFailure("a message about unknown file \(m.file)") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
            guard line >= 1, line <= lines else { fuzzFailure("\(m.file):\(line) but the file has \(lines) lines") }
            _ = m.description
        }
        if !result.diagnostics.contains(where: { $0.severity == .error }) {
            do {
                _ = try ConfigFile.decode(try ConfigFile.encode(result.config))
            } catch {
                fuzzFailure("an import without errors does not load as a configuration file: \(error)")
            }
        }
        if parts.count > 3 { _ = IETImporter.portals(fromOptions: parts[3]) }
    }
}

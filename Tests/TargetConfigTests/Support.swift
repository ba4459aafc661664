import Foundation
import Testing
@testable import TargetConfig

enum Fixture {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var exampleJSON: Data { try! Data(contentsOf: repoRoot.appendingPathComponent("docs/config-example.json")) }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "targetconfig-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A minimal valid config as JSON text, one field per line so line numbers are predictable.
    static func minimal(lunExtra: String = "", targetExtra: String = "", topExtra: String = "") -> String {
        """
        {
          "version": 1,\(topExtra)
          "targets": [
            {
              "name": "iqn.2026-01.com.example:a",\(targetExtra)
              "luns": [
                {
                  "id": 0,
                  "backstore": "file",
                  "path": "/srv/a.img",\(lunExtra)
                  "serial": "0000000000000001",
                  "naaId": "6020000000000000000000000000000a"
                }
              ]
            }
          ]
        }
        """
    }

    static func lun(_ id: Int, _ path: String, serial: String) -> LUN {
        LUN(id: id, backstore: .file, path: path, serial: serial)
    }
}

/// Decodes and returns the error diagnostics' descriptions (empty when it loads).
func loadErrors(_ text: String, file: String = "/etc/swifttarget/config.json") -> [String] {
    do {
        _ = try ConfigFile.decode(Data(text.utf8), fileName: file)
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

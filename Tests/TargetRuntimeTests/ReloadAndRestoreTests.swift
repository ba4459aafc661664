import AdminCore
import Foundation
import ISCSITestSupport
import TargetConfig
import Testing
@testable import TargetRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The configuration file edited by hand, reloaded, saved and restored (issue 14).
extension RuntimeTests {
@Suite(.serialized) struct ReloadAndRestoreTests {
    let targetC = "iqn.2026-11.org.example:c"

    /// The file as an admin's editor leaves it: the daemon's JSON with a target added.
    func handEdit(_ h: Harness, _ edit: (inout Config) -> Void) throws {
        var config = try ConfigStore(path: h.configPath).read().loaded.config
        edit(&config)
        let text = String(decoding: try ConfigFile.encode(config), as: UTF8.self) + "\n\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: h.configPath))
    }

    @Test func aHandEditIsNeverOverwrittenAndAReloadAppliesItLive() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (b, status) = try h.login(targetB)
        #expect(status == 0)
        try handEdit(h) { c in
            c.targets.append(Target(name: targetC, luns: [LUN(id: 0, backstore: .sparse, path: h.directory.path + "/c0.img", size: 1 << 20)]))
        }
        // An API change now would overwrite the edit: refused, and the file keeps it.
        await #expect { _ = try await h.service.update { $0.targets[0].luns[0].readOnly = true } } throws: { error in
            (error as? AdminError)?.kind == .conflict && "\(error)".contains("changed on disk") && "\(error)".contains("reload")
        }
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8).contains(targetC))
        #expect(await h.service.configuration().targets[0].luns[0].readOnly == false)

        let report = try await h.service.reload()
        #expect(report.effects.contains { $0.target == targetC && $0.setting == "targetAdded" })
        #expect(try h.login(targetC, isid: 7).status == 0)
        #expect(try b.read10() == 0)  // B's session went on through the reload

        // Adopted: API changes are saved again, with the edit kept.
        _ = try await h.service.update { $0.targets[0].luns[0].readOnly = true }
        let saved = try ConfigStore(path: h.configPath).read().loaded.config
        #expect(saved.target(named: targetC) != nil && saved.targets[0].luns[0].readOnly)
        // A reload of an unchanged file changes nothing.
        #expect(try await h.service.reload().effects.isEmpty)
    }

    @Test func anInvalidEditIsRefusedWholeWithItsLine() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let before = await h.service.configuration()
        var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"size\" : 8388608", with: "\"size\" : \"eight\"")
            .replacingOccurrences(of: "\"size\": 8388608", with: "\"size\": \"eight\"")
        try Data(text.utf8).write(to: URL(fileURLWithPath: h.configPath))
        await #expect { _ = try await h.service.reload() } throws: { error in
            guard let e = error as? AdminError, e.kind == .invalid else { return false }
            return e.message.contains(h.configPath + ":") && e.message.contains("size")
        }
        #expect(await h.service.configuration() == before)
        // Still unapplied, so still not overwritten.
        await #expect(throws: AdminError.self) { _ = try await h.service.update { $0.targets[1].luns[0].readOnly = true } }
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8).contains("\"eight\""))
    }

    @Test func saveConfigWipeRestoreConfigGivesTheSameConfigurationSecretsIncluded() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        _ = try await h.service.update { c in
            c.targets[1].auth = AuthSettings(mode: .mutualCHAP, incomingUsers: [CHAPCredential(user: "u1", secret: "restore-secret-1")],
                                             outgoingUser: CHAPCredential(user: "tgt", secret: "restore-secret-2"))
            c.targets[1].allowedClients = [.allow(initiator: "iqn.2026-11.org.test:initiator"), .deny()]
        }
        let saved = await h.service.configuration()
        let file = h.directory.path + "/backup.json"
        var r = try ctl(["save-config", file], socket: h.socketPath)
        #expect(r.status == 0, "\(r.output)")
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try String(contentsOfFile: file, encoding: .utf8).contains("restore-secret-2"))
        // A second save keeps the first as FILE.1.
        r = try ctl(["save-config", file, "--backups", "2"], socket: h.socketPath)
        #expect(r.status == 0 && FileManager.default.fileExists(atPath: file + ".1"))

        _ = try await h.service.update { $0.targets = []; $0.defaults = GlobalDefaults() }
        #expect(await h.service.configuration().targets.isEmpty)
        r = try ctl(["restore-config", file], socket: h.socketPath)
        #expect(r.status == 0, "\(r.output)")
        #expect(await h.service.configuration() == saved)
        #expect(try ConfigStore(path: h.configPath).read().loaded.config == saved)
        #expect(try h.login(targetA, isid: 9).status == 0)

        // A damaged file changes nothing and names its line.
        try Data("{\n  \"version\": 1,\n  \"targets\": 7\n}\n".utf8).write(to: URL(fileURLWithPath: file))
        r = try ctl(["restore-config", file], socket: h.socketPath)
        #expect(r.status == 2 && r.output.contains(file + ":3"), "\(r.output)")
        #expect(await h.service.configuration() == saved)
    }
}
}

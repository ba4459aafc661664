import AdminCore
import Foundation
import Testing
import TCMU
import TargetConfig
@testable import LIORuntime

/// LIOService against a plain directory laid out like LIO's configfs (no kernel here; the
/// VM test runs the same service against the real one): what it creates, what it keeps
/// across a restart, and that it never touches objects it did not create.
@Suite struct LIOServiceTests {
    let dir: String
    var root: String { dir + "/configfs" }
    let a = "iqn.2025-01.org.example:a"
    let b = "iqn.2025-01.org.example:b"
    let foreign = "iqn.2025-01.org.other:foreign"

    init() throws {
        dir = NSTemporaryDirectory() + "lio-service-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/uio", withIntermediateDirectories: true)
        // Objects someone else made: a target and a backstore in "our" HBA.
        try FileManager.default.createDirectory(atPath: root + "/iscsi/\(foreign)/tpgt_1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/core/user_7/theirs", withIntermediateDirectories: true)
    }

    func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: root + "/" + p) }
    func read(_ p: String) -> String? { try? String(contentsOfFile: root + "/" + p, encoding: .utf8) }

    func service(_ config: Config, keep: Bool = false) throws -> LIOService {
        let store = ConfigStore(path: dir + "/config.json")
        if !store.fileExists { _ = try store.save(config) }
        var o = LIOServiceOptions()
        o.configfsRoot = root
        o.emulatesConfigfs = true
        o.record = LIOExportRecord(path: dir + "/run/lio-export.json")
        o.keepExportOnShutdown = keep
        o.handler.useNetlink = false
        o.handler.sysfsUIOClass = dir + "/uio"
        return try LIOService(store: store, options: o)
    }

    func lun(_ name: String) -> LUN { LUN(id: 0, backstore: .sparse, path: dir + "/\(name).img", size: 1 << 20) }

    @Test func createsKeepsAcrossRestartAndRemovesOnlyItsOwn() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = Config(portals: [Portal(address: "127.0.0.1", port: 3260)], targets: [
            Target(name: a, luns: [lun("a")]), Target(name: b, luns: [lun("b")]),
        ])
        let ba = LIOExportBuilder.backstoreName(target: a, lun: 0)
        let bb = LIOExportBuilder.backstoreName(target: b, lun: 0)

        let first = try service(config, keep: true)
        try await first.start()
        #expect(read("core/user_7/\(ba)/enable") == "1")
        #expect(read("core/user_7/\(ba)/control") == "hw_max_sectors=2048")
        #expect(read("iscsi/\(a)/tpgt_1/enable") == "1")
        #expect(read("iscsi/\(a)/tpgt_1/attrib/generate_node_acls") == "1")
        #expect(exists("iscsi/\(b)/tpgt_1/np/127.0.0.1:3260"))
        let record = try FileManager.default.attributesOfItem(atPath: dir + "/run/lio-export.json")
        #expect((record[.posixPermissions] as? Int) == 0o600)
        #expect(await first.targetStatuses().map(\.running) == [true, true])
        // A marker in A's TPG shows whether a later start re-created it.
        _ = FileManager.default.createFile(atPath: root + "/iscsi/\(a)/tpgt_1/marker", contents: nil)
        await first.shutdown()  // kept: the export stays for the next daemon
        #expect(exists("iscsi/\(a)/tpgt_1/marker"))

        let second = try service(config)
        try await second.start()
        #expect(exists("iscsi/\(a)/tpgt_1/marker"), "an unchanged target is reused, not re-created")

        // A target name LIO already has (not ours) is refused; nothing of the other changes.
        await #expect(throws: AdminError.self) {
            try await second.update { $0.targets.append(Target(name: self.foreign, luns: [self.lun("f")])) }
        }
        #expect(exists("iscsi/\(foreign)/tpgt_1") && !exists("iscsi/\(foreign)/tpgt_1/enable"))
        #expect(await second.configuration().targets.count == 2)

        // Removing B removes B's objects only.
        let report = try await second.update { $0.targets.removeAll { $0.name == self.b } }
        #expect(!report.effects.isEmpty)
        #expect(!exists("iscsi/\(b)") && !exists("core/user_7/\(bb)"))
        #expect(exists("iscsi/\(a)/tpgt_1/marker"))

        // LUN changes are made in place: the TPG (and its sessions) stay.
        let change = try await second.update {
            $0.targets[0].luns[0].writeCache = .writeBack
            $0.targets[0].luns[0].size = 2 << 20
            $0.targets[0].luns.append(LUN(id: 4, backstore: .file, path: self.dir + "/a4.img", size: 1 << 20))
        }
        #expect(change.effects.allSatisfy { $0.outcome == "applied live (sessions kept)" })
        #expect(exists("iscsi/\(a)/tpgt_1/marker"))
        #expect(read("core/user_7/\(ba)/attrib/emulate_write_cache") == "1")
        #expect(read("core/user_7/\(ba)/attrib/dev_size") == "\(2 << 20)")
        let a4 = LIOExportBuilder.backstoreName(target: a, lun: 4)
        #expect(read("core/user_7/\(a4)/enable") == "1" && exists("iscsi/\(a)/tpgt_1/lun/lun_4/user_7_\(a4)"))
        _ = try await second.update { $0.targets[0].luns.removeAll { $0.id == 4 } }
        #expect(!exists("core/user_7/\(a4)") && !exists("iscsi/\(a)/tpgt_1/lun/lun_4") && exists("iscsi/\(a)/tpgt_1/marker"))

        // A change of the target itself (its CHAP) re-creates it.
        let auth = try await second.update {
            $0.targets[0].auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "u", secret: "secret-one-12")])
        }
        #expect(auth.effects.first?.outcome.contains("re-created") == true)
        #expect(!exists("iscsi/\(a)/tpgt_1/marker"))
        #expect(read("iscsi/\(a)/tpgt_1/auth/userid") == "u")

        try await second.control(.stop, target: a)
        #expect(read("iscsi/\(a)/tpgt_1/enable") == "0")
        try await second.control(.start, target: a)
        #expect(read("iscsi/\(a)/tpgt_1/enable") == "1")

        await second.shutdown()
        #expect(!exists("iscsi/\(a)") && !exists("core/user_7/\(ba)"))
        #expect(exists("iscsi/\(foreign)/tpgt_1") && exists("core/user_7/theirs"), "foreign objects untouched")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/lio-export.json"))
    }

    /// A start that fails half-way removes what it made: no TPG may stay enabled with
    /// nobody serving its LUNs.
    @Test func aFailedStartLeavesNothingBehind() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try service(Config(targets: [Target(name: a, luns: [lun("a")]), Target(name: foreign, luns: [lun("f")])]))
        await #expect(throws: LIOExportError.self) { try await s.start() }
        #expect(!exists("iscsi/\(a)") && !exists("core/user_7/\(LIOExportBuilder.backstoreName(target: a, lun: 0))"))
        #expect(exists("iscsi/\(foreign)/tpgt_1") && exists("core/user_7/theirs"))
    }

    /// A target whose steps did not all run (a crash mid-create) is re-created, not adopted.
    @Test func anIncompleteTargetIsRecreated() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = Config(targets: [Target(name: a, luns: [lun("a")])])
        let first = try service(config, keep: true)
        try await first.start()
        await first.shutdown()
        let record = LIOExportRecord(path: dir + "/run/lio-export.json")
        #expect(try record.load().incomplete.isEmpty)
        // As if the daemon had died before the TPG's last steps.
        try FileManager.default.removeItem(atPath: root + "/iscsi/\(a)/tpgt_1/enable")
        try record.save(try record.load().spec, incomplete: [a.lowercased()])
        let second = try service(config)
        try await second.start()
        #expect(read("iscsi/\(a)/tpgt_1/enable") == "1")
        #expect(try record.load().incomplete.isEmpty)
        await second.shutdown()
    }

    @Test func configurationLIOCannotEnforceStopsTheStart() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var t = Target(name: a, luns: [lun("a")])
        t.allowedClients = [.allow(address: "10.0.0.0/8")]
        let s = try service(Config(targets: [t]))
        await #expect(throws: LIOExportError.self) { try await s.start() }
        #expect(!exists("iscsi/\(a)"))
    }
}

import Foundation
import ISCSITestSupport
import TargetConfig
import Testing
@testable import TargetRuntime

extension RuntimeTests {
/// Per-initiator LUN maps from the configuration, over real connections, changed live.
@Suite(.serialized)
struct LUNMapRuntimeTests {
    static let web = "iqn.2026-12.org.test:web01"
    static let backup = "iqn.2026-12.org.test:backup"

    /// Target A with LUNs 0, 1, 2; web* sees LUN 2 as its LUN 0 and LUN 0 read-only as its
    /// LUN 1; anyone else sees all three.
    func harness() async throws -> Harness {
        try await Harness { config, dir in
            config.targets[0].luns = (0...2).map { LUN(id: $0, backstore: .sparse, path: "\(dir)/m\($0).img", size: UInt64($0 + 1) << 20) }
            config.targets[0].lunMaps = [LUNMapping(initiators: ["iqn.2026-12.org.test:web*"],
                                                    luns: [MappedLUN(mappedLun: 0, lun: 2), MappedLUN(mappedLun: 1, lun: 0, readOnly: true)])]
        }
    }

    @Test func twoInitiatorsSeeDifferentLUNs() async throws {
        let h = try await harness()
        defer { Task { await h.stop() } }
        let (web, s1) = try h.login(targetA, initiator: Self.web)
        let (backup, s2) = try h.login(targetA, initiator: Self.backup, isid: 9)
        #expect(s1 == 0 && s2 == 0)
        #expect(try web.reportLUNs() == [0, 1])
        #expect(try backup.reportLUNs() == [0, 1, 2])
        // web's LUN 0 is the target's LUN 2 (3 MiB); backup's LUN 0 is 1 MiB.
        #expect(try web.capacityBytes() == 3 << 20)
        #expect(try backup.capacityBytes() == 1 << 20)
        // web may not write its LUN 1 (the target's LUN 0): DATA PROTECT.
        let write10: [UInt8] = [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        _ = try web.runGood([0, 0, 0, 0, 0, 0], lun: 1)
        #expect(try web.run(write10, write: [UInt8](repeating: 7, count: 512), lun: 1) == 0x02)
        #expect(try backup.run(write10, write: [UInt8](repeating: 7, count: 512), lun: 0) == 0x00)
    }

    @Test func aMapChangedLiveReachesTheSessionItConcerns() async throws {
        let h = try await harness()
        defer { Task { await h.stop() } }
        let (web, _) = try h.login(targetA, initiator: Self.web)
        let (backup, _) = try h.login(targetA, initiator: Self.backup, isid: 9)
        _ = try web.reportLUNs()
        _ = try backup.reportLUNs()
        let report = try await h.service.update { config in
            config.targets[0].lunMaps = [LUNMapping(initiators: ["iqn.2026-12.org.test:web*"], luns: [MappedLUN(mappedLun: 0, lun: 1)]),
                                         LUNMapping(initiators: ["*"], luns: [MappedLUN(mappedLun: 0, lun: 0)])]
        }
        #expect(report.effects.map(\.setting) == ["lunMaps"])
        #expect(report.effects.first?.applyMode == "applies-now")
        #expect(try web.reportLUNs() == [0])
        #expect(try web.capacityBytes() == 2 << 20)
        #expect(try backup.reportLUNs() == [0])
        #expect(try backup.capacityBytes() == 1 << 20)
        // Saved: a restart reads the same maps.
        let saved = try ConfigStore(path: h.configPath).load().config
        #expect(saved.targets[0].lunMaps?.count == 2)
    }

    /// swift-targetctl and the API: add, list, remove; a bad map is refused with exit 2; a LUN
    /// removed takes its mappings with it.
    @Test func mapsFromTheCommandLine() async throws {
        let h = try await harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        let added = try ctl(["map-luns", targetA, "--initiator", "iqn.2026-12.org.test:backup", "--lun", "0=1", "--lun", "3=2,ro",
                             "--position", "0"], socket: h.socketPath)
        #expect(added.status == 0, "\(added.output)")
        #expect(added.output.contains("lunMaps") && added.output.contains("applies-now"), "\(added.output)")
        let listed = try ctl(["lun-maps", targetA], socket: h.socketPath)
        #expect(listed.output.contains("0: iqn.2026-12.org.test:backup: LUN 0 = target LUN 1, LUN 3 = target LUN 2 (read-only)"), "\(listed.output)")
        #expect(listed.output.contains("1: iqn.2026-12.org.test:web*: LUN 0 = target LUN 2"), "\(listed.output)")
        let (backup, _) = try h.login(targetA, initiator: Self.backup, isid: 9)
        #expect(try backup.reportLUNs() == [0, 3])
        let bad = try ctl(["map-luns", targetA, "--initiator", "*", "--lun", "0=9"], socket: h.socketPath)
        #expect(bad.status == 2 && bad.output.contains("the target has no LUN 9"), "\(bad.output)")
        #expect(try ctl(["map-luns", targetA, "--lun", "0=1"], socket: h.socketPath).status == 2)
        #expect(try ctl(["map-luns", targetA, "--initiator", "x", "--lun", "0:1"], socket: h.socketPath).status == 2)
        // Removing LUN 2 drops its mappings (web's LUN 0, backup's LUN 3).
        #expect(try ctl(["remove-lun", targetA, "2"], socket: h.socketPath).status == 0)
        #expect(try backup.reportLUNs() == [0])
        #expect(await h.service.configuration().targets[0].lunMaps?.map(\.luns.count) == [1, 1])
        #expect(try ctl(["unmap-luns", targetA, "0"], socket: h.socketPath).status == 0)
        #expect(try ctl(["unmap-luns", targetA, "5"], socket: h.socketPath).status == 3)
        #expect(try backup.reportLUNs() == [0, 1])
    }

    @Test func aMapNamingAMissingLUNIsRefusedAndChangesNothing() async throws {
        let h = try await harness()
        defer { Task { await h.stop() } }
        await #expect(throws: (any Error).self) {
            _ = try await h.service.update { $0.targets[0].lunMaps = [LUNMapping(initiators: ["*"], luns: [MappedLUN(mappedLun: 0, lun: 9)])] }
        }
        let (web, _) = try h.login(targetA, initiator: Self.web)
        #expect(try web.reportLUNs() == [0, 1])
    }
}
}

import AdminCore
import Foundation
import ISCSITestSupport
import TargetConfig
import Testing
@testable import TargetRuntime

/// swift-targetctl edit-lun, edit-target and ls against a running service over its API socket.
extension RuntimeTests {
@Suite(.serialized) struct EditAndTreeCommandTests {
    /// (sense key, ASC, ASCQ) of the CHECK CONDITION a command gets, nil for GOOD.
    func sense(_ i: TestInitiator, _ cdb: [UInt8]) throws -> (UInt8, UInt8, UInt8)? {
        let tag = try i.command(cdb: cdb, read: 0)
        while true {
            let r = try i.receive()
            guard r.opcode == 0x21, r.u32(16) == tag else { continue }
            guard r.header[3] == 0x02, r.data.count >= 16 else { return nil }
            let s = Array(r.data.dropFirst(2))  // the sense length, then fixed-format sense
            return (s[2] & 0x0F, s[12], s[13])
        }
    }

    @Test func lsDrawsTargetsPortalsLUNsRulesMapsAndSessions() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        _ = try await h.service.update { c in
            c.targets[1].allowedClients = [.allow(initiator: "iqn.2026-11.org.test:*")]
            c.targets[1].lunMaps = [LUNMapping(initiators: ["iqn.2026-11.org.test:initiator"], luns: [MappedLUN(mappedLun: 3, lun: 0)])]
        }
        let (session, status) = try h.login(targetB)
        #expect(status == 0)
        let r = try withExtendedLifetime(session) { try ctl(["ls"], socket: h.socketPath) }
        #expect(r.status == 0, "\(r.output)")
        let lines = r.output.split(separator: "\n").map(String.init)
        let b = try #require(lines.firstIndex { $0.hasPrefix("  o- \(targetB) [running, 1 session, auth none, global]") }, "\(r.output)")
        #expect(lines.first == "o- targets [2]")
        #expect(Array(lines[(b + 1)...]) == [
            "    o- portals [1]",
            "    | o- 127.0.0.1:\(h.port)",
            "    o- luns [1]",
            "    | o- lun0 file \(h.directory.path)/b0.img (4.0 MiB, write-through) [serial \(await h.service.configuration().targets[1].luns[0].serial)]",
            "    o- allowed clients [1]",
            "    | o- allow initiator iqn.2026-11.org.test:*",
            "    o- lun maps [1]",
            "    | o- iqn.2026-11.org.test:initiator: LUN 3 = target LUN 0",
            "    o- sessions [1]",
            "      o- iqn.2026-11.org.test:initiator from \(try #require(await h.service.sessions().first?.remoteAddress)) (TSIH 1, ISID 800012345678)",
        ], "\(r.output)")
        #expect(try ctl(["ls", "iqn.2026-11.org.example:none"], socket: h.socketPath).status == 3)
    }

    @Test func editLUNGrowsAndSwitchesInPlaceKeepingItsIdentity() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        let before = try #require(await h.service.configuration().target(named: targetA)?.lun(0))
        let (a, status) = try h.login(targetA)
        #expect(status == 0)
        _ = try a.runGood([0x00, 0, 0, 0, 0, 0])

        var r = try ctl(["edit-lun", targetA, "0", "--size", "16M"], socket: h.socketPath)
        #expect(r.status == 0 && r.output.contains("LUN 0"), "\(r.output)")
        let tur: [UInt8] = [0x00, 0, 0, 0, 0, 0]
        #expect(try sense(a, tur)! == (0x06, 0x2A, 0x09))  // CAPACITY DATA HAS CHANGED
        #expect(try a.capacityBytes() == 16 << 20)

        r = try ctl(["edit-lun", targetA, "0", "--size", "1M"], socket: h.socketPath)
        #expect(r.status == 2 && r.output.contains("shrinking"), "\(r.output)")
        r = try ctl(["edit-lun", targetA, "0"], socket: h.socketPath)
        #expect(r.status == 2 && r.output.contains("nothing to change"), "\(r.output)")
        r = try ctl(["edit-lun", targetA, "7", "--read-only"], socket: h.socketPath)
        #expect(r.status == 3, "\(r.output)")

        r = try ctl(["edit-lun", targetA, "0", "--read-only", "--write-cache", "write-back"], socket: h.socketPath)
        #expect(r.status == 0, "\(r.output)")
        let after = try #require(await h.service.configuration().target(named: targetA)?.lun(0))
        #expect(after.readOnly && after.writeCache == .writeBack && after.size == 16 << 20)
        #expect(after.serial == before.serial && after.naaId == before.naaId && after.path == before.path)
        r = try ctl(["edit-lun", targetA, "0", "--no-read-only"], socket: h.socketPath)
        let writable = await h.service.configuration().target(named: targetA)?.lun(0)?.readOnly == false
        #expect(r.status == 0 && writable)

        r = try ctl(["edit-target", targetA, "--alias", "db-primary"], socket: h.socketPath)
        #expect(r.status == 0, "\(r.output)")
        #expect(await h.service.configuration().target(named: targetA)?.alias == "db-primary")
    }
}
}

import AdminCore
import Foundation
import TargetConfig
import Testing
@testable import TargetRuntime

extension RuntimeTests {
@Suite(.serialized) struct TargetServiceTests {
    @Test func servesTheConfigurationAndAddsALUNLiveWithoutDisturbingOtherTargets() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (b, status) = try h.login(targetB)
        #expect(status == 0)
        #expect(try b.read10() == 0)
        let (a, statusA) = try h.login(targetA, isid: 0x8000_0000_0001)
        #expect(statusA == 0)
        #expect(try a.reportLUNs() == [0])

        let report = try await h.service.update { config in
            try config.addLUN(toTarget: targetA, backstore: .sparse, path: h.directory.path + "/a1.img", size: 2 << 20)
        }
        #expect(report.effects.map(\.setting) == ["lunAdded"])
        #expect(report.effects.first?.applyMode == "applies-now")

        // The session on B goes on as if nothing happened (no unit attention, same data path).
        let r = try b.run([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], read: 4096)
        #expect(r.status == 0)
        // The session on A sees the new LUN (after REPORTED LUNS DATA HAS CHANGED).
        #expect(try a.reportLUNs() == [0, 1])
        #expect(try a.runGood([0x00, 0, 0, 0, 0, 0], lun: 1).status == 0)

        // Saved atomically with a generated identity.
        let saved = try ConfigStore(path: h.configPath).load(persistGeneratedIdentities: false).config
        #expect(saved.target(named: targetA)?.luns.count == 2)
        #expect(saved.target(named: targetA)?.lun(1)?.serial.isEmpty == false)

        let sessions = await h.service.sessions()
        #expect(sessions.count == 2)
        #expect(sessions.allSatisfy { $0.localAddress == "127.0.0.1" && $0.connectedSince > 1_700_000_000 })
        let stats = await h.service.statistics()
        let bStats = try #require(stats.first { $0.target == targetB && $0.lun == 0 })
        #expect(bStats.readCommands >= 2)
        #expect(bStats.bytesRead >= 8192)
        #expect(bStats.latencyCounts.last == bStats.latencyCounts.max())
    }

    @Test func invalidChangesChangeNothing() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let before = try String(contentsOfFile: h.configPath, encoding: .utf8)
        await #expect(throws: AdminError.self) {
            _ = try await h.service.update { $0.targets.append(Target(name: "not a valid name")) }
        }
        do {
            _ = try await h.service.update { $0.targets[0].luns.append(LUN(id: 0, backstore: .file, path: "/tmp/x.img")) }
            Issue.record("duplicate LUN id accepted")
        } catch let e as AdminError {
            #expect(e.kind == .invalid)
            #expect(e.message.contains("targets[0]"))
        }
        // A LUN whose image cannot be opened fails the change before anything is saved.
        do {
            _ = try await h.service.update { try $0.addLUN(toTarget: targetA, backstore: .file, path: "/nonexistent/dir/x.img") }
            Issue.record("unopenable LUN accepted")
        } catch let e as AdminError {
            #expect(e.kind == .failed)
        }
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8) == before)
        #expect(await h.service.configuration().target(named: targetA)?.luns.count == 1)
    }

    @Test func stopStartAndAuthApplyToNewLogins() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (b, _) = try h.login(targetB)
        try await h.service.control(.stop, target: targetA)
        #expect(try h.login(targetA, isid: 2).status == 0x0203)  // not found
        #expect(await h.service.targetStatuses().first { $0.name == targetA }?.running == false)
        try await h.service.control(.start, target: targetA)
        #expect(try h.login(targetA, isid: 3).status == 0)

        _ = try await h.service.update { config in
            config.targets[0].allowedClients = [AccessRule(.allow, initiator: "iqn.2026-11.org.allowed:*")]
        }
        #expect(try h.login(targetA, isid: 4).status == 0x0202)  // authorization failure
        #expect(try h.login(targetA, initiator: "iqn.2026-11.org.allowed:x", isid: 5).status == 0)
        #expect(await h.service.securityCounters().aclDenials == 1)
        #expect(try b.read10() == 0)  // B untouched throughout

        await #expect(throws: AdminError.self) { try await h.service.control(.stop, target: "iqn.2026-11.org.example:none") }
    }

    @Test func maxSessionsRefusesLoginsOverTheLimit() async throws {
        let h = try await Harness { config, _ in config.targets[1].connection = ConnectionSettings(maxSessions: 1) }
        defer { Task { await h.stop() } }
        let (first, s1) = try h.login(targetB)
        #expect(s1 == 0)
        #expect(try h.login(targetB, initiator: "iqn.2026-11.org.test:other", isid: 9).status == 0x0302)
        #expect(try first.read10() == 0)
    }

    @Test func growingALUNReachesTheInitiator() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (a, _) = try h.login(targetA)
        #expect(try a.capacityBytes() == 8 << 20)
        let report = try await h.service.update { $0.targets[0].luns[0].size = 16 << 20 }
        #expect(report.effects.first?.outcome.contains("CAPACITY DATA HAS CHANGED") == true)
        #expect(try a.capacityBytes() == 16 << 20)
        let attributes = try FileManager.default.attributesOfItem(atPath: h.directory.path + "/a0.img")
        #expect((attributes[.size] as? NSNumber)?.uint64Value == 16 << 20)
        #expect(await h.service.targetStatuses().first { $0.name == targetA }?.lunSizes[0] == 16 << 20)
        // A fully allocated image stays allocated when it grows.
        _ = try await h.service.update { $0.targets[1].luns[0].size = 8 << 20 }
        var st = stat()
        #expect(stat(h.directory.path + "/b0.img", &st) == 0)
        #expect(st.st_size == 8 << 20)
        #expect(Int(st.st_blocks) * 512 >= 8 << 20)
    }

    @Test func removingATargetLogsOutOnlyItsSessions() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (a, _) = try h.login(targetA)
        let (b, _) = try h.login(targetB, isid: 7)
        _ = try await h.service.update { $0.targets.removeAll { $0.name == targetA } }
        #expect(await h.service.sessions().map(\.target) == [targetB])
        #expect(throws: (any Error).self) { _ = try a.read10() }
        #expect(try b.read10() == 0)
        // The image is released: a new target can serve it at once.
        _ = try await h.service.update { config in
            config.targets.append(Target(name: "iqn.2026-11.org.example:c",
                                         luns: [LUN(id: 0, backstore: .sparse, path: h.directory.path + "/a0.img")]))
        }
        #expect(try h.login("iqn.2026-11.org.example:c", isid: 8).status == 0)
    }
}
}

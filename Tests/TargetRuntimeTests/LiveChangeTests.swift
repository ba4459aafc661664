import ISCSITestSupport
import AdminCore
import Foundation
import TargetConfig
import Testing
@testable import TargetRuntime
#if canImport(Glibc)
import Glibc
#endif

extension RuntimeTests {
@Suite(.serialized) struct LiveChangeTests {
    @Test func serverAddressesHideATargetFromDiscoveryAndLogin() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (d, status) = try h.login(nil)
        #expect(status == 0)
        #expect(try d.sendTargets().keys.sorted() == [targetA, targetB])
        _ = try await h.service.update { config in
            config.targets[0].allowedServerAddresses = [IPNetwork("192.0.2.1/32")!]
        }
        let (d2, _) = try h.login(nil, isid: 2)
        let found = try d2.sendTargets()
        #expect(found.keys.sorted() == [targetB])
        #expect(found[targetB] == ["127.0.0.1:\(h.port),1"])
        #expect(try h.login(targetA, isid: 3).status == 0x0203)
    }

    @Test func readOnlyChangesLiveAndPathChangesRestartOnlyThatTarget() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (a, _) = try h.login(targetA)
        let (b, _) = try h.login(targetB, isid: 5)
        let write: [UInt8] = [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        _ = try b.runGood([0x00, 0, 0, 0, 0, 0])
        var tag = try b.command(cdb: write, write: 512, immediate: [UInt8](repeating: 7, count: 512))
        #expect(try b.receiveStatus(tag) == 0)

        let report = try await h.service.update { $0.targets[1].luns[0].readOnly = true }
        #expect(report.effects.map(\.setting) == ["lunReadOnly"])
        var statuses: [UInt8] = []
        for _ in 0..<3 {
            tag = try b.command(cdb: write, write: 512, immediate: [UInt8](repeating: 7, count: 512))
            statuses.append(try b.receiveStatus(tag))
        }
        #expect(statuses.last == 0x02)  // DATA PROTECT once the unit attention is reported
        #expect(try b.read10() == 0)

        // Another image behind A's LUN 0: A restarts, B does not notice.
        let restart = try await h.service.update { config in
            config.targets[0].luns[0].path = h.directory.path + "/a0-new.img"
            config.targets[0].luns[0].size = 4 << 20
        }
        #expect(restart.effects.contains { $0.applyMode == "target-restart" && $0.outcome == "target restarted" })
        #expect(throws: (any Error).self) { _ = try a.read10() }
        #expect(try b.read10() == 0)
        let (a2, s2) = try h.login(targetA, isid: 6)
        #expect(s2 == 0)
        #expect(try a2.capacityBytes() == 4 << 20)
    }

    @Test func portalsOpenAndCloseLive() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (b, _) = try h.login(targetB)
        let second = freePort()
        _ = try await h.service.update { $0.portals.append(Portal(address: "127.0.0.1", port: second)) }
        let other = try TestInitiator(port: second)
        #expect(try other.login(target: targetA).header[36] == 0)
        _ = try await h.service.update { $0.portals = [Portal(address: "127.0.0.1", port: second)] }
        #expect(throws: (any Error).self) { _ = try TestInitiator(port: h.port) }
        // Sessions that came in through the removed portal are asked to log out, then closed.
        #expect(throws: (any Error).self) { while true { _ = try b.receive() } }
        #expect(try other.read10() == 0)
    }

    /// A change that cannot be put in force is not saved: no "saved" beside "failed".
    @Test func aPortalThatCannotListenChangesNothing() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let (busyPort, holder) = try listeningSocket()
        defer { close(holder) }
        let extra = freePort()
        await #expect(throws: AdminError.self) {
            _ = try await h.service.update { config in
                config.portals = [Portal(address: "127.0.0.1", port: extra), Portal(address: "127.0.0.1", port: busyPort)]
            }
        }
        do {
            _ = try await h.service.update { $0.portals = [Portal(address: "127.0.0.1", port: busyPort)] }
            Issue.record("a busy port was accepted")
        } catch let error as AdminError {
            #expect(error.kind == .failed)
            #expect(error.message.contains("already in use") && error.message.contains("nothing was changed"))
        }
        #expect(await h.service.configuration().portals == [Portal(address: "127.0.0.1", port: h.port)])
        #expect(try ConfigStore(path: h.configPath).load().config.portals == [Portal(address: "127.0.0.1", port: h.port)])
        // The portal that was there still serves; the one bound for the failed change was let go.
        #expect(try TestInitiator(port: h.port).login(target: targetA).header[36] == 0)
        #expect(throws: (any Error).self) { _ = try TestInitiator(port: extra) }
    }

    /// Global defaults are a setting of their own, saved even when no target inherits them now.
    @Test func globalDefaultsAreSavedWhenEveryTargetHasItsOwn() async throws {
        let own = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "t", secret: "targetsecret12")])
        let h = try await Harness { config, _ in
            for i in config.targets.indices { config.targets[i].auth = own }
        }
        defer { Task { await h.stop() } }
        let global = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "g", secret: "globalsecret12")])
        let report = try await h.service.update { $0.defaults.auth = global }
        #expect(report.effects.map(\.setting) == ["defaults"])
        #expect(report.effects.first?.outcome.hasPrefix("saved") == true)
        #expect(!"\(report)".contains("globalsecret12"), "a secret in the report")
        #expect(await h.service.configuration().defaults.auth == global)
        #expect(try ConfigStore(path: h.configPath).load().config.defaults.auth == global)
        // A target added later inherits it.
        _ = try await h.service.update { config in
            config.targets.append(Target(name: "iqn.2026-11.org.example:c",
                                         luns: [LUN(id: 0, backstore: .sparse, path: h.directory.path + "/c0.img", size: 1 << 20)]))
        }
        let added = await h.service.configuration()
        #expect(added.effective(added.targets[2]).auth == global)
    }
}
}

/// A socket listening on a free 127.0.0.1 port (another program's), and its descriptor.
func listeningSocket() throws -> (Int, Int32) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0, listen(fd, 1) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (Int(UInt16(bigEndian: address.sin_port)), fd)
}

extension TestInitiator {
    func receiveStatus(_ tag: UInt32) throws -> UInt8 {
        while true {
            let r = try receive()
            if r.u32(16) == tag && (r.opcode == 0x21 || (r.opcode == 0x25 && r.flags & 0x01 != 0)) { return r.header[3] }
        }
    }
}

extension RuntimeTests {
@Suite(.serialized) struct PerTargetSettingsTests {
    @Test func xmitCapAndNOPTimeoutsPerTarget() async throws {
        let h = try await Harness { config, _ in
            config.targets[0].connection = ConnectionSettings(maxXmitDataSegmentLength: 4096)
            config.targets[1].timeouts = TimeoutSettings(nopInInterval: 1, nopInTimeout: 1)
        }
        defer { Task { await h.stop() } }
        let (a, _) = try h.login(targetA)
        _ = try a.runGood([0x00, 0, 0, 0, 0, 0])
        let tag = try a.command(cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 32, 0], read: 16384)
        var segments: [Int] = []
        while true {
            let r = try a.receive()
            guard r.u32(16) == tag else { continue }
            if r.opcode == 0x25 { segments.append(r.data.count) }
            if r.opcode == 0x21 || (r.opcode == 0x25 && r.flags & 0x01 != 0) { break }
        }
        #expect(segments == [4096, 4096, 4096, 4096])
        #expect(await h.service.sessions().first?.negotiated["MaxXmitDataSegmentLength"] == "4096")

        // B pings every second and drops a connection that does not answer; A never pings.
        let (b, _) = try h.login(targetB, isid: 9)
        let deadline = Date().addingTimeInterval(6)
        while await h.service.securityCounters().nopTimeouts == 0 && Date() < deadline {
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(await h.service.securityCounters().nopTimeouts == 1)
        #expect(throws: (any Error).self) { while true { _ = try b.receive() } }
        #expect(try a.read10() == 0)
    }
}
}

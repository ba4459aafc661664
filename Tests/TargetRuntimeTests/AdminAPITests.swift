import AdminAPI
import AdminCore
import Foundation
import NIOHTTP1
import TargetConfig
import Testing
@testable import TargetRuntime

extension RuntimeTests {
@Suite(.serialized) struct AdminAPITests {
    @Test func roundTripsOverTheUnixSocket() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let client = try await h.startAPI()

        var st = stat()
        #expect(stat(h.socketPath, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o660)

        let targets: [TargetView] = try await client.call(.GET, "/v1/targets")
        #expect(targets.map(\.name) == [targetA, targetB])
        #expect(targets.allSatisfy { $0.running })

        let added: ApplyReport = try await client.call(.POST, "/v1/targets", body: NewTargetRequest(name: "iqn.2026-11.org.example:c", alias: "cee"))
        #expect(added.effects.map(\.setting) == ["targetAdded"])
        let lun: ApplyReport = try await client.call(
            .POST, "/v1/targets/iqn.2026-11.org.example:c/luns",
            body: NewLUNRequest(backstore: "sparse", path: h.directory.path + "/c0.img", size: 1 << 20))
        #expect(lun.effects.map(\.setting) == ["lunAdded"])
        let shown: TargetView = try await client.call(.GET, "/v1/targets/iqn.2026-11.org.example:c")
        #expect(shown.alias == "cee")
        #expect(shown.luns.map(\.size) == [1 << 20])

        // CHAP on B: the secret is stored, never returned.
        let auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "alice", secret: "alicesecret12")])
        let _: ApplyReport = try await client.call(.PUT, "/v1/targets/\(targetB)/auth", body: auth)
        let config = try await client.raw(.GET, "/v1/config")
        let text = String(decoding: config, as: UTF8.self)
        #expect(text.contains("alice") && !text.contains("alicesecret12"))
        let b: TargetView = try await client.call(.GET, "/v1/targets/\(targetB)")
        #expect(b.auth.incomingUsers.first?.secret == "********")
        #expect(await h.service.configuration().target(named: targetB)?.auth?.incomingUsers.first?.secret == "alicesecret12")
        #expect(try h.login(targetB).status == 0x0201)  // new logins need CHAP now

        // Ordered client rules: insert, move, delete.
        let r1 = NewAccessRuleRequest(rule: AccessRule(.allow, address: IPNetwork("10.0.0.0/8")))
        let r2 = NewAccessRuleRequest(rule: AccessRule(.deny, initiator: "iqn.1991-05.com.microsoft:*"), position: 0)
        let _: ApplyReport = try await client.call(.POST, "/v1/targets/\(targetA)/allowed-clients", body: r1)
        let _: ApplyReport = try await client.call(.POST, "/v1/targets/\(targetA)/allowed-clients", body: r2)
        var rules: [AccessRule] = try await client.call(.GET, "/v1/targets/\(targetA)/allowed-clients")
        #expect(rules.map(\.action) == [.deny, .allow])
        let _: ApplyReport = try await client.call(.POST, "/v1/targets/\(targetA)/allowed-clients/0/move", body: MoveRequest(direction: "down"))
        rules = try await client.call(.GET, "/v1/targets/\(targetA)/allowed-clients")
        #expect(rules.map(\.action) == [.allow, .deny])
        let _: ApplyReport = try await client.call(.DELETE, "/v1/targets/\(targetA)/allowed-clients/1")
        rules = try await client.call(.GET, "/v1/targets/\(targetA)/allowed-clients")
        #expect(rules.count == 1)
        #expect(try h.login(targetA, isid: 0x8000_0000_0041).status == 0x0202)  // only 10.0.0.0/8 may log in
        let _: ApplyReport = try await client.call(.PUT, "/v1/targets/\(targetA)/allowed-clients", body: [AccessRule]())

        // Settings merge field by field.
        let _: ApplyReport = try await client.call(.PUT, "/v1/settings/connection", body: ConnectionSettings(maxBurstLength: 131_072))
        let _: ApplyReport = try await client.call(.PUT, "/v1/targets/\(targetA)/settings/connection", body: ConnectionSettings(maxSessions: 4))
        let view: ConnectionSettingsView = try await client.call(.GET, "/v1/targets/\(targetA)/settings/connection")
        #expect(view.configured.maxSessions == 4 && view.configured.maxBurstLength == nil)
        #expect(view.effective.maxBurstLength == 131_072)
        let timeouts: TimeoutSettingsView = try await client.call(.GET, "/v1/settings/timeouts")
        #expect(timeouts.effective.nopInInterval == 15)

        // Service control, sessions, statistics.
        let _: [String: String] = try await client.call(.POST, "/v1/service/stop?target=\(targetA)")
        let statuses: [TargetView] = try await client.call(.GET, "/v1/targets")
        #expect(statuses.first { $0.name == targetA }?.running == false)
        let _: [String: String] = try await client.call(.POST, "/v1/service/start")
        let (i, status) = try h.login(targetA, isid: 0x8000_0000_0042)
        #expect(status == 0)
        #expect(try i.read10() == 0)
        let sessions: [SessionInfo] = try await client.call(.GET, "/v1/sessions")
        let mine = try #require(sessions.first { $0.target == targetA })
        #expect(mine.isid == "800000000042")
        let stats: StatisticsView = try await client.call(.GET, "/v1/statistics")
        #expect(stats.luns.contains { $0.target == targetA && $0.readCommands >= 1 })
        #expect(stats.security.chapFailures == 1)
        let _: [String: String] = try await client.call(.DELETE, "/v1/sessions/\(mine.tsih)")

        let _: ApplyReport = try await client.call(.DELETE, "/v1/targets/iqn.2026-11.org.example:c/luns/0")
        let _: ApplyReport = try await client.call(.DELETE, "/v1/targets/iqn.2026-11.org.example:c")
        #expect(await h.service.configuration().targets.count == 2)
    }

    @Test func errorsCarryKindAndStatus() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let client = try await h.startAPI()

        func kind(_ method: HTTPMethod, _ path: String, _ body: Data? = nil) async throws -> (Int, String) {
            let (status, data) = try await client.send(method, path, body: body)
            let e = try JSONDecoder().decode(APIErrorBody.self, from: data)
            return (status, e.error)
        }
        #expect(try await kind(.GET, "/v1/targets/iqn.2026-11.org.example:none") == (404, "notFound"))
        #expect(try await kind(.POST, "/v1/targets", Data(#"{"name": "\#(targetA)"}"#.utf8)) == (409, "conflict"))
        #expect(try await kind(.POST, "/v1/targets", Data(#"{"name": "Bad Name"}"#.utf8)) == (400, "invalid"))
        #expect(try await kind(.POST, "/v1/targets", Data("not json".utf8)) == (400, "invalid"))
        #expect(try await kind(.DELETE, "/v1/targets/\(targetA)/luns/7") == (404, "notFound"))
        #expect(try await kind(.DELETE, "/v1/sessions/999") == (404, "notFound"))
        #expect(try await kind(.POST, "/v1/service/explode") == (404, "notFound"))
        #expect(try await kind(.PUT, "/v1/portals", Data(#"["nonsense"]"#.utf8)) == (400, "invalid"))

        do {
            let _: [TargetView] = try await client.call(.GET, "/v1/targets/iqn.2026-11.org.example:none")
        } catch let e as AdminClientError {
            #expect(e.exitCode == CtlExitCode.notFound)
        }
    }

    @Test func unreachableDaemonIsExitCode69() async throws {
        let client = AdminClient(socketPath: "/tmp/swtgt-no-such-\(UUID().uuidString.prefix(6)).sock")
        do {
            let _: [TargetView] = try await client.call(.GET, "/v1/targets")
            Issue.record("call succeeded")
        } catch let e as AdminClientError {
            #expect(e.exitCode == 69)
        }
        #expect(AdminError.Kind.invalid.exitCode == 2)
        #expect(AdminError.Kind.conflict.exitCode == 4)
        #expect(AdminError.Kind.failed.exitCode == 1)
        #expect(AdminError.Kind.notFound.httpStatus == 404)
    }
}
}

import AdminAPI
import AdminCore
import Foundation
import ISCSIFabric
import ISCSITestSupport
import TargetConfig
import Testing
@testable import TargetRuntime

extension RuntimeTests {
/// The configuration's `limits` on a running service: read at start, changed live over the API.
@Suite(.serialized) struct LimitsRuntimeTests {
    @Test func loginCapsFromTheFileThenRaisedOverTheAPI() async throws {
        let h = try await Harness { config, _ in config.limits = LimitSettings(maxLoginsPerAddress: 1, maxLogins: 1) }
        defer { Task { await h.stop() } }
        let client = try await h.startAPI()

        // A connection that never sends its login holds the only place…
        let idle = try TestInitiator(port: h.port)
        try await Task.sleep(for: .milliseconds(200))
        // …so a second connection from 127.0.0.1 is closed before its login is answered.
        #expect(throws: (any Error).self) { _ = try h.login(targetA) }

        let view: LimitsView = try await client.call(.GET, "/v1/limits")
        #expect(view.configured == LimitSettings(maxLoginsPerAddress: 1, maxLogins: 1))
        #expect(view.effective.chapFreeFailures == 3 && view.effective.maxLogins == 1)

        let report: ApplyReport = try await client.call(.PUT, "/v1/limits", body: LimitSettings(maxLoginsPerAddress: 4, maxLogins: 8))
        #expect(report.effects.map(\.setting) == ["limits"])
        #expect(report.effects.map(\.applyMode) == ["new-logins"])
        #expect(try h.login(targetA).status == 0)  // the idle connection still holds its place
        _ = idle

        // Saved: the file carries the new values; invalid ones are refused and change nothing.
        #expect(try ConfigStore(path: h.configPath).load().config.limits == LimitSettings(maxLoginsPerAddress: 4, maxLogins: 8))
        let (status, data) = try await client.send(.PUT, "/v1/limits", body: Data(#"{"maxLogins": 2}"#.utf8))
        #expect(status == 400)
        #expect(String(decoding: data, as: UTF8.self).contains("limits.maxLogins: 2 is below maxLoginsPerAddress 4"))
        let (unknown, _) = try await client.send(.PUT, "/v1/limits", body: Data(#"{"maxLogin": 2}"#.utf8))
        #expect(unknown == 400)
        #expect(await h.service.configuration().limits == LimitSettings(maxLoginsPerAddress: 4, maxLogins: 8))

        // Back to the defaults: the field leaves the file.
        let reset: ApplyReport = try await client.call(.PUT, "/v1/limits?replace=true", body: LimitSettings())
        #expect(reset.effects.map(\.setting) == ["limits"])
        #expect(await h.service.configuration().limits == nil)
    }
}
}

@Suite struct LimitDefaultsTests {
    /// `LimitSettings.defaults` (shown by the API and CLI) says what the fabric really does.
    @Test func configurationDefaultsAreTheFabricDefaults() {
        #expect(FabricLimits(LimitSettings.defaults) == FabricLimits())
        #expect(FabricLimits(LimitSettings()) == FabricLimits())
        var expected = FabricLimits()
        expected.maxLoginsTotal = 7
        expected.chapBaseDelay = .milliseconds(500)
        #expect(FabricLimits(LimitSettings(chapDelaySeconds: 0.5, maxLogins: 7)) == expected)
    }
}

import AdminAPI
import AdminCore
import Foundation
import ISCSITestSupport
import TargetConfig
import Testing
@testable import TargetRuntime

extension RuntimeTests {
/// `gateway` in the configuration: this daemon as gateway 2 of gateways 1 and 2.
@Suite(.serialized) struct GatewayRuntimeTests {
    static func rtpg(_ i: TestInitiator) throws -> [UInt8] {
        try i.runGood([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], read: 256).data
    }

    @Test func portGroupReachesLoginDiscoveryVPDAndRTPG() async throws {
        let h = try await Harness { config, _ in config.gateway = GatewaySettings(portGroup: 2, portGroups: [2, 1]) }
        defer { Task { await h.stop() } }

        let discovery = try TestInitiator(port: h.port)
        _ = try discovery.login(target: nil)
        #expect(try discovery.sendTargets()[targetA] == ["127.0.0.1:\(h.port),2"])

        let (i, status) = try h.login(targetA)
        #expect(status == 0)
        // VPD 0x83: relative target port 2, target port group 2, port name IQN,t,0x0002.
        let vpd = try i.runGood([0x12, 1, 0x83, 0, 255, 0], read: 255).data
        let text = String(decoding: vpd, as: UTF8.self)
        #expect(text.contains(targetA + ",t,0x0002"))
        func contains(_ needle: [UInt8]) -> Bool { (0...(vpd.count - needle.count)).contains { Array(vpd[$0..<$0 + needle.count]) == needle } }
        #expect(contains([0x51, 0x94, 0, 4, 0, 0, 0, 2]))  // relative target port 2
        #expect(contains([0x51, 0x95, 0, 4, 0, 0, 0, 2]))  // target port group 2
        let group: (UInt8) -> [UInt8] = { [0x80, 0x01, 0, $0, 0, 0, 0, 1, 0, 0, 0, $0] }
        #expect(try Self.rtpg(i) == [0, 0, 0, 24] + group(1) + group(2))

        // A third gateway joins: listed at once on the running session.
        let joined = try await h.service.update { $0.gateway?.portGroups = [1, 2, 3] }
        #expect(joined.effects.map(\.outcome) == ["applied; REPORT TARGET PORT GROUPS lists them"])
        #expect(try Self.rtpg(i) == [0, 0, 0, 36] + group(1) + group(2) + group(3))
        // This gateway's own number is fixed while it runs (every nexus carries it).
        let renumbered = try await h.service.update { $0.gateway = GatewaySettings(portGroup: 3, portGroups: [1, 2, 3]) }
        #expect(renumbered.effects.map(\.outcome) == ["applies after the daemon restarts"])
        #expect(try discovery.sendTargets()[targetA] == ["127.0.0.1:\(h.port),2"])
        // A gateway list without this gateway is refused.
        await #expect(throws: (any Error).self) { try await h.service.update { $0.gateway = GatewaySettings(portGroup: 3, portGroups: [1, 2]) } }
    }
}
}

import Foundation
import Testing
@testable import TargetConfig

@Suite struct InheritanceTests {
    @Test func builtInDefaultsWhenNothingSet() {
        let c = Config(targets: [Target(name: "iqn.2026-01.com.example:a")])
        let e = c.effective(c.targets[0])
        #expect(e.connection == .builtIn)
        #expect(e.connection.maxRecvDataSegmentLength == 8192 && e.connection.maxBurstLength == 262_144)
        #expect(e.connection.firstBurstLength == 65_536 && e.connection.initialR2T && e.connection.immediateData)
        #expect(e.timeouts == .builtIn)
        #expect(e.auth == .noAuth)
        #expect(e.allowedClients.isEmpty && e.allowedServerAddresses.isEmpty)
        #expect(e.inherited == ["auth", "allowedClients", "allowedServerAddresses"])
    }

    @Test func targetOverridesFieldByFieldOverDefaults() throws {
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let db1 = try #require(c.effectiveSettings(forTarget: "iqn.2026-01.com.example:storage.db1"))
        // From defaults:
        #expect(db1.connection.maxBurstLength == 1_048_576)
        #expect(db1.connection.maxRecvDataSegmentLength == 262_144)
        #expect(db1.timeouts.loginTimeout == 15)
        // Overridden by the target:
        #expect(db1.connection.headerDigest == [.crc32c, .none])
        #expect(db1.timeouts.nopInInterval == 5 && db1.timeouts.nopInTimeout == 10)
        #expect(db1.auth.mode == .mutualCHAP)
        #expect(db1.inherited.isEmpty)

        let backup = try #require(c.effectiveSettings(forTarget: "IQN.2026-01.COM.EXAMPLE:BACKUP"))
        #expect(backup.connection.headerDigest == [.none])
        #expect(backup.auth == .noAuth)                 // explicit "none" beats the CHAP default
        #expect(backup.allowedClients.isEmpty)          // explicit [] = everyone, not the default list
        #expect(backup.allowedServerAddresses.isEmpty)  // inherited (nothing set) = every portal
        #expect(backup.inherited == ["allowedServerAddresses"])
        #expect(c.effectiveSettings(forTarget: "iqn.2026-01.com.example:nope") == nil)
    }

    @Test func targetWithoutAuthInheritsDefaultAuthAndACL() throws {
        var c = try ConfigFile.decode(Fixture.exampleJSON).config
        c.targets[1].auth = nil
        c.targets[1].allowedClients = nil
        let e = c.effective(c.targets[1])
        #expect(e.auth.incomingUsers.map(\.user) == ["storage-admin"])
        #expect(e.allowsLogin(initiatorName: "iqn.x", address: "192.0.2.5"))
        #expect(!e.allowsLogin(initiatorName: "iqn.x", address: "192.0.2.66"))  // deny rule first
        #expect(!e.allowsLogin(initiatorName: "iqn.x", address: "198.51.100.1")) // no match: deny
        #expect(e.inherited == ["auth", "allowedClients", "allowedServerAddresses"])
    }

    @Test func serverAddressesAndAdvertisedPortals() throws {
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let db1 = c.effective(c.targets[0])
        #expect(db1.isExposed(onLocalAddress: "192.0.2.10"))
        #expect(db1.isExposed(onLocalAddress: "::ffff:192.0.2.10"))
        #expect(db1.isExposed(onLocalAddress: "2001:db8:10::10"))
        #expect(!db1.isExposed(onLocalAddress: "192.0.2.11"))
        let portals = [Portal("192.0.2.10:3260")!, Portal("192.0.2.11:3260")!, Portal("[::]:3260")!]
        #expect(db1.advertisedPortals(of: portals) == [portals[0], portals[2]])
        #expect(c.effective(c.targets[1]).advertisedPortals(of: portals) == portals)
    }
}

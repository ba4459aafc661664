import Foundation
import Testing
@testable import TargetConfig

@Suite struct DiffTests {
    let base = try! ConfigFile.decode(Fixture.exampleJSON).config
    let db1 = "iqn.2026-01.com.example:storage.db1"
    let backup = "iqn.2026-01.com.example:backup"

    @Test func identicalConfigsHaveNoChanges() {
        let d = ConfigDiff.between(base, base)
        #expect(d.isEmpty && d.changedTargets.isEmpty && d.requiredApplyMode == nil)
    }

    @Test func defaultsChangeReachesOnlyInheritingTargets() {
        var new = base
        new.defaults.connection?.maxRecvDataSegmentLength = 131_072   // both inherit this
        new.defaults.connection?.headerDigest = [.crc32c]            // db1 overrides: only backup changes
        let effects = ConfigChange.effects(from: base, to: new).map(\.description)
        #expect(effects == [
            "global: defaults - -> connection changed [new-logins]",
            "target \(db1): connection.maxRecvDataSegmentLength 262144 -> 131072 [new-logins]",
            "target \(backup): connection.maxRecvDataSegmentLength 262144 -> 131072 [new-logins]",
            "target \(backup): connection.headerDigest None -> CRC32C [new-logins]",
        ])
    }

    /// A change to the defaults that no target inherits now is still a change (saved, shown).
    @Test func defaultsChangeNoTargetInheritsIsAChangeOfItsOwn() {
        var old = base
        for i in old.targets.indices { old.targets[i].auth = AuthSettings(mode: .none) }
        var new = old
        new.defaults.auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "g", secret: "globalsecret12")])
        let effects = ConfigChange.effects(from: old, to: new).map(\.description)
        #expect(effects == ["global: defaults - -> auth changed [new-logins]"])
        #expect(!effects.joined().contains("globalsecret12"))
    }

    @Test func lunChangesAndApplyModes() throws {
        var new = base
        new.targets[0].luns[1].writeCache = .writeThrough
        new.targets[0].luns[0].path = "/dev/vg1/db1"
        try new.addLUN(toTarget: db1, backstore: .sparse, path: "/srv/iscsi/db1-extra.img", size: 1 << 30)
        new.targets[1].luns.removeAll()
        let d = ConfigDiff.between(base, new)
        #expect(d.changedTargets.map(\.name) == [db1, backup])
        #expect(d.changedTargets[0].changedLUNs == [0, 1] && d.changedTargets[0].addedLUNs == [2])
        #expect(d.changedTargets[1].removedLUNs == [0])
        #expect(d.effects.map { "\($0.setting.rawValue)@\($0.lun!)=\($0.applyMode.rawValue)" } == [
            "lunBacking@0=target-restart",
            "lunWriteCache@1=applies-now",
            "lunAdded@2=applies-now",
            "lunRemoved@0=applies-now",
        ])
        #expect(d.targetsNeedingRestart == [db1])
        #expect(d.requiredApplyMode == .targetRestart)
    }

    @Test func authACLAndPortalsAreIsolatedPerTarget() {
        var new = base
        new.targets[1].auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "bk", secret: "backup-secret")])
        new.targets[1].allowedClients = [.allow(address: "192.0.2.0/24")]
        new.portals.append(Portal("192.0.2.10:3261")!)
        new.discoveryAuth = .noAuth
        let d = ConfigDiff.between(base, new)
        #expect(d.portalsChanged && d.discoveryAuthChanged)
        #expect(d.changedTargets.count == 1)
        let t = d.changedTargets[0]
        #expect(t.name == backup && t.authChanged && t.allowedClientsChanged && !t.connectionChanged && t.changedLUNs.isEmpty)
        #expect(d.effects.map(\.description) == [
            "global: portals 0.0.0.0:3260,[::]:3260 -> 0.0.0.0:3260,[::]:3260,192.0.2.10:3261 [applies-now]",
            "global: discoveryAuth chap users=discovery -> none [new-logins]",
            "target \(backup): auth none -> chap users=bk [new-logins]",
            "target \(backup): allowedClients 0 rules -> 1 rules [new-logins]",
        ])
        // Secrets never appear in effects.
        #expect(!d.effects.map(\.description).joined().contains("backup-secret"))
        #expect(d.requiredApplyMode == .immediate || d.requiredApplyMode == .newLogins)
        #expect(d.requiredApplyMode == .newLogins)
    }

    @Test func targetsAddedRemovedAndRenamed() {
        var new = base
        new.targets[1].name = "iqn.2026-01.com.example:backup2"
        let d = ConfigDiff.between(base, new)
        #expect(d.removedTargets == [backup] && d.addedTargets == ["iqn.2026-01.com.example:backup2"])
        #expect(d.changedTargets.isEmpty)
        #expect(d.effects.map(\.applyMode) == [.immediate, .immediate])
        // Case-only rename is the same target.
        var same = base
        same.targets[1].name = backup.uppercased()
        #expect(ConfigDiff.between(base, same).addedTargets.isEmpty)
    }

    @Test func applyModeTableIsData() {
        let pairs = SettingKey.allCases.map { ($0.field, $0.applyMode) }
        let table = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        // Keys sharing a field (targetAdded/targetRemoved, lunAdded/lunRemoved) share a mode.
        #expect(pairs.allSatisfy { table[$0.0] == $0.1 })
        #expect(table["connection.maxBurstLength"] == .newLogins)
        #expect(table["luns"] == .immediate)
        #expect(table["serial/naaId"] == .targetRestart)
        #expect(table["allowedClients"] == .newLogins)
        #expect(table["timeouts.nopInInterval"] == .newLogins)
        #expect(table.count == SettingKey.allCases.count - 2)
        #expect(ApplyMode.immediate < .newLogins && .newLogins < .targetRestart)
    }
}

import Testing
import Backstores
import TCMU
import TargetConfig
@testable import LIORuntime

@Suite struct LIOExportBuilderTests {
    let iqn = "iqn.2025-01.org.example:disk1"
    let client = "iqn.1994-05.com.redhat:client1"

    func config(_ target: Target, portals: [Portal] = [Portal(address: "0.0.0.0", port: 3260)]) -> Config {
        Config(portals: portals, targets: [target])
    }

    func size(_: EffectiveTarget, _ lun: LUN) -> UInt64 { lun.size ?? 4096 * 512 }

    @Test func aclTargetWithMutualCHAPBecomesUserBackstoresTPGAndACL() throws {
        var t = Target(name: iqn, luns: [
            LUN(id: 0, backstore: .file, path: "/srv/a.img", size: 1 << 30, writeCache: .writeBack,
                serial: "SER0", naaId: "60014050000000000000000000000a01"),
            LUN(id: 3, backstore: .sparse, path: "/srv/b.img", size: 1 << 20, blockSize: 4096, readOnly: true,
                serial: "has;semicolon", naaId: "6001405000000000000000000000000b"),
        ])
        t.auth = AuthSettings(mode: .mutualCHAP, incomingUsers: [CHAPCredential(user: "u1", secret: "secret-one-12")],
                              outgoingUser: CHAPCredential(user: "tgt", secret: "secret-two-12"))
        t.allowedClients = [.allow(initiator: client), .deny()]
        t.connection = ConnectionSettings(maxRecvDataSegmentLength: 262_144, headerDigest: [.crc32c, .none])
        t.timeouts = TimeoutSettings(nopInInterval: 5, nopInTimeout: 90, loginTimeout: 20)
        let export = try LIOExportBuilder.build(config(t), deviceSize: size)
        let spec = export.spec

        let b0 = LIOExportBuilder.backstoreName(target: iqn, lun: 0)
        let b3 = LIOExportBuilder.backstoreName(target: iqn, lun: 3)
        #expect(b0.hasPrefix("st-") && b0.hasSuffix("-lun0") && b0.count == 24)
        #expect(LIOExportBuilder.backstoreName(target: iqn.uppercased(), lun: 0) == b0)
        #expect(spec.backstores == [
            .init(hba: 7, name: b0, cfgstring: "file:/srv/a.img;serial=SER0;naa=0000000000000a01", size: 1 << 30, blockSize: 512, maxSectors: 2048, writeCache: true),
            .init(hba: 7, name: b3, cfgstring: "sparse:/srv/b.img;ro;naa=000000000000000b", size: 1 << 20, blockSize: 4096, maxSectors: 2048, writeCache: false),
        ])
        let target = try #require(spec.targets.first)
        #expect(target.iqn == iqn && target.tpgTag == 1)
        #expect(target.luns == [.init(number: 0, backstore: b0), .init(number: 3, backstore: b3)])
        #expect(target.portals == ["0.0.0.0:3260"])
        #expect(target.acls == [.init(initiator: client, chap: .init(userid: "u1", password: "secret-one-12",
                                                                     mutualUserid: "tgt", mutualPassword: "secret-two-12"))])
        #expect(target.demoModeCHAP == nil)
        #expect(target.parameters["MaxRecvDataSegmentLength"] == "262144")
        #expect(target.parameters["HeaderDigest"] == "CRC32C,None")
        #expect(target.parameters["DataDigest"] == "None")
        #expect(target.parameters["InitialR2T"] == "Yes")
        #expect(target.attributes == ["login_timeout": "20"])
        #expect(target.aclAttributes == ["nopin_timeout": "5", "nopin_response_timeout": "60"])
        #expect(export.warnings == ["target \(iqn): timeouts.nopInTimeout 90 is outside LIO's 3…60; using 60"])

        // The plan LIO gets: ACL mode, CHAP in the ACL, timeouts on the ACL.
        let steps = try ConfigfsPlan.create(spec).map(\.description)
        let acl = "iscsi/\(iqn)/tpgt_1/acls/\(client)"
        #expect(steps.contains("echo '0' > iscsi/\(iqn)/tpgt_1/attrib/generate_node_acls"))
        #expect(steps.contains("echo 'tgt' > \(acl)/auth/userid_mutual"))
        #expect(steps.contains("echo '5' > \(acl)/attrib/nopin_timeout"))
        #expect(steps.contains("echo '262144' > iscsi/\(iqn)/tpgt_1/param/MaxRecvDataSegmentLength"))
    }

    @Test func rbdSettingsTravelInTheControlString() throws {
        let t = Target(name: iqn, luns: [
            LUN(id: 0, backstore: .rbd, path: "rbd/disk1", size: 1 << 30, serial: "S1", naaId: "60014050000000000000000000000c01",
                options: ["id": "gw", "conf": "/etc/ceph/ceph.conf", "keyring": "/etc/ceph/gw.keyring"]),
        ])
        let spec = try LIOExportBuilder.build(config(t), deviceSize: size).spec
        let cfg = try #require(spec.backstores.first?.cfgstring)
        #expect(spec.backstores.first?.commandTimeout == 60)
        #expect(try ConfigfsPlan.create(spec).map(\.description).contains(
            "echo '60' > core/user_7/\(LIOExportBuilder.backstoreName(target: iqn, lun: 0))/attrib/cmd_time_out"))
        #expect(cfg == "rbd:rbd/disk1;conf=/etc/ceph/ceph.conf;id=gw;keyring=/etc/ceph/gw.keyring;serial=S1;naa=0000000000000c01")
        // What the handler makes of it: the same store the embedded target would open.
        var expected = BackstoreSpec(kind: .rbd, path: "rbd/disk1")
        expected.options = ["id": "gw", "conf": "/etc/ceph/ceph.conf", "keyring": "/etc/ceph/gw.keyring"]
        #expect(try TCMUConfigString.backstoreSpec(cfg) == expected)

        let bad = Target(name: iqn, luns: [LUN(id: 0, backstore: .rbd, path: "rbd/disk1", size: 1 << 30,
                                               options: ["conf": "/etc/ceph/a;b.conf"])])
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(bad), deviceSize: size) }
        let shared = Target(name: iqn, luns: [LUN(id: 0, backstore: .rbd, path: "rbd/disk1", size: 1 << 30,
                                                  options: ["shared": "yes"])])
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(shared), deviceSize: size) }
    }

    @Test func emptyRulesAreDemoModeWithTPGCHAP() throws {
        var t = Target(name: iqn, luns: [LUN(id: 0, backstore: .file, path: "/srv/a.img")])
        t.auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "u", secret: "secret-one-12")])
        let spec = try LIOExportBuilder.build(config(t), deviceSize: size).spec
        #expect(spec.backstores.first?.size == 4096 * 512)
        #expect(spec.targets.first?.acls == [])
        #expect(spec.targets.first?.demoModeCHAP == .init(userid: "u", password: "secret-one-12"))
        #expect(spec.targets.first?.aclAttributes == [:])
    }

    @Test func allowedServerAddressesNarrowAWildcardPortal() throws {
        var t = Target(name: iqn, luns: [])
        t.allowedServerAddresses = [IPNetwork("127.0.0.1")!, IPNetwork("::1")!]
        let portals = [Portal(address: "0.0.0.0", port: 3260), Portal(address: "10.1.1.1", port: 3261)]
        #expect(try LIOExportBuilder.build(config(t, portals: portals), deviceSize: size).spec.targets.first?.portals
                == ["127.0.0.1:3260", "[::1]:3260"])
        t.allowedServerAddresses = [IPNetwork("10.1.0.0/16")!]
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(t, portals: portals), deviceSize: size) }
        #expect(try LIOExportBuilder.build(config(t, portals: [portals[1]]), deviceSize: size).spec.targets.first?.portals
                == ["10.1.1.1:3261"])
    }

    @Test func anIPv6WildcardPortalCoversIPv4() throws {
        let t = Target(name: iqn, luns: [])
        let portals = [Portal(address: "0.0.0.0", port: 3260), Portal(address: "::", port: 3260), Portal(address: "0.0.0.0", port: 3261)]
        #expect(try LIOExportBuilder.build(config(t, portals: portals), deviceSize: size).spec.targets.first?.portals
                == ["[::]:3260", "0.0.0.0:3261"])
    }

    /// Rules LIO cannot enforce are refused, never widened into "allow everyone".
    @Test func rulesLIOCannotEnforceAreRefused() {
        let cases: [[AccessRule]] = [
            [.allow(address: "10.0.0.0/8")],
            [.allow(initiator: "iqn.1994-05.com.redhat:*")],
            [AccessRule(.allow, initiatorRegex: "^iqn\\..*")],
            [.deny(initiator: client), .allow()],
            [.deny()],
        ]
        for rules in cases {
            var t = Target(name: iqn, luns: [])
            t.allowedClients = rules
            #expect(throws: LIOExportError.self, "\(rules)") { try LIOExportBuilder.build(config(t), deviceSize: size) }
        }
        var t = Target(name: iqn, luns: [])
        t.auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "a", secret: "secret-one-12"),
                                                           CHAPCredential(user: "b", secret: "secret-two-12")])
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(t), deviceSize: size) }
        t = Target(name: iqn, luns: [LUN(id: 0, backstore: .file, path: "/srv/a,b.img")])
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(t), deviceSize: size) }
        t = Target(name: iqn, luns: [LUN(id: 0, backstore: .file, path: "/srv/" + String(repeating: "d", count: 220) + ".img")])
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(config(t), deviceSize: size) }
    }

    @Test func sessionInfoFileIsParsed() {
        let info = """
            InitiatorName: iqn.1994-05.com.redhat:client1
            InitiatorAlias: host1
            LIO Session ID: 3   ISID: 0x00023d000001  TSIH: 7  SessionType: Normal
            Session State: TARG_SESS_STATE_LOGGED_IN
            ---------------------[iSCSI Session Values]-----------------------
            CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN
               Address 127.0.0.1 TCP  StatSN: 0x00000005
            """
        #expect(LIOSessions.parseInfo(info) == [.init(initiator: "iqn.1994-05.com.redhat:client1", tsih: 7,
                                                      isid: "00023d000001", remoteAddress: "127.0.0.1")])
        #expect(LIOSessions.parseInfo("No active iSCSI Session for Initiator Endpoint: iqn.x") == [])
    }
}

@Suite struct LIOLUNMapTests {
    let iqn = "iqn.2025-01.org.example:maps"

    func luns() -> [LUN] {
        (0...2).map { LUN(id: $0, backstore: .file, path: "/srv/m\($0).img", size: 1 << 20, serial: "M\($0)",
                          naaId: "6001405000000000000000000000000\($0)") }
    }

    @Test func mapsBecomeEachACLsMappedLUNs() throws {
        var t = Target(name: iqn, luns: luns())
        t.allowedClients = [.allow(initiator: "iqn.1994-05.com.redhat:web1"), .allow(initiator: "iqn.1994-05.com.redhat:db"),
                            .allow(initiator: "iqn.1994-05.com.redhat:other"), .deny()]
        t.lunMaps = [LUNMapping(initiators: ["iqn.1994-05.com.redhat:web*"], luns: [MappedLUN(mappedLun: 0, lun: 2, readOnly: true)]),
                     LUNMapping(initiators: ["*:db"], luns: [])]
        let acls = try LIOExportBuilder.build(Config(targets: [t]), deviceSize: { _, l in l.size! }).spec.targets[0].acls
        #expect(acls.map(\.initiator) == ["iqn.1994-05.com.redhat:web1", "iqn.1994-05.com.redhat:db", "iqn.1994-05.com.redhat:other"])
        #expect(acls[0].mappedLUNs == [.init(mapped: 0, tpgLUN: 2, readOnly: true)] && acls[0].explicitLUNs)
        #expect(acls[1].mappedLUNs.isEmpty && acls[1].explicitLUNs)      // mapped to nothing
        #expect(acls[2].mappedLUNs.isEmpty && !acls[2].explicitLUNs)     // no map: every LUN
        let steps = try ConfigfsPlan.create(LIOExportBuilder.build(Config(targets: [t]), deviceSize: { _, l in l.size! }).spec)
            .map(\.description)
        let tpg = "iscsi/\(iqn)/tpgt_1/acls"
        #expect(steps.contains("echo '1' > \(tpg)/iqn.1994-05.com.redhat:web1/lun_0/write_protect"))
        #expect(steps.contains("ln -s iscsi/\(iqn)/tpgt_1/lun/lun_2 \(tpg)/iqn.1994-05.com.redhat:web1/lun_0/lun_2"))
        #expect(!steps.contains { $0.contains("\(tpg)/iqn.1994-05.com.redhat:db/lun_") })
        #expect(steps.contains("mkdir \(tpg)/iqn.1994-05.com.redhat:other/lun_1"))
    }

    @Test func mapsWithoutNamedInitiatorsAreRefused() {
        var t = Target(name: iqn, luns: luns())
        t.lunMaps = [LUNMapping(initiators: ["*"], luns: [MappedLUN(mappedLun: 0, lun: 1)])]
        #expect(throws: LIOExportError.self) { try LIOExportBuilder.build(Config(targets: [t]), deviceSize: { _, l in l.size! }) }
    }
}

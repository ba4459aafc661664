import Foundation
import Testing
@testable import TargetConfig

private func config(_ targets: [Target], defaults: GlobalDefaults = GlobalDefaults()) -> Config {
    Config(defaults: defaults, targets: targets)
}

private func target(_ name: String = "iqn.2026-01.com.example:a", luns: [LUN]? = nil, auth: AuthSettings? = nil,
                    connection: ConnectionSettings? = nil) -> Target {
    Target(name: name, luns: luns ?? [Fixture.lun(0, "/srv/\(name.suffix(1)).img", serial: "S-\(name.suffix(6))")],
           auth: auth, connection: connection)
}

private func messages(_ c: Config, _ severity: Severity = .error) -> [String] {
    c.validate().filter { $0.severity == severity }.map(\.description)
}

@Suite struct ValidationTests {
    @Test(arguments: [
        ("iqn.2026-01.com.example:storage.disk1", nil),
        ("iqn.1991-05.com.microsoft:host-01", nil),
        ("iqn.2026-01.com.example", nil),
        ("eui.02004567A425678D", nil),
        ("naa.52004567BA64678D", nil),
        ("naa.62004567BA64678D0123456789ABCDEF", nil),
        ("iqn.2026-13.com.example:x", "needs a date yyyy-mm after iqn. (e.g. iqn.2026-01.com.example)"),
        ("iqn.26-01.com.example:x", "needs a date yyyy-mm after iqn. (e.g. iqn.2026-01.com.example)"),
        ("iqn.2026-01:x", "needs a reversed domain name after the date (e.g. iqn.2026-01.com.example)"),
        ("iqn.2026-01.com..example", "needs a reversed domain name after the date (e.g. iqn.2026-01.com.example)"),
        ("iqn.2026-01.com.Example:x", "invalid character 'E' (iqn names use lower-case letters, digits, '.', '-' and ':')"),
        ("iqn.2026-01.com.example:a b", "invalid character ' ' (iqn names use lower-case letters, digits, '.', '-' and ':')"),
        ("eui.0200", "eui. names need exactly 16 hex digits"),
        ("naa.XYZ4567BA64678D", "naa. names need 16 or 32 hex digits"),
        ("target1", "must start with iqn., eui. or naa. (e.g. iqn.2026-01.com.example:storage)"),
    ] as [(String, String?)])
    func iscsiNames(name: String, problem: String?) {
        #expect(ISCSIName.problem(name) == problem)
    }

    @Test func iqnLengthLimit() {
        let long = "iqn.2026-01.com.example:" + String(repeating: "a", count: 200)
        #expect(ISCSIName.problem(long) == "is longer than 223 bytes")
    }

    @Test func invalidTargetNameMessageNamesTheField() {
        let c = config([target("iqn.2026-01.com.example:a"), target("iqn.2026-1.com.example:b")])
        #expect(messages(c) == [
            "targets[1].name: \"iqn.2026-1.com.example:b\" is not a valid iSCSI name: needs a date yyyy-mm after iqn. (e.g. iqn.2026-01.com.example)",
        ])
    }

    @Test func duplicatesAcrossTargetsAndLUNs() {
        var a = target("iqn.2026-01.com.example:a")
        a.luns.append(LUN(id: 0, backstore: .file, path: "/srv/a.img", serial: "S-dup", naaId: a.luns[0].naaId))
        let b = target("eui.02004567A425678D")
        let b2 = target("eui.02004567a425678d")
        #expect(messages(config([a, b, b2])) == [
            "targets[0].luns[1].id: duplicate LUN 0 in this target",
            "targets[0].luns[1].path: /srv/a.img is already used by targets[0].luns[0]",
            "targets[0].luns[1].naaId: NAA id \(a.luns[0].naaId) is already used by targets[0].luns[0]",
            "targets[2].name: duplicate target name eui.02004567a425678d (also targets[1])",
        ])
    }

    @Test func lunFieldChecks() {
        let luns = [
            LUN(id: 0, backstore: .raw, path: "/dev/sdb", size: 1 << 30, serial: "S1"),
            LUN(id: 1, backstore: .sparse, path: "/srv/x.img", size: 1000, serial: "S2"),
            LUN(id: 16384, backstore: .file, path: "/srv/y.img", blockSize: 520, serial: "has space"),
            LUN(id: 3, backstore: .file, path: "/srv/z.img", serial: "S4", naaId: "7123456789abcdef"),
        ]
        #expect(messages(config([target(luns: luns)])) == [
            "targets[0].luns[0].size: not allowed for raw devices (the device's own size is used)",
            "targets[0].luns[1].size: 1000 is not a multiple of the block size 512",
            "targets[0].luns[2].id: LUN 16384 is out of range 0...16383",
            "targets[0].luns[2].blockSize: 520 is not one of 512, 1024, 2048, 4096",
            "targets[0].luns[2].serial: must be 1...32 printable ASCII characters without spaces",
            "targets[0].luns[3].naaId: NAA type 7 does not fit 16 hex digits (use 2, 3 or 5 with 16 digits, 6 with 32)",
        ])
    }

    @Test func lunZeroAndEmptyTargetWarnings() {
        let c = config([
            target("iqn.2026-01.com.example:a", luns: []),
            target("iqn.2026-01.com.example:b", luns: [Fixture.lun(1, "/srv/b1.img", serial: "B1")]),
        ])
        #expect(messages(c, .warning) == [
            "warning: targets[0].luns: target has no LUNs",
            "warning: targets[1].luns: no LUN 0; many initiators only scan a target that has LUN 0",
        ])
        #expect(messages(c).isEmpty)
    }

    @Test func chapSecretLengths() {
        let long = String(repeating: "x", count: 256)
        let auth = AuthSettings(mode: .chap, incomingUsers: [
            CHAPCredential(user: "empty", secret: ""),
            CHAPCredential(user: "short", secret: "elevenbytes"),
            CHAPCredential(user: "ok", secret: "twelve-bytes"),
            CHAPCredential(user: "windows-unfriendly", secret: "seventeen-bytes!!"),
            CHAPCredential(user: "huge", secret: long),
        ])
        let c = config([target(auth: auth)])
        #expect(messages(c) == [
            "targets[0].auth.incomingUsers[0].secret: must be 1...255 bytes (is 0)",
            "targets[0].auth.incomingUsers[4].secret: must be 1...255 bytes (is 256)",
        ])
        #expect(messages(c, .warning) == [
            "warning: targets[0].auth.incomingUsers[1].secret: is 11 bytes; Microsoft's initiator requires 12...16 bytes and short secrets are weak",
            "warning: targets[0].auth.incomingUsers[3].secret: is 17 bytes; Microsoft's initiator accepts only 12...16 bytes",
        ])
    }

    @Test func authModeConsistencyAndMutualSecret() {
        let same = CHAPCredential(user: "in", secret: "same-secret-1")
        let cases: [(AuthSettings, [String])] = [
            (AuthSettings(mode: .chap), ["defaults.auth.incomingUsers: at least one user is required when mode is \"chap\""]),
            (AuthSettings(mode: .mutualCHAP, incomingUsers: [same]),
             ["defaults.auth.outgoingUser: required when mode is \"mutual-chap\""]),
            (AuthSettings(mode: .none, incomingUsers: [same]), ["defaults.auth.incomingUsers: not allowed when mode is \"none\""]),
            (AuthSettings(mode: .chap, incomingUsers: [same], outgoingUser: CHAPCredential(user: "t", secret: "other-secret1")),
             ["defaults.auth.outgoingUser: only allowed when mode is \"mutual-chap\""]),
            (AuthSettings(mode: .mutualCHAP, incomingUsers: [same], outgoingUser: CHAPCredential(user: "t", secret: "same-secret-1")),
             ["defaults.auth.outgoingUser.secret: must differ from every incoming secret (mutual CHAP)"]),
            (AuthSettings(mode: .chap, incomingUsers: [same, CHAPCredential(user: "in", secret: "x-secret-0002")]),
             ["defaults.auth.incomingUsers[1].user: duplicate user in"]),
            (AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "a b", secret: "x-secret-0002")]),
             ["defaults.auth.incomingUsers[0].user: must not contain whitespace"]),
        ]
        for (auth, expected) in cases {
            #expect(messages(config([target()], defaults: GlobalDefaults(auth: auth))) == expected)
        }
    }

    @Test func connectionRangesFromRFC7143() {
        let bad = ConnectionSettings(
            maxSessions: -1, maxConnections: 0, maxRecvDataSegmentLength: 511, maxXmitDataSegmentLength: 16_777_216,
            maxBurstLength: 512, firstBurstLength: 1024, maxOutstandingR2T: 0, defaultTime2Wait: 3601,
            defaultTime2Retain: -1, headerDigest: [], dataDigest: [.crc32c, .crc32c])
        #expect(messages(config([target(connection: bad)])) == [
            "targets[0].connection.maxSessions: -1 is out of range 0...65535",
            "targets[0].connection.maxConnections: 0 is out of range 1...65535",
            "targets[0].connection.maxRecvDataSegmentLength: 511 is out of range 512...16777215",
            "targets[0].connection.maxXmitDataSegmentLength: 16777216 is out of range 512...16777215",
            "targets[0].connection.maxOutstandingR2T: 0 is out of range 1...65535",
            "targets[0].connection.defaultTime2Wait: 3601 is out of range 0...3600",
            "targets[0].connection.defaultTime2Retain: -1 is out of range 0...3600",
            "targets[0].connection.headerDigest: must list at least one of \"CRC32C\", \"None\"",
            "targets[0].connection.dataDigest: lists a digest twice",
            "targets[0].connection.firstBurstLength: firstBurstLength 1024 must not exceed maxBurstLength 512",
        ])
    }

    @Test func firstBurstCheckedAfterInheritance() {
        // The defaults lower maxBurstLength; a target raises firstBurstLength above it.
        let c = config([target(connection: ConnectionSettings(firstBurstLength: 131_072))],
                       defaults: GlobalDefaults(connection: ConnectionSettings(maxBurstLength: 65_536, firstBurstLength: 65_536)))
        #expect(messages(c) == [
            "targets[0].connection.firstBurstLength: firstBurstLength 131072 must not exceed maxBurstLength 65536",
        ])
        // And the defaults alone are checked too.
        let d = config([target()], defaults: GlobalDefaults(connection: ConnectionSettings(maxBurstLength: 32_768)))
        #expect(messages(d) == [
            "defaults.connection.maxBurstLength: firstBurstLength 65536 must not exceed maxBurstLength 32768",
        ])
    }

    @Test func timeoutsAndPortals() {
        var c = config([target()])
        c.defaults.timeouts = TimeoutSettings(nopInInterval: -1, nopInTimeout: 0, loginTimeout: 4000)
        c.portals = [Portal(address: "10.0.0.1", port: 3260), Portal(address: "10.0.0.1", port: 3260), Portal(address: "x", port: 70000)]
        #expect(messages(c) == [
            "portals[1]: duplicate portal 10.0.0.1:3260",
            "portals[2]: port 70000 is out of range 1...65535",
            "portals[2]: \"x\" is not an IP address",
            "defaults.timeouts.nopInInterval: -1 is out of range 0...3600",
            "defaults.timeouts.nopInTimeout: 0 is out of range 1...3600",
            "defaults.timeouts.loginTimeout: 4000 is out of range 1...3600",
        ])
        c.portals = []
        c.defaults.timeouts = nil
        #expect(messages(c) == ["portals: at least one portal is required"])
    }

    @Test func accessRuleChecks() {
        var c = config([target()])
        c.targets[0].allowedClients = [
            AccessRule(.allow, initiator: "iqn.*", initiatorRegex: "iqn.*"),
            AccessRule(.allow, initiatorRegex: "iqn.(unclosed"),
            AccessRule(.allow),
            AccessRule(.deny, address: IPNetwork("10.1.2.3/8")),
        ]
        c.targets[0].allowedServerAddresses = [IPNetwork("10.9.0.0/16")!]
        c.portals = [Portal(address: "192.0.2.1", port: 3260)]
        #expect(messages(c) == [
            "targets[0].allowedClients[0]: use either initiator (glob) or initiatorRegex, not both",
            "targets[0].allowedClients[1].initiatorRegex: invalid regular expression \"iqn.(unclosed\"",
        ])
        #expect(messages(c, .warning) == [
            "warning: targets[0].allowedClients[2]: matches every client, so the rules after it are never used",
            "warning: targets[0].allowedClients[3].address: 10.1.2.3/8 has host bits set beyond /8; did you mean the network address?",
            "warning: targets[0].allowedServerAddresses: no portal address is inside these networks, so the target is unreachable",
        ])
    }

    @Test func addLUNGeneratesStableIdentityOnce() throws {
        var c = config([Target(name: "iqn.2026-01.com.example:a")])
        let l0 = try c.addLUN(toTarget: "iqn.2026-01.com.example:a", backstore: .sparse, path: "/srv/a0.img", size: 1 << 30)
        let l1 = try c.addLUN(toTarget: "IQN.2026-01.com.example:A", backstore: .sparse, path: "/srv/a1.img", size: 1 << 30)
        #expect(l0.id == 0 && l1.id == 1)
        #expect(l0.serial.count == 16 && l0.serial != l1.serial)
        #expect(l0.naaId.count == 32 && l0.naaId.hasPrefix("6") && l0.naaId != l1.naaId)
        #expect(ConfigValidator.validate(c).filter { $0.severity == .error }.isEmpty)
        // The identity survives a save/load cycle unchanged.
        let again = try ConfigFile.decode(try ConfigFile.encode(c)).config
        #expect(again.targets[0].luns == c.targets[0].luns)
        #expect(throws: ConfigError.self) {
            try c.addLUN(toTarget: "iqn.2026-01.com.example:a", id: 1, backstore: .file, path: "/srv/x.img")
        }
    }
}

@Suite struct LimitSettingsTests {
    @Test func fileFieldsDecodeAndUnknownOnesAreErrors() throws {
        let text = #"{"version": 1, "limits": {"chapFreeFailures": 5, "chapDelaySeconds": 0.5, "maxBufferedWriteMB": 16}}"#
        let loaded = try ConfigFile.decode(Data(text.utf8), fileName: "c.json")
        #expect(loaded.config.limits == LimitSettings(chapFreeFailures: 5, chapDelaySeconds: 0.5, maxBufferedWriteMB: 16))
        #expect(loaded.config.limits?.resolved.chapMaxDelaySeconds == 30)
        #expect(throws: ConfigError.self) {
            try ConfigFile.decode(Data(#"{"version": 1, "limits": {"chapDelay": 2}}"#.utf8), fileName: "c.json")
        }
    }

    @Test(arguments: [
        (LimitSettings(chapFreeFailures: -1), "limits.chapFreeFailures: must be 0 or more"),
        (LimitSettings(chapDelaySeconds: 0), "limits.chapDelaySeconds: must be above 0 and at most 3600"),
        (LimitSettings(chapDelaySeconds: 40), "limits.chapMaxDelaySeconds: 30.0 is below chapDelaySeconds 40.0"),
        (LimitSettings(maxLoginsPerAddress: 0), "limits.maxLoginsPerAddress: must be 1 or more"),
        (LimitSettings(maxLogins: 16), "limits.maxLogins: 16 is below maxLoginsPerAddress 32"),
        (LimitSettings(maxBufferedWriteMB: 0), "limits.maxBufferedWriteMB: must be 1…65536"),
        (LimitSettings(failedLoginLogLines: 0), "limits.failedLoginLogLines: must be 1 or more"),
    ] as [(LimitSettings, String)])
    func invalidValuesNameTheirField(_ limits: LimitSettings, _ message: String) {
        let errors = Config(limits: limits).validate().filter { $0.severity == .error }.map(\.description)
        #expect(errors.contains { $0.hasSuffix(message) }, "\(errors)")
    }

    @Test func aChangeIsOneGlobalEffectForNewLogins() {
        let old = Config(limits: nil)
        var new = old
        new.limits = LimitSettings(chapFreeFailures: 1)
        let diff = ConfigDiff.between(old, new)
        #expect(diff.limitsChanged)
        #expect(diff.effects.map(\.description) == ["global: limits defaults -> chapFreeFailures=1 [new-logins]"])
        #expect(ConfigDiff.between(old, Config(limits: LimitSettings())).isEmpty)  // {} is the defaults
    }
}

@Suite struct LUNMapValidationTests {
    @Test func problemsOfLUNMapsAreNamedWithTheirPath() {
        var t = target(luns: [Fixture.lun(0, "/srv/m0.img", serial: "M0"), Fixture.lun(4, "/srv/m4.img", serial: "M4")])
        t.lunMaps = [
            LUNMapping(initiators: [], luns: [MappedLUN(mappedLun: 0, lun: 0)]),
            LUNMapping(initiators: ["iqn.x:[ab]", "a b"], luns: [MappedLUN(mappedLun: 0, lun: 7), MappedLUN(mappedLun: 0, lun: 4),
                                                                MappedLUN(mappedLun: 20000, lun: 0)]),
        ]
        let errors = messages(config([t]))
        #expect(errors.contains { $0.contains("targets[0].lunMaps[0].initiators") && $0.contains("name at least one initiator") })
        #expect(errors.contains { $0.contains("targets[0].lunMaps[1].initiators[0]") && $0.contains("brackets") })
        #expect(errors.contains { $0.contains("targets[0].lunMaps[1].initiators[1]") })
        #expect(errors.contains { $0.contains("targets[0].lunMaps[1].luns[0].lun") && $0.contains("the target has no LUN 7") })
        #expect(errors.contains { $0.contains("targets[0].lunMaps[1].luns[1].mappedLun") && $0.contains("appears twice") })
        #expect(errors.contains { $0.contains("targets[0].lunMaps[1].luns[2].mappedLun") && $0.contains("out of range") })
    }

    @Test func aValidMapHasNoErrorsAndWarnsOfUnreachableMaps() {
        var t = target(luns: [Fixture.lun(0, "/srv/m0.img", serial: "M0"), Fixture.lun(4, "/srv/m4.img", serial: "M4")])
        t.lunMaps = [LUNMapping(initiators: ["*"], luns: [MappedLUN(mappedLun: 0, lun: 4, readOnly: true)]),
                     LUNMapping(initiators: ["iqn.x:y"], luns: [MappedLUN(mappedLun: 1, lun: 0)])]
        #expect(messages(config([t])).isEmpty)
        let warnings = messages(config([t]), .warning)
        #expect(warnings.contains { $0.contains("lunMaps[0]") && $0.contains("never used") })
        #expect(warnings.contains { $0.contains("lunMaps[1].luns") && $0.contains("no mapped LUN 0") })
    }

    @Test func lunMapsRoundTripThroughTheFileFormat() throws {
        var t = target()
        t.lunMaps = [LUNMapping(initiators: ["iqn.1994-05.com.redhat:*"], luns: [MappedLUN(mappedLun: 0, lun: 0, readOnly: true)],
                                comment: "web servers")]
        let c = config([t])
        let decoded = try ConfigFile.decode(try ConfigFile.encode(c)).config
        #expect(decoded.targets[0].lunMaps == t.lunMaps)
        let diff = ConfigDiff.between(c, decoded)
        #expect(diff.isEmpty)
        var changed = decoded
        changed.targets[0].lunMaps = nil
        #expect(ConfigDiff.between(c, changed).effects.map(\.setting) == [.lunMaps])
        #expect(SettingKey.lunMaps.applyMode == .immediate)
    }
}

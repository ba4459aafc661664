import Foundation
import Testing
@testable import TargetConfig

/// Modelled on IET's sample ietd.conf layout (global section, then Target stanzas with
/// IncomingUser/OutgoingUser, Lun lines with Path/Type/IOMode/ScsiId/ScsiSN, session keys)
/// as a Webmin-managed storage host would have it after some hand edits.
let storageHostIetd = """
# iSCSI Enterprise Target configuration for storage01
#
# Everything before the first Target is global.
iSNSServer 192.0.2.250
iSNSAccessControl No

# Discovery accounts
IncomingUser discover discoverpass1
OutgoingUser

MaxSessions 4
InitialR2T No
ImmediateData Yes
MaxRecvDataSegmentLength 65536
NOPInterval 10
NOPTimeout 20

Target iqn.2009-07.net.example.storage01:vm.images
\tIncomingUser esx01 esx01-secret-12
\tIncomingUser esx02 esx02-secret-12
\tOutgoingUser storage01 storage01-out!
\tLun 0 Path=/dev/vg_iscsi/vmimages,Type=blockio,ScsiId=vmimg0001,ScsiSN=VMIMG0001
\tLun 1 Path=/srv/iet/vm-swap.img,Type=fileio,IOMode=wb,BlockSize=4096,ScsiSN=VMSWAP01
\tAlias vm-images
\tHeaderDigest CRC32C,None
\tDataDigest None
\tMaxConnections 1
\tMaxBurstLength 1048576
\tFirstBurstLength 262144
\tWthreads 16
\tQueuedCommands 64

Target iqn.2009-07.net.example.storage01:scratch
\t# a RAM disk for tests
\tLun 0 Sectors=2097152,Type=nullio
\tLun 1 Path=/srv/iet/iso-library.img,Type=fileio,IOMode=ro,ScsiSN=ISO0001
\tLun 2 Path=/dev/sdc,Type=fileio,ScsiSN=SDC0002
\tDataPDUInOrder No
\tOFMarker Yes
\tFancyNewKey 7
\tInitialR2T yes

Target iqn.2009-07.net.example.storage01:legacy
\tLun 0 Path=/srv/iet/legacy.img,Type=fileio,\\
\t      ScsiSN=LEG0000
\tNOPInterval 0
"""

let storageHostInitiatorsAllow = """
# Allowed client addresses
iqn.2009-07.net.example.storage01:vm.images 192.0.2.0/24, [2001:db8:42::]/48, iqn\\.1998-01\\.com\\.vmware:esx0[12]-.*
iqn.2009-07.net.example.storage01:scratch ALL
iqn.2009-07.net.example.storage01:oldname 10.0.0.1
ALL 192.0.2.50
iqn.2009-07.net.example.storage01:legacy 10.9.9.9
"""

let storageHostTargetsAllow = """
iqn.2009-07.net.example.storage01:vm.images 192.0.2.10, [2001:db8:42::10]
ALL 192.0.2.0/24
"""

@Suite struct IETImportTests {
    let result = IETImporter.importConfig(
        ietdConf: storageHostIetd, initiatorsAllow: storageHostInitiatorsAllow, targetsAllow: storageHostTargetsAllow,
        portals: [Portal("192.0.2.10:3260")!])

    @Test func targetsLUNsAndAuth() throws {
        let c = result.config
        #expect(c.targets.map(\.name) == [
            "iqn.2009-07.net.example.storage01:vm.images",
            "iqn.2009-07.net.example.storage01:scratch",
            "iqn.2009-07.net.example.storage01:legacy",
        ])
        let vm = c.targets[0]
        #expect(vm.alias == "vm-images")
        #expect(vm.luns.map(\.id) == [0, 1])
        #expect(vm.luns[0].backstore == .raw && vm.luns[0].path == "/dev/vg_iscsi/vmimages" && vm.luns[0].serial == "VMIMG0001")
        #expect(vm.luns[0].writeCache == .writeThrough && !vm.luns[0].readOnly)
        #expect(vm.luns[1].backstore == .file && vm.luns[1].writeCache == .writeBack && vm.luns[1].blockSize == 4096)
        #expect(vm.auth == AuthSettings(mode: .mutualCHAP,
                                        incomingUsers: [CHAPCredential(user: "esx01", secret: "esx01-secret-12"),
                                                        CHAPCredential(user: "esx02", secret: "esx02-secret-12")],
                                        outgoingUser: CHAPCredential(user: "storage01", secret: "storage01-out!")))
        #expect(vm.connection == ConnectionSettings(maxConnections: 1, maxBurstLength: 1_048_576, firstBurstLength: 262_144,
                                                    headerDigest: [.crc32c, .none], dataDigest: [.none]))

        let scratch = c.targets[1]
        #expect(scratch.luns.map(\.id) == [1, 2])  // nullio LUN 0 dropped
        #expect(scratch.luns[0].readOnly && scratch.luns[0].serial == "ISO0001")
        #expect(scratch.luns[1].backstore == .raw)  // fileio on a device node
        #expect(scratch.auth == .noAuth)            // no IncomingUser: IET does not authenticate
        #expect(scratch.connection == nil)          // "InitialR2T yes" rejected (Yes/No are case-sensitive)

        let legacy = c.targets[2]
        #expect(legacy.luns.map(\.serial) == ["LEG0000"])  // continuation line joined
        #expect(legacy.timeouts == TimeoutSettings(nopInInterval: 0))
    }

    @Test func globalSectionMapsToDiscoveryAndDefaults() {
        let c = result.config
        #expect(c.discoveryAuth == AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "discover", secret: "discoverpass1")]))
        #expect(c.defaults.auth == nil)
        #expect(c.defaults.connection == ConnectionSettings(maxSessions: 4, initialR2T: false, immediateData: true,
                                                            maxRecvDataSegmentLength: 65536))
        #expect(c.defaults.timeouts == TimeoutSettings(nopInInterval: 10, nopInTimeout: 20))
        #expect(c.portals == [Portal(address: "192.0.2.10", port: 3260)])
        let legacy = c.effective(c.targets[2])
        #expect(legacy.timeouts.nopInInterval == 0 && legacy.timeouts.nopInTimeout == 20)
        #expect(legacy.connection.maxSessions == 4)
    }

    @Test func allowFilesFirstMatchingLineDecides() throws {
        let c = result.config
        let vm = c.effective(c.targets[0])
        #expect(vm.allowedClients == [
            AccessRule(.allow, address: IPNetwork("192.0.2.0/24")),
            AccessRule(.allow, address: IPNetwork("2001:db8:42::/48")),
            AccessRule(.allow, initiatorRegex: #"iqn\.1998-01\.com\.vmware:esx0[12]-.*"#),
        ])
        #expect(vm.allowsLogin(initiatorName: "iqn.anything", address: "192.0.2.77"))
        #expect(vm.allowsLogin(initiatorName: "iqn.1998-01.com.vmware:esx02-4f1c", address: "198.51.100.3"))
        #expect(!vm.allowsLogin(initiatorName: "iqn.1998-01.com.vmware:esx03-4f1c", address: "198.51.100.3"))
        #expect(vm.allowedServerAddresses.map(\.description) == ["192.0.2.10", "2001:db8:42::10"])

        let scratch = c.effective(c.targets[1])
        #expect(c.targets[1].allowedClients == [])  // "ALL" = everyone
        #expect(scratch.allowsLogin(initiatorName: "iqn.x", address: "203.0.113.1"))

        // legacy: the ALL line comes first, so it decides (the legacy line is dead).
        #expect(c.targets[2].allowedClients == nil)
        let legacy = c.effective(c.targets[2])
        #expect(legacy.allowsLogin(initiatorName: "iqn.x", address: "192.0.2.50"))
        #expect(!legacy.allowsLogin(initiatorName: "iqn.x", address: "10.9.9.9"))
        #expect(legacy.allowedServerAddresses.map(\.description) == ["192.0.2.0/24"])
    }

    @Test func unmappedReportWithLineNumbers() {
        #expect(result.messages.filter { $0.kind == .unmapped }.map(\.description) == [
            "ietd.conf:4: unmapped: iSNSServer 192.0.2.250: iSNS is not supported (ignored)",
            "ietd.conf:5: unmapped: iSNSAccessControl No: iSNS is not supported (ignored)",
            "ietd.conf:22: unmapped: LUN 0 of iqn.2009-07.net.example.storage01:vm.images: ScsiId=vmimg0001 cannot be kept (SwiftTarget identifies LUNs by NAA id \(result.config.targets[0].luns[0].naaId)); multipath initiators will see a new device id",
            "ietd.conf:30: unmapped: Wthreads 16: IET kernel tuning with no equivalent (ignored)",
            "ietd.conf:31: unmapped: QueuedCommands 64: IET kernel tuning with no equivalent (ignored)",
            "ietd.conf:35: unmapped: LUN 0 of iqn.2009-07.net.example.storage01:scratch: Type=nullio (a RAM/null disk, 2097152 sectors) has no equivalent; LUN skipped",
            "ietd.conf:38: unmapped: DataPDUInOrder No: only Yes is supported (Yes is used)",
            "ietd.conf:39: unmapped: OFMarker Yes: markers are not supported (No is used)",
            "ietd.conf:40: unmapped: unknown key FancyNewKey (ignored)",
            "ietd.conf:41: unmapped: InitialR2T yes: must be Yes or No, case-sensitive as in IET (ignored)",
            "initiators.allow:4: unmapped: target iqn.2009-07.net.example.storage01:oldname is not defined in ietd.conf (line ignored)",
            "initiators.allow:6: unmapped: never used: line 5 already decides for iqn.2009-07.net.example.storage01:legacy (first matching line wins)",
        ])
        #expect(result.messages.filter { $0.kind == .note }.map(\.description) == [
            "ietd.conf:11: note: global MaxSessions becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf:12: note: global InitialR2T becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf:13: note: global ImmediateData becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf:14: note: global MaxRecvDataSegmentLength becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf:15: note: global NOPInterval becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf:16: note: global NOPTimeout becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)",
            "ietd.conf: note: global IncomingUser/OutgoingUser mapped to discoveryAuth (in IET they authenticate discovery sessions)",
        ])
    }

    @Test func importedConfigIsValidAndSaves() throws {
        #expect(result.diagnostics.filter { $0.severity == .error }.map(\.description) == [])
        #expect(result.diagnostics.filter { $0.severity == .warning }.map(\.description) == [
            "warning: targets[0].luns[1].writeCache: write-back caching can lose acknowledged writes on a power failure unless initiators flush",
            "warning: targets[1].luns: no LUN 0; many initiators only scan a target that has LUN 0",
        ])
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ConfigStore(path: dir + "/config.json")
        try store.save(result.config)
        #expect(try store.load().config == result.config)
    }

    @Test func missingAllowFilesAllowEveryoneEmptyFileDeniesEveryone() {
        let open = IETImporter.importConfig(ietdConf: storageHostIetd).config
        #expect(open.effective(open.targets[0]).allowsLogin(initiatorName: "iqn.x", address: "203.0.113.1"))
        #expect(open.defaults.allowedClients == nil)

        let closed = IETImporter.importConfig(ietdConf: storageHostIetd, initiatorsAllow: "# nothing allowed\n")
        let c = closed.config
        for t in c.targets { #expect(!c.effective(t).allowsLogin(initiatorName: "iqn.x", address: "192.0.2.1")) }
        #expect(closed.messages.contains { $0.description == "initiators.allow: note: file has no entries: IET denies every initiator (imported as deny rules)" })
    }

    @Test func targetsAllowWithoutLineForTargetIsReported() {
        let r = IETImporter.importConfig(
            ietdConf: storageHostIetd,
            targetsAllow: "iqn.2009-07.net.example.storage01:vm.images 192.0.2.10\n")
        #expect(r.unmapped.filter { $0.file == "targets.allow" }.map(\.message) == [
            "target iqn.2009-07.net.example.storage01:scratch has no line, so IET exposed it on no portal; SwiftTarget cannot express that and exposes it on every portal — remove or restrict the target",
            "target iqn.2009-07.net.example.storage01:legacy has no line, so IET exposed it on no portal; SwiftTarget cannot express that and exposes it on every portal — remove or restrict the target",
        ])
    }

    @Test func invalidAndDuplicateStanzas() {
        let text = """
        Target iqn.2026-01.COM.Example:Upper
        \tLun 0 Path=/srv/u.img
        Target not-an-iqn
        \tLun 0 Path=/srv/bad.img
        Target iqn.2026-01.com.example:upper
        Lun 0 Path=relative.img,Type=fileio
        Target iqn.2026-01.com.example:two
        \tLun 0 Path=/srv/t0.img,Type=fileio,ScsiSN=has space
        \tLun 0 Path=/srv/t0b.img,Type=fileio
        \tLun 1 Type=fileio
        \tLun 2 Path=/srv/t2.img,Type=bogus
        \tLun 3 Path=/srv/t3.img,IOMode=xx,Colour=blue
        \tIncomingUser onlyname
        \tOutgoingUser a aaaaaaaaaaaa1
        \tOutgoingUser b bbbbbbbbbbbb2
        """
        let r = IETImporter.importConfig(ietdConf: text)
        #expect(r.config.targets.map(\.name) == ["iqn.2026-01.com.example:upper", "iqn.2026-01.com.example:two"])
        #expect(r.config.targets[1].luns.map(\.id) == [0, 3])
        #expect(r.config.targets[1].auth == .noAuth)
        let msgs = r.messages.map(\.description)
        #expect(msgs.contains("ietd.conf:1: note: target name iqn.2026-01.COM.Example:Upper lower-cased to iqn.2026-01.com.example:upper (iSCSI names are case-insensitive)"))
        #expect(msgs.contains("ietd.conf:3: unmapped: target not-an-iqn is not a valid iSCSI name (must start with iqn., eui. or naa. (e.g. iqn.2026-01.com.example:storage)); stanza skipped"))
        #expect(msgs.contains("ietd.conf:5: unmapped: target iqn.2026-01.com.example:upper is defined twice; second stanza skipped"))
        #expect(msgs.contains { $0.hasPrefix("ietd.conf:8: unmapped: LUN 0 of iqn.2026-01.com.example:two: ScsiSN=has space is not a usable serial; generated ") })
        #expect(msgs.contains("ietd.conf:9: unmapped: LUN 0 defined twice in target iqn.2026-01.com.example:two (second one skipped)"))
        #expect(msgs.contains("ietd.conf:10: unmapped: LUN 1 of iqn.2026-01.com.example:two has no Path (skipped)"))
        #expect(msgs.contains("ietd.conf:11: unmapped: LUN 2 of iqn.2026-01.com.example:two: unknown Type=bogus (skipped)"))
        #expect(msgs.contains("ietd.conf:12: unmapped: LUN 3 of iqn.2026-01.com.example:two: unknown IOMode=xx (write-through used)"))
        #expect(msgs.contains("ietd.conf:12: unmapped: LUN 3 of iqn.2026-01.com.example:two: unknown option Colour=blue (ignored)"))
        #expect(msgs.contains("ietd.conf:13: unmapped: IncomingUser needs a user name and a secret without spaces (ignored)"))
        #expect(msgs.contains("ietd.conf:15: note: several OutgoingUser lines; the last one (b) is used"))
        #expect(msgs.contains("ietd.conf: unmapped: target iqn.2026-01.com.example:two: OutgoingUser without IncomingUser has no effect (ignored)"))
    }

    @Test func optionsLinePortals() {
        #expect(IETImporter.portals(fromOptions: #"OPTIONS="-a 192.0.2.10 -p 3261""#) == [Portal(address: "192.0.2.10", port: 3261)])
        #expect(IETImporter.portals(fromOptions: "OPTIONS=\"--address=2001:db8::1\"") == [Portal(address: "2001:db8::1", port: 3260)])
        #expect(IETImporter.portals(fromOptions: "OPTIONS=\"-d 8\"") == nil)
    }
}

import Testing
@testable import TCMU
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ConfigfsPlanTests {
    let disk = LIOExportSpec.Backstore(hba: 1, name: "disk0", cfgstring: "sparse:/srv/d0.img", size: 1 << 30,
                                       blockSize: 4096, maxSectors: 1024, writeCache: true)

    @Test func demoModeTargetWithCHAP() throws {
        let spec = LIOExportSpec(backstores: [disk], targets: [
            .init(iqn: "iqn.2025-01.org.example:t1", luns: [.init(number: 0, backstore: "disk0")],
                  portals: ["0.0.0.0:3260"], demoModeCHAP: .init(userid: "u", password: "secret12345")),
        ])
        let steps = try ConfigfsPlan.create(spec).map(\.description)
        let tpg = "iscsi/iqn.2025-01.org.example:t1/tpgt_1"
        #expect(steps == [
            "mkdir core/user_1/disk0",
            "echo 'dev_size=1073741824' > core/user_1/disk0/control",
            "echo 'dev_config=swifttarget/sparse:/srv/d0.img' > core/user_1/disk0/control",
            "echo 'hw_block_size=4096' > core/user_1/disk0/control",
            "echo 'hw_max_sectors=1024' > core/user_1/disk0/control",
            "echo '1' > core/user_1/disk0/enable",
            "echo '1' > core/user_1/disk0/attrib/tmr_notification",
            "echo '1' > core/user_1/disk0/attrib/emulate_write_cache",
            "mkdir \(tpg)",
            "mkdir \(tpg)/lun/lun_0",
            "ln -s core/user_1/disk0 \(tpg)/lun/lun_0/user_1_disk0",
            "mkdir \(tpg)/np/0.0.0.0:3260",
            "echo '1' > \(tpg)/attrib/authentication",
            "echo '1' > \(tpg)/attrib/generate_node_acls",
            "echo '1' > \(tpg)/attrib/cache_dynamic_acls",
            "echo '0' > \(tpg)/attrib/demo_mode_write_protect",
            "echo 'u' > \(tpg)/auth/userid",
            "echo 'secret12345' > \(tpg)/auth/password",
            "echo '1' > \(tpg)/enable",
        ])
    }

    @Test func aclsMapLUNsAndCarryMutualCHAP() throws {
        let disk1 = LIOExportSpec.Backstore(hba: 1, name: "disk1", cfgstring: "file:/srv/d1.img", size: 1 << 20)
        let acl = LIOExportSpec.ACL(initiator: "iqn.1994-05.com.redhat:client",
                                    chap: .init(userid: "a", password: "b", mutualUserid: "c", mutualPassword: "d"),
                                    mappedLUNs: [.init(mapped: 0, tpgLUN: 1)], readOnly: true)
        let spec = LIOExportSpec(backstores: [disk, disk1], targets: [
            .init(iqn: "iqn.t", luns: [.init(number: 0, backstore: "disk0"), .init(number: 1, backstore: "disk1")],
                  portals: ["[::]:3260"], acls: [acl]),
        ])
        let steps = try ConfigfsPlan.create(spec).map(\.description)
        let dir = "iscsi/iqn.t/tpgt_1/acls/iqn.1994-05.com.redhat:client"
        #expect(steps.contains("echo '0' > iscsi/iqn.t/tpgt_1/attrib/generate_node_acls"))
        #expect(steps.contains("ln -s iscsi/iqn.t/tpgt_1/lun/lun_1 \(dir)/lun_0/lun_1"))
        #expect(steps.contains("echo '1' > \(dir)/lun_0/write_protect"))
        #expect(steps.contains("echo 'c' > \(dir)/auth/userid_mutual"))
        #expect(steps.last == "echo '1' > iscsi/iqn.t/tpgt_1/enable")
        let teardown = try ConfigfsPlan.remove(spec).map(\.description)
        #expect(teardown.first == "echo '0' > iscsi/iqn.t/tpgt_1/enable")
        #expect(teardown.suffix(3) == ["rmdir core/user_1/disk0", "rmdir core/user_1/disk1", "rmdir core/user_1"])
    }

    @Test func aFailedStepDoesNotRepeatACHAPSecret() {
        let e = ConfigfsApplier.StepFailed(step: .write("iscsi/iqn.t/tpgt_1/auth/password_mutual", "s3cret-value"), errno: EINVAL)
        #expect(!e.description.contains("s3cret-value") && e.description.contains("password_mutual"))
    }

    @Test func rejectsUnknownReferencesAndPathTricks() {
        #expect(throws: ConfigfsPlan.Invalid.unknownBackstore("nope")) {
            try ConfigfsPlan.create(LIOExportSpec(backstores: [disk], targets: [
                .init(iqn: "iqn.t", luns: [.init(number: 0, backstore: "nope")], portals: [])]))
        }
        #expect(throws: ConfigfsPlan.Invalid.badName("../x")) {
            try ConfigfsPlan.create(LIOExportSpec(backstores: [.init(hba: 1, name: "../x", cfgstring: "file:/a", size: 512)]))
        }
        #expect(throws: ConfigfsPlan.Invalid.badName("file:/a,size=1G")) {
            try ConfigfsPlan.create(LIOExportSpec(backstores: [.init(hba: 1, name: "x", cfgstring: "file:/a,size=1G", size: 512)]))
        }
    }

    @Test func applierCreatesAndRemovesDirectoriesAndLinks() throws {
        var template = Array("/tmp/tcmu-cfs-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { _ = system("rm -rf '\(root)'") }
        let applier = ConfigfsApplier(root: root)
        try applier.apply([.makeDirectory("core/user_1/d"), .makeDirectory("iscsi/iqn.t/tpgt_1/lun/lun_0"),
                           .symlink(target: "core/user_1/d", link: "iscsi/iqn.t/tpgt_1/lun/lun_0/p")])
        var buf = [CChar](repeating: 0, count: 512)
        let n = readlink(root + "/iscsi/iqn.t/tpgt_1/lun/lun_0/p", &buf, 511)
        #expect(n > 0 && String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == root + "/core/user_1/d")
        #expect(throws: ConfigfsApplier.StepFailed.self) { try applier.apply([.write("core/user_1/d/enable", "1")]) }
        try applier.apply([.unlink("iscsi/iqn.t/tpgt_1/lun/lun_0/p"), .removeDirectory("iscsi/iqn.t/tpgt_1/lun/lun_0"),
                           .removeDirectory("gone")], ignoringMissing: true)
        #expect(access(root + "/iscsi/iqn.t/tpgt_1/lun/lun_0", F_OK) != 0)
    }
}

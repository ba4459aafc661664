import Testing
@testable import Backstores

@Suite("rbd specs")
struct RBDSpecTests {
    @Test func parsesPoolImageAndSettings() throws {
        let spec = try BackstoreSpec.parse("rbd:rbd/disk1,conf=/etc/ceph/c2.conf,id=gw1,keyring=/k/gw1.keyring,size=10G")
        #expect(spec.kind == .rbd && spec.path == "rbd/disk1" && spec.size == 10 << 30)
        #expect(spec.options == ["conf": "/etc/ceph/c2.conf", "id": "gw1", "keyring": "/k/gw1.keyring"])
        let location = try RBDLocation.parse(spec.path, options: spec.options).get()
        #expect(location == RBDLocation(pool: "rbd", image: "disk1", conf: "/etc/ceph/c2.conf", id: "gw1", keyring: "/k/gw1.keyring"))
    }

    @Test func defaultsAreAdminAndTheSystemConf() throws {
        let location = try RBDLocation.parse("pool/img", options: [:]).get()
        #expect(location.conf == "/etc/ceph/ceph.conf" && location.id == "admin" && location.keyring == nil)
    }

    @Test(arguments: [
        ("rbd:disk1", "is not POOL/IMAGE"),
        ("rbd:a/b/c", "is not POOL/IMAGE"),
        ("rbd:/img", "is not POOL/IMAGE"),
        ("rbd:pool/img@snap", "may not contain '@'"),
        ("rbd:pool/img,conf=", "'conf=' needs a value"),
        ("rbd:pool/img,conf=/a,conf=/b", "given twice"),
        ("rbd:pool/img,direct", "only supported for raw"),
        ("rbd:pool/img,pool=x", "unknown option 'pool'"),
        ("file:/a.img,conf=/x", "unknown option 'conf'"),
    ])
    func rejects(_ text: String, _ message: String) {
        do {
            _ = try BackstoreSpec.parse(text)
            Issue.record("\(text) was accepted")
        } catch let error as BackstoreOpenError {
            #expect(error.reason == .invalidSpec)
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func sharedIsAYesNoSetting() throws {
        let spec = try BackstoreSpec.parse("rbd:rbd/disk1,shared=yes")
        #expect(spec.options == ["shared": "yes"])
        #expect(try RBDLocation.parse(spec.path, options: spec.options).get().shared)
        #expect(try !RBDLocation.parse("rbd/disk1", options: ["shared": "no"]).get().shared)
        #expect(try !RBDLocation.parse("rbd/disk1", options: [:]).get().shared)
        switch RBDLocation.parse("rbd/disk1", options: ["shared": "maybe"]) {
        case .success: Issue.record("shared=maybe was accepted")
        case .failure(let problem): #expect(problem.message == "shared= takes yes or no, not 'maybe'")
        }
    }

    @Test func networkStoresGetWorkersForAQueueDepthOf32() {
        #expect(BackstoreKind.defaultIOThreads(for: [.file, .raw], processors: 2) == 2)
        #expect(BackstoreKind.defaultIOThreads(for: [.file], processors: 8) == 8)
        #expect(BackstoreKind.defaultIOThreads(for: [.file, .rbd], processors: 2) == 32)
        #expect(BackstoreKind.defaultIOThreads(for: [.rbd], processors: 64) == 64)
        #expect(BackstoreKind.allCases.filter(\.waitsOnNetwork) == [.rbd])
    }

    @Test func kindCapabilities() {
        #expect(BackstoreKind.rbd.locator == .poolImage && BackstoreKind.rbd.isThin && BackstoreKind.rbd.sizing == .byImage)
        #expect(BackstoreKind.rbd.locatorProblem("pool/image") == nil)
        #expect(BackstoreKind.file.locatorProblem("pool/image") == "must be an absolute path")
        #expect(BackstoreKind.spokenList == "file, sparse, raw or rbd")
    }
}

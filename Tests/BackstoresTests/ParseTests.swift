import Testing
@testable import Backstores

@Suite("BackstoreSpec.parse")
struct ParseTests {
    static let accepted: [(String, BackstoreSpec)] = [
        ("file:./disk.img,size=1G", BackstoreSpec(kind: .file, path: "./disk.img", size: 1 << 30)),
        ("sparse:./thin.img,size=20G", BackstoreSpec(kind: .sparse, path: "./thin.img", size: 20 << 30)),
        ("raw:/dev/loop0", BackstoreSpec(kind: .raw, path: "/dev/loop0")),
        ("raw:/dev/sdb,direct", BackstoreSpec(kind: .raw, path: "/dev/sdb", directIO: true)),
        ("raw:/dev/sdb,ro,direct", BackstoreSpec(kind: .raw, path: "/dev/sdb", readOnly: true, directIO: true)),
        ("file:/srv/a.img,readonly", BackstoreSpec(kind: .file, path: "/srv/a.img", readOnly: true)),
        ("file:/srv/a.img,ro,size=512", BackstoreSpec(kind: .file, path: "/srv/a.img", size: 512, readOnly: true)),
        ("file:a.img,size=64K", BackstoreSpec(kind: .file, path: "a.img", size: 64 << 10)),
        ("file:a.img,size=3m", BackstoreSpec(kind: .file, path: "a.img", size: 3 << 20)),
        ("sparse:a.img,size=2T", BackstoreSpec(kind: .sparse, path: "a.img", size: 2 << 40)),
        ("sparse:a.img,size=1048576", BackstoreSpec(kind: .sparse, path: "a.img", size: 1 << 20)),
        ("file:/path:with:colons.img,size=1k", BackstoreSpec(kind: .file, path: "/path:with:colons.img", size: 1024)),
        ("file:a.img,", BackstoreSpec(kind: .file, path: "a.img")),
    ]

    @Test("accepts", arguments: accepted.indices)
    func accepts(index: Int) throws {
        let (text, spec) = Self.accepted[index]
        #expect(try BackstoreSpec.parse(text) == spec, "\(text)")
    }

    static let rejected: [(String, BackstoreOpenError.Reason, String)] = [
        ("disk.img", .invalidSpec, "expected kind:path"),
        ("qcow2:disk.img", .invalidSpec, "unknown kind 'qcow2'"),
        ("File:disk.img", .invalidSpec, "unknown kind"),
        ("file:", .invalidSpec, "missing path"),
        ("file:,size=1G", .invalidSpec, "missing path"),
        ("file:a.img,sz=1G", .invalidSpec, "unknown option 'sz'"),
        ("file:a.img,rw", .invalidSpec, "unknown option 'rw'"),
        ("file:a.img,direct", .invalidSpec, "only supported for raw"),
        ("file:a.img,size=", .badSize, "bad size"),
        ("file:a.img,size=G", .badSize, "bad size"),
        ("file:a.img,size=1X", .badSize, "unknown suffix 'X'"),
        ("file:a.img,size=1.5G", .badSize, "bad size"),
        ("file:a.img,size=-1G", .badSize, "bad size"),
        ("file:a.img,size=0", .badSize, "greater than zero"),
        ("file:a.img,size=1000", .badSize, "not a multiple of 512"),
        ("file:a.img,size=99999999999T", .badSize, "too large"),
        ("file:a.img,size=1GiB", .badSize, "bad size"),
    ]

    @Test("rejects with a clear message", arguments: rejected.indices)
    func rejects(index: Int) throws {
        let (text, reason, fragment) = Self.rejected[index]
        do {
            let spec = try BackstoreSpec.parse(text)
            Issue.record("'\(text)' parsed as \(spec)")
        } catch let error as BackstoreOpenError {
            #expect(error.reason == reason, "\(text): \(error)")
            #expect(error.description.contains(fragment), "\(text): \(error)")
            #expect(error.description.contains(text), "message quotes the spec: \(error)")
        }
    }

    @Test("parseSize")
    func sizes() throws {
        #expect(try BackstoreSpec.parseSize("1K") == 1024)
        #expect(try BackstoreSpec.parseSize("512") == 512)
        #expect(try BackstoreSpec.parseSize("7T") == 7 << 40)
        #expect(throws: BackstoreOpenError.self) { try BackstoreSpec.parseSize("513") }
    }
}

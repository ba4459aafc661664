#if canImport(Glibc)
import Glibc
#endif
import Backstores
import Testing
@testable import SCSIEngine

/// A minimal file-backed BlockStore (pread/pwrite/fdatasync) for end-to-end tests.
final class FileStore: BlockStore {
    let kind: BackstoreKind = .file
    let path: String
    let fd: Int32
    let byteCount: UInt64
    let logicalBlockSize = 512
    let isThinProvisioned = false
    let supportsDiscard = false
    let isReadOnly = false

    init(blocks: Int) {
        path = "/tmp/scsiengine-test-\(getpid())-\(UInt32.random(in: 0 ... .max)).img"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        byteCount = UInt64(blocks * 512)
        _ = ftruncate(fd, off_t(byteCount))
    }

    deinit {
        Glibc.close(fd)
        unlink(path)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n <= 0 { throw BackstoreError(.read, errno: n < 0 ? errno : 5, path: path) }
            done += n
        }
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n <= 0 { throw BackstoreError(.write, errno: n < 0 ? errno : 5, path: path) }
            done += n
        }
        if durable && fdatasync(fd) != 0 { throw BackstoreError(.flush, errno: errno, path: path) }
    }

    func flush() throws(BackstoreError) {
        if fdatasync(fd) != 0 { throw BackstoreError(.flush, errno: errno, path: path) }
    }

    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        let zeros = [UInt8](repeating: 0, count: Int(length))
        try zeros.withBytes { (p) throws(BackstoreError) in try write(from: p, at: offset, durable: false) }
    }

    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        AllocationExtent(mapped: true, length: limit)
    }

    func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    func close() {}
}

@Suite struct FileStoreEngineTests {
    @Test func roundTripThroughAFile() throws {
        let target = SCSITarget(name: "iqn.2026-01.test:file")
        let store = FileStore(blocks: 256)
        try target.addLogicalUnit(0, store: store, configuration: .init(serialNumber: "F1", uniqueID: 9, writeCacheEnabled: false))
        let n = target.openNexus(ITNexus(initiatorName: "iqn.i", initiatorPortID: 1, targetName: target.name))
        func run(_ cdb: [UInt8], out: [UInt8] = [], inCount: Int = 0) -> ([UInt8], SCSICommandResult) {
            var o = out
            var i = [UInt8](repeating: 0, count: inCount)
            let r = o.withUnsafeMutableBytes { op in
                i.withUnsafeMutableBytes { ip in
                    cdb.withUnsafeBytes { c in
                        target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(op), dataIn: IOVectors(ip))
                    }
                }
            }
            return (Array(i.prefix(r.dataInCount)), r)
        }
        #expect(run(CDB.tur).1.status == .checkCondition) // power on
        let data = pattern(8 * 512, seed: 11)
        #expect(run(CDB.write16(100, 8), out: data).1.status == .good)
        let (back, r) = run(CDB.read16(100, 8), inCount: 8 * 512)
        #expect(r.status == .good)
        #expect(back == data)
        #expect(run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).1.status == .good)
    }
}

@Suite struct ConcurrencyTests {
    /// Several threads write disjoint ranges and register PR keys at once; every write
    /// lands and every registration is counted.
    @Test func concurrentWritersAndRegistrations() async {
        let h = Harness(blocks: 4096)
        let target = h.target
        let nexuses = (0 ..< 8).map { i in
            target.openNexus(ITNexus(initiatorName: "iqn.c\(i)", initiatorPortID: UInt64(i), targetName: target.name))
        }
        await withTaskGroup(of: Void.self) { group in
            for (i, n) in nexuses.enumerated() {
                group.addTask {
                    var first = true
                    for j in 0 ..< 32 {
                        var data = [UInt8](repeating: UInt8(i + 1), count: 512)
                        let lba = UInt64(i * 32 + j)
                        var r = data.withUnsafeMutableBytes { p in
                            CDB.write10(lba, 1).withUnsafeBytes { c in
                                target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(p), dataIn: .empty)
                            }
                        }
                        if first && r.status == .checkCondition {
                            // Power on UA on first contact: retry once.
                            first = false
                            r = data.withUnsafeMutableBytes { p in
                                CDB.write10(lba, 1).withUnsafeBytes { c in
                                    target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(p), dataIn: .empty)
                                }
                            }
                        }
                        first = false
                    }
                    var params = CDB.prParams(key: 0, sak: UInt64(100 + i))
                    _ = params.withUnsafeMutableBytes { p in
                        CDB.prOut(0).withUnsafeBytes { c in
                            target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(p), dataIn: .empty)
                        }
                    }
                }
            }
        }
        for i in 0 ..< 8 {
            #expect(h.store.bytes(i * 32 * 512 ..< (i + 1) * 32 * 512) == [UInt8](repeating: UInt8(i + 1), count: 32 * 512))
        }
        let keys = h.run(CDB.prIn(0), dataIn: 4096).data
        #expect(Array(keys[0 ..< 8]) == be32(8) + be32(64))
    }
}

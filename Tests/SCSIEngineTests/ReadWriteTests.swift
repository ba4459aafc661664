import Testing
@testable import SCSIEngine

@Suite struct ReadWriteTests {
    @Test(arguments: [10, 12, 16, 6])
    func roundTrip(cdbSize: Int) {
        let h = Harness()
        let data = pattern(3 * 512, seed: UInt8(cdbSize))
        let write: [UInt8], read: [UInt8]
        switch cdbSize {
        case 6: write = CDB.write6(5, 3); read = CDB.read6(5, 3)
        case 12: write = CDB.write12(5, 3); read = CDB.read12(5, 3)
        case 16: write = CDB.write16(5, 3); read = CDB.read16(5, 3)
        default: write = CDB.write10(5, 3); read = CDB.read10(5, 3)
        }
        let w = h.run(write, dataOut: data)
        expectGood(w)
        #expect(w.result.transferLength == 1536)
        #expect(h.store.bytes(5 * 512 ..< 8 * 512) == data)
        let r = h.run(read, dataIn: 1536)
        expectGood(r)
        #expect(r.data == data)
        #expect(r.result.transferLength == 1536)
    }

    @Test func scatterGatherSegments() {
        let h = Harness()
        let data = pattern(4 * 512, seed: 9)
        expectGood(h.run(CDB.write10(0, 4), dataOut: data, split: 700))
        #expect(h.store.bytes(0 ..< 2048) == data)
        let r = h.run(CDB.read10(0, 4), dataIn: 2048, split: 1000)
        #expect(r.data == data)
    }

    @Test func read6ZeroMeansTwoHundredFiftySix() {
        let h = Harness()
        let r = h.run(CDB.read6(0, 0), dataIn: 256 * 512)
        expectGood(r)
        #expect(r.result.transferLength == 256 * 512)
    }

    @Test func outOfRange() {
        let h = Harness(blocks: 100)
        expectSense(h.run(CDB.read10(100, 1), dataIn: 512), 5, 0x2100)
        expectSense(h.run(CDB.read10(99, 2), dataIn: 1024), 5, 0x2100)
        expectSense(h.run(CDB.read16(UInt64.max, 1), dataIn: 512), 5, 0x2100)
        expectSense(h.run(CDB.write16(0x8000_0000_0000_0000, 1), dataOut: [UInt8](repeating: 0, count: 512)), 5, 0x2100)
        expectSense(h.run(CDB.read10(101, 0)), 5, 0x2100)
        expectGood(h.run(CDB.read10(99, 1), dataIn: 512))
        expectGood(h.run(CDB.read10(0, 0)))
    }

    @Test func transferLengthAboveMaximum() {
        let h = Harness(blocks: 0x2_0000)
        let o = h.run(CDB.read16(0, 0x1_0001), dataIn: 0)
        expectSense(o, 5, 0x2400)
        #expect(o.sks == [0xC0, 0, 10])
    }

    @Test func protectionFieldsRejected() {
        let h = Harness()
        var cdb = CDB.read10(0, 1)
        cdb[1] = 0x20
        let o = h.run(cdb, dataIn: 512)
        expectSense(o, 5, 0x2400)
        #expect(o.sks == [0xCF, 0, 1])
    }

    @Test func shortDataOutWritesOnlyTheBlocksThatCame() {
        let h = Harness()
        h.store.fill(0 ..< 1536, with: 0x55)
        // Two blocks in the CDB, one and a half blocks of data: one block is written.
        let o = h.run(CDB.write10(0, 2), dataOut: [UInt8](repeating: 0xAA, count: 768))
        expectGood(o)
        #expect(o.result.transferLength == 1024)
        #expect(h.store.bytes(0 ..< 512) == [UInt8](repeating: 0xAA, count: 512))
        #expect(h.store.bytes(512 ..< 1536) == [UInt8](repeating: 0x55, count: 1024))
        // No data at all: nothing written, GOOD, the whole length is residual for the fabric.
        let none = h.run(CDB.write10(1, 1))
        expectGood(none)
        #expect(none.result.transferLength == 512)
        #expect(h.store.bytes(512 ..< 1024) == [UInt8](repeating: 0x55, count: 512))
    }

    @Test func longerDataOutWritesOnlyTheCDBLength() {
        let h = Harness()
        let o = h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0xAA, count: 10000))
        expectGood(o)
        #expect(o.result.transferLength == 512)
        #expect(h.store.bytes(0 ..< 513) == [UInt8](repeating: 0xAA, count: 512) + [0])
    }

    @Test func smallDataInReadsWhatFits() {
        let h = Harness()
        h.store.fill(0 ..< 512, with: 7)
        let o = h.run(CDB.read10(0, 1), dataIn: 200)
        expectGood(o)
        #expect(o.data == [UInt8](repeating: 7, count: 200))
        #expect(o.result.transferLength == 512)
    }

    @Test func writeCacheAndFUADurability() {
        let h = Harness() // WCE on by default
        let block = [UInt8](repeating: 1, count: 512)
        h.run(CDB.write10(0, 1), dataOut: block)
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.durableWrites) } == (1, 0))
        h.run(CDB.write10(0, 1, fua: true), dataOut: block)
        #expect(h.store.contents.withLock { $0.durableWrites } == 1)
        let wt = Harness(configuration: .init(serialNumber: "x", uniqueID: 1, writeCacheEnabled: false))
        wt.run(CDB.write16(0, 1), dataOut: block)
        #expect(wt.store.contents.withLock { ($0.plainWrites, $0.durableWrites) } == (0, 1))
        // Two segments: plain writes and one flush.
        wt.run(CDB.write16(0, 2), dataOut: block + block, split: 512)
        #expect(wt.store.contents.withLock { ($0.plainWrites, $0.durableWrites, $0.flushes) } == (2, 1, 1))
    }

    @Test func readOnlyLUs() {
        let block = [UInt8](repeating: 1, count: 512)
        let ro = Harness(configuration: .init(serialNumber: "x", uniqueID: 1, readOnly: true))
        expectSense(ro.run(CDB.write10(0, 1), dataOut: block), 7, 0x2700)
        expectGood(ro.run(CDB.read10(0, 1), dataIn: 512))
        let roStore = Harness(readOnly: true)
        expectSense(roStore.run(CDB.write16(0, 1), dataOut: block), 7, 0x2700)
        let ms = roStore.run(CDB.modeSense6(page: 0x3F), dataIn: 255)
        #expect(ms.data[2] & 0x80 != 0) // WP in the device-specific parameter
    }

    @Test func backstoreErrorsMapToSense() {
        let h = Harness()
        h.store.contents.withLock { $0.failReadErrno = 5 }
        expectSense(h.run(CDB.read10(0, 1), dataIn: 512), 3, 0x1100)
        h.store.contents.withLock { $0.failWriteErrno = 5 }
        expectSense(h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512)), 3, 0x0C00)
        h.store.contents.withLock { $0.failWriteErrno = 28 }
        expectSense(h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512)), 7, 0x2707)
        // A network store that lost its cluster for a while: NOT READY, becoming ready (retried).
        for errno: Int32 in [110, 108] {
            h.store.contents.withLock { $0.failWriteErrno = errno; $0.failReadErrno = errno }
            expectSense(h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512)), 2, 0x0401)
            expectSense(h.run(CDB.read10(0, 1), dataIn: 512), 2, 0x0401)
        }
    }

    @Test func unknownOpcodeAndNACA() {
        let h = Harness()
        let o = h.run([0xC7, 0, 0, 0, 0, 0])
        expectSense(o, 5, 0x2000)
        let n = h.run([0, 0, 0, 0, 0, 0x04])
        expectSense(n, 5, 0x2400)
        #expect(n.sks == [0xCA, 0, 5])
    }

    @Test func synchronizeCacheFlushes() {
        let h = Harness(blocks: 100)
        expectGood(h.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
        expectGood(h.run([0x91, 0] + be64(0) + be32(10) + [0, 0]))
        #expect(h.store.contents.withLock { $0.flushes } == 2)
        expectSense(h.run([0x35, 0] + be32(100) + [0, 0, 1, 0]), 5, 0x2100)
    }

    @Test func preFetch() {
        let h = Harness(blocks: 100)
        expectGood(h.run([0x34, 0] + be32(10) + [0, 0, 5, 0]))
        expectGood(h.run([0x90, 0] + be64(95) + be32(5) + [0, 0]))
        expectSense(h.run([0x90, 0] + be64(96) + be32(5) + [0, 0]), 5, 0x2100)
    }

    @Test func readCapacity() {
        let h = Harness(blocks: 1000)
        let r10 = h.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], dataIn: 8)
        #expect(r10.data == be32(999) + be32(512))
        expectSense(h.run([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], dataIn: 8), 5, 0x2400)
        let r16 = h.run([0x9E, 0x10] + be64(0) + be32(32) + [0, 0], dataIn: 32)
        #expect(r16.data.count == 32)
        #expect(Array(r16.data[0 ..< 14]) == be64(999) + be32(512) + [0, 0])  // LBPPBE 0
        #expect(r16.data[14] == 0)
        let thin = Harness(blocks: 1000, thin: true)
        #expect(thin.run([0x9E, 0x10] + be64(0) + be32(32) + [0, 0], dataIn: 32).data[14] == 0xC0)
        let short = h.run([0x9E, 0x10] + be64(0) + be32(12) + [0, 0], dataIn: 32)
        #expect(short.data.count == 12)
        #expect(short.result.transferLength == 12)
        expectSense(h.run([0x9E, 0x1F] + be64(0) + be32(32) + [0, 0], dataIn: 32), 5, 0x2400)
    }

    @Test func readCapacity10Saturates() {
        let h = Harness(blocks: 1)
        // A 2^32 + 1 block LU: only the size matters here.
        let big = MemoryStoreHuge()
        try! h.target.addLogicalUnit(1, store: big, configuration: .init(serialNumber: "b", uniqueID: 3))
        _ = h.run(CDB.tur, lun: 1)
        let r = h.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], lun: 1, dataIn: 8)
        #expect(r.data == be32(0xFFFF_FFFF) + be32(512))
        let r16 = h.run([0x9E, 0x10] + be64(0) + be32(32) + [0, 0], lun: 1, dataIn: 32)
        #expect(Array(r16.data[0 ..< 8]) == be64(0x1_0000_0000))
    }

    @Test func writeAndVerify() {
        let h = Harness()
        let data = pattern(1024, seed: 3)
        expectGood(h.run([0x2E, 0x02] + be32(4) + [0] + be16(2) + [0], dataOut: data))
        #expect(h.store.bytes(2048 ..< 3072) == data)
        #expect(h.store.contents.withLock { $0.durableWrites } == 1)
        expectGood(h.run([0x8E, 0] + be64(8) + be32(2) + [0, 0], dataOut: data))
    }

    @Test func startStopUnit() {
        expectGood(Harness().run([0x1B, 0, 0, 0, 1, 0]))
    }
}

/// A store that is only big (no data): for capacity reporting.
final class MemoryStoreHuge: BlockStore {
    let kind: BackstoreKind = .sparse
    let path = "huge"
    var byteCount: UInt64 { (0x1_0000_0001) * 512 }
    let logicalBlockSize = 512
    let isThinProvisioned = true
    let supportsDiscard = true
    let isReadOnly = false
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {}
    func flush() throws(BackstoreError) {}
    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {}
    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent { AllocationExtent(mapped: false, length: limit) }
    func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    func close() {}
}

import Backstores

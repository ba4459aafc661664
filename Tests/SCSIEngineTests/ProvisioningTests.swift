import Testing
@testable import SCSIEngine

@Suite struct WriteSameTests {
    func ws10(_ lba: UInt64, _ n: Int, unmap: Bool = false, anchor: Bool = false) -> [UInt8] {
        [0x41, (unmap ? 0x08 : 0) | (anchor ? 0x10 : 0)] + be32(lba) + [0] + be16(n) + [0]
    }
    func ws16(_ lba: UInt64, _ n: Int, unmap: Bool = false, ndob: Bool = false) -> [UInt8] {
        [0x93, (unmap ? 0x08 : 0) | (ndob ? 0x01 : 0)] + be64(lba) + be32(UInt64(n)) + [0, 0]
    }

    @Test func replicatesTheBlock() {
        let h = Harness()
        let block = pattern(512, seed: 5)
        let o = h.run(ws10(10, 4), dataOut: block)
        expectGood(o)
        #expect(o.result.transferLength == 512)
        #expect(h.store.bytes(10 * 512 ..< 14 * 512) == block + block + block + block)
        #expect(h.store.bytes(14 * 512 ..< 14 * 512 + 1) == [0])
    }

    @Test func zeroBlocksMeansToTheEnd() {
        let h = Harness(blocks: 50)
        expectGood(h.run(ws16(40, 0), dataOut: [UInt8](repeating: 9, count: 512)))
        #expect(h.store.bytes(40 * 512 ..< 50 * 512) == [UInt8](repeating: 9, count: 5120))
    }

    @Test func unmapOnThinDiscardsZeroPattern() {
        let h = Harness(thin: true)
        h.run(CDB.write10(0, 8), dataOut: [UInt8](repeating: 1, count: 4096))
        expectGood(h.run(ws10(2, 4, unmap: true), dataOut: [UInt8](repeating: 0, count: 512)))
        #expect(h.store.contents.withLock { $0.discards.map { [$0.0, $0.1] } } == [[1024, 2048]])
        #expect(h.store.bytes(1024 ..< 3072) == [UInt8](repeating: 0, count: 2048))
        // Non-zero pattern with UNMAP: deallocated all the same (LIO's choice; reads give zeros).
        h.run(CDB.write10(2, 1), dataOut: [UInt8](repeating: 1, count: 512))
        expectGood(h.run(ws10(2, 1, unmap: true), dataOut: [UInt8](repeating: 3, count: 512)))
        #expect(h.store.bytes(1024 ..< 1536) == [UInt8](repeating: 0, count: 512))
        // NDOB: zeros without a data-out buffer.
        let n = h.run(ws16(0, 2, unmap: true, ndob: true))
        expectGood(n)
        #expect(n.result.transferLength == 0)
        #expect(h.store.contents.withLock { $0.discards.count } == 3)
    }

    @Test func invalidRequests() {
        let h = Harness(blocks: 100)
        let block = [UInt8](repeating: 0, count: 512)
        let anchor = h.run(ws10(0, 1, anchor: true), dataOut: block)
        expectSense(anchor, 5, 0x2400)
        #expect(anchor.sks == [0xCC, 0, 1])
        // UNMAP on a fully provisioned LU.
        expectSense(h.run(ws10(0, 1, unmap: true), dataOut: block), 5, 0x2400)
        expectSense(h.run(ws10(99, 2), dataOut: block), 5, 0x2100)
        expectSense(h.run(ws10(0, 1), dataOut: []), 5, 0x0E03)
        expectSense(h.run(ws10(0, 1), dataOut: [UInt8](repeating: 0, count: 256)), 5, 0x0E03)
        let long = h.run(ws10(0, 1), dataOut: [UInt8](repeating: 1, count: 1024))
        expectSense(long, 5, 0x0E03)
        #expect(long.result.transferLength == 512)
        #expect(h.store.bytes(0 ..< 512) == [UInt8](repeating: 0, count: 512))
        let ro = Harness(readOnly: true)
        expectSense(ro.run(ws10(0, 1), dataOut: block), 7, 0x2700)
        // With UNMAP too, on a thick and on a thin LU: write protected, not an invalid field.
        expectSense(ro.run(ws10(0, 1, unmap: true), dataOut: block), 7, 0x2700)
        expectSense(Harness(thin: true, readOnly: true).run(ws10(0, 1, unmap: true), dataOut: block), 7, 0x2700)
    }
}

@Suite struct UnmapTests {
    func unmap(_ descriptors: [(UInt64, UInt32)], declared: Int? = nil) -> ([UInt8], [UInt8]) {
        var body: [UInt8] = []
        for (lba, n) in descriptors { body += be64(lba) + be32(UInt64(n)) + [0, 0, 0, 0] }
        let params = be16(6 + body.count) + be16(declared ?? body.count) + [0, 0, 0, 0] + body
        return ([0x42, 0, 0, 0, 0, 0, 0] + be16(params.count) + [0], params)
    }

    @Test func discardsEveryDescriptor() {
        let h = Harness(thin: true)
        h.run(CDB.write10(0, 16), dataOut: [UInt8](repeating: 1, count: 16 * 512))
        let (cdb, params) = unmap([(1, 2), (10, 3), (12, 0)])
        let o = h.run(cdb, dataOut: params)
        expectGood(o)
        #expect(h.store.contents.withLock { $0.discards.map { [$0.0, $0.1] } } == [[512, 1024], [5120, 1536]])
    }

    @Test func validation() {
        let h = Harness(blocks: 100, thin: true)
        let (cdb, params) = unmap([(99, 2)])
        expectSense(h.run(cdb, dataOut: params), 5, 0x2100)
        #expect(h.store.contents.withLock { $0.discards.isEmpty })
        expectSense(h.run([0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], dataOut: [0, 0, 0, 0]), 5, 0x1A00)
        expectGood(h.run([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
        let anchor = h.run([0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0], dataOut: params)
        expectSense(anchor, 5, 0x2400)
        let many = unmap((0 ..< 257).map { (UInt64($0 % 100), UInt32(0)) })
        let m = h.run(many.0, dataOut: many.1)
        expectSense(m, 5, 0x2600)
        // Not thin: UNMAP is not offered.
        expectSense(Harness().run(cdb, dataOut: params), 5, 0x2000)
    }
}

@Suite struct GetLBAStatusTests {
    func gls(_ lba: UInt64, alloc: Int = 1024) -> [UInt8] { [0x9E, 0x12] + be64(lba) + be32(UInt64(alloc)) + [0, 0] }

    @Test func mappedAndDeallocatedExtents() {
        let h = Harness(blocks: 100, thin: true)
        h.run(CDB.write10(10, 5), dataOut: [UInt8](repeating: 1, count: 5 * 512))
        let o = h.run(gls(0), dataIn: 1024)
        expectGood(o)
        let d = o.data
        #expect(Array(d[0 ..< 8]) == be32(4 + 3 * 16) + [0, 0, 0, 0])
        #expect(Array(d[8 ..< 24]) == be64(0) + be32(10) + [1, 0, 0, 0])
        #expect(Array(d[24 ..< 40]) == be64(10) + be32(5) + [0, 0, 0, 0])
        #expect(Array(d[40 ..< 56]) == be64(15) + be32(85) + [1, 0, 0, 0])
        let one = h.run(gls(12, alloc: 24), dataIn: 24)
        #expect(one.data == be32(20) + [0, 0, 0, 0] + be64(12) + be32(3) + [0, 0, 0, 0])
    }

    @Test func thickIsAllMappedAndRangeChecked() {
        let h = Harness(blocks: 100)
        #expect(h.run(gls(5), dataIn: 1024).data == be32(20) + [0, 0, 0, 0] + be64(5) + be32(95) + [0, 0, 0, 0])
        expectSense(h.run(gls(100), dataIn: 24), 5, 0x2100)
        expectSense(h.run(gls(UInt64.max), dataIn: 24), 5, 0x2100)
    }
}

import Testing
@testable import SCSIEngine

@Suite struct VerifyTests {
    func verify10(_ lba: UInt64, _ n: Int, bytchk: UInt8) -> [UInt8] { [0x2F, bytchk << 1] + be32(lba) + [0] + be16(n) + [0] }

    @Test func bytchkModes() {
        let h = Harness()
        let data = pattern(1024, seed: 1)
        h.run(CDB.write10(10, 2), dataOut: data)
        expectGood(h.run(verify10(10, 2, bytchk: 0)))
        let ok = h.run(verify10(10, 2, bytchk: 1), dataOut: data)
        expectGood(ok)
        #expect(ok.result.transferLength == 1024)
        var bad = data
        bad[700] ^= 0xFF
        let mis = h.run(verify10(10, 2, bytchk: 1), dataOut: bad)
        expectSense(mis, 0x0E, 0x1D00)
        #expect(mis.result.sense[0] == 0xF0)
        #expect(mis.information == 700)
        expectSense(h.run(verify10(10, 2, bytchk: 2), dataOut: data), 5, 0x2400)
    }

    @Test func bytchkThreeComparesOneBlockToEach() {
        let h = Harness()
        let block = pattern(512, seed: 4)
        h.run(CDB.write10(0, 3), dataOut: block + block + block)
        let o = h.run([0x8F, 0x06] + be64(0) + be32(3) + [0, 0], dataOut: block)
        expectGood(o)
        #expect(o.result.transferLength == 512)
        h.store.fill(1030 ..< 1031, with: 0xFF)
        let m = h.run([0x8F, 0x06] + be64(0) + be32(3) + [0, 0], dataOut: block)
        expectSense(m, 0x0E, 0x1D00)
        #expect(m.information == 1030)
    }

    @Test func outOfRange() {
        expectSense(Harness(blocks: 10).run(verify10(9, 2, bytchk: 0)), 5, 0x2100)
    }
}

@Suite struct CompareAndWriteTests {
    func caw(_ lba: UInt64, _ n: UInt8) -> [UInt8] { [0x89, 0] + be64(lba) + [0, 0, 0, n, 0, 0] }

    @Test func matchWrites() {
        let h = Harness()
        let old = pattern(1024, seed: 2)
        let new = pattern(1024, seed: 99)
        h.run(CDB.write10(20, 2), dataOut: old)
        let o = h.run(caw(20, 2), dataOut: old + new)
        expectGood(o)
        #expect(o.result.transferLength == 2048)
        #expect(h.store.bytes(20 * 512 ..< 22 * 512) == new)
    }

    @Test func miscompareReportsOffsetAndLeavesData() {
        let h = Harness()
        let old = pattern(1024, seed: 2)
        h.run(CDB.write10(20, 2), dataOut: old)
        var expected = old
        expected[513] ^= 1
        let o = h.run(caw(20, 2), dataOut: expected + [UInt8](repeating: 0, count: 1024))
        expectSense(o, 0x0E, 0x1D00)
        #expect(o.result.sense[0] & 0x80 != 0)
        #expect(o.information == 513)
        #expect(h.store.bytes(20 * 512 ..< 22 * 512) == old)
    }

    @Test func limitsAndShortData() {
        let h = Harness(blocks: 300)
        let big = h.run(caw(0, 255), dataOut: [UInt8](repeating: 0, count: 2 * 255 * 512))
        expectGood(big)
        expectSense(h.run(caw(299, 2), dataOut: [UInt8](repeating: 0, count: 2048)), 5, 0x2100)
        let short = h.run(caw(0, 1), dataOut: [UInt8](repeating: 0, count: 512))
        expectSense(short, 5, 0x0E03)
        #expect(short.result.transferLength == 1024)
        expectGood(h.run(caw(0, 0)))
        // Zero blocks with data: a count that wrapped (256 in one byte); refused.
        expectSense(h.run(caw(0, 0), dataOut: [UInt8](repeating: 0, count: 2 * 256 * 512)), 5, 0x2400)
        // Data-out longer than 2 x NUMBER OF LOGICAL BLOCKS: the split is ambiguous.
        let long = h.run(caw(0, 1), dataOut: [UInt8](repeating: 0, count: 4 * 512))
        expectSense(long, 5, 0x2400)
        #expect(long.sks == [0xC0, 0, 13])
    }

    @Test func concurrentCompareAndWriteIsAtomic() async {
        // Every CAW expects the counter value it read and writes value+1; with atomicity,
        // exactly one of each pair of competing CAWs succeeds and the final count equals the
        // number of successes.
        let h = Harness()
        h.store.fill(0 ..< 512, with: 0)
        let target = h.target
        let nexus = h.a
        let successes = await withTaskGroup(of: Int.self) { group in
            for _ in 0 ..< 4 {
                group.addTask {
                    var ok = 0
                    for _ in 0 ..< 200 {
                        var cur = [UInt8](repeating: 0, count: 512)
                        cur.withUnsafeMutableBytes { p in
                            [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0].withUnsafeBytes { c in
                                _ = target.execute(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataOut: .empty, dataIn: IOVectors(p))
                            }
                        }
                        var next = cur
                        next[0] &+= 1
                        var out = cur + next
                        let r = out.withUnsafeMutableBytes { p in
                            ([0x89, 0] + be64(0) + [0, 0, 0, 1, 0, 0]).withUnsafeBytes { c in
                                target.execute(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataOut: IOVectors(p), dataIn: .empty)
                            }
                        }
                        if r.status == .good { ok += 1 }
                    }
                    return ok
                }
            }
            var total = 0
            for await n in group { total += n }
            return total
        }
        #expect(Int(h.store.bytes(0 ..< 1)[0]) == successes % 256)
        #expect(successes > 0)
    }
}

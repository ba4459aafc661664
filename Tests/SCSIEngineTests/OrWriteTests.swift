import Testing
@testable import SCSIEngine

/// ORWRITE(16) (SBC-4 5.9): old OR new, with the usual range, protection and write-protect checks.
@Suite struct OrWriteTests {
    func orWrite16(_ lba: UInt64, _ n: Int, flags: UInt8 = 0) -> [UInt8] { [0x8B, flags] + be64(lba) + be32(UInt64(n)) + [0, 0] }

    @Test func eachBlockBecomesOldOrNew() {
        let h = Harness(blocks: 64)
        h.run(CDB.write10(60, 4), dataOut: [UInt8](repeating: 0x0F, count: 1024) + [UInt8](repeating: 0x00, count: 1024))
        let durableBefore = h.store.contents.withLock { $0.durableWrites }
        let mask = [UInt8](repeating: 0xA0, count: 1536) + [UInt8](repeating: 0x05, count: 512)
        let o = h.run(orWrite16(60, 4, flags: 0x1A), dataOut: mask)  // DPO, FUA, FUA_NV are accepted
        expectGood(o)
        #expect(o.result.transferLength == 2048)
        #expect(h.store.bytes(60 * 512 ..< 62 * 512) == [UInt8](repeating: 0xAF, count: 1024))
        #expect(h.store.bytes(62 * 512 ..< 63 * 512) == [UInt8](repeating: 0xA0, count: 512))
        #expect(h.store.bytes(63 * 512 ..< 64 * 512) == [UInt8](repeating: 0x05, count: 512))
        let durableAfter = h.store.contents.withLock { $0.durableWrites }
        #expect(durableAfter == durableBefore + 1, "FUA: the ORWRITE's write reached the media")
        expectGood(h.run(orWrite16(0, 0)))
    }

    @Test func refusals() {
        let h = Harness(blocks: 64)
        expectSense(h.run(orWrite16(63, 2), dataOut: [UInt8](repeating: 1, count: 1024)), 5, 0x2100)
        for orprotect in 1 ... 7 {
            expectSense(h.run(orWrite16(0, 1, flags: UInt8(orprotect) << 5), dataOut: [UInt8](repeating: 1, count: 512)), 5, 0x2400)
        }
        expectSense(Harness(blocks: 8, readOnly: true).run(orWrite16(0, 1), dataOut: [UInt8](repeating: 1, count: 512)), 7, 0x2700)
        #expect(h.store.bytes(0 ..< 512) == [UInt8](repeating: 0, count: 512), "a refused ORWRITE wrote nothing")
    }
}

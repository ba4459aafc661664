import Dispatch
import Synchronization
import Testing
@testable import SCSIEngine

/// WRITE ATOMIC(16) (SBC-4 5.48) and the atomic fields of VPD 0xB0 (SBC-4 6.6.4).
@Suite struct WriteAtomicTests {
    func writeAtomic16(_ lba: UInt64, _ n: Int, flags: UInt8 = 0, boundary: Int = 0) -> [UInt8] {
        [0x9C, flags] + be64(lba) + be16(boundary) + be16(n) + [0, 0]
    }

    @Test func writesAndReportsItsLimits() {
        let h = Harness(blocks: 64)
        let data = pattern(8 * 512, seed: 3)
        let o = h.run(writeAtomic16(8, 8, flags: 0x18), dataOut: data) // DPO, FUA
        expectGood(o)
        #expect(o.result.transferLength == 4096)
        #expect(h.store.bytes(8 * 512 ..< 16 * 512) == data)
        #expect(h.store.contents.withLock { $0.durableWrites } == 1, "FUA")
        expectGood(h.run(writeAtomic16(0, 0)))
        let b0 = h.run(CDB.inquiry(evpd: true, page: 0xB0), dataIn: 255).data
        #expect(b0.count == 64)
        #expect(Array(b0[44 ..< 64]) == be32(8) + be32(8) + be32(1) + be32(0) + be32(0))
        // 4 KiB blocks: one block at a time, anywhere.
        let big = Harness(blocks: 16, blockSize: 4096)
        #expect(Array(big.run(CDB.inquiry(evpd: true, page: 0xB0), dataIn: 255).data[44 ..< 52]) == be32(1) + be32(1))
        expectGood(big.run(writeAtomic16(3, 1), dataOut: pattern(4096, seed: 9)))
    }

    @Test func refusals() {
        let h = Harness(blocks: 64)
        let block = [UInt8](repeating: 1, count: 512)
        expectSense(h.run(writeAtomic16(63, 2), dataOut: block + block), 5, 0x2100)
        expectSense(h.run(writeAtomic16(0, 9), dataOut: [UInt8](repeating: 1, count: 9 * 512)), 5, 0x2400)
        let misaligned = h.run(writeAtomic16(4, 1), dataOut: block)
        expectSense(misaligned, 5, 0x2400)
        #expect(misaligned.sks == [0xC0, 0, 2])
        expectSense(h.run(writeAtomic16(0, 1, boundary: 1), dataOut: block), 5, 0x2400)
        for wrprotect in 1 ... 7 {
            expectSense(h.run(writeAtomic16(0, 1, flags: UInt8(wrprotect) << 5), dataOut: block), 5, 0x2400)
        }
        expectSense(h.run(writeAtomic16(0, 2), dataOut: block), 5, 0x0E03) // short data-out writes nothing
        expectSense(Harness(blocks: 8, readOnly: true).run(writeAtomic16(0, 1), dataOut: block), 7, 0x2700)
        #expect(h.store.bytes(0 ..< 1024) == [UInt8](repeating: 0, count: 1024), "nothing refused was written")
    }

    /// A read running beside the atomic write sees all old or all new blocks, never a mix,
    /// even though the store lands the write in two halves.
    @Test func readsNeverSeeHalfAWrite() {
        let h = Harness(blocks: 64)
        h.store.contents.withLock { $0.tearWrites = true }
        final class Counters: Sendable {
            let stop = Atomic<Bool>(false)
            let torn = Atomic<Int>(0)
            let reads = Atomic<Int>(0)
        }
        let c = Counters()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            while !c.stop.load(ordering: .relaxed) {
                let o = h.run(CDB.read10(8, 8), nexus: h.b, dataIn: 4096)
                c.reads.add(1, ordering: .relaxed)
                if Set(o.data).count != 1 { c.torn.add(1, ordering: .relaxed) }
            }
        }
        for i in 0 ..< 50 {
            let v = UInt8(i % 2 == 0 ? 0xAA : 0x55)
            expectGood(h.run(writeAtomic16(8, 8), dataOut: [UInt8](repeating: v, count: 4096)))
        }
        c.stop.store(true, ordering: .relaxed)
        group.wait()
        print("reads", c.reads.load(ordering: .relaxed), "torn", c.torn.load(ordering: .relaxed))
        #expect(c.reads.load(ordering: .relaxed) > 10)
        #expect(c.torn.load(ordering: .relaxed) == 0)
    }
}

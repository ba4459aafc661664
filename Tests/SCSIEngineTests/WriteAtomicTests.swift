import Dispatch
import Glibc
import Synchronization
import Testing
@testable import SCSIEngine

/// WRITE ATOMIC(16) (SBC-4 5.48) and the atomic fields of VPD 0xB0 (SBC-4 6.6.4).
@Suite struct WriteAtomicTests {
    func writeAtomic16(_ lba: UInt64, _ n: Int, flags: UInt8 = 0, boundary: Int = 0) -> [UInt8] {
        [0x9C, flags] + be64(lba) + be16(boundary) + be16(n) + [0, 0]
    }

    @Test func writesAndReportsItsLimits() {
        let h = Harness(blocks: 4096)
        let data = pattern(300 * 512, seed: 3)
        let o = h.run(writeAtomic16(7, 300, flags: 0x18), dataOut: data) // any LBA, DPO and FUA
        expectGood(o)
        #expect(o.result.transferLength == 300 * 512)
        #expect(h.store.bytes(7 * 512 ..< 307 * 512) == data)
        #expect(h.store.contents.withLock { $0.atomicWrites } == 1, "through the store's atomic write")
        expectGood(h.run(writeAtomic16(0, 0)))
        let b0 = h.run(CDB.inquiry(evpd: true, page: 0xB0), dataIn: 255).data
        #expect(b0.count == 64)
        // 1 MiB of 512-byte blocks; alignment and granularity 0: any LBA, any length.
        #expect(Array(b0[44 ..< 64]) == be32(2048) + be32(0) + be32(0) + be32(0) + be32(0))
    }

    /// A store that cannot promise atomic writes has no WRITE ATOMIC and reports no limits.
    @Test func absentWhereTheStoreCannot() {
        let h = Harness(blocks: 64)
        let store = MemoryStore(blocks: 64, atomicWriteLimit: 0)
        try! h.target.addLogicalUnit(1, store: store, configuration: LogicalUnitConfiguration(serialNumber: "S2", uniqueID: 2))
        _ = h.run([0, 0, 0, 0, 0, 0], lun: 1)
        expectSense(h.run(writeAtomic16(0, 1), lun: 1, dataOut: [UInt8](repeating: 1, count: 512)), 5, 0x2000)
        #expect(Array(h.run(CDB.inquiry(evpd: true, page: 0xB0), lun: 1, dataIn: 255).data[44 ..< 48]) == be32(0))
        let rsoc = h.run([0xA3, 0x0C, 0x01, 0x9C, 0, 0, 0, 0, 0x10, 0, 0, 0], lun: 1, dataIn: 4096)
        #expect(rsoc.data[1] & 0x07 == 0x01, "REPORT SUPPORTED OPERATION CODES: not supported")
        #expect(store.bytes(0 ..< 512) == [UInt8](repeating: 0, count: 512))
    }

    @Test func refusals() {
        let h = Harness(blocks: 4096)
        let block = [UInt8](repeating: 1, count: 512)
        expectSense(h.run(writeAtomic16(4095, 2), dataOut: block + block), 5, 0x2100)
        expectSense(h.run(writeAtomic16(4095, 3000), dataOut: []), 5, 0x2100) // the range before the length
        expectSense(h.run(writeAtomic16(0, 2049), dataOut: [UInt8](repeating: 1, count: 2049 * 512)), 5, 0x2400)
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
            repeat {
                let o = h.run(CDB.read10(8, 8), nexus: h.b, dataIn: 4096)
                c.reads.add(1, ordering: .relaxed)
                if Set(o.data).count != 1 { c.torn.add(1, ordering: .relaxed) }
            } while !c.stop.load(ordering: .relaxed)
        }
        // The reader runs before the writes start (the pool may be busy with other tests).
        while c.reads.load(ordering: .relaxed) == 0 { usleep(1000) }
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

import Synchronization
import Testing
@testable import SCSIEngine

@Suite struct DataProtectTests {
    @Test func everyWritingCommandIsRefusedOnReadOnlyLUs() {
        let h = Harness(thin: true, configuration: .init(serialNumber: "r", uniqueID: 1, readOnly: true))
        let block = [UInt8](repeating: 1, count: 512)
        expectSense(h.run(CDB.write6(0, 1), dataOut: block), 7, 0x2700)
        expectSense(h.run(CDB.write12(0, 1), dataOut: block), 7, 0x2700)
        expectSense(h.run([0x2E, 0] + be32(0) + [0] + be16(1) + [0], dataOut: block), 7, 0x2700)
        expectSense(h.run([0x93, 0] + be64(0) + be32(1) + [0, 0], dataOut: block), 7, 0x2700)
        expectSense(h.run([0x89, 0] + be64(0) + [0, 0, 0, 1, 0, 0], dataOut: block + block), 7, 0x2700)
        let unmapParams = be16(22) + be16(16) + [0, 0, 0, 0] + be64(0) + be32(1) + [0, 0, 0, 0]
        expectSense(h.run([0x42, 0, 0, 0, 0, 0, 0] + be16(unmapParams.count) + [0], dataOut: unmapParams), 7, 0x2700)
        #expect(h.store.contents.withLock { $0.plainWrites + $0.durableWrites + $0.discards.count } == 0)
        // Reads, flushes and verifies still work.
        expectGood(h.run(CDB.read10(0, 1), dataIn: 512))
        expectGood(h.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    }
}

@Suite struct MiscCommandTests {
    @Test func requestSenseWithoutPendingCondition() {
        let o = Harness().run(CDB.requestSense(252), dataIn: 252)
        expectGood(o)
        #expect(o.data == [0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(o.result.transferLength == 18)
    }

    @Test func missingLUNRefusesEverythingElse() {
        let h = Harness()
        expectSense(h.run(CDB.read10(0, 1), lun: 3, dataIn: 512), 5, 0x2500)
        expectSense(h.run(CDB.inquiry(evpd: true, page: 0x80), lun: 3, dataIn: 255), 5, 0x2500)
        expectSense(h.run(CDB.prIn(0), lun: 3, dataIn: 64), 5, 0x2500)
    }

    @Test func modeSense10AllPages() {
        let o = Harness(blocks: 8).run(CDB.modeSense10(page: 0x3F), dataIn: 1024)
        expectGood(o)
        #expect(o.data.count == 8 + 8 + 20 + 12 + 12)
        #expect(Array(o.data[0 ..< 8]) == be16(58) + [0, 0x10, 0, 0] + be16(8))
        #expect(Array(o.data[8 ..< 16]) == be32(8) + [0, 0, 2, 0])
    }

    @Test func preemptAndAbortTakesOverTheReservation() {
        let h = Harness()
        let aborted = Mutex<[(UInt64, [NexusID])]>([])
        h.target.setAbortHandler { lun, nexuses in aborted.withLock { $0.append((lun, nexuses)) } }
        expectGood(h.run(CDB.prOut(0), dataOut: CDB.prParams(key: 0, sak: 0xA)))
        expectGood(h.run(CDB.prOut(0), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0xB)))
        expectGood(h.run(CDB.prOut(1, type: 6), dataOut: CDB.prParams(key: 0xA, sak: 0)))
        #expect(h.run(CDB.read10(0, 1), nexus: h.target.openNexus(ITNexus(initiatorName: "x", initiatorPortID: 9, targetName: h.target.name)),
                      dataIn: 512).status == .checkCondition) // power on first
        expectGood(h.run(CDB.prOut(5, type: 6), nexus: h.b, dataOut: CDB.prParams(key: 0xB, sak: 0xA)))
        #expect(aborted.withLock { $0.map(\.0) } == [0])
        #expect(aborted.withLock { $0.map(\.1) } == [[h.a]])
        let res = h.run(CDB.prIn(1), nexus: h.b, dataIn: 64).data
        #expect(Array(res[8 ..< 16]) == be64(0xB) && res[21] == 6)
        expectSense(h.run(CDB.tur), 6, 0x2A05)
        // The preempted nexus is no registrant any more: exclusive access, registrants only.
        #expect(h.run(CDB.read10(0, 1), dataIn: 512).status == .reservationConflict)
        // Its old key no longer works.
        #expect(h.run(CDB.prOut(0), dataOut: CDB.prParams(key: 0xA, sak: 0xC)).status == .reservationConflict)
    }

    @Test func registerAndIgnoreReplacesKeyAndReadFullStatusForAllRegistrants() {
        let h = Harness()
        expectGood(h.run(CDB.prOut(6), dataOut: CDB.prParams(key: 0, sak: 0x1)))
        expectGood(h.run(CDB.prOut(6), dataOut: CDB.prParams(key: 0x99, sak: 0x2)))
        expectGood(h.run(CDB.prOut(6), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0x3)))
        expectGood(h.run(CDB.prOut(1, type: 8), dataOut: CDB.prParams(key: 0x2, sak: 0)))
        let d = h.run(CDB.prIn(3), dataIn: 1024).data
        // Two descriptors, both reservation holders of type 8.
        #expect(Array(d[8 ..< 16]) == be64(2))
        #expect(Array(d[20 ... 21]) == [1, 8])
        let second = 8 + 24 + (Int(d[28]) << 24 | Int(d[29]) << 16 | Int(d[30]) << 8 | Int(d[31]))
        #expect(Array(d[second ..< second + 8]) == be64(3))
        #expect(Array(d[second + 12 ... second + 13]) == [1, 8])
        #expect(Array(d[0 ..< 4]) == be32(3))
    }
}

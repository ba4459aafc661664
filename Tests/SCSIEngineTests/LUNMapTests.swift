import Backstores
import Testing
@testable import SCSIEngine

/// Per-initiator LUN maps: which LUs a nexus sees, at which numbers, read-only or not.
@Suite struct LUNMapTests {
    /// LUs 0, 1, 2, each filled with its own byte; nexus a matched by a map, b by none.
    func threeLUs() -> (Harness, [MemoryStore]) {
        let h = Harness(blocks: 64)
        var stores = [h.store]
        for lun: UInt64 in [1, 2] {
            let s = MemoryStore(blocks: 64)
            try! h.target.addLogicalUnit(lun, store: s, configuration: LogicalUnitConfiguration(serialNumber: "SER000\(lun + 1)", uniqueID: 0x1000 + lun))
            stores.append(s)
        }
        for (i, s) in stores.enumerated() { s.fill(0 ..< 64 * 512, with: UInt8(0xA0 + i)) }
        h.target.setLUNMaps([
            LUNMap(initiators: ["IQN.2026-01.test:A*"], entries: [LUNMap.Entry(lun: 0, unit: 2), LUNMap.Entry(lun: 5, unit: 0, readOnly: true)]),
        ])
        for n in [h.a, h.b] { for lun: UInt64 in [0, 1, 2, 5] { _ = h.run([0, 0, 0, 0, 0, 0], lun: lun, nexus: n) } }
        return (h, stores)
    }

    func reportedLUNs(_ h: Harness, _ nexus: NexusID) -> [UInt64] {
        let o = h.run([0xA0, 0, 0, 0, 0, 0] + be32(1024) + [0, 0], nexus: nexus, dataIn: 1024)
        expectGood(o)
        let count = Int(UInt32(o.data[0]) << 24 | UInt32(o.data[1]) << 16 | UInt32(o.data[2]) << 8 | UInt32(o.data[3])) / 8
        return (0 ..< count).map { i in UInt64(o.data[8 + 8 * i] & 0x3F) << 8 | UInt64(o.data[9 + 8 * i]) }
    }

    @Test func patterns() {
        #expect(LUNMap.glob(Array("iqn.*:host?".utf8), Array("iqn.1994-05.com.redhat:host7".utf8)))
        #expect(!LUNMap.glob(Array("iqn.*:host?".utf8), Array("iqn.1994-05.com.redhat:host17".utf8)))
        #expect(LUNMap.glob(Array("*".utf8), Array("".utf8)))
        #expect(LUNMap.glob(Array("a*b*c".utf8), Array("aXXbYYbZc".utf8)))
        #expect(!LUNMap.glob(Array("a*b*c".utf8), Array("aXXbYYbZ".utf8)))
        #expect(LUNMap(initiators: ["IQN.X:Y"], entries: []).matches(initiatorName: "iqn.x:y"))
        // A name with wildcard characters of its own is still matched by the pattern's `*`.
        #expect(LUNMap.glob(Array("*".utf8), Array("*x".utf8)))
        #expect(LUNMap.glob(Array("iqn.*".utf8), Array("iqn.*?*".utf8)))
        #expect(!LUNMap.glob(Array("iqn.a*".utf8), Array("iqn.*a".utf8)))
    }

    @Test func taskManagementAndTheFabricSeeTheMap() {
        let (h, _) = threeLUs()
        #expect(h.target.reaches(lun: 5, nexus: h.a) && !h.target.reaches(lun: 1, nexus: h.a))
        #expect(h.target.reaches(lun: 1, nexus: h.b) && !h.target.reaches(lun: 5, nexus: h.b))
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 1, nexus: h.a) == .lunDoesNotExist)
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 5, nexus: h.a) == .functionComplete)
    }

    @Test func aReadOnlyMappingCannotChangeTheLUForOthers() {
        let (h, _) = threeLUs()
        var caching = [UInt8](repeating: 0, count: 20)
        caching[0] = 0x08; caching[1] = 0x12
        let params = [0, 0, 0, 0] + caching
        expectSense(h.run(CDB.modeSelect6(params.count), lun: 5, nexus: h.a, dataOut: params), 0x07, 0x2700)
        expectSense(h.run([0x1B, 0, 0, 0, 0x00, 0], lun: 5, nexus: h.a), 0x07, 0x2700)  // STOP
        expectGood(h.run([0x1B, 0, 0, 0, 0x01, 0], lun: 5, nexus: h.a))                 // START is harmless
        expectGood(h.run(CDB.modeSelect6(params.count), lun: 0, nexus: h.b, dataOut: params))
    }

    @Test func eachInitiatorSeesItsOwnLUNs() {
        let (h, _) = threeLUs()
        #expect(reportedLUNs(h, h.a) == [0, 5])
        #expect(reportedLUNs(h, h.b) == [0, 1, 2])
        // a's LUN 0 is LU 2; b's LUN 0 is LU 0.
        let a0 = h.run(CDB.read10(0, 1), lun: 0, nexus: h.a, dataIn: 512)
        expectGood(a0)
        #expect(a0.data == [UInt8](repeating: 0xA2, count: 512))
        #expect(h.run(CDB.read10(0, 1), lun: 0, nexus: h.b, dataIn: 512).data == [UInt8](repeating: 0xA0, count: 512))
        // An unmapped number is no LU at all for a: INQUIRY says so, other commands fail.
        let inq = h.run(CDB.inquiry(alloc: 36), lun: 1, nexus: h.a, dataIn: 36)
        expectGood(inq)
        #expect(inq.data[0] == 0x7F)
        expectSense(h.run(CDB.read10(0, 1), lun: 1, nexus: h.a, dataIn: 512), 0x05, 0x2500)
        // VPD 0x80: a's LUN 5 is LU 0 (its serial).
        let serial = h.run(CDB.inquiry(evpd: true, page: 0x80), lun: 5, nexus: h.a, dataIn: 255)
        #expect(String(decoding: serial.data.dropFirst(4), as: UTF8.self).hasPrefix("SER0001"))
    }

    @Test func aReadOnlyMappingRefusesWritesForThatInitiatorOnly() {
        let (h, stores) = threeLUs()
        let data = [UInt8](repeating: 0x55, count: 512)
        expectSense(h.run(CDB.write10(0, 1), lun: 5, nexus: h.a, dataOut: data), 0x07, 0x2700)
        #expect(stores[0].bytes(0 ..< 512) == [UInt8](repeating: 0xA0, count: 512))
        // MODE SENSE shows WP to a, not to b.
        #expect(h.run(CDB.modeSense6(page: 0x3F), lun: 5, nexus: h.a, dataIn: 255).data[2] & 0x80 == 0x80)
        #expect(h.run(CDB.modeSense6(page: 0x3F), lun: 0, nexus: h.b, dataIn: 255).data[2] & 0x80 == 0)
        expectGood(h.run(CDB.write10(0, 1), lun: 0, nexus: h.b, dataOut: data))
        #expect(stores[0].bytes(0 ..< 512) == data)
        // a writes its read-write mapping (LU 2).
        expectGood(h.run(CDB.write10(1, 1), lun: 0, nexus: h.a, dataOut: data))
        #expect(stores[2].bytes(512 ..< 1024) == data)
    }

    @Test func aChangedMapIsAnnouncedToTheNexusesItChanges() {
        let (h, _) = threeLUs()
        h.target.setLUNMaps([LUNMap(initiators: ["iqn.2026-01.test:a"], entries: [LUNMap.Entry(lun: 3, unit: 0)])])
        expectSense(h.run([0, 0, 0, 0, 0, 0], lun: 3, nexus: h.a), 0x06, 0x3F0E)  // REPORTED LUNS DATA HAS CHANGED
        expectGood(h.run([0, 0, 0, 0, 0, 0], lun: 0, nexus: h.b))                 // b's view did not change
        #expect(reportedLUNs(h, h.a) == [3])
        // A map for everyone else with no LUNs hides them from b.
        h.target.setLUNMaps([LUNMap(initiators: ["iqn.2026-01.test:a"], entries: [LUNMap.Entry(lun: 3, unit: 0)]),
                             LUNMap(initiators: ["*"], entries: [])])
        #expect(reportedLUNs(h, h.b) == [])
        expectSense(h.run([0, 0, 0, 0, 0, 0], lun: 0, nexus: h.b), 0x05, 0x2500)
    }

    @Test func extendedCopyReachesOnlyMappedLUsAndRespectsReadOnlyMappings() {
        let (h, stores) = threeLUs()
        func target(_ lun: UInt64) -> [UInt8] {
            [0xE4, 0, 0, 0, 0x01, 0x03, 0, 16] + h.target.unit(lun)!.naaIdentifier + [0, 0, 0, 0, 0, 0, 0x02, 0x00]
        }
        func list(_ targets: [[UInt8]]) -> [UInt8] {
            let t = targets.flatMap { $0 }
            let seg: [UInt8] = [0x02, 0] + be16(0x18) + be16(0) + be16(1) + [0, 0] + be16(1) + be64(0) + be64(0)
            return [1, 0x10] + be16(t.count) + [0, 0, 0, 0] + be32(UInt64(seg.count)) + be32(0) + t + seg
        }
        func xcopy(_ p: [UInt8]) -> [UInt8] { [0x83, 0] + [UInt8](repeating: 0, count: 8) + be32(UInt64(p.count)) + [0, 0] }
        // LU 1 is not mapped for a: unreachable, as another target's LU would be.
        let hidden = list([target(1), target(2)])
        expectSense(h.run(xcopy(hidden), lun: 0, nexus: h.a, dataOut: hidden), 0x0A, 0x0804)
        // LU 0 is read-only for a: no copy into it.
        let intoReadOnly = list([target(2), target(0)])
        expectSense(h.run(xcopy(intoReadOnly), lun: 0, nexus: h.a, dataOut: intoReadOnly), 0x07, 0x2700)
        #expect(stores[0].bytes(0 ..< 512) == [UInt8](repeating: 0xA0, count: 512))
        // From LU 0 into LU 2: both mapped, the destination writable.
        let allowed = list([target(0), target(2)])
        expectGood(h.run(xcopy(allowed), lun: 0, nexus: h.a, dataOut: allowed))
        #expect(stores[2].bytes(0 ..< 512) == [UInt8](repeating: 0xA0, count: 512))
    }
}

import Backstores
import Foundation
import Testing
@testable import SCSIEngine

/// MODE SELECT with SP (SPC-4 6.9): saved pages in a real file, used at every start and reset.
@Suite struct SavedModePagesTests {
    let directory = NSTemporaryDirectory() + "swtgt-modepages-" + UUID().uuidString
    var path: String { directory + "/lu.modepages" }

    func harness(writeCache: Bool = true) -> Harness {
        var c = LogicalUnitConfiguration(serialNumber: "SER0001", uniqueID: 7, writeCacheEnabled: writeCache)
        c.savedModePages = DurableFile(path: path)
        return Harness(configuration: c)
    }

    func cachingPage(wce: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 20)
        p[0] = 0x08; p[1] = 0x12; p[2] = wce ? 0x04 : 0
        return p
    }

    func controlPage(_ h: Harness, dsense: Bool) -> [UInt8] {
        var p = Array(h.run(CDB.modeSense6(page: 0x0A, dbd: true), dataIn: 255).data[4...])
        p[0] = 0x0A
        p[2] = dsense ? 0x04 : 0
        return p
    }

    func wce(_ h: Harness, pc: UInt8 = 0) -> Bool? {
        let o = h.run(CDB.modeSense6(page: 0x08, pc: pc, dbd: true), dataIn: 255)
        return o.status == .good ? o.data[6] & 0x04 != 0 : nil
    }

    @Test func savedPagesAreTheValuesOfTheNextStartAndOfEveryReset() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let h = harness()
            // PS is set on the pages that can be saved.
            #expect(h.run(CDB.modeSense6(page: 0x08, dbd: true), dataIn: 255).data[4] == 0x88)
            let params = [0, 0, 0, 0] + cachingPage(wce: false) + controlPage(h, dsense: true)
            expectGood(h.run(CDB.modeSelect6(params.count, sp: true), dataOut: params))
            #expect(FileManager.default.fileExists(atPath: path))
            #expect(wce(h, pc: 3) == false)
            // A change without SP is current only: a LU reset goes back to the saved values.
            let on = [0, 0, 0, 0] + cachingPage(wce: true)
            expectGood(h.run(CDB.modeSelect6(on.count), dataOut: on))
            #expect(wce(h) == true && wce(h, pc: 3) == false)
            #expect(h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.a) == .functionComplete)
            _ = h.run(CDB.tur)
            #expect(wce(h) == false)
        }
        // The next start: WCE off and descriptor sense, as saved; the defaults are unchanged.
        let h = harness()
        #expect(wce(h) == false)
        #expect(wce(h, pc: 2) == true)
        #expect(h.run(CDB.read10(5000, 1), dataIn: 512).result.sense.first == 0x72)
        h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512))
        #expect(h.store.contents.withLock { $0.durableWrites } == 1)  // write-through, as saved
    }

    @Test func anAdminsLaterWriteCacheChangeWinsOverTheSavedWCE() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let h = harness(writeCache: true)
            let off = [0, 0, 0, 0] + cachingPage(wce: false)
            expectGood(h.run(CDB.modeSelect6(off.count, sp: true), dataOut: off))
        }
        #expect(wce(harness(writeCache: true)) == false)   // same configuration: the saved value
        #expect(wce(harness(writeCache: false)) == false)  // the admin changed it: the admin's value
        do {
            let h = harness(writeCache: false)
            let on = [0, 0, 0, 0] + cachingPage(wce: true)
            expectGood(h.run(CDB.modeSelect6(on.count, sp: true), dataOut: on))
        }
        #expect(wce(harness(writeCache: false)) == true)
        #expect(wce(harness(writeCache: true)) == true)
    }

    @Test func withoutAPlaceToSaveSPIsRefused() {
        let h = Harness()
        let p = [0, 0, 0, 0] + cachingPage(wce: false)
        let o = h.run(CDB.modeSelect6(p.count, sp: true), dataOut: p)
        expectSense(o, 5, 0x2400)
        #expect(wce(h) == true)
        expectSense(h.run(CDB.modeSense6(page: 0x08, pc: 3), dataIn: 255), 5, 0x3900)
        #expect(h.run(CDB.modeSense6(page: 0x08, dbd: true), dataIn: 255).data[4] == 0x08)  // PS 0
    }

    @Test func aDamagedFileStopsTheLU() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data([9, 9]).write(to: URL(fileURLWithPath: path))
        var c = LogicalUnitConfiguration(serialNumber: "S", uniqueID: 1)
        c.savedModePages = DurableFile(path: path)
        #expect(throws: SCSITarget.ConfigurationError.modePagesUnreadable("the saved mode pages are damaged")) {
            try SCSITarget(name: "iqn.2026-01.test:t").addLogicalUnit(0, store: MemoryStore(blocks: 8), configuration: c)
        }
    }
}

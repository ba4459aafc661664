import Backstores
import Foundation
import Testing
@testable import SCSIEngine

/// Persistent reservations through a power loss (APTPL, SPC-4 5.13.5), kept in a real file.
@Suite struct APTPLTests {
    let directory: String
    let path: String

    init() throws {
        directory = NSTemporaryDirectory() + "swtgt-aptpl-" + UUID().uuidString
        path = directory + "/lu.pr"  // the directory does not exist yet: the first save makes it
    }

    func harness() -> Harness {
        var c = LogicalUnitConfiguration(serialNumber: "SER0001", uniqueID: 0x0123_4567_89AB_CDEF)
        c.reservationPersistence = DurableFile(path: path)
        return Harness(configuration: c)
    }

    func capabilities(_ h: Harness) -> [UInt8] {
        let o = h.run(CDB.prIn(PRInAction.reportCapabilities, alloc: 8), dataIn: 8)
        expectGood(o)
        return o.data
    }

    @Test func withoutAPlaceToKeepItAPTPLIsRefused() {
        let h = Harness()
        #expect(capabilities(h)[2] & 0x01 == 0)  // PTPL_C
        let o = h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1, flags: 0x01))
        expectSense(o, 0x05, 0x2600)  // INVALID FIELD IN PARAMETER LIST
        #expect(o.sks == [0x88, 0x00, 20])  // SKSV, parameter list (C/D 0), BPV, bit 0; byte 20
        let keys = h.run(CDB.prIn(PRInAction.readKeys), dataIn: 1024)
        #expect(Array(keys.data[4 ..< 8]) == [0, 0, 0, 0])  // nothing was registered
    }

    @Test func registrationsAndTheReservationSurviveARestart() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let h = harness()
            #expect(capabilities(h)[2] & 0x01 == 0x01)  // PTPL_C
            #expect(capabilities(h)[3] & 0x01 == 0)     // PTPL_A: nothing asked yet
            expectGood(h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1, flags: 0x01)))
            // Each REGISTER says APTPL again: the last one decides for the LU.
            expectGood(h.run(CDB.prOut(PROutAction.register), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0xB2, flags: 0x01)))
            expectGood(h.run(CDB.prOut(PROutAction.reserve, type: PRType.writeExclusive.rawValue),
                             dataOut: CDB.prParams(key: 0xA1, sak: 0)))
            #expect(capabilities(h)[3] & 0x01 == 0x01)  // PTPL_A
            // Saved before GOOD: the file is there, private.
            var st = stat()
            #expect(stat(path, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o600)
        }
        // A new process: the LU starts from the file.
        let h = harness()
        let keys = h.run(CDB.prIn(PRInAction.readKeys), dataIn: 1024)
        expectGood(keys)
        #expect(Array(keys.data[0 ..< 4]) == [0, 0, 0, 2])           // generation as it was (two REGISTERs)
        #expect(Array(keys.data[4 ..< 8]) == [0, 0, 0, 16])
        #expect(Array(keys.data[8 ..< 24]) == be64(0xA1) + be64(0xB2))
        let res = h.run(CDB.prIn(PRInAction.readReservation), dataIn: 1024)
        #expect(Array(res.data[8 ..< 16]) == be64(0xA1))
        #expect(res.data[21] == PRType.writeExclusive.rawValue)
        #expect(capabilities(h)[3] & 0x01 == 0x01)
        // The same initiator port is the holder again: it writes, the other registrant may not.
        expectGood(h.run(CDB.write10(0, 1), nexus: h.a, dataOut: [UInt8](repeating: 1, count: 512)))
        #expect(h.run(CDB.write10(0, 1), nexus: h.b, dataOut: [UInt8](repeating: 2, count: 512)).status == .reservationConflict)
    }

    @Test func registeringWithoutAPTPLForgetsTheSavedState() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let h = harness()
            expectGood(h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1, flags: 0x01)))
            #expect(FileManager.default.fileExists(atPath: path))
            // The last REGISTER decides (SPC-4 5.13.5): APTPL 0 now.
            expectGood(h.run(CDB.prOut(PROutAction.register), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0xB2)))
            #expect(!FileManager.default.fileExists(atPath: path))
        }
        let h = harness()
        let keys = h.run(CDB.prIn(PRInAction.readKeys), dataIn: 1024)
        #expect(Array(keys.data[4 ..< 8]) == [0, 0, 0, 0])
    }

    @Test func aDamagedFileStopsTheLUFromBeingAdded() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("STPR\u{1}garbage".utf8).write(to: URL(fileURLWithPath: path))
        let target = SCSITarget(name: "iqn.2026-01.test:target")
        var c = LogicalUnitConfiguration(serialNumber: "SER0001", uniqueID: 1)
        c.reservationPersistence = DurableFile(path: path)
        #expect(throws: SCSITarget.ConfigurationError.reservationsUnreadable("the saved persistent reservations are damaged")) {
            try target.addLogicalUnit(0, store: MemoryStore(blocks: 64, blockSize: 512), configuration: c)
        }
        #expect(target.logicalUnitNumbers.isEmpty)
    }

    @Test func aFailedSaveChangesNothing() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The temporary file cannot be written: a directory stands where it goes.
        try FileManager.default.createDirectory(atPath: path + ".tmp", withIntermediateDirectories: true)
        let h = harness()
        let o = h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1, flags: 0x01))
        #expect(o.status == .checkCondition)
        #expect(o.senseKey == 0x03)  // MEDIUM ERROR / WRITE ERROR: the registration is not kept
        let keys = h.run(CDB.prIn(PRInAction.readKeys), dataIn: 1024)
        #expect(Array(keys.data[4 ..< 8]) == [0, 0, 0, 0])
        #expect(capabilities(h)[3] & 0x01 == 0)
    }
}

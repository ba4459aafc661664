import Backstores
import Synchronization
import Testing
@testable import SCSIEngine

/// A shared record in memory, as two gateways of one store would see it through RADOS;
/// `lostRaces` replaces fail as if another gateway had written first.
final class MemorySharedRecord: SharedRecord {
    let value = Mutex(SharedRecordValue(bytes: [], version: 0))
    let handlers = Mutex<[@Sendable () -> Void]>([])
    let lostRaces = Mutex(0)
    let writes = Mutex(0)

    func read() throws(BackstoreError) -> SharedRecordValue { value.withLock { $0 } }

    func replace(_ bytes: [UInt8], ifVersion version: UInt64) throws(BackstoreError) -> Bool {
        let lose = lostRaces.withLock { n -> Bool in defer { n = max(0, n - 1) }; return n > 0 }
        let written = value.withLock { v -> Bool in
            if lose {
                v.version += 1  // the other gateway's write: same bytes, newer version
                return false
            }
            guard v.version == version else { return false }
            v = SharedRecordValue(bytes: bytes, version: version + 1)
            return true
        }
        if written {
            writes.withLock { $0 += 1 }
            for h in handlers.withLock({ $0 }) { h() }
        }
        return written
    }

    func onChange(_ handler: @escaping @Sendable () -> Void) { handlers.withLock { $0.append(handler) } }
    /// False: the watch is down (notices lost).
    let watching = Mutex(true)
    var isWatched: Bool { watching.withLock { $0 } }
    func close() {}
}

/// Two gateways (target port groups 1 and 2) of one LU whose reservations live in one record.
@Suite struct SharedReservationTests {
    let record = MemorySharedRecord()
    let gatewayA: Harness
    let gatewayB: Harness

    init() {
        gatewayA = Harness(portGroup: 1, shared: record)
        gatewayB = Harness(portGroup: 2, shared: record)
    }

    func register(_ h: Harness, _ n: NexusID, key: UInt64, old: UInt64 = 0) -> Outcome {
        h.run(CDB.prOut(0), nexus: n, dataOut: CDB.prParams(key: old, sak: key))
    }

    func keys(_ h: Harness, _ n: NexusID) -> (generation: UInt32, keys: [UInt64]) {
        let d = h.run(CDB.prIn(0), nexus: n, dataIn: 256).data
        let generation = d[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let keys = stride(from: 8, to: d.count, by: 8).map { i in d[i..<i + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        return (generation, keys)
    }

    @Test func registrationsAndReservationHoldThroughEveryGateway() {
        expectGood(register(gatewayA, gatewayA.a, key: 0xA1))
        // Gateway B reads the record: same keys, same generation.
        #expect(keys(gatewayB, gatewayB.b) == (1, [0xA1]))
        // A reserves Write Exclusive; B's unregistered nexus may read but not write.
        expectGood(gatewayA.run(CDB.prOut(1, type: 1), nexus: gatewayA.a, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        #expect(gatewayB.run(CDB.write10(0, 1), nexus: gatewayB.b, dataOut: [UInt8](repeating: 0, count: 512)).status == .reservationConflict)
        expectGood(gatewayB.run(CDB.read10(0, 1), nexus: gatewayB.b, dataIn: 512))
        let reservation = gatewayB.run(CDB.prIn(1), nexus: gatewayB.b, dataIn: 64).data
        #expect(Array(reservation[8..<16]) == be64(0xA1) && reservation[21] == 1)
        // The holder writes through its own gateway.
        expectGood(gatewayA.run(CDB.write10(0, 1), nexus: gatewayA.a, dataOut: [UInt8](repeating: 7, count: 512)))
    }

    @Test func preemptFromTheOtherGatewayReachesTheLoser() {
        expectGood(register(gatewayA, gatewayA.a, key: 0xA1))
        expectGood(gatewayA.run(CDB.prOut(1, type: 1), nexus: gatewayA.a, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        expectGood(register(gatewayB, gatewayB.b, key: 0xB2))
        // B preempts A's registration and reservation.
        expectGood(gatewayB.run(CDB.prOut(4, type: 1), nexus: gatewayB.b, dataOut: CDB.prParams(key: 0xB2, sak: 0xA1)))
        // A's nexus hears of it on its next command, through its own gateway.
        expectSense(gatewayA.run([0, 0, 0, 0, 0, 0], nexus: gatewayA.a), 6, 0x2A05)
        #expect(keys(gatewayA, gatewayA.a).keys == [0xB2])
        #expect(gatewayA.run(CDB.write10(0, 1), nexus: gatewayA.a, dataOut: [UInt8](repeating: 0, count: 512)).status == .reservationConflict)
        // The other nexus of A was never registered: nothing for it.
        expectGood(gatewayA.run([0, 0, 0, 0, 0, 0], nexus: gatewayA.b))
    }

    @Test func aLostRaceIsAppliedAgainToTheNewerRecord() {
        record.lostRaces.withLock { $0 = 3 }
        expectGood(register(gatewayA, gatewayA.a, key: 0xA1))
        #expect(record.writes.withLock { $0 } == 1)
        #expect(keys(gatewayB, gatewayB.a) == (1, [0xA1]))
        // Always beaten: a retryable NOT READY, and nothing changed.
        record.lostRaces.withLock { $0 = 1000 }
        expectSense(register(gatewayB, gatewayB.b, key: 0xB2), 2, 0x0401)
        record.lostRaces.withLock { $0 = 0 }
        #expect(keys(gatewayB, gatewayB.b).keys == [0xA1])
    }

    @Test func withoutNoticesEveryCommandReadsTheRecord() {
        expectGood(register(gatewayA, gatewayA.a, key: 0xA1))
        expectGood(gatewayA.run(CDB.prOut(1, type: 1), nexus: gatewayA.a, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        _ = gatewayB.run(CDB.read10(0, 1), nexus: gatewayB.b, dataIn: 512)  // B's copy is current
        // The watch goes down and B misses the release: B must still see it before the write.
        record.watching.withLock { $0 = false }
        let handlers = record.handlers.withLock { h -> [@Sendable () -> Void] in defer { h = [] }; return h }
        expectGood(gatewayA.run(CDB.prOut(2, type: 1), nexus: gatewayA.a, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        expectGood(gatewayB.run(CDB.write10(0, 1), nexus: gatewayB.b, dataOut: [UInt8](repeating: 1, count: 512)))
        record.handlers.withLock { $0 = handlers }
        record.watching.withLock { $0 = true }
    }

    @Test func aLUNResetOnOneGatewayReachesTheOthersNexuses() {
        #expect(gatewayA.target.taskManagementMayBlock(.logicalUnitReset, lun: 0, nexus: gatewayA.a))
        #expect(gatewayA.target.taskManagement(.logicalUnitReset, lun: 0, nexus: gatewayA.a) == .functionComplete)
        expectSense(gatewayB.run([0, 0, 0, 0, 0, 0], nexus: gatewayB.a), 6, 0x2903)
        expectSense(gatewayB.run([0, 0, 0, 0, 0, 0], nexus: gatewayB.b), 6, 0x2903)
        // Once only, and the issuing gateway does not hear its own reset twice.
        expectGood(gatewayB.run([0, 0, 0, 0, 0, 0], nexus: gatewayB.b))
        expectSense(gatewayA.run([0, 0, 0, 0, 0, 0], nexus: gatewayA.b), 6, 0x2903)
        expectGood(gatewayA.run([0, 0, 0, 0, 0, 0], nexus: gatewayA.b))
    }

    @Test func stateSurvivesEveryGatewayRestarting() {
        expectGood(register(gatewayA, gatewayA.a, key: 0xA1))
        expectGood(register(gatewayB, gatewayB.b, key: 0xB2))
        // Both gone; a new gateway on the same record knows both registrations and their nexuses.
        let restarted = Harness(portGroup: 1, shared: record)
        #expect(keys(restarted, restarted.b) == (2, [0xA1, 0xB2]))
        // The nexus A registered from may change its key again (same I_T nexus identity).
        expectGood(register(restarted, restarted.a, key: 0xA3, old: 0xA1))
        #expect(keys(gatewayB, gatewayB.b).keys == [0xA3, 0xB2])  // changed in place
    }

    @Test func reserve6IsOneReservationForEveryGatewayAndEndsWithItsNexus() {
        expectGood(gatewayA.run([0x16, 0, 0, 0, 0, 0], nexus: gatewayA.a))  // RESERVE(6)
        #expect(gatewayB.run([0x16, 0, 0, 0, 0, 0], nexus: gatewayB.b).status == .reservationConflict)
        #expect(gatewayB.run(CDB.read10(0, 1), nexus: gatewayB.b, dataIn: 512).status == .reservationConflict)
        // RELEASE from another nexus is a no-op; the holder's logout ends it everywhere.
        expectGood(gatewayB.run([0x17, 0, 0, 0, 0, 0], nexus: gatewayB.b))
        #expect(gatewayB.run([0x16, 0, 0, 0, 0, 0], nexus: gatewayB.b).status == .reservationConflict)
        gatewayA.target.closeNexus(gatewayA.a)
        expectGood(gatewayB.run([0x16, 0, 0, 0, 0, 0], nexus: gatewayB.b))
        #expect(gatewayA.run(CDB.read10(0, 1), nexus: gatewayA.b, dataIn: 512).status == .reservationConflict)
        // A target reset on B ends it too.
        #expect(gatewayB.target.taskManagementMayBlock(.targetWarmReset, lun: 0, nexus: gatewayB.a))
        _ = gatewayB.target.taskManagement(.targetWarmReset, lun: 0, nexus: gatewayB.a)
        expectGood(gatewayA.run([0x16, 0, 0, 0, 0, 0], nexus: gatewayA.b))
    }

    @Test func recordCodecRoundTripsAndRejectsGarbage() throws {
        var r = SharedReservations.Record(generation: 7)
        let n = ITNexus(initiatorName: "iqn.2026-01.test:a", initiatorPortID: 0x23D0_0000_0001, targetName: "iqn.t", targetPortalGroupTag: 2)
        r.registrations = [.init(nexus: n, key: 0xFEED)]
        r.holder = n
        r.type = .exclusiveAccessRegistrantsOnly
        r.legacyHolder = n
        r.events = [.init(serial: 9, nexus: n, asc: ASC(0x2A, 0x05))]
        let bytes = SharedReservations.encode(r)
        #expect(try SharedReservations.decode(bytes) == r)
        #expect(try SharedReservations.decode([]) == SharedReservations.Record())
        for cut in [3, 5, 9, bytes.count - 1] {
            #expect(throws: SharedReservations.DecodeError.self) { try SharedReservations.decode(Array(bytes.prefix(cut))) }
        }
        var wrongType = bytes
        wrongType[4] = 2  // format version
        #expect(throws: SharedReservations.DecodeError.self) { try SharedReservations.decode(wrongType) }
    }
}

import Testing
@testable import SCSIEngine

/// The value-type state machine, without I/O.
@Suite struct PRStateMachineTests {
    let n1 = NexusID(rawValue: 1), n2 = NexusID(rawValue: 2), n3 = NexusID(rawValue: 3)

    @Test func registerRules() throws {
        var pr = PersistentReservations()
        // Unregistered nexus with a nonzero reservation key: conflict.
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.register(n1, key: 5, serviceActionKey: 1, ignoreExisting: false) }
        try pr.register(n1, key: 0, serviceActionKey: 0, ignoreExisting: false)
        #expect(pr.generation == 0)
        try pr.register(n1, key: 0, serviceActionKey: 0xA, ignoreExisting: false)
        #expect(pr.generation == 1)
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.register(n1, key: 0xB, serviceActionKey: 0xC, ignoreExisting: false) }
        try pr.register(n1, key: 0xB, serviceActionKey: 0xC, ignoreExisting: true)
        #expect(pr.key(of: n1) == 0xC)
        try pr.register(n1, key: 0xC, serviceActionKey: 0, ignoreExisting: false)
        #expect(!pr.isRegistered(n1))
        #expect(pr.generation == 3)
    }

    @Test func reserveRelease() throws {
        var pr = PersistentReservations()
        try pr.register(n1, key: 0, serviceActionKey: 1, ignoreExisting: false)
        try pr.register(n2, key: 0, serviceActionKey: 2, ignoreExisting: false)
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.reserve(n3, key: 0, type: .writeExclusive) }
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.reserve(n1, key: 9, type: .writeExclusive) }
        try pr.reserve(n1, key: 1, type: .writeExclusiveRegistrantsOnly)
        try pr.reserve(n1, key: 1, type: .writeExclusiveRegistrantsOnly)
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.reserve(n1, key: 1, type: .exclusiveAccess) }
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.reserve(n2, key: 2, type: .writeExclusiveRegistrantsOnly) }
        // A non-holder release is a no-op.
        try pr.release(n2, key: 2, type: .writeExclusiveRegistrantsOnly)
        #expect(pr.reservation != nil)
        #expect(throws: PersistentReservations.Failure.invalidRelease) { try pr.release(n1, key: 1, type: .writeExclusive) }
        try pr.release(n1, key: 1, type: .writeExclusiveRegistrantsOnly)
        #expect(pr.reservation == nil)
        #expect(pr.unitAttentions.map(\.0) == [n2])
        #expect(pr.unitAttentions.map(\.1) == [.reservationsReleased])
    }

    @Test func allRegistrantsSurviveHolderUnregistering() throws {
        var pr = PersistentReservations()
        try pr.register(n1, key: 0, serviceActionKey: 1, ignoreExisting: false)
        try pr.register(n2, key: 0, serviceActionKey: 2, ignoreExisting: false)
        try pr.reserve(n1, key: 1, type: .exclusiveAccessAllRegistrants)
        #expect(pr.isHolder(n2))
        try pr.register(n1, key: 1, serviceActionKey: 0, ignoreExisting: false)
        #expect(pr.reservation?.type == .exclusiveAccessAllRegistrants)
        try pr.register(n2, key: 2, serviceActionKey: 0, ignoreExisting: false)
        #expect(pr.reservation == nil)
    }

    @Test func preemptHolder() throws {
        var pr = PersistentReservations()
        try pr.register(n1, key: 0, serviceActionKey: 1, ignoreExisting: false)
        try pr.register(n2, key: 0, serviceActionKey: 2, ignoreExisting: false)
        try pr.register(n3, key: 0, serviceActionKey: 3, ignoreExisting: false)
        try pr.reserve(n1, key: 1, type: .writeExclusive)
        let lost = try pr.preempt(n2, key: 2, serviceActionKey: 1, type: .exclusiveAccess)
        #expect(lost == [n1])
        #expect(pr.reservation == .init(holder: n2, type: .exclusiveAccess))
        #expect(!pr.isRegistered(n1))
        // n1 lost its registration; n3 sees the type change as a release.
        #expect(pr.unitAttentions.map(\.0) == [n1, n3])
        #expect(pr.unitAttentions.map(\.1) == [.registrationsPreempted, .reservationsReleased])
        #expect(throws: PersistentReservations.Failure.conflict) { try pr.preempt(n2, key: 2, serviceActionKey: 77, type: .exclusiveAccess) }
        #expect(throws: PersistentReservations.Failure.invalidField(byte: 8)) { try pr.preempt(n2, key: 2, serviceActionKey: 0, type: .exclusiveAccess) }
    }

    @Test func preemptAllRegistrantsWithZeroKey() throws {
        var pr = PersistentReservations()
        try pr.register(n1, key: 0, serviceActionKey: 1, ignoreExisting: false)
        try pr.register(n2, key: 0, serviceActionKey: 2, ignoreExisting: false)
        try pr.reserve(n1, key: 1, type: .writeExclusiveAllRegistrants)
        try pr.preempt(n2, key: 2, serviceActionKey: 0, type: .writeExclusive)
        #expect(pr.registrations.map(\.nexus) == [n2])
        #expect(pr.reservation == .init(holder: n2, type: .writeExclusive))
    }

    @Test func clearAndMove() throws {
        var pr = PersistentReservations()
        try pr.register(n1, key: 0, serviceActionKey: 1, ignoreExisting: false)
        try pr.reserve(n1, key: 1, type: .exclusiveAccess)
        try pr.registerAndMove(n1, key: 1, serviceActionKey: 9, destination: n2, unregister: true)
        #expect(pr.reservation == .init(holder: n2, type: .exclusiveAccess))
        #expect(pr.registrations == [.init(nexus: n2, key: 9)])
        try pr.register(n3, key: 0, serviceActionKey: 3, ignoreExisting: false)
        try pr.clear(n2, key: 9)
        #expect(pr.registrations.isEmpty && pr.reservation == nil)
        #expect(pr.unitAttentions.last! == (n3, .reservationsPreempted))
    }
}


/// PERSISTENT RESERVE IN/OUT through the engine, two nexuses.
@Suite struct PRCommandTests {
    func register(_ h: Harness, _ n: NexusID, key: UInt64, old: UInt64 = 0, ignore: Bool = false) -> Outcome {
        h.run(CDB.prOut(ignore ? 6 : 0), nexus: n, dataOut: CDB.prParams(key: old, sak: key))
    }
    func reserve(_ h: Harness, _ n: NexusID, key: UInt64, type: UInt8) -> Outcome {
        h.run(CDB.prOut(1, type: type), nexus: n, dataOut: CDB.prParams(key: key, sak: 0))
    }
    func readWorks(_ h: Harness, _ n: NexusID) -> Bool { h.run(CDB.read10(0, 1), nexus: n, dataIn: 512).status == .good }
    func writeStatus(_ h: Harness, _ n: NexusID) -> SCSIStatus {
        h.run(CDB.write10(0, 1), nexus: n, dataOut: [UInt8](repeating: 0, count: 512)).status
    }

    @Test func readKeysAndReservation() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xAAAA))
        expectGood(register(h, h.b, key: 0xBBBB))
        let keys = h.run(CDB.prIn(0), dataIn: 1024)
        #expect(keys.data == be32(2) + be32(16) + be64(0xAAAA) + be64(0xBBBB))
        #expect(h.run(CDB.prIn(1), dataIn: 1024).data == be32(2) + be32(0))
        expectGood(reserve(h, h.a, key: 0xAAAA, type: 3))
        let res = h.run(CDB.prIn(1), dataIn: 1024)
        #expect(res.data == be32(2) + be32(16) + be64(0xAAAA) + [0, 0, 0, 0, 0, 3, 0, 0])
        let truncated = h.run(CDB.prIn(0, alloc: 12), dataIn: 1024)
        #expect(truncated.data == be32(2) + be32(16) + [0, 0, 0, 0])
        #expect(truncated.result.transferLength == 12)
    }

    @Test func reportCapabilities() {
        let o = Harness().run(CDB.prIn(2), dataIn: 1024)
        #expect(o.data == [0, 8, 0x0C, 0x80, 0xEA, 0x01, 0, 0])  // SIP_C, ATP_C; TMV; the type mask
    }

    @Test func readFullStatus() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0x11))
        expectGood(reserve(h, h.a, key: 0x11, type: 1))
        let d = h.run(CDB.prIn(3), dataIn: 1024).data
        #expect(Array(d[0 ..< 4]) == be32(1)) // RESERVE does not bump the generation
        #expect(Array(d[8 ..< 16]) == be64(0x11))
        #expect(Array(d[20 ... 21]) == [0x01, 0x01])
        #expect(Array(d[26 ... 27]) == [0, 1])
        let tidLen = Int(d[28]) << 24 | Int(d[29]) << 16 | Int(d[30]) << 8 | Int(d[31])
        #expect(d[32] == 0x45)
        let name = String(decoding: d[36 ..< 32 + tidLen].prefix { $0 != 0 }, as: UTF8.self)
        #expect(name == "iqn.2026-01.test:a,i,0x23d000000001")
        #expect(Int(d[4]) << 24 | Int(d[5]) << 16 | Int(d[6]) << 8 | Int(d[7]) == d.count - 8)
    }

    @Test func invalidRequests() {
        let h = Harness()
        expectSense(h.run(CDB.prIn(4), dataIn: 100), 5, 0x2400)
        expectSense(h.run(CDB.prIn(0x1F), dataIn: 100), 5, 0x2400)
        expectSense(h.run(CDB.prOut(0, length: 20), dataOut: [UInt8](repeating: 0, count: 20)), 5, 0x1A00)
        // SPEC_I_PT without the TransportID list it announces.
        expectSense(h.run(CDB.prOut(0), dataOut: CDB.prParams(key: 0, sak: 1, flags: 0x08)), 5, 0x1A00)
        // SPEC_I_PT is for REGISTER only.
        let ignoring = h.run(CDB.prOut(6), dataOut: CDB.prParams(key: 0, sak: 1, flags: 0x08))
        expectSense(ignoring, 5, 0x2600)
        #expect(ignoring.sks == [0x8B, 0, 20])
        expectGood(register(h, h.a, key: 1))
        expectSense(h.run(CDB.prOut(1, type: 2), dataOut: CDB.prParams(key: 1, sak: 0)), 5, 0x2400)
        expectSense(h.run(CDB.prOut(1, type: 0x11), dataOut: CDB.prParams(key: 1, sak: 0)), 5, 0x2400)
        #expect(h.run(CDB.prOut(1, type: 1), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0)).status == .reservationConflict)
        expectGood(reserve(h, h.a, key: 1, type: 1))
        expectSense(h.run(CDB.prOut(2, type: 3), dataOut: CDB.prParams(key: 1, sak: 0)), 5, 0x2604)
    }

    /// libiscsi prout_reserve_access: what the other (registered, then unregistered) nexus may do.
    @Test(arguments: [(UInt8(1), true, false, false), (3, false, false, false), (5, true, true, false),
                      (6, true, true, false), (7, true, true, false), (8, true, true, false)])
    func access(type: UInt8, registeredRead: Bool, registeredWrite: Bool, unregisteredWrite: Bool) {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA))
        expectGood(register(h, h.b, key: 0xB))
        expectGood(reserve(h, h.a, key: 0xA, type: type))
        #expect(readWorks(h, h.a))
        #expect(writeStatus(h, h.a) == .good)
        #expect(readWorks(h, h.b) == registeredRead)
        #expect(writeStatus(h, h.b) == (registeredWrite ? .good : .reservationConflict))
        expectGood(register(h, h.b, key: 0, old: 0xB))
        let pr = PRType(rawValue: type)!
        #expect(readWorks(h, h.b) == !pr.blocksReads)
        #expect(writeStatus(h, h.b) == (unregisteredWrite ? .good : .reservationConflict))
        // Commands that are never in conflict.
        expectGood(h.run(CDB.tur, nexus: h.b))
        expectGood(h.run(CDB.inquiry(), nexus: h.b, dataIn: 96))
        expectGood(h.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], nexus: h.b, dataIn: 8))
        expectGood(h.run(CDB.prIn(1), nexus: h.b, dataIn: 64))
        // MODE SENSE is a read, MODE SELECT a write for the conflict table.
        #expect(h.run(CDB.modeSense6(page: 0x3F), nexus: h.b, dataIn: 255).status == (pr.blocksReads ? .reservationConflict : .good))
    }

    /// libiscsi prout_reserve_ownership: the holder unregisters.
    @Test(arguments: [(UInt8(1), false), (3, false), (5, false), (6, false), (7, true), (8, true)])
    func ownership(type: UInt8, shared: Bool) {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA, ignore: true))
        expectGood(register(h, h.b, key: 0xB, ignore: true))
        expectGood(reserve(h, h.a, key: 0xA, type: type))
        let before = h.run(CDB.prIn(1), dataIn: 64).data
        #expect(Array(before[8 ..< 16]) == be64(shared ? 0 : 0xA))
        #expect(before[21] == type)
        expectGood(register(h, h.a, key: 0, old: 0xA))
        let after = h.run(CDB.prIn(1), dataIn: 64).data
        if shared {
            #expect(after.count == 24 && after[21] == type)
            expectGood(h.run(CDB.prOut(2, type: type), nexus: h.b, dataOut: CDB.prParams(key: 0xB, sak: 0)))
            #expect(Array(h.run(CDB.prIn(1), dataIn: 64).data[4 ..< 8]) == [0, 0, 0, 0])
        } else {
            #expect(Array(after[4 ..< 8]) == [0, 0, 0, 0])
            // Registrants-only types tell the other registrants the reservation is gone.
            if type == 5 || type == 6 { expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2A04) }
        }
        expectGood(register(h, h.b, key: 0, old: 0xB))
    }

    @Test func preemptRaisesUnitAttentionsAndGeneration() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA))
        expectGood(register(h, h.b, key: 0xB))
        expectGood(reserve(h, h.a, key: 0xA, type: 1))
        #expect(Array(h.run(CDB.prIn(0), dataIn: 64).data.prefix(4)) == be32(2))
        expectGood(h.run(CDB.prOut(4, type: 3), nexus: h.b, dataOut: CDB.prParams(key: 0xB, sak: 0xA)))
        #expect(Array(h.run(CDB.prIn(0), nexus: h.b, dataIn: 64).data) == be32(3) + be32(8) + be64(0xB))
        expectSense(h.run(CDB.tur), 6, 0x2A05)
        #expect(h.run(CDB.read10(0, 1), dataIn: 512).status == .reservationConflict)
        let res = h.run(CDB.prIn(1), nexus: h.b, dataIn: 64).data
        #expect(Array(res[8 ..< 16]) == be64(0xB) && res[21] == 3)
        // PREEMPT AND ABORT of an unknown key: conflict.
        #expect(h.run(CDB.prOut(5, type: 3), nexus: h.b, dataOut: CDB.prParams(key: 0xB, sak: 0x77)).status == .reservationConflict)
    }

    @Test func clearReleasesEverything() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA))
        expectGood(register(h, h.b, key: 0xB))
        expectGood(reserve(h, h.a, key: 0xA, type: 3))
        expectGood(h.run(CDB.prOut(3), nexus: h.a, dataOut: CDB.prParams(key: 0xA, sak: 0)))
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2A03)
        #expect(h.run(CDB.prIn(0), dataIn: 64).data.suffix(4) == [0, 0, 0, 0])
        expectGood(h.run(CDB.read10(0, 1), nexus: h.b, dataIn: 512))
    }

    @Test func registerAndMove() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA))
        expectGood(reserve(h, h.a, key: 0xA, type: 1))
        var name = Array("iqn.2026-01.test:b,i,0x23d000000002".utf8) + [0]
        while name.count % 4 != 0 { name.append(0) }
        let tid: [UInt8] = [0x45, 0] + be16(name.count) + name
        let params = be64(0xA) + be64(0xB0) + [0, 0x02] + be16(1) + be32(UInt64(tid.count)) + tid
        expectGood(h.run(CDB.prOut(7, type: 1, length: params.count), dataOut: params))
        let res = h.run(CDB.prIn(1), dataIn: 64).data
        #expect(Array(res[8 ..< 16]) == be64(0xB0))
        #expect(h.run(CDB.prIn(0), dataIn: 64).data.suffix(8) == be64(0xB0)[...])
        expectGood(h.run(CDB.write10(0, 1), nexus: h.b, dataOut: [UInt8](repeating: 0, count: 512)))
        #expect(writeStatus(h, h.a) == .reservationConflict)
    }

    @Test func reservationsSurviveLogoutAndReset() {
        let h = Harness()
        expectGood(register(h, h.a, key: 0xA))
        expectGood(reserve(h, h.a, key: 0xA, type: 3))
        h.target.closeNexus(h.a)
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.b) == .functionComplete)
        expectSense(h.run(CDB.tur, nexus: h.a), 6, 0x2903)
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2903)
        #expect(h.run(CDB.read10(0, 1), nexus: h.b, dataIn: 512).status == .reservationConflict)
    }
}

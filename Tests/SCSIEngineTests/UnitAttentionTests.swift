import Testing
@testable import SCSIEngine

@Suite struct UnitAttentionQueueTests {
    @Test func valueSemantics() {
        let n = NexusID(rawValue: 1), m = NexusID(rawValue: 2)
        var q = UnitAttentions()
        q.queue(.capacityDataHasChanged, for: n) // unknown nexus: dropped, power on will cover it
        q.contact(n)
        q.queue(.capacityDataHasChanged, for: n) // behind power on: covered by it
        #expect(q.pending(n) == [.powerOnOccurred])
        _ = q.pop(n)
        q.queue(.modeParametersChanged, for: n)
        q.queue(.capacityDataHasChanged, for: n)
        q.queue(.modeParametersChanged, for: n)
        #expect(q.pending(n) == [.modeParametersChanged, .capacityDataHasChanged])
        q.contact(m)
        q.queueForAll(.reportedLunsDataHasChanged, except: n)
        #expect(q.pending(m) == [.powerOnOccurred])
        q.replaceAll(with: .busDeviceResetOccurred)
        #expect(q.pending(n) == [.busDeviceResetOccurred] && q.pending(m) == [.busDeviceResetOccurred])
        #expect(q.pop(n) == .busDeviceResetOccurred)
        #expect(q.pop(n) == nil)
    }
}

@Suite struct UnitAttentionTests {
    @Test func powerOnOnFirstContactOnly() {
        let h = Harness(clearPowerOn: false)
        // INQUIRY and REPORT LUNS do not report it.
        expectGood(h.run(CDB.inquiry(), dataIn: 96))
        expectSense(h.run(CDB.tur), 6, 0x2900)
        expectGood(h.run(CDB.tur))
        // REQUEST SENSE returns it as sense data with GOOD status, and clears it.
        let rs = h.run(CDB.requestSense(), nexus: h.b, dataIn: 18)
        expectGood(rs)
        #expect(rs.data == [0x70, 0, 6, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0])
        let again = h.run(CDB.requestSense(), nexus: h.b, dataIn: 18)
        #expect(again.data == [0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        // Reinstating the same identity keeps the ID and does not re-announce power on.
        let same = h.target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:a", initiatorPortID: 0x23D0_0000_0001, targetName: h.target.name))
        #expect(same == h.a)
        expectGood(h.run(CDB.tur))
    }

    @Test func orderIsOldestFirstWithoutDuplicates() {
        let h = Harness()
        h.target.capacityChanged(lun: 0)
        let params = [0, 0, 0, 0, 0x08, 0x12, 0] + [UInt8](repeating: 0, count: 17)
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2A09)
        expectGood(h.run(CDB.modeSelect6(params.count), nexus: h.b, dataOut: params))
        h.target.capacityChanged(lun: 0)
        expectSense(h.run(CDB.tur), 6, 0x2A09)
        expectSense(h.run(CDB.read10(0, 1), dataIn: 512), 6, 0x2A01)
        expectGood(h.run(CDB.tur))
    }

    @Test func lunResetAnnouncesToOthers() {
        let h = Harness()
        h.target.capacityChanged(lun: 0)
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.a) == .functionComplete)
        // The reset replaces what was pending, for every nexus including the issuer.
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2903)
        expectGood(h.run(CDB.tur, nexus: h.b))
        expectSense(h.run(CDB.tur), 6, 0x2903)
        expectGood(h.run(CDB.tur))
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 9, nexus: h.a) == .lunDoesNotExist)
        #expect(h.target.taskManagement(.targetWarmReset, lun: 0, nexus: h.a) == .functionComplete)
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2902)
        #expect(h.target.taskManagement(.abortTaskSet, lun: 0, nexus: h.a) == .functionComplete)
        #expect(h.target.taskManagement(.clearACA, lun: 0, nexus: h.a) == .functionRejected)
    }
}

@Suite struct Reserve6Tests {
    let reserve6: [UInt8] = [0x16, 0, 0, 0, 0, 0]
    let release6: [UInt8] = [0x17, 0, 0, 0, 0, 0]

    @Test func twoInitiators() {
        let h = Harness()
        expectGood(h.run(reserve6))
        expectGood(h.run(reserve6))
        #expect(h.run(reserve6, nexus: h.b).status == .reservationConflict)
        expectGood(h.run(release6, nexus: h.b)) // no-op for a non-holder
        expectGood(h.run(CDB.modeSense6(page: 0x3F), dataIn: 255))
        #expect(h.run(CDB.modeSense6(page: 0x3F), nexus: h.b, dataIn: 255).status == .reservationConflict)
        #expect(h.run(CDB.tur, nexus: h.b).status == .reservationConflict)
        expectGood(h.run(CDB.inquiry(), nexus: h.b, dataIn: 96))
        expectGood(h.run([0xA0, 0, 0, 0, 0, 0] + be32(64) + [0, 0], nexus: h.b, dataIn: 64))
        expectGood(h.run(release6))
        expectGood(h.run(reserve6, nexus: h.b))
        expectGood(h.run([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], nexus: h.b))
        expectGood(h.run([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    }

    @Test func releasedOnLogoutAndReset() {
        let h = Harness()
        expectGood(h.run(reserve6))
        h.target.closeNexus(h.a)
        expectGood(h.run(reserve6, nexus: h.b))
        _ = h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.a)
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2903)
        expectSense(h.run(CDB.tur), 6, 0x2903)
        expectGood(h.run(reserve6))
    }

    @Test func conflictsWithPersistentReservation() {
        let h = Harness()
        expectGood(h.run(CDB.prOut(0), dataOut: CDB.prParams(key: 0, sak: 1)))
        expectGood(h.run(CDB.prOut(1, type: 1), dataOut: CDB.prParams(key: 1, sak: 0)))
        #expect(h.run(reserve6, nexus: h.b).status == .reservationConflict)
    }
}

@Suite struct SupportedOperationsTests {
    func rsoc(options: UInt8, opcode: UInt8 = 0, sa: Int = 0, rctd: Bool = false, alloc: UInt64 = 8192) -> [UInt8] {
        [0xA3, 0x0C, (rctd ? 0x80 : 0) | options, opcode] + be16(sa) + be32(alloc) + [0, 0]
    }

    @Test func allCommands() {
        let h = Harness()
        let o = h.run(rsoc(options: 0), dataIn: 8192)
        expectGood(o)
        let len = Int(o.data[0]) << 24 | Int(o.data[1]) << 16 | Int(o.data[2]) << 8 | Int(o.data[3])
        #expect(len == CommandTable.commands.filter { $0.availability != .thinProvisioned }.count * 8) // no UNMAP on a thick LU
        #expect(Array(h.run(rsoc(options: 1, opcode: 0x42), dataIn: 512).data) == [0, 0x01, 0, 0])
        let thin = Harness(thin: true).run(rsoc(options: 1, opcode: 0x42), dataIn: 512)
        #expect(Array(thin.data[0 ..< 4]) == [0, 0x03, 0, 10])
        #expect(o.data.count == 4 + len)
        // Every reported command is actually dispatched (not INVALID OPERATION CODE).
        var i = 4
        var opcodes: Set<UInt8> = []
        while i < o.data.count {
            opcodes.insert(o.data[i])
            i += 8
        }
        #expect(opcodes.contains(0x89) && opcodes.contains(0x9E) && opcodes.contains(0x5F))
        let r = h.run(rsoc(options: 0, rctd: true), dataIn: 8192)
        #expect(Array(r.data[4 ..< 24]) == [0x00, 0, 0, 0, 0, 0x02, 0, 6] + [0, 0x0A, 0, 0] + [UInt8](repeating: 0, count: 8))
    }

    @Test func oneCommand() {
        let h = Harness()
        let read10 = h.run(rsoc(options: 1, opcode: 0x28), dataIn: 512)
        #expect(Array(read10.data[0 ..< 4]) == [0, 0x03, 0, 10])
        #expect(Array(read10.data[4 ... 5]) == [0x28, 0x18]) // DPO/FUA usable (MODE SENSE DPOFUA=1)
        #expect(read10.data.count == 14)
        expectSense(h.run(rsoc(options: 1, opcode: 0x9E), dataIn: 512), 5, 0x2400)
        let rc16 = h.run(rsoc(options: 2, opcode: 0x9E, sa: 0x10, rctd: true), dataIn: 512)
        #expect(Array(rc16.data[0 ..< 4]) == [0, 0x83, 0, 16])
        #expect(rc16.data.count == 4 + 16 + 12)
        expectSense(h.run(rsoc(options: 2, opcode: 0x28), dataIn: 512), 5, 0x2400)
        #expect(Array(h.run(rsoc(options: 1, opcode: 0xC7), dataIn: 512).data) == [0, 0x01, 0, 0])
    }

    @Test func reportTargetPortGroups() {
        let h = Harness()
        _ = h.target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:c", initiatorPortID: 3, targetName: h.target.name, targetPortalGroupTag: 2))
        let o = h.run([0xA3, 0x0A, 0, 0, 0, 0] + be32(256) + [0, 0], dataIn: 256)
        expectGood(o)
        #expect(o.data == be32(24) + [0x80, 0x01, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
                                    + [0x80, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])
        let ext = h.run([0xA3, 0x2A, 0, 0, 0, 0] + be32(8) + [0, 0], dataIn: 256)
        #expect(ext.data == be32(28) + [0x10, 0, 0, 0])
        let four = h.run([0xA3, 0x0A, 0, 0, 0, 0] + be32(4) + [0, 0], dataIn: 256)
        #expect(four.data == be32(24))
    }

    @Test func reportTargetPortGroupsListsEveryGateway() {
        // Gateway 2 of three: its nexuses all carry tag 2, yet groups 1 and 3 are listed too,
        // and VPD 0x83 names port group and relative port 2.
        let h = Harness()
        h.target.setPortGroups([1, 2, 3])
        let c = h.target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:c", initiatorPortID: 3, targetName: h.target.name, targetPortalGroupTag: 2))
        _ = h.run([0, 0, 0, 0, 0, 0], nexus: c)
        let o = h.run([0xA3, 0x0A, 0, 0, 0, 0] + be32(256) + [0, 0], nexus: c, dataIn: 256)
        expectGood(o)
        let group: (UInt8) -> [UInt8] = { [0x80, 0x01, 0, $0, 0, 0, 0, 1, 0, 0, 0, $0] }
        let expected: [UInt8] = be32(36) + group(1) + group(2) + group(3)
        #expect(o.data == expected)
        let vpd = h.run([0x12, 1, 0x83, 0, 255, 0], nexus: c, dataIn: 255).data
        let designators = Array(vpd[4...])
        func find(_ type: UInt8) -> [UInt8]? {
            var i = 0
            while i + 4 <= designators.count {
                let length = Int(designators[i + 3])
                if designators[i + 1] & 0x0F == type { return Array(designators[(i + 4)..<(i + 4 + length)]) }
                i += 4 + length
            }
            return nil
        }
        #expect(find(4) == [0, 0, 0, 2])  // relative target port
        #expect(find(5) == [0, 0, 0, 2])  // target port group
        #expect(find(8).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } == h.target.name + ",t,0x0002")
        // Gateway 3 removed: groups 1 (the harness's own nexuses) and 2 remain.
        h.target.setPortGroups([1, 2])
        #expect(h.run([0xA3, 0x0A, 0, 0, 0, 0] + be32(256) + [0, 0], nexus: c, dataIn: 256).data.prefix(4) == be32(24)[...])
    }

    @Test func readDefectData() {
        let h = Harness()
        #expect(h.run([0x37, 0, 0x0D, 0, 0, 0, 0, 0, 32, 0], dataIn: 32).data == [0, 0x0D, 0, 0])
        #expect(h.run([0xB7, 0x0D, 0, 0, 0, 0] + be32(32) + [0, 0], dataIn: 32).data == [0, 0x0D, 0, 0, 0, 0, 0, 0])
    }

    @Test func taskManagementFunctions() {
        let h = Harness()
        #expect(h.run([0xA3, 0x0D, 0, 0, 0, 0] + be32(4) + [0, 0], dataIn: 16).data == [0xDA, 0, 0, 0])
        #expect(h.run([0xA3, 0x0D, 0x80, 0, 0, 0] + be32(16) + [0, 0], dataIn: 16).data.count == 16)
        expectSense(h.run([0xA3, 0x0D, 0, 0, 0, 0] + be32(2) + [0, 0], dataIn: 16), 5, 0x2400)
    }
}

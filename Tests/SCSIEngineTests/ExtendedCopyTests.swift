import Testing
@testable import SCSIEngine

/// EXTENDED COPY(LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18).
@Suite struct ExtendedCopyTests {
    /// A target with two LUs (0 and 1), both nexuses past their unit attentions.
    func twoLUs(blocks: Int = 256, readOnlySecond: Bool = false) -> (Harness, MemoryStore) {
        let h = Harness(blocks: blocks)
        let second = MemoryStore(blocks: blocks, readOnly: readOnlySecond)
        try! h.target.addLogicalUnit(1, store: second, configuration: LogicalUnitConfiguration(serialNumber: "SER0002", uniqueID: 0x2222))
        for n in [h.a, h.b] { for lun: UInt64 in [0, 1] { _ = h.run([0, 0, 0, 0, 0, 0], lun: lun, nexus: n) } }
        return (h, second)
    }

    func naa(_ h: Harness, _ lun: UInt64) -> [UInt8] { h.target.unit(lun)!.naaIdentifier }

    func target(_ naa: [UInt8], blockLength: Int = 512, type: UInt8 = 0xE4) -> [UInt8] {
        [type, 0, 0, 0, 0x01, 0x03, 0, 16] + naa + [0, 0, 0, 0] + [0, UInt8(blockLength >> 16), UInt8(blockLength >> 8 & 0xFF), UInt8(blockLength & 0xFF)]
    }

    func segment(_ source: Int, _ destination: Int, blocks: Int, from: UInt64, to: UInt64) -> [UInt8] {
        [0x02, 0] + be16(0x18) + be16(source) + be16(destination) + [0, 0] + be16(blocks) + be64(from) + be64(to)
    }

    func parameters(listID: UInt8 = 1, hold: Bool = true, targets: [[UInt8]], segments: [[UInt8]]) -> [UInt8] {
        let t = targets.flatMap { $0 }, s = segments.flatMap { $0 }
        return [listID, hold ? 0x00 : 0x10] + be16(t.count) + [0, 0, 0, 0] + be32(UInt64(s.count)) + be32(0) + t + s
    }

    func xcopy(_ p: [UInt8], length: Int? = nil) -> [UInt8] { [0x83, 0] + [UInt8](repeating: 0, count: 8) + be32(UInt64(length ?? p.count)) + [0, 0] }
    func rcr(_ action: UInt8, listID: UInt8 = 0) -> [UInt8] { [0x84, action, listID] + [UInt8](repeating: 0, count: 7) + be32(1024) + [0, 0] }

    @Test func copiesBetweenAndWithinLUs() {
        let (h, second) = twoLUs()
        let data = pattern(16 * 512, seed: 11)
        expectGood(h.run(CDB.write10(8, 16), dataOut: data))
        let p = parameters(targets: [target(naa(h, 0)), target(naa(h, 1))],
                           segments: [segment(0, 1, blocks: 16, from: 8, to: 100), segment(0, 0, blocks: 16, from: 8, to: 200)])
        let o = h.run(xcopy(p), dataOut: p)
        expectGood(o)
        #expect(second.bytes(100 * 512 ..< 116 * 512) == data)
        #expect(h.store.bytes(200 * 512 ..< 216 * 512) == data)
        // COPY STATUS of the held list: completed, two segments, the bytes moved.
        let status = h.run(rcr(0x00, listID: 1), dataIn: 1024)
        expectGood(status)
        #expect(status.data == be32(8) + [0x01] + be16(2) + [0x00] + be32(32 * 512))
        // Overlapping ranges of one LU, destination after the source: copied back to front.
        let q = parameters(listID: 2, targets: [target(naa(h, 0))], segments: [segment(0, 0, blocks: 16, from: 8, to: 12)])
        expectGood(h.run(xcopy(q), dataOut: q))
        #expect(h.store.bytes(12 * 512 ..< 28 * 512) == data)
    }

    @Test func onlyWhatTheNexusMayReach() {
        let (h, second) = twoLUs(readOnlySecond: true)
        // Another target's LU.
        let other = Harness(blocks: 256, configuration: LogicalUnitConfiguration(serialNumber: "SER0009", uniqueID: 0x9999))
        other.store.fill(0 ..< 512, with: 0x99)
        let foreign = parameters(targets: [target(other.target.unit(0)!.naaIdentifier), target(naa(h, 0))],
                                 segments: [segment(0, 1, blocks: 1, from: 0, to: 0)])
        expectSense(h.run(xcopy(foreign), dataOut: foreign), 0x0A, 0x0804)
        #expect(h.store.bytes(0 ..< 512) == [UInt8](repeating: 0, count: 512), "nothing of the other target was copied")
        // A read-only destination is write protected.
        let ro = parameters(targets: [target(naa(h, 0)), target(naa(h, 1))], segments: [segment(0, 1, blocks: 1, from: 0, to: 0)])
        expectSense(h.run(xcopy(ro), dataOut: ro), 7, 0x2700)
        // RESERVE(6) by the other nexus on the source: reservation conflict, nothing moves.
        expectGood(h.run([0x16, 0, 0, 0, 0, 0], lun: 0, nexus: h.b))
        let back = parameters(targets: [target(naa(h, 0))], segments: [segment(0, 0, blocks: 1, from: 0, to: 9)])
        #expect(h.run(xcopy(back), dataOut: back).status == .reservationConflict)
        expectGood(h.run([0x17, 0, 0, 0, 0, 0], lun: 0, nexus: h.b))
        // A write exclusive reservation on the destination allows the read, not the write.
        let key = be64(0xAB)
        expectGood(h.run([0x5F, 0x00, 0, 0, 0, 0, 0, 0, 24, 0], lun: 0, nexus: h.b, dataOut: be64(0) + key + [UInt8](repeating: 0, count: 8)))
        expectGood(h.run([0x5F, 0x01, 0x01, 0, 0, 0, 0, 0, 24, 0], lun: 0, nexus: h.b, dataOut: key + [UInt8](repeating: 0, count: 16)))
        #expect(h.run(xcopy(back), dataOut: back).status == .reservationConflict)
        #expect(h.store.bytes(9 * 512 ..< 10 * 512) == [UInt8](repeating: 0, count: 512))
        _ = second
    }

    @Test func parameterListChecks() {
        let (h, _) = twoLUs()
        let one = target(naa(h, 0))
        let good = parameters(targets: [one], segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectGood(h.run(xcopy(good, length: 0)))
        expectSense(h.run(xcopy(good, length: good.count - 1), dataOut: Array(good.dropLast())), 5, 0x1A00)
        let tooManyTargets = parameters(targets: Array(repeating: one, count: 9), segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectSense(h.run(xcopy(tooManyTargets), dataOut: tooManyTargets), 5, 0x2606)
        let tooManySegments = parameters(targets: [one], segments: Array(repeating: segment(0, 0, blocks: 1, from: 0, to: 1), count: 65))
        expectSense(h.run(xcopy(tooManySegments), dataOut: tooManySegments), 5, 0x2608)
        let tooLong = parameters(targets: [one], segments: Array(repeating: segment(0, 0, blocks: 1, from: 0, to: 1), count: 147))
        expectSense(h.run(xcopy(tooLong), dataOut: tooLong), 5, 0x1A00)
        let badTarget = parameters(targets: [target(naa(h, 0), type: 0xE0)], segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectSense(h.run(xcopy(badTarget), dataOut: badTarget), 5, 0x2607)
        var streamSegment = segment(0, 0, blocks: 1, from: 0, to: 1)
        streamSegment[0] = 0x03
        let badSegment = parameters(targets: [one], segments: [streamSegment])
        expectSense(h.run(xcopy(badSegment), dataOut: badSegment), 5, 0x2609)
        let noSuchIndex = parameters(targets: [one], segments: [segment(0, 1, blocks: 1, from: 0, to: 1)])
        expectSense(h.run(xcopy(noSuchIndex), dataOut: noSuchIndex), 0x0A, 0x0804)
        let beyond = parameters(targets: [one], segments: [segment(0, 0, blocks: 16, from: 0, to: 250)])
        let beyondOutcome = h.run(xcopy(beyond), dataOut: beyond)
        expectSense(beyondOutcome, 0x0A, 0x0000)
        // Segment pointer: parameter list byte 16 + 32 (header, one target) + 20, the destination LBA.
        #expect(beyondOutcome.sks == [0x80, 0, 68])
        let sourceBeyond = parameters(targets: [one], segments: [segment(0, 0, blocks: 16, from: 250, to: 0)])
        #expect(h.run(xcopy(sourceBeyond), dataOut: sourceBeyond).sks == [0x80, 0, 60])
        let wrongBlockLength = parameters(targets: [target(naa(h, 0), blockLength: 4096)], segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectSense(h.run(xcopy(wrongBlockLength), dataOut: wrongBlockLength), 5, 0x2600)
    }

    @Test func receiveCopyResults() {
        let (h, _) = twoLUs()
        expectSense(h.run(rcr(0x00, listID: 7), dataIn: 1024), 5, 0x2400) // nothing held
        let op = h.run(rcr(0x03), dataIn: 1024)
        expectGood(op)
        #expect(op.data.count == 46)
        #expect(Array(op.data[0 ..< 4]) == be32(42))
        #expect(Array(op.data[8 ..< 20]) == be16(8) + be16(64) + be32(4096) + be32(0xFFFF * 512))
        #expect(Array(op.data[43 ..< 46]) == [2, 0x02, 0xE4])
        // A list ID not held (DISCARD) leaves nothing for COPY STATUS; another nexus sees none.
        let p = parameters(listID: 5, hold: false, targets: [target(naa(h, 0))], segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectGood(h.run(xcopy(p), dataOut: p))
        expectSense(h.run(rcr(0x00, listID: 5), dataIn: 1024), 5, 0x2400)
        let held = parameters(listID: 6, targets: [target(naa(h, 0))], segments: [segment(0, 0, blocks: 1, from: 0, to: 1)])
        expectGood(h.run(xcopy(held), dataOut: held))
        expectGood(h.run(rcr(0x00, listID: 6), dataIn: 1024))
        expectSense(h.run(rcr(0x00, listID: 6), nexus: h.b, dataIn: 1024), 5, 0x2400)
        // VPD 0x8F lists the commands and descriptor types.
        let vpd = h.run(CDB.inquiry(evpd: true, page: 0x8F), dataIn: 255)
        expectGood(vpd)
        #expect(Array(vpd.data[4 ..< 16]) == [0x00, 0x01, 0x00, 0x08, 7, 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03])
        #expect(h.run(CDB.inquiry(), dataIn: 96).data[5] & 0x08 != 0, "3PC")
    }
}

import Testing
@testable import SCSIEngine

@Suite struct SenseFormatTests {
    @Test func fixedFormatWithFieldPointer() {
        let s = SCSIError.invalidCDB(byte: 2, bit: 5).senseBytes
        #expect(s == [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0xCD, 0x00, 0x02])
    }

    @Test func parameterListPointerHasNoCDBBit() {
        let s = SCSIError.invalidParameter(byte: 0x0123).senseBytes
        #expect(Array(s[12 ... 17]) == [0x26, 0x00, 0, 0x80, 0x01, 0x23])
    }

    @Test func informationFieldSetsValid() {
        let s = SCSIError(key: SenseKey.miscompare, asc: .miscompareDuringVerify, information: 0x0102_0304).senseBytes
        #expect(s[0] == 0xF0)
        #expect(Array(s[2 ... 6]) == [0x0E, 1, 2, 3, 4])
        #expect(s[12] == 0x1D && s[13] == 0)
    }

    @Test func descriptorFormatAndBack() {
        let e = SCSIError(key: SenseKey.miscompare, asc: .miscompareDuringVerify, information: 0x0102_0304)
        let d = e.sense.bytes(.descriptor)
        #expect(d == [0x72, 0x0E, 0x1D, 0x00, 0, 0, 0, 12, 0x00, 0x0A, 0x80, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        #expect(SenseData(parsing: d) == e.sense)
        #expect(SenseData(parsing: e.senseBytes) == e.sense)
        let p = SCSIError.invalidParameter(byte: 0x0123, bit: 6).sense
        #expect(SenseData(parsing: p.bytes(.descriptor)) == p)
        #expect(SenseData(parsing: p.bytes(.fixed)) == p)
        #expect(SenseData(parsing: [0x00, 1, 2]) == nil)
    }

    @Test func requestSenseInDescriptorFormat() {
        let h = Harness(clearPowerOn: false)
        let o = h.run([0x03, 0x01, 0, 0, 252, 0], dataIn: 252)
        expectGood(o)
        #expect(o.data == [0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0])
        #expect(h.run([0x03, 0x00, 0, 0, 252, 0], dataIn: 252).data.count == 18)
    }
}

@Suite struct InquiryTests {
    @Test func standardData() {
        let h = Harness()
        let o = h.run(CDB.inquiry(), dataIn: 255)
        expectGood(o)
        #expect(o.data.count == 96)
        #expect(o.result.transferLength == 96)
        #expect(Array(o.data[0 ... 7]) == [0x00, 0x00, 0x06, 0x12, 91, 0x18, 0x00, 0x02]) // TPGS 01b, 3PC
        #expect(String(decoding: o.data[8 ..< 16], as: UTF8.self) == "SWIFTTGT")
        #expect(String(decoding: o.data[16 ..< 32], as: UTF8.self) == "SwiftTarget LU  ")
        #expect(String(decoding: o.data[32 ..< 36], as: UTF8.self) == "0001")
        #expect(Array(o.data[58 ..< 66]) == [0x00, 0xA0, 0x04, 0x60, 0x04, 0xC0, 0x09, 0x60])
    }

    @Test func allocationLengthTruncates() {
        let h = Harness()
        let o = h.run(CDB.inquiry(alloc: 5), dataIn: 255)
        expectGood(o)
        #expect(o.data.count == 5)
        #expect(o.result.transferLength == 5)
        // Smaller data-in buffer than the allocation length: copy what fits, report it all.
        let p = h.run(CDB.inquiry(alloc: 96), dataIn: 36)
        #expect(p.data.count == 36)
        #expect(p.result.transferLength == 96)
    }

    @Test func cmddtAndPageWithoutEVPDAreInvalid() {
        let h = Harness()
        let o = h.run([0x12, 0x02, 0, 0, 255, 0], dataIn: 255)
        expectSense(o, 5, 0x2400)
        #expect(o.sks == [0xC9, 0x00, 0x01]) // SKSV, C/D, BPV, bit 1, byte 1
        let p = h.run([0x12, 0x00, 0x80, 0, 255, 0], dataIn: 255)
        expectSense(p, 5, 0x2400)
        #expect(p.sks == [0xC0, 0x00, 0x02])
        let q = h.run(CDB.inquiry(evpd: true, page: 0x42), dataIn: 255)
        expectSense(q, 5, 0x2400)
        #expect(q.sks == [0xC0, 0x00, 0x02])
    }

    @Test func supportedPages() {
        let o = Harness().run(CDB.inquiry(evpd: true, page: 0), dataIn: 255)
        #expect(o.data == [0, 0, 0, 7, 0x00, 0x80, 0x83, 0x8F, 0xB0, 0xB1, 0xB2])
    }

    @Test func serialNumber() {
        let o = Harness().run(CDB.inquiry(evpd: true, page: 0x80), dataIn: 255)
        #expect(o.data == [0, 0x80, 0, 7] + Array("SER0001".utf8))
    }

    @Test func deviceIdentification() {
        let h = Harness()
        let o = h.run(CDB.inquiry(evpd: true, page: 0x83), dataIn: 512)
        expectGood(o)
        let d = o.data
        #expect(Array(d[0 ... 1]) == [0, 0x83])
        #expect(Int(d[2]) << 8 | Int(d[3]) == d.count - 4)
        // NAA 6 descriptor.
        #expect(Array(d[4 ... 7]) == [0x01, 0x03, 0x00, 16])
        // NAA 6 | OUI 0 | vendor specific id = uniqueID >> 28 (36 bits) | extension = uniqueID.
        #expect(Array(d[8 ..< 16]) == [0x60, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78])
        #expect(Array(d[16 ..< 24]) == [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF])
        // T10 vendor id.
        #expect(Array(d[24 ... 26]) == [0x02, 0x01, 0x00])
        let t10Len = Int(d[27])
        #expect(String(decoding: d[28 ..< 28 + t10Len], as: UTF8.self) == "SWIFTTGTSER0001")
        var i = 28 + t10Len
        #expect(Array(d[i ..< i + 8]) == [0x51, 0x94, 0, 4, 0, 0, 0, 1]) // relative target port 1
        i += 8
        #expect(Array(d[i ..< i + 8]) == [0x51, 0x95, 0, 4, 0, 0, 0, 1]) // target port group 1
        i += 8
        #expect(Array(d[i ..< i + 2]) == [0x53, 0x98])
        let nameLen = Int(d[i + 3])
        #expect(nameLen % 4 == 0)
        let name = String(decoding: d[(i + 4) ..< (i + 4 + nameLen)].prefix { $0 != 0 }, as: UTF8.self)
        #expect(name == "iqn.2026-01.test:target,t,0x0001")
        #expect(i + 4 + nameLen == d.count)
    }

    @Test func blockLimitsThin() {
        let o = Harness(thin: true).run(CDB.inquiry(evpd: true, page: 0xB0), dataIn: 255)
        let d = o.data
        #expect(d.count == 64)
        #expect(Array(d[0 ... 3]) == [0, 0xB0, 0, 0x3C])
        #expect(d[5] == 255)                                     // max COMPARE AND WRITE length
        #expect(Array(d[8 ... 11]) == be32(0x1_0000))          // max transfer length
        #expect(Array(d[12 ... 15]) == be32(0x800))            // optimal transfer length
        #expect(Array(d[20 ... 23]) == be32(0x10_0000))        // max unmap LBA count (libiscsi: ≤ 1M)
        #expect(Array(d[24 ... 27]) == be32(256))              // max unmap descriptors
        #expect(Array(d[6 ... 7]) == [0, 1])                   // transfer granularity: a block
        #expect(Array(d[28 ... 31]) == be32(1))                // unmap granularity: a block
        #expect(Array(d[36 ... 43]) == be64(0x40_0000))        // max write same length
    }

    @Test func blockLimitsThickHasNoUnmap() {
        let d = Harness().run(CDB.inquiry(evpd: true, page: 0xB0), dataIn: 255).data
        #expect(Array(d[20 ... 27]) == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func characteristicsAndProvisioning() {
        let b1 = Harness().run(CDB.inquiry(evpd: true, page: 0xB1), dataIn: 255).data
        #expect(Array(b1[0 ... 5]) == [0, 0xB1, 0, 0x3C, 0, 1])
        let thin = Harness(thin: true).run(CDB.inquiry(evpd: true, page: 0xB2), dataIn: 255).data
        #expect(thin == [0, 0xB2, 0, 4, 0, 0xE4, 0x02, 0])
        let thick = Harness().run(CDB.inquiry(evpd: true, page: 0xB2), dataIn: 255).data
        #expect(thick == [0, 0xB2, 0, 4, 0, 0, 0, 0])
    }

    @Test func missingLUN() {
        let h = Harness()
        let o = h.run(CDB.inquiry(), lun: 7, dataIn: 255)
        expectGood(o)
        #expect(o.data[0] == 0x7F)
        expectSense(h.run(CDB.tur, lun: 7), 5, 0x2500)
        let rl = h.run([0xA0, 0, 0, 0, 0, 0] + be32(64) + [0, 0], lun: 7, dataIn: 64)
        expectGood(rl)
        #expect(rl.data == be32(8) + [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0])
        let rs = h.run(CDB.requestSense(), lun: 7, dataIn: 18)
        expectGood(rs)
        #expect(rs.data[2] == 5 && rs.data[12] == 0x25)
    }
}

@Suite struct ReportLunsTests {
    @Test func selectReportAndAllocation() throws {
        let h = Harness()
        try h.target.addLogicalUnit(300, store: MemoryStore(blocks: 8), configuration: .init(serialNumber: "2", uniqueID: 2))
        let o = h.run([0xA0, 0, 0, 0, 0, 0] + be32(64) + [0, 0], dataIn: 64)
        expectGood(o)
        #expect(o.data == be32(16) + [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [0x41, 0x2C, 0, 0, 0, 0, 0, 0])
        let wellKnown = h.run([0xA0, 0, 1, 0, 0, 0] + be32(64) + [0, 0], dataIn: 64)
        #expect(wellKnown.data == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(h.run([0xA0, 0, 2, 0, 0, 0] + be32(64) + [0, 0], dataIn: 64).data.count == 24)
        let bad = h.run([0xA0, 0, 3, 0, 0, 0] + be32(64) + [0, 0], dataIn: 64)
        expectSense(bad, 5, 0x2400)
        #expect(bad.sks == [0xC0, 0, 2])
        let short = h.run([0xA0, 0, 0, 0, 0, 0] + be32(15) + [0, 0], dataIn: 64)
        expectSense(short, 5, 0x2400)
        #expect(short.sks == [0xC0, 0, 6])
        #expect(h.target.logicalUnitNumbers == [0, 300])
    }

    @Test func reportedLunsChangedUnitAttention() throws {
        let h = Harness()
        try h.target.addLogicalUnit(1, store: MemoryStore(blocks: 8), configuration: .init(serialNumber: "2", uniqueID: 2))
        // REPORT LUNS does not report the UA, and clears it.
        expectGood(h.run([0xA0, 0, 0, 0, 0, 0] + be32(64) + [0, 0], dataIn: 64))
        expectGood(h.run(CDB.tur))
        // The other nexus still has it.
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x3F0E)
        expectGood(h.run(CDB.tur, nexus: h.b))
        #expect(h.target.removeLogicalUnit(1) != nil)
        expectSense(h.run(CDB.tur), 6, 0x3F0E)
    }
}

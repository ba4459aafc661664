import Testing
@testable import SCSIEngine
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ModeSenseTests {
    @Test func allPagesSix() {
        let h = Harness(blocks: 1000)
        let o = h.run(CDB.modeSense6(page: 0x3F), dataIn: 255)
        expectGood(o)
        let d = o.data
        #expect(d.count == 4 + 8 + 20 + 12 + 12)
        #expect(Array(d[0 ... 3]) == [UInt8(d.count - 1), 0, 0x10, 8])
        #expect(Array(d[4 ..< 12]) == be32(1000) + [0, 0, 2, 0])
        #expect(Array(d[12 ... 14]) == [0x08, 0x12, 0x04])          // caching, WCE
        #expect(Array(d[32 ... 37]) == [0x0A, 0x0A, 0, 0x10, 0, 0x40]) // control
        #expect(Array(d[44 ... 46]) == [0x1C, 0x0A, 0x08])          // IE, DEXCPT
    }

    @Test func tenWithLongLBAAndDBD() {
        let h = Harness(blocks: 1000)
        let o = h.run(CDB.modeSense10(page: 0x08, llbaa: true), dataIn: 1024)
        let d = o.data
        #expect(d.count == 8 + 16 + 20)
        #expect(Array(d[0 ..< 8]) == be16(d.count - 2) + [0, 0x10, 1, 0] + be16(16))
        #expect(Array(d[8 ..< 24]) == be64(1000) + [0, 0, 0, 0] + be32(512))
        let nodb = h.run(CDB.modeSense10(page: 0x08, dbd: true), dataIn: 1024)
        #expect(nodb.data.count == 8 + 20)
        #expect(Array(nodb.data[6 ... 7]) == [0, 0])
    }

    @Test func pageControls() {
        let h = Harness(configuration: .init(serialNumber: "s", uniqueID: 1, writeCacheEnabled: false))
        let changeable = h.run(CDB.modeSense6(page: 0x08, pc: 1, dbd: true), dataIn: 255).data
        #expect(changeable[6] == 0x04)
        let current = h.run(CDB.modeSense6(page: 0x08, pc: 0, dbd: true), dataIn: 255).data
        #expect(current[6] == 0x00)
        let defaults = h.run(CDB.modeSense6(page: 0x08, pc: 2, dbd: true), dataIn: 255).data
        #expect(defaults[6] == 0x00)
        let saved = h.run(CDB.modeSense6(page: 0x08, pc: 3), dataIn: 255)
        expectSense(saved, 5, 0x3900)
        let ctl = h.run(CDB.modeSense6(page: 0x0A, pc: 1, dbd: true), dataIn: 255).data
        #expect(Array(ctl[4 ..< 16]) == [0x0A, 0x0A, 0x04, 0, 0x08, 0, 0, 0, 0, 0, 0, 0])
    }

    /// D_SENSE (SPC-4 7.5.7): once set, CHECK CONDITION carries descriptor-format sense.
    @Test func descriptorSense() {
        let h = Harness(blocks: 64)
        var ctl = h.run(CDB.modeSense6(page: 0x0A, dbd: true), dataIn: 255).data
        ctl[0] = 0; ctl[2] = 0
        ctl[6] |= 0x04
        expectGood(h.run(CDB.modeSelect6(ctl.count), dataOut: ctl))
        #expect(h.run(CDB.modeSense6(page: 0x0A, dbd: true), dataIn: 255).data[6] & 0x04 != 0)
        let invalid = h.run([0x28, 0xE0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 512) // RDPROTECT set
        #expect(invalid.status == .checkCondition)
        // 72h, key 5, 24/00; sense key specific descriptor: C/D, BPV, bit 7 of byte 1.
        #expect(invalid.result.sense == [0x72, 0x05, 0x24, 0x00, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0xCF, 0x00, 0x01, 0])
        let beyond = h.run(CDB.read10(64, 1), dataIn: 512)
        #expect(beyond.result.sense == [0x72, 0x05, 0x21, 0x00, 0, 0, 0, 0])
        // The other nexus was told the mode changed, in the new format.
        let other = h.run(CDB.read10(0, 1), nexus: h.b, dataIn: 512)
        #expect(other.result.sense == [0x72, 0x06, 0x2A, 0x01, 0, 0, 0, 0])
        ctl[6] &= ~0x04
        expectGood(h.run(CDB.modeSelect6(ctl.count), dataOut: ctl))
        expectSense(h.run(CDB.read10(64, 1), dataIn: 512), 5, 0x2100)
    }

    @Test func unknownPageAndSubpage() {
        let h = Harness()
        let o = h.run(CDB.modeSense6(page: 0x19), dataIn: 255)
        expectSense(o, 5, 0x2400)
        #expect(o.sks == [0xCD, 0, 2])
        let s = h.run(CDB.modeSense6(page: 0x08, subpage: 1), dataIn: 255)
        expectSense(s, 5, 0x2400)
        #expect(s.sks == [0xC0, 0, 3])
        expectGood(h.run(CDB.modeSense6(page: 0x3F, subpage: 0xFF), dataIn: 255))
    }

    @Test func allocationLength() {
        let o = Harness().run(CDB.modeSense6(page: 0x3F, alloc: 4), dataIn: 255)
        #expect(o.data.count == 4)
        #expect(o.result.transferLength == 4)
        #expect(o.data[0] == 55)
    }
}

@Suite struct ModeSelectTests {
    func cachingPage(wce: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 20)
        p[0] = 0x08; p[1] = 0x12; p[2] = wce ? 0x04 : 0
        return p
    }

    @Test func roundTripWCEAndUnitAttentionForOthers() {
        let h = Harness()
        let params = [0, 0, 0, 0] + cachingPage(wce: false)
        expectGood(h.run(CDB.modeSelect6(params.count), dataOut: params))
        let d = h.run(CDB.modeSense6(page: 0x08, dbd: true), dataIn: 255).data
        #expect(d[6] == 0)
        // WCE off: every write is durable.
        h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512))
        #expect(h.store.contents.withLock { $0.durableWrites } == 1)
        expectGood(h.run(CDB.tur))
        expectSense(h.run(CDB.tur, nexus: h.b), 6, 0x2A01)
        expectGood(h.run(CDB.tur, nexus: h.b))
    }

    /// Writes acknowledged under the cache are made durable when WCE goes off (the initiator
    /// sends no SYNCHRONIZE CACHE after that); later writes are write-through.
    @Test func turningTheCacheOffFlushesWhatItHeld() {
        let h = Harness() // WCE on
        let block = [UInt8](repeating: 3, count: 512)
        expectGood(h.run(CDB.write10(0, 1), dataOut: block))
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.flushes) } == (1, 0))
        let off = [0, 0, 0, 0] + cachingPage(wce: false)
        expectGood(h.run(CDB.modeSelect6(off.count), dataOut: off))
        #expect(h.store.contents.withLock { $0.flushes } == 1)
        expectGood(h.run(CDB.modeSelect6(off.count), dataOut: off))
        #expect(h.store.contents.withLock { $0.flushes } == 1, "no change, no flush")
        expectGood(h.run(CDB.write10(1, 1), dataOut: block))
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.durableWrites) } == (1, 1))
        let on = [0, 0, 0, 0] + cachingPage(wce: true)
        expectGood(h.run(CDB.modeSelect6(on.count), dataOut: on))
        expectGood(h.run(CDB.write10(2, 1), dataOut: block))
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.durableWrites, $0.flushes) } == (2, 1, 1))
    }

    /// A LU reset returns WCE to its default: the writes go write-through again, and what
    /// the cache an initiator turned on held is flushed.
    @Test func luResetTurnsAnInitiatorsCacheOffAgain() {
        let h = Harness(configuration: .init(serialNumber: "s", uniqueID: 1, writeCacheEnabled: false))
        let on = [0, 0, 0, 0] + cachingPage(wce: true)
        expectGood(h.run(CDB.modeSelect6(on.count), dataOut: on))
        let block = [UInt8](repeating: 4, count: 512)
        expectGood(h.run(CDB.write10(0, 1), dataOut: block))
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.durableWrites) } == (1, 0))
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.a) == .functionComplete)
        var waited = 0
        while h.store.contents.withLock({ $0.flushes }) == 0 && waited < 200 { usleep(5000); waited += 1 }
        #expect(h.store.contents.withLock { $0.flushes } == 1)
        _ = h.run(CDB.tur) // the reset's unit attention
        expectGood(h.run(CDB.write10(1, 1), dataOut: block))
        #expect(h.store.contents.withLock { ($0.plainWrites, $0.durableWrites) } == (1, 1))
    }

    @Test func modeSelect10WithBlockDescriptor() {
        let h = Harness(blocks: 64)
        let params = [0, 0, 0, 0, 0, 0] + be16(8) + [0, 0, 0, 0, 0, 0, 2, 0] + cachingPage(wce: false)
        expectGood(h.run(CDB.modeSelect10(params.count), dataOut: params))
        #expect(h.run(CDB.modeSense10(page: 0x08, dbd: true), dataIn: 255).data[10] == 0)
        let badBlock = [0, 0, 0, 0, 0, 0] + be16(8) + [0, 0, 0, 0, 0, 0, 4, 0] + cachingPage(wce: true)
        let o = h.run(CDB.modeSelect10(badBlock.count), dataOut: badBlock)
        expectSense(o, 5, 0x2600)
        #expect(o.sks == [0x80, 0, 13])
    }

    @Test func softwareWriteProtect() {
        let h = Harness()
        var ctl = h.run(CDB.modeSense6(page: 0x0A, dbd: true), dataIn: 255).data
        ctl[0] = 0
        ctl[2] = 0
        ctl[8] |= 0x08
        expectGood(h.run(CDB.modeSelect6(ctl.count), dataOut: ctl))
        expectSense(h.run(CDB.write10(0, 1), dataOut: [UInt8](repeating: 0, count: 512)), 7, 0x2702)
        #expect(h.run(CDB.modeSense6(page: 0x0A), dataIn: 255).data[2] & 0x80 != 0)
    }

    @Test func invalidSelections() {
        let h = Harness()
        let good = [0, 0, 0, 0] + cachingPage(wce: true)
        let sp = h.run(CDB.modeSelect6(good.count, sp: true), dataOut: good)
        expectSense(sp, 5, 0x2400)
        #expect(sp.sks == [0xC8, 0, 1])
        let pf = h.run(CDB.modeSelect6(good.count, pf: false), dataOut: good)
        expectSense(pf, 5, 0x2400)
        #expect(pf.sks == [0xCC, 0, 1])
        var wrongLength = good
        wrongLength[5] = 0x10
        let wl = h.run(CDB.modeSelect6(wrongLength.count), dataOut: wrongLength)
        expectSense(wl, 5, 0x2600)
        #expect(wl.sks == [0x80, 0, 5])
        var unchangeable = good
        unchangeable[6] |= 0x01 // RCD is not changeable
        let uc = h.run(CDB.modeSelect6(unchangeable.count), dataOut: unchangeable)
        expectSense(uc, 5, 0x2600)
        #expect(uc.sks == [0x88, 0, 6])
        var unknown = good
        unknown[4] = 0x19
        expectSense(h.run(CDB.modeSelect6(unknown.count), dataOut: unknown), 5, 0x2600)
        let truncated = Array(good.prefix(10))
        expectSense(h.run(CDB.modeSelect6(truncated.count), dataOut: truncated), 5, 0x1A00)
        // Nothing was applied by the failed attempts; the other nexus saw no change.
        expectGood(h.run(CDB.tur, nexus: h.b))
        expectGood(h.run(CDB.modeSelect6(0)))
    }

    @Test func lunResetRestoresDefaults() {
        let h = Harness()
        let params = [0, 0, 0, 0] + cachingPage(wce: false)
        expectGood(h.run(CDB.modeSelect6(params.count), dataOut: params))
        #expect(h.target.taskManagement(.logicalUnitReset, lun: 0, nexus: h.a) == .functionComplete)
        expectSense(h.run(CDB.tur), 6, 0x2903)
        #expect(h.run(CDB.modeSense6(page: 0x08, dbd: true), dataIn: 255).data[6] == 0x04)
    }
}

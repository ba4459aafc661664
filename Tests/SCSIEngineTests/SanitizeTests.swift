import Dispatch
import Glibc
import Testing
@testable import SCSIEngine

/// SANITIZE (SBC-4 5.25) and the sanitize-in-progress state (SBC-4 4.11).
@Suite struct SanitizeTests {
    func sanitize(_ action: UInt8, immediate: Bool = false, ause: Bool = false, length: Int = 0) -> [UInt8] {
        [0x48, action | (immediate ? 0x80 : 0) | (ause ? 0x20 : 0), 0, 0, 0, 0, 0] + be16(length) + [0]
    }

    func overwriteParameters(_ pattern: [UInt8], count: UInt8 = 1, invert: Bool = false) -> [UInt8] {
        [(invert ? 0x80 : 0) | count, 0] + be16(pattern.count) + pattern
    }

    @Test func overwriteWritesThePatternEverywhere() {
        let h = Harness(blocks: 64)
        h.store.fill(0 ..< 64 * 512, with: 0x77)
        let params = overwriteParameters([0xDE, 0xAD, 0xBE])
        expectGood(h.run(sanitize(0x01, length: params.count), dataOut: params))
        let expected = (0 ..< 64 * 512).map { [UInt8(0xDE), 0xAD, 0xBE][($0 % 512) % 3] }
        #expect(h.store.bytes(0 ..< 64 * 512) == expected)
        #expect(h.store.contents.withLock { $0.flushes } >= 1, "durable before GOOD")
        // Two passes with INVERT: the last pass writes the inverse.
        let inverted = overwriteParameters([0x0F], count: 2, invert: true)
        expectGood(h.run(sanitize(0x01, length: inverted.count), dataOut: inverted))
        #expect(h.store.bytes(0 ..< 64 * 512) == [UInt8](repeating: 0xF0, count: 64 * 512))
    }

    @Test func blockEraseDeallocatesThinLUs() {
        let h = Harness(blocks: 64, thin: true)
        h.store.fill(0 ..< 64 * 512, with: 0x55)
        expectGood(h.run(sanitize(0x02)))
        #expect(h.store.bytes(0 ..< 64 * 512) == [UInt8](repeating: 0, count: 64 * 512))
        #expect(h.store.contents.withLock { $0.allocated.allSatisfy { !$0 } })
        #expect(h.run(CDB.inquiry(evpd: true, page: 0xB1), dataIn: 64).data[7] == 0x40, "WABEREQ 01b")
        // A thick LU has no BLOCK ERASE (nothing to deallocate), and says so.
        let thick = Harness(blocks: 64)
        thick.store.fill(0 ..< 512, with: 0x55)
        let o = thick.run(sanitize(0x02))
        expectSense(o, 5, 0x2400)
        #expect(o.sks == [0xCC, 0, 1])
        #expect(thick.store.bytes(0 ..< 512) == [UInt8](repeating: 0x55, count: 512))
        #expect(thick.run(CDB.inquiry(evpd: true, page: 0xB1), dataIn: 64).data[7] == 0)
    }

    @Test func refusals() {
        let h = Harness(blocks: 64)
        expectSense(h.run(sanitize(0x03)), 5, 0x2400)                      // CRYPTOGRAPHIC ERASE
        expectSense(h.run(sanitize(0x04)), 5, 0x2400)                      // no such service action
        expectSense(Harness(blocks: 8, thin: true).run(sanitize(0x02, length: 8), dataOut: [UInt8](repeating: 0, count: 8)), 5, 0x2400)
        var reserved = sanitize(0x01, length: 5)
        reserved[4] = 4
        expectSense(h.run(reserved, dataOut: overwriteParameters([1])), 5, 0x2400)
        expectSense(h.run(sanitize(0x1F, length: 4), dataOut: [0, 0, 0, 0]), 5, 0x2400)
        let zeroCount = overwriteParameters([1], count: 0)
        expectSense(h.run(sanitize(0x01, length: zeroCount.count), dataOut: zeroCount), 5, 0x2600)
        let tooLong = overwriteParameters([UInt8](repeating: 1, count: 513))
        expectSense(h.run(sanitize(0x01, length: tooLong.count), dataOut: tooLong), 5, 0x2600)
        let empty = overwriteParameters([])
        expectSense(h.run(sanitize(0x01, length: 4), dataOut: empty), 5, 0x2400)
        let ro = Harness(blocks: 8, readOnly: true)
        let p = overwriteParameters([1])
        expectSense(ro.run(sanitize(0x01, length: p.count), dataOut: p), 7, 0x2700)
        expectSense(Harness(blocks: 8, thin: true, readOnly: true).run(sanitize(0x02)), 7, 0x2700)
        #expect(h.store.bytes(0 ..< 512) == [UInt8](repeating: 0, count: 512), "nothing refused was written")
    }

    /// With IMMED the command answers at once; until the sanitize ends, commands but INQUIRY,
    /// REPORT LUNS and REQUEST SENSE get NOT READY, SANITIZE IN PROGRESS.
    @Test func immediateSanitizeShowsProgress() {
        let h = Harness(blocks: 256)
        h.store.contents.withLock { $0.tearWrites = true } // slows each write down to 2 ms
        let params = overwriteParameters([0xAB], count: 31)
        expectGood(h.run(sanitize(0x01, immediate: true, length: params.count), dataOut: params))
        let busy = h.run(CDB.read10(0, 1), nexus: h.b, dataIn: 512)
        expectSense(busy, 2, 0x041B)
        #expect(busy.sks[0] == 0x80, "SKSV with a progress indication")
        expectSense(h.run([0, 0, 0, 0, 0, 0]), 2, 0x041B)
        expectGood(h.run(CDB.inquiry(), dataIn: 96))
        let sense = h.run(CDB.requestSense(), dataIn: 18)
        expectGood(sense)
        #expect(sense.data[2] == 2 && sense.data[12] == 0x04 && sense.data[13] == 0x1B)
        // A second sanitize while the first runs is refused the same way.
        expectSense(h.run(sanitize(0x1F)), 2, 0x041B)
        expectSense(h.run(sanitize(0x01, length: params.count), dataOut: params), 2, 0x041B)
        var waited = 0
        while h.run([0, 0, 0, 0, 0, 0]).status != .good && waited < 2000 { usleep(5000); waited += 1 }
        #expect(h.store.bytes(0 ..< 256 * 512) == [UInt8](repeating: 0xAB, count: 256 * 512))
        expectGood(h.run(CDB.read10(0, 1), nexus: h.b, dataIn: 512))
    }

    /// The target's sanitize rate paces the overwrite: 1 MiB at 2 MiB/s takes about half a second.
    @Test func sanitizeRateIsKept() {
        let h = Harness(blocks: 2048)
        h.target.sanitizeBytesPerSecond = 2 << 20
        let params = overwriteParameters([0x5A])
        let start = ContinuousClock.now
        expectGood(h.run(sanitize(0x01, length: params.count), dataOut: params))
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(450) && elapsed < .seconds(5), "\(elapsed)")
        #expect(h.store.bytes(0 ..< 2048 * 512) == [UInt8](repeating: 0x5A, count: 2048 * 512))
    }

    @Test func failureModeUntilExit() {
        let h = Harness(blocks: 64)
        h.store.contents.withLock { $0.failWriteErrno = 5 }
        let p = overwriteParameters([1])
        expectSense(h.run(sanitize(0x01, ause: true, length: p.count), dataOut: p), 3, 0x3103)
        expectSense(h.run(CDB.read10(0, 1), dataIn: 512), 3, 0x3103)
        h.store.contents.withLock { $0.failWriteErrno = nil }
        expectGood(h.run(sanitize(0x1F)))
        expectGood(h.run(CDB.read10(0, 1), dataIn: 512))
        // Without AUSE only a sanitize that succeeds ends the failure mode.
        h.store.contents.withLock { $0.failWriteErrno = 5 }
        expectSense(h.run(sanitize(0x01, length: p.count), dataOut: p), 3, 0x3103)
        h.store.contents.withLock { $0.failWriteErrno = nil }
        expectSense(h.run(sanitize(0x1F)), 3, 0x3103)
        expectGood(h.run(sanitize(0x01, length: p.count), dataOut: p))
        expectGood(h.run(CDB.read10(0, 1), dataIn: 512))
    }
}

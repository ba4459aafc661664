import Backstores
import Foundation
import Testing
@testable import SCSIEngine

/// The event-loop fast path: READs served from the page cache (RWF_NOWAIT), anything else deferred.
@Suite struct NonBlockingReadTests {
    func withFileTarget(_ body: (SCSITarget, NexusID) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "swtgt-nb-\(UUID().uuidString).img"
        defer { unlink(path) }
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20))
        defer { store.close() }
        let target = SCSITarget(name: "iqn.2026-11.test:nb")
        try target.addLogicalUnit(0, store: store, configuration: LogicalUnitConfiguration(serialNumber: "NB1", uniqueID: 1))
        let nexus = target.openNexus(ITNexus(initiatorName: "iqn.2026-11.test:i", initiatorPortID: 1, targetName: target.name))
        try body(target, nexus)
    }

    func run(_ target: SCSITarget, _ nexus: NexusID, _ cdb: [UInt8], dataOut: [UInt8] = [], dataIn: Int = 0) -> (SCSICommandResult, [UInt8]) {
        var out = dataOut
        var input = [UInt8](repeating: 0, count: dataIn)
        let result = cdb.withUnsafeBytes { c in
            out.withUnsafeMutableBytes { o in
                input.withUnsafeMutableBytes { i in
                    target.execute(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataOut: IOVectors(o), dataIn: IOVectors(i))
                }
            }
        }
        return (result, input)
    }

    func runWithoutBlocking(_ target: SCSITarget, _ nexus: NexusID, _ cdb: [UInt8], dataIn: Int) -> (SCSICommandResult?, [UInt8]) {
        var input = [UInt8](repeating: 0, count: dataIn)
        let result = cdb.withUnsafeBytes { c in
            input.withUnsafeMutableBytes { i in
                target.executeWithoutBlocking(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataIn: IOVectors(i))
            }
        }
        return (result, input)
    }

    @Test func cachedReadIsServedByteExactAndUnitAttentionFirst() throws {
        try withFileTarget { target, nexus in
            let read10: [UInt8] = [0x28, 0, 0, 0, 0, 4, 0, 0, 2, 0]
            // A new nexus first hears POWER ON OCCURRED, on the fast path too.
            let (attention, _) = runWithoutBlocking(target, nexus, read10, dataIn: 1024)
            #expect(attention?.status == .checkCondition)
            #expect(attention?.sense[2] == 0x06 && attention?.sense[12] == 0x29)
            let payload = (0..<1024).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
            let (written, _) = run(target, nexus, [0x2A, 0, 0, 0, 0, 4, 0, 0, 2, 0], dataOut: payload)
            #expect(written.status == .good)
            // Just written, so cached: answered without an I/O thread.
            let (result, data) = runWithoutBlocking(target, nexus, read10, dataIn: 1024)
            #expect(result?.status == .good)
            #expect(result?.dataInCount == 1024)
            #expect(data == payload)
        }
    }

    @Test func onlyReadsTakeTheFastPath() throws {
        try withFileTarget { target, nexus in
            _ = run(target, nexus, [0, 0, 0, 0, 0, 0])  // clear the power-on attention
            #expect(runWithoutBlocking(target, nexus, [0, 0, 0, 0, 0, 0], dataIn: 0).0 == nil)  // TUR
            #expect(runWithoutBlocking(target, nexus, [0x12, 0, 0, 0, 36, 0], dataIn: 36).0 == nil)  // INQUIRY
            #expect(runWithoutBlocking(target, nexus, [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 0).0 == nil)  // WRITE
            // Out of range is still answered with exact sense, no I/O needed.
            let (beyond, _) = runWithoutBlocking(target, nexus, [0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0], dataIn: 512)
            #expect(beyond?.status == .checkCondition)
            #expect(beyond?.sense[12] == 0x21)
        }
    }

    @Test func storesWithoutAPageCacheAlwaysDefer() {
        let h = Harness()
        var input = [UInt8](repeating: 0, count: 512)
        let cdb: [UInt8] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        let result = cdb.withUnsafeBytes { c in
            input.withUnsafeMutableBytes { i in
                h.target.executeWithoutBlocking(cdb: c, lun: 0, nexus: h.a, attribute: .simple, dataIn: IOVectors(i))
            }
        }
        #expect(result == nil)
    }

    /// A store that says it can never read without blocking (direct I/O, or no RWF_NOWAIT in
    /// its file system) is not asked: the fast path gives up before the command prelude.
    @Test func storesThatCannotReadWithoutBlockingAreNotAsked() {
        let h = Harness()
        _ = h.run(CDB.tur) // the power-on unit attention
        h.store.contents.withLock { $0.cached = true }
        let cdb: [UInt8] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        func attempt() -> SCSICommandResult? {
            var input = [UInt8](repeating: 0, count: 512)
            return cdb.withUnsafeBytes { c in
                input.withUnsafeMutableBytes { i in
                    h.target.executeWithoutBlocking(cdb: c, lun: 0, nexus: h.a, attribute: .simple, dataIn: IOVectors(i))
                }
            }
        }
        #expect(attempt()?.status == .good, "cached: served on the fast path")
        #expect(h.store.contents.withLock { $0.nonBlockingReads } == 1)
        h.store.contents.withLock { $0.mayReadWithoutBlocking = false }
        #expect(attempt() == nil)
        #expect(h.store.contents.withLock { $0.nonBlockingReads } == 1, "not asked")
    }
}

import Backstores
import SCSIEngine
import Synchronization
import TCMU
#if canImport(Glibc)
import Glibc
#endif

/// A byte-array store with no locking (the workload never overlaps in-flight writes with
/// anything) and an optional delay for a region, to make some commands slow.
final class UnlockedMemoryStore: BlockStore, @unchecked Sendable {
    let kind: BackstoreKind = .file
    let path = "memory"
    let logicalBlockSize = 512
    let isThinProvisioned = false
    let supportsDiscard = false
    let isReadOnly = false
    let bytes: UnsafeMutableRawBufferPointer
    /// Byte offsets below this sleep `slowMicroseconds` per call.
    let slowBelow: UInt64
    let slowMicroseconds: UInt32

    init(byteCount: Int, slowBelow: UInt64 = 0, slowMicroseconds: UInt32 = 0) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 4096)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        self.slowBelow = slowBelow
        self.slowMicroseconds = slowMicroseconds
    }
    deinit { bytes.deallocate() }

    var byteCount: UInt64 { UInt64(bytes.count) }

    private func delay(_ offset: UInt64) {
        if offset < slowBelow, slowMicroseconds > 0 { usleep(slowMicroseconds) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        delay(offset)
        guard Int(offset) + buffer.count <= bytes.count else { throw BackstoreError(.read, errno: EINVAL, path: path) }
        buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + Int(offset), byteCount: buffer.count)
    }
    /// The "page cache": everything outside the slow region can be read without blocking.
    func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        guard offset >= slowBelow, Int(offset) + buffer.count <= bytes.count else { return false }
        buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + Int(offset), byteCount: buffer.count)
        return true
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        delay(offset)
        guard Int(offset) + buffer.count <= bytes.count else { throw BackstoreError(.write, errno: EINVAL, path: path) }
        (bytes.baseAddress! + Int(offset)).copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
    }
    func flush() throws(BackstoreError) {}
    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        memset(bytes.baseAddress! + Int(offset), 0, Int(length))
    }
    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        AllocationExtent(mapped: true, length: min(limit, UInt64(bytes.count) - offset))
    }
    func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    func close() {}
}

/// The SCSI engine with one LU at LUN 0, as the handler wires it.
func makeEngineExecutor(store: any BlockStore) throws -> RingCommandExecutor {
    try makeEngineExecutors(store: store).full
}

/// The engine as the handler wires it: every command, and the non-blocking READ path the
/// reader thread tries first.
func makeEngineExecutors(store: any BlockStore) throws -> (full: RingCommandExecutor, fast: RingFastExecutor) {
    let target = SCSITarget(name: "naa.tcmu-test")
    try target.addLogicalUnit(0, store: store, configuration: LogicalUnitConfiguration(serialNumber: "sim0", uniqueID: 1))
    let nexus = target.openNexus(ITNexus(initiatorName: "tcmu", initiatorPortID: 0, targetName: target.name))
    return ({ cdb, out, into in
        target.execute(cdb: cdb, lun: 0, nexus: nexus, attribute: .simple, dataOut: out, dataIn: into)
    }, { cdb, into in
        target.executeWithoutBlocking(cdb: cdb, lun: 0, nexus: nexus, attribute: .simple, dataIn: into)
    })
}

enum CDBs {
    static func read16(lba: UInt64, blocks: UInt32) -> [UInt8] { rw16(0x88, lba, blocks) }
    static func write16(lba: UInt64, blocks: UInt32) -> [UInt8] { rw16(0x8A, lba, blocks) }
    static func read10(lba: UInt32, blocks: UInt16) -> [UInt8] { rw10(0x28, lba, blocks) }
    static func write10(lba: UInt32, blocks: UInt16) -> [UInt8] { rw10(0x2A, lba, blocks) }
    static let testUnitReady: [UInt8] = [0, 0, 0, 0, 0, 0]
    static let readCapacity10: [UInt8] = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static func inquiry(allocation: UInt16) -> [UInt8] { [0x12, 0, 0, UInt8(allocation >> 8), UInt8(allocation & 0xFF), 0] }

    private static func rw16(_ op: UInt8, _ lba: UInt64, _ blocks: UInt32) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: 16)
        c[0] = op
        for i in 0..<8 { c[2 + i] = UInt8(truncatingIfNeeded: lba >> (56 - 8 * UInt64(i))) }
        for i in 0..<4 { c[10 + i] = UInt8(truncatingIfNeeded: blocks >> (24 - 8 * UInt32(i))) }
        return c
    }
    private static func rw10(_ op: UInt8, _ lba: UInt32, _ blocks: UInt16) -> [UInt8] {
        [op, 0, UInt8(lba >> 24), UInt8((lba >> 16) & 0xFF), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF),
         0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0]
    }
}

/// xorshift64*: fast deterministic bytes for payloads and choices.
struct FastRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E3779B97F4A7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2685821657736338717
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Fills `buffer` with the pattern of `seed` starting `skip` bytes into the pattern.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, seed: UInt64, skip: Int) {
        // Pattern byte i of a payload = byte (i % 8) of the word for i / 8; skip is a multiple of 8.
        precondition(skip % 8 == 0)
        var r = FastRandom(seed: seed)
        for _ in 0..<(skip / 8) { _ = r.next() }
        var i = 0
        let n = buffer.count
        let p = buffer.baseAddress!
        while i + 8 <= n {
            p.storeBytes(of: r.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        if i < n {
            var w = r.next()
            while i < n { p.storeBytes(of: UInt8(truncatingIfNeeded: w), toByteOffset: i, as: UInt8.self); w >>= 8; i += 1 }
        }
    }
}

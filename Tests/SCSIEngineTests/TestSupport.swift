import Backstores
import ISCSIFabric
import Glibc
import Synchronization
import Testing
@testable import SCSIEngine

/// In-memory BlockStore test double with an allocation map (per block) and counters.
final class MemoryStore: BlockStore {
    struct Contents {
        var bytes: [UInt8]
        var allocated: [Bool]
        var durableWrites = 0
        var plainWrites = 0
        var flushes = 0
        var discards: [(UInt64, UInt64)] = []
        var failReadErrno: Int32?
        var failWriteErrno: Int32?
        /// Emulate a page cache: `readWithoutBlocking` succeeds (false: always defers).
        var cached = false
        /// What `mayReadWithoutBlocking` says.
        var mayReadWithoutBlocking = true
        var nonBlockingReads = 0
        /// Writes land in two halves a moment apart, as a real write may be seen by a read.
        var tearWrites = false
        var atomicWrites = 0
    }
    let contents: Mutex<Contents>
    let kind: BackstoreKind = .file
    let path = "memory"
    let logicalBlockSize: Int
    let isThinProvisioned: Bool
    let supportsDiscard: Bool
    let isReadOnly: Bool
    /// The record other "gateways" of this store share (SharedReservationTests).
    let shared: (any SharedRecord)?

    init(blocks: Int, blockSize: Int = 512, thin: Bool = false, readOnly: Bool = false, shared: (any SharedRecord)? = nil,
         atomicWriteLimit: Int = 1 << 20) {
        self.shared = shared
        self.atomicWriteLimit = atomicWriteLimit
        logicalBlockSize = blockSize
        isThinProvisioned = thin
        supportsDiscard = thin
        isReadOnly = readOnly
        contents = Mutex(Contents(bytes: [UInt8](repeating: 0, count: blocks * blockSize),
                                  allocated: [Bool](repeating: !thin, count: blocks)))
    }

    var byteCount: UInt64 { contents.withLock { UInt64($0.bytes.count) } }
    /// Atomic writes up to this many bytes (0: none), as an image file's journal allows.
    let atomicWriteLimit: Int

    func writeAtomically(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        contents.withLock { $0.atomicWrites += 1 }
        try write(from: buffer, at: offset, durable: true)
    }
    var mayReadWithoutBlocking: Bool { contents.withLock { $0.mayReadWithoutBlocking } }

    func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        guard contents.withLock({ c in c.nonBlockingReads += 1; return c.cached }) else { return false }
        return (try? read(into: buffer, at: offset)) != nil
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        let r: BackstoreError? = contents.withLock { c in
            if let e = c.failReadErrno { return BackstoreError(.read, errno: e, path: path) }
            let o = Int(offset)
            guard o + buffer.count <= c.bytes.count else { return BackstoreError(.read, errno: 22, path: path) }
            c.bytes.withUnsafeBytes { src in buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[o ..< o + buffer.count])) }
            return nil
        }
        if let r { throw r }
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        if buffer.count > 1, contents.withLock({ $0.tearWrites }) {
            let half = buffer.count / 2
            try writeWhole(from: UnsafeRawBufferPointer(rebasing: buffer[0 ..< half]), at: offset, durable: durable)
            usleep(2000)
            try writeWhole(from: UnsafeRawBufferPointer(rebasing: buffer[half...]), at: offset + UInt64(half), durable: durable)
            return
        }
        try writeWhole(from: buffer, at: offset, durable: durable)
    }

    private func writeWhole(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        let r: BackstoreError? = contents.withLock { c in
            if let e = c.failWriteErrno { return BackstoreError(.write, errno: e, path: path) }
            let o = Int(offset)
            guard o + buffer.count <= c.bytes.count else { return BackstoreError(.write, errno: 22, path: path) }
            c.bytes.withUnsafeMutableBytes { dst in UnsafeMutableRawBufferPointer(rebasing: dst[o ..< o + buffer.count]).copyMemory(from: buffer) }
            let bs = logicalBlockSize
            for b in (o / bs) ..< ((o + buffer.count + bs - 1) / bs) { c.allocated[b] = true }
            if durable { c.durableWrites += 1 } else { c.plainWrites += 1 }
            return nil
        }
        if let r { throw r }
    }

    func flush() throws(BackstoreError) { contents.withLock { $0.flushes += 1 } }

    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        contents.withLock { c in
            let o = Int(offset), n = Int(length)
            for i in o ..< o + n { c.bytes[i] = 0 }
            let bs = logicalBlockSize
            for b in (o / bs) ..< ((o + n) / bs) { c.allocated[b] = false }
            c.discards.append((offset, length))
        }
    }

    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        contents.withLock { c in
            let bs = logicalBlockSize
            let first = Int(offset) / bs
            let state = c.allocated[first]
            var b = first
            while b < c.allocated.count && c.allocated[b] == state && UInt64((b - first) * bs) < limit { b += 1 }
            return AllocationExtent(mapped: state, length: min(limit, UInt64((b - first) * bs)))
        }
    }

    func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    func close() {}
    func sharedRecord(_ name: String) throws(BackstoreError) -> (any SharedRecord)? { shared }

    func resize(blocks: Int) {
        contents.withLock { c in
            c.bytes = Array(c.bytes.prefix(blocks * logicalBlockSize)) + [UInt8](repeating: 0, count: max(0, blocks * logicalBlockSize - c.bytes.count))
            c.allocated = Array(c.allocated.prefix(blocks)) + [Bool](repeating: !isThinProvisioned, count: max(0, blocks - c.allocated.count))
        }
    }

    func bytes(_ range: Range<Int>) -> [UInt8] { contents.withLock { Array($0.bytes[range]) } }
    func fill(_ range: Range<Int>, with value: UInt8) {
        contents.withLock { c in for i in range { c.bytes[i] = value } }
    }
}

/// What one command returned, with the data-in bytes it produced.
struct Outcome {
    var result: SCSICommandResult
    var data: [UInt8]
    var status: SCSIStatus { result.status }
    var senseKey: UInt8? { result.sense.count >= 14 ? result.sense[2] & 0x0F : nil }
    var asc: UInt16? { result.sense.count >= 14 ? UInt16(result.sense[12]) << 8 | UInt16(result.sense[13]) : nil }
    var information: UInt32 { UInt32(result.sense[3]) << 24 | UInt32(result.sense[4]) << 16 | UInt32(result.sense[5]) << 8 | UInt32(result.sense[6]) }
    /// Sense-key specific bytes 15...17.
    var sks: [UInt8] { Array(result.sense[15 ... 17]) }
}

/// A target with LUs and two logged-in nexuses, and a command runner.
final class Harness: Sendable {
    let target = SCSITarget(name: "iqn.2026-01.test:target", transport: ISCSITransport())
    let store: MemoryStore
    let a: NexusID
    let b: NexusID

    init(blocks: Int = 1024, blockSize: Int = 512, thin: Bool = false, readOnly: Bool = false,
         configuration: LogicalUnitConfiguration = LogicalUnitConfiguration(serialNumber: "SER0001", uniqueID: 0x0123_4567_89AB_CDEF),
         clearPowerOn: Bool = true, portGroup: UInt16 = 1, shared: (any SharedRecord)? = nil) {
        store = MemoryStore(blocks: blocks, blockSize: blockSize, thin: thin, readOnly: readOnly, shared: shared)
        try! target.addLogicalUnit(0, store: store, configuration: configuration)
        a = target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:a", initiatorPortID: 0x23D0_0000_0001, targetName: target.name,
                                     targetPortalGroupTag: portGroup))
        b = target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:b", initiatorPortID: 0x23D0_0000_0002, targetName: target.name,
                                     targetPortalGroupTag: portGroup))
        if clearPowerOn {
            _ = run([0, 0, 0, 0, 0, 0], nexus: a)
            _ = run([0, 0, 0, 0, 0, 0], nexus: b)
        }
    }

    @discardableResult
    func run(_ cdb: [UInt8], lun: UInt64 = 0, nexus: NexusID? = nil, dataOut: [UInt8] = [], dataIn: Int = 0,
             split: Int? = nil) -> Outcome {
        var out = dataOut
        var inBuf = [UInt8](repeating: 0xEE, count: dataIn)
        let result: SCSICommandResult = out.withUnsafeMutableBytes { o in
            inBuf.withUnsafeMutableBytes { i in
                cdb.withUnsafeBytes { c in
                    let outVec: IOVectors
                    if let split, o.count > split {
                        // Two segments: exercises the scatter/gather paths.
                        outVec = IOVectors(UnsafeMutableRawBufferPointer(rebasing: o[0 ..< split]),
                                           more: [UnsafeMutableRawBufferPointer(rebasing: o[split...])])
                    } else {
                        outVec = IOVectors(o)
                    }
                    let inVec: IOVectors
                    if let split, i.count > split {
                        inVec = IOVectors(UnsafeMutableRawBufferPointer(rebasing: i[0 ..< split]),
                                          more: [UnsafeMutableRawBufferPointer(rebasing: i[split...])])
                    } else {
                        inVec = IOVectors(i)
                    }
                    return target.execute(cdb: c, lun: lun, nexus: nexus ?? a, attribute: .simple, dataOut: outVec, dataIn: inVec)
                }
            }
        }
        return Outcome(result: result, data: Array(inBuf.prefix(result.dataInCount)))
    }
}

func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
func be32(_ v: UInt64) -> [UInt8] { (0 ..< 4).map { UInt8(v >> (24 - 8 * $0) & 0xFF) } }
func be64(_ v: UInt64) -> [UInt8] { (0 ..< 8).map { UInt8(v >> (56 - 8 * $0) & 0xFF) } }

enum CDB {
    static func read10(_ lba: UInt64, _ n: Int, fua: Bool = false) -> [UInt8] { [0x28, fua ? 0x08 : 0] + be32(lba) + [0] + be16(n) + [0] }
    static func write10(_ lba: UInt64, _ n: Int, fua: Bool = false) -> [UInt8] { [0x2A, fua ? 0x08 : 0] + be32(lba) + [0] + be16(n) + [0] }
    static func read16(_ lba: UInt64, _ n: Int) -> [UInt8] { [0x88, 0] + be64(lba) + be32(UInt64(n)) + [0, 0] }
    static func write16(_ lba: UInt64, _ n: Int, fua: Bool = false) -> [UInt8] { [0x8A, fua ? 0x08 : 0] + be64(lba) + be32(UInt64(n)) + [0, 0] }
    static func read12(_ lba: UInt64, _ n: Int) -> [UInt8] { [0xA8, 0] + be32(lba) + be32(UInt64(n)) + [0, 0] }
    static func write12(_ lba: UInt64, _ n: Int) -> [UInt8] { [0xAA, 0] + be32(lba) + be32(UInt64(n)) + [0, 0] }
    static func read6(_ lba: UInt64, _ n: Int) -> [UInt8] { [0x08, UInt8(lba >> 16 & 0x1F), UInt8(lba >> 8 & 0xFF), UInt8(lba & 0xFF), UInt8(n & 0xFF), 0] }
    static func write6(_ lba: UInt64, _ n: Int) -> [UInt8] { [0x0A, UInt8(lba >> 16 & 0x1F), UInt8(lba >> 8 & 0xFF), UInt8(lba & 0xFF), UInt8(n & 0xFF), 0] }
    static let tur: [UInt8] = [0, 0, 0, 0, 0, 0]
    static func inquiry(evpd: Bool = false, page: UInt8 = 0, alloc: Int = 255) -> [UInt8] { [0x12, evpd ? 1 : 0, page] + be16(alloc) + [0] }
    static func requestSense(_ alloc: UInt8 = 18) -> [UInt8] { [0x03, 0, 0, 0, alloc, 0] }
    static func modeSense6(page: UInt8, pc: UInt8 = 0, dbd: Bool = false, subpage: UInt8 = 0, alloc: UInt8 = 255) -> [UInt8] {
        [0x1A, dbd ? 0x08 : 0, pc << 6 | page, subpage, alloc, 0]
    }
    static func modeSense10(page: UInt8, pc: UInt8 = 0, dbd: Bool = false, llbaa: Bool = false, alloc: Int = 1024) -> [UInt8] {
        [0x5A, (dbd ? 0x08 : 0) | (llbaa ? 0x10 : 0), pc << 6 | page, 0, 0, 0, 0] + be16(alloc) + [0]
    }
    static func modeSelect6(_ len: Int, pf: Bool = true, sp: Bool = false) -> [UInt8] { [0x15, (pf ? 0x10 : 0) | (sp ? 1 : 0), 0, 0, UInt8(len), 0] }
    static func modeSelect10(_ len: Int, pf: Bool = true) -> [UInt8] { [0x55, pf ? 0x10 : 0, 0, 0, 0, 0, 0] + be16(len) + [0] }
    static func prIn(_ action: UInt8, alloc: Int = 1024) -> [UInt8] { [0x5E, action, 0, 0, 0, 0, 0] + be16(alloc) + [0] }
    static func prOut(_ action: UInt8, type: UInt8 = 0, length: Int = 24) -> [UInt8] { [0x5F, action, type, 0, 0] + be32(UInt64(length)) + [0] }
    static func prParams(key: UInt64, sak: UInt64, flags: UInt8 = 0) -> [UInt8] { be64(key) + be64(sak) + [0, 0, 0, 0, flags, 0, 0, 0] }
}

/// Asserts CHECK CONDITION with this sense key and ASC/ASCQ.
func expectSense(_ o: Outcome, _ key: UInt8, _ asc: UInt16, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(o.status == .checkCondition, sourceLocation: sourceLocation)
    #expect(o.result.sense.count == 18, sourceLocation: sourceLocation)
    #expect(o.senseKey == key, sourceLocation: sourceLocation)
    #expect(o.asc == asc, "ASC/ASCQ 0x\(String(o.asc ?? 0, radix: 16))", sourceLocation: sourceLocation)
}

func expectGood(_ o: Outcome, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(o.status == .good, "sense \(o.result.sense)", sourceLocation: sourceLocation)
}

func pattern(_ n: Int, seed: UInt8) -> [UInt8] { (0 ..< n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

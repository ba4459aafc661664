import Backstores
import ISCSIFabric
import SCSIEngine
import Synchronization

/// `engine`: the CDB decoder and SCSI engine (`SCSITarget.execute`) on RAM stores, fed
/// sequences of CDBs with data-out bytes from two nexuses, mixed with task management and
/// nexus logout/login.
///
/// Input: [setup] then records of
///   [control] [CDB length] [CDB…] [data-out length: 2] [data-out…] [data-in capacity: 2]
///   setup bit 0: LUN 1's store fails I/O on its second half (EIO).
///   control bits 0–1: LUN 0 (512-byte blocks, thin), 1 (4096-byte blocks), 2 (read-only),
///   3 (no such LUN); bit 2: nexus B; bits 3–4: task attribute; bit 5: data buffers in two
///   segments; bit 6: not a command: the CDB's first byte picks a task management function,
///   a logout or a login; bit 7: try the non-blocking path first.
///   Data-out shorter than its length is padded with a pattern (long writes cost few bytes).
/// Invariants: the engine never touches the store outside its size nor writes a read-only
/// LU; data-in never exceeds its buffer; CHECK CONDITION comes with fixed-format sense and
/// nothing else does.
enum EngineFuzz {
    static let target = FuzzTarget(name: "engine", summary: "SCSI engine on CDB sequences", run: run)
    static let maxRecords = 48

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let setup = input.byte()
        let target = SCSITarget(name: "iqn.2026-01.org.example:fuzz", transport: ISCSITransport())
        let stores = [
            RAMStore(blocks: 256, blockSize: 512, thin: true, cached: true),
            RAMStore(blocks: 64, blockSize: 4096, thin: false, cached: false,
                     failing: setup & 1 != 0 ? 32 * 4096..<64 * 4096 : nil),
            RAMStore(blocks: 128, blockSize: 512, thin: false, cached: true, readOnly: true),
        ]
        for (lun, store) in stores.enumerated() {
            var configuration = LogicalUnitConfiguration(serialNumber: "FUZZ000\(lun)", uniqueID: 0x6001_4050_0000_0000 + UInt64(lun))
            configuration.readOnly = store.isReadOnly
            configuration.writeCacheEnabled = lun != 1
            do {
                try target.addLogicalUnit(UInt64(lun), store: store, configuration: configuration)
            } catch {
                fuzzFailure("adding LUN \(lun): \(error)")
            }
        }
        let identities = [
            ITNexus(initiatorName: "iqn.2026-01.org.example:a", initiatorPortID: 0x23D0_0000_0001, targetName: target.name),
            ITNexus(initiatorName: "iqn.2026-01.org.example:b", initiatorPortID: 0x23D0_0000_0002, targetName: target.name, targetPortalGroupTag: 2),
        ]
        let nexuses = identities.map { target.openNexus($0) }

        var records = 0
        while !input.isEmpty, records < maxRecords {
            records += 1
            let control = input.byte()
            let cdb = input.bytes(Int(input.byte() % 33))
            let lun: UInt64 = control & 3 == 3 ? 7 : UInt64(control & 3)
            let nexus = nexuses[Int(control >> 2) & 1]
            if control & 0x40 != 0 {
                manage(target, code: cdb.first ?? 0, lun: lun, nexus: nexus, identities: identities, nexuses: nexuses)
                _ = input.uint16()
                _ = input.uint16()
                continue
            }
            let outLength = Int(input.uint16())
            var dataOut = input.bytes(outLength)
            while dataOut.count < outLength { dataOut.append(UInt8(truncatingIfNeeded: dataOut.count &* 31 &+ 7)) }
            let inCapacity = Int(input.uint16())
            let attribute = TaskAttribute(rawValue: (control >> 3) & 3) ?? .simple
            execute(target, cdb: cdb, lun: lun, nexus: nexus, attribute: attribute, dataOut: dataOut,
                    inCapacity: inCapacity, split: control & 0x20 != 0, tryNonBlocking: control & 0x80 != 0)
        }
        for id in nexuses { target.closeNexus(id) }
        for lun in 0..<stores.count { target.removeLogicalUnit(UInt64(lun))?.close() }
    }

    static func manage(_ target: SCSITarget, code: UInt8, lun: UInt64, nexus: NexusID,
                       identities: [ITNexus], nexuses: [NexusID]) {
        let functions: [TaskManagementFunction] = [
            .abortTask, .abortTaskSet, .clearTaskSet, .clearACA, .logicalUnitReset, .targetWarmReset, .targetColdReset,
        ]
        switch Int(code) % 10 {
        case let f where f < functions.count: _ = target.taskManagement(functions[f], lun: lun, nexus: nexus)
        case 7: target.closeNexus(nexus)
        case 8:
            let i = nexuses.firstIndex(of: nexus)!
            if target.openNexus(identities[i]) != nexus { fuzzFailure("a nexus logged in again got another ID") }
        default: target.capacityChanged(lun: lun)
        }
    }

    static func execute(_ target: SCSITarget, cdb: [UInt8], lun: UInt64, nexus: NexusID, attribute: TaskAttribute,
                        dataOut: [UInt8], inCapacity: Int, split: Bool, tryNonBlocking: Bool) {
        // Exactly sized heap buffers: AddressSanitizer sees any access past them.
        let cdbBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: cdb.count, alignment: 8)
        let outBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: dataOut.count, alignment: 8)
        let inBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: inCapacity, alignment: 8)
        defer {
            cdbBuffer.deallocate()
            outBuffer.deallocate()
            inBuffer.deallocate()
        }
        cdbBuffer.copyBytes(from: cdb)
        outBuffer.copyBytes(from: dataOut)
        inBuffer.initializeMemory(as: UInt8.self, repeating: 0xEE)
        func vectors(_ b: UnsafeMutableRawBufferPointer) -> IOVectors {
            guard split, b.count > 1 else { return IOVectors(b) }
            let cut = b.count / 3 + 1
            return IOVectors(UnsafeMutableRawBufferPointer(rebasing: b[..<cut]),
                             more: [UnsafeMutableRawBufferPointer(rebasing: b[cut...])])
        }
        let cdbView = UnsafeRawBufferPointer(cdbBuffer)
        var result: SCSICommandResult?
        if tryNonBlocking {
            result = target.executeWithoutBlocking(cdb: cdbView, lun: lun, nexus: nexus, attribute: attribute,
                                                   dataIn: vectors(inBuffer))
        }
        let r = result ?? target.execute(cdb: cdbView, lun: lun, nexus: nexus, attribute: attribute,
                                         dataOut: vectors(outBuffer), dataIn: vectors(inBuffer))
        fuzzLog("engine: \(cdb.map { String($0, radix: 16) }.joined(separator: " ")) → \(r.status)"
                + (r.sense.count >= 14 ? " sense \(r.sense[2] & 0xF)/\(String(r.sense[12], radix: 16))/\(String(r.sense[13], radix: 16))" : "")
                + " in \(r.dataInCount)/\(inCapacity)")
        guard r.dataInCount >= 0, r.dataInCount <= inCapacity, r.transferLength >= 0 else {
            fuzzFailure("data-in \(r.dataInCount) bytes for a \(inCapacity)-byte buffer (opcode \(cdb.first ?? 0))")
        }
        if r.status == .checkCondition {
            guard r.sense.count >= 18, r.sense[0] & 0x7F == 0x70 || r.sense[0] & 0x7F == 0x71 else {
                fuzzFailure("CHECK CONDITION with sense \(r.sense) (opcode \(cdb.first ?? 0))")
            }
        } else if !r.sense.isEmpty {
            fuzzFailure("status \(r.status) with sense data (opcode \(cdb.first ?? 0))")
        }
    }
}

/// A RAM block store that holds the engine to the store contract: every access within the
/// size, no write to a read-only store. Thin stores keep a per-block allocation map.
final class RAMStore: BlockStore {
    struct Contents {
        var bytes: [UInt8]
        var allocated: [Bool]
    }
    let contents: Mutex<Contents>
    let kind: BackstoreKind
    let path: String
    let logicalBlockSize: Int
    let isThinProvisioned: Bool
    let supportsDiscard: Bool
    let isReadOnly: Bool
    let cached: Bool
    let failing: Range<UInt64>?
    let size: UInt64

    init(blocks: Int, blockSize: Int, thin: Bool, cached: Bool, readOnly: Bool = false, failing: Range<Int>? = nil) {
        logicalBlockSize = blockSize
        isThinProvisioned = thin
        supportsDiscard = thin
        isReadOnly = readOnly
        self.cached = cached
        self.failing = failing.map { UInt64($0.lowerBound)..<UInt64($0.upperBound) }
        kind = thin ? .sparse : .file
        path = "ram:\(blocks)x\(blockSize)"
        size = UInt64(blocks * blockSize)
        contents = Mutex(Contents(bytes: [UInt8](repeating: 0, count: blocks * blockSize),
                                  allocated: [Bool](repeating: !thin, count: blocks)))
    }

    var byteCount: UInt64 { size }
    var mayReadWithoutBlocking: Bool { cached }

    func check(_ offset: UInt64, _ count: Int, _ what: String) throws(BackstoreError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= size else { fuzzFailure("the engine asked \(path) to \(what) \(count) bytes at \(offset)") }
        if let failing, count > 0, offset < failing.upperBound, end > failing.lowerBound {
            throw BackstoreError(what == "write" ? .write : .read, errno: 5, path: path)
        }
    }

    func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        guard cached else { return false }
        return (try? read(into: buffer, at: offset)) != nil
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        try check(offset, buffer.count, "read")
        guard buffer.count > 0 else { return }
        contents.withLock { c in
            c.bytes.withUnsafeBytes { src in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<Int(offset) + buffer.count]))
            }
        }
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        if isReadOnly { fuzzFailure("the engine wrote to a read-only store") }
        try check(offset, buffer.count, "write")
        guard buffer.count > 0 else { return }
        contents.withLock { c in
            c.bytes.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer)
            }
            let bs = logicalBlockSize
            for b in Int(offset) / bs..<(Int(offset) + buffer.count + bs - 1) / bs { c.allocated[b] = true }
        }
    }

    func flush() throws(BackstoreError) {}

    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        if isReadOnly { fuzzFailure("the engine discarded on a read-only store") }
        guard length <= size else { fuzzFailure("the engine discarded \(length) bytes of \(path)") }
        try check(offset, Int(length), "discard")
        contents.withLock { c in
            let o = Int(offset), n = Int(length), bs = logicalBlockSize
            for i in o..<o + n { c.bytes[i] = 0 }
            // Only whole blocks become unmapped.
            let first = (o + bs - 1) / bs, last = (o + n) / bs
            if first < last { for b in first..<last { c.allocated[b] = false } }
        }
    }

    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        guard offset < size else { fuzzFailure("allocation state asked at \(offset) of \(path)") }
        return contents.withLock { c in
            let bs = logicalBlockSize
            let first = Int(offset) / bs
            let state = c.allocated[first]
            var b = first
            while b < c.allocated.count, c.allocated[b] == state, UInt64((b - first) * bs) < limit { b += 1 }
            return AllocationExtent(mapped: state, length: min(limit, UInt64((b - first) * bs)))
        }
    }

    func refreshSize() throws(BackstoreError) -> UInt64 { size }
    func close() {}
}

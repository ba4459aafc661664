import Backstores

/// The copy manager's limits (SPC-4 6.4.3, 6.18.4), as RECEIVE COPY RESULTS and VPD 0x8F report.
enum CopyLimits {
    static let maxTargetDescriptors = 8
    static let maxSegmentDescriptors = 64
    /// Target plus segment descriptor bytes in one parameter list.
    static let maxDescriptorListLength = 4096
    /// Results kept per I_T nexus for RECEIVE COPY RESULTS (the oldest go first).
    static let heldResultsPerNexus = 16
}

/// Descriptor type codes (SPC-4 6.4.5 table 103, 6.4.6 table 116).
enum CopyDescriptorType {
    static let blockToBlock: UInt8 = 0x02
    static let identification: UInt8 = 0xE4
    static let supported: [UInt8] = [blockToBlock, identification]
}

/// RECEIVE COPY RESULTS service actions (SPC-4 6.18 table 214).
enum CopyResultsAction {
    static let copyStatus: UInt8 = 0x00
    static let operatingParameters: UInt8 = 0x03
}

/// How an EXTENDED COPY ended, kept for COPY STATUS when its list ID was held.
struct CopyResult: Sendable, Equatable {
    var listID: UInt8
    var failed: Bool
    var segmentsProcessed: UInt16
    var bytes: UInt64
}

extension ASC {
    static let tooManyTargetDescriptors = ASC(0x26, 0x06)
    static let unsupportedTargetDescriptorType = ASC(0x26, 0x07)
    static let tooManySegmentDescriptors = ASC(0x26, 0x08)
    static let unsupportedSegmentDescriptorType = ASC(0x26, 0x09)
    /// UNREACHABLE COPY TARGET: a descriptor names no LU this nexus may reach.
    static let unreachableCopyTarget = ASC(0x08, 0x04)
}

extension SCSIError {
    static func copyAborted(_ asc: ASC) -> SCSIError { SCSIError(key: SenseKey.copyAborted, asc: asc) }
}

extension LogicalUnit {
    /// EXTENDED COPY(LID1) (SPC-4 6.4): block-to-block segments between LUs named by their
    /// NAA designators. The copy runs before the command completes. Only LUs the issuing
    /// I_T nexus itself reaches can take part (its own target's LUs, as its REPORT LUNS
    /// lists them), each checked for its reservations (read on the source, write on the
    /// destination) and write protection, so a copy cannot reach data the initiator could
    /// not read or write itself (the hole of CVE-2020-28374).
    func extendedCopy(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let length = Int(ctx.cdb.u32(10))
        if length == 0 { return SCSICommandResult(status: .good) }
        if length < 16 { throw SCSIError.parameterListLength }
        if ctx.dataOut.count < length {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: length)
        }
        let list = ctx.dataOut.gather(length)
        let plan = try list.withBytes { (p) throws(SCSIError) in try CopyPlan(parsing: ByteReader(bytes: p), length: length) }
        let units = try plan.targets.map { (t) throws(SCSIError) in try copyTarget(t, ctx) }
        var result = CopyResult(listID: plan.listID, failed: false, segmentsProcessed: 0, bytes: 0)
        defer { if plan.holdsResults { keepCopyResult(result, for: ctx.nexus) } }
        // Every segment is checked before any data moves.
        for s in plan.segments {
            guard s.source < units.count, s.destination < units.count else { result.failed = true; throw SCSIError.copyAborted(.unreachableCopyTarget) }
            let (src, dst) = (units[s.source].unit, units[s.destination].unit)
            let blocks = UInt64(s.blocks)
            if src.blockSize != dst.blockSize { result.failed = true; throw SCSIError.invalidParameter(byte: s.offset + 1) }
            do { try dst.checkCopyDestination(ctx.nexus, readOnlyMapping: units[s.destination].readOnly) } catch {
                result.failed = true
                throw error
            }
            // Beyond the end of a LU: COPY ABORTED with a segment pointer (SD 0: a byte of the
            // parameter list) at the LBA that does not fit (SPC-4 4.5.2.4.6, 6.4.3.5).
            let sourceFits = s.sourceLBA <= src.blockCount && blocks <= src.blockCount - s.sourceLBA
            let destinationFits = s.destinationLBA <= dst.blockCount && blocks <= dst.blockCount - s.destinationLBA
            if !sourceFits || !destinationFits {
                result.failed = true
                throw SCSIError(key: SenseKey.copyAborted, asc: .noAdditionalSense,
                                fieldPointer: FieldPointer(inCDB: false, byte: UInt16(clamping: s.offset + (sourceFits ? 20 : 12)), bit: nil))
            }
        }
        for s in plan.segments {
            let (src, dst) = (units[s.source].unit, units[s.destination].unit)
            let bs = UInt64(src.blockSize)
            do {
                try dst.copyBlocks(from: src, at: s.sourceLBA * bs, to: s.destinationLBA * bs, length: UInt64(s.blocks) * bs)
            } catch {
                result.failed = true
                throw error
            }
            result.segmentsProcessed += 1
            result.bytes += UInt64(s.blocks) * bs
        }
        return SCSICommandResult(status: .good, transferLength: length)
    }

    /// The LU an identification descriptor names, if this nexus reaches it and may use it.
    private func copyTarget(_ t: CopyPlan.Target, _ ctx: CommandContext) throws(SCSIError) -> MappedUnit {
        guard let mapped = ctx.target.reachableUnits(for: ctx.nexus).first(where: { $0.unit.naaIdentifier == t.naa }) else {
            throw SCSIError.copyAborted(.unreachableCopyTarget)
        }
        let unit = mapped.unit
        if t.blockLength != 0 && t.blockLength != unit.blockSize { throw SCSIError.invalidParameter(byte: t.offset + 29) }
        try unit.state.withLock { (s: inout LogicalUnitState) throws(SCSIError) in
            if s.sanitize != .idle, let refusal = LogicalUnit.sanitizeRefusal(s.sanitize) { throw refusal }
            if let holder = s.legacyHolder, holder != ctx.nexus { throw SCSIError.reservationConflict }
            if !s.pr.allows(ctx.nexus, access: .read) { throw SCSIError.reservationConflict }
        }
        return mapped
    }

    /// Checks this LU may be written by `nexus` (as a copy destination).
    func checkCopyDestination(_ nexus: NexusID, readOnlyMapping: Bool) throws(SCSIError) {
        let swp = try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) -> Bool in
            if !s.pr.allows(nexus, access: .write) { throw SCSIError.reservationConflict }
            return s.mode.softwareWriteProtect
        }
        try checkWritable(CommandSnapshot(softwareWriteProtect: swp, readOnlyMapping: readOnlyMapping))
    }

    /// Copies `length` bytes from `source` into this LU: in the storage when both stores can
    /// (copy_file_range), else through a buffer, back to front when the ranges of one store
    /// overlap that way.
    func copyBlocks(from source: LogicalUnit, at from: UInt64, to: UInt64, length: UInt64) throws(SCSIError) {
        if length == 0 { return }
        do {
            try ioLock.shared { () throws(BackstoreError) in
                let durable = mustBeDurable(fua: false)
                let sameStore = source.store === store
                let overlaps = sameStore && from < to + length && to < from + length
                if !overlaps, try source.store.copy(to: store, from: from, to: to, length: length, durable: durable) { return }
                let chunk = UInt64(1 << 20)
                var buffer = [UInt8](repeating: 0, count: Int(min(chunk, length)))
                let backwards = overlaps && to > from
                var done: UInt64 = 0
                while done < length {
                    let n = min(chunk, length - done)
                    let at = backwards ? length - done - n : done
                    try buffer.withMutableBytes { (p) throws(BackstoreError) in
                        let view = UnsafeMutableRawBufferPointer(rebasing: p[0 ..< Int(n)])
                        try source.store.read(into: view, at: from + at)
                        try store.write(from: UnsafeRawBufferPointer(view), at: to + at, durable: durable)
                    }
                    done += n
                }
            }
        } catch {
            throw SCSIError.copyAborted(.noAdditionalSense)
        }
    }

    private func keepCopyResult(_ r: CopyResult, for nexus: NexusID) {
        state.withLock { s in
            var kept = s.copyResults[nexus, default: []].filter { $0.listID != r.listID }
            kept.append(r)
            if kept.count > CopyLimits.heldResultsPerNexus { kept.removeFirst(kept.count - CopyLimits.heldResultsPerNexus) }
            s.copyResults[nexus] = kept
        }
    }

    /// RECEIVE COPY RESULTS (SPC-4 6.18): COPY STATUS of a held list ID, OPERATING PARAMETERS.
    func receiveCopyResults(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let alloc = Int(ctx.cdb.u32(10))
        var w = ByteWriter(capacity: 64)
        switch ctx.cdb[1] & 0x1F {
        case CopyResultsAction.copyStatus:
            let id = ctx.cdb[2]
            guard let r = state.withLock({ $0.copyResults[ctx.nexus]?.last(where: { $0.listID == id }) }) else {
                throw SCSIError.invalidCDB(byte: 2)
            }
            let kib = r.bytes > UInt64(UInt32.max)
            w.u32(8)
            w.u8(r.failed ? 0x02 : 0x01)  // completed with / without errors; HDD 0
            w.u16(r.segmentsProcessed)
            w.u8(kib ? 0xF1 : 0x00)       // TRANSFER COUNT UNITS: bytes, or KiB when larger
            w.u32(UInt32(truncatingIfNeeded: kib ? r.bytes >> 10 : r.bytes))
        default: // OPERATING PARAMETERS (the table has no other service action)
            w.u32(0)
            w.u8(0x01)                    // SNLID: list IDs are kept per I_T nexus
            w.zeros(3)
            w.u16(UInt16(CopyLimits.maxTargetDescriptors))
            w.u16(UInt16(CopyLimits.maxSegmentDescriptors))
            w.u32(UInt32(CopyLimits.maxDescriptorListLength))
            w.u32(maxSegmentBytes)
            w.u32(0)                      // no inline data
            w.u32(0)                      // held data limit: no held data
            w.u32(0)                      // no stream devices
            w.zeros(2)
            w.u16(1)                      // total concurrent copies
            w.u8(1)                       // maximum concurrent copies
            w.u8(UInt8(blockSize.trailingZeroBitCount)) // data segment granularity (log2)
            w.u8(0); w.u8(0)              // inline and held data granularity
            w.zeros(3)
            w.u8(UInt8(CopyDescriptorType.supported.count))
            w.append(CopyDescriptorType.supported)
            w.set32(0, UInt32(w.count - 4))
        }
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// One segment carries at most 65535 blocks (its NUMBER OF BLOCKS field).
    var maxSegmentBytes: UInt32 { UInt32(min(UInt64(0xFFFF) * UInt64(blockSize), UInt64(UInt32.max))) }

    /// Third-party Copy VPD page (SPC-4 7.8.17): the copy commands and descriptor types.
    func thirdPartyCopy() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        // Supported Commands descriptor (0001h): EXTENDED COPY(LID1), RECEIVE COPY RESULTS.
        var commands: [UInt8] = [Opcode.extendedCopy, 1, 0x00,
                                 Opcode.receiveCopyResults, 2, CopyResultsAction.copyStatus, CopyResultsAction.operatingParameters]
        var body: [UInt8] = [UInt8(commands.count)]
        body += commands
        while (body.count + 4) % 4 != 0 { body.append(0) }
        w.u16(0x0001); w.u16(UInt16(body.count)); w.append(body)
        // Supported Descriptors descriptor (0009h): the segment and target descriptor types.
        commands = CopyDescriptorType.supported
        body = [UInt8(commands.count)] + commands
        while (body.count + 4) % 4 != 0 { body.append(0) }
        w.u16(0x0009); w.u16(UInt16(body.count)); w.append(body)
        return vpdPage(VPDPage.thirdPartyCopy, w.bytes)
    }
}

/// An EXTENDED COPY(LID1) parameter list, checked (SPC-4 6.4.3).
struct CopyPlan {
    struct Target {
        var offset: Int
        var naa: [UInt8]
        var blockLength: Int
    }

    struct Segment {
        var offset: Int
        var source: Int
        var destination: Int
        var blocks: UInt16
        var sourceLBA: UInt64
        var destinationLBA: UInt64
    }

    var listID: UInt8
    /// LIST ID USAGE 00b: the results are held for RECEIVE COPY RESULTS.
    var holdsResults: Bool
    var targets: [Target] = []
    var segments: [Segment] = []

    init(parsing p: ByteReader, length: Int) throws(SCSIError) {
        listID = p[0]
        let usage = (p[1] >> 3) & 0x03
        if usage == 0x01 { throw SCSIError.invalidParameter(byte: 1, bit: 4) } // reserved
        holdsResults = usage == 0x00
        let targetBytes = Int(p.u16(2))
        let segmentBytes = Int(p.u32(8))
        let inlineBytes = Int(p.u32(12))
        // The lengths must fit the list, then the limits, in this order (libiscsi DescrLimits).
        if 16 + targetBytes + segmentBytes + inlineBytes > length { throw SCSIError.parameterListLength }
        if targetBytes + segmentBytes > CopyLimits.maxDescriptorListLength { throw SCSIError.parameterListLength }
        if inlineBytes != 0 { throw SCSIError.invalidParameter(byte: 12) }
        if targetBytes % 32 != 0 { throw SCSIError.invalidParameter(byte: 2) }
        if targetBytes / 32 > CopyLimits.maxTargetDescriptors { throw SCSIError.illegal(.tooManyTargetDescriptors) }
        var at = 16
        while at < 16 + targetBytes {
            guard p[at] == CopyDescriptorType.identification else { throw SCSIError.illegal(.unsupportedTargetDescriptorType) }
            // LU ID TYPE, NUL and PERIPHERAL DEVICE TYPE are not checked (SPC-4 VERSION 6 ignores them).
            let codeSet = p[at + 4] & 0x0F
            let type = p[at + 5] & 0x0F
            let designatorLength = Int(p[at + 7])
            guard codeSet == 0x01, type == 0x03, designatorLength == 16 else { throw SCSIError.copyAborted(.unreachableCopyTarget) }
            let naa = (0 ..< 16).map { p[at + 8 + $0] }
            targets.append(Target(offset: at, naa: naa, blockLength: Int(p.u24(at + 29))))
            at += 32
        }
        let end = 16 + targetBytes + segmentBytes
        while at < end {
            guard p[at] == CopyDescriptorType.blockToBlock else { throw SCSIError.illegal(.unsupportedSegmentDescriptorType) }
            if p.u16(at + 2) != 0x0018 || at + 28 > end { throw SCSIError.invalidParameter(byte: at + 2) }
            if segments.count == CopyLimits.maxSegmentDescriptors { throw SCSIError.illegal(.tooManySegmentDescriptors) }
            segments.append(Segment(offset: at, source: Int(p.u16(at + 4)), destination: Int(p.u16(at + 6)),
                                    blocks: p.u16(at + 10), sourceLBA: p.u64(at + 12), destinationLBA: p.u64(at + 20)))
            at += 28
        }
    }
}

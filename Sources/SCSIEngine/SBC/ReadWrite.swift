import Backstores

extension LogicalUnit {
    /// LBA, transfer length and FUA of the READ/WRITE/VERIFY families (SBC-3 5.10-5.37).
    func decodeRange(_ cdb: ByteReader) -> BlockRange {
        switch cdb[0] {
        case Opcode.read6, Opcode.write6:
            let lba = UInt64(cdb[1] & 0x1F) << 16 | UInt64(cdb.u16(2))
            let n = cdb[4] == 0 ? 256 : UInt64(cdb[4]) // 0 means 256 blocks (SBC-3 5.13)
            return BlockRange(lba: lba, blocks: n, fua: false)
        case Opcode.read10, Opcode.write10, Opcode.writeAndVerify10, Opcode.verify10, Opcode.preFetch10,
             Opcode.synchronizeCache10, Opcode.writeSame10:
            return BlockRange(lba: UInt64(cdb.u32(2)), blocks: UInt64(cdb.u16(7)), fua: cdb.bit(1, 3))
        case Opcode.read12, Opcode.write12, Opcode.writeAndVerify12, Opcode.verify12:
            return BlockRange(lba: UInt64(cdb.u32(2)), blocks: UInt64(cdb.u32(6)), fua: cdb.bit(1, 3))
        case Opcode.compareAndWrite:
            return BlockRange(lba: cdb.u64(2), blocks: UInt64(cdb[13]), fua: cdb.bit(1, 3))
        default: // 16-byte CDBs
            return BlockRange(lba: cdb.u64(2), blocks: UInt64(cdb.u32(10)), fua: cdb.bit(1, 3))
        }
    }

    /// Byte offset of the TRANSFER LENGTH field, for field pointers.
    func transferLengthOffset(_ op: UInt8) -> Int {
        switch op {
        case Opcode.read6, Opcode.write6: return 4
        case Opcode.read12, Opcode.write12, Opcode.writeAndVerify12, Opcode.verify12: return 6
        case Opcode.compareAndWrite: return 13
        case let o where o >= 0x80: return 10
        default: return 7
        }
    }

    /// LOGICAL BLOCK ADDRESS OUT OF RANGE unless [lba, lba+blocks) lies in the LU.
    @inline(__always)
    func checkRange(_ lba: UInt64, _ blocks: UInt64) throws(SCSIError) {
        let count = blockCount
        if lba > count || blocks > count - lba { throw SCSIError.lbaOutOfRange }
    }

    /// RDPROTECT/WRPROTECT/VRPROTECT must be 0: no protection information (SBC-3 4.22).
    @inline(__always)
    func checkNoProtection(_ cdb: ByteReader) throws(SCSIError) {
        if cdb[0] != Opcode.read6 && cdb[0] != Opcode.write6 && cdb[1] & 0xE0 != 0 {
            throw SCSIError.invalidCDB(byte: 1, bit: 7)
        }
    }

    /// READ(6/10/12/16): straight from the store into the caller's data-in segments.
    func read(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let r = decodeRange(cdb)
        try checkRange(r.lba, r.blocks)
        if r.blocks > UInt64(EngineLimits.maxTransferBlocks) { throw SCSIError.invalidCDB(byte: transferLengthOffset(cdb[0])) }
        let bs = blockSize
        let bytes = Int(r.blocks) * bs
        // Less room than data: move what fits, the fabric reports the residual.
        let n = min(bytes, ctx.dataIn.count)
        let base = r.lba * UInt64(bs)
        // Scattered buffers (TCMU data-area blocks): one vectored call, not one per block.
        let scattered = !ctx.dataIn.more.isEmpty && n > ctx.dataIn.first.count
        if let onCompletion = ctx.onCompletion, let store = completingStore, !scattered, n > 0 {
            store.submitRead(into: UnsafeMutableRawBufferPointer(rebasing: ctx.dataIn.first[0..<n]), at: base) { error in
                onCompletion(error.map { self.inSenseFormat(SCSIError.backstore(.read, errno: $0.errno).result) }
                             ?? SCSICommandResult(status: .good, dataInCount: n, transferLength: bytes))
            }
            throw SCSIError.submitted
        }
        if !ctx.mayBlock {
            // An atomic write running or overlapping: read again where the lock may be waited for.
            let generation = ioLock.readGeneration()
            if scattered {
                if !store.readWithoutBlocking(into: ctx.dataIn.segments(upTo: n), at: base) { throw SCSIError.wouldBlock }
            } else {
                try ctx.dataIn.forEachSegment(upTo: n) { (seg, off) throws(SCSIError) in
                    if !store.readWithoutBlocking(into: seg, at: base + UInt64(off)) { throw SCSIError.wouldBlock }
                }
            }
            if !ioLock.readWasConsistent(since: generation) { throw SCSIError.wouldBlock }
            return SCSICommandResult(status: .good, dataInCount: n, transferLength: bytes)
        }
        do {
            try ioLock.consistentRead { () throws(BackstoreError) in
                if scattered {
                    try store.read(into: ctx.dataIn.segments(upTo: n), at: base)
                } else {
                    try ctx.dataIn.forEachSegment(upTo: n) { (seg, off) throws(BackstoreError) in
                        try store.read(into: seg, at: base + UInt64(off))
                    }
                }
            }
        } catch {
            throw SCSIError.backstore(.read, errno: error.errno)
        }
        return SCSICommandResult(status: .good, dataInCount: n, transferLength: bytes)
    }

    /// WRITE(6/10/12/16) and WRITE AND VERIFY: straight from the caller's data-out segments.
    func write(_ ctx: CommandContext, _ snap: CommandSnapshot, verify: Bool = false) throws(SCSIError) -> SCSICommandResult {
        let r = try checkedWriteRange(ctx.cdb, snap)
        let bs = blockSize
        let bytes = Int(r.blocks) * bs
        if bytes == 0 { return SCSICommandResult(status: .good) }
        // Fewer bytes than the CDB asks for (the fabric's expected length was shorter): write the
        // whole blocks that came and nothing else; the fabric reports the rest as residual
        // overflow (RFC 7143 §11.4.5.1; libiscsi iSCSIResiduals.Write*Residuals).
        let received = min(bytes, ctx.dataOut.count / bs * bs)
        if received == 0 { return SCSICommandResult(status: .good, transferLength: bytes) }
        // Write-through when WCE is off; FUA and the verify of WRITE AND VERIFY want media too.
        let base = r.lba * UInt64(bs)
        if ctx.onCompletion != nil { try submitWrite(ctx, from: base, count: received, transferLength: bytes) }
        do {
            try ioLock.shared { () throws(BackstoreError) in
                let durable = mustBeDurable(fua: r.fua || verify)
                if !ctx.dataOut.more.isEmpty && received > ctx.dataOut.first.count {
                    // Scattered buffers: one vectored write, durable as a whole.
                    try store.write(from: ctx.dataOut.segments(upTo: received), at: base, durable: durable)
                } else {
                    try store.write(from: UnsafeRawBufferPointer(rebasing: ctx.dataOut.first[0..<received]), at: base, durable: durable)
                }
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        return SCSICommandResult(status: .good, transferLength: bytes)
    }

    /// A write the store answers by callback (always durable there: FUA and WCE need nothing).
    /// Throws `wouldBlock` when it cannot go that way now, `submitted` when it went.
    private func submitWrite(_ ctx: CommandContext, from base: UInt64, count: Int, transferLength: Int) throws(SCSIError) {
        guard let onCompletion = ctx.onCompletion, let store = completingStore,
              ctx.dataOut.more.isEmpty || count <= ctx.dataOut.first.count else { throw SCSIError.wouldBlock }
        // A COMPARE AND WRITE holds the LU: this write then waits on an I/O thread.
        guard ioLock.tryBeginCallbackWrite() else { throw SCSIError.wouldBlock }
        let ioLock = ioLock
        store.submitWrite(from: UnsafeRawBufferPointer(rebasing: ctx.dataOut.first[0..<count]), at: base) { error in
            ioLock.endCallbackWrite()
            onCompletion(error.map { self.inSenseFormat(SCSIError.backstore(.write, errno: $0.errno).result) }
                         ?? SCSICommandResult(status: .good, transferLength: transferLength))
        }
        throw SCSIError.submitted
    }

    /// VERIFY(10/12/16) (SBC-3 5.29): BYTCHK 0 checks the medium, 1 compares the data-out,
    /// 3 compares one data-out block against every block.
    func verify(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let bytchk = (cdb[1] >> 1) & 0x03
        if bytchk == 2 { throw SCSIError.invalidCDB(byte: 1, bit: 2) }
        let r = decodeRange(cdb)
        try checkRange(r.lba, r.blocks)
        if r.blocks > UInt64(EngineLimits.maxTransferBlocks) { throw SCSIError.invalidCDB(byte: transferLengthOffset(cdb[0])) }
        let bs = blockSize
        let total = Int(r.blocks) * bs
        let wanted = bytchk == 0 ? 0 : bytchk == 1 ? total : (r.blocks == 0 ? 0 : bs)
        if r.blocks == 0 { return SCSICommandResult(status: .good, transferLength: wanted) }
        if bytchk == 0 {
            // Medium verification: the store reads back without error.
            var buf = [UInt8](repeating: 0, count: min(total, 1 << 20))
            try readChunks(r.lba, total, into: &buf) { _, _ throws(SCSIError) in }
            return SCSICommandResult(status: .good)
        }
        if ctx.dataOut.count < wanted { throw SCSIError.shortDataOut }
        let expected = ctx.dataOut.gather(wanted)
        var buf = [UInt8](repeating: 0, count: min(total, 1 << 20))
        try readChunks(r.lba, total, into: &buf) { (chunk: ArraySlice<UInt8>, offset: Int) throws(SCSIError) in
            for i in 0 ..< chunk.count {
                let e = bytchk == 1 ? expected[offset + i] : expected[(offset + i) % bs]
                if chunk[chunk.startIndex + i] != e {
                    throw SCSIError.miscompare(at: offset + i)
                }
            }
        }
        return SCSICommandResult(status: .good, transferLength: wanted)
    }

    /// Reads `total` bytes from `lba` in buffer-sized chunks, handing each to `body`.
    func readChunks(_ lba: UInt64, _ total: Int, into buf: inout [UInt8],
                    _ body: (ArraySlice<UInt8>, Int) throws(SCSIError) -> Void) throws(SCSIError) {
        var done = 0
        let base = lba * UInt64(blockSize)
        while done < total {
            let n = min(buf.count, total - done)
            do throws(BackstoreError) {
                try buf.withMutableBytes { (p) throws(BackstoreError) in
                    try store.read(into: UnsafeMutableRawBufferPointer(rebasing: p[0 ..< n]), at: base + UInt64(done))
                }
            } catch {
                throw SCSIError.backstore(.read, errno: error.errno)
            }
            try body(buf[0 ..< n], done)
            done += n
        }
    }

    /// PRE-FETCH(10/16) (SBC-3 5.8): nothing to stage; GOOD once the range is valid.
    func preFetch(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let r = decodeRange(ctx.cdb)
        try checkRange(r.lba, r.blocks)
        return SCSICommandResult(status: .good)
    }

    /// SYNCHRONIZE CACHE(10/16) (SBC-3 5.26): everything the store holds becomes durable.
    func synchronizeCache(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let r = decodeRange(ctx.cdb)
        try checkRange(r.lba, r.blocks)
        do { try store.flush() } catch { throw SCSIError.backstore(.write, errno: error.errno) }
        return SCSICommandResult(status: .good)
    }

    /// COMPARE AND WRITE (SBC-3 5.2): compare then write, atomically against other writes.
    func compareAndWrite(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let r = decodeRange(cdb)
        if r.blocks > UInt64(EngineLimits.maxCompareAndWriteBlocks) { throw SCSIError.invalidCDB(byte: 13) }
        try checkRange(r.lba, r.blocks)
        try checkWritable(snap)
        let bs = blockSize
        let half = Int(r.blocks) * bs
        if half == 0 {
            // Zero blocks with data attached: the count wrapped (e.g. 256 in one byte) or the
            // CDB and the data disagree; nothing sane to compare (libiscsi CompareAndWrite.Simple).
            if ctx.dataOut.count > 0 { throw SCSIError.invalidCDB(byte: 13) }
            return SCSICommandResult(status: .good)
        }
        if ctx.dataOut.count < 2 * half {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: 2 * half)
        }
        // More data than NUMBER OF LOGICAL BLOCKS covers means the CDB and the data disagree
        // on the split between verify and write data: refuse (libiscsi InvalidDataOutSize).
        if ctx.dataOut.count > 2 * half {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.invalidCDB(byte: 13).senseBytes, transferLength: 2 * half)
        }
        let data = ctx.dataOut.gather(2 * half)
        let base = r.lba * UInt64(bs)
        // A store shared by several gateways compares and writes at the storage itself.
        let offloaded: AtomicCompareOutcome
        do throws(BackstoreError) {
            offloaded = try data.withBytes { (p) throws(BackstoreError) in
                try store.compareAndWrite(expected: UnsafeRawBufferPointer(rebasing: p[0 ..< half]),
                                          replacement: UnsafeRawBufferPointer(rebasing: p[half ..< 2 * half]), at: base)
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        switch offloaded {
        case .written: return SCSICommandResult(status: .good, transferLength: 2 * half)
        case .mismatch(let i): throw SCSIError.miscompare(at: i)
        case .unsupported: break
        }
        try readModifyWrite(at: base, count: half, fua: r.fua) { (current) throws(SCSIError) in
            for i in 0 ..< half where current[i] != data[i] { throw SCSIError.miscompare(at: i) }
            current.replaceSubrange(0 ..< half, with: data[half ..< 2 * half])
        }
        return SCSICommandResult(status: .good, transferLength: 2 * half)
    }
}

import Backstores

extension LogicalUnit {
    /// READ CAPACITY(10) (SBC-3 5.15).
    func readCapacity10(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        // PMI 0 with a nonzero LBA is invalid (SBC-3 5.15.1).
        if ctx.cdb[8] & 0x01 == 0 && ctx.cdb.u32(2) != 0 { throw SCSIError.invalidCDB(byte: 2) }
        let last = blockCount == 0 ? 0 : blockCount - 1
        var w = ByteWriter(capacity: 8)
        w.u32(last > 0xFFFF_FFFE ? 0xFFFF_FFFF : UInt32(last)) // 0xFFFFFFFF: use READ CAPACITY(16)
        w.u32(UInt32(blockSize))
        return answer(w.bytes, allocationLength: 8, ctx)
    }

    /// Logical blocks per physical block exponent: 512-byte blocks sit on 4 KiB pages/sectors.
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: 0. Stores do not report a physical block
    /// size, and initiators (libiscsi GetLBAStatus.UnmapSingle among them) then assume
    /// every logical block is separately mapped, which is what GET LBA STATUS reports.
    var physicalExponent: UInt8 { 0 }

    /// READ CAPACITY(16) (SBC-3 5.16).
    func readCapacity16(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let alloc = Int(ctx.cdb.u32(10))
        if ctx.cdb[14] & 0x01 == 0 && ctx.cdb.u64(2) != 0 { throw SCSIError.invalidCDB(byte: 2) }
        var w = ByteWriter(capacity: 32)
        w.u64(blockCount == 0 ? 0 : blockCount - 1)
        w.u32(UInt32(blockSize))
        w.u8(0) // no protection information
        w.u8(physicalExponent)
        w.u8(isThin ? 0xC0 : 0x00) // LBPME, LBPRZ
        w.u8(0)
        w.zeros(16)
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// WRITE SAME(10/16) (SBC-3 5.41, 5.42).
    func writeSame(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let sixteen = cdb[0] == Opcode.writeSame16
        let unmapBit = cdb.bit(1, 3)
        if cdb.bit(1, 4) { throw SCSIError.invalidCDB(byte: 1, bit: 4) } // ANCHOR: no anchored state
        let ndob = sixteen && cdb.bit(1, 0)
        var r = decodeRange(cdb)
        if r.lba > blockCount { throw SCSIError.lbaOutOfRange }
        // WSNZ 0: zero blocks means through the last LBA.
        if r.blocks == 0 { r.blocks = blockCount - r.lba }
        if r.blocks > EngineLimits.maxWriteSameBlocks { throw SCSIError.invalidCDB(byte: transferLengthOffset(cdb[0])) }
        try checkRange(r.lba, r.blocks)
        // A read-only LU refuses every write as write protected, UNMAP bit or not (SBC-3 4.12).
        try checkWritable(snap)
        if unmapBit && !isThin { throw SCSIError.invalidCDB(byte: 1, bit: 3) }
        let bs = blockSize
        let wanted = ndob ? 0 : bs
        // Exactly one block (none with NDOB): any other amount is a mismatch between the
        // CDB and the data-out (libiscsi WriteSame*.InvalidDataOutSize).
        if ctx.dataOut.count != wanted {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: wanted)
        }
        if r.blocks == 0 { return SCSICommandResult(status: .good, transferLength: wanted) }
        let pattern = ndob ? [UInt8](repeating: 0, count: bs) : ctx.dataOut.gather(bs)
        let base = r.lba * UInt64(bs)
        let total = r.blocks * UInt64(bs)
        if unmapBit {
            // UNMAP set: deallocate and ignore the pattern (as LIO does); deallocated blocks
            // read as zeros (LBPRZ), which libiscsi's WriteSame*.Unmap* tests check.
            do { try ioLock.shared { () throws(BackstoreError) in try store.discard(offset: base, length: total) } }
            catch { throw SCSIError.backstore(.write, errno: error.errno) }
            return SCSICommandResult(status: .good, transferLength: wanted)
        }
        do {
            try ioLock.shared { () throws(BackstoreError) in
                let durable = mustBeDurable(fua: r.fua)
                try pattern.withBytes { (p: UnsafeRawBufferPointer) throws(BackstoreError) in
                    try store.writeRepeating(p, at: base, length: total, durable: durable)
                }
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        return SCSICommandResult(status: .good, transferLength: wanted)
    }

    /// UNMAP (SBC-3 5.28).
    func unmap(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        guard isThin else { throw SCSIError.invalidOpcode }
        if cdb.bit(1, 0) { throw SCSIError.invalidCDB(byte: 1, bit: 0) } // ANCHOR
        let length = Int(cdb.u16(7))
        if length == 0 { return SCSICommandResult(status: .good) }
        if length < 8 { throw SCSIError.parameterListLength }
        try checkWritable(snap)
        if ctx.dataOut.count < length {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: length)
        }
        let data = ctx.dataOut.gather(length)
        let list = data.withUnsafeBytes { ByteReader(bytes: $0).u16(2) }
        let descriptorBytes = min(Int(list), length - 8) / 16 * 16
        let count = descriptorBytes / 16
        if count > Int(EngineLimits.maxUnmapDescriptors) { throw SCSIError.invalidParameter(byte: 2) }
        var ranges: [(UInt64, UInt64)] = []
        ranges.reserveCapacity(count)
        try data.withBytes { (p: UnsafeRawBufferPointer) throws(SCSIError) in
            let r = ByteReader(bytes: p)
            for i in 0 ..< count {
                let at = 8 + i * 16
                let lba = r.u64(at)
                let blocks = UInt64(r.u32(at + 8))
                try checkRange(lba, blocks)
                if blocks > UInt64(EngineLimits.maxUnmapLBACount) { throw SCSIError.invalidParameter(byte: at + 8) }
                if blocks > 0 { ranges.append((lba, blocks)) }
            }
        }
        let bs = UInt64(blockSize)
        do {
            try ioLock.shared { () throws(BackstoreError) in
                for (lba, blocks) in ranges { try store.discard(offset: lba * bs, length: blocks * bs) }
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        return SCSICommandResult(status: .good, transferLength: length)
    }

    /// GET LBA STATUS (SBC-3 5.16): extents from the store's allocation map.
    func getLBAStatus(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let lba = ctx.cdb.u64(2)
        let alloc = Int(ctx.cdb.u32(10))
        let count = blockCount
        if lba >= count { throw SCSIError.lbaOutOfRange }
        let bs = UInt64(blockSize)
        // Enough descriptors for the allocation length (at least one), bounded.
        let maxDescriptors = max(1, min(64, (alloc - 8) / 16))
        var w = ByteWriter(capacity: 8 + maxDescriptors * 16)
        w.u32(0); w.u32(0)
        var at = lba
        var n = 0
        while at < count && n < maxDescriptors {
            let remaining = min(count - at, UInt64(UInt32.max))
            var mapped = true
            var blocks = remaining
            if isThin {
                let extent: AllocationExtent
                do { extent = try store.allocationState(at: at * bs, limit: remaining * bs) }
                catch { throw SCSIError.backstore(.read, errno: error.errno) }
                mapped = extent.mapped
                // Partial blocks count as mapped; a deallocated run covers whole blocks only.
                blocks = mapped ? (extent.length + bs - 1) / bs : extent.length / bs
                if blocks == 0 { mapped = true; blocks = 1 }
                blocks = min(blocks, remaining)
            }
            w.u64(at); w.u32(UInt32(blocks)); w.u8(mapped ? 0 : 1); w.zeros(3)
            at += blocks
            n += 1
        }
        w.set32(0, UInt32(w.count - 4))
        return answer(w.bytes, allocationLength: alloc, ctx)
    }
}

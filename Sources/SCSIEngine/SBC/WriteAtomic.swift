import Backstores

extension LogicalUnit {
    /// The most blocks one WRITE ATOMIC(16) carries: what the store can write whole across a
    /// crash (image files: through their journal), within the maximum transfer length; 0
    /// where the store promises nothing (devices, rbd), and the command does not exist there.
    var atomicTransferBlocks: UInt32 {
        UInt32(min(store.atomicWriteLimit / blockSize, Int(EngineLimits.maxTransferBlocks)))
    }

    /// WRITE ATOMIC(16) (SBC-4 5.48): all of the blocks or none, for every other command
    /// (the I/O lock and the read sequence lock) and across a crash (the store). Any LBA and
    /// length up to the maximum (alignment and granularity 0); no atomic boundaries. Always
    /// durable when GOOD.
    func writeAtomic(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let lba = cdb.u64(2)
        let blocks = UInt64(cdb.u16(12))
        // The range first: beyond the end is LBA OUT OF RANGE whatever the length (libiscsi BeyondEol).
        try checkRange(lba, blocks)
        if cdb.u16(10) != 0 { throw SCSIError.invalidCDB(byte: 10) } // ATOMIC BOUNDARY
        if blocks > UInt64(atomicTransferBlocks) { throw SCSIError.invalidCDB(byte: 12) }
        try checkWritable(snap)
        let bytes = Int(blocks) * blockSize
        if bytes == 0 { return SCSICommandResult(status: .good) }
        // All or nothing: a short data-out writes nothing.
        if ctx.dataOut.count < bytes {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: bytes)
        }
        let data = ctx.dataOut.gather(bytes)
        do {
            try ioLock.atomicWrite { () throws(BackstoreError) in
                try data.withBytes { (p) throws(BackstoreError) in
                    try store.writeAtomically(from: p, at: lba * UInt64(blockSize))
                }
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        return SCSICommandResult(status: .good, transferLength: bytes)
    }
}

import Backstores

extension LogicalUnit {
    /// The most blocks one WRITE ATOMIC(16) carries, and the alignment of its LBA: one 4 KiB
    /// page, which the page cache, the file systems and RBD's objects never split, so the
    /// write also lands whole on the media (VPD 0xB0 atomic fields, SBC-4 6.6.4).
    var atomicTransferBlocks: UInt32 { UInt32(max(1, 4096 / blockSize)) }

    /// WRITE ATOMIC(16) (SBC-4 5.48): all of the blocks or none, for every other command.
    /// Atomic boundaries are not supported (MAXIMUM ATOMIC BOUNDARY SIZE 0).
    func writeAtomic(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let lba = cdb.u64(2)
        let blocks = UInt64(cdb.u16(12))
        let fua = cdb.bit(1, 3)
        if cdb.u16(10) != 0 { throw SCSIError.invalidCDB(byte: 10) } // ATOMIC BOUNDARY
        try checkRange(lba, blocks)
        if blocks > UInt64(atomicTransferBlocks) { throw SCSIError.invalidCDB(byte: 12) }
        if lba % UInt64(atomicTransferBlocks) != 0 { throw SCSIError.invalidCDB(byte: 2) } // ATOMIC ALIGNMENT
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
                    try store.write(from: p, at: lba * UInt64(blockSize), durable: mustBeDurable(fua: fua))
                }
            }
        } catch {
            throw SCSIError.backstore(.write, errno: error.errno)
        }
        return SCSICommandResult(status: .good, transferLength: bytes)
    }
}

import Backstores

extension LogicalUnit {
    /// ORWRITE(16) (SBC-4 5.9): each block becomes its old contents OR the data-out, as one
    /// operation no other write of this LU can come between (the LU's COMPARE AND WRITE lock,
    /// held exclusive like COMPARE AND WRITE). ORPROTECT must be 0: no protection information.
    func orWrite(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        try checkNoProtection(cdb)
        let r = decodeRange(cdb)
        try checkRange(r.lba, r.blocks)
        if r.blocks > UInt64(EngineLimits.maxTransferBlocks) { throw SCSIError.invalidCDB(byte: transferLengthOffset(cdb[0])) }
        try checkWritable(snap)
        let bytes = Int(r.blocks) * blockSize
        if bytes == 0 { return SCSICommandResult(status: .good) }
        if ctx.dataOut.count < bytes {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: bytes)
        }
        let mask = ctx.dataOut.gather(bytes)
        let base = r.lba * UInt64(blockSize)
        try ioLock.exclusive { () throws(SCSIError) in
            var blocks = [UInt8](repeating: 0, count: bytes)
            do throws(BackstoreError) {
                try blocks.withMutableBytes { (p) throws(BackstoreError) in try store.read(into: p, at: base) }
            } catch {
                throw SCSIError.backstore(.read, errno: error.errno)
            }
            for i in 0 ..< bytes { blocks[i] |= mask[i] }
            do throws(BackstoreError) {
                try blocks.withBytes { (p) throws(BackstoreError) in
                    try store.write(from: p, at: base, durable: mustBeDurable(fua: r.fua))
                }
            } catch {
                throw SCSIError.backstore(.write, errno: error.errno)
            }
        }
        return SCSICommandResult(status: .good, transferLength: bytes)
    }
}

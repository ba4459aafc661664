import Backstores

extension LogicalUnit {
    /// ORWRITE(16) (SBC-4 5.9): each block becomes its old contents OR the data-out, as one
    /// operation no other write of this LU can come between. ORPROTECT must be 0: no
    /// protection information.
    func orWrite(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let r = try checkedWriteRange(ctx.cdb, snap)
        let bytes = Int(r.blocks) * blockSize
        if bytes == 0 { return SCSICommandResult(status: .good) }
        if ctx.dataOut.count < bytes {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: bytes)
        }
        let mask = ctx.dataOut.gather(bytes)
        try readModifyWrite(at: r.lba * UInt64(blockSize), count: bytes, fua: r.fua) { blocks in
            for i in 0 ..< bytes { blocks[i] |= mask[i] }
        }
        return SCSICommandResult(status: .good, transferLength: bytes)
    }
}

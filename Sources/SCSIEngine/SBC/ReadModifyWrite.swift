import Backstores

extension LogicalUnit {
    /// The checks every write command makes before touching data (SBC-3 4.22, 5.x): no
    /// protection information, the range inside the LU, a transfer length the LU takes, and
    /// a writable LU.
    func checkedWriteRange(_ cdb: ByteReader, _ snap: CommandSnapshot) throws(SCSIError) -> BlockRange {
        try checkNoProtection(cdb)
        let r = decodeRange(cdb)
        try checkRange(r.lba, r.blocks)
        if r.blocks > UInt64(EngineLimits.maxTransferBlocks) { throw SCSIError.invalidCDB(byte: transferLengthOffset(cdb[0])) }
        try checkWritable(snap)
        return r
    }

    /// Reads `count` bytes at `base`, lets `modify` change them (or refuse by throwing), and
    /// writes them back, with no other write of this LU in between (the I/O lock exclusive):
    /// COMPARE AND WRITE and ORWRITE.
    func readModifyWrite(at base: UInt64, count: Int, fua: Bool,
                         _ modify: (inout [UInt8]) throws(SCSIError) -> Void) throws(SCSIError) {
        try ioLock.exclusive { () throws(SCSIError) in
            var blocks = [UInt8](repeating: 0, count: count)
            do throws(BackstoreError) {
                try blocks.withMutableBytes { (p) throws(BackstoreError) in try store.read(into: p, at: base) }
            } catch {
                throw SCSIError.backstore(.read, errno: error.errno)
            }
            try modify(&blocks)
            do throws(BackstoreError) {
                try blocks.withBytes { (p) throws(BackstoreError) in try store.write(from: p, at: base, durable: mustBeDurable(fua: fua)) }
            } catch {
                throw SCSIError.backstore(.write, errno: error.errno)
            }
        }
    }
}

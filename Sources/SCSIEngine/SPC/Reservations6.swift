extension LogicalUnit {
    /// RESERVE(6)/RESERVE(10) (SPC-2 7.21/7.22): logical unit reservation for this nexus.
    func reserve(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        if ctx.cdb[0] == Opcode.reserve10, ctx.cdb[1] & 0x02 != 0 {
            throw SCSIError.invalidCDB(byte: 1, bit: 1) // third-party reservations
        }
        if ctx.cdb[0] == Opcode.reserve6, ctx.cdb[1] & 0x01 != 0 {
            throw SCSIError.invalidCDB(byte: 1, bit: 0) // extents (obsolete)
        }
        try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) in
            // A persistent reservation or registrations make RESERVE conflict (SPC-4 5.13.3).
            if s.pr.reservation != nil { throw SCSIError.reservationConflict }
            if let h = s.legacyHolder, h != ctx.nexus { throw SCSIError.reservationConflict }
            s.legacyHolder = ctx.nexus
        }
        return SCSICommandResult(status: .good)
    }

    /// RELEASE(6)/RELEASE(10): releases our reservation; a no-op for anyone else.
    func release(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) in
            if s.pr.reservation != nil && !s.pr.isHolder(ctx.nexus) { throw SCSIError.reservationConflict }
            if s.legacyHolder == ctx.nexus { s.legacyHolder = nil }
        }
        return SCSICommandResult(status: .good)
    }
}

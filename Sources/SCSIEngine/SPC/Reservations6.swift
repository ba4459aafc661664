extension LogicalUnit {
    /// RESERVE(6)/RESERVE(10) (SPC-2 7.21/7.22): logical unit reservation for this nexus.
    func reserve(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        if ctx.cdb[0] == Opcode.reserve10, ctx.cdb[1] & 0x02 != 0 {
            throw SCSIError.invalidCDB(byte: 1, bit: 1) // third-party reservations
        }
        if ctx.cdb[0] == Opcode.reserve6, ctx.cdb[1] & 0x01 != 0 {
            throw SCSIError.invalidCDB(byte: 1, bit: 0) // extents (obsolete)
        }
        let nexus = ctx.nexus
        let take = { (pr: PersistentReservations, holder: inout NexusID?) throws(PersistentReservations.Failure) in
            // A persistent reservation makes RESERVE conflict (SPC-4 5.13.3).
            if pr.reservation != nil { throw .conflict }
            if let h = holder, h != nexus { throw .conflict }
            holder = nexus
        }
        try changeLegacyReservation(take, ctx)
        return SCSICommandResult(status: .good)
    }

    /// RELEASE(6)/RELEASE(10): releases our reservation; a no-op for anyone else.
    func release(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let nexus = ctx.nexus
        let drop = { (pr: PersistentReservations, holder: inout NexusID?) throws(PersistentReservations.Failure) in
            if pr.reservation != nil && !pr.isHolder(nexus) { throw .conflict }
            if holder == nexus { holder = nil }
        }
        try changeLegacyReservation(drop, ctx)
        return SCSICommandResult(status: .good)
    }

    /// Runs a RESERVE/RELEASE change here, or against the record other gateways share.
    private func changeLegacyReservation(
        _ change: (PersistentReservations, inout NexusID?) throws(PersistentReservations.Failure) -> Void, _ ctx: CommandContext
    ) throws(SCSIError) {
        let outcome: Result<[NexusID], PersistentReservations.Failure>
        if let shared = sharedReservations {
            outcome = try shared.apply({ (state: inout SharedReservations.State) throws(PersistentReservations.Failure) in
                try change(state.pr, &state.legacyHolder)
                return []
            }, unit: self, target: ctx.target)
        } else {
            outcome = state.withLock { s in
                do throws(PersistentReservations.Failure) {
                    try change(s.pr, &s.legacyHolder)
                    return .success([])
                } catch {
                    return .failure(error)
                }
            }
        }
        if case .failure = outcome { throw SCSIError.reservationConflict }
    }
}

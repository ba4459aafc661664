import Backstores

extension LogicalUnit {
    /// Installs the reservations saved before the daemon stopped (or died). A saved state that
    /// cannot be read stops the LU from being added: serving it without them would let an
    /// initiator the reservation fences off write.
    func restoreReservations(from persistence: any SavedState, target: SCSITarget) throws(SCSITarget.ConfigurationError) {
        let saved: [UInt8]?
        do { saved = try persistence.load() } catch {
            throw .reservationsUnreadable("\(error)")
        }
        guard let saved else { return }
        guard let record = try? SharedReservations.decode(saved) else {
            throw .reservationsUnreadable("the saved persistent reservations are damaged")
        }
        var local = SharedReservations.localState(record, target: target).pr
        local.aptpl = true
        state.withLock { $0.pr = local }
    }

    /// Runs one PERSISTENT RESERVE OUT service action on a LU whose reservations persist: the
    /// new state is saved (durably) before it takes effect, so GOOD means it survives a power
    /// loss; a failed save changes nothing. `prOutLock` orders the service actions (they are
    /// the only writers of the reservation state).
    func applyPersisting(_ operation: (inout PersistentReservations) throws(PersistentReservations.Failure) -> [NexusID],
                         persistence: any SavedState,
                         target: SCSITarget) throws(SCSIError) -> Result<[NexusID], PersistentReservations.Failure> {
        try prOutLock.withLock { _ throws(SCSIError) in
            let before = state.withLock { $0.pr }
            var next = before
            let lost: [NexusID]
            do throws(PersistentReservations.Failure) { lost = try operation(&next) } catch { return .failure(error) }
            let attentions = next.unitAttentions
            next.unitAttentions = []
            do throws(BackstoreError) {
                if next.aptpl {
                    if next != before || !before.aptpl {
                        let record = SharedReservations.record(of: .init(pr: next, legacyHolder: nil), target: target)
                        try persistence.save(SharedReservations.encode(record))
                    }
                } else if before.aptpl {
                    try persistence.remove()
                }
            } catch {
                // More registrations than the file may hold: as for the registration limit.
                if error.errno == 27 /* EFBIG */ { throw SCSIError.illegal(.insufficientRegistrationResources) }
                throw SCSIError.backstore(.write, errno: error.errno)
            }
            state.withLock { s in
                s.pr = next
                for (n, asc) in attentions { s.unitAttentions.queue(asc, for: n) }
            }
            return .success(lost)
        }
    }
}

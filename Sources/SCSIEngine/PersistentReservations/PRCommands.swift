extension LogicalUnit {
    /// PERSISTENT RESERVE IN (SPC-4 6.15).
    func persistentReserveIn(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let action = ctx.cdb[1] & 0x1F
        let alloc = Int(ctx.cdb.u16(7))
        // Shared with other gateways: answer from the record as it is now.
        if let shared = sharedReservations { try shared.refresh(into: self, target: ctx.target) }
        let pr = state.withLock { $0.pr }
        var w = ByteWriter(capacity: 64)
        switch action {
        case PRInAction.readKeys:
            w.u32(pr.generation)
            w.u32(UInt32(pr.registrations.count * 8))
            for r in pr.registrations { w.u64(r.key) }
        case PRInAction.readReservation:
            w.u32(pr.generation)
            if let r = pr.reservation {
                w.u32(16)
                // All-registrants reservations report key 0 (SPC-4 6.15.3.3).
                w.u64(r.type.isAllRegistrants ? 0 : pr.key(of: r.holder) ?? 0)
                w.u32(0)
                w.u8(0)
                w.u8(r.type.rawValue) // scope 0 (LU)
                w.u16(0)
            } else {
                w.u32(0)
            }
        case PRInAction.reportCapabilities:
            w.u16(8)
            // PTPL_C where the state can be kept (a file, or the cluster for shared stores);
            // no CRH, SIP_C, ATP_C.
            w.u8(persistsReservations ? 0x01 : 0x00)
            // TMV: the type mask is valid; ALLOW COMMANDS 0; PTPL_A: persisting now.
            w.u8(0x80 | (sharedReservations != nil || pr.aptpl ? 0x01 : 0x00))
            // Type mask: WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX | EX_AC_AR.
            w.u8(0x80 | 0x40 | 0x20 | 0x08 | 0x02)
            w.u8(0x01)
            w.u16(0)
        case PRInAction.readFullStatus:
            w.u32(pr.generation)
            w.u32(0)
            for r in pr.registrations {
                let identity = ctx.target.identity(of: r.nexus)
                w.u64(r.key)
                w.u32(0)
                w.u8(pr.isHolder(r.nexus) ? 0x01 : 0x00) // ALL_TG_PT 0, R_HOLDER
                w.u8(pr.isHolder(r.nexus) ? pr.reservation!.type.rawValue : 0)
                w.u32(0)
                w.u16(identity?.targetPortalGroupTag ?? 1)
                let tid = transportID(identity)
                w.u32(UInt32(tid.count))
                w.append(tid)
            }
            w.set32(4, UInt32(w.count - 8))
        default:
            throw SCSIError.invalidCDB(byte: 1, bit: 4)
        }
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// Whether the reservations can outlive the daemon: saved for APTPL, or kept by the
    /// cluster for a store every gateway shares.
    var persistsReservations: Bool { sharedReservations != nil || configuration.reservationPersistence != nil }

    /// iSCSI TransportID with the initiator port name (SPC-4 7.6.4.6, format 01b).
    func transportID(_ n: ITNexus?) -> [UInt8] {
        var name = Array((n?.initiatorPortName ?? "").utf8)
        name.append(0)
        while name.count % 4 != 0 || name.count < 16 { name.append(0) }
        var w = ByteWriter(capacity: name.count + 4)
        w.u8(0x45); w.u8(0); w.u16(UInt16(name.count)); w.append(name)
        return w.bytes
    }

    /// PERSISTENT RESERVE OUT (SPC-4 6.16).
    func persistentReserveOut(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let action = cdb[1] & 0x1F
        let scope = cdb[2] >> 4
        let typeRaw = cdb[2] & 0x0F
        let length = Int(cdb.u32(5))
        guard action <= PROutAction.registerAndMove else { throw SCSIError.invalidCDB(byte: 1, bit: 4) }
        let needsType = [PROutAction.reserve, PROutAction.release, PROutAction.preempt, PROutAction.preemptAndAbort].contains(action)
        var type = PRType.writeExclusive
        if needsType {
            if scope != 0 { throw SCSIError.invalidCDB(byte: 2, bit: 7) }
            guard let t = PRType(rawValue: typeRaw) else { throw SCSIError.invalidCDB(byte: 2, bit: 3) }
            type = t
        }
        if action == PROutAction.registerAndMove {
            if length < 24 { throw SCSIError.parameterListLength }
        } else if length != 24 {
            throw SCSIError.parameterListLength
        }
        if ctx.dataOut.count < length {
            return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: length)
        }
        let p = ctx.dataOut.gather(length)
        let params = p.withUnsafeBytes { b in (ByteReader(bytes: b).u64(0), ByteReader(bytes: b).u64(8)) }
        let (key, sak) = params

        var destination: NexusID?
        var unreg = false
        // APTPL counts for the register service actions only (SPC-4 6.16.3); it needs a
        // place to keep the state.
        let registers = [PROutAction.register, PROutAction.registerAndIgnoreExistingKey].contains(action)
        let aptpl = action == PROutAction.registerAndMove ? p[17] & 0x01 != 0 : registers && p[20] & 0x01 != 0
        if aptpl && !persistsReservations {
            throw SCSIError.invalidParameter(byte: action == PROutAction.registerAndMove ? 17 : 20, bit: 0)
        }
        if action == PROutAction.registerAndMove {
            unreg = p[17] & 0x02 != 0
            let rtpi = UInt16(p[18]) << 8 | UInt16(p[19])
            let tidLength = Int(UInt32(p[20]) << 24 | UInt32(p[21]) << 16 | UInt32(p[22]) << 8 | UInt32(p[23]))
            if 24 + tidLength > length { throw SCSIError.parameterListLength }
            destination = try resolveTransportID(Array(p[24 ..< 24 + tidLength]), relativePort: rtpi, ctx)
        } else {
            if p[20] & 0x08 != 0 { throw SCSIError.invalidParameter(byte: 20, bit: 3) } // SPEC_I_PT
            if p[20] & 0x04 != 0 { throw SCSIError.invalidParameter(byte: 20, bit: 2) } // ALL_TG_PT
        }

        let nexus = ctx.nexus
        let operation = { (pr: inout PersistentReservations) throws(PersistentReservations.Failure) -> [NexusID] in
            switch action {
            case PROutAction.register, PROutAction.registerAndIgnoreExistingKey:
                try pr.register(nexus, key: key, serviceActionKey: sak,
                                ignoreExisting: action == PROutAction.registerAndIgnoreExistingKey, aptpl: aptpl)
            case PROutAction.reserve: try pr.reserve(nexus, key: key, type: type)
            case PROutAction.release: try pr.release(nexus, key: key, type: type)
            case PROutAction.clear: try pr.clear(nexus, key: key)
            case PROutAction.preempt, PROutAction.preemptAndAbort:
                return try pr.preempt(nexus, key: key, serviceActionKey: sak, type: type)
            default:
                try pr.registerAndMove(nexus, key: key, serviceActionKey: sak, destination: destination!,
                                       unregister: unreg, aptpl: aptpl)
            }
            return []
        }
        let outcome: Result<[NexusID], PersistentReservations.Failure>
        if let shared = sharedReservations {
            outcome = try shared.apply({ (state: inout SharedReservations.State) throws(PersistentReservations.Failure) in
                try operation(&state.pr)
            }, unit: self, target: ctx.target)
        } else if let persistence = configuration.reservationPersistence {
            outcome = try applyPersisting(operation, persistence: persistence, target: ctx.target)
        } else {
            outcome = state.withLock { s in
                defer { s.pr.unitAttentions.removeAll() }
                do throws(PersistentReservations.Failure) {
                    let lost = try operation(&s.pr)
                    for (n, asc) in s.pr.unitAttentions { s.unitAttentions.queue(asc, for: n) }
                    return .success(lost)
                } catch {
                    return .failure(error)
                }
            }
        }
        let preempted: [NexusID]
        switch outcome {
        case .success(let lost): preempted = lost
        case .failure(.conflict): throw SCSIError.reservationConflict
        case .failure(.invalidField(let byte)): throw SCSIError.invalidParameter(byte: byte)
        case .failure(.invalidCDBField(let byte, let bit)): throw SCSIError.invalidCDB(byte: byte, bit: bit)
        case .failure(.invalidRelease): throw SCSIError.illegal(.invalidReleaseOfPersistentReservation)
        case .failure(.insufficientResources): throw SCSIError.illegal(.insufficientRegistrationResources)
        }
        // PREEMPT AND ABORT: the preempted nexuses' tasks are the fabric's to abort (SPC-4 5.13.11.5).
        if action == PROutAction.preemptAndAbort && !preempted.isEmpty {
            ctx.target.abortTasks(unit: self, nexuses: preempted.filter { $0 != ctx.nexus })
        }
        return SCSICommandResult(status: .good, transferLength: length)
    }

    /// Finds (or creates the ID of) the I_T nexus a REGISTER AND MOVE TransportID names.
    private func resolveTransportID(_ t: [UInt8], relativePort: UInt16, _ ctx: CommandContext) throws(SCSIError) -> NexusID {
        guard t.count >= 8, t[0] & 0x0F == 0x05 else { throw SCSIError.invalidParameter(byte: 24) }
        let format = t[0] >> 6
        let nameLength = min(Int(UInt16(t[2]) << 8 | UInt16(t[3])), t.count - 4)
        let raw = t[4 ..< 4 + nameLength].prefix { $0 != 0 }
        let text = String(decoding: raw, as: UTF8.self)
        switch format {
        case 1:
            // "<name>,i,0x<ISID>"
            let bytes = Array(text.utf8)
            let marker = Array(",i,0x".utf8)
            guard let at = (0 ..< max(0, bytes.count - marker.count + 1)).first(where: { i in
                      zip(bytes[i ..< i + marker.count], marker).allSatisfy { $0 | 0x20 == $1 | 0x20 } }),
                  let isid = UInt64(String(decoding: bytes[(at + marker.count)...], as: UTF8.self), radix: 16)
            else { throw SCSIError.invalidParameter(byte: 28) }
            let name = String(decoding: bytes[..<at], as: UTF8.self)
            return ctx.target.nexusID(for: ITNexus(initiatorName: name, isid: isid, targetName: ctx.target.name,
                                                   targetPortalGroupTag: relativePort))
        case 0:
            let found = ctx.target.nexuses(initiatorPort: nil, initiatorName: text, targetPortalGroupTag: relativePort)
            guard let first = found.first else { throw SCSIError.invalidParameter(byte: 28) }
            return first
        default:
            throw SCSIError.invalidParameter(byte: 24, bit: 7)
        }
    }
}

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
            // SIP_C and ATP_C where the transport names ports; PTPL_C where the state can be
            // kept (a file, or the cluster for shared stores); no CRH.
            let namesPorts = ctx.target.transport.protocolIdentifier != nil
            w.u8((namesPorts ? 0x0C : 0x00) | (persistsReservations ? 0x01 : 0x00))
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
                let tid = identity.map { ctx.target.transport.transportID(of: $0) } ?? []
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
        // 24 bytes, more for REGISTER AND MOVE's TransportID and REGISTER's SPEC_I_PT list
        // (checked once the list is read).
        if action == PROutAction.registerAndMove || action == PROutAction.register {
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
        // ALL_TG_PT and SPEC_I_PT (SPC-4 6.16.3): the register service actions only.
        let allTargetPorts = registers && p[20] & 0x04 != 0
        let specifiesPorts = action == PROutAction.register && p[20] & 0x08 != 0
        if action == PROutAction.registerAndIgnoreExistingKey && p[20] & 0x08 != 0 {
            throw SCSIError.invalidParameter(byte: 20, bit: 3)
        }
        // Without port names from the transport there is no SIP_C or ATP_C.
        if ctx.target.transport.protocolIdentifier == nil {
            if specifiesPorts { throw SCSIError.invalidParameter(byte: 20, bit: 3) }
            if allTargetPorts { throw SCSIError.invalidParameter(byte: 20, bit: 2) }
        }
        if action == PROutAction.register && !specifiesPorts && length != 24 { throw SCSIError.parameterListLength }
        var siblings: [NexusID] = []
        var specified: [(NexusID, offset: Int)] = []
        // IDs made for identities this command names for the first time: dropped again unless
        // the command registers them.
        var created: [NexusID] = []
        var committed = false
        defer { if !committed && !created.isEmpty { ctx.target.forgetNexuses(created) } }
        if action == PROutAction.registerAndMove {
            unreg = p[17] & 0x02 != 0
            let rtpi = UInt16(p[18]) << 8 | UInt16(p[19])
            let tidLength = Int(UInt32(p[20]) << 24 | UInt32(p[21]) << 16 | UInt32(p[22]) << 8 | UInt32(p[23]))
            if 24 + tidLength > length { throw SCSIError.parameterListLength }
            destination = try resolveTransportID(Array(p[24 ..< 24 + tidLength]), relativePort: rtpi, created: &created, ctx)
        } else if registers {
            let me = ctx.identity
            let ports = allTargetPorts ? ctx.target.portalGroupTags(including: me.targetPortalGroupTag) : [me.targetPortalGroupTag]
            if allTargetPorts {
                siblings = ports.map { tag in
                    var n = me
                    n.targetPortalGroupTag = tag
                    return ctx.target.nexusID(for: n, created: &created)
                }
            }
            if specifiesPorts { specified = try specifiedPorts(p, length: length, ports: ports, created: &created, ctx) }
        }

        let nexus = ctx.nexus
        let operation = { (pr: inout PersistentReservations) throws(PersistentReservations.Failure) -> [NexusID] in
            switch action {
            case PROutAction.register, PROutAction.registerAndIgnoreExistingKey:
                try pr.register(nexus, siblings: siblings, specified: specified, specifiesPorts: specifiesPorts,
                                key: key, serviceActionKey: sak,
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
        case .success(let lost):
            preempted = lost
            committed = true
        case .failure(.conflict): throw SCSIError.reservationConflict
        case .failure(.invalidField(let byte)): throw SCSIError.invalidParameter(byte: byte)
        case .failure(.invalidCDBField(let byte, let bit)): throw SCSIError.invalidCDB(byte: byte, bit: bit)
        case .failure(.invalidRelease): throw SCSIError.illegal(.invalidReleaseOfPersistentReservation)
        case .failure(.insufficientResources): throw SCSIError.illegal(.insufficientRegistrationResources)
        case .failure(.specifiedPortsFromRegistered): throw SCSIError.illegal(.invalidFieldInCDB)
        }
        // PREEMPT AND ABORT: the preempted nexuses' tasks are the fabric's to abort (SPC-4 5.13.11.5).
        if action == PROutAction.preemptAndAbort && !preempted.isEmpty {
            ctx.target.abortTasks(unit: self, nexuses: preempted.filter { $0 != ctx.nexus })
        }
        return SCSICommandResult(status: .good, transferLength: length)
    }

    /// The I_T nexuses a TransportID names through one target port: its initiator port (the ID
    /// made if new, noted in `created`), or every known port of an initiator named without one.
    private func nexuses(namedBy parsed: ParsedTransportID, through tag: UInt16, created: inout [NexusID],
                         _ ctx: CommandContext) -> [NexusID] {
        guard let port = parsed.initiatorPortID else {
            return ctx.target.nexuses(initiatorName: parsed.initiatorName, initiatorPortID: nil, targetPortalGroupTag: tag)
        }
        return [ctx.target.nexusID(for: ITNexus(initiatorName: parsed.initiatorName, initiatorPortID: port,
                                                targetName: ctx.target.name, targetPortalGroupTag: tag), created: &created)]
    }

    /// The I_T nexus a REGISTER AND MOVE TransportID names.
    private func resolveTransportID(_ t: [UInt8], relativePort: UInt16, created: inout [NexusID],
                                    _ ctx: CommandContext) throws(SCSIError) -> NexusID {
        guard let parsed = ctx.target.transport.parseTransportID(t[...]),
              let first = nexuses(namedBy: parsed, through: relativePort, created: &created, ctx).first
        else { throw SCSIError.invalidParameter(byte: 24) }
        return first
    }

    /// The I_T nexuses a REGISTER with SPEC_I_PT names (SPC-4 6.16.3.2): after the 24 bytes, a
    /// TRANSPORTID PARAMETER DATA LENGTH and TransportIDs, each naming an initiator port (or
    /// every known port of an initiator) through `ports`.
    private func specifiedPorts(_ p: [UInt8], length: Int, ports: [UInt16], created: inout [NexusID],
                                _ ctx: CommandContext) throws(SCSIError) -> [(NexusID, offset: Int)] {
        guard length >= 28 else { throw SCSIError.parameterListLength }
        let dataLength = Int(UInt32(p[24]) << 24 | UInt32(p[25]) << 16 | UInt32(p[26]) << 8 | UInt32(p[27]))
        guard 28 + dataLength == length else { throw SCSIError.parameterListLength }
        var out: [(NexusID, offset: Int)] = []
        var at = 28
        while at < length {
            guard let parsed = ctx.target.transport.parseTransportID(p[at ..< length]) else { throw SCSIError.invalidParameter(byte: at) }
            // No more than can be registered: the rest could only fail.
            if out.count >= EngineLimits.maxRegistrations { throw SCSIError.illegal(.insufficientRegistrationResources) }
            let named = ports.flatMap { nexuses(namedBy: parsed, through: $0, created: &created, ctx) }
            // An initiator named without a port that never logged in: nothing to register.
            if named.isEmpty { throw SCSIError.invalidParameter(byte: at) }
            out += named.map { ($0, offset: at) }
            at += parsed.length
        }
        return out
    }
}

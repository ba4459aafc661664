/// Every command the engine runs, one entry each (SPC-4 annex D.3.1, SBC-3 5.1 table 12).
/// REPORT SUPPORTED OPERATION CODES lists them in this order.
enum CommandTable {
    typealias D = CommandDescriptor

    /// DPO and FUA are the only byte-1 flags of the reads and writes (no protection fields).
    private static let dpoFua: UInt8 = 0x18

    static let commands: [CommandDescriptor] = [
        // SPC-4: device and LU management.
        D(Opcode.testUnitReady, "TEST UNIT READY", length: 6, access: .none,
          handler: { (_, _, _) throws(SCSIError) in SCSICommandResult(status: .good) }),
        D(Opcode.requestSense, "REQUEST SENSE", length: 6, direction: .fromDevice, access: .none,
          reportsUnitAttention: false, allowedUnderReserve: true, allowedDuringSanitize: true, byte1Usage: 0x01, // DESC
          handler: { (lu, ctx, _) throws(SCSIError) in lu.requestSense(ctx) }),
        D(Opcode.inquiry, "INQUIRY", length: 6, direction: .fromDevice, access: .none,
          reportsUnitAttention: false, allowedUnderReserve: true, allowedDuringSanitize: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.inquiry(ctx) }),
        D(Opcode.modeSelect6, "MODE SELECT(6)", length: 6, direction: .toDevice, access: .write,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.modeSelect(ctx) }),
        D(Opcode.reserve6, "RESERVE(6)", length: 6, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.reserve(ctx) }),
        D(Opcode.release6, "RELEASE(6)", length: 6, access: .none, allowedUnderReserve: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.release(ctx) }),
        D(Opcode.modeSense6, "MODE SENSE(6)", length: 6, direction: .fromDevice, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.modeSense(ctx) }),
        // Only START=1 with POWER CONDITION 0 is allowed under reservations (SBC-3 table 13).
        D(Opcode.startStopUnit, "START STOP UNIT", length: 6, access: .write,
          accessFromCDB: { cdb in cdb[4] & 0xF1 == 0x01 ? .none : .write },
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.startStopUnit(ctx) }),
        D(Opcode.modeSelect10, "MODE SELECT(10)", length: 10, direction: .toDevice, access: .write,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.modeSelect(ctx) }),
        D(Opcode.reserve10, "RESERVE(10)", length: 10, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.reserve(ctx) }),
        D(Opcode.release10, "RELEASE(10)", length: 10, access: .none, allowedUnderReserve: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.release(ctx) }),
        D(Opcode.modeSense10, "MODE SENSE(10)", length: 10, direction: .fromDevice, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.modeSense(ctx) }),
        D(Opcode.reportLuns, "REPORT LUNS", length: 12, direction: .fromDevice, access: .none,
          reportsUnitAttention: false, allowedUnderReserve: true, allowedDuringSanitize: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try ctx.target.reportLuns(ctx, unit: lu) }),

        // SPC-4 6.15, 6.16: persistent reservations, one entry per service action.
        prIn(PRInAction.readKeys, "READ KEYS"),
        prIn(PRInAction.readReservation, "READ RESERVATION"),
        prIn(PRInAction.reportCapabilities, "REPORT CAPABILITIES"),
        prIn(PRInAction.readFullStatus, "READ FULL STATUS"),
        prOut(PROutAction.register, "REGISTER"),
        prOut(PROutAction.reserve, "RESERVE"),
        prOut(PROutAction.release, "RELEASE"),
        prOut(PROutAction.clear, "CLEAR"),
        prOut(PROutAction.preempt, "PREEMPT"),
        prOut(PROutAction.preemptAndAbort, "PREEMPT AND ABORT"),
        prOut(PROutAction.registerAndIgnoreExistingKey, "REGISTER AND IGNORE EXISTING KEY"),
        prOut(PROutAction.registerAndMove, "REGISTER AND MOVE"),

        // SPC-4 6.4, 6.18: third-party copy (LID1). The copy checks each source and destination
        // LU for this nexus itself.
        D(Opcode.extendedCopy, serviceAction: 0x00, "EXTENDED COPY(LID1)", length: 16, direction: .toDevice, access: .write,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.extendedCopy(ctx) }),
        D(Opcode.receiveCopyResults, serviceAction: CopyResultsAction.copyStatus, "RECEIVE COPY RESULTS: COPY STATUS",
          length: 16, direction: .fromDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.receiveCopyResults(ctx) }),
        D(Opcode.receiveCopyResults, serviceAction: CopyResultsAction.operatingParameters,
          "RECEIVE COPY RESULTS: OPERATING PARAMETERS", length: 16, direction: .fromDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.receiveCopyResults(ctx) }),

        // SPC-4 6.35-6.37 under MAINTENANCE IN.
        D(Opcode.maintenanceIn, serviceAction: ServiceAction.reportTargetPortGroups, "REPORT TARGET PORT GROUPS",
          length: 12, direction: .fromDevice, access: .none, allowedUnderReserve: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.reportTargetPortGroups(ctx) }),
        D(Opcode.maintenanceIn, serviceAction: ServiceAction.reportSupportedOpcodes, "REPORT SUPPORTED OPERATION CODES",
          length: 12, direction: .fromDevice, access: .none, allowedUnderReserve: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.reportSupportedOpcodes(ctx) }),
        D(Opcode.maintenanceIn, serviceAction: ServiceAction.reportSupportedTMFs, "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
          length: 12, direction: .fromDevice, access: .none, allowedUnderReserve: true,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.reportSupportedTMFs(ctx) }),

        // SBC-3: capacity and metadata.
        D(Opcode.readCapacity10, "READ CAPACITY(10)", length: 10, direction: .fromDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.readCapacity10(ctx) }),
        D(Opcode.serviceActionIn16, serviceAction: ServiceAction.readCapacity16, "READ CAPACITY(16)", length: 16,
          direction: .fromDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.readCapacity16(ctx) }),
        // GET LBA STATUS reads metadata: treated as a read (SBC-3 table 13).
        D(Opcode.serviceActionIn16, serviceAction: ServiceAction.getLBAStatus, "GET LBA STATUS", length: 16,
          direction: .fromDevice, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.getLBAStatus(ctx) }),
        D(Opcode.readDefectData10, "READ DEFECT DATA(10)", length: 10, direction: .fromDevice, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.readDefectData(ctx) }),
        D(Opcode.readDefectData12, "READ DEFECT DATA(12)", length: 12, direction: .fromDevice, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.readDefectData(ctx) }),

        // SBC-3: reads.
        read(Opcode.read6, "READ(6)", length: 6),
        read(Opcode.read10, "READ(10)", length: 10),
        read(Opcode.read12, "READ(12)", length: 12),
        read(Opcode.read16, "READ(16)", length: 16),
        verify(Opcode.verify10, "VERIFY(10)", length: 10),
        verify(Opcode.verify12, "VERIFY(12)", length: 12),
        verify(Opcode.verify16, "VERIFY(16)", length: 16),
        D(Opcode.preFetch10, "PRE-FETCH(10)", length: 10, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.preFetch(ctx) }),
        D(Opcode.preFetch16, "PRE-FETCH(16)", length: 16, access: .read,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.preFetch(ctx) }),

        // SBC-3: writes.
        write(Opcode.write6, "WRITE(6)", length: 6),
        write(Opcode.write10, "WRITE(10)", length: 10),
        write(Opcode.write12, "WRITE(12)", length: 12),
        write(Opcode.write16, "WRITE(16)", length: 16),
        writeAndVerify(Opcode.writeAndVerify10, "WRITE AND VERIFY(10)", length: 10),
        writeAndVerify(Opcode.writeAndVerify12, "WRITE AND VERIFY(12)", length: 12),
        writeAndVerify(Opcode.writeAndVerify16, "WRITE AND VERIFY(16)", length: 16),
        D(Opcode.compareAndWrite, "COMPARE AND WRITE", length: 16, direction: .toDevice, access: .write,
          statistics: .write, byte1Usage: dpoFua,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.compareAndWrite(ctx, snap) }),
        // DPO, FUA, FUA_NV; no ORPROTECT.
        D(Opcode.orWrite16, "ORWRITE(16)", length: 16, direction: .toDevice, access: .write,
          statistics: .write, byte1Usage: 0x1A,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.orWrite(ctx, snap) }),
        D(Opcode.writeAtomic16, "WRITE ATOMIC(16)", length: 16, direction: .toDevice, access: .write,
          statistics: .write, availability: .atomicWrites, byte1Usage: dpoFua,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.writeAtomic(ctx, snap) }),
        D(Opcode.synchronizeCache10, "SYNCHRONIZE CACHE(10)", length: 10, access: .write,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.synchronizeCache(ctx) }),
        D(Opcode.synchronizeCache16, "SYNCHRONIZE CACHE(16)", length: 16, access: .write,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.synchronizeCache(ctx) }),

        // SBC-3: provisioning.
        D(Opcode.writeSame10, "WRITE SAME(10)", length: 10, direction: .toDevice, access: .write,
          byte1Usage: 0x08, // UNMAP
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.writeSame(ctx, snap) }),
        D(Opcode.writeSame16, "WRITE SAME(16)", length: 16, direction: .toDevice, access: .write,
          byte1Usage: 0x09, // UNMAP, NDOB
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.writeSame(ctx, snap) }),
        // SBC-4 5.25: BLOCK ERASE deallocates, so it exists where blocks can be (LBPME);
        // CRYPTOGRAPHIC ERASE is not supported.
        sanitize(SanitizeAction.overwrite, "OVERWRITE"),
        sanitize(SanitizeAction.blockErase, "BLOCK ERASE", availability: .thinProvisioned),
        sanitize(SanitizeAction.exitFailureMode, "EXIT FAILURE MODE"),
        D(Opcode.unmap, "UNMAP", length: 10, direction: .toDevice, access: .write, availability: .thinProvisioned,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.unmap(ctx, snap) }),
    ]

    private static func sanitize(_ action: UInt8, _ name: String, availability: D.Availability = .always) -> D {
        // The handler itself refuses a sanitize while one runs; after a failure one may run.
        D(Opcode.sanitize, serviceAction: action, "SANITIZE: " + name, length: 10, direction: .toDevice, access: .write,
          allowedDuringSanitize: true, availability: availability, byte1Usage: 0xA0 | action, // IMMED, AUSE
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.sanitize(ctx, snap) })
    }

    private static func prIn(_ action: UInt8, _ name: String) -> D {
        D(Opcode.persistentReserveIn, serviceAction: action, "PERSISTENT RESERVE IN: " + name, length: 10,
          direction: .fromDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.persistentReserveIn(ctx) })
    }

    private static func prOut(_ action: UInt8, _ name: String) -> D {
        D(Opcode.persistentReserveOut, serviceAction: action, "PERSISTENT RESERVE OUT: " + name, length: 10,
          direction: .toDevice, access: .none,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.persistentReserveOut(ctx) })
    }

    private static func read(_ op: UInt8, _ name: String, length: Int) -> D {
        D(op, name, length: length, direction: .fromDevice, access: .read, statistics: .read,
          fastPaths: [.pageCacheRead, .callback], byte1Usage: length == 6 ? nil : dpoFua,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.read(ctx) })
    }

    private static func write(_ op: UInt8, _ name: String, length: Int) -> D {
        D(op, name, length: length, direction: .toDevice, access: .write, statistics: .write,
          fastPaths: [.callback], byte1Usage: length == 6 ? nil : dpoFua,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.write(ctx, snap) })
    }

    /// DPO, BYTCHK.
    private static func writeAndVerify(_ op: UInt8, _ name: String, length: Int) -> D {
        D(op, name, length: length, direction: .toDevice, access: .write, statistics: .write, byte1Usage: 0x12,
          handler: { (lu, ctx, snap) throws(SCSIError) in try lu.write(ctx, snap, verify: true) })
    }

    /// DPO, BYTCHK (2 bits).
    private static func verify(_ op: UInt8, _ name: String, length: Int) -> D {
        D(op, name, length: length, direction: .toDevice, access: .read, byte1Usage: 0x16,
          handler: { (lu, ctx, _) throws(SCSIError) in try lu.verify(ctx) })
    }
}

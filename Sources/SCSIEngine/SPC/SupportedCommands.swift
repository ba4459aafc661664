/// One entry of REPORT SUPPORTED OPERATION CODES.
struct SupportedCommand {
    var opcode: UInt8
    var serviceAction: UInt16?
    var length: Int

    static let all: [SupportedCommand] = [
        .init(opcode: Opcode.testUnitReady, length: 6),
        .init(opcode: Opcode.requestSense, length: 6),
        .init(opcode: Opcode.read6, length: 6),
        .init(opcode: Opcode.write6, length: 6),
        .init(opcode: Opcode.inquiry, length: 6),
        .init(opcode: Opcode.modeSelect6, length: 6),
        .init(opcode: Opcode.reserve6, length: 6),
        .init(opcode: Opcode.release6, length: 6),
        .init(opcode: Opcode.modeSense6, length: 6),
        .init(opcode: Opcode.startStopUnit, length: 6),
        .init(opcode: Opcode.readCapacity10, length: 10),
        .init(opcode: Opcode.readDefectData10, length: 10),
        .init(opcode: Opcode.read10, length: 10),
        .init(opcode: Opcode.write10, length: 10),
        .init(opcode: Opcode.writeAndVerify10, length: 10),
        .init(opcode: Opcode.verify10, length: 10),
        .init(opcode: Opcode.preFetch10, length: 10),
        .init(opcode: Opcode.synchronizeCache10, length: 10),
        .init(opcode: Opcode.writeSame10, length: 10),
        .init(opcode: Opcode.unmap, length: 10),
        .init(opcode: Opcode.modeSelect10, length: 10),
        .init(opcode: Opcode.reserve10, length: 10),
        .init(opcode: Opcode.release10, length: 10),
        .init(opcode: Opcode.modeSense10, length: 10),
        .init(opcode: Opcode.persistentReserveIn, serviceAction: UInt16(PRInAction.readKeys), length: 10),
        .init(opcode: Opcode.persistentReserveIn, serviceAction: UInt16(PRInAction.readReservation), length: 10),
        .init(opcode: Opcode.persistentReserveIn, serviceAction: UInt16(PRInAction.reportCapabilities), length: 10),
        .init(opcode: Opcode.persistentReserveIn, serviceAction: UInt16(PRInAction.readFullStatus), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.register), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.reserve), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.release), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.clear), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.preempt), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.preemptAndAbort), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.registerAndIgnoreExistingKey), length: 10),
        .init(opcode: Opcode.persistentReserveOut, serviceAction: UInt16(PROutAction.registerAndMove), length: 10),
        .init(opcode: Opcode.read16, length: 16),
        .init(opcode: Opcode.compareAndWrite, length: 16),
        .init(opcode: Opcode.write16, length: 16),
        .init(opcode: Opcode.orWrite16, length: 16),
        .init(opcode: Opcode.writeAndVerify16, length: 16),
        .init(opcode: Opcode.verify16, length: 16),
        .init(opcode: Opcode.preFetch16, length: 16),
        .init(opcode: Opcode.synchronizeCache16, length: 16),
        .init(opcode: Opcode.writeSame16, length: 16),
        .init(opcode: Opcode.serviceActionIn16, serviceAction: UInt16(ServiceAction.readCapacity16), length: 16),
        .init(opcode: Opcode.serviceActionIn16, serviceAction: UInt16(ServiceAction.getLBAStatus), length: 16),
        .init(opcode: Opcode.reportLuns, length: 12),
        .init(opcode: Opcode.maintenanceIn, serviceAction: UInt16(ServiceAction.reportTargetPortGroups), length: 12),
        .init(opcode: Opcode.maintenanceIn, serviceAction: UInt16(ServiceAction.reportSupportedOpcodes), length: 12),
        .init(opcode: Opcode.maintenanceIn, serviceAction: UInt16(ServiceAction.reportSupportedTMFs), length: 12),
        .init(opcode: Opcode.read12, length: 12),
        .init(opcode: Opcode.readDefectData12, length: 12),
        .init(opcode: Opcode.write12, length: 12),
        .init(opcode: Opcode.writeAndVerify12, length: 12),
        .init(opcode: Opcode.verify12, length: 12),
    ]

    static func hasServiceActions(_ opcode: UInt8) -> Bool {
        all.contains { $0.opcode == opcode && $0.serviceAction != nil }
    }

    /// CDB USAGE DATA (SPC-4 6.35.3): bits the device server looks at. The opcode byte is
    /// the opcode; the control byte only admits none of NACA/LINK; service action bits are
    /// those of the field.
    var usageData: [UInt8] {
        var u = [UInt8](repeating: 0xFF, count: length)
        u[0] = opcode
        u[length - 1] = 0x00
        if serviceAction != nil { u[1] = 0x1F }
        switch opcode {
        case Opcode.read10, Opcode.read12, Opcode.read16, Opcode.write10, Opcode.write12, Opcode.write16,
             Opcode.compareAndWrite:
            u[1] = 0x18 // DPO, FUA; no protection fields
        case Opcode.verify10, Opcode.verify12, Opcode.verify16: u[1] = 0x16 // DPO, BYTCHK
        case Opcode.writeAndVerify10, Opcode.writeAndVerify12, Opcode.writeAndVerify16: u[1] = 0x12 // DPO, BYTCHK
        case Opcode.orWrite16: u[1] = 0x1A // DPO, FUA, FUA_NV; no ORPROTECT
        case Opcode.writeSame10: u[1] = 0x08 // UNMAP
        case Opcode.writeSame16: u[1] = 0x09 // UNMAP, NDOB
        default: break
        }
        return u
    }
}

extension LogicalUnit {
    /// MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS.
    func maintenanceIn(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        switch ctx.cdb[1] & 0x1F {
        case ServiceAction.reportTargetPortGroups: return try reportTargetPortGroups(ctx)
        case ServiceAction.reportSupportedOpcodes: return try reportSupportedOpcodes(ctx)
        case ServiceAction.reportSupportedTMFs: return try reportSupportedTMFs(ctx)
        default: throw SCSIError.invalidCDB(byte: 1, bit: 4)
        }
    }

    /// Command timeouts descriptor (SPC-4 6.35.4): no nominal or recommended timeout.
    private func timeouts(_ w: inout ByteWriter) {
        w.u16(0x0A); w.u8(0); w.u8(0); w.u32(0); w.u32(0)
    }

    /// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35).
    func reportSupportedOpcodes(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let rctd = cdb[2] & 0x80 != 0
        let options = cdb[2] & 0x07
        let opcode = cdb[3]
        let sa = cdb.u16(4)
        let alloc = Int(cdb.u32(6))
        var w = ByteWriter(capacity: 1024)
        switch options {
        case 0:
            // UNMAP exists only on thin-provisioned LUs (it answers INVALID OPERATION CODE elsewhere).
            let all = SupportedCommand.all.filter { isThin || $0.opcode != Opcode.unmap }
            w.u32(UInt32(all.count * (rctd ? 20 : 8)))
            for c in all {
                w.u8(c.opcode); w.u8(0); w.u16(c.serviceAction ?? 0); w.u8(0)
                w.u8((rctd ? 0x02 : 0) | (c.serviceAction != nil ? 0x01 : 0))
                w.u16(UInt16(c.length))
                if rctd { timeouts(&w) }
            }
        case 1, 2, 3:
            let hasSA = SupportedCommand.hasServiceActions(opcode)
            if options == 1 && hasSA { throw SCSIError.invalidCDB(byte: 2, bit: 2) }
            if options == 2 && !hasSA && SupportedCommand.all.contains(where: { $0.opcode == opcode }) {
                throw SCSIError.invalidCDB(byte: 2, bit: 2)
            }
            let match = SupportedCommand.all.first {
                (isThin || $0.opcode != Opcode.unmap) && $0.opcode == opcode && (options == 1 || ($0.serviceAction ?? 0) == sa || (options == 3 && !hasSA))
            }
            w.u8(0)
            if let m = match {
                w.u8((rctd ? 0x80 : 0) | 0x03) // SUPPORT 011b: supported as the standard says
                w.u16(UInt16(m.length))
                w.append(m.usageData)
                if rctd { timeouts(&w) }
            } else {
                w.u8(0x01) // SUPPORT 001b: not supported
                w.u16(0)
            }
        default:
            throw SCSIError.invalidCDB(byte: 2, bit: 2)
        }
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.37).
    func reportSupportedTMFs(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let repd = ctx.cdb[2] & 0x80 != 0
        let alloc = Int(ctx.cdb.u32(6))
        if alloc < 4 { throw SCSIError.invalidCDB(byte: 6) }
        // ATS, ATSS, CTSS, LURS, TRS: abort task (set), clear task set, LU reset, target reset.
        var data: [UInt8] = [0xDA, 0x00, 0x00, 0x00]
        if repd {
            data = [0xDA, 0x00, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12)
        }
        return answer(data, allocationLength: alloc, ctx)
    }
}

extension LogicalUnit {
    /// REPORT TARGET PORT GROUPS (SPC-4 6.36): one group per gateway (target portal group
    /// tag), each with one port of the same number (as in VPD 0x83), all active/optimized:
    /// every gateway writes the shared image directly, so no path is better than another and
    /// there is nothing to transition (implicit ALUA, TPGS 01b).
    func reportTargetPortGroups(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let format = ctx.cdb[1] >> 5
        let alloc = Int(ctx.cdb.u32(6))
        guard format <= 1 else { throw SCSIError.invalidCDB(byte: 1, bit: 7) }
        let groups = ctx.target.portalGroupTags(including: ctx.identity.targetPortalGroupTag)
        var w = ByteWriter(capacity: 8 + groups.count * 12)
        w.u32(0)
        if format == 1 {
            w.u8(0x10) // FORMAT TYPE 001b: extended header
            w.u8(0)    // implicit transition time
            w.u16(0)
        }
        for tag in groups {
            w.u8(0x80)  // PREF, asymmetric access state 0: active/optimized
            w.u8(0x01)  // AO_SUP
            w.u16(tag)
            w.u8(0); w.u8(0); w.u8(0)
            w.u8(1)     // target port count
            w.u16(0); w.u16(tag)
        }
        w.set32(0, UInt32(w.count - 4))
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// READ DEFECT DATA(10/12) (SBC-3 5.17, 5.18): the defect list is always empty.
    func readDefectData(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        if cdb[0] == Opcode.readDefectData10 {
            let alloc = Int(cdb.u16(7))
            return answer([0, cdb[2] & 0x1F, 0, 0], allocationLength: alloc, ctx)
        }
        let alloc = Int(cdb.u32(6))
        return answer([0, cdb[1] & 0x1F, 0, 0, 0, 0, 0, 0], allocationLength: alloc, ctx)
    }
}

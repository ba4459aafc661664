extension LogicalUnit {
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
            let all = CommandTable.commands.filter { $0.isAvailable(on: self) }
            w.u32(UInt32(all.count * (rctd ? 20 : 8)))
            for c in all {
                w.u8(c.opcode); w.u8(0); w.u16(UInt16(c.serviceAction ?? 0)); w.u8(0)
                w.u8((rctd ? 0x02 : 0) | (c.serviceAction != nil ? 0x01 : 0))
                w.u16(UInt16(c.length))
                if rctd { timeouts(&w) }
            }
        case 1, 2, 3:
            let hasSA = CommandLookup.hasServiceActions(opcode)
            if options == 1 && hasSA { throw SCSIError.invalidCDB(byte: 2, bit: 2) }
            if options == 2 && !hasSA && CommandLookup.isKnown(opcode) { throw SCSIError.invalidCDB(byte: 2, bit: 2) }
            let match = CommandTable.commands.first {
                $0.isAvailable(on: self) && $0.opcode == opcode
                    && (options == 1 || UInt16($0.serviceAction ?? 0) == sa || (options == 3 && !hasSA))
            }
            w.u8(0)
            if let m = match {
                w.u8((rctd ? 0x80 : 0) | 0x03) // SUPPORT 011b: supported as the standard says
                w.u16(UInt16(m.length))
                w.append(m.usage)
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

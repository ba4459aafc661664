extension LogicalUnit {
    /// INQUIRY (SPC-4 6.6): standard data or a VPD page.
    func inquiry(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let alloc = Int(cdb.u16(3))
        if cdb[1] & 0x02 != 0 { throw SCSIError.invalidCDB(byte: 1, bit: 1) } // CMDDT is obsolete
        if cdb[1] & 0x01 == 0 {
            if cdb[2] != 0 { throw SCSIError.invalidCDB(byte: 2) }
            return answer(standardInquiry(), allocationLength: alloc, ctx)
        }
        let page: [UInt8]
        switch cdb[2] {
        case VPDPage.supportedPages: page = vpdPage(VPDPage.supportedPages, VPDPage.all)
        case VPDPage.unitSerialNumber: page = vpdPage(VPDPage.unitSerialNumber, Array(configuration.serialNumber.utf8))
        case VPDPage.deviceIdentification: page = deviceIdentification(ctx)
        case VPDPage.thirdPartyCopy: page = thirdPartyCopy()
        case VPDPage.blockLimits: page = blockLimits()
        case VPDPage.blockDeviceCharacteristics:
            var p = [UInt8](repeating: 0, count: 0x3C)
            p[1] = 0x01 // MEDIUM ROTATION RATE 1: non-rotating medium
            // WABEREQ 01b: a block erased LBA reads GOOD (as zeros) where BLOCK ERASE exists
            // (thin LUs); WACEREQ 00b: no CRYPTOGRAPHIC ERASE (SBC-4 6.6.2).
            if isThin { p[3] = 0x40 }
            page = vpdPage(VPDPage.blockDeviceCharacteristics, p)
        case VPDPage.logicalBlockProvisioning: page = logicalBlockProvisioning()
        default: throw SCSIError.invalidCDB(byte: 2)
        }
        return answer(page, allocationLength: alloc, ctx)
    }

    func vpdPage(_ code: UInt8, _ body: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 4)
        w.u8(0) // peripheral qualifier 0, direct access block device
        w.u8(code)
        w.u16(UInt16(body.count))
        w.append(body)
        return w.bytes
    }

    /// Standard INQUIRY data, 96 bytes with version descriptors.
    func standardInquiry() -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        w.u8(0x00)          // connected, direct access block device
        w.u8(0x00)          // not removable
        w.u8(0x06)          // VERSION: SPC-4
        w.u8(0x12)          // HISUP, response data format 2
        w.u8(96 - 5)        // ADDITIONAL LENGTH
        w.u8(0x18)          // TPGS 01b: implicit ALUA; 3PC: EXTENDED COPY
        w.u8(0x00)
        w.u8(0x02)          // CMDQUE
        w.ascii(configuration.vendor, width: 8)
        w.ascii(configuration.product, width: 16)
        w.ascii(configuration.revision, width: 4)
        w.zeros(20)         // vendor specific
        w.zeros(2)
        // Version descriptors (SPC-4 table 144): SAM-5, SPC-4, SBC-3, iSCSI.
        for v: UInt16 in [0x00A0, 0x0460, 0x04C0, 0x0960] { w.u16(v) }
        w.zeros(8)
        w.zeros(22)
        return w.bytes
    }

    /// NAA 6 (IEEE registered extended) designator from the configured unique ID.
    var naaIdentifier: [UInt8] {
        // NAA(4) | IEEE OUI(24) | vendor specific ID(36) | vendor specific extension(64).
        let oui = UInt64(IdentifierConstants.ieeeOUI)
        let vsid = (configuration.uniqueID >> 28) & 0xF_FFFF_FFFF
        let high = (6 << 60) | (oui << 36) | vsid
        var w = ByteWriter(capacity: 16)
        w.u64(high)
        w.u64(configuration.uniqueID)
        return w.bytes
    }

    /// Device Identification VPD page (SPC-4 7.8.6).
    func deviceIdentification(_ ctx: CommandContext) -> [UInt8] {
        var w = ByteWriter(capacity: 160)
        // NAA, binary, associated with the LU.
        w.u8(0x01); w.u8(0x03); w.u8(0); w.u8(16)
        w.append(naaIdentifier)
        // T10 vendor ID, ASCII: vendor (8) + product + serial.
        let t10 = Array(configuration.vendor.utf8.prefix(8)) + Array(repeating: 0x20, count: max(0, 8 - configuration.vendor.utf8.count))
            + Array(configuration.serialNumber.utf8)
        w.u8(0x02); w.u8(0x01); w.u8(0); w.u8(UInt8(min(t10.count, 255)))
        w.append(Array(t10.prefix(255)))
        let tpgt = ctx.identity.targetPortalGroupTag
        // Target port designators carry the transport's protocol identifier (PIV 1) when the
        // fabric names it (SPC-4 7.7.3.2: byte 0 protocol | code set, byte 1 PIV | association | type).
        let transport = ctx.target.transport
        let protocolBits = (transport.protocolIdentifier ?? 0) << 4
        let piv: UInt8 = transport.protocolIdentifier == nil ? 0 : 0x80
        // Relative target port, target port association.
        w.u8(protocolBits | 0x01); w.u8(piv | 0x14); w.u8(0); w.u8(4); w.u16(0); w.u16(tpgt)
        // Target port group.
        w.u8(protocolBits | 0x01); w.u8(piv | 0x15); w.u8(0); w.u8(4); w.u16(0); w.u16(tpgt)
        // SCSI name string of the target port, UTF-8, NUL padded to 4n.
        if let name = transport.targetPortName(target: ctx.target.name, portGroup: tpgt) {
            var port = Array(name.utf8)
            port.append(0)
            while port.count % 4 != 0 { port.append(0) }
            if port.count > 252 { port = Array(port.prefix(252)) }
            w.u8(protocolBits | 0x03); w.u8(piv | 0x18); w.u8(0); w.u8(UInt8(port.count))
            w.append(port)
        }
        return vpdPage(VPDPage.deviceIdentification, w.bytes)
    }

    /// Block Limits VPD page (SBC-3 6.5.3).
    func blockLimits() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(0)                                       // WSNZ 0: WRITE SAME with 0 blocks means to the end
        w.u8(EngineLimits.maxCompareAndWriteBlocks)
        let perPhysical = UInt32(1) << UInt32(physicalExponent)
        w.u16(UInt16(perPhysical))                    // optimal transfer length granularity
        w.u32(EngineLimits.maxTransferBlocks)
        w.u32(EngineLimits.optimalTransferBlocks)
        w.u32(EngineLimits.maxTransferBlocks)         // maximum prefetch length
        if isThin {
            w.u32(EngineLimits.maxUnmapLBACount)
            w.u32(EngineLimits.maxUnmapDescriptors)
            w.u32(perPhysical)                        // optimal unmap granularity: a physical block
            w.u32(0)                                  // UGAVALID 0
        } else {
            w.zeros(16)
        }
        w.u64(EngineLimits.maxWriteSameBlocks)
        w.u32(atomicTransferBlocks)                   // maximum atomic transfer length (0: none)
        w.u32(0)                                      // atomic alignment: any LBA
        w.u32(0)                                      // atomic transfer length granularity: any
        w.u32(0)                                      // no atomic boundaries
        w.u32(0)
        return vpdPage(VPDPage.blockLimits, w.bytes)
    }

    /// Logical Block Provisioning VPD page (SBC-3 6.5.4).
    func logicalBlockProvisioning() -> [UInt8] {
        var body: [UInt8] = [0, 0, 0, 0]
        if isThin {
            body[1] = 0x80 | 0x40 | 0x20 | 0x04 // LBPU, LBPWS, LBPWS10, LBPRZ (holes read as zeros)
            body[2] = 0x02                      // provisioning type: thin
        }
        return vpdPage(VPDPage.logicalBlockProvisioning, body)
    }

    /// REQUEST SENSE (SPC-4 6.39): a pending unit attention, else the sanitize in progress
    /// (with its progress) or failed, else NO SENSE; always GOOD. DESC asks for descriptor format.
    func requestSense(_ ctx: CommandContext) -> SCSICommandResult {
        let alloc = Int(ctx.cdb[4])
        let format: SenseData.Format = ctx.cdb[1] & 0x01 != 0 ? .descriptor : .fixed
        let (pending, sanitize) = state.withLock { ($0.unitAttentions.pop(ctx.nexus), LogicalUnit.sanitizeRefusal($0.sanitize)) }
        let sense = (pending.map { SCSIError.unitAttention($0) } ?? sanitize
            ?? SCSIError(key: SenseKey.noSense, asc: .noAdditionalSense)).sense
        return answer(sense.bytes(format), allocationLength: alloc, ctx)
    }

    /// START STOP UNIT (SBC-3 5.25): accepted; a non-removable LU has no medium to eject.
    func startStopUnit(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let start = ctx.cdb[4] & 0x01 != 0
        let powerCondition = ctx.cdb[4] >> 4
        // Stopping the LU stops it for every initiator: not for one its LUN map shows it read-only.
        if powerCondition == 0 && !start && ctx.readOnlyMapping { throw SCSIError.writeProtected }
        if powerCondition == 0 {
            state.withLock { $0.stopped = !start }
        }
        return SCSICommandResult(status: .good)
    }
}

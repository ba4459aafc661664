import Backstores
extension LogicalUnit {
    /// MODE SENSE(6) and MODE SENSE(10) (SPC-4 6.11, 6.12).
    func modeSense(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let ten = cdb[0] == Opcode.modeSense10
        let dbd = cdb[1] & 0x08 != 0
        let llbaa = ten && cdb[1] & 0x10 != 0
        let pcRaw = cdb[2] >> 6
        let code = cdb[2] & 0x3F
        let subpage = cdb[3]
        let alloc = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        guard let pc = PageControl(rawValue: pcRaw) else { throw SCSIError.invalidCDB(byte: 2, bit: 7) }
        let savable = configuration.savedModePages != nil
        if pc == .saved && !savable { throw SCSIError(key: SenseKey.illegalRequest, asc: .savingParametersNotSupported) }
        // Subpage 0xFF with page 0x3F asks for all pages and subpages; we have no subpages.
        if subpage != 0 && !(subpage == 0xFF && code == ModePageCode.allPages) { throw SCSIError.invalidCDB(byte: 3) }
        let mode = state.withLock { pc == .saved ? $0.savedMode : $0.mode }
        var pages: [UInt8] = []
        if code == ModePageCode.allPages {
            for c in ModePages.supported { pages += mode.page(c, control: pc, defaults: defaults, savable: savable) }
        } else if ModePages.supported.contains(code) {
            pages = mode.page(code, control: pc, defaults: defaults, savable: savable)
        } else {
            throw SCSIError.invalidCDB(byte: 2, bit: 5)
        }
        var block: [UInt8] = []
        if !dbd {
            var w = ByteWriter(capacity: 16)
            let count = blockCount
            if llbaa {
                w.u64(count); w.u32(0); w.u32(UInt32(blockSize))
            } else {
                w.u32(count > 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(count)); w.u32(UInt32(blockSize) & 0x00FF_FFFF)
            }
            block = w.bytes
        }
        // Device-specific parameter: WP when write protected, DPOFUA (SBC-3 6.4.1).
        var dsp: UInt8 = 0x10
        if configuration.readOnly || store.isReadOnly || ctx.readOnlyMapping || mode.softwareWriteProtect { dsp |= 0x80 }
        var w = ByteWriter(capacity: 8 + block.count + pages.count)
        if ten {
            w.u16(UInt16(6 + block.count + pages.count))
            w.u8(0); w.u8(dsp); w.u8(llbaa ? 0x01 : 0); w.u8(0)
            w.u16(UInt16(block.count))
        } else {
            w.u8(UInt8(3 + block.count + pages.count))
            w.u8(0); w.u8(dsp); w.u8(UInt8(block.count))
        }
        w.append(block)
        w.append(pages)
        return answer(w.bytes, allocationLength: alloc, ctx)
    }

    /// MODE SELECT(6) and MODE SELECT(10) (SPC-4 6.9, 6.10).
    func modeSelect(_ ctx: CommandContext) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let ten = cdb[0] == Opcode.modeSelect10
        let length = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        if cdb[1] & 0x10 == 0 { throw SCSIError.invalidCDB(byte: 1, bit: 4) } // PF=0: vendor pages
        // Mode pages are the LU's, for every initiator (WCE, SWP, saved pages): not changed by
        // one its LUN map shows it read-only.
        if ctx.readOnlyMapping && length > 0 { throw SCSIError.writeProtected }
        let save = cdb[1] & 0x01 != 0
        let savedPages = configuration.savedModePages
        if save && savedPages == nil { throw SCSIError.invalidCDB(byte: 1, bit: 0) } // SP: nowhere to save
        if length == 0 { return SCSICommandResult(status: .good) }
        if ctx.dataOut.count < length { throw SCSIError.shortDataOut }
        let data = ctx.dataOut.gather(length)
        let headerLength = ten ? 8 : 4
        guard data.count >= headerLength else { throw SCSIError.parameterListLength }
        let bdl = ten ? Int(UInt16(data[6]) << 8 | UInt16(data[7])) : Int(data[3])
        let longLBA = ten && data[4] & 0x01 != 0
        guard data.count >= headerLength + bdl else { throw SCSIError.parameterListLength }
        if bdl != 0 {
            let descLength = longLBA ? 16 : 8
            guard bdl == descLength else { throw SCSIError.invalidParameter(byte: ten ? 6 : 3) }
            // The block length must be ours; the block count may be 0 or ours.
            let lenOffset = headerLength + (longLBA ? 12 : 5)
            let len = longLBA
                ? Int(UInt32(data[lenOffset]) << 24 | UInt32(data[lenOffset + 1]) << 16 | UInt32(data[lenOffset + 2]) << 8 | UInt32(data[lenOffset + 3]))
                : Int(UInt32(data[lenOffset]) << 16 | UInt32(data[lenOffset + 1]) << 8 | UInt32(data[lenOffset + 2]))
            if len != blockSize { throw SCSIError.invalidParameter(byte: lenOffset) }
        }
        let pagesStart = headerLength + bdl
        let pages = Array(data[pagesStart...])
        // Exclusive: no write is running, so every write runs wholly under the old WCE or
        // the new one.
        try ioLock.exclusive { () throws(SCSIError) in
            var next = state.withLock { $0.mode }
            try next.select(pages, base: pagesStart, defaults: defaults)
            // SP: saved (durably) before anything changes; a failed save changes nothing.
            if save, let savedPages {
                do throws(BackstoreError) {
                    try savedPages.save(next.savedBytes(configuredWriteCache: configuration.writeCacheEnabled))
                } catch {
                    throw SCSIError.backstore(.write, errno: error.errno)
                }
                state.withLock { $0.savedMode = next }
            }
            if writeCacheOn.load(ordering: .relaxed) && !next.writeCacheEnabled {
                // Writes acknowledged under the cache may still be only in the page cache, and
                // the initiator sends no flush once WCE is off: make them durable first.
                do throws(BackstoreError) { try store.flush() } catch { throw SCSIError.backstore(.write, errno: error.errno) }
            }
            writeCacheOn.store(next.writeCacheEnabled, ordering: .relaxed)
            descriptorSense.store(next.descriptorSense, ordering: .relaxed)
            state.withLock { s in
                if s.mode != next {
                    // Other nexuses learn about it by MODE PARAMETERS CHANGED (SPC-4 6.9).
                    s.unitAttentions.queueForAll(.modeParametersChanged, except: ctx.nexus)
                    s.mode = next
                }
            }
        }
        return SCSICommandResult(status: .good, transferLength: length)
    }

    /// Installs the mode pages saved before the daemon stopped (SPC-4 6.9): the LU starts with them.
    func restoreModePages(from saved: any SavedState) throws(SCSITarget.ConfigurationError) {
        let bytes: [UInt8]?
        do { bytes = try saved.load() } catch { throw .modePagesUnreadable("\(error)") }
        guard let bytes else { return }
        guard let pages = ModePages(saved: bytes, configuredWriteCache: configuration.writeCacheEnabled) else {
            throw .modePagesUnreadable("the saved mode pages are damaged")
        }
        state.withLock { s in
            s.mode = pages
            s.savedMode = pages
        }
        writeCacheOn.store(pages.writeCacheEnabled, ordering: .relaxed)
        descriptorSense.store(pages.descriptorSense, ordering: .relaxed)
    }
}

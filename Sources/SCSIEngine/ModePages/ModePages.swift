/// Page control field of MODE SENSE (SPC-4 6.11.1 table 101).
enum PageControl: UInt8 {
    case current = 0, changeable = 1, defaults = 2, saved = 3
}

/// The mode parameters one LU keeps (SPC-4 7.5, SBC-3 6.4). Only the bits we honour are
/// changeable: WCE (caching), D_SENSE and SWP (control).
struct ModePages: Sendable, Equatable {
    /// Caching page WCE: false = every write is durable before GOOD.
    var writeCacheEnabled: Bool
    /// Control page SWP: software write protect, writes answer DATA PROTECT.
    var softwareWriteProtect = false
    /// Control page D_SENSE: CHECK CONDITION carries descriptor-format sense (SPC-4 7.5.7).
    var descriptorSense = false

    static let supported: [UInt8] = [ModePageCode.caching, ModePageCode.control, ModePageCode.informationalExceptions]

    /// Page bytes (header included) for `code` as seen through `pc` (for `.saved`, call it on
    /// the saved values); `savable` sets PS on the pages MODE SELECT can save.
    func page(_ code: UInt8, control pc: PageControl, defaults: ModePages, savable: Bool = false) -> [UInt8] {
        var p = pageBody(code, control: pc, defaults: defaults)
        if savable && !p.isEmpty && code != ModePageCode.informationalExceptions { p[0] |= 0x80 }
        return p
    }

    private func pageBody(_ code: UInt8, control pc: PageControl, defaults: ModePages) -> [UInt8] {
        switch code {
        case ModePageCode.caching:
            // SBC-3 6.4.5: 20 bytes.
            var p = [UInt8](repeating: 0, count: 20)
            p[0] = ModePageCode.caching
            p[1] = 0x12
            switch pc {
            case .changeable: p[2] = 0x04
            case .defaults: p[2] = defaults.writeCacheEnabled ? 0x04 : 0
            case .current, .saved: p[2] = writeCacheEnabled ? 0x04 : 0
            }
            return p
        case ModePageCode.control:
            // SPC-4 7.5.7: 12 bytes. QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering),
            // TAS set (aborted tasks of other nexuses get TASK ABORTED), busy timeout unlimited.
            var p = [UInt8](repeating: 0, count: 12)
            p[0] = ModePageCode.control
            p[1] = 0x0A
            switch pc {
            case .changeable:
                p[2] = 0x04; p[4] = 0x08
            case .defaults:
                p[3] = 0x10; p[5] = 0x40; p[8] = 0xFF; p[9] = 0xFF
                p[2] = defaults.descriptorSense ? 0x04 : 0
                p[4] = defaults.softwareWriteProtect ? 0x08 : 0
            case .current, .saved:
                p[3] = 0x10; p[5] = 0x40; p[8] = 0xFF; p[9] = 0xFF
                p[2] = descriptorSense ? 0x04 : 0
                p[4] = softwareWriteProtect ? 0x08 : 0
            }
            return p
        case ModePageCode.informationalExceptions:
            // SPC-4 7.5.11: 12 bytes; DEXCPT set: we report no failure predictions.
            var p = [UInt8](repeating: 0, count: 12)
            p[0] = ModePageCode.informationalExceptions
            p[1] = 0x0A
            if pc != .changeable { p[2] = 0x08 }
            return p
        default:
            return []
        }
    }

    /// Validates and applies the pages of a MODE SELECT parameter list (after header and
    /// block descriptors); `base` is the offset of `pages` in the parameter list, for
    /// field pointers. Nothing is applied unless every page is valid.
    mutating func select(_ pages: [UInt8], base: Int, defaults: ModePages) throws(SCSIError) {
        var next = self
        var i = 0
        while i < pages.count {
            if pages.count - i < 2 { throw SCSIError.parameterListLength }
            let code = pages[i] & 0x3F
            if pages[i] & 0x40 != 0 { throw SCSIError.invalidParameter(byte: base + i, bit: 6) } // SPF: no subpages
            let len = Int(pages[i + 1])
            guard ModePages.supported.contains(code) else { throw SCSIError.invalidParameter(byte: base + i, bit: 5) }
            let current = self.page(code, control: .current, defaults: defaults)
            if len != current.count - 2 { throw SCSIError.invalidParameter(byte: base + i + 1) }
            if pages.count - i < len + 2 { throw SCSIError.parameterListLength }
            let changeable = self.page(code, control: .changeable, defaults: defaults)
            for j in 2 ..< current.count {
                let v = pages[i + j]
                let diff = (v ^ current[j]) & ~changeable[j]
                if diff != 0 {
                    let bit = 7 - diff.leadingZeroBitCount
                    throw SCSIError.invalidParameter(byte: base + i + j, bit: bit)
                }
            }
            switch code {
            case ModePageCode.caching: next.writeCacheEnabled = pages[i + 2] & 0x04 != 0
            case ModePageCode.control:
                next.descriptorSense = pages[i + 2] & 0x04 != 0
                next.softwareWriteProtect = pages[i + 4] & 0x08 != 0
            default: break
            }
            i += len + 2
        }
        self = next
    }

    // MARK: Saved pages (SPC-4 6.9 SP): version 1, the WCE the configuration asked for when
    // they were saved, then WCE, D_SENSE, SWP.

    func savedBytes(configuredWriteCache: Bool) -> [UInt8] {
        [1, configuredWriteCache ? 1 : 0, writeCacheEnabled ? 1 : 0, descriptorSense ? 1 : 0, softwareWriteProtect ? 1 : 0]
    }
}

extension ModePages {
    /// The saved pages; WCE only while the configuration still asks for what it asked for when
    /// they were saved (an admin's later change of the LU's write cache wins).
    init?(saved b: [UInt8], configuredWriteCache: Bool) {
        guard b.count == 5, b[0] == 1, b[1...].allSatisfy({ $0 <= 1 }) else { return nil }
        self.init(writeCacheEnabled: (b[1] == 1) == configuredWriteCache ? b[2] == 1 : configuredWriteCache)
        descriptorSense = b[3] == 1
        softwareWriteProtect = b[4] == 1
    }
}

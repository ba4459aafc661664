/// Where an INVALID FIELD error points (SPC-4 4.5.2.4.2 field pointer sense-key specific data).
public struct FieldPointer: Equatable, Sendable {
    /// True: the field is in the CDB (C/D = 1); false: in the parameter list.
    public var inCDB: Bool
    public var byte: UInt16
    /// Bit number of the most significant bit of the field, nil when the whole byte is meant.
    public var bit: UInt8?

    public init(inCDB: Bool, byte: UInt16, bit: UInt8? = nil) {
        self.inCDB = inCDB
        self.byte = byte
        self.bit = bit
    }

    /// The three SENSE KEY SPECIFIC bytes, SKSV set.
    var bytes: [UInt8] {
        var b15: UInt8 = 0x80 // SKSV
        if inCDB { b15 |= 0x40 }
        if let bit { b15 |= 0x08 | (bit & 0x07) } // BPV + bit pointer
        return [b15, UInt8(truncatingIfNeeded: byte >> 8), UInt8(truncatingIfNeeded: byte)]
    }
}

/// Sense data (SPC-4 4.5): the one builder of sense bytes for the engine, the fabrics and
/// the TCMU handler, in fixed or descriptor format.
public struct SenseData: Equatable, Sendable {
    /// Fixed (response code 70h, 18 bytes) or descriptor (72h) format (SPC-4 4.5.2, 4.5.3);
    /// the control mode page's D_SENSE chooses.
    public enum Format: Sendable { case fixed, descriptor }

    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8
    /// INFORMATION field; sets VALID when present.
    public var information: UInt64?
    public var fieldPointer: FieldPointer?
    /// PROGRESS INDICATION (SPC-4 4.5.2.4.4), 0...65535 of 65536, for NOT READY answers of an
    /// operation in progress (sanitize).
    public var progress: UInt16?

    public init(key: UInt8, asc: UInt8, ascq: UInt8, information: UInt64? = nil, fieldPointer: FieldPointer? = nil,
                progress: UInt16? = nil) {
        self.key = key
        self.asc = asc
        self.ascq = ascq
        self.information = information
        self.fieldPointer = fieldPointer
        self.progress = progress
    }

    private var senseKeySpecific: [UInt8]? {
        if let fieldPointer { return fieldPointer.bytes }
        if let progress { return [0x80, UInt8(progress >> 8), UInt8(truncatingIfNeeded: progress)] }
        return nil
    }

    public func bytes(_ format: Format = .fixed) -> [UInt8] {
        switch format {
        case .fixed:
            var s = [UInt8](repeating: 0, count: 18)
            s[0] = 0x70
            if let info = information {
                s[0] |= 0x80 // VALID: the INFORMATION field holds 4 bytes
                for i in 0 ..< 4 { s[3 + i] = UInt8(truncatingIfNeeded: info >> (24 - 8 * UInt64(i))) }
            }
            s[2] = key & 0x0F
            s[7] = 10 // additional sense length: bytes 8...17
            s[12] = asc
            s[13] = ascq
            if let sks = senseKeySpecific { s[15] = sks[0]; s[16] = sks[1]; s[17] = sks[2] }
            return s
        case .descriptor:
            var s: [UInt8] = [0x72, key & 0x0F, asc, ascq, 0, 0, 0, 0]
            if let info = information {
                // Information descriptor (SPC-4 4.5.2.2): type 00h, VALID, 8-byte INFORMATION.
                s += [0x00, 0x0A, 0x80, 0]
                for i in 0 ..< 8 { s.append(UInt8(truncatingIfNeeded: info >> (56 - 8 * UInt64(i)))) }
            }
            if let sks = senseKeySpecific {
                // Sense key specific descriptor (SPC-4 4.5.2.4): type 02h.
                s += [0x02, 0x06, 0, 0] + sks + [0]
            }
            s[7] = UInt8(s.count - 8)
            return s
        }
    }

    /// Reads fixed or descriptor sense bytes back (to re-emit them in the other format).
    public init?(parsing s: [UInt8]) {
        guard let code = s.first else { return nil }
        switch code & 0x7F {
        case 0x70, 0x71:
            guard s.count >= 14 else { return nil }
            self.init(key: s[2] & 0x0F, asc: s[12], ascq: s[13])
            if code & 0x80 != 0 { information = UInt64(s[3]) << 24 | UInt64(s[4]) << 16 | UInt64(s[5]) << 8 | UInt64(s[6]) }
            if s.count >= 18, s[15] & 0x80 != 0 { setSenseKeySpecific(s[15], s[16], s[17]) }
        case 0x72, 0x73:
            guard s.count >= 8 else { return nil }
            self.init(key: s[1] & 0x0F, asc: s[2], ascq: s[3])
            var at = 8
            while at + 2 <= s.count {
                let type = s[at], length = Int(s[at + 1])
                guard at + 2 + length <= s.count else { break }
                if type == 0x00, length == 0x0A, s[at + 2] & 0x80 != 0 {
                    information = (0 ..< 8).reduce(UInt64(0)) { $0 << 8 | UInt64(s[at + 4 + $1]) }
                }
                if type == 0x02, length == 0x06 { setSenseKeySpecific(s[at + 4], s[at + 5], s[at + 6]) }
                at += 2 + length
            }
        default:
            return nil
        }
    }

    private mutating func setSenseKeySpecific(_ a: UInt8, _ b: UInt8, _ c: UInt8) {
        if key == SenseKey.illegalRequest {
            fieldPointer = FieldPointer(inCDB: a & 0x40 != 0, byte: UInt16(b) << 8 | UInt16(c), bit: a & 0x08 != 0 ? a & 0x07 : nil)
        } else {
            progress = UInt16(b) << 8 | UInt16(c)
        }
    }
}

/// A failed command: the status and, for CHECK CONDITION, what goes into the sense data.
struct SCSIError: Error, Equatable, Sendable {
    var status: SCSIStatus = .checkCondition
    var key: UInt8
    var asc: ASC
    /// INFORMATION field; sets VALID when present.
    var information: UInt32?
    var fieldPointer: FieldPointer?
    var progress: UInt16?

    init(key: UInt8, asc: ASC, information: UInt32? = nil, fieldPointer: FieldPointer? = nil, progress: UInt16? = nil) {
        self.key = key
        self.asc = asc
        self.information = information
        self.fieldPointer = fieldPointer
        self.progress = progress
    }

    static let reservationConflict: SCSIError = {
        var e = SCSIError(key: 0, asc: .noAdditionalSense)
        e.status = .reservationConflict
        return e
    }()

    static func illegal(_ asc: ASC) -> SCSIError { SCSIError(key: SenseKey.illegalRequest, asc: asc) }

    /// Not an answer: a non-blocking attempt found the data outside the page cache; the
    /// command is run again on an I/O thread. Never leaves the engine.
    static let wouldBlock: SCSIError = {
        var e = SCSIError(key: 0, asc: .noAdditionalSense)
        e.status = .busy
        return e
    }()

    /// Not an answer: the command went to a store that completes it by callback, which
    /// gives the answer. Never leaves the engine.
    static let submitted: SCSIError = {
        var e = SCSIError(key: 0, asc: .noAdditionalSense)
        e.status = .conditionMet
        return e
    }()

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit` when the field is narrower than a byte).
    static func invalidCDB(byte: Int, bit: Int? = nil) -> SCSIError {
        SCSIError(key: SenseKey.illegalRequest, asc: .invalidFieldInCDB,
                  fieldPointer: FieldPointer(inCDB: true, byte: UInt16(clamping: byte), bit: bit.map { UInt8($0) }))
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte` of the data-out.
    static func invalidParameter(byte: Int, bit: Int? = nil) -> SCSIError {
        SCSIError(key: SenseKey.illegalRequest, asc: .invalidFieldInParameterList,
                  fieldPointer: FieldPointer(inCDB: false, byte: UInt16(clamping: byte), bit: bit.map { UInt8($0) }))
    }

    /// MISCOMPARE DURING VERIFY OPERATION; INFORMATION = offset of the first differing byte (SBC-3 5.2).
    static func miscompare(at offset: Int) -> SCSIError {
        SCSIError(key: SenseKey.miscompare, asc: .miscompareDuringVerify, information: UInt32(truncatingIfNeeded: offset))
    }

    static let lbaOutOfRange = SCSIError(key: SenseKey.illegalRequest, asc: .lbaOutOfRange)
    static let invalidOpcode = SCSIError(key: SenseKey.illegalRequest, asc: .invalidOperationCode,
                                         fieldPointer: FieldPointer(inCDB: true, byte: 0, bit: nil))
    static let parameterListLength = SCSIError(key: SenseKey.illegalRequest, asc: .parameterListLengthError)
    static let writeProtected = SCSIError(key: SenseKey.dataProtect, asc: .writeProtected)
    /// Data-out shorter than the CDB needs: refuse rather than write what never arrived.
    static let shortDataOut = SCSIError(key: SenseKey.illegalRequest, asc: .invalidFieldInInformationUnit)
    static let logicalUnitNotSupported = SCSIError(key: SenseKey.illegalRequest, asc: .logicalUnitNotSupported)

    static func unitAttention(_ asc: ASC) -> SCSIError { SCSIError(key: SenseKey.unitAttention, asc: asc) }

    /// A backstore failure: ENOSPC becomes the thin-provisioning write protect; a store that
    /// lost its storage for a while (a network store's timeout, a fenced or reconnecting
    /// client) NOT READY, becoming ready, which initiators retry; the rest medium errors.
    static func backstore(_ error: BackstoreErrorKind, errno: Int32) -> SCSIError {
        if errno == 28 /* ENOSPC */ { return SCSIError(key: SenseKey.dataProtect, asc: .spaceAllocationFailedWriteProtect) }
        // ETIMEDOUT, ESHUTDOWN (blocklisted), ENOTCONN, EAGAIN, ECONNRESET.
        if [110, 108, 107, 11, 104].contains(errno) { return SCSIError(key: SenseKey.notReady, asc: .becomingReady) }
        switch error {
        case .read: return SCSIError(key: SenseKey.mediumError, asc: .unrecoveredReadError)
        case .write: return SCSIError(key: SenseKey.mediumError, asc: .writeError)
        }
    }

    var sense: SenseData {
        SenseData(key: key, asc: asc.code, ascq: asc.qualifier, information: information.map(UInt64.init),
                  fieldPointer: fieldPointer, progress: progress)
    }

    /// Fixed-format sense data (SPC-4 4.5.3, response code 0x70, 18 bytes).
    var senseBytes: [UInt8] { sense.bytes(.fixed) }

    var result: SCSICommandResult {
        if status == .checkCondition {
            return SCSICommandResult(status: status, sense: senseBytes)
        }
        return SCSICommandResult(status: status)
    }
}

enum BackstoreErrorKind { case read, write }

/// Where an INVALID FIELD error points (SPC-4 4.5.2.4.2 field pointer sense-key specific data).
struct FieldPointer: Equatable, Sendable {
    /// True: the field is in the CDB (C/D = 1); false: in the parameter list.
    var inCDB: Bool
    var byte: UInt16
    /// Bit number of the most significant bit of the field, nil when the whole byte is meant.
    var bit: UInt8?
}

/// A failed command: the status and, for CHECK CONDITION, what goes into the sense data.
struct SCSIError: Error, Equatable, Sendable {
    var status: SCSIStatus = .checkCondition
    var key: UInt8
    var asc: ASC
    /// INFORMATION field; sets VALID when present.
    var information: UInt32?
    var fieldPointer: FieldPointer?

    init(key: UInt8, asc: ASC, information: UInt32? = nil, fieldPointer: FieldPointer? = nil) {
        self.key = key
        self.asc = asc
        self.information = information
        self.fieldPointer = fieldPointer
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
                  fieldPointer: FieldPointer(inCDB: true, byte: UInt16(byte), bit: bit.map { UInt8($0) }))
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte` of the data-out.
    static func invalidParameter(byte: Int, bit: Int? = nil) -> SCSIError {
        SCSIError(key: SenseKey.illegalRequest, asc: .invalidFieldInParameterList,
                  fieldPointer: FieldPointer(inCDB: false, byte: UInt16(byte), bit: bit.map { UInt8($0) }))
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

    /// Fixed-format sense data (SPC-4 4.5.3, response code 0x70, 18 bytes).
    var senseBytes: [UInt8] {
        var s = [UInt8](repeating: 0, count: 18)
        s[0] = 0x70
        if let info = information {
            s[0] |= 0x80
            s[3] = UInt8(truncatingIfNeeded: info >> 24)
            s[4] = UInt8(truncatingIfNeeded: info >> 16)
            s[5] = UInt8(truncatingIfNeeded: info >> 8)
            s[6] = UInt8(truncatingIfNeeded: info)
        }
        s[2] = key & 0x0F
        s[7] = 10 // additional sense length: bytes 8...17
        s[12] = asc.code
        s[13] = asc.qualifier
        if let fp = fieldPointer {
            var b15: UInt8 = 0x80 // SKSV
            if fp.inCDB { b15 |= 0x40 }
            if let bit = fp.bit { b15 |= 0x08 | (bit & 0x07) } // BPV + bit pointer
            s[15] = b15
            s[16] = UInt8(truncatingIfNeeded: fp.byte >> 8)
            s[17] = UInt8(truncatingIfNeeded: fp.byte)
        }
        return s
    }

    var result: SCSICommandResult {
        if status == .checkCondition {
            return SCSICommandResult(status: status, sense: senseBytes)
        }
        return SCSICommandResult(status: status)
    }
}

enum BackstoreErrorKind { case read, write }

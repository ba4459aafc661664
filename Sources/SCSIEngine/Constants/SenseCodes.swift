/// Sense keys (SPC-4 4.5.6 table 45).
enum SenseKey {
    static let noSense: UInt8 = 0x0
    static let notReady: UInt8 = 0x2
    static let mediumError: UInt8 = 0x3
    static let hardwareError: UInt8 = 0x4
    static let illegalRequest: UInt8 = 0x5
    static let unitAttention: UInt8 = 0x6
    static let dataProtect: UInt8 = 0x7
    static let copyAborted: UInt8 = 0xA
    static let abortedCommand: UInt8 = 0xB
    static let miscompare: UInt8 = 0xE
}

/// An additional sense code + qualifier pair (SPC-4 4.5.6 table 46 / annex D.2).
struct ASC: Equatable, Sendable {
    let code: UInt8
    let qualifier: UInt8
    init(_ code: UInt8, _ qualifier: UInt8) { self.code = code; self.qualifier = qualifier }

    static let noAdditionalSense = ASC(0x00, 0x00)
    static let writeError = ASC(0x0C, 0x00)
    /// LOGICAL UNIT IS IN PROCESS OF BECOMING READY (SPC-4 Table 48): initiators retry.
    static let becomingReady = ASC(0x04, 0x01)
    static let invalidFieldInInformationUnit = ASC(0x0E, 0x03)
    static let unrecoveredReadError = ASC(0x11, 0x00)
    static let miscompareDuringVerify = ASC(0x1D, 0x00)
    static let parameterListLengthError = ASC(0x1A, 0x00)
    static let invalidOperationCode = ASC(0x20, 0x00)
    static let lbaOutOfRange = ASC(0x21, 0x00)
    static let invalidFieldInCDB = ASC(0x24, 0x00)
    static let logicalUnitNotSupported = ASC(0x25, 0x00)
    static let invalidFieldInParameterList = ASC(0x26, 0x00)
    static let invalidReleaseOfPersistentReservation = ASC(0x26, 0x04)
    static let writeProtected = ASC(0x27, 0x00)
    static let softwareWriteProtected = ASC(0x27, 0x02)
    static let spaceAllocationFailedWriteProtect = ASC(0x27, 0x07)
    static let powerOnOccurred = ASC(0x29, 0x00)
    static let busDeviceResetOccurred = ASC(0x29, 0x03)
    static let iTNexusLossOccurred = ASC(0x29, 0x07)
    static let modeParametersChanged = ASC(0x2A, 0x01)
    static let reservationsPreempted = ASC(0x2A, 0x03)
    static let reservationsReleased = ASC(0x2A, 0x04)
    static let registrationsPreempted = ASC(0x2A, 0x05)
    static let capacityDataHasChanged = ASC(0x2A, 0x09)
    static let savingParametersNotSupported = ASC(0x39, 0x00)
    static let reportedLunsDataHasChanged = ASC(0x3F, 0x0E)
    static let insufficientRegistrationResources = ASC(0x55, 0x04)
}

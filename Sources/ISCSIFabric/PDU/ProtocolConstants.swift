// iSCSI wire constants, each with its RFC 7143 section.

/// Opcodes (RFC 7143 §11.2.1.2).
public enum Opcode: UInt8, Sendable {
    // Initiator → target
    case nopOut = 0x00
    case scsiCommand = 0x01
    case taskManagementRequest = 0x02
    case loginRequest = 0x03
    case textRequest = 0x04
    case dataOut = 0x05
    case logoutRequest = 0x06
    case snackRequest = 0x10
    // Target → initiator
    case nopIn = 0x20
    case scsiResponse = 0x21
    case taskManagementResponse = 0x22
    case loginResponse = 0x23
    case textResponse = 0x24
    case dataIn = 0x25
    case logoutResponse = 0x26
    case readyToTransfer = 0x31
    case asyncMessage = 0x32
    case reject = 0x3F
}

enum WireConstants {
    /// Basic Header Segment length (§11.2.1).
    static let basicHeaderLength = 48
    /// Digest length, CRC32C (§11.2.3, §13.1).
    static let digestLength = 4
    /// "Reserved" tag value (§11.2.1.7: 0xffffffff is reserved for ITT/TTT).
    static let reservedTag: UInt32 = 0xFFFF_FFFF
    /// Largest DataSegmentLength the RFC allows (§13.12: 2^24 - 1).
    static let maxDataSegmentLength = (1 << 24) - 1
}

/// Reject reasons (§11.17.1).
public enum RejectReason: UInt8, Sendable {
    case dataDigestError = 0x02
    case snackReject = 0x03
    case protocolError = 0x04
    case commandNotSupported = 0x05
    case immediateCommandReject = 0x06
    case taskInProgress = 0x07
    case invalidDataAck = 0x08
    case invalidPDUField = 0x09
    case outOfResources = 0x0A
    case negotiationReset = 0x0B
    case waitingForLogout = 0x0C
}

/// Task management function codes (§11.5.1).
enum TaskManagementCode: UInt8 {
    case abortTask = 1, abortTaskSet = 2, clearACA = 3, clearTaskSet = 4
    case logicalUnitReset = 5, targetWarmReset = 6, targetColdReset = 7, taskReassign = 8
}

/// Task management responses (§11.6.1).
enum TaskManagementResponseCode: UInt8 {
    case functionComplete = 0
    case taskDoesNotExist = 1
    case lunDoesNotExist = 2
    case taskStillAllegiant = 3
    case reassignmentNotSupported = 4
    case functionNotSupported = 5
    case authorizationFailed = 6
    case functionRejected = 255
}

/// Logout reason codes (§11.14.1) and responses (§11.15.1).
enum LogoutReason: UInt8 {
    case closeSession = 0, closeConnection = 1, removeConnectionForRecovery = 2
}

enum LogoutResponseCode: UInt8 {
    case closedSuccessfully = 0, cidNotFound = 1, recoveryNotSupported = 2, cleanupFailed = 3
}

/// Asynchronous events (§11.9.1).
enum AsyncEvent: UInt8 {
    case scsiAsyncEvent = 0
    case logoutRequested = 1
    case dropConnection = 2
    case dropAllConnections = 3
    case negotiationRequest = 4
}

/// SCSI Response "Response" field (§11.4.3).
enum SCSIServiceResponse: UInt8 {
    case commandCompleted = 0x00
    case targetFailure = 0x01
}

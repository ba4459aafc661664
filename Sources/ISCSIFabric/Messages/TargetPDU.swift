import NIOCore
import SCSIEngine

/// StatSN, ExpCmdSN, MaxCmdSN as a target PDU carries them (§11.2.1.1). Some PDUs carry the
/// current StatSN without consuming it (R2T, unsolicited NOP-In, non-final Data-In).
struct SequenceNumbers: Sendable, Equatable {
    var statSN: UInt32
    var expCmdSN: UInt32
    var maxCmdSN: UInt32
}

/// A PDU the target sends, as fields; TargetPDUEncoder lays them out (§11).
enum TargetPDU: Sendable {
    case nopIn(NOPIn)
    case scsiResponse(SCSIResponse)
    case taskManagementResponse(TaskManagementResponse)
    case loginResponse(LoginResponse, SequenceNumbers)
    case textResponse(TextResponse)
    case dataIn(DataIn)
    case logoutResponse(LogoutResponse)
    case readyToTransfer(ReadyToTransfer)
    case asyncLogoutRequest(seconds: UInt16, SequenceNumbers)
    case reject(Reject)

    struct NOPIn: Sendable {
        var lunField: UInt64 = 0
        var initiatorTaskTag: UInt32
        var targetTransferTag: UInt32
        var numbers: SequenceNumbers
        var data: ByteBuffer?
    }

    struct SCSIResponse: Sendable {
        var initiatorTaskTag: UInt32
        var response: SCSIServiceResponse = .commandCompleted
        var status: SCSIStatus
        /// U (0x02) or O (0x04) residual flags, §11.4.5.
        var residualFlags: UInt8
        var residualCount: UInt32
        /// Data-In PDUs (or R2Ts) sent for the command (ExpDataSN, §11.4.8).
        var expDataSN: UInt32
        var sense: [UInt8]
        var numbers: SequenceNumbers
    }

    struct TaskManagementResponse: Sendable {
        var initiatorTaskTag: UInt32
        var response: TaskManagementResponseCode
        var numbers: SequenceNumbers
    }

    struct TextResponse: Sendable {
        var final: Bool
        var lunField: UInt64
        var initiatorTaskTag: UInt32
        var targetTransferTag: UInt32
        var numbers: SequenceNumbers
        var data: ByteBuffer
    }

    struct DataIn: Sendable {
        var final: Bool
        var lunField: UInt64
        var initiatorTaskTag: UInt32
        var dataSN: UInt32
        var bufferOffset: UInt32
        /// Status collapsed into the last Data-In (S bit, §11.7.4) with its residual.
        var status: (status: SCSIStatus, residualFlags: UInt8, residualCount: UInt32)?
        var numbers: SequenceNumbers
        var data: ByteBuffer
    }

    struct LogoutResponse: Sendable {
        var initiatorTaskTag: UInt32
        var response: LogoutResponseCode
        var numbers: SequenceNumbers
    }

    struct ReadyToTransfer: Sendable {
        var lunField: UInt64
        var initiatorTaskTag: UInt32
        var targetTransferTag: UInt32
        var r2tSN: UInt32
        var bufferOffset: UInt32
        var desiredLength: UInt32
        var numbers: SequenceNumbers
    }

    struct Reject: Sendable {
        var reason: RejectReason
        var numbers: SequenceNumbers
        /// The rejected PDU's BHS (§11.17.2: the data segment).
        var header: ByteBuffer
    }
}

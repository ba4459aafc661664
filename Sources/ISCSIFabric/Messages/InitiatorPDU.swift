import NIOCore

/// A PDU from the initiator, decoded once and validated once: nothing downstream of this
/// reads a byte offset (RFC 7143 §11). Framing (lengths, digests) happened in PDUDecoder.
enum InitiatorPDU: Sendable {
    case nopOut(NOPOutPDU)
    case scsiCommand(SCSICommandPDU)
    case taskManagement(TaskManagementPDU)
    case login(LoginRequest)
    case text(TextRequestPDU)
    case dataOut(DataOutPDU)
    case logout(LogoutRequestPDU)
    case snack(SNACKRequestPDU)

    /// Why a PDU was not decoded; it is answered with a Reject of this reason (§11.17.1).
    struct Invalid: Error {
        var reason: RejectReason
        var detail: String
        /// A command that numbering says was sent (it still takes its CmdSN, so the
        /// initiator's next command is not held forever behind it).
        var numbering: CommandNumbering? = nil
        var header: ByteBuffer? = nil
    }

    /// Decodes the BHS (and AHS) of a framed PDU. Throws for an opcode the target does not
    /// know (Command Not Supported) and for fields no valid initiator sends (Invalid PDU Field).
    init(decoding pdu: PDU) throws(Invalid) {
        guard let opcode = pdu.opcode else {
            throw Invalid(reason: .commandNotSupported, detail: "opcode 0x\(String(pdu.rawOpcode, radix: 16))")
        }
        switch opcode {
        case .nopOut: self = .nopOut(NOPOutPDU(pdu))
        case .scsiCommand: self = .scsiCommand(try SCSICommandPDU(pdu))
        case .taskManagementRequest: self = .taskManagement(TaskManagementPDU(pdu))
        case .loginRequest: self = .login(LoginRequest(pdu))
        case .textRequest: self = .text(TextRequestPDU(pdu))
        case .dataOut: self = .dataOut(DataOutPDU(pdu))
        case .logoutRequest: self = .logout(LogoutRequestPDU(pdu))
        case .snackRequest: self = .snack(SNACKRequestPDU(pdu))
        default:
            // Target opcodes sent by an initiator.
            throw Invalid(reason: .commandNotSupported, detail: "target opcode \(opcode)")
        }
    }
}

/// What every initiator PDU that takes part in command ordering carries (§11.2.1.1, §3.2.2.1).
struct CommandNumbering: Sendable, Equatable {
    var cmdSN: UInt32
    var immediate: Bool
    var expStatSN: UInt32
}

extension LoginRequest {
    /// Login Request (§11.12).
    init(_ pdu: PDU) {
        let flags = pdu.flags
        self.init(transit: flags & 0x80 != 0, continueFlag: flags & 0x40 != 0,
                  currentStage: (flags >> 2) & 0x03, nextStage: flags & 0x03,
                  versionMax: pdu.byte(2), versionMin: pdu.byte(3),
                  isid: pdu.uint64(8) >> 16, tsih: pdu.uint16(14),
                  initiatorTaskTag: pdu.initiatorTaskTag, cid: pdu.uint16(20),
                  cmdSN: pdu.cmdSN, expStatSN: pdu.expStatSN,
                  data: Array(pdu.data.readableBytesView))
    }
}

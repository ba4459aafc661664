import NIOCore

/// Logout Request (§11.14).
struct LogoutRequestPDU: Sendable {
    var numbering: CommandNumbering
    /// nil: a reason code this target does not know.
    var reason: LogoutReason?
    var initiatorTaskTag: UInt32
    var cid: UInt16

    init(_ pdu: PDU) {
        numbering = CommandNumbering(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, expStatSN: pdu.expStatSN)
        reason = LogoutReason(rawValue: pdu.flags & 0x7F)
        initiatorTaskTag = pdu.initiatorTaskTag
        cid = pdu.uint16(20)
    }
}

import NIOCore

/// NOP-Out (§11.18): a ping from the initiator, or the answer to ours.
struct NOPOutPDU: Sendable {
    var numbering: CommandNumbering
    var lunField: UInt64
    var initiatorTaskTag: UInt32
    var targetTransferTag: UInt32
    /// Ping data, echoed in the NOP-In (§11.19).
    var data: ByteBuffer

    init(_ pdu: PDU) {
        numbering = CommandNumbering(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, expStatSN: pdu.expStatSN)
        lunField = pdu.lunField
        initiatorTaskTag = pdu.initiatorTaskTag
        targetTransferTag = pdu.targetTransferTag
        data = pdu.data
    }

    /// ITT 0xffffffff: the answer to a target ping, which takes no answer itself.
    var answersTargetPing: Bool { initiatorTaskTag == WireConstants.reservedTag }
}

import NIOCore

/// Text Request (§11.10).
struct TextRequestPDU: Sendable {
    var numbering: CommandNumbering
    var final: Bool
    var lunField: UInt64
    var initiatorTaskTag: UInt32
    /// Not reserved: asks for the next part of a long answer (§11.10.4).
    var targetTransferTag: UInt32
    var data: ByteBuffer

    init(_ pdu: PDU) {
        numbering = CommandNumbering(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, expStatSN: pdu.expStatSN)
        final = pdu.isFinal
        lunField = pdu.lunField
        initiatorTaskTag = pdu.initiatorTaskTag
        targetTransferTag = pdu.targetTransferTag
        data = pdu.data
    }
}

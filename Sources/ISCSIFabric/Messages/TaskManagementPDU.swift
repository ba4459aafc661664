import NIOCore

/// Task Management Function Request (§11.5).
struct TaskManagementPDU: Sendable {
    var numbering: CommandNumbering
    /// nil: a function code this target does not know (answered Function Rejected).
    var function: TaskManagementCode?
    var lunField: UInt64
    var lun: UInt64 { LUNEncoding.decode(lunField) }
    var initiatorTaskTag: UInt32
    var referencedTaskTag: UInt32
    var refCmdSN: UInt32

    init(_ pdu: PDU) {
        numbering = CommandNumbering(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, expStatSN: pdu.expStatSN)
        function = TaskManagementCode(rawValue: pdu.flags & 0x7F)
        lunField = pdu.lunField
        initiatorTaskTag = pdu.initiatorTaskTag
        referencedTaskTag = pdu.uint32(20)
        refCmdSN = pdu.uint32(32)
    }
}

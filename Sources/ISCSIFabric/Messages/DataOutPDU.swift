import NIOCore

/// SCSI Data-Out (§11.7).
struct DataOutPDU: Sendable {
    var final: Bool
    var initiatorTaskTag: UInt32
    var targetTransferTag: UInt32
    var expStatSN: UInt32
    var dataSN: UInt32
    var bufferOffset: Int
    var data: ByteBuffer

    init(_ pdu: PDU) {
        final = pdu.isFinal
        initiatorTaskTag = pdu.initiatorTaskTag
        targetTransferTag = pdu.targetTransferTag
        expStatSN = pdu.uint32(28)
        dataSN = pdu.uint32(36)
        bufferOffset = Int(pdu.uint32(40))
        data = pdu.data
    }
}

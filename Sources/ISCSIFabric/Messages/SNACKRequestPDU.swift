import NIOCore

/// SNACK Request (§11.16). ErrorRecoveryLevel 0 has no use for it: it is rejected, and the
/// header is kept for the Reject to quote.
struct SNACKRequestPDU: Sendable {
    var header: ByteBuffer

    init(_ pdu: PDU) {
        header = pdu.header
    }
}

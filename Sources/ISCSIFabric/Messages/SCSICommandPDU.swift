import NIOCore
import SCSIEngine

/// SCSI Command (§11.3).
struct SCSICommandPDU: Sendable {
    var numbering: CommandNumbering
    var initiatorTaskTag: UInt32
    var lunField: UInt64
    var lun: UInt64 { LUNEncoding.decode(lunField) }
    /// F: no unsolicited Data-Out follows.
    var final: Bool
    var read: Bool
    var write: Bool
    var attribute: TaskAttribute
    var expectedDataTransferLength: Int
    /// The CDB: 16 bytes of the BHS plus the Extended CDB AHS, if any.
    var cdb: CommandDescriptorBlock
    /// Immediate data.
    var data: ByteBuffer
    /// Bidirectional commands declare their read length in an AHS (§11.3.4).
    var bidirectionalReadLength: UInt32?

    init(_ pdu: PDU) throws(InitiatorPDU.Invalid) {
        let flags = pdu.flags
        numbering = CommandNumbering(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, expStatSN: pdu.expStatSN)
        initiatorTaskTag = pdu.initiatorTaskTag
        lunField = pdu.lunField
        final = flags & 0x80 != 0
        read = flags & 0x40 != 0
        write = flags & 0x20 != 0
        attribute = TaskAttribute(rawValue: flags & 0x07) ?? .simple
        expectedDataTransferLength = Int(pdu.uint32(20))
        data = pdu.data
        var extended: [UInt8]?
        if pdu.additionalHeaders.readableBytes > 0 {
            let segments: [AdditionalHeaderSegment]
            do {
                segments = try AdditionalHeaderSegments.parse(pdu.additionalHeaders)
            } catch {
                throw InitiatorPDU.Invalid(reason: .invalidPDUField, detail: "AHS: \(error)",
                                           numbering: numbering, header: pdu.header)
            }
            for segment in segments {
                switch segment {
                case .extendedCDB(let rest): extended = rest
                case .bidirectionalReadLength(let length): bidirectionalReadLength = length
                }
            }
        }
        cdb = CommandDescriptorBlock(header: pdu.header, extended: extended)
    }
}

/// A CDB as it arrived: the 16 bytes in the BHS (a slice of the receive buffer, no copy) and
/// the rest from an Extended CDB AHS.
struct CommandDescriptorBlock: Sendable {
    private let header: ByteBuffer
    let extended: [UInt8]?

    init(header: ByteBuffer, extended: [UInt8]?) {
        self.header = header
        self.extended = extended
    }

    /// The whole CDB, contiguous.
    func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        guard let extended else {
            return header.withUnsafeReadableBytes { body(UnsafeRawBufferPointer(rebasing: $0[32..<48])) }
        }
        let whole = header.withUnsafeReadableBytes { Array($0[32..<48]) } + extended
        return whole.withUnsafeBytes(body)
    }

    /// The BHS it came in (what a Reject quotes).
    var basicHeader: ByteBuffer { header }
}

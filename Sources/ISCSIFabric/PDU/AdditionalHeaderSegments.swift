import NIOCore

/// One Additional Header Segment of a SCSI Command (RFC 7143 §11.2.2, §11.3.4, §11.3.5).
enum AdditionalHeaderSegment: Equatable, Sendable {
    /// CDB bytes beyond the first 16 (Extended CDB AHS, type 1).
    case extendedCDB([UInt8])
    /// Expected Bidirectional Read Data Length (type 2).
    case bidirectionalReadLength(UInt32)
}

/// Why the AHS area of a PDU could not be decoded; the PDU is rejected (Invalid PDU Field).
enum AdditionalHeaderError: Error, Equatable {
    /// A segment's length runs past TotalAHSLength.
    case truncated
    /// Type 1 with fewer than 2 bytes (reserved byte + at least one CDB byte), or a CDB over 260 bytes.
    case badExtendedCDBLength(Int)
    /// Type 2 whose AHSLength is not 5.
    case badBidirectionalLength(Int)
    /// A reserved AHSType (3–59) or a vendor one (60–63) we do not know.
    case unknownType(UInt8)
    /// The same type twice.
    case duplicate(UInt8)
}

enum AdditionalHeaderSegments {
    /// Longest CDB accepted (SPC-4 4.2.5: variable-length CDBs up to 260 bytes).
    static let maxCDBLength = 260

    /// Decodes every segment of `area` (TotalAHSLength × 4 bytes). Each segment is AHSLength
    /// (2), AHSType (1) and AHSLength bytes (type-specific byte included), padded to four (§11.2.2).
    static func parse(_ area: ByteBuffer) throws(AdditionalHeaderError) -> [AdditionalHeaderSegment] {
        var area = area
        var segments: [AdditionalHeaderSegment] = []
        var seen: Set<UInt8> = []
        while area.readableBytes > 0 {
            guard area.readableBytes >= 4,
                  let length = area.readInteger(as: UInt16.self).map(Int.init),
                  let type = area.readInteger(as: UInt8.self) else { throw .truncated }
            // The segment occupies 3 + AHSLength bytes rounded up to a multiple of four.
            let occupied = ((3 + length + 3) & ~3) - 3
            guard occupied <= area.readableBytes, let body = area.readSlice(length: occupied) else { throw .truncated }
            guard seen.insert(type).inserted else { throw .duplicate(type) }
            switch type {
            case 1:
                // Byte 0 is reserved; the CDB continues from byte 1 (AHSLength = CDB length − 15).
                guard length >= 2, 16 + length - 1 <= maxCDBLength else { throw .badExtendedCDBLength(length) }
                segments.append(.extendedCDB(Array(body.readableBytesView.dropFirst().prefix(length - 1))))
            case 2:
                guard length == 5, let value = body.getInteger(at: body.readerIndex + 1, as: UInt32.self) else {
                    throw .badBidirectionalLength(length)
                }
                segments.append(.bidirectionalReadLength(value))
            default:
                throw .unknownType(type)
            }
        }
        return segments
    }
}

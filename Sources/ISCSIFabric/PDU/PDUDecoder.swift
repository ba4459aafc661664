import NIOCore

/// Why a byte stream could not be framed into PDUs. Framing errors end the connection
/// (RFC 7143 §7.8: at ErrorRecoveryLevel 0 a header digest error is a connection failure).
public enum PDUFramingError: Error, Equatable {
    case headerDigestMismatch
    case dataSegmentTooLong(length: Int, limit: Int)
}

/// Digest state shared by the decoder and the connection: digests start with the first
/// full-feature PDU, after login negotiated them.
public struct DigestSettings: Sendable, Equatable {
    public var header = false
    public var data = false
    public init(header: Bool = false, data: Bool = false) {
        self.header = header
        self.data = data
    }
}

/// A decoded PDU, or one whose data digest failed (the header is sound, so the
/// connection can answer with a Reject, §7.8.1).
public enum InboundPDU: Sendable {
    case pdu(PDU)
    case dataDigestError(PDU)
}

/// A PDU whose data digest did not match, sent up the pipeline as a user event (its header is
/// sound, so the connection answers with a Reject, §7.8.1).
public struct DataDigestError: Sendable {
    public let pdu: PDU
}

/// Frames PDUs out of the TCP byte stream (§11.2): BHS, AHS, header digest, data segment,
/// padding to four bytes, data digest. Each frame goes on as one slice of the receive buffer
/// (a ByteBuffer travels through the pipeline without a box, unlike a PDU of three buffers) and
/// is parsed once, by the handler, with `PDU(frame:headerDigest:)`. A frame whose data digest
/// failed goes as a `DataDigestError` event instead.
public struct PDUDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// Owned by the connection; read on every frame.
    let settings: DigestSettingsBox

    public init(settings: DigestSettingsBox) {
        self.settings = settings
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let digests = settings.digests
        guard let next = try Self.nextFrame(&buffer, digests: digests, maxDataSegmentLength: settings.maxRecvDataSegmentLength) else {
            return .needMoreData
        }
        if next.dataDigestMatches {
            context.fireChannelRead(Self.wrapInboundOut(next.frame))
        } else {
            context.fireUserInboundEventTriggered(DataDigestError(pdu: PDU(frame: next.frame, headerDigest: digests.header)))
        }
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial PDU at EOF is discarded with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Takes one complete PDU off the front of `buffer`, or nil when more bytes are needed.
    static func frame(_ buffer: inout ByteBuffer, digests: DigestSettings, maxDataSegmentLength: Int) throws -> InboundPDU? {
        guard let next = try nextFrame(&buffer, digests: digests, maxDataSegmentLength: maxDataSegmentLength) else { return nil }
        let pdu = PDU(frame: next.frame, headerDigest: digests.header)
        return next.dataDigestMatches ? .pdu(pdu) : .dataDigestError(pdu)
    }

    /// Takes one complete frame off the front of `buffer` as a slice (header digest checked:
    /// a mismatch throws), or nil when more bytes are needed; `PDU(frame:headerDigest:)` reads it.
    static func nextFrame(_ buffer: inout ByteBuffer, digests: DigestSettings,
                          maxDataSegmentLength: Int) throws -> (frame: ByteBuffer, dataDigestMatches: Bool)? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= WireConstants.basicHeaderLength else { return nil }
        let ahsLength = Int(buffer.getInteger(at: start + 4, as: UInt8.self)!) * 4
        let dataLength = Int(buffer.getInteger(at: start + 5, as: UInt8.self)!) << 16
            | Int(buffer.getInteger(at: start + 6, as: UInt16.self)!)
        // Login PDUs may carry up to 8192 bytes before anything is negotiated (§13.12).
        let limit = max(maxDataSegmentLength, 8192)
        guard dataLength <= limit else {
            throw PDUFramingError.dataSegmentTooLong(length: dataLength, limit: limit)
        }
        let headerDigestLength = digests.header ? WireConstants.digestLength : 0
        let paddedData = (dataLength + 3) & ~3
        let dataDigestLength = digests.data && dataLength > 0 ? WireConstants.digestLength : 0
        let total = WireConstants.basicHeaderLength + ahsLength + headerDigestLength + paddedData + dataDigestLength
        guard buffer.readableBytes >= total else { return nil }

        let headerEnd = start + WireConstants.basicHeaderLength + ahsLength
        if digests.header {
            let expected = buffer.getInteger(at: headerEnd, endianness: .little, as: UInt32.self)!
            let actual = buffer.withUnsafeReadableBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(headerEnd - start)]))
            }
            guard expected == actual else { throw PDUFramingError.headerDigestMismatch }
        }
        var matches = true
        if dataDigestLength > 0 {
            let dataStart = headerEnd + headerDigestLength
            let expected = buffer.getInteger(at: dataStart + paddedData, endianness: .little, as: UInt32.self)!
            let actual = buffer.withUnsafeReadableBytes { raw in
                padded(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(dataStart - start)..<(dataStart - start + dataLength)])),
                       dataLength: dataLength)
            }
            matches = expected == actual
        }
        return (buffer.readSlice(length: total)!, matches)
    }

    /// The data digest covers the padding bytes too (§11.2.3: zeros).
    static func padded(_ crc: UInt32, dataLength: Int) -> UInt32 {
        let pad = (4 - dataLength & 3) & 3
        guard pad > 0 else { return crc }
        return withUnsafeBytes(of: UInt32(0)) { zeros in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: zeros[0..<pad]), continuing: crc)
        }
    }
}

/// Connection-owned, event-loop-confined settings the decoder reads per frame.
public final class DigestSettingsBox: @unchecked Sendable {
    // Only touched on the connection's event loop.
    public var digests = DigestSettings()
    public var maxRecvDataSegmentLength = 8192
    public init() {}
}

@testable import ISCSIFabric
import NIOCore

/// `pdu`: the PDU framer (`PDUDecoder.frame`) on a TCP byte stream and the AHS parser on
/// every framed PDU.
///
/// Input: [flags] [segment-limit exponent] stream…
///   flags bit 0/1: header/data digests negotiated; bit 2: write correct digests into the
///   stream first (so framing gets past them); bits 3–5: how the stream is cut into reads.
/// Invariants: framing does not depend on how the stream is cut into reads; a PDU re-encoded
/// by `PDUWriter` frames back to the same header and data; LUN fields round-trip.
enum PDUFuzz {
    static let target = FuzzTarget(name: "pdu", summary: "PDU framing, digests, AHS parsing", run: run)

    /// What framing produced, comparable across runs.
    enum Framed: Equatable {
        case pdu(header: [UInt8], ahs: [UInt8], data: [UInt8], dataDigestOK: Bool)
        case error(PDUFramingError)
    }

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let digests = DigestSettings(header: flags & 1 != 0, data: flags & 2 != 0)
        let limit = min(WireConstants.maxDataSegmentLength, 512 << Int(input.byte() & 0x0F))
        var stream = input.rest()
        if flags & 4 != 0 { writeDigests(&stream, digests: digests, limit: limit) }

        let whole = frameAll(stream, digests: digests, limit: limit, cuts: nil)
        let cut = frameAll(stream, digests: digests, limit: limit,
                           cuts: SplitMix64(seed: UInt64(flags >> 3) &+ UInt64(stream.count)))
        guard whole == cut else {
            fuzzFailure("framing depends on read boundaries: \(whole.count) vs \(cut.count) results")
        }

        for case .pdu(let header, let ahs, let data, let digestOK) in whole {
            inspect(header: header, ahs: ahs)
            if ahs.isEmpty, digestOK { reencode(header: header, data: data, digests: digests, limit: limit) }
        }
    }

    /// Frames until more bytes are needed or an error ends the connection. With `cuts`, the
    /// stream arrives in random-sized reads and framing runs after each.
    static func frameAll(_ stream: [UInt8], digests: DigestSettings, limit: Int,
                         cuts: SplitMix64?) -> [Framed] {
        var out: [Framed] = []
        var buffer = ByteBufferAllocator().buffer(capacity: cuts == nil ? stream.count : 64)
        var fed = 0
        func drain() -> Bool {
            do {
                while let f = try PDUDecoder.frame(&buffer, digests: digests, maxDataSegmentLength: limit) {
                    switch f {
                    case .pdu(let p): out.append(framed(p, digestOK: true))
                    case .dataDigestError(let p): out.append(framed(p, digestOK: false))
                    }
                }
                return true
            } catch let e as PDUFramingError {
                out.append(.error(e))
                return false
            } catch {
                fuzzFailure("frame threw \(error)")
            }
        }
        if var cuts {
            while fed < stream.count {
                let n = min(stream.count - fed, 1 + Int(cuts.next() % 97))
                stream.withUnsafeBytes { _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[fed..<fed + n])) }
                fed += n
                if !drain() { break }
            }
        } else {
            stream.withUnsafeBytes { _ = buffer.writeBytes($0) }
            _ = drain()
        }
        return out
    }

    static func framed(_ p: PDU, digestOK: Bool) -> Framed {
        guard p.header.readableBytes == WireConstants.basicHeaderLength,
              p.data.readableBytes == p.dataSegmentLength,
              p.additionalHeaders.readableBytes == p.totalAHSLength
        else { fuzzFailure("PDU slices disagree with the header's lengths") }
        return .pdu(header: bytes(p.header), ahs: bytes(p.additionalHeaders), data: bytes(p.data), dataDigestOK: digestOK)
    }

    /// A copy of the readable bytes (one memcpy; the byte-wise view is slow in debug builds).
    static func bytes(_ b: ByteBuffer) -> [UInt8] {
        b.withUnsafeReadableBytes { Array($0) }
    }

    /// Every accessor, and the AHS parser as the connection runs it on SCSI Commands.
    static func inspect(header: [UInt8], ahs: [UInt8]) {
        var h = ByteBufferAllocator().buffer(capacity: header.count)
        header.withUnsafeBytes { _ = h.writeBytes($0) }
        var a = ByteBufferAllocator().buffer(capacity: ahs.count)
        ahs.withUnsafeBytes { _ = a.writeBytes($0) }
        let pdu = PDU(header: h, additionalHeaders: a)
        _ = (pdu.opcode, pdu.isImmediate, pdu.isFinal, pdu.flags, pdu.initiatorTaskTag,
             pdu.targetTransferTag, pdu.cmdSN, pdu.expStatSN)
        let lun = LUNEncoding.decode(pdu.lunField)
        if lun != UInt64.max, LUNEncoding.decode(LUNEncoding.encode(lun)) != lun {
            fuzzFailure("LUN \(lun) does not round-trip")
        }
        if let segments = try? AdditionalHeaderSegments.parse(pdu.additionalHeaders) {
            for case .extendedCDB(let rest) in segments where rest.isEmpty || 16 + rest.count > AdditionalHeaderSegments.maxCDBLength {
                fuzzFailure("extended CDB of \(rest.count) bytes accepted")
            }
        }
    }

    /// PDUWriter's bytes for this header and data must frame back to the same PDU.
    static func reencode(header: [UInt8], data: [UInt8], digests: DigestSettings, limit: Int) {
        let allocator = ByteBufferAllocator()
        var out = OutboundHeader(.nopIn, allocator: allocator)
        out.bytes.clear()
        header.withUnsafeBytes { _ = out.bytes.writeBytes($0) }
        var payload = allocator.buffer(capacity: data.count)
        data.withUnsafeBytes { _ = payload.writeBytes($0) }
        let (head, body, trailer) = PDUWriter(digests: digests).encode(&out, data: payload, allocator: allocator)
        var wire = head
        if var body { wire.writeBuffer(&body) }
        if var trailer { wire.writeBuffer(&trailer) }
        let length = wire.readableBytes
        guard case .pdu(let p)? = try? PDUDecoder.frame(&wire, digests: digests, maxDataSegmentLength: limit),
              wire.readableBytes == 0
        else { fuzzFailure("a re-encoded PDU (\(length) bytes) does not frame back") }
        guard bytes(p.header) == header, bytes(p.data) == data else {
            fuzzFailure("a re-encoded PDU frames back different")
        }
    }

    /// Writes the digests a sender would compute, walking the stream as the framer does.
    static func writeDigests(_ s: inout [UInt8], digests: DigestSettings, limit: Int) {
        var at = 0
        while at + WireConstants.basicHeaderLength <= s.count {
            let ahs = Int(s[at + 4]) * 4
            let length = Int(s[at + 5]) << 16 | Int(s[at + 6]) << 8 | Int(s[at + 7])
            guard length <= max(limit, 8192) else { return }
            let headerEnd = at + WireConstants.basicHeaderLength + ahs
            let headerDigest = digests.header ? 4 : 0
            let padded = (length + 3) & ~3
            let dataDigest = digests.data && length > 0 ? 4 : 0
            let total = headerEnd - at + headerDigest + padded + dataDigest
            guard at + total <= s.count else { return }
            if digests.header { put(crc(s, at..<headerEnd), into: &s, at: headerEnd) }
            if dataDigest > 0 {
                let dataStart = headerEnd + headerDigest
                let crc = PDUDecoder.padded(crc(s, dataStart..<dataStart + length), dataLength: length)
                put(crc, into: &s, at: dataStart + padded)
            }
            at += total
        }
    }

    static func crc(_ s: [UInt8], _ range: Range<Int>) -> UInt32 {
        s.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    static func put(_ crc: UInt32, into s: inout [UInt8], at i: Int) {
        for k in 0..<4 { s[i + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) } // little-endian on the wire
    }
}

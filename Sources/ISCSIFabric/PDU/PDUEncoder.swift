import NIOCore

/// Builds the 48-byte header of an outgoing PDU. Fields not set are zero.
struct OutboundHeader {
    var bytes: ByteBuffer

    /// Room for a BHS and its digest.
    static let capacity = WireConstants.basicHeaderLength + WireConstants.digestLength

    init(_ opcode: Opcode, flags: UInt8 = 0x80, allocator: ByteBufferAllocator) {
        self.init(opcode, flags: flags, in: allocator.buffer(capacity: Self.capacity))
    }

    /// Lays the header out in `buffer` (empty, from the connection's BufferRecycler).
    init(_ opcode: Opcode, flags: UInt8 = 0x80, in buffer: consuming ByteBuffer) {
        bytes = consume buffer  // a copy would make the writes below copy the storage
        bytes.writeRepeatingByte(0, count: WireConstants.basicHeaderLength)
        bytes.setInteger(opcode.rawValue, at: 0)
        bytes.setInteger(flags, at: 1)
    }

    mutating func set(_ value: UInt8, at offset: Int) { bytes.setInteger(value, at: offset) }
    mutating func set(_ value: UInt16, at offset: Int) { bytes.setInteger(value, at: offset) }
    mutating func set(_ value: UInt32, at offset: Int) { bytes.setInteger(value, at: offset) }
    mutating func set(_ value: UInt64, at offset: Int) { bytes.setInteger(value, at: offset) }

    var flags: UInt8 {
        get { bytes.getInteger(at: 1)! }
        set { bytes.setInteger(newValue, at: 1) }
    }

    // Common field positions (§11.2.1).
    mutating func setLUN(_ lunField: UInt64) { set(lunField, at: 8) }
    mutating func setInitiatorTaskTag(_ tag: UInt32) { set(tag, at: 16) }
    mutating func setTargetTransferTag(_ tag: UInt32) { set(tag, at: 20) }
    /// StatSN, ExpCmdSN, MaxCmdSN sit at 24/28/32 in every target PDU that has them.
    mutating func setSequenceNumbers(statSN: UInt32, expCmdSN: UInt32, maxCmdSN: UInt32) {
        set(statSN, at: 24)
        set(expCmdSN, at: 28)
        set(maxCmdSN, at: 32)
    }
}

/// Serialises outgoing PDUs: header (+ digest), data slice, padding (+ digest). The data
/// slice is written as is (no copy); NIO gathers the pieces into one writev.
struct PDUWriter {
    var digests = DigestSettings()

    /// The buffers that make up one PDU on the wire, in order. The header is completed in
    /// place (a copy of its buffer would make each write below copy the storage).
    func encode(_ header: inout OutboundHeader, data: ByteBuffer?, allocator: ByteBufferAllocator) -> (ByteBuffer, ByteBuffer?, ByteBuffer?) {
        let dataLength = data?.readableBytes ?? 0
        precondition(dataLength <= WireConstants.maxDataSegmentLength)
        header.bytes.setInteger(UInt8(truncatingIfNeeded: dataLength >> 16), at: 5)
        header.bytes.setInteger(UInt16(truncatingIfNeeded: dataLength), at: 6)
        if digests.header {
            let crc = header.bytes.withUnsafeReadableBytes { CRC32C.checksum($0) }
            header.bytes.writeInteger(crc, endianness: .little)
        }
        let head = header.bytes
        guard let data, dataLength > 0 else { return (head, nil, nil) }
        let pad = (4 - dataLength & 3) & 3
        guard pad > 0 || digests.data else { return (head, data, nil) }
        var trailer = allocator.buffer(capacity: 8)
        trailer.writeRepeatingByte(0, count: pad)
        if digests.data {
            let crc = data.withUnsafeReadableBytes { CRC32C.checksum($0) }
            trailer.writeInteger(PDUDecoder.padded(crc, dataLength: dataLength), endianness: .little)
        }
        return (head, data, trailer)
    }
}

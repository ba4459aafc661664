import NIOCore

/// One received PDU: its Basic Header Segment, any Additional Header Segments and its data
/// segment, each a slice of the receive buffer (no copy).
public struct PDU: Sendable {
    /// The 48-byte Basic Header Segment (§11.2.1).
    public var header: ByteBuffer
    /// Additional Header Segments (§11.2.2); empty for most PDUs.
    public var additionalHeaders: ByteBuffer
    /// The data segment without padding or digest.
    public var data: ByteBuffer

    public init(header: ByteBuffer, additionalHeaders: ByteBuffer = ByteBuffer(), data: ByteBuffer = ByteBuffer()) {
        self.header = header
        self.additionalHeaders = additionalHeaders
        self.data = data
    }

    /// The parts of one frame PDUDecoder passed on (it checked the lengths and digests).
    public init(frame: ByteBuffer, headerDigest: Bool) {
        let start = frame.readerIndex
        let ahsLength = Int(frame.getInteger(at: start + 4, as: UInt8.self)!) * 4
        let dataLength = Int(frame.getInteger(at: start + 5, as: UInt8.self)!) << 16
            | Int(frame.getInteger(at: start + 6, as: UInt16.self)!)
        let dataStart = start + WireConstants.basicHeaderLength + ahsLength + (headerDigest ? WireConstants.digestLength : 0)
        self.init(header: frame.getSlice(at: start, length: WireConstants.basicHeaderLength)!,
                  additionalHeaders: frame.getSlice(at: start + WireConstants.basicHeaderLength, length: ahsLength)!,
                  data: frame.getSlice(at: dataStart, length: dataLength)!)
    }

    @inline(__always) func byte(_ offset: Int) -> UInt8 {
        header.getInteger(at: header.readerIndex + offset, as: UInt8.self)!
    }
    @inline(__always) func uint16(_ offset: Int) -> UInt16 {
        header.getInteger(at: header.readerIndex + offset, as: UInt16.self)!
    }
    @inline(__always) func uint32(_ offset: Int) -> UInt32 {
        header.getInteger(at: header.readerIndex + offset, as: UInt32.self)!
    }
    @inline(__always) func uint64(_ offset: Int) -> UInt64 {
        header.getInteger(at: header.readerIndex + offset, as: UInt64.self)!
    }

    /// Raw opcode (byte 0, low six bits).
    public var rawOpcode: UInt8 { byte(0) & 0x3F }
    public var opcode: Opcode? { Opcode(rawValue: rawOpcode) }
    /// The I bit: immediate delivery (§11.2.1.1).
    public var isImmediate: Bool { byte(0) & 0x40 != 0 }
    /// The F bit (final) in byte 1, shared by most opcodes.
    public var isFinal: Bool { byte(1) & 0x80 != 0 }
    /// Opcode-specific flags, byte 1.
    public var flags: UInt8 { byte(1) }
    public var totalAHSLength: Int { Int(byte(4)) * 4 }
    public var dataSegmentLength: Int {
        Int(byte(5)) << 16 | Int(byte(6)) << 8 | Int(byte(7))
    }
    /// LUN field, bytes 8–15 (SAM-5 eight-byte LUN).
    public var lunField: UInt64 { uint64(8) }
    public var initiatorTaskTag: UInt32 { uint32(16) }

    // Fields at the same place in several initiator PDUs (§11.3, §11.7, §11.18…).
    public var targetTransferTag: UInt32 { uint32(20) }
    public var cmdSN: UInt32 { uint32(24) }
    public var expStatSN: UInt32 { uint32(28) }
}

/// SAM-5 LUN encoding (§4.6.1 of SAM-5): single-level peripheral (0–255) and flat (to 16383).
enum LUNEncoding {
    static func decode(_ field: UInt64) -> UInt64 {
        let firstLevel = UInt16(truncatingIfNeeded: field >> 48)
        switch firstLevel >> 14 {
        case 0b00: return firstLevel >> 8 == 0 ? UInt64(firstLevel & 0xFF) : UInt64.max // peripheral, bus 0
        case 0b01: return UInt64(firstLevel & 0x3FFF) // flat space
        default: return UInt64.max
        }
    }

    static func encode(_ lun: UInt64) -> UInt64 {
        lun < 256 ? lun << 48 : (0x4000 | (lun & 0x3FFF)) << 48
    }
}

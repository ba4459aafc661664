import CTCMU

/// A command copied out of its ring entry. The response overlays the request in the
/// same slot, so the CDB and iovecs must be read before any completion is written.
public struct RingCommand: Sendable {
    public var id: UInt16
    public var cdb: [UInt8]
    /// Data-out (or the single buffer): (offset from the mapping base, length).
    public var iovecs: [DataSegment]
    /// Data-in of a bidirectional command.
    public var bidiIovecs: [DataSegment]

    public struct DataSegment: Sendable, Equatable {
        public var offset: Int
        public var length: Int
    }

    public enum DecodeError: Error, Sendable, Equatable {
        case entryTooShort(length: UInt32, needs: Int)
        case cdbOutOfBounds(offset: UInt64)
        case iovecOutOfBounds(offset: UInt64, length: UInt64)
    }

    /// Reads the command entry at ring position `position` (length from its header).
    /// Offsets the kernel wrote are checked against the mapping before any use.
    public init(ring: MappedRing, position: UInt32, length: UInt32) throws(DecodeError) {
        let base = UnsafeRawPointer(ring.base)
        let off = ring.entryOffset(position)
        let iovCount = Int(ctcmu_req_iov_cnt(base, off))
        let bidiCount = Int(ctcmu_req_iov_bidi_cnt(base, off))
        let needs = TCMUProtocol.iovecArrayOffset + (iovCount + bidiCount) * TCMUProtocol.iovecSize
        guard iovCount + bidiCount <= Int(length), needs <= Int(length) else {
            throw .entryTooShort(length: length, needs: needs)
        }
        id = ctcmu_ent_cmd_id(base, off)
        let cdbOffset = ctcmu_req_cdb_off(base, off)
        guard cdbOffset < UInt64(ring.size) else { throw .cdbOutOfBounds(offset: cdbOffset) }
        let first = base.load(fromByteOffset: Int(cdbOffset), as: UInt8.self)
        let cdbLength = min(RingCommand.cdbLength(opcode: first, additional: {
            Int(cdbOffset) + 7 < ring.size ? base.load(fromByteOffset: Int(cdbOffset) + 7, as: UInt8.self) : 0
        }), ring.size - Int(cdbOffset))
        cdb = [UInt8](UnsafeRawBufferPointer(start: base + Int(cdbOffset), count: cdbLength))
        var segments: [DataSegment] = []
        segments.reserveCapacity(iovCount + bidiCount)
        for i in 0..<(iovCount + bidiCount) {
            let o = ctcmu_req_iov_base(base, off, UInt32(i))
            let l = ctcmu_req_iov_len(base, off, UInt32(i))
            // `l <= size - o`, not `o + l <= size`: o + l can overflow.
            guard o >= UInt64(ring.dataOffset), o <= UInt64(ring.size), l <= UInt64(ring.size) - o else {
                throw .iovecOutOfBounds(offset: o, length: l)
            }
            segments.append(DataSegment(offset: Int(o), length: Int(l)))
        }
        iovecs = Array(segments.prefix(iovCount))
        bidiIovecs = Array(segments.dropFirst(iovCount))
    }

    /// CDB length from the group code, as the kernel's `scsi_command_size` computes it.
    static func cdbLength(opcode: UInt8, additional: () -> UInt8) -> Int {
        switch opcode >> 5 {
        case 0: return 6
        case 1, 2: return 10
        case 3: return opcode == 0x7F ? Int(additional()) + 8 : 10 // variable length CDB
        case 4: return 16
        case 5: return 12
        default: return 10
        }
    }

    /// Total data bytes of the (data-out or single) buffer.
    public var dataLength: Int { iovecs.reduce(0) { $0 + $1.length } }
}

/// The reader's position in the command ring: a pure state machine over `len_op` words,
/// so the wrap, PAD and validation rules are testable without memory or a kernel.
///
/// The kernel never splits an entry at the ring end (it writes a PAD entry to the end
/// and wraps), so every entry lies in `[position, position + length)` within the ring.
public struct RingCursor: Sendable, Equatable {
    /// `mailbox.cmdr_size`: ring offsets wrap modulo this (it is not a power of two).
    public let ringSize: UInt32
    /// Byte offset of the next entry to read, relative to the ring start.
    public private(set) var position: UInt32

    public init(ringSize: UInt32, position: UInt32) {
        self.ringSize = ringSize
        self.position = position
    }

    /// What the entry at the cursor is.
    public enum EntryKind: Sendable, Equatable {
        case pad
        case command
        case taskManagement
        /// An opcode this ABI version does not define: answered with `TCMU_UFLAG_UNKNOWN_OP`.
        case unknown(UInt8)
    }

    /// One entry the cursor moved over.
    public struct Entry: Sendable, Equatable {
        public var offset: UInt32
        public var length: UInt32
        public var kind: EntryKind

        public init(offset: UInt32, length: UInt32, kind: EntryKind) {
            self.offset = offset
            self.length = length
            self.kind = kind
        }
    }

    /// Why an entry cannot be a kernel-written one (the ring is then treated as broken).
    public enum Malformed: Error, Sendable, Equatable {
        case zeroLength(at: UInt32)
        case crossesRingEnd(at: UInt32, length: UInt32)
        case crossesHead(at: UInt32, length: UInt32, head: UInt32)
        case headOutOfRange(UInt32)
        /// A command slot shorter than `struct tcmu_cmd_entry`: the response (which overlays
        /// the request, sense buffer included) would not fit in it.
        case commandTooShort(at: UInt32, length: UInt32)
    }

    /// True when everything the kernel published (`head`) has been read.
    public func isDrained(head: UInt32) -> Bool { position == head }

    /// False when the cursor cannot be at an entry: a `cmd_tail` taken from the mailbox (at
    /// start or after a reset) outside the ring or not 8-aligned. Checked before `len_op` is read.
    public var isAtEntryBoundary: Bool {
        position < ringSize && position % TCMUProtocol.entryAlignment == 0
    }

    /// Reads the entry at the cursor from its `len_op` and moves past it.
    public mutating func advance(lenOp: UInt32, head: UInt32) throws(Malformed) -> Entry {
        guard head < ringSize else { throw .headOutOfRange(head) }
        let length = lenOp & ~TCMUProtocol.opMask
        let op = UInt8(lenOp & TCMUProtocol.opMask)
        guard length > 0 else { throw .zeroLength(at: position) }
        guard UInt64(position) + UInt64(length) <= UInt64(ringSize) else {
            throw .crossesRingEnd(at: position, length: length)
        }
        // Published bytes end at head (or at the ring end when head has wrapped).
        if head > position, position + length > head {
            throw .crossesHead(at: position, length: length, head: head)
        }
        let kind: EntryKind
        switch TCMUProtocol.Opcode(rawValue: op) {
        case .pad: kind = .pad
        case .command:
            guard length >= UInt32(TCMUProtocol.commandEntrySize) else {
                throw .commandTooShort(at: position, length: length)
            }
            kind = .command
        case .taskManagement: kind = .taskManagement
        case nil: kind = .unknown(op)
        }
        let entry = Entry(offset: position, length: length, kind: kind)
        position = (position + length) % ringSize
        return entry
    }
}

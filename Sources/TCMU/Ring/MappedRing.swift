import CTCMU

/// The shared mapping of one TCMU device (mailbox | command ring | data area), with typed
/// access through the C shim. Every offset the kernel gives is relative to `base`.
///
/// Unchecked-Sendable: the memory is shared with the kernel by design; the ring protocol
/// (acquire on head, release on tail, one completer at a time) is what makes it safe.
public struct MappedRing: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    /// Length of the whole mapping (`maps/map0/size`).
    public let size: Int
    /// `mailbox.cmdr_off` (128).
    public let ringOffset: UInt32
    /// `mailbox.cmdr_size`.
    public let ringSize: UInt32
    /// First byte after the command ring: data-area iovecs must point at or beyond it.
    public var dataOffset: Int { Int(ringOffset) + Int(ringSize) }

    public enum LayoutError: Error, Sendable, Equatable {
        case tooSmall(Int)
        case unsupportedVersion(UInt16)
        case ringOutOfBounds(offset: UInt32, size: UInt32, mapping: Int)
    }

    /// Checks the mailbox of a mapping the kernel (or the simulator) laid out.
    public init(base: UnsafeMutableRawPointer, size: Int) throws(LayoutError) {
        guard size >= TCMUProtocol.mailboxSize else { throw .tooSmall(size) }
        let version = ctcmu_mb_version(base)
        guard version == TCMUProtocol.mailboxVersion else { throw .unsupportedVersion(version) }
        let off = ctcmu_mb_cmdr_off(base)
        let len = ctcmu_mb_cmdr_size(base)
        guard off >= UInt32(TCMUProtocol.mailboxSize), len > 0, Int(off) + Int(len) <= size
        else { throw .ringOutOfBounds(offset: off, size: len, mapping: size) }
        self.base = base
        self.size = size
        self.ringOffset = off
        self.ringSize = len
    }

    public var capabilities: TCMUProtocol.Capabilities {
        TCMUProtocol.Capabilities(rawValue: ctcmu_mb_flags(base))
    }
    /// `cmd_head`, acquire: the entries before it are complete.
    public var head: UInt32 { ctcmu_mb_cmd_head(base) }
    /// `cmd_tail` as it is in the mailbox now.
    public var tail: UInt32 { ctcmu_mb_cmd_tail(base) }
    /// Publishes `cmd_tail` with release: responses written before are visible to the kernel.
    public func publishTail(_ tail: UInt32) { ctcmu_mb_set_cmd_tail(base, tail) }

    /// Absolute offset of the ring entry at ring position `position`.
    @inline(__always)
    public func entryOffset(_ position: UInt32) -> UInt64 { UInt64(ringOffset) + UInt64(position) }

    public func lenOp(at position: UInt32) -> UInt32 { ctcmu_ent_len_op(base, entryOffset(position)) }
}

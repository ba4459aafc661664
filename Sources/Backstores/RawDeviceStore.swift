#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO
import Synchronization

/// A block device (`raw:` specs). Size from BLKGETSIZE64, logical block size from
/// BLKSSZGET. With `directIO` it is opened O_DIRECT: block-aligned calls from memory
/// aligned to the logical block size go straight to the device; anything else bounces
/// through a pooled page-aligned buffer (partial blocks are read-modify-written under
/// a lock).
///
/// `discard` issues BLKDISCARD for the whole logical blocks of the range and writes
/// zeros over partial blocks at the edges. When the device rejects BLKDISCARD
/// (EOPNOTSUPP, or discard_max_bytes is 0 at open), the store remembers it,
/// `supportsDiscard` turns false and discard zeroes instead (BLKZEROOUT, else
/// writes). Note: whether a *discarded* range reads back as zeros is up to the device
/// (loop devices and most NVMe/SCSI thin devices do; some SSDs don't).
public final class RawDeviceStore: CoreBackedStore {
    let core: StoreCore
    /// Devices promise no atomic write beyond their own; none is offered.
    let journal: AtomicWriteJournal? = nil
    public let logicalBlockSize: Int
    private let discardUnsupported: Atomic<Bool>

    init(core: StoreCore, logicalBlockSize: Int, discardSupported: Bool) {
        self.core = core
        self.logicalBlockSize = logicalBlockSize
        self.discardUnsupported = Atomic(!discardSupported)
    }

    public var kind: BackstoreKind { .raw }
    public var isThinProvisioned: Bool { false }
    public var supportsDiscard: Bool { !discardUnsupported.load(ordering: .relaxed) }
    /// True when the device was opened O_DIRECT.
    public var isDirectIO: Bool { core.direct != nil }

    public func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        if core.readOnly { throw core.error(.discard, EROFS) }
        try core.checkRange(.discard, offset: offset, count: length)
        let size = core.byteCount
        guard offset < size, length > 0 else { return }
        let end = offset + min(length, size - offset)
        let bs = UInt64(logicalBlockSize)
        let alignedStart = (offset + bs - 1) / bs * bs
        let alignedEnd = end / bs * bs
        guard alignedStart < alignedEnd else {
            try core.writeZeros(offset: offset, length: end - offset)
            return
        }
        if offset < alignedStart { try core.writeZeros(offset: offset, length: alignedStart - offset) }
        if alignedEnd < end { try core.writeZeros(offset: alignedEnd, length: end - alignedEnd) }
        let length = alignedEnd - alignedStart
        if !discardUnsupported.load(ordering: .relaxed) {
            let rc = try core.main.withFD(.discard, path: core.path) { fd in
                clinuxio_blk_discard(fd, alignedStart, length)
            }
            if rc == 0 { return }
            guard rc == -EOPNOTSUPP || rc == -ENOTTY else { throw core.error(.discard, -rc) }
            discardUnsupported.store(true, ordering: .relaxed)
        }
        let rc = try core.main.withFD(.discard, path: core.path) { fd in
            clinuxio_blk_zeroout(fd, alignedStart, length)
        }
        if rc == 0 { return }
        try core.writeZeros(offset: alignedStart, length: length)
    }

    public func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        if core.main.isClosed { throw core.error(.seek, EBADF) }
        let size = core.byteCount
        return AllocationExtent(mapped: true, length: offset < size ? min(limit, size - offset) : 0)
    }

    @discardableResult
    public func refreshSize() throws(BackstoreError) -> UInt64 {
        let size = try blockDeviceSize(core.main, path: core.path)
        core.setByteCount(size)
        return size
    }
}

func blockDeviceSize(_ handle: FDHandle, path: String) throws(BackstoreError) -> UInt64 {
    let (rc, size): (Int32, UInt64) = try handle.withFD(.ioctl, path: path) { fd in
        var bytes: UInt64 = 0
        let rc = clinuxio_blk_getsize64(fd, &bytes)
        return (rc, bytes)
    }
    if rc != 0 { throw BackstoreError(.ioctl, errno: -rc, path: path) }
    return size
}

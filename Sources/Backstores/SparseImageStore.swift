#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO
import Synchronization

/// A thin-provisioned image file (`sparse:` specs): created with ftruncate, holes read
/// as zeros, `discard` punches holes (fallocate PUNCH_HOLE|KEEP_SIZE over the exact
/// range; the file system zeroes partial blocks at the edges). On a file system that
/// cannot punch holes, discard writes zeros and `supportsDiscard` turns false.
public final class SparseImageStore: CoreBackedStore {
    let core: StoreCore
    private let punchUnsupported = Atomic<Bool>(false)

    let journal: AtomicWriteJournal?

    /// A writable image gets its atomic write journal; a record a crash left is replayed.
    init(core: StoreCore) throws(BackstoreError) {
        self.core = core
        journal = core.readOnly ? nil : AtomicWriteJournal(imagePath: core.path)
        try journal?.replay(into: core)
    }

    public var kind: BackstoreKind { .sparse }
    public var logicalBlockSize: Int { 512 }
    public var isThinProvisioned: Bool { true }
    public var supportsDiscard: Bool { !punchUnsupported.load(ordering: .relaxed) }

    public func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        if core.readOnly { throw core.error(.discard, EROFS) }
        try core.checkRange(.discard, offset: offset, count: length)
        let size = core.byteCount
        guard offset < size, length > 0 else { return }
        let length = min(length, size - offset)
        if !punchUnsupported.load(ordering: .relaxed) {
            let rc = try core.main.withFD(.discard, path: core.path) { fd in
                clinuxio_punch_hole(fd, offset, length)
            }
            if rc == 0 { return }
            guard rc == -EOPNOTSUPP || rc == -ENOSYS else { throw core.error(.discard, -rc) }
            punchUnsupported.store(true, ordering: .relaxed)
        }
        try core.writeZeros(offset: offset, length: length)
    }

    /// Uses lseek SEEK_DATA / SEEK_HOLE (positional only: the shared file offset is never
    /// used for I/O, so moving it is harmless). Extents are as fine as the file system's
    /// block size (usually 4 KiB).
    public func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        let size = core.byteCount
        let result: (Int32, AllocationExtent) = try core.main.withFD(.seek, path: core.path) { fd in
            guard offset < size, limit > 0 else { return (0, AllocationExtent(mapped: false, length: 0)) }
            let maxLength = min(limit, size - offset)
            let data = lseek(fd, off_t(offset), seekData)
            if data < 0 {
                let e = errno
                // ENXIO: no data at or after offset — a hole until EOF.
                if e == ENXIO { return (0, AllocationExtent(mapped: false, length: maxLength)) }
                return (e, AllocationExtent(mapped: false, length: 0))
            }
            if UInt64(data) > offset {
                return (0, AllocationExtent(mapped: false, length: min(maxLength, UInt64(data) - offset)))
            }
            let hole = lseek(fd, off_t(offset), seekHole)
            if hole < 0 {
                let e = errno
                if e == ENXIO { return (0, AllocationExtent(mapped: true, length: maxLength)) }
                return (e, AllocationExtent(mapped: false, length: 0))
            }
            return (0, AllocationExtent(mapped: true, length: min(maxLength, UInt64(hole) - offset)))
        }
        if result.0 != 0 { throw core.error(.seek, result.0) }
        return result.1
    }

    @discardableResult
    public func refreshSize() throws(BackstoreError) -> UInt64 {
        let size = try regularFileSize(core)
        core.setByteCount(size)
        return size
    }
}

/// lseek whence values (Linux), not always exported by the Glibc module.
let seekData: Int32 = 3
let seekHole: Int32 = 4

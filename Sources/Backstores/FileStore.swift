#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO
import Synchronization

/// A fully allocated regular file (`file:` specs).
///
/// Discard cannot deallocate here (the image is meant to stay allocated), so
/// `supportsDiscard` is false; `discard` still makes the range read as zeros, using
/// fallocate(ZERO_RANGE|KEEP_SIZE) where the file system has it and writing zeros
/// otherwise. Every range reports as mapped.
public final class FileStore: CoreBackedStore {
    let core: StoreCore
    private let zeroRangeUnsupported = Atomic<Bool>(false)

    let journal: AtomicWriteJournal?

    /// A writable image gets its atomic write journal; a record a crash left is replayed.
    init(core: StoreCore) throws(BackstoreError) {
        self.core = core
        journal = core.readOnly ? nil : AtomicWriteJournal(imagePath: core.path)
        try journal?.replay(into: core)
    }

    public var kind: BackstoreKind { .file }
    public var logicalBlockSize: Int { 512 }
    public var isThinProvisioned: Bool { false }
    public var supportsDiscard: Bool { false }

    public func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        if core.readOnly { throw core.error(.discard, EROFS) }
        try core.checkRange(.discard, offset: offset, count: length)
        let size = core.byteCount
        guard offset < size, length > 0 else { return }
        let length = min(length, size - offset)
        if !zeroRangeUnsupported.load(ordering: .relaxed) {
            let rc = try core.main.withFD(.discard, path: core.path) { fd in
                clinuxio_zero_range(fd, offset, length)
            }
            if rc == 0 { return }
            guard rc == -EOPNOTSUPP || rc == -ENOSYS else { throw core.error(.discard, -rc) }
            zeroRangeUnsupported.store(true, ordering: .relaxed)
        }
        try core.writeZeros(offset: offset, length: length)
    }

    public func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        if core.main.isClosed { throw core.error(.seek, EBADF) }
        let size = core.byteCount
        return AllocationExtent(mapped: true, length: offset < size ? min(limit, size - offset) : 0)
    }

    @discardableResult
    public func refreshSize() throws(BackstoreError) -> UInt64 {
        let size = try regularFileSize(core)
        core.setByteCount(size)
        return size
    }
}

/// fstat size of a store's regular file.
func regularFileSize(_ core: StoreCore) throws(BackstoreError) -> UInt64 {
    let result: (Int32, UInt64) = try core.main.withFD(.stat, path: core.path) { fd in
        var st = stat()
        if fstat(fd, &st) != 0 { return (errno, 0) }
        return (0, UInt64(st.st_size))
    }
    if result.0 != 0 { throw core.error(.stat, result.0) }
    return result.1
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO

/// What the three stores share: positional I/O, flush and close through one `StoreCore`.
/// Each store adds only what differs (discard, allocation state, size source).
protocol CoreBackedStore: BlockStore {
    var core: StoreCore { get }
    /// Where atomic writes go first (image files); nil: the store has none.
    var journal: AtomicWriteJournal? { get }
}

extension CoreBackedStore {
    public var path: String { core.path }
    public var byteCount: UInt64 { core.byteCount }
    public var isReadOnly: Bool { core.readOnly }

    public func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        core.readWithoutBlocking(into: buffer, at: offset)
    }

    public var mayReadWithoutBlocking: Bool { core.mayReadWithoutBlocking }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        try core.read(into: buffer, at: offset)
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        try core.write(from: buffer, at: offset, durable: durable)
    }

    public func read(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(BackstoreError) {
        try core.read(into: segments, at: offset)
    }

    public func readWithoutBlocking(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) -> Bool {
        core.readWithoutBlocking(into: segments, at: offset)
    }

    public func write(from segments: [UnsafeMutableRawBufferPointer], at offset: UInt64, durable: Bool) throws(BackstoreError) {
        try core.write(from: segments, at: offset, durable: durable)
    }

    public func flush() throws(BackstoreError) {
        try core.flush()
    }

    public func close() {
        core.close()
        journal?.close()
    }

    public var atomicWriteLimit: Int { journal == nil ? 0 : AtomicWriteJournal.maxBytes }

    public func writeAtomically(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        guard let journal else { throw core.error(.write, EOPNOTSUPP) }
        if core.readOnly { throw core.error(.write, EROFS) }
        try journal.write(buffer, at: offset, into: core)
    }
}

extension CoreBackedStore {
    /// Between two files (or within one): copy_file_range, so the kernel copies page-cache
    /// pages or shares extents (XFS, btrfs reflinks) without a user-space buffer. Devices,
    /// two file systems on old kernels, or overlapping ranges of one file fall back.
    public func copy(to destination: any BlockStore, from sourceOffset: UInt64, to destinationOffset: UInt64,
                     length: UInt64, durable: Bool) throws(BackstoreError) -> Bool {
        guard length > 0 else { return true }
        guard let other = destination as? any CoreBackedStore else { return false }
        let target = other.core
        if target.readOnly { throw target.error(.write, EROFS) }
        let rc: Int32 = try core.main.withFD(.read, path: core.path) { (input) throws(BackstoreError) -> Int32 in
            try target.main.withFD(.write, path: target.path) { (output) throws(BackstoreError) -> Int32 in
                clinuxio_copy_range(input, sourceOffset, output, destinationOffset, length)
            }
        }
        switch -rc {
        case 0: break
        case EXDEV, EINVAL, EOPNOTSUPP, ENOSYS, EBADF: return false
        default: throw target.error(.write, -rc)
        }
        if durable { try target.flush() }
        return true
    }
}

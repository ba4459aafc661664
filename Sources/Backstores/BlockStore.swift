/// A byte-addressed store behind a logical unit. It knows byte ranges, flushes,
/// discards and allocation state — nothing of SCSI, iSCSI or TCMU.
///
/// All calls are blocking and thread-safe: the fabrics call them from I/O worker
/// threads, never from event loops. Memory is owned by the caller (zero copy: one
/// `pread` into the buffer that goes to the wire, one `pwrite` from the one that came).
public protocol BlockStore: AnyObject, Sendable {
    /// What kind of store this is, for listings and logs.
    var kind: BackstoreKind { get }
    /// Path of the file or device.
    var path: String { get }
    /// Current size in bytes (re-read by `refreshSize`).
    var byteCount: UInt64 { get }
    /// Preferred logical block size in bytes (512 for files, BLKSSZGET for devices).
    var logicalBlockSize: Int { get }
    /// True when unallocated ranges exist and reads of them return zeros (thin provisioning).
    var isThinProvisioned: Bool { get }
    /// True when `discard` does something (hole punch or BLKDISCARD).
    var supportsDiscard: Bool { get }
    /// True when the store was opened read-only.
    var isReadOnly: Bool { get }

    /// Reads exactly `buffer.count` bytes at `offset` (holes read as zeros).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError)
    /// Reads exactly `buffer.count` bytes at `offset` only if the page cache already holds them
    /// (preadv2 RWF_NOWAIT), so an event loop may call it. Returns false when the read would
    /// block or failed; the caller then does a normal `read` on an I/O thread.
    func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool
    /// False when `readWithoutBlocking` cannot succeed at all (direct I/O, or the file system
    /// refused RWF_NOWAIT): callers then skip the attempt and its command prelude.
    var mayReadWithoutBlocking: Bool { get }
    /// Writes all of `buffer` at `offset`; when `durable` is true the data is on stable
    /// storage before the call returns (FUA / write-through).
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError)
    /// Vectored forms: consecutive bytes from `offset` in several buffers, in order, with
    /// one preadv/pwritev where the store can (a TCMU command's data is scattered over
    /// data-area blocks; one system call instead of one per block).
    func read(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(BackstoreError)
    func readWithoutBlocking(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) -> Bool
    func write(from segments: [UnsafeMutableRawBufferPointer], at offset: UInt64, durable: Bool) throws(BackstoreError)
    /// Makes every completed write durable (fdatasync).
    func flush() throws(BackstoreError)
    /// Deallocates a range; afterwards it reads as zeros. Stores that cannot discard
    /// write zeros instead.
    func discard(offset: UInt64, length: UInt64) throws(BackstoreError)
    /// Allocation state of the extent starting at `offset`: whether it is mapped and how
    /// many bytes (at most `limit`) share that state.
    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent
    /// Re-reads the size of the underlying file or device (after it was grown or shrunk).
    @discardableResult
    func refreshSize() throws(BackstoreError) -> UInt64
    /// Releases the file descriptor. Further calls fail with EBADF.
    func close()
    /// Writes `pattern` again and again over `length` bytes from `offset` (WRITE SAME); a
    /// store that can repeat a pattern itself (RBD's writesame) sends it once.
    func writeRepeating(_ pattern: UnsafeRawBufferPointer, at offset: UInt64, length: UInt64, durable: Bool) throws(BackstoreError)
    /// Calls `onChange` (on any thread) when the size changed outside this process, e.g.
    /// `rbd resize` on another host; `byteCount` already holds the new size then.
    func watchCapacity(_ onChange: @escaping @Sendable () -> Void)
    /// COMPARE AND WRITE done by the store itself, atomically for every client of it (RBD's
    /// compare-and-write runs at the OSD, so two gateways cannot interleave): writes
    /// `replacement` at `offset` only if the bytes there equal `expected` (same length).
    /// `.unsupported` when the store cannot for this range; the engine then compares and
    /// writes under its own lock (atomic within this process only).
    func compareAndWrite(expected: UnsafeRawBufferPointer, replacement: UnsafeRawBufferPointer,
                         at offset: UInt64) throws(BackstoreError) -> AtomicCompareOutcome
    /// Bytes one `writeAtomically` may carry; 0 when the store cannot promise atomic writes.
    var atomicWriteLimit: Int { get }
    /// Writes all of `buffer` at `offset` so that, whatever happens (a crash, a power loss),
    /// afterwards either all of it or none of it is there; durable when it returns.
    func writeAtomically(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BackstoreError)
    /// Copies `length` bytes from `sourceOffset` to `destination` at `destinationOffset`
    /// inside the storage (EXTENDED COPY), durable when `durable`. False when the two stores
    /// cannot copy between themselves; the caller then reads and writes.
    func copy(to destination: any BlockStore, from sourceOffset: UInt64, to destinationOffset: UInt64,
              length: UInt64, durable: Bool) throws(BackstoreError) -> Bool
    /// The record `name` that every server of this store shares, when several servers may
    /// export it at once (an rbd image with shared=yes); nil for stores only this process serves.
    func sharedRecord(_ name: String) throws(BackstoreError) -> (any SharedRecord)?
}

extension BlockStore {
    /// The pattern replicated into a buffer of up to 1 MiB, written as a few large writes.
    public func writeRepeating(_ pattern: UnsafeRawBufferPointer, at offset: UInt64, length: UInt64,
                               durable: Bool) throws(BackstoreError) {
        guard length > 0, pattern.count > 0 else { return }
        let copies = Int(min(length / UInt64(pattern.count), UInt64(max(1, (1 << 20) / pattern.count))))
        var chunk = [UInt8]()
        chunk.reserveCapacity(copies * pattern.count)
        for _ in 0 ..< max(copies, 1) { chunk.append(contentsOf: pattern) }
        var done: UInt64 = 0
        var failure: BackstoreError?
        chunk.withUnsafeBytes { p in
            while done < length, failure == nil {
                let n = Int(min(UInt64(p.count), length - done))
                do throws(BackstoreError) {
                    try write(from: UnsafeRawBufferPointer(rebasing: p[0 ..< n]), at: offset + done, durable: durable)
                } catch {
                    failure = error
                }
                done += UInt64(n)
            }
        }
        if let failure { throw failure }
    }

    /// Files and devices change size only through us (or a RECONFIG): nothing to watch.
    public func watchCapacity(_ onChange: @escaping @Sendable () -> Void) {}

    /// Files and devices have one server: the engine's lock makes COMPARE AND WRITE atomic.
    public func compareAndWrite(expected: UnsafeRawBufferPointer, replacement: UnsafeRawBufferPointer,
                                at offset: UInt64) throws(BackstoreError) -> AtomicCompareOutcome { .unsupported }

    /// No atomic writes unless the store has them.
    public var atomicWriteLimit: Int { 0 }
    public func writeAtomically(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        throw BackstoreError(.write, errno: 95 /* EOPNOTSUPP */, path: path)
    }

    /// No copy offload unless the store has one.
    public func copy(to destination: any BlockStore, from sourceOffset: UInt64, to destinationOffset: UInt64,
                     length: UInt64, durable: Bool) throws(BackstoreError) -> Bool { false }

    /// Files and devices have one server: nothing to share.
    public func sharedRecord(_ name: String) throws(BackstoreError) -> (any SharedRecord)? { nil }

    /// Stores without a page cache fast path always defer to `read`.
    public func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool { false }
    public var mayReadWithoutBlocking: Bool { true }

    // One call per buffer, for stores without vectored I/O.
    public func read(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(BackstoreError) {
        var at = offset
        for s in segments {
            try read(into: s, at: at)
            at += UInt64(s.count)
        }
    }

    public func readWithoutBlocking(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) -> Bool {
        var at = offset
        for s in segments {
            if !readWithoutBlocking(into: s, at: at) { return false }
            at += UInt64(s.count)
        }
        return true
    }

    /// Durable as a whole: buffered writes, then one flush.
    public func write(from segments: [UnsafeMutableRawBufferPointer], at offset: UInt64, durable: Bool) throws(BackstoreError) {
        var at = offset
        for s in segments {
            try write(from: UnsafeRawBufferPointer(s), at: at, durable: durable && segments.count == 1)
            at += UInt64(s.count)
        }
        if durable && segments.count > 1 { try flush() }
    }
}

/// What a store's own COMPARE AND WRITE did.
public enum AtomicCompareOutcome: Sendable, Equatable {
    case written
    /// Nothing written; `offset` is the first differing byte, counted from the range's start.
    case mismatch(offset: Int)
    /// The store cannot do this range itself.
    case unsupported
}

public struct AllocationExtent: Sendable, Equatable {
    public var mapped: Bool
    public var length: UInt64
    public init(mapped: Bool, length: UInt64) {
        self.mapped = mapped
        self.length = length
    }
}

/// A failed system call on a store, with the errno so the engine can pick the sense code.
public struct BackstoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Operation: String, Sendable {
        case open, stat, read, write, flush, discard, seek, ioctl, resize, create
    }
    public var operation: Operation
    public var errno: Int32
    public var path: String

    public init(_ operation: Operation, errno: Int32, path: String) {
        self.operation = operation
        self.errno = errno
        self.path = path
    }

    public var description: String {
        "\(operation.rawValue) \(path): \(String(cString: strerror(errno)))"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

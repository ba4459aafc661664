import CRBD
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A LUN on a Ceph RBD image through librbd. Reads and writes of one buffer are submitted
/// (`rbd_aio_read`/`write` straight from the engine's buffers, no copy) and librbd's callback
/// answers the command (CompletingBlockStore); every other call runs on an I/O worker, which
/// submits and waits there, never on an event loop. No librbd cache (RBDCluster), so what one
/// gateway acknowledged any other reads at once.
public final class RBDImageStore: CompletingBlockStore {
    public let location: RBDLocation
    /// An open image handle; librbd lets any thread use it.
    struct Handle: @unchecked Sendable {
        let image: crbd_image_t
        /// Counts re-opens, so that many threads failing at once re-open only once.
        let generation: Int
    }

    private let current: Mutex<Handle>
    /// Handles replaced by a re-open, closed with the store (a thread may still be using one).
    private let retired = Mutex<[Handle]>([])
    private var image: crbd_image_t { current.withLock { $0.image } }
    /// How many times the image was re-opened after a blocklisting.
    var reopens: Int { current.withLock { $0.generation } }
    private let size: Atomic<UInt64>
    private let closed = Atomic<Bool>(false)
    /// Bytes per RADOS object: the granularity discards free space in.
    public let objectSize: UInt64
    public let isReadOnly: Bool
    private let capacityHandlers = Mutex<[@Sendable () -> Void]>([])
    private let watchHandle = Atomic<UInt64>(0)
    private let watching = Atomic<Bool>(false)

    /// The connection and pool context records shared with other gateways live in (shared=yes).
    private struct Sharing: @unchecked Sendable {
        let cluster: RBDCluster
        let context: crbd_ioctx_t
    }
    private let sharing: Sharing?
    private let records = Mutex<[String: RBDSharedRecord]>([:])

    init(location: RBDLocation, image: crbd_image_t, size: UInt64, objectSize: UInt64, readOnly: Bool,
         sharedThrough cluster: RBDCluster? = nil, context: crbd_ioctx_t? = nil) {
        self.location = location
        if location.shared, let cluster, let context { sharing = Sharing(cluster: cluster, context: context) } else { sharing = nil }
        self.current = Mutex(Handle(image: image, generation: 0))
        self.size = Atomic(size)
        self.objectSize = objectSize
        self.isReadOnly = readOnly
    }

    public var kind: BackstoreKind { .rbd }
    public var path: String { "\(location.pool)/\(location.image)" }
    public var byteCount: UInt64 { size.load(ordering: .relaxed) }
    public var logicalBlockSize: Int { 512 }
    public var isThinProvisioned: Bool { true }
    public var supportsDiscard: Bool { !isReadOnly }
    public var mayReadWithoutBlocking: Bool { false }

    // One buffer (the common case) goes as one iovec on the stack: no array per command.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        let got = try withIOVector(buffer) { image, iov, count, completion in crbd_aio_readv(image, iov, count, offset, completion) }
        try checkRead(got, expected: buffer.count)
    }

    public func read(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(BackstoreError) {
        let got = try withIOVectors(segments) { image, iov, count, completion in crbd_aio_readv(image, iov, count, offset, completion) }
        try checkRead(got, expected: segments.reduce(0) { $0 + $1.count })
    }

    // No cache: an acknowledged write is on the OSDs, so `durable` (FUA) needs nothing more.
    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        guard !isReadOnly else { throw BackstoreError(.write, errno: EROFS, path: path) }
        let rc = try withIOVector(UnsafeMutableRawBufferPointer(mutating: buffer)) { image, iov, count, completion in
            crbd_aio_writev(image, iov, count, offset, completion)
        }
        guard rc >= 0 else { throw BackstoreError(.write, errno: Int32(-rc), path: path) }
    }

    public func write(from segments: [UnsafeMutableRawBufferPointer], at offset: UInt64, durable: Bool) throws(BackstoreError) {
        guard !isReadOnly else { throw BackstoreError(.write, errno: EROFS, path: path) }
        let rc = try withIOVectors(segments) { image, iov, count, completion in crbd_aio_writev(image, iov, count, offset, completion) }
        guard rc >= 0 else { throw BackstoreError(.write, errno: Int32(-rc), path: path) }
    }

    /// librbd clips a read that crosses the end without an error: a short count is a failure too.
    private func checkRead(_ got: Int64, expected: Int) throws(BackstoreError) {
        guard got == Int64(expected) else { throw BackstoreError(.read, errno: got < 0 ? Int32(-got) : EIO, path: path) }
    }

    /// WRITE SAME in one request: the OSDs repeat the pattern (rbd_aio_writesame).
    public func writeRepeating(_ pattern: UnsafeRawBufferPointer, at offset: UInt64, length: UInt64,
                               durable: Bool) throws(BackstoreError) {
        guard !isReadOnly else { throw BackstoreError(.write, errno: EROFS, path: path) }
        guard length > 0, let base = pattern.baseAddress else { return }
        // In pieces of at most 1 GiB (a whole number of patterns), so size_t and OSD requests stay sane.
        let piece = max(UInt64(pattern.count), (1 << 30) / UInt64(pattern.count) * UInt64(pattern.count))
        var done: UInt64 = 0
        while done < length {
            let n = min(piece, length - done)
            let at = offset + done
            let rc = submitAndWait { image, completion in
                crbd_aio_writesame(image, at, Int(n), base, pattern.count, completion, 0)
            }
            guard rc >= 0 else { throw BackstoreError(.write, errno: Int32(-rc), path: path) }
            done += n
        }
    }

    /// COMPARE AND WRITE at the OSD (rbd_aio_compare_and_write): atomic across gateways.
    /// librbd 16 compares within one 512-byte sector only, and its mismatch offset counts from
    /// the RADOS object; for an aligned sector the index is that offset modulo 512 either way.
    /// Larger ranges stay with the engine (atomic within this gateway only).
    public func compareAndWrite(expected: UnsafeRawBufferPointer, replacement: UnsafeRawBufferPointer,
                                at offset: UInt64) throws(BackstoreError) -> AtomicCompareOutcome {
        guard !isReadOnly else { throw BackstoreError(.write, errno: EROFS, path: path) }
        guard expected.count == 512, replacement.count == 512, offset % 512 == 0, RBDImageStore.hasCompareAndWrite,
              let compare = expected.baseAddress, let write = replacement.baseAddress else { return .unsupported }
        var mismatch: UInt64 = 0
        let rc = withUnsafeMutablePointer(to: &mismatch) { at in
            submitAndWait { image, completion in
                crbd_aio_compare_and_write(image, offset, 512, compare, write, completion, at, 0)
            }
        }
        if rc == -Int64(EILSEQ) { return .mismatch(offset: Int(mismatch % 512)) }
        if rc == -Int64(EINVAL) || rc == -Int64(ENOSYS) || rc == -Int64(EOPNOTSUPP) { return .unsupported }
        guard rc >= 0 else { throw BackstoreError(.write, errno: Int32(-rc), path: path) }
        return .written
    }

    private static let hasCompareAndWrite = crbd_has_symbol("rbd_aio_compare_and_write") != 0

    public func flush() throws(BackstoreError) {
        let rc = submitAndWait { image, completion in crbd_aio_flush(image, completion) }
        guard rc >= 0 else { throw BackstoreError(.flush, errno: Int32(-rc), path: path) }
    }

    public func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        guard !isReadOnly else { throw BackstoreError(.discard, errno: EROFS, path: path) }
        let rc = submitAndWait { image, completion in crbd_aio_discard(image, offset, length, completion) }
        guard rc >= 0 else { throw BackstoreError(.discard, errno: Int32(-rc), path: path) }
    }

    public func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        // The extents librbd knows to hold data, within a bounded window (without fast-diff
        // a scan visits every object). They come per object and not in offset order.
        let window = min(limit, max(objectSize, 1) * 16, byteCount - min(offset, byteCount))
        guard window > 0 else { return AllocationExtent(mapped: false, length: 0) }
        final class Extents { var list: [(offset: UInt64, length: UInt64)] = [] }
        let extents = Extents()
        let rc = withExtendedLifetime(extents) {
            crbd_diff_iterate2(image, nil, offset, window, 1, 0, { extentOffset, length, exists, arg in
                guard exists != 0, let arg else { return 0 }
                Unmanaged<Extents>.fromOpaque(arg).takeUnretainedValue().list.append((extentOffset, UInt64(length)))
                return 0
            }, Unmanaged.passUnretained(extents).toOpaque())
        }
        guard rc >= 0 else { throw BackstoreError(.seek, errno: -rc, path: path) }
        let end = offset + window
        var mappedEnd = offset
        for extent in extents.list.sorted(by: { $0.offset < $1.offset }) {
            if extent.offset > mappedEnd { break }
            mappedEnd = max(mappedEnd, extent.offset + extent.length)
        }
        if mappedEnd > offset { return AllocationExtent(mapped: true, length: min(mappedEnd, end) - offset) }
        let next = extents.list.map(\.offset).filter { $0 > offset }.min() ?? end
        return AllocationExtent(mapped: false, length: min(next, end) - offset)
    }

    @discardableResult
    public func refreshSize() throws(BackstoreError) -> UInt64 {
        var bytes: UInt64 = 0
        let rc = crbd_get_size(image, &bytes)
        guard rc == 0 else { throw BackstoreError(.stat, errno: -rc, path: path) }
        size.store(bytes, ordering: .relaxed)
        return bytes
    }

    /// Grows or shrinks the image (`rbd resize`).
    func resize(to bytes: UInt64) throws(BackstoreError) {
        let rc = crbd_resize(image, bytes)
        guard rc == 0 else { throw BackstoreError(.resize, errno: -rc, path: path) }
        size.store(bytes, ordering: .relaxed)
    }

    /// A record beside the image (`swifttarget.IMAGE.NAME`) for a shared=yes image.
    public func sharedRecord(_ name: String) throws(BackstoreError) -> (any SharedRecord)? {
        guard let sharing else { return nil }
        return records.withLock { records in
            if let existing = records[name] { return existing }
            let record = RBDSharedRecord(object: "swifttarget.\(location.image).\(name)", cluster: sharing.cluster,
                                         context: sharing.context)
            records[name] = record
            return record
        }
    }

    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for record in records.withLock({ $0.values }) { record.close() }
        if watching.load(ordering: .acquiring) { _ = crbd_update_unwatch(image, watchHandle.load(ordering: .relaxed)) }
        _ = crbd_close(image)  // waits for in-flight I/O
        for old in retired.withLock({ $0 }) { _ = crbd_close(old.image) }
    }

    public func watchCapacity(_ onChange: @escaping @Sendable () -> Void) {
        capacityHandlers.withLock { $0.append(onChange) }
        guard !watching.exchange(true, ordering: .acquiringAndReleasing) else { return }
        registerWatch()
    }

    private func registerWatch() {
        // librbd calls back after any header change (resize, snapshot, lock); only a new
        // size is passed on. The store outlives the watch: close() unwatches first.
        var handle: UInt64 = 0
        let rc = crbd_update_watch(image, &handle, { arg in
            guard let arg else { return }
            Unmanaged<RBDImageStore>.fromOpaque(arg).takeUnretainedValue().headerChanged()
        }, Unmanaged.passUnretained(self).toOpaque())
        if rc == 0 { watchHandle.store(handle, ordering: .relaxed) } else { watching.store(false, ordering: .releasing) }
    }

    private func headerChanged() {
        let old = byteCount
        guard let new = try? refreshSize(), new != old else { return }
        for handler in capacityHandlers.withLock({ $0 }) { handler() }
    }

    // MARK: - Completion-driven reads and writes

    public func submitRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                           completion: @escaping @Sendable (BackstoreError?) -> Void) {
        submit(InFlight(store: self, buffer: buffer, offset: offset, isRead: true, completion: completion))
    }

    public func submitWrite(from buffer: UnsafeRawBufferPointer, at offset: UInt64,
                            completion: @escaping @Sendable (BackstoreError?) -> Void) {
        guard !isReadOnly else { return completion(BackstoreError(.write, errno: EROFS, path: path)) }
        submit(InFlight(store: self, buffer: UnsafeMutableRawBufferPointer(mutating: buffer), offset: offset,
                        isRead: false, completion: completion))
    }

    /// One submitted read or write: what librbd's callback needs to answer it, or to run it
    /// again after a re-open.
    final class InFlight: @unchecked Sendable {
        let store: RBDImageStore
        let buffer: UnsafeMutableRawBufferPointer
        let offset: UInt64
        let isRead: Bool
        let completion: @Sendable (BackstoreError?) -> Void
        var generation = 0

        init(store: RBDImageStore, buffer: UnsafeMutableRawBufferPointer, offset: UInt64, isRead: Bool,
             completion: @escaping @Sendable (BackstoreError?) -> Void) {
            self.store = store
            self.buffer = buffer
            self.offset = offset
            self.isRead = isRead
            self.completion = completion
        }

        /// Queues the read or write on `image`; 0 when queued (the callback then runs).
        func start(on image: crbd_image_t, _ completion: crbd_completion_t) -> Int32 {
            isRead ? crbd_aio_read(image, offset, buffer.count, buffer.baseAddress!, completion)
                   : crbd_aio_write(image, offset, buffer.count, buffer.baseAddress!, completion)
        }

        func finish(_ rc: Int64) {
            if rc >= 0 && (!isRead || rc == Int64(buffer.count)) { return completion(nil) }
            completion(BackstoreError(isRead ? .read : .write, errno: rc < 0 ? Int32(-rc) : EIO, path: store.path))
        }
    }

    private func submit(_ operation: InFlight) {
        guard operation.buffer.count > 0 else { return operation.completion(nil) }
        guard !closed.load(ordering: .relaxed) else {
            return operation.completion(BackstoreError(operation.isRead ? .read : .write, errno: EBADF, path: path))
        }
        let handle = current.withLock { $0 }
        operation.generation = handle.generation
        let context = Unmanaged.passRetained(operation)
        var completion: crbd_completion_t?
        var rc = crbd_aio_create_completion(context.toOpaque(), { completion, arg in
            guard let arg else { return }
            let operation = Unmanaged<InFlight>.fromOpaque(arg).takeRetainedValue()
            let rc = crbd_aio_get_return_value(completion)
            crbd_aio_release(completion)
            // Fenced: the re-open connects to the cluster, which must not happen on librbd's thread.
            if rc == -Int64(CRBD_EBLOCKLISTED) && !operation.store.closed.load(ordering: .relaxed) {
                DispatchQueue.global().async { operation.store.retryAfterReopen(operation) }
            } else {
                operation.finish(rc)
            }
        }, &completion)
        guard rc == 0, let completion else {
            context.release()
            return operation.finish(Int64(rc))
        }
        rc = operation.start(on: handle.image, completion)
        if rc != 0 {  // not queued: the callback will not run
            crbd_aio_release(completion)
            context.release()
            operation.finish(Int64(rc))
        }
    }

    /// On a worker-like thread of its own: re-open (once per generation) and run the operation
    /// again, waiting for it as the blocking calls do.
    private func retryAfterReopen(_ operation: InFlight) {
        guard reopen(after: operation.generation) else { return operation.finish(-Int64(CRBD_EBLOCKLISTED)) }
        operation.finish(submitOnce(image) { image, completion in operation.start(on: image, completion) })
    }

    // MARK: - Completions

    /// Submits one operation and waits for its completion on this (worker) thread. A client
    /// the cluster blocklisted (another gateway broke our lock) gets ESHUTDOWN forever: the
    /// image is re-opened on a fresh connection and the operation tried once more.
    private func submitAndWait(_ submit: (crbd_image_t, crbd_completion_t) -> Int32) -> Int64 {
        let handle = current.withLock { $0 }
        let rc = submitOnce(handle.image, submit)
        guard rc == -Int64(CRBD_EBLOCKLISTED), !closed.load(ordering: .relaxed), reopen(after: handle.generation) else { return rc }
        return submitOnce(image, submit)
    }

    private func submitOnce(_ image: crbd_image_t, _ submit: (crbd_image_t, crbd_completion_t) -> Int32) -> Int64 {
        var completion: crbd_completion_t?
        var rc = crbd_aio_create_completion(nil, { _, _ in }, &completion)
        guard rc == 0, let completion else { return Int64(rc) }
        defer { crbd_aio_release(completion) }
        rc = submit(image, completion)
        guard rc == 0 else { return Int64(rc) }
        _ = crbd_aio_wait_for_complete(completion)
        return crbd_aio_get_return_value(completion)
    }

    /// A new connection and handle replace a blocklisted one (once per generation).
    private func reopen(after generation: Int) -> Bool {
        reopening.withLock { _ in
            if current.withLock({ $0.generation }) != generation { return true }  // another thread did it
            guard let fresh = try? RBDImageStore.openHandle(location, readOnly: isReadOnly, replacingConnection: true) else {
                return false
            }
            let replacement = Handle(image: fresh, generation: generation + 1)
            let old = current.withLock { c -> Handle in
                defer { c = replacement }
                return c
            }
            retired.withLock { $0.append(old) }
            if watching.load(ordering: .acquiring) { registerWatch() }
            return true
        }
    }

    private let reopening = Mutex(())

    static func openHandle(_ location: RBDLocation, readOnly: Bool, replacingConnection: Bool) throws(BackstoreOpenError) -> crbd_image_t {
        let what = location.description
        let cluster = try RBDCluster.connection(for: location, fresh: replacingConnection)
        let context = try cluster.ioContext(pool: location.pool, for: what)
        var image: crbd_image_t?
        let rc = readOnly ? crbd_open_read_only(context, location.image, &image, nil) : crbd_open(context, location.image, &image, nil)
        guard rc == 0, let image else { throw RBDError.open(what, "cannot open the image", rc) }
        return image
    }

    private func withIOVector(_ buffer: UnsafeMutableRawBufferPointer,
                              _ submit: (crbd_image_t, UnsafePointer<iovec>, Int32, crbd_completion_t) -> Int32) throws(BackstoreError) -> Int64 {
        guard !closed.load(ordering: .relaxed) else { throw BackstoreError(.read, errno: EBADF, path: path) }
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        return withUnsafePointer(to: &vector) { iov in submitAndWait { image, completion in submit(image, iov, 1, completion) } }
    }

    private func withIOVectors(_ segments: [UnsafeMutableRawBufferPointer],
                               _ submit: (crbd_image_t, UnsafePointer<iovec>, Int32, crbd_completion_t) -> Int32) throws(BackstoreError) -> Int64 {
        guard !closed.load(ordering: .relaxed) else { throw BackstoreError(.read, errno: EBADF, path: path) }
        var vectors = segments.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        return vectors.withUnsafeMutableBufferPointer { iov in
            submitAndWait { image, completion in submit(image, iov.baseAddress!, Int32(iov.count), completion) }
        }
    }
}

/// Opens (creating when `size` is given and the image is missing) the RBD image a spec names.
func openRBDImage(_ spec: BackstoreSpec) throws(BackstoreOpenError) -> RBDImageStore {
    let location: RBDLocation
    switch RBDLocation.parse(spec.path, options: spec.options) {
    case .success(let parsed): location = parsed
    case .failure(let problem):
        throw BackstoreOpenError(.invalidSpec, path: spec.path, message: "rbd:\(spec.path): \(problem.message)")
    }
    let what = location.description
    let cluster = try RBDCluster.connection(for: location)
    let context = try cluster.ioContext(pool: location.pool, for: what)
    var image: crbd_image_t?
    var rc = spec.readOnly ? crbd_open_read_only(context, location.image, &image, nil)
                           : crbd_open(context, location.image, &image, nil)
    if rc == -ENOENT {
        guard let size = spec.size, !spec.readOnly else {
            throw BackstoreOpenError(.notFound, path: what, message: spec.readOnly
                ? "\(what) does not exist and cannot be created read-only"
                : "\(what) does not exist; give size=… to create it (e.g. rbd:\(spec.path),size=10G)")
        }
        var order: Int32 = 22  // 4 MiB objects, RBD's default
        rc = location.shared
            ? crbd_create2(context, location.image, size, RBDSharing.sharedFeatures, &order)
            : crbd_create(context, location.image, size, &order)
        guard rc == 0 || rc == -EEXIST else { throw RBDError.open(what, "cannot create the image (\(size) bytes)", rc) }
        rc = crbd_open(context, location.image, &image, nil)
    }
    guard rc == 0, let image else { throw RBDError.open(what, "cannot open the image", rc) }
    if location.shared && !spec.readOnly {
        do { try RBDSharing.dropExclusiveLock(image, what) } catch {
            _ = crbd_close(image)
            throw error
        }
    }
    var info = crbd_image_info_t()
    rc = crbd_stat(image, &info)
    guard rc == 0 else {
        _ = crbd_close(image)
        throw RBDError.open(what, "cannot stat the image", rc)
    }
    let store = RBDImageStore(location: location, image: image, size: info.size, objectSize: info.obj_size,
                              readOnly: spec.readOnly, sharedThrough: cluster, context: context)
    if let wanted = spec.size, wanted != info.size {
        if spec.growsExistingImage && wanted > info.size && !spec.readOnly {
            do { try store.resize(to: wanted) } catch {
                store.close()
                throw RBDError.open(what, "cannot grow the image to \(wanted) bytes", -error.errno)
            }
        } else if !spec.growsExistingImage {
            store.close()
            throw BackstoreOpenError(.sizeMismatch(actual: info.size, requested: wanted), path: what,
                                     message: "\(what) is \(info.size) bytes, not the \(wanted) bytes size= asks for (it is not resized)")
        }
    }
    return store
}

/// An image several gateways write at once (`shared=yes`). RBD's exclusive lock lets one
/// client write at a time and hands the lock over on request, so two active gateways would
/// pass it back and forth on every write; without it every gateway writes directly, RADOS
/// orders the writes per object, and with no client cache (RBDCluster) a write through one
/// gateway reads back through another at once. Object map and fast diff need the lock and go
/// with it (GET LBA STATUS then asks the OSDs).
enum RBDSharing {
    static let sharedFeatures = UInt64(CRBD_FEATURE_LAYERING) | UInt64(CRBD_FEATURE_DEEP_FLATTEN)
    static let lockBound = UInt64(CRBD_FEATURE_EXCLUSIVE_LOCK) | UInt64(CRBD_FEATURE_OBJECT_MAP) | UInt64(CRBD_FEATURE_FAST_DIFF)

    static func dropExclusiveLock(_ image: crbd_image_t, _ what: String) throws(BackstoreOpenError) {
        var features: UInt64 = 0
        var rc = crbd_get_features(image, &features)
        guard rc == 0 else { throw RBDError.open(what, "cannot read the image's features", rc) }
        if features & UInt64(CRBD_FEATURE_JOURNALING) != 0 {
            throw BackstoreOpenError(.invalidSpec, path: what, message:
                "\(what) has journaling (RBD mirroring), which needs the exclusive lock: it cannot be shared=yes by several gateways")
        }
        // Object map and fast diff first: they depend on the lock.
        for bits in [UInt64(CRBD_FEATURE_FAST_DIFF), UInt64(CRBD_FEATURE_OBJECT_MAP), UInt64(CRBD_FEATURE_EXCLUSIVE_LOCK)]
            where features & bits != 0 {
            rc = crbd_update_features(image, bits, 0)
            guard rc == 0 else { throw RBDError.open(what, "cannot turn off the exclusive-lock feature for shared=yes", rc) }
        }
    }
}

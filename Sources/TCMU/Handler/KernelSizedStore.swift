import Backstores
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The store behind a TCMU device, presented with the geometry the kernel configured:
/// capacity = `attrib/dev_size`, block size = `attrib/hw_block_size` (when compatible).
/// A RECONFIG dev_size resizes image files (grow or shrink, as the admin asked) and is
/// rejected for raw devices beyond their size. `dev_config` swaps the inner store.
public final class KernelSizedStore: BlockStore {
    struct State {
        var inner: any BlockStore
        var spec: BackstoreSpec
        var capacity: UInt64
    }
    private let state: Mutex<State>
    public let logicalBlockSize: Int

    public enum ResizeError: Error, Sendable, Equatable {
        case notBlockMultiple(UInt64)
        case beyondDevice(requested: UInt64, device: UInt64)
        case system(errno: Int32)
    }

    /// Opens the spec's store. A missing image is created with `deviceSize`; an existing
    /// image smaller than `deviceSize` is grown (never shrunk implicitly).
    public init(spec: BackstoreSpec, deviceSize: UInt64?, blockSize: Int?) throws {
        var spec = spec
        if let deviceSize { Self.createWhenMissing(&spec, size: deviceSize) }
        let inner = try openStore(for: spec)
        let innerBlock = inner.logicalBlockSize
        if let blockSize, blockSize >= innerBlock, blockSize % innerBlock == 0, blockSize.nonzeroBitCount == 1 {
            logicalBlockSize = blockSize
        } else {
            logicalBlockSize = innerBlock
        }
        var capacity = inner.byteCount
        if let deviceSize, deviceSize > 0 {
            if deviceSize > inner.byteCount {
                if spec.kind.isSizedByDevice {
                    inner.close()
                    throw ResizeError.beyondDevice(requested: deviceSize, device: capacity)
                }
                do {
                    try Self.resize(inner, to: deviceSize)
                    try inner.refreshSize()
                } catch {
                    inner.close()
                    throw error
                }
            }
            capacity = deviceSize
        }
        state = Mutex(State(inner: inner, spec: spec, capacity: capacity - capacity % UInt64(logicalBlockSize)))
    }

    /// Applies a new `dev_size`.
    public func resize(to bytes: UInt64) throws(ResizeError) {
        guard bytes > 0, bytes % UInt64(logicalBlockSize) == 0 else { throw .notBlockMultiple(bytes) }
        let (spec, inner) = state.withLock { ($0.spec, $0.inner) }
        if spec.kind.isSizedByDevice {
            guard bytes <= inner.byteCount else { throw .beyondDevice(requested: bytes, device: inner.byteCount) }
        } else {
            try Self.resize(inner, to: bytes)
            _ = try? inner.refreshSize()
        }
        state.withLock { $0.capacity = bytes }
    }

    /// Serves another backstore (RECONFIG dev_config); the old one is closed, so the caller
    /// makes sure no command is using it (`RingServer.quiesce`).
    public func replace(spec: BackstoreSpec) throws {
        let capacity = state.withLock { $0.capacity }
        var spec = spec
        Self.createWhenMissing(&spec, size: capacity)
        let next = try openStore(for: spec)
        let old = state.withLock { s -> any BlockStore in
            defer { s.inner = next; s.spec = spec }
            return s.inner
        }
        old.close()
    }

    /// A missing image is created with the kernel's size. A file image is looked up by path;
    /// an image elsewhere (rbd) is opened with the size as a floor, so it is created when
    /// missing and an existing one is kept (grown below only when smaller).
    private static func createWhenMissing(_ spec: inout BackstoreSpec, size: UInt64) {
        guard spec.size == nil, !spec.kind.isSizedByDevice else { return }
        switch spec.kind.locator {
        case .path:
            if access(spec.path, F_OK) != 0 { spec.size = size }
        case .poolImage:
            spec.size = size
            spec.growsExistingImage = true
        }
    }

    private static func resize(_ store: any BlockStore, to bytes: UInt64) throws(ResizeError) {
        do {
            try resizeStore(store, to: bytes)
        } catch let error as BackstoreOpenError {
            if case .system(let e) = error.reason { throw .system(errno: e) }
            throw .system(errno: EINVAL)
        } catch let error as BackstoreError {
            throw .system(errno: error.errno)
        } catch {
            throw .system(errno: EIO)
        }
    }

    private var inner: any BlockStore { state.withLock { $0.inner } }
    public var spec: BackstoreSpec { state.withLock { $0.spec } }

    public var kind: BackstoreKind { inner.kind }
    public var path: String { inner.path }
    public var byteCount: UInt64 { state.withLock { $0.capacity } }
    public var isThinProvisioned: Bool { inner.isThinProvisioned }
    public var supportsDiscard: Bool { inner.supportsDiscard }
    public var isReadOnly: Bool { inner.isReadOnly }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) {
        try inner.read(into: buffer, at: offset)
    }
    public func readWithoutBlocking(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        inner.readWithoutBlocking(into: buffer, at: offset)
    }
    public var mayReadWithoutBlocking: Bool { inner.mayReadWithoutBlocking }
    public func read(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(BackstoreError) {
        try inner.read(into: segments, at: offset)
    }
    public func readWithoutBlocking(into segments: [UnsafeMutableRawBufferPointer], at offset: UInt64) -> Bool {
        inner.readWithoutBlocking(into: segments, at: offset)
    }
    public func write(from segments: [UnsafeMutableRawBufferPointer], at offset: UInt64, durable: Bool) throws(BackstoreError) {
        try inner.write(from: segments, at: offset, durable: durable)
    }
    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        try inner.write(from: buffer, at: offset, durable: durable)
    }
    public func flush() throws(BackstoreError) { try inner.flush() }
    public func discard(offset: UInt64, length: UInt64) throws(BackstoreError) {
        try inner.discard(offset: offset, length: length)
    }
    public func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        try inner.allocationState(at: offset, limit: limit)
    }
    @discardableResult
    public func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    public func close() { inner.close() }
}

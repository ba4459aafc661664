/// What the three stores share: positional I/O, flush and close through one `StoreCore`.
/// Each store adds only what differs (discard, allocation state, size source).
protocol CoreBackedStore: BlockStore {
    var core: StoreCore { get }
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
    }
}

import NIOCore

/// Buffers of one connection used again for later commands instead of allocating per command
/// (read data, PDU headers). A buffer is given back once its bytes went to the channel (the
/// channel may still hold it), and taken again only when nothing else holds it any more
/// (`modifyIfUniquelyOwned`): the socket wrote it. Oldest first; one still held goes to the back
/// and a fresh buffer is allocated, which later joins the ring, until the ring has the slack the
/// connection's queue depth needs. Confined to the connection's event loop.
struct BufferRecycler {
    private var ring: [ByteBuffer?]
    private var first = 0
    private var count = 0
    private var keptBytes = 0
    /// What the kept buffers may hold in all: memory a connection keeps while idle.
    private let maxKeptBytes: Int

    init(slots: Int, maxKeptBytes: Int) {
        ring = Array(repeating: nil, count: slots)
        self.maxKeptBytes = maxKeptBytes
    }

    /// An empty buffer of at least `capacity` bytes, held by nothing else.
    mutating func take(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard count > 0 else { return allocator.buffer(capacity: capacity) }
        let kept = ring[first]?.capacity ?? 0
        let free = ring[first]?.modifyIfUniquelyOwned { buffer in buffer.clear(minimumCapacity: capacity) } != nil
        let oldest = ring[first].take()
        first = (first + 1) % ring.count
        guard free, let oldest else {
            ring[(first + count - 1) % ring.count] = oldest  // still being written: try it later
            return allocator.buffer(capacity: capacity)
        }
        count -= 1
        keptBytes -= kept
        return oldest
    }

    /// Keeps `buffer` for a later `take`, unless the ring or the byte budget is full.
    mutating func give(_ buffer: ByteBuffer) {
        let capacity = buffer.capacity
        guard count < ring.count, capacity <= maxKeptBytes - keptBytes else { return }
        ring[(first + count) % ring.count] = buffer
        count += 1
        keptBytes += capacity
    }

    /// Lets every kept buffer go (a connection gone idle).
    mutating func removeAll() {
        for index in ring.indices { ring[index] = nil }
        (first, count, keptBytes) = (0, 0, 0)
    }
}

import NIOCore

/// Buffers of one connection used again for later commands instead of allocating per command
/// (read data, PDU headers). A buffer is given back once its bytes went to the channel (the
/// channel may still hold it), and taken again only when nothing else holds it any more
/// (`modifyIfUniquelyOwned`): the socket wrote it. The most recently given free buffer goes
/// first, as glibc's free lists would: its memory is the likeliest to be in the CPU cache. When
/// none is free a fresh one is
/// allocated, which joins the others later, until the connection has the spares its queue
/// depth needs. Confined to the connection's event loop.
struct BufferRecycler {
    private var kept: [ByteBuffer] = []
    private var keptBytes = 0
    private let slots: Int
    /// What the kept buffers may hold in all: memory a connection keeps while idle.
    private let maxKeptBytes: Int

    init(slots: Int, maxKeptBytes: Int = .max) {
        self.slots = slots
        self.maxKeptBytes = maxKeptBytes
        kept.reserveCapacity(slots)
    }

    /// An empty buffer of at least `capacity` bytes, held by nothing else.
    mutating func take(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var index = kept.count - 1
        while index >= 0 {
            let size = kept[index].capacity
            if kept[index].modifyIfUniquelyOwned({ buffer in buffer.clear(minimumCapacity: capacity) }) != nil {
                keptBytes -= size
                return kept.remove(at: index)
            }
            index -= 1
        }
        return allocator.buffer(capacity: capacity)
    }

    /// Keeps `buffer` for a later `take`, unless the slots or the byte budget are full.
    mutating func give(_ buffer: ByteBuffer) {
        let capacity = buffer.capacity
        guard kept.count < slots, capacity <= maxKeptBytes - keptBytes else { return }
        kept.append(buffer)
        keptBytes += capacity
    }

    /// Lets every kept buffer go (a connection gone idle).
    mutating func removeAll() {
        kept.removeAll(keepingCapacity: true)
        keptBytes = 0
    }
}

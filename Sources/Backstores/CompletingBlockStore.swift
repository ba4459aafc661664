/// A store whose reads and writes finish on its own threads and say so through a callback
/// (librbd's completions). The engine submits such I/O from the event loop and the callback
/// answers the command: no I/O worker sits waiting for a network round trip, and the wake-up
/// of that worker is saved on every command.
///
/// Its completed writes are durable (no write cache in front of it), so FUA and a write cache
/// setting change nothing for them.
public protocol CompletingBlockStore: BlockStore {
    /// Starts reading exactly `buffer.count` bytes at `offset`. `buffer` must stay valid until
    /// `completion` ran; it runs once, on any thread, with nil on success. It must not block.
    func submitRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                    completion: @escaping @Sendable (BackstoreError?) -> Void)
    /// Starts writing all of `buffer` at `offset`; the same rules as `submitRead`.
    func submitWrite(from buffer: UnsafeRawBufferPointer, at offset: UInt64,
                     completion: @escaping @Sendable (BackstoreError?) -> Void)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// One page-aligned bounce buffer owned by an `AlignedBufferPool`.
struct AlignedChunk: @unchecked Sendable {  // the pool hands each chunk to one user at a time
    let base: UnsafeMutableRawPointer
}

/// A small cache of aligned bounce buffers for O_DIRECT I/O from unaligned caller
/// memory and for writing zeros. Buffers are allocated on first use and reused; at most
/// `maxCached` stay around, extra concurrent users get a temporary one.
final class AlignedBufferPool: Sendable {
    let chunkSize: Int
    let alignment: Int
    let maxCached: Int
    private let cache = Mutex<[AlignedChunk]>([])

    init(chunkSize: Int = 1 << 20, alignment: Int = 4096, maxCached: Int = 4) {
        self.chunkSize = chunkSize
        self.alignment = alignment
        self.maxCached = maxCached
    }

    deinit {
        cache.withLock { chunks in
            for chunk in chunks { free(chunk.base) }
            chunks.removeAll()
        }
    }

    /// Lends a buffer of `chunkSize` bytes aligned to `alignment` (contents undefined).
    func withBuffer<R>(
        path: String, operation: BackstoreError.Operation = .read, _ body: (UnsafeMutableRawBufferPointer) throws(BackstoreError) -> R
    ) throws(BackstoreError) -> R {
        let chunk: AlignedChunk
        if let cached = cache.withLock({ $0.popLast() }) {
            chunk = cached
        } else {
            var raw: UnsafeMutableRawPointer?
            let rc = posix_memalign(&raw, alignment, chunkSize)
            guard rc == 0, let raw else { throw BackstoreError(operation, errno: ENOMEM, path: path) }
            chunk = AlignedChunk(base: raw)
        }
        defer {
            let kept = cache.withLock { chunks -> Bool in
                guard chunks.count < maxCached else { return false }
                chunks.append(chunk)
                return true
            }
            if !kept { free(chunk.base) }
        }
        return try body(UnsafeMutableRawBufferPointer(start: chunk.base, count: chunkSize))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A file descriptor shared by concurrent I/O calls.
///
/// `close()` may race with in-flight `pread`s on other threads: the real close(2) is
/// deferred until the last in-flight user releases the descriptor, so an fd number is
/// never recycled under a running call. After `close()`, `withFD` throws EBADF.
final class FDHandle: Sendable {
    let fd: Int32
    /// Bit 0: closed. Bits 1…: number of in-flight users × 2.
    private let state = Atomic<Int>(0)

    init(_ fd: Int32) {
        self.fd = fd
    }

    deinit {
        if state.load(ordering: .acquiring) & 1 == 0 {
            _ = Glibc.close(fd)
        }
    }

    var isClosed: Bool {
        state.load(ordering: .relaxed) & 1 != 0
    }

    /// Runs `body` with the descriptor kept open for its duration.
    @inline(__always)
    func withFD<R>(
        _ operation: BackstoreError.Operation, path: String,
        _ body: (Int32) throws(BackstoreError) -> R
    ) throws(BackstoreError) -> R {
        guard acquire() else { throw BackstoreError(operation, errno: EBADF, path: path) }
        defer { release() }
        return try body(fd)
    }

    private func acquire() -> Bool {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & 1 != 0 { return false }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current + 2, ordering: .acquiring)
            if exchanged { return true }
            current = original
        }
    }

    private func release() {
        let new = state.wrappingSubtract(2, ordering: .acquiringAndReleasing).newValue
        if new == 1 {  // closed, and we were the last user
            _ = Glibc.close(fd)
        }
    }

    /// Marks the descriptor closed; idempotent. The fd is closed now or by the last user.
    func close() {
        let old = state.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        if old == 0 {
            _ = Glibc.close(fd)
        }
    }
}

import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Makes COMPARE AND WRITE atomic against every other write of the LU: ordinary writes
/// take the lock shared (one uncontended atomic), COMPARE AND WRITE exclusive. Writer
/// preference keeps a COMPARE AND WRITE from starving behind a stream of writes.
///
/// A write a store completes by callback cannot hold a pthread lock until then (only the
/// locking thread may unlock): it counts itself in `callbackWrites` while briefly holding
/// the lock shared, and the exclusive side waits for that count to reach zero.
final class IOLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let callbackWrites = Atomic<Int>(0)

    init() {
        lock = .allocate(capacity: 1)
        var attr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attr)
        pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attr)
        pthread_rwlockattr_destroy(&attr)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always)
    func shared<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    @inline(__always)
    func exclusive<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        // Rare (COMPARE AND WRITE, MODE SELECT): polling the few writes in flight is enough.
        while callbackWrites.load(ordering: .acquiring) > 0 { usleep(50) }
        return try body()
    }

    /// Enters shared for a write that ends in a callback; false (nothing held) while an
    /// exclusive holder runs or waits, so an event loop never blocks here.
    func tryBeginCallbackWrite() -> Bool {
        guard pthread_rwlock_tryrdlock(lock) == 0 else { return false }
        callbackWrites.add(1, ordering: .acquiringAndReleasing)
        pthread_rwlock_unlock(lock)
        return true
    }

    func endCallbackWrite() {
        callbackWrites.subtract(1, ordering: .acquiringAndReleasing)
    }
}

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
///
/// WRITE ATOMIC must also be atomic against reads, which take no lock: it bumps
/// `atomicGeneration` before and after its write (odd while it runs), and a read that saw
/// the generation move reads again under the lock (a sequence lock; reads are idempotent).
final class IOLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let callbackWrites = Atomic<Int>(0)
    private let atomicGeneration = Atomic<UInt64>(0)

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

    /// A write no read or write sees half done (WRITE ATOMIC).
    func atomicWrite<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try exclusive { () throws(E) -> R in
            atomicGeneration.add(1, ordering: .acquiringAndReleasing)
            defer { atomicGeneration.add(1, ordering: .acquiringAndReleasing) }
            return try body()
        }
    }

    /// The generation a lock-free read starts from; odd while an atomic write runs.
    @inline(__always)
    func readGeneration() -> UInt64 { atomicGeneration.load(ordering: .acquiring) }

    /// True when no atomic write ran or began since `generation` (taken before the read).
    @inline(__always)
    func readWasConsistent(since generation: UInt64) -> Bool {
        atomicMemoryFence(ordering: .acquiring)
        return generation & 1 == 0 && atomicGeneration.load(ordering: .acquiring) == generation
    }

    /// Runs a read lock-free, and again under the lock when an atomic write overlapped it.
    @inline(__always)
    func consistentRead<E: Error>(_ body: () throws(E) -> Void) throws(E) {
        let generation = readGeneration()
        if generation & 1 == 0 {
            try body()
            if readWasConsistent(since: generation) { return }
        }
        try shared { () throws(E) in try body() }
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

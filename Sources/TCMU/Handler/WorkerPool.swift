#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fixed set of OS threads running blocking jobs (backstore I/O) FIFO.
///
/// Not Dispatch: on Linux libdispatch cannot see threads blocked in pread/usleep and keeps
/// its pool near the core count, so one slow command would hold back fast ones.
final class WorkerPool: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var jobs: [@Sendable () -> Void] = []
    private var jobHead = 0
    private var stopping = false
    private var threads: [JoinableThread] = []
    private static let taken: @Sendable () -> Void = {}

    init(threads count: Int) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        threads = (0..<max(1, count)).map { _ in JoinableThread { [self] in self.loop() } }
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    /// Runs what is queued, then ends the threads.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        let all = threads
        threads = []
        pthread_mutex_unlock(mutex)
        pthread_cond_broadcast(condition)
        for t in all { t.join() }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func loop() {
        while true {
            pthread_mutex_lock(mutex)
            while jobHead == jobs.count && !stopping {
                pthread_cond_wait(condition, mutex)
            }
            if jobHead == jobs.count {
                pthread_mutex_unlock(mutex)
                return
            }
            let job = jobs[jobHead]
            // A taken job must not stay referenced until the next compaction: its captures
            // (the RingServer) would outlive stop() in a cycle server → pool → job → server.
            jobs[jobHead] = Self.taken
            jobHead += 1
            if jobHead > 256, jobHead * 2 > jobs.count {
                jobs.removeFirst(jobHead)
                jobHead = 0
            }
            pthread_mutex_unlock(mutex)
            job()
        }
    }
}

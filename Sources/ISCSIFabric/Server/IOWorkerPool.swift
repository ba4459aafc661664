import Foundation

/// Threads that run blocking engine calls (pread/pwrite) off the event loops.
/// A plain locked queue: one wake-up per job at most, and none while every worker is busy,
/// which is where the time goes at high queue depth on few cores.
public final class IOWorkerPool: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var idle = 0
    private var stopping = false
    private var running = 0
    private let finished = NSCondition()

    public init(threads: Int) {
        precondition(threads > 0)
        running = threads
        for index in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "swtgt-io-\(index)"
            thread.start()
        }
    }

    /// Queues a job; jobs submitted after `shutdown` still run (shutdown drains the queue).
    /// With `wake: false` the job waits for the next `wake()` (or a worker that is already
    /// running): an event loop queues a whole read burst and wakes the pool once.
    public func submit(wake: Bool = true, _ job: @escaping @Sendable () -> Void) {
        enqueue(.closure(job), wake: wake)
    }

    /// A SCSI command, queued by value (no closure to allocate per command).
    func submit(wake: Bool, _ command: WorkerCommand) {
        enqueue(.command(command), wake: wake)
    }

    private func enqueue(_ job: Job, wake: Bool) {
        condition.lock()
        jobs.append(job)
        if wake && idle > 0 { condition.signal() }
        condition.unlock()
    }

    /// Wakes one idle worker if jobs are waiting; that worker wakes the next while work remains.
    public func wake() {
        condition.lock()
        if idle > 0 && head < jobs.count { condition.signal() }
        condition.unlock()
    }

    /// Runs every queued job, then stops the threads.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.lock()
        while running > 0 { finished.wait() }
        finished.unlock()
    }

    private func work() {
        while let job = next() {
            switch job {
            case .closure(let body): body()
            case .command(let command): command.run()
            }
        }
        finished.lock()
        running -= 1
        finished.broadcast()
        finished.unlock()
    }

    private func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count {
            if stopping { return nil }
            idle += 1
            condition.wait()
            idle -= 1
        }
        let job = jobs[head]
        head += 1
        // More work than this worker: pass the wake-up on (one futex call per extra worker).
        if head < jobs.count && idle > 0 { condition.signal() }
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)  // the queue's storage serves the next burst
            head = 0
        } else if head > 1024 {
            // Compact now and then instead of shifting on every take.
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}

extension IOWorkerPool {
    enum Job: Sendable {
        case closure(@Sendable () -> Void)
        case command(WorkerCommand)
    }
}

import NIOCore
import SCSIEngine

/// Runs a session's commands in the engine without blocking the event loop: a read the page
/// cache can serve is answered on the loop (preadv2 RWF_NOWAIT, no hop to a thread and back);
/// a read or write of a store that completes by callback (librbd) is submitted from the loop
/// and answered through the mailbox; everything else goes to the I/O pool, woken once per read burst; finished commands come
/// back through the mailbox, which wakes the loop once for many completions.
struct CommandDispatcher {
    private let pool: IOWorkerPool
    private let device: SCSITarget
    private let nexus: NexusID
    private let allocator: ByteBufferAllocator
    private let completions = CompletionMailbox()
    /// Asks the event loop to drain the mailbox (the first post after a drain calls it).
    private let scheduleDrain: @Sendable () -> Void
    private var pendingWake = false

    init(pool: IOWorkerPool, device: SCSITarget, nexus: NexusID, allocator: ByteBufferAllocator,
         scheduleDrain: @escaping @Sendable () -> Void) {
        self.pool = pool
        self.device = device
        self.nexus = nexus
        self.allocator = allocator
        self.scheduleDrain = scheduleDrain
    }

    /// The outcome when the page cache answered at once; otherwise nil and the command is on
    /// the pool. Inside a read burst the pool is woken at `endOfReadBurst`.
    mutating func dispatch(_ request: CommandRequest, inReadBurst: Bool) -> CompletionMailbox.Completion? {
        var readBuffer: ByteBuffer?
        let (device, nexus, allocator, completions, scheduleDrain) = (device, nexus, allocator, completions, scheduleDrain)
        if device.completesByCallback(lun: request.lun, nexus: nexus) {
            let (itt, readLength, writeLength) = (request.initiatorTaskTag, request.readLength, request.writeLength)
            let attempt = CommandExecution.submit(request, device: device, nexus: nexus, allocator: allocator) { outcome in
                if completions.post(.init(itt: itt, outcome: outcome, readLength: readLength, writeLength: writeLength)) {
                    scheduleDrain()
                }
            }
            if attempt.taken { return nil }
            readBuffer = attempt.buffer
        } else if request.mayRunWithoutBlocking {
            let attempt = CommandExecution.runWithoutBlocking(request, device: device, nexus: nexus, allocator: allocator)
            if let outcome = attempt.outcome {
                return .init(itt: request.initiatorTaskTag, outcome: outcome, readLength: request.readLength,
                             writeLength: request.writeLength)
            }
            readBuffer = attempt.buffer  // reused by the worker: one allocation either way
        }
        pendingWake = pendingWake || inReadBurst
        pool.submit(wake: !inReadBurst) { [readBuffer] in
            let outcome = CommandExecution.run(request, device: device, nexus: nexus, readBuffer: readBuffer, allocator: allocator)
            if completions.post(.init(itt: request.initiatorTaskTag, outcome: outcome, readLength: request.readLength,
                                      writeLength: request.writeLength)) {
                scheduleDrain()
            }
        }
        return nil
    }

    /// Wakes the pool once for everything queued during the read burst.
    mutating func endOfReadBurst() {
        guard pendingWake else { return }
        pendingWake = false
        pool.wake()
    }

    /// Everything the workers finished since the last drain.
    func takeCompletions() -> [CompletionMailbox.Completion] {
        completions.take()
    }
}

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
    /// Read buffers, used again once their Data-In went to the channel (no allocation per
    /// read). A connection keeps at most 4 MiB of them: measured, 128 KiB reads at queue depth
    /// 32 allocate nothing with 4 MiB, 0.86 times per read with 2 MiB. Let go when idle.
    private var readBuffers = BufferRecycler(slots: 64, maxKeptBytes: 4 << 20)
    private var dispatchedSinceIdleCheck = false

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
        dispatchedSinceIdleCheck = true
        var buffer: ByteBuffer?
        var dataIn = IOVectors.empty
        if request.readLength > 0 {
            var taken = readBuffers.take(capacity: request.readLength, allocator: allocator)
            dataIn = CommandExecution.reserve(&taken, length: request.readLength)
            buffer = taken
        }
        let (device, nexus, completions, scheduleDrain) = (device, nexus, completions, scheduleDrain)
        let (itt, readLength, writeLength) = (request.initiatorTaskTag, request.readLength, request.writeLength)
        if device.completesByCallback(lun: request.lun, nexus: nexus) {
            let taken = CommandExecution.submit(request, device: device, nexus: nexus, dataIn: dataIn, buffer: buffer) { outcome in
                if completions.post(.init(itt: itt, outcome: outcome, readLength: readLength, writeLength: writeLength)) {
                    scheduleDrain()
                }
            }
            if taken { return nil }
        } else if request.mayRunWithoutBlocking, let buffer,
                  let outcome = CommandExecution.runWithoutBlocking(request, device: device, nexus: nexus, dataIn: dataIn, buffer: buffer) {
            return .init(itt: itt, outcome: outcome, readLength: readLength, writeLength: writeLength)
        }
        pendingWake = pendingWake || inReadBurst
        pool.submit(wake: !inReadBurst, WorkerCommand(request: request, device: device, nexus: nexus, buffer: buffer,
                                                      space: CommandExecution.Space(vectors: dataIn),
                                                      completions: completions, scheduleDrain: scheduleDrain))
        return nil
    }

    /// Wakes the pool once for everything queued during the read burst.
    mutating func endOfReadBurst() {
        guard pendingWake else { return }
        pendingWake = false
        pool.wake()
    }

    /// Called now and then (the ping timer): a connection that ran no command since the last
    /// call lets its spare read buffers go.
    mutating func releaseBuffersIfIdle() {
        if !dispatchedSinceIdleCheck { readBuffers.removeAll() }
        dispatchedSinceIdleCheck = false
    }

    /// Takes back a read buffer whose Data-In was handed to the channel.
    mutating func recycle(_ buffer: ByteBuffer) {
        readBuffers.give(buffer)
    }

    /// Everything the workers finished since the last drain, swapped into `finished`.
    func takeCompletions(into finished: inout [CompletionMailbox.Completion]) {
        completions.take(into: &finished)
    }
}

/// A command for an I/O worker, queued by value: everything `CommandExecution.run` needs and
/// where its outcome goes.
struct WorkerCommand: Sendable {
    let request: CommandRequest
    let device: SCSITarget
    let nexus: NexusID
    let buffer: ByteBuffer?
    let space: CommandExecution.Space
    let completions: CompletionMailbox
    let scheduleDrain: @Sendable () -> Void

    func run() {
        let outcome = CommandExecution.run(request, device: device, nexus: nexus, dataIn: space.vectors, buffer: buffer)
        if completions.post(.init(itt: request.initiatorTaskTag, outcome: outcome, readLength: request.readLength,
                                  writeLength: request.writeLength)) {
            scheduleDrain()
        }
    }
}

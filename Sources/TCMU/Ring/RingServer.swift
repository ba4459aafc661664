import CTCMU
import Logging
import SCSIEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the commands of a CDB against caller-owned memory: the SCSI engine in the
/// daemon, anything in tests. `dataOut`/`dataIn` point straight into the data area.
public typealias RingCommandExecutor = @Sendable (
    _ cdb: UnsafeRawBufferPointer, _ dataOut: IOVectors, _ dataIn: IOVectors
) -> SCSICommandResult

/// Runs a command only if it cannot block (a READ the page cache holds); nil otherwise.
/// The reader thread runs these itself: no hand-over to a worker, no thread wake-up.
public typealias RingFastExecutor = @Sendable (_ cdb: UnsafeRawBufferPointer, _ dataIn: IOVectors) -> SCSICommandResult?

/// Serves one TCMU command ring: a reader thread drains entries from `cmd_tail` to
/// `cmd_head`, workers run commands concurrently (so slow and fast commands do not wait
/// on each other), completions are written back under one lock and `cmd_tail` advances.
/// The reader runs a command itself when that costs no concurrency: a READ the page cache
/// holds, or a lone command while no other runs.
///
/// The signalling fd is the uio device (or, in tests, a socket with the same 4-byte
/// read/write contract). The server does not own the mapping or the fd.
public final class RingServer: Sendable {
    public let name: String
    public let ring: MappedRing
    let fd: Int32
    let stopFD: Int32
    let executor: RingCommandExecutor
    let fastExecutor: RingFastExecutor?
    let capabilities: TCMUProtocol.Capabilities
    let workers: WorkerPool
    let logger: Logger
    /// How long the reader keeps looking at `cmd_head` after the ring ran dry before it
    /// sleeps in poll(2); 0: it sleeps at once. See `pollForCommands`.
    let pollNanoseconds: UInt64
    /// `cmd_head` as far as the reader has read it (what polling compares against).
    private let readHead = Atomic<UInt32>(0)
    /// Set by `stop` before it signals: a polling reader does not wait in poll(2).
    private let stopping = Atomic<Bool>(false)

    struct State: Sendable {
        var cursor: RingCursor
        var queue: CompletionQueue<RingResponse>
        var inFlight: Set<UInt16> = []
        var aborted: Set<UInt16> = []
        /// Bumped on a ring reset: completions of an earlier generation are dropped.
        var generation: UInt64 = 0
        /// Commands being executed by workers (any generation).
        var running = 0
        /// A malformed entry was seen; nothing more is read until a reset.
        var broken = false
        /// `quiesce` is running: entries stay on the ring (the kernel keeps queueing).
        var paused = false
    }
    let state: Mutex<State>
    private let thread = Mutex<JoinableThread?>(nil)

    /// Counters for tests and `statistics`.
    public struct Statistics: Sendable, Equatable {
        public var commands = 0
        public var taskManagementEntries = 0
        public var abortedBeforeStart = 0
        public var unknownEntries = 0
        public var resets = 0
        public var malformedEntries = 0
    }
    private let stats = Mutex(Statistics())
    /// Executed commands; an atomic, not in `stats`, to keep a lock off the per-command path.
    private let executedCommands = Atomic<Int>(0)
    /// Size of `State.aborted`, readable without the lock: workers skip the lock when 0.
    private let abortedCount = Atomic<Int>(0)
    public var statistics: Statistics {
        var s = stats.withLock { $0 }
        s.commands = executedCommands.load(ordering: .relaxed)
        return s
    }

    /// Starts serving. Pending entries between the mailbox's `cmd_tail` and `cmd_head`
    /// (left by a previous daemon) are picked up like new ones.
    /// `workerThreads` commands run at once (a slow one holds only its own thread).
    /// `pollMicroseconds`: see `pollNanoseconds`.
    public init(name: String, ring: MappedRing, signalFD: Int32, workerThreads: Int = 8,
                pollMicroseconds: Int = 0,
                executor: @escaping RingCommandExecutor, fastExecutor: RingFastExecutor? = nil,
                logger: Logger = Logger(label: "tcmu.ring")) throws {
        self.name = name
        self.ring = ring
        self.fd = signalFD
        let stop = ctcmu_eventfd()
        guard stop >= 0 else { throw RingServerError.system(op: "eventfd", errno: -stop) }
        self.stopFD = stop
        self.executor = executor
        self.fastExecutor = fastExecutor
        self.capabilities = ring.capabilities
        self.logger = logger
        self.workers = WorkerPool(threads: workerThreads)
        self.pollNanoseconds = UInt64(max(0, pollMicroseconds)) * 1000
        let tail = ring.tail
        readHead.store(tail, ordering: .relaxed)
        state = Mutex(State(
            cursor: RingCursor(ringSize: ring.ringSize, position: tail),
            queue: CompletionQueue(ringSize: ring.ringSize, tail: tail,
                                   outOfOrder: ring.capabilities.contains(.outOfOrderCompletion))))
        let t = JoinableThread { [self] in self.readerLoop() }
        thread.withLock { $0 = t }
    }

    /// Stops reading, waits for running commands to complete into the ring, returns.
    /// Must be called: the reader and worker threads keep the server alive until then.
    public func stop() {
        guard let t = thread.withLock({ t -> JoinableThread? in defer { t = nil }; return t }) else { return }
        stopping.store(true, ordering: .releasing)
        _ = ctcmu_eventfd_signal(stopFD)
        t.join()
        waitForWorkers()
        workers.shutdown()
        _ = ctcmu_close(stopFD)
    }

    /// Resets the ring through configfs: block the device, let the kernel complete every
    /// in-flight command BUSY and zero head/tail, forget our state, wait for workers still
    /// touching the data area, unblock.
    public func resetRing(using control: any RingControl) throws {
        try control.setBlocked(true)
        defer { try? control.setBlocked(false) }
        try control.resetRing()
        resynchronize(reason: "reset_ring")
        waitForWorkers()
    }

    /// Runs `body` while no command executes: stops reading the ring (new commands wait
    /// there, no BUSY for the initiators), waits for running ones, runs `body`, resumes.
    /// For swapping or resizing the store under the engine.
    public func quiesce<T>(_ body: () throws -> T) rethrows -> T {
        state.withLock { $0.paused = true }
        waitForWorkers()
        defer {
            state.withLock { $0.paused = false }
            processRing() // what arrived meanwhile; its kicks were consumed while paused
        }
        return try body()
    }

    // MARK: - Reader

    private func readerLoop() {
        // Entries a previous daemon left (restart) get no new kick: look once first.
        processRing()
        // Polling pays only while commands follow each other closely: it stops after a poll
        // finds nothing in time, and starts again once a sleep turns out shorter than the
        // poll would have been. Sparse traffic thus costs no spinning at all.
        var polling = pollNanoseconds > 0
        while true {
            if polling {
                pollForCommands()
                if stopping.load(ordering: .acquiring) { return }
                polling = false
            }
            let sleptAt = pollNanoseconds > 0 ? ctcmu_monotonic_ns() : 0
            let w = ctcmu_wait(fd, stopFD, -1)
            if w < 0 {
                logger.error("\(name): waiting on the ring failed: errno \(-w)")
                return
            }
            if w & 2 != 0 { return }
            // Ack before scanning, or a kick arriving during the scan is lost (tcmu-runner #30).
            if w & 1 != 0 { _ = ctcmu_uio_ack(fd) }
            let before = readHead.load(ordering: .relaxed)
            processRing()
            if pollNanoseconds > 0, readHead.load(ordering: .relaxed) != before {
                polling = ctcmu_monotonic_ns() &- sleptAt <= pollNanoseconds
            }
        }
    }

    /// Watches `cmd_head` for up to `pollNanoseconds` (from the last command read) and
    /// serves what arrives: a command that comes soon after the previous one, as at queue
    /// depth 1, then costs neither a wake-up nor the poll and read system calls. The kernel
    /// still counts its kicks; the next poll(2) returns at once for them and finds nothing.
    private func pollForCommands() {
        var deadline = ctcmu_monotonic_ns() &+ pollNanoseconds
        var spins = 0
        while !stopping.load(ordering: .relaxed) {
            if ring.head != readHead.load(ordering: .relaxed) {
                let before = readHead.load(ordering: .relaxed)
                processRing()
                // Only progress extends the poll (while paused, entries stay unread).
                if readHead.load(ordering: .relaxed) != before {
                    deadline = ctcmu_monotonic_ns() &+ pollNanoseconds
                    continue
                }
            }
            ctcmu_cpu_relax()
            spins += 1
            if spins & 31 == 0, ctcmu_monotonic_ns() >= deadline { return }
        }
    }

    /// Reads every published entry, hands commands to workers, retires what it can.
    func processRing() {
        let (commands, retired, generation, alone) = state.withLock { s -> ([RingCommand], Bool, UInt64, Bool) in
            noticeExternalReset(&s)
            var commands: [RingCommand] = []
            if !s.broken && !s.paused {
                readEntries(&s, into: &commands)
            }
            let alone = commands.count == 1 && s.running == 0
            s.running += commands.count
            readHead.store(s.cursor.position, ordering: .relaxed)
            return (commands, apply(s.queue.drain()), s.generation, alone)
        }
        if retired { kick() }
        var done: [(id: UInt16, response: RingResponse, generation: UInt64)] = []
        for command in commands {
            if let fast = fastExecutor, command.bidiIovecs.isEmpty, !isAborted(command.id, generation: generation) {
                let into = vectors(command.iovecs)
                if let result = command.cdb.withUnsafeBytes({ fast($0, into) }) {
                    done.append((command.id, response(result, into: into), generation))
                    continue
                }
            }
            if alone {
                // The only command on the ring, none running (queue depth 1): a worker would
                // add a hand-over and a thread wake-up for nothing. Whatever arrives meanwhile
                // waits for this one only.
                run(command, generation: generation)
                continue
            }
            workers.submit { [self] in self.run(command, generation: generation) }
        }
        // One drain and at most one kick for everything answered here.
        if !done.isEmpty { complete(done) }
    }

    private func readEntries(_ s: inout State, into commands: inout [RingCommand]) {
        var head = ring.head
        while !s.cursor.isDrained(head: head) {
            let position = s.cursor.position
            guard s.cursor.isAtEntryBoundary else {
                s.broken = true
                stats.withLock { $0.malformedEntries += 1 }
                logger.error("\(name): cmd_tail \(position) is not an entry of the \(ring.ringSize)-byte ring; ring needs a reset")
                return
            }
            let entry: RingCursor.Entry
            do {
                entry = try s.cursor.advance(lenOp: ring.lenOp(at: position), head: head)
            } catch {
                s.broken = true
                stats.withLock { $0.malformedEntries += 1 }
                logger.error("\(name): malformed ring entry \(error); ring needs a reset")
                return
            }
            let offset = ring.entryOffset(entry.offset)
            switch entry.kind {
            case .pad:
                s.queue.enqueue(RingSlot(offset: entry.offset, length: entry.length, commandID: nil))
            case .taskManagement:
                noteTaskManagement(&s, at: offset, length: entry.length)
                s.queue.enqueue(RingSlot(offset: entry.offset, length: entry.length, commandID: nil))
            case .unknown(let op):
                stats.withLock { $0.unknownEntries += 1 }
                logger.warning("\(name): unknown ring opcode \(op)")
                let flags = ctcmu_ent_uflags(ring.base, offset) | TCMUProtocol.UserFlags.unknownOp.rawValue
                ctcmu_ent_set_uflags(ring.base, offset, flags)
                s.queue.enqueue(RingSlot(offset: entry.offset, length: entry.length, commandID: nil))
            case .command:
                let id = ctcmu_ent_cmd_id(ring.base, offset)
                s.queue.enqueue(RingSlot(offset: entry.offset, length: entry.length, commandID: id))
                do {
                    let command = try RingCommand(ring: ring, position: entry.offset, length: entry.length)
                    s.inFlight.insert(id)
                    commands.append(command)
                } catch {
                    stats.withLock { $0.malformedEntries += 1 }
                    logger.error("\(name): command \(id): \(error)")
                    s.queue.finish(id, .internalTargetFailure)
                }
            }
            if s.cursor.isDrained(head: head) { head = ring.head }
        }
    }

    /// A TMR entry lists aborted commands already on the ring; those not started yet are
    /// answered TASK ABORTED without running. Each must still be completed (SAM: the core
    /// waits for them). Only ids in flight now count: the kernel reuses ids at once.
    private func noteTaskManagement(_ s: inout State, at offset: UInt64, length: UInt32) {
        guard Int(length) >= TCMUProtocol.tmrEntrySize else { return }
        let count = Int(ctcmu_tmr_cmd_cnt(ring.base, offset))
        let fits = (Int(length) - TCMUProtocol.tmrEntrySize) / 2
        for i in 0..<min(count, fits) {
            let id = ctcmu_tmr_cmd_id(ring.base, offset, UInt32(i))
            if s.inFlight.contains(id) { s.aborted.insert(id) }
        }
        abortedCount.store(s.aborted.count, ordering: .releasing)
        stats.withLock { $0.taskManagementEntries += 1 }
    }

    // MARK: - Workers and completion

    /// True when a TMR entry named this command before it started.
    private func isAborted(_ id: UInt16, generation: UInt64) -> Bool {
        abortedCount.load(ordering: .acquiring) > 0 && state.withLock { s in
            s.generation == generation && s.aborted.contains(id)
        }
    }

    private func run(_ command: RingCommand, generation: UInt64) {
        let response: RingResponse
        if isAborted(command.id, generation: generation) {
            stats.withLock { $0.abortedBeforeStart += 1 }
            response = .taskAborted
        } else {
            response = execute(command)
        }
        finished.withLock { $0.append((command.id, response, generation)) }
        drainCompletions(announced: 1)
    }

    private func execute(_ command: RingCommand) -> RingResponse {
        let out = vectors(command.iovecs)
        let into = command.bidiIovecs.isEmpty ? out : vectors(command.bidiIovecs)
        let result = command.cdb.withUnsafeBytes { cdb in executor(cdb, out, into) }
        return response(result, into: into)
    }

    /// The ring response for a result: READ_LEN where the kernel takes it, else the
    /// unused tail of the data-in buffer zeroed.
    private func response(_ result: SCSICommandResult, into: IOVectors) -> RingResponse {
        executedCommands.add(1, ordering: .relaxed)
        let readLength = capabilities.contains(.readLength) ? UInt32(clamping: result.dataInCount) : nil
        if readLength == nil, result.dataInCount < into.count {
            // Without READ_LEN the kernel returns the whole buffer: no stale bytes of
            // earlier commands (data-area pages are reused) may leak to the initiator.
            zeroFill(into, from: result.dataInCount)
        }
        return RingResponse(status: result.status.rawValue, sense: result.sense, readLength: readLength)
    }

    private func zeroFill(_ v: IOVectors, from start: Int) {
        var skip = start
        for segment in [v.first] + v.more {
            if skip >= segment.count { skip -= segment.count; continue }
            if let base = segment.baseAddress { memset(base + skip, 0, segment.count - skip) }
            skip = 0
        }
    }

    private func vectors(_ segments: [RingCommand.DataSegment]) -> IOVectors {
        func buffer(_ s: RingCommand.DataSegment) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(start: ring.base + s.offset, count: s.length)
        }
        guard let first = segments.first else { return .empty }
        return IOVectors(buffer(first), more: segments.count > 1 ? segments.dropFirst().map(buffer) : [])
    }

    /// Finished commands not yet written into the ring, with their generation.
    private let finished = Mutex<[(id: UInt16, response: RingResponse, generation: UInt64)]>([])
    /// Completions announced but not yet covered by a drain of `finished`.
    private let completionRequests = Atomic<Int>(0)

    /// Workers hand their result over and leave; one of them at a time (whoever finds no
    /// drain under way) writes every waiting result into the ring under the state lock.
    /// Keeps eight workers from queueing on the lock the reader needs too.
    private func complete(_ results: [(id: UInt16, response: RingResponse, generation: UInt64)]) {
        finished.withLock { $0.append(contentsOf: results) }
        drainCompletions(announced: results.count)
    }

    /// `announced` results were just added to `finished`; drains unless a drain is under way.
    private func drainCompletions(announced: Int) {
        guard completionRequests.add(announced, ordering: .acquiringAndReleasing).oldValue == 0 else { return }
        var covered = announced
        while true {
            let batch = finished.withLock { f -> [(id: UInt16, response: RingResponse, generation: UInt64)] in
                defer { f.removeAll(keepingCapacity: true) }
                return f
            }
            if !batch.isEmpty {
                let retired = state.withLock { s -> Bool in
                    // The reader may be busy running one of these: a reset since is seen here.
                    noticeExternalReset(&s)
                    for c in batch {
                        s.running -= 1
                        guard s.generation == c.generation else { continue } // the reset answered it
                        s.inFlight.remove(c.id)
                        if s.aborted.remove(c.id) != nil { abortedCount.store(s.aborted.count, ordering: .releasing) }
                        s.queue.finish(c.id, c.response)
                    }
                    return apply(s.queue.drain())
                }
                if retired { kick() }
            }
            let left = completionRequests.subtract(covered, ordering: .acquiringAndReleasing).newValue
            if left == 0 { return }
            covered = left
        }
    }

    /// Writes responses into their slots and publishes the tail after each slot, so a
    /// crash leaves at most one slot written but not retired.
    private func apply(_ retirements: [Retirement<RingResponse>]) -> Bool {
        for r in retirements {
            if let id = r.commandID, let response = r.response {
                let offset = ring.entryOffset(r.slotOffset)
                ctcmu_ent_set_cmd_id(ring.base, offset, id)
                let flags: TCMUProtocol.UserFlags = response.readLength != nil ? .readLength : []
                ctcmu_ent_set_uflags(ring.base, offset, flags.rawValue)
                response.sense.withUnsafeBufferPointer { sense in
                    ctcmu_rsp_write(ring.base, offset, response.status, response.readLength ?? 0,
                                    sense.baseAddress, sense.count)
                }
            }
            ring.publishTail(r.newTail)
        }
        return !retirements.isEmpty
    }

    /// Kicks wanted but not yet covered by a write to the fd.
    private let kickRequests = Atomic<Int>(0)

    /// One uio write tells the kernel about every completion published before it, so
    /// concurrent completers coalesce: whoever finds no kick under way writes, and writes
    /// once more if others asked meanwhile.
    private func kick() {
        guard kickRequests.add(1, ordering: .acquiringAndReleasing).oldValue == 0 else { return }
        var covered = 1
        while true {
            let rc = ctcmu_uio_kick(fd)
            if rc < 0 && rc != -EAGAIN { logger.warning("\(name): kicking the kernel failed: errno \(-rc)") }
            let left = kickRequests.subtract(covered, ordering: .acquiringAndReleasing).newValue
            if left == 0 { return }
            covered = left
        }
    }

    // MARK: - Reset

    /// Only the kernel's reset_ring moves cmd_tail behind our back: start over where it is
    /// (completions of the old ring are then dropped by their generation).
    private func noticeExternalReset(_ s: inout State) {
        if ring.tail != s.queue.tail {
            resynchronize(&s, reason: "cmd_tail moved (ring reset by the kernel)")
        }
    }

    private func resynchronize(reason: String) {
        state.withLock { resynchronize(&$0, reason: reason) }
    }

    private func resynchronize(_ s: inout State, reason: String) {
        let tail = ring.tail
        logger.notice("\(name): ring restarts at \(tail): \(reason)")
        s.generation &+= 1
        s.cursor = RingCursor(ringSize: ring.ringSize, position: tail)
        readHead.store(tail, ordering: .relaxed)
        s.queue.reset(tail: tail)
        s.inFlight.removeAll()
        s.aborted.removeAll()
        abortedCount.store(0, ordering: .releasing)
        s.broken = false
        stats.withLock { $0.resets += 1 }
    }

    private func waitForWorkers() {
        while state.withLock({ $0.running }) > 0 { usleep(1000) }
    }
}

public enum RingServerError: Error, Sendable, Equatable {
    case system(op: String, errno: Int32)
}

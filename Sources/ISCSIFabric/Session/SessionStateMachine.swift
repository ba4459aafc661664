import NIOCore
import SCSIEngine

/// The full-feature phase of one session (RFC 7143 §4.2, §11) without I/O: CmdSN ordering,
/// the task table, target transfer tags, StatSN, Data-In segmentation, task management, text
/// and logout. Each `receive…` call appends what the connection must do to `actions`, in
/// order; the connection carries them out and reports engine results back
/// (`commandCompleted`, `taskManagementCompleted`). ErrorRecoveryLevel 0, one connection.
struct SessionStateMachine {
    /// What the session was given at login.
    struct Configuration {
        var parameters: NegotiatedParameters
        /// Normal sessions carry SCSI commands; discovery sessions only text and logout (§4.3).
        var servesCommands: Bool
        var windowDepth: UInt32
        var maxBufferedWriteBytes: Int
        /// Whether a LUN exists now (LUNs come and go live).
        var lunExists: @Sendable (UInt64) -> Bool
        /// The SendTargets answer to a text request (§11.10, Appendix C).
        var answerText: @Sendable (_ request: [UInt8]) -> [UInt8]
    }

    /// Largest expected data transfer length accepted (bounds the memory one command claims).
    static let maxExpectedDataTransferLength = 256 << 20

    private let configuration: Configuration
    private var parameters: NegotiatedParameters { configuration.parameters }
    /// What waits in the CmdSN window: a message, or a malformed command to reject in its turn.
    private enum Ordered {
        case message(InitiatorPDU)
        case malformed(header: ByteBuffer, reason: RejectReason)
    }

    private var window: CommandWindow<Ordered>
    private var statSN: UInt32
    private var tasks: [UInt32: SCSITask] = [:]
    private var nextTransferTag: UInt32 = 1
    private var pendingLogout: LogoutRequestPDU?
    private var pendingText: (tag: UInt32, remaining: ByteBuffer)?
    private var outstandingPing: (tag: UInt32, sent: NIODeadline)?
    private(set) var isClosed = false
    /// Bytes of Data-Out buffers held by tasks (reported, and capped per session).
    private(set) var bufferedWriteBytes = 0

    init(configuration: Configuration, expCmdSN: UInt32, statSN: UInt32) {
        self.configuration = configuration
        self.window = CommandWindow(expCmdSN: expCmdSN, depth: configuration.windowDepth)
        self.statSN = statSN
    }

    var maxCmdSN: UInt32 { window.maxCmdSN }
    var tasksInTable: Int { tasks.count }

    // MARK: - Receiving

    /// One framed PDU from the initiator.
    mutating func receive(_ pdu: PDU, into actions: inout [SessionAction]) {
        guard !isClosed else { return }
        let message: InitiatorPDU
        do {
            message = try InitiatorPDU(decoding: pdu)
        } catch {
            if let numbering = error.numbering, let header = error.header {
                admit(.malformed(header: header, reason: error.reason), numbering, into: &actions)
            } else {
                reject(error.reason, header: pdu.header, into: &actions)
            }
            return
        }
        switch message {
        case .nopOut(let nop) where nop.answersTargetPing:
            // The answer to our ping (§11.18): nothing to send back.
            if let ping = outstandingPing, ping.tag == nop.targetTransferTag { outstandingPing = nil }
        case .nopOut(let p): admit(.message(message), p.numbering, into: &actions)
        case .scsiCommand(let p): admit(.message(message), p.numbering, into: &actions)
        case .taskManagement(let p): admit(.message(message), p.numbering, into: &actions)
        case .text(let p): admit(.message(message), p.numbering, into: &actions)
        case .logout(let p): admit(.message(message), p.numbering, into: &actions)
        case .dataOut(let p): receiveDataOut(p, into: &actions)
        case .snack(let p):
            // ErrorRecoveryLevel 0: no SNACK support (§11.16, §7.1.4).
            reject(.protocolError, header: p.header, into: &actions)
        case .login:
            reject(.protocolError, header: pdu.header, into: &actions)
        }
    }

    /// A PDU whose data digest failed: rejected, the initiator recovers (§7.8.1).
    mutating func receiveDataDigestError(header: ByteBuffer, into actions: inout [SessionAction]) {
        guard !isClosed else { return }
        reject(.dataDigestError, header: header, into: &actions)
    }

    /// Orders non-immediate commands by CmdSN before acting on them (§3.2.2.1).
    private mutating func admit(_ message: Ordered, _ numbering: CommandNumbering, into actions: inout [SessionAction]) {
        switch window.receive(cmdSN: numbering.cmdSN, immediate: numbering.immediate, item: message) {
        case .deliver:
            deliver(message, into: &actions)
            while !isClosed, let next = window.nextHeld() { deliver(next, into: &actions) }
        case .held, .ignored:
            break
        }
    }

    private mutating func deliver(_ ordered: Ordered, into actions: inout [SessionAction]) {
        let message: InitiatorPDU
        switch ordered {
        case .message(let m): message = m
        case .malformed(let header, let reason):
            reject(reason, header: header, into: &actions)
            return
        }
        switch message {
        case .scsiCommand(let command): startCommand(command, into: &actions)
        case .nopOut(let nop):
            actions.append(.send(.nopIn(.init(lunField: nop.lunField, initiatorTaskTag: nop.initiatorTaskTag,
                                              targetTransferTag: WireConstants.reservedTag,
                                              numbers: consumeStatSN(), data: nop.data))))
        case .taskManagement(let request): taskManagement(request, into: &actions)
        case .text(let request): text(request, into: &actions)
        case .logout(let request): logout(request, into: &actions)
        case .dataOut, .snack, .login: break  // never queued
        }
    }

    // MARK: - SCSI commands

    private mutating func startCommand(_ command: SCSICommandPDU, into actions: inout [SessionAction]) {
        guard configuration.servesCommands else {
            // Discovery sessions carry no SCSI commands (§4.3).
            reject(.protocolError, header: command.cdb.basicHeader, into: &actions)
            return
        }
        let itt = command.initiatorTaskTag
        guard tasks[itt] == nil else {
            reject(.taskInProgress, header: command.cdb.basicHeader, into: &actions)
            return
        }
        let edtl = command.expectedDataTransferLength
        let immediate = command.data.readableBytes
        var task = SCSITask(initiatorTaskTag: itt, lunField: command.lunField, lun: command.lun,
                            attribute: command.attribute, isRead: command.read, isWrite: command.write,
                            expectedLength: edtl, command: command, state: .collectingData)
        guard edtl <= Self.maxExpectedDataTransferLength else {
            // Buffers are sized by the expected length: refuse absurd ones before allocating.
            respond(task, status: .checkCondition, sense: Self.sense(key: 0x05, asc: 0x24, ascq: 0x00),
                    residualFlags: 0x02, residual: edtl, into: &actions)
            return
        }
        if immediate > 0 && (!command.write || !parameters.immediateData) {
            reject(.protocolError, header: command.cdb.basicHeader, into: &actions)
            return
        }
        if command.write && edtl > immediate {
            if bufferedWriteBytes > 0 && bufferedWriteBytes + edtl > configuration.maxBufferedWriteBytes {
                // The session holds all the write data it may: TASK SET FULL, retried later (SAM-5 5.3).
                respond(task, status: .taskSetFull, sense: [], residualFlags: 0x02, residual: edtl, into: &actions)
                return
            }
            var transfer = WriteTransfer(
                expectedLength: edtl, immediateLength: immediate, commandFinal: command.final,
                limits: .init(initialR2T: parameters.initialR2T, firstBurstLength: Int(parameters.firstBurstLength),
                              maxBurstLength: Int(parameters.maxBurstLength),
                              maxOutstandingR2T: Int(parameters.maxOutstandingR2T)))
            let buffer = AlignedBuffer(count: edtl)
            command.data.withUnsafeReadableBytes { buffer.bytes.copyMemory(from: $0) }
            bufferedWriteBytes += edtl
            task.writeBuffer = buffer
            let solicitations = transfer.solicit(nextTag: { allocateTransferTag() })
            task.write = transfer
            tasks[itt] = task
            for r2t in solicitations { sendR2T(r2t, task: task, into: &actions) }
            return
        }
        execute(task, into: &actions)
    }

    private mutating func receiveDataOut(_ data: DataOutPDU, into actions: inout [SessionAction]) {
        let itt = data.initiatorTaskTag
        // Data for a task that was aborted or never existed is dropped.
        guard var task = tasks[itt], task.state == .collectingData, var transfer = task.write,
              let buffer = task.writeBuffer else { return }
        let length = data.data.readableBytes
        let offset: Int
        do {
            offset = try transfer.receiveDataOut(targetTransferTag: data.targetTransferTag, offset: data.bufferOffset,
                                                 length: length, dataSN: data.dataSN, final: data.final)
        } catch {
            // A sequence error ends the task, not the session: ABORTED COMMAND, and later
            // Data-Out for it is dropped (ERL 0 has no recovery, §7.1.4.2).
            forget(itt)
            let ascq: UInt8 = error == .unknownTransferTag ? 0x01 : 0x05
            respond(task, status: .checkCondition, sense: Self.sense(key: 0x0B, asc: 0x4B, ascq: ascq),
                    residualFlags: 0, residual: 0, into: &actions)
            return
        }
        data.data.withUnsafeReadableBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[offset..<(offset + length)]).copyMemory(from: bytes)
        }
        task.write = transfer
        if transfer.isComplete {
            execute(task, into: &actions)
            return
        }
        let solicitations = transfer.solicit(nextTag: { allocateTransferTag() })
        task.write = transfer
        tasks[itt] = task
        for r2t in solicitations { sendR2T(r2t, task: task, into: &actions) }
    }

    private mutating func sendR2T(_ r2t: WriteTransfer.Solicitation, task: SCSITask, into actions: inout [SessionAction]) {
        // R2T carries StatSN without advancing it (§11.8.3).
        actions.append(.send(.readyToTransfer(.init(
            lunField: task.lunField, initiatorTaskTag: task.initiatorTaskTag, targetTransferTag: r2t.targetTransferTag,
            r2tSN: r2t.r2tSN, bufferOffset: UInt32(r2t.offset), desiredLength: UInt32(r2t.length),
            numbers: currentNumbers()))))
    }

    private mutating func execute(_ task: SCSITask, into actions: inout [SessionAction]) {
        var task = task
        task.state = .executing
        tasks[task.initiatorTaskTag] = task
        window.commandStarted()
        let command = task.command
        actions.append(.execute(CommandRequest(
            initiatorTaskTag: task.initiatorTaskTag, lun: task.lun, attribute: task.attribute, cdb: command.cdb,
            writeBuffer: task.writeBuffer, immediateData: command.data,
            writeLength: task.isWrite ? task.expectedLength : 0, readLength: task.isRead ? task.expectedLength : 0,
            mayRunWithoutBlocking: task.isRead && !task.isWrite && task.expectedLength > 0 && command.cdb.extended == nil)))
    }

    /// The engine finished a command: its status (and Data-In), unless it was aborted meanwhile.
    mutating func commandCompleted(_ itt: UInt32, result: SCSICommandResult, dataIn: ByteBuffer?,
                                   into actions: inout [SessionAction]) {
        window.commandFinished()
        guard let task = forget(itt) else { return }
        if !task.aborted && !isClosed {
            sendStatus(for: task, result: result, dataIn: dataIn, into: &actions)
        }
        completeLogoutIfIdle(into: &actions)
    }

    /// Data-In PDUs (status collapsed into the last when possible, §11.7.4) or a SCSI Response.
    private mutating func sendStatus(for task: SCSITask, result: SCSICommandResult, dataIn: ByteBuffer?,
                                     into actions: inout [SessionAction]) {
        let expected = task.expectedLength
        var residualFlags: UInt8 = 0
        var residual = 0
        if result.transferLength > expected {
            residualFlags = 0x04  // O: overflow
            residual = result.transferLength - expected
        } else if result.transferLength < expected {
            residualFlags = 0x02  // U: underflow
            residual = expected - result.transferLength
        }
        var dataSN: UInt32 = 0
        if task.isRead, var data = dataIn, data.readableBytes > 0 {
            let total = data.readableBytes
            let segment = Int(parameters.maxXmitDataSegmentLength)
            let burst = Int(parameters.maxBurstLength)
            let collapse = result.status == .good && result.sense.isEmpty
            var offset = 0
            while offset < total {
                let burstEnd = min((offset / burst + 1) * burst, total)
                let length = min(segment, burstEnd - offset)
                let chunk = data.readSlice(length: length)!
                let last = offset + length == total
                let withStatus = last && collapse
                actions.append(.send(.dataIn(.init(
                    final: offset + length == burstEnd || withStatus, lunField: task.lunField,
                    initiatorTaskTag: task.initiatorTaskTag, dataSN: dataSN, bufferOffset: UInt32(offset),
                    status: withStatus ? (result.status, residualFlags, UInt32(truncatingIfNeeded: residual)) : nil,
                    numbers: withStatus ? consumeStatSN() : currentNumbers(), data: chunk))))
                dataSN += 1
                offset += length
            }
            if collapse { return }
        }
        respond(task, status: result.status, sense: result.sense, residualFlags: residualFlags, residual: residual,
                dataPDUs: dataSN, into: &actions)
    }

    private mutating func respond(_ task: SCSITask, status: SCSIStatus, sense: [UInt8], residualFlags: UInt8,
                                  residual: Int, dataPDUs: UInt32 = 0, into actions: inout [SessionAction]) {
        actions.append(.send(.scsiResponse(.init(
            initiatorTaskTag: task.initiatorTaskTag, status: status, residualFlags: residualFlags,
            residualCount: UInt32(truncatingIfNeeded: residual), expDataSN: dataPDUs, sense: sense,
            numbers: consumeStatSN()))))
    }

    // MARK: - Task management (§11.5)

    private mutating func taskManagement(_ request: TaskManagementPDU, into actions: inout [SessionAction]) {
        let lun = request.lun
        func answer(_ response: TaskManagementResponseCode) {
            actions.append(.send(.taskManagementResponse(.init(initiatorTaskTag: request.initiatorTaskTag,
                                                               response: response, numbers: consumeStatSN()))))
        }
        guard configuration.servesCommands, let function = request.function else {
            answer(.functionRejected)
            return
        }
        let engineFunction: TaskManagementFunction
        switch function {
        case .abortTask:
            if tasks[request.referencedTaskTag] != nil {
                abort(request.referencedTaskTag)
                answer(.functionComplete)
            } else {
                // §11.5.1: a task never received (RefCmdSN not yet delivered) counts as aborted.
                let notYetSeen = (request.refCmdSN &- window.expCmdSN) < 0x8000_0000
                answer(notYetSeen ? .functionComplete : .taskDoesNotExist)
            }
            return
        case .taskReassign:
            answer(.reassignmentNotSupported)
            return
        case .abortTaskSet: engineFunction = .abortTaskSet
        case .clearTaskSet: engineFunction = .clearTaskSet
        case .logicalUnitReset: engineFunction = .logicalUnitReset
        case .clearACA: engineFunction = .clearACA
        case .targetWarmReset: engineFunction = .targetWarmReset
        case .targetColdReset: engineFunction = .targetColdReset
        }
        switch engineFunction {
        case .targetWarmReset, .targetColdReset:
            abortTasks { _ in true }
        default:
            guard configuration.lunExists(lun) else {
                answer(.lunDoesNotExist)
                return
            }
            if engineFunction != .clearACA { abortTasks { $0.lun == lun } }
        }
        actions.append(.taskManagement(TaskManagementRequest(initiatorTaskTag: request.initiatorTaskTag,
                                                             function: engineFunction, lun: lun)))
    }

    /// The engine carried out a task management function.
    mutating func taskManagementCompleted(_ request: TaskManagementRequest, response: SCSIEngine.TaskManagementResponse,
                                          into actions: inout [SessionAction]) {
        guard !isClosed else { return }
        var code: TaskManagementResponseCode
        switch response {
        case .functionComplete: code = .functionComplete
        case .functionRejected: code = .functionRejected
        case .lunDoesNotExist: code = .lunDoesNotExist
        case .functionNotSupported: code = .functionNotSupported
        }
        // ABORT TASK SET and CLEAR TASK SET are complete once our tasks are gone.
        if request.function == .abortTaskSet || request.function == .clearTaskSet { code = .functionComplete }
        actions.append(.send(.taskManagementResponse(.init(initiatorTaskTag: request.initiatorTaskTag,
                                                           response: code, numbers: consumeStatSN()))))
        if request.function == .targetColdReset {
            // A cold reset also drops the connection (§11.5.1).
            isClosed = true
            actions.append(.close)
        }
    }

    /// Another nexus preempted this session's tasks on a LUN (PREEMPT AND ABORT).
    mutating func abortTasks(onLUN lun: UInt64) {
        abortTasks { $0.lun == lun }
    }

    private mutating func abortTasks(where matches: (SCSITask) -> Bool) {
        for task in tasks.values where matches(task) { abort(task.initiatorTaskTag) }
    }

    /// A task waiting for data is dropped now; one in the engine has its result dropped.
    private mutating func abort(_ itt: UInt32) {
        guard let task = tasks[itt] else { return }
        switch task.state {
        case .collectingData: forget(itt)
        case .executing: tasks[itt]?.aborted = true
        }
    }

    @discardableResult
    private mutating func forget(_ itt: UInt32) -> SCSITask? {
        guard let task = tasks.removeValue(forKey: itt) else { return nil }
        if task.writeBuffer != nil { bufferedWriteBytes -= task.expectedLength }
        return task
    }

    // MARK: - Text (§11.10) and logout (§11.14)

    private mutating func text(_ request: TextRequestPDU, into actions: inout [SessionAction]) {
        var payload: ByteBuffer
        if request.targetTransferTag != WireConstants.reservedTag, let pending = pendingText,
           pending.tag == request.targetTransferTag {
            // The initiator asks for the next part of a long answer (§11.10.4).
            payload = pending.remaining
        } else {
            payload = ByteBuffer(bytes: configuration.answerText(Array(request.data.readableBytesView)))
        }
        pendingText = nil
        let part = payload.readSlice(length: min(Int(parameters.maxXmitDataSegmentLength), payload.readableBytes))!
        var tag = WireConstants.reservedTag
        if payload.readableBytes > 0 {
            tag = allocateTransferTag()
            pendingText = (tag, payload)
        }
        actions.append(.send(.textResponse(.init(final: tag == WireConstants.reservedTag, lunField: request.lunField,
                                                 initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: tag,
                                                 numbers: consumeStatSN(), data: part))))
    }

    private mutating func logout(_ request: LogoutRequestPDU, into actions: inout [SessionAction]) {
        if request.reason == .removeConnectionForRecovery {
            actions.append(.send(.logoutResponse(.init(initiatorTaskTag: request.initiatorTaskTag,
                                                       response: .recoveryNotSupported, numbers: consumeStatSN()))))
            return
        }
        // Tasks still waiting for data cannot finish; those in the engine are awaited (§11.14).
        abortTasks { $0.state == .collectingData }
        pendingLogout = request
        completeLogoutIfIdle(into: &actions)
    }

    private mutating func completeLogoutIfIdle(into actions: inout [SessionAction]) {
        guard !isClosed, let request = pendingLogout, !tasks.values.contains(where: { !$0.aborted }) else { return }
        pendingLogout = nil
        actions.append(.send(.logoutResponse(.init(initiatorTaskTag: request.initiatorTaskTag,
                                                   response: .closedSuccessfully, numbers: consumeStatSN()))))
        isClosed = true
        actions.append(.close)
    }

    // MARK: - Target-initiated

    /// Asks the initiator to log out within `seconds` (Async Message, event 1, §11.9.1).
    mutating func requestLogout(seconds: UInt16, into actions: inout [SessionAction]) {
        guard !isClosed else { return }
        actions.append(.send(.asyncLogoutRequest(seconds: seconds, consumeStatSN())))
    }

    /// The ping timer fired: a NOP-In ping, or the connection dropped when the last one went
    /// unanswered for `timeout` (§11.19).
    mutating func pingDue(now: NIODeadline, timeout: TimeAmount, into actions: inout [SessionAction]) -> Bool {
        guard !isClosed else { return false }
        if let outstanding = outstandingPing {
            guard now - outstanding.sent >= timeout else { return false }
            isClosed = true
            actions.append(.close)
            return true
        }
        let tag = allocateTransferTag()
        outstandingPing = (tag, now)
        // An unsolicited NOP-In carries StatSN without advancing it (§11.19.3).
        actions.append(.send(.nopIn(.init(initiatorTaskTag: WireConstants.reservedTag, targetTransferTag: tag,
                                          numbers: currentNumbers(), data: nil))))
        return false
    }

    /// The connection is gone: tasks waiting for data and their buffers go now; results of
    /// those in the engine will be dropped.
    mutating func connectionClosed() {
        isClosed = true
        abortTasks { _ in true }
        window = CommandWindow(expCmdSN: window.expCmdSN, depth: 1)
        pendingText = nil
        pendingLogout = nil
    }

    // MARK: - Numbers

    private mutating func reject(_ reason: RejectReason, header: ByteBuffer, into actions: inout [SessionAction]) {
        actions.append(.send(.reject(.init(reason: reason, numbers: consumeStatSN(), header: header))))
    }

    private func currentNumbers() -> SequenceNumbers {
        SequenceNumbers(statSN: statSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
    }

    private mutating func consumeStatSN() -> SequenceNumbers {
        defer { statSN &+= 1 }
        return currentNumbers()
    }

    private mutating func allocateTransferTag() -> UInt32 {
        defer {
            nextTransferTag &+= 1
            if nextTransferTag == WireConstants.reservedTag { nextTransferTag = 1 }
        }
        return nextTransferTag
    }

    /// Fixed-format sense data (SPC-4 4.5.3).
    static func sense(key: UInt8, asc: UInt8, ascq: UInt8) -> [UInt8] {
        SenseData(key: key, asc: asc, ascq: ascq).bytes()
    }
}

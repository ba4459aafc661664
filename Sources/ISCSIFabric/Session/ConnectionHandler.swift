import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import Synchronization

/// Security events the fabric counts (for metrics): CHAP failures, ACL denials, NOP timeouts.
public final class FabricSecurityCounters: Sendable {
    private let chap = Atomic<UInt64>(0)
    private let acl = Atomic<UInt64>(0)
    private let nop = Atomic<UInt64>(0)
    public init() {}
    public var chapFailures: UInt64 { chap.load(ordering: .relaxed) }
    public var aclDenials: UInt64 { acl.load(ordering: .relaxed) }
    public var nopTimeouts: UInt64 { nop.load(ordering: .relaxed) }
    func countCHAPFailure() { chap.add(1, ordering: .relaxed) }
    func countACLDenial() { acl.add(1, ordering: .relaxed) }
    func countNOPTimeout() { nop.add(1, ordering: .relaxed) }
}

/// What every connection shares: the targets, the session table, the I/O workers.
public struct ConnectionEnvironment: Sendable {
    public var catalog: TargetCatalog
    public var sessions: SessionRegistry
    public var ioPool: IOWorkerPool
    public var logger: Logger
    public var targetPortalGroupTag: UInt16 = 1
    /// Interval between target NOP-In pings; nil disables them.
    public var nopInInterval: TimeAmount? = .seconds(30)
    /// How long a ping may go unanswered before the connection is dropped.
    public var nopInTimeout: TimeAmount = .seconds(30)
    /// A connection that has not finished login by then is closed.
    public var loginTimeout: TimeAmount = .seconds(15)
    /// Commands an initiator may have queued (CmdSN window).
    public var commandWindowDepth: UInt32 = 128
    public var securityCounters = FabricSecurityCounters()
    /// Limits against guessing and exhaustion, and the state that enforces them.
    public var guards = FabricGuards()

    public init(catalog: TargetCatalog, sessions: SessionRegistry, ioPool: IOWorkerPool, logger: Logger) {
        self.catalog = catalog
        self.sessions = sessions
        self.ioPool = ioPool
        self.logger = logger
    }
}

/// Sent down a connection's pipeline to ask the initiator to log out (§11.9, AsyncEvent 1).
/// Sent to a connection whose tasks on a LUN another nexus preempted (PREEMPT AND ABORT).
struct AbortTasksEvent: Sendable {
    var lun: UInt64
}

public struct RequestLogoutEvent: Sendable {
    public var seconds: UInt16
    public init(seconds: UInt16) { self.seconds = seconds }
}

/// One iSCSI connection (= one session; we negotiate MaxConnections=1): login, then the
/// full-feature phase. It decodes nothing itself (PDUDecoder frames) and runs no I/O on the
/// event loop (the engine runs on `ioPool`); it routes PDUs and keeps the session's books.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundPDU
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case login(LoginStateMachine)
        case fullFeature
        case closed
    }

    private let environment: ConnectionEnvironment
    private let digestBox: DigestSettingsBox
    private var logger: Logger
    private var phase: Phase
    private var context: ChannelHandlerContext?
    private var remoteAddress = "?"
    private var localAddress = "?"
    private var nopInterval: TimeAmount?
    private var nopTimeout: TimeAmount = .seconds(30)
    private let inFlight = SessionCounters()

    // Session state (full feature phase).
    private var parameters = NegotiatedParameters()
    private var device: SCSITarget?
    private var nexus: NexusID?
    private var tsih: UInt16 = 0
    private var registered = false
    private var window = CommandWindow<PDU>(expCmdSN: 0, depth: 1)
    private var statSN: UInt32 = 1
    private var tasks: [UInt32: SCSITask] = [:]
    private var nextTransferTag: UInt32 = 1
    private var writer = PDUWriter()
    private var pendingLogout: PDU?
    private var pendingTextResponse: (tag: UInt32, remaining: ByteBuffer)?
    private var loginCmdSN: UInt32?
    private var loginTimer: Scheduled<Void>?
    private var pingTimer: RepeatedTask?
    private var outstandingPing: (tag: UInt32, sent: NIODeadline)?
    private var needsFlush = false
    /// Commands were queued for the I/O pool during this read burst; wake it once at the end.
    private var pendingWake = false
    private var inReadBurst = false
    private let completions = CompletionMailbox()
    /// Holds a place in LoginAdmission until login ends.
    private var holdsLoginPlace = false
    /// A CHAP response waiting for its LoginThrottle turn.
    private var waitingForTurn: Scheduled<Void>?

    init(environment: ConnectionEnvironment, digestBox: DigestSettingsBox) {
        self.environment = environment
        self.digestBox = digestBox
        self.logger = environment.logger
        self.phase = .login(LoginStateMachine(directory: environment.catalog.directory, remoteAddress: "?",
                                              targetPortalGroupTag: environment.targetPortalGroupTag))
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it would keep both alive after the close.
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.remoteAddress?.ipAddress ?? "?"
        localAddress = context.localAddress?.ipAddress ?? "?"
        logger[metadataKey: "peer"] = "\(remoteAddress)"
        guard environment.guards.loginAdmission.admit(remoteAddress) else {
            // Too many connections in login from there (or in all): no memory spent on it.
            environment.guards.countRefusedConnection()
            context.close(promise: nil)
            return
        }
        holdsLoginPlace = true
        nopInterval = environment.nopInInterval
        nopTimeout = environment.nopInTimeout
        phase = .login(LoginStateMachine(directory: environment.catalog.directory(forLocalAddress: localAddress),
                                         remoteAddress: remoteAddress,
                                         targetPortalGroupTag: environment.targetPortalGroupTag))
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        loginTimer = context.eventLoop.scheduleTask(in: environment.loginTimeout) {
            let handler = loopBound.value
            if case .login = handler.phase {
                handler.logger.notice("login timed out")
                handler.context?.close(promise: nil)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        loginTimer?.cancel()
        waitingForTurn?.cancel()
        waitingForTurn = nil
        leaveLogin()
        pingTimer?.cancel()
        phase = .closed
        // In-flight commands finish on their workers; their results are dropped.
        // Tasks still waiting for Data-Out, held commands and a half-sent text answer go now
        // with their buffers (an abandoned WRITE must not outlive its connection).
        for key in tasks.keys { tasks[key]?.aborted = true }
        tasks = tasks.filter { $0.value.state == .executing }
        window = CommandWindow(expCmdSN: window.expCmdSN, depth: 1)
        pendingTextResponse = nil
        pendingLogout = nil
        if registered {
            let stillOurs = environment.sessions.remove(tsih: tsih, channel: context.channel)
            if stillOurs, let device, let nexus { device.closeNexus(nexus) }
            logger.info("session closed")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("connection error: \(error)")
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let abort = event as? AbortTasksEvent {
            for task in tasks.values where task.lun == abort.lun { self.abort(task) }
        } else if let request = event as? RequestLogoutEvent {
            if case .fullFeature = phase { sendAsyncLogoutRequest(seconds: request.seconds) }
            flushIfNeeded()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        switch unwrapInboundIn(data) {
        case .pdu(let pdu):
            switch phase {
            case .login(var machine):
                guard waitingForTurn == nil else {
                    // §6.1: one login request at a time; nothing may come before the answer.
                    context.close(promise: nil)
                    return
                }
                if machine.awaitsCHAPResponse {
                    let delay = environment.guards.loginThrottle.delayBeforeVerifying(
                        initiator: machine.initiatorName, address: remoteAddress)
                    if delay > .zero {
                        environment.guards.countDelayedVerification()
                        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                        waitingForTurn = context.eventLoop.scheduleTask(in: delay) {
                            let handler = loopBound.value
                            handler.waitingForTurn = nil
                            guard case .login(var machine) = handler.phase else { return }
                            handler.phase = .closed
                            handler.handleLogin(pdu, machine: &machine)
                            handler.flushIfNeeded()
                        }
                        return
                    }
                }
                phase = .closed  // not left in two places while the machine runs
                handleLogin(pdu, machine: &machine)
            case .fullFeature:
                handleFullFeature(pdu)
            case .closed:
                break
            }
        case .dataDigestError(let pdu):
            // §7.8.1: discard the PDU and reject it; the initiator recovers (ERL 0: by the task failing).
            logger.warning("data digest error on opcode \(pdu.rawOpcode)")
            sendReject(.dataDigestError, header: pdu.header)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        if pendingWake {
            pendingWake = false
            environment.ioPool.wake()
        }
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    // MARK: - Login phase

    private func handleLogin(_ pdu: PDU, machine: inout LoginStateMachine) {
        guard pdu.opcode == .loginRequest else {
            // §6.2: anything else before login completes is a protocol error.
            logger.warning("opcode \(pdu.rawOpcode) during login; closing")
            context?.close(promise: nil)
            return
        }
        let flags = pdu.flags
        let request = LoginRequest(
            transit: flags & 0x80 != 0, continueFlag: flags & 0x40 != 0,
            currentStage: (flags >> 2) & 0x03, nextStage: flags & 0x03,
            versionMax: pdu.byte(2), versionMin: pdu.byte(3),
            isid: pdu.uint64(8) >> 16, tsih: pdu.uint16(14),
            initiatorTaskTag: pdu.initiatorTaskTag, cid: pdu.uint16(20),
            cmdSN: pdu.cmdSN, expStatSN: pdu.expStatSN,
            data: Array(pdu.data.readableBytesView))
        if loginCmdSN == nil { loginCmdSN = request.cmdSN }

        // Adding a connection to an existing session (MC/S) is not offered: MaxConnections=1.
        if request.tsih != 0 {
            let response = LoginResponse(transit: false, continueFlag: false, currentStage: request.currentStage,
                                         nextStage: request.nextStage, versionMax: 0, versionActive: 0,
                                         isid: request.isid, tsih: request.tsih,
                                         initiatorTaskTag: request.initiatorTaskTag,
                                         statusClass: 0x02, statusDetail: 0x0A, data: [])
            sendLoginResponse(response, maxCmdSN: request.cmdSN)
            flushIfNeeded()
            context?.close(promise: nil)
            return
        }

        switch machine.receiveLoginRequest(request) {
        case .respond(let response):
            phase = .login(machine)
            sendLoginResponse(response, maxCmdSN: request.cmdSN)
        case .fail(let response):
            logRefusal(response, machine: machine, request: request)
            if response.statusClass == 0x02 && response.statusDetail == 0x01 {
                environment.securityCounters.countCHAPFailure()
                if machine.usedCHAP {
                    environment.guards.loginThrottle.recordFailure(initiator: machine.initiatorName, address: remoteAddress)
                }
            }
            if response.statusClass == 0x02 && response.statusDetail == 0x02 { environment.securityCounters.countACLDenial() }
            sendLoginResponse(response, maxCmdSN: request.cmdSN)
            flushIfNeeded()
            context?.close(promise: nil)
        case .complete(var response, let negotiated):
            let refusal = context.map { establishSession(negotiated, channel: $0.channel) } ?? .targetError
            if let refusal {
                // 03/00: the target went away mid-login; 03/02: its session limit is reached.
                logger.notice("login refused", metadata: ["status": "\(refusal)"])
                response.transit = false
                response.statusClass = refusal.statusClass
                response.statusDetail = refusal.statusDetail
                sendLoginResponse(response, maxCmdSN: request.cmdSN)
                flushIfNeeded()
                self.context?.close(promise: nil)
                return
            }
            response.tsih = tsih
            if machine.usedCHAP { environment.guards.loginThrottle.recordSuccess(initiator: machine.initiatorName) }
            leaveLogin()
            sendLoginResponse(response, maxCmdSN: window.maxCmdSN)
            flushIfNeeded()
            // Digests apply from the first full-feature PDU on, both ways (§13.1).
            let digests = DigestSettings(header: negotiated.headerDigest, data: negotiated.dataDigest)
            digestBox.digests = digests
            digestBox.maxRecvDataSegmentLength = Int(negotiated.maxRecvDataSegmentLength)
            writer.digests = digests
            phase = .fullFeature
            loginTimer?.cancel()
            startPings()
        }
    }

    /// One line per refused login, within the failed-login budget: who (initiator, CHAP
    /// user, address, ISID) and why; never a secret.
    private func logRefusal(_ response: LoginResponse, machine: LoginStateMachine, request: LoginRequest) {
        switch environment.guards.failedLoginLog.decide() {
        case .suppress:
            return
        case .log(let suppressed):
            var metadata: Logger.Metadata = [
                "initiator": "\(machine.initiatorName.isEmpty ? "?" : machine.initiatorName)",
                "isid": "0x\(String(request.isid, radix: 16))",
                "status": "\(response.status)",
                "reason": "\(response.status.reason)",
            ]
            if let user = machine.attemptedCHAPUser { metadata["chapUser"] = "\(user)" }
            if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
            logger.notice("login refused", metadata: metadata)
        }
    }

    /// Gives the LoginAdmission place back (once).
    private func leaveLogin() {
        guard holdsLoginPlace else { return }
        holdsLoginPlace = false
        environment.guards.loginAdmission.release(remoteAddress)
    }

    /// Nil when the session is established, else the login status to refuse it with.
    private func establishSession(_ negotiated: NegotiatedParameters, channel: any Channel) -> LoginStatus? {
        parameters = negotiated
        var maxSessions = 0
        var device: SCSITarget?
        if negotiated.sessionType == .normal {
            guard let found = environment.catalog.device(named: negotiated.targetName),
                  let access = environment.catalog.access(named: negotiated.targetName),
                  access.isExposed(localAddress) else { return .targetError }
            device = found
            maxSessions = access.maxSessions
            if let cap = access.settings.maxXmitDataSegmentLength, cap > 0 {
                parameters.maxXmitDataSegmentLength = min(parameters.maxXmitDataSegmentLength, cap)
            }
            if let interval = access.nopInIntervalSeconds {
                nopInterval = interval > 0 ? .seconds(Int64(interval)) : nil
            }
            if let timeout = access.nopInTimeoutSeconds, timeout > 0 { nopTimeout = .seconds(Int64(timeout)) }
        }
        guard let (tsih, replaced) = environment.sessions.register(
            parameters, remoteAddress: remoteAddress, channel: channel, nexus: nil, localAddress: localAddress,
            localPort: channel.localAddress?.port ?? 0,
            maxSessions: maxSessions, inFlight: inFlight)
        else { return .outOfResources }
        if let device {
            self.device = device
            nexus = device.openNexus(ITNexus(initiatorName: negotiated.initiatorName, isid: negotiated.isid,
                                             targetName: negotiated.targetName,
                                             targetPortalGroupTag: environment.targetPortalGroupTag))
            environment.sessions.setNexus(nexus, tsih: tsih)
        }
        self.tsih = tsih
        registered = true
        if let replaced {
            // Session reinstatement (§6.3.5): the old session's connection is closed.
            logger.info("reinstating session of the same ISID")
            replaced.close(promise: nil)
        }
        window = CommandWindow(expCmdSN: loginCmdSN ?? 0, depth: environment.commandWindowDepth)
        logger[metadataKey: "initiator"] = "\(negotiated.initiatorName)"
        logger[metadataKey: "tsih"] = "\(tsih)"
        logger.info("session established", metadata: [
            "type": "\(negotiated.sessionType)", "target": "\(negotiated.targetName)",
            "headerDigest": "\(negotiated.headerDigest)", "dataDigest": "\(negotiated.dataDigest)",
        ])
        return nil
    }

    private func sendLoginResponse(_ response: LoginResponse, maxCmdSN: UInt32) {
        guard let context else { return }
        var header = OutboundHeader(.loginResponse, flags: 0, allocator: context.channel.allocator)
        header.flags = (response.transit ? 0x80 : 0) | (response.continueFlag ? 0x40 : 0)
            | (response.currentStage & 0x03) << 2 | (response.nextStage & 0x03)
        header.set(response.versionMax, at: 2)
        header.set(response.versionActive, at: 3)
        header.set(response.isid << 16 | UInt64(response.tsih), at: 8)
        header.setInitiatorTaskTag(response.initiatorTaskTag)
        header.setSequenceNumbers(statSN: statSN, expCmdSN: loginCmdSN ?? 0, maxCmdSN: maxCmdSN)
        statSN &+= 1
        header.set(response.statusClass, at: 36)
        header.set(response.statusDetail, at: 37)
        var data = context.channel.allocator.buffer(capacity: response.data.count)
        data.writeBytes(response.data)
        send(header, data: data)
    }

    // MARK: - Full feature phase

    private func handleFullFeature(_ pdu: PDU) {
        guard let opcode = pdu.opcode else {
            sendReject(.commandNotSupported, header: pdu.header)
            return
        }
        switch opcode {
        case .nopOut:
            if pdu.initiatorTaskTag == WireConstants.reservedTag {
                // An answer to our ping (§11.18): nothing to send back.
                if let ping = outstandingPing, ping.tag == pdu.targetTransferTag { outstandingPing = nil }
            } else {
                admit(pdu)
            }
        case .scsiCommand, .taskManagementRequest, .textRequest, .logoutRequest:
            admit(pdu)
        case .dataOut:
            handleDataOut(pdu)
        case .snackRequest:
            // ErrorRecoveryLevel 0: no SNACK support (§11.16, §7.1.4).
            sendReject(.protocolError, header: pdu.header)
        case .loginRequest:
            sendReject(.protocolError, header: pdu.header)
        default:
            sendReject(.commandNotSupported, header: pdu.header)
        }
    }

    /// Orders non-immediate commands by CmdSN before acting on them.
    private func admit(_ pdu: PDU) {
        switch window.receive(cmdSN: pdu.cmdSN, immediate: pdu.isImmediate, item: pdu) {
        case .deliver:
            deliver(pdu)
            while case .fullFeature = phase, let next = window.nextHeld() { deliver(next) }
        case .held:
            logger.debug("CmdSN \(pdu.cmdSN) held for ordering")
        case .ignored:
            logger.debug("CmdSN \(pdu.cmdSN) outside the window; ignored")
        }
    }

    private func deliver(_ pdu: PDU) {
        switch pdu.opcode {
        case .scsiCommand: startCommand(pdu)
        case .nopOut: answerNopOut(pdu)
        case .taskManagementRequest: handleTaskManagement(pdu)
        case .textRequest: handleText(pdu)
        case .logoutRequest: handleLogout(pdu)
        default: break
        }
    }

    private func answerNopOut(_ pdu: PDU) {
        guard let context else { return }
        var header = OutboundHeader(.nopIn, allocator: context.channel.allocator)
        header.setLUN(pdu.lunField)
        header.setInitiatorTaskTag(pdu.initiatorTaskTag)
        header.setTargetTransferTag(WireConstants.reservedTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        send(header, data: pdu.data)  // ping data is echoed (§11.19)
    }

    // MARK: SCSI commands

    private func startCommand(_ pdu: PDU) {
        guard let device, let nexus else {
            // Discovery sessions carry no SCSI commands (§4.3).
            sendReject(.protocolError, header: pdu.header)
            return
        }
        let flags = pdu.flags
        let itt = pdu.initiatorTaskTag
        guard tasks[itt] == nil else {
            sendReject(.taskInProgress, header: pdu.header)
            return
        }
        if pdu.additionalHeaders.readableBytes > 0 {
            do {
                _ = try AdditionalHeaderSegments.parse(pdu.additionalHeaders)
            } catch {
                // A malformed AHS is a malformed PDU (§11.17.1: Invalid PDU Field).
                logger.warning("SCSI Command with a malformed AHS (\(error)); rejected")
                sendReject(.invalidPDUField, header: pdu.header)
                return
            }
        }
        let isRead = flags & 0x40 != 0
        let isWrite = flags & 0x20 != 0
        let edtl = Int(pdu.uint32(20))
        let immediate = pdu.data.readableBytes
        guard edtl <= Self.maxExpectedDataTransferLength else {
            // Buffers are sized by the expected length; refuse absurd ones instead of allocating.
            let task = SCSITask(initiatorTaskTag: itt, lunField: pdu.lunField, lun: LUNEncoding.decode(pdu.lunField),
                                attribute: .simple, isRead: isRead, isWrite: isWrite,
                                expectedLength: edtl, command: pdu, state: .executing)
            var sense = Self.abortedCommandSense(asc: 0x24, ascq: 0x00)
            sense[2] = 0x05  // ILLEGAL REQUEST, INVALID FIELD IN CDB
            sendSCSIResponse(for: task, status: .checkCondition, sense: sense, serviceResponse: .commandCompleted,
                             residualFlags: 0x02, residual: edtl, dataPDUs: 0)
            return
        }
        if immediate > 0 && (!isWrite || !parameters.immediateData) {
            sendReject(.protocolError, header: pdu.header)
            return
        }
        var task = SCSITask(initiatorTaskTag: itt, lunField: pdu.lunField, lun: LUNEncoding.decode(pdu.lunField),
                            attribute: TaskAttribute(rawValue: flags & 0x07) ?? .simple,
                            isRead: isRead, isWrite: isWrite, expectedLength: edtl, command: pdu,
                            state: .collectingData)
        if isWrite && edtl > immediate {
            var transfer = WriteTransfer(
                expectedLength: edtl, immediateLength: immediate, commandFinal: pdu.isFinal,
                limits: .init(initialR2T: parameters.initialR2T, firstBurstLength: Int(parameters.firstBurstLength),
                              maxBurstLength: Int(parameters.maxBurstLength),
                              maxOutstandingR2T: Int(parameters.maxOutstandingR2T)))
            let buffer = AlignedBuffer(count: edtl)
            pdu.data.withUnsafeReadableBytes { immediateBytes in
                buffer.bytes.copyMemory(from: immediateBytes)
            }
            task.writeBuffer = buffer
            let r2ts = transfer.solicit(nextTag: { self.allocateTransferTag() })
            task.write = transfer
            tasks[itt] = task
            for r2t in r2ts { sendR2T(r2t, task: task) }
            return
        }
        if isRead && !isWrite && edtl > 0 && pdu.additionalHeaders.readableBytes == 0,
           let (result, data) = readFromPageCache(&task, device: device, nexus: nexus) {
            sendStatus(for: task, result: result, dataIn: data)
            return
        }
        execute(task)
    }

    /// A read whose data is already in the page cache is answered right here: no hop to an I/O
    /// thread and back (preadv2 RWF_NOWAIT never blocks the event loop). Otherwise nil, and the
    /// buffer stays with the task for the I/O thread (one allocation either way).
    private func readFromPageCache(_ task: inout SCSITask, device: SCSITarget, nexus: NexusID) -> (SCSICommandResult, ByteBuffer)? {
        guard let context else { return nil }
        let length = task.expectedLength
        var buffer = context.channel.allocator.buffer(capacity: length)
        var result: SCSICommandResult?
        task.command.header.withUnsafeReadableBytes { header in
            let cdb = UnsafeRawBufferPointer(rebasing: header[32..<48])
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { space in
                result = device.executeWithoutBlocking(cdb: cdb, lun: task.lun, nexus: nexus, attribute: task.attribute,
                                                       dataIn: IOVectors(UnsafeMutableRawBufferPointer(rebasing: space[0..<length])))
                return min(result?.dataInCount ?? 0, length)
            }
        }
        guard let result else {
            task.readBuffer = buffer  // nothing was written into it
            return nil
        }
        return (result, buffer)
    }

    private func handleDataOut(_ pdu: PDU) {
        let itt = pdu.initiatorTaskTag
        guard var task = tasks[itt], task.state == .collectingData, var transfer = task.write,
              let buffer = task.writeBuffer else {
            // Data for a task that was aborted or never existed: drop it.
            logger.debug("Data-Out for unknown task 0x\(String(itt, radix: 16))")
            return
        }
        let length = pdu.data.readableBytes
        let offset: Int
        do {
            offset = try transfer.receiveDataOut(targetTransferTag: pdu.targetTransferTag, offset: Int(pdu.uint32(40)),
                                                 length: length, dataSN: pdu.uint32(36), final: pdu.isFinal)
        } catch {
            // A sequence error ends the task, not the session: the command fails with ABORTED
            // COMMAND and later Data-Out for it is dropped (ERL 0 has no recovery, §7.1.4.2).
            logger.warning("bad Data-Out (\(error)) for task 0x\(String(itt, radix: 16)); failing the command")
            tasks.removeValue(forKey: itt)
            let ascq: UInt8 = error == .unknownTransferTag ? 0x01 : 0x05
            sendSCSIResponse(for: task, status: .checkCondition, sense: Self.abortedCommandSense(asc: 0x4B, ascq: ascq),
                             serviceResponse: .commandCompleted, residualFlags: 0, residual: 0, dataPDUs: 0)
            return
        }
        pdu.data.withUnsafeReadableBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[offset..<(offset + length)]).copyMemory(from: bytes)
        }
        task.write = transfer
        if transfer.isComplete {
            execute(task)
            return
        }
        let r2ts = transfer.solicit(nextTag: { self.allocateTransferTag() })
        task.write = transfer
        tasks[itt] = task
        for r2t in r2ts { sendR2T(r2t, task: task) }
    }

    /// Largest expected data transfer length accepted (the engine's own limit is lower for
    /// 512-byte blocks; this bounds the memory one command can claim).
    static let maxExpectedDataTransferLength = 256 << 20

    /// Fixed-format sense, ABORTED COMMAND with the given additional sense code (SPC-4 4.5.3).
    static func abortedCommandSense(asc: UInt8, ascq: UInt8) -> [UInt8] {
        var sense = [UInt8](repeating: 0, count: 18)
        sense[0] = 0x70
        sense[2] = 0x0B
        sense[7] = 10
        sense[12] = asc
        sense[13] = ascq
        return sense
    }

    private func allocateTransferTag() -> UInt32 {
        defer {
            nextTransferTag &+= 1
            if nextTransferTag == WireConstants.reservedTag { nextTransferTag = 1 }
        }
        return nextTransferTag
    }

    private func sendR2T(_ r2t: WriteTransfer.Solicitation, task: SCSITask) {
        guard let context else { return }
        var header = OutboundHeader(.readyToTransfer, allocator: context.channel.allocator)
        header.setLUN(task.lunField)
        header.setInitiatorTaskTag(task.initiatorTaskTag)
        header.setTargetTransferTag(r2t.targetTransferTag)
        // R2T carries StatSN without advancing it (§11.8.3).
        header.setSequenceNumbers(statSN: statSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        header.set(r2t.r2tSN, at: 36)
        header.set(UInt32(r2t.offset), at: 40)
        header.set(UInt32(r2t.length), at: 44)
        send(header, data: nil)
    }

    /// Hands a command whose data is complete to an I/O worker.
    private func execute(_ task: SCSITask) {
        guard let context, let device, let nexus else { return }
        var task = task
        task.state = .executing
        tasks[task.initiatorTaskTag] = task
        window.commandStarted()
        inFlight.increment()
        let itt = task.initiatorTaskTag
        let command = task.command
        let writeBuffer = task.writeBuffer
        let readLength = task.isRead ? task.expectedLength : 0
        let readBuffer = task.readBuffer
        let writeLength = task.isWrite ? task.expectedLength : 0
        let attribute = task.attribute
        let lun = task.lun
        let allocator = context.channel.allocator
        let completions = self.completions
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        // Inside a read burst the pool is woken once at channelReadComplete.
        pendingWake = pendingWake || inReadBurst
        environment.ioPool.submit(wake: !inReadBurst) {
            let outcome = CommandExecution.run(device: device, nexus: nexus, lun: lun, attribute: attribute,
                                               command: command, writeBuffer: writeBuffer, writeLength: writeLength,
                                               readLength: readLength, readBuffer: readBuffer, allocator: allocator)
            if completions.post(itt, outcome) {
                eventLoop.execute { loopBound.value.drainCompletions() }
            }
        }
    }

    /// Everything the workers finished since the last drain, then one flush for all of it.
    private func drainCompletions() {
        for (itt, outcome) in completions.take() {
            commandFinished(itt, outcome)
        }
        completeLogoutIfIdle()
        flushIfNeeded()
    }

    private func commandFinished(_ itt: UInt32, _ outcome: CommandExecution.Outcome) {
        window.commandFinished()
        inFlight.decrement()
        guard let task = tasks.removeValue(forKey: itt), !task.aborted, case .fullFeature = phase else { return }
        sendStatus(for: task, result: outcome.result, dataIn: outcome.dataIn)
    }

    /// Data-In PDUs (status collapsed into the last when possible, §11.7.4) or a SCSI Response.
    private func sendStatus(for task: SCSITask, result: SCSICommandResult, dataIn: ByteBuffer?) {
        let expected = task.expectedLength
        inFlight.completed(read: task.isRead ? min(result.dataInCount, expected) : 0,
                           written: task.isWrite && result.status == .good ? min(result.transferLength, expected) : 0,
                           good: result.status == .good)
        var residualFlags: UInt8 = 0
        var residual = 0
        if result.transferLength > expected {
            residualFlags = 0x04  // O: overflow
            residual = result.transferLength - expected
        } else if result.transferLength < expected {
            residualFlags = 0x02  // U: underflow
            residual = expected - result.transferLength
        }
        var dataPDUs: UInt32 = 0
        if task.isRead, var data = dataIn, data.readableBytes > 0, let context {
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
                var header = OutboundHeader(.dataIn, flags: 0, allocator: context.channel.allocator)
                var flags: UInt8 = (offset + length == burstEnd) ? 0x80 : 0
                header.setLUN(task.lunField)
                header.setInitiatorTaskTag(task.initiatorTaskTag)
                header.setTargetTransferTag(WireConstants.reservedTag)
                if last && collapse {
                    flags |= 0x80 | 0x01 | residualFlags
                    header.set(result.status.rawValue, at: 3)
                    header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
                    header.set(UInt32(truncatingIfNeeded: residual), at: 44)
                } else {
                    header.set(window.expCmdSN, at: 28)
                    header.set(window.maxCmdSN, at: 32)
                }
                header.flags = flags
                header.set(dataPDUs, at: 36)
                header.set(UInt32(offset), at: 40)
                send(header, data: chunk)
                dataPDUs += 1
                offset += length
            }
            if collapse { return }
        }
        sendSCSIResponse(for: task, status: result.status, sense: result.sense, serviceResponse: .commandCompleted,
                         residualFlags: residualFlags, residual: residual, dataPDUs: dataPDUs)
    }

    private func sendSCSIResponse(for task: SCSITask, status: SCSIStatus, sense: [UInt8],
                                  serviceResponse: SCSIServiceResponse, residualFlags: UInt8, residual: Int,
                                  dataPDUs: UInt32) {
        guard let context else { return }
        var header = OutboundHeader(.scsiResponse, flags: 0x80 | residualFlags, allocator: context.channel.allocator)
        header.set(serviceResponse.rawValue, at: 2)
        header.set(status.rawValue, at: 3)
        header.setInitiatorTaskTag(task.initiatorTaskTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        header.set(dataPDUs, at: 36)
        header.set(UInt32(truncatingIfNeeded: residual), at: 44)
        var data: ByteBuffer?
        if !sense.isEmpty {
            // Sense data travels behind a two-byte SenseLength (§11.4.7.2).
            var buffer = context.channel.allocator.buffer(capacity: sense.count + 2)
            buffer.writeInteger(UInt16(sense.count))
            buffer.writeBytes(sense)
            data = buffer
        }
        send(header, data: data)
    }

    // MARK: Task management

    private func handleTaskManagement(_ pdu: PDU) {
        let function = pdu.flags & 0x7F
        let lun = LUNEncoding.decode(pdu.lunField)
        var response: TaskManagementResponseCode = .functionComplete
        var closeAfter = false
        if let device, let nexus {
            let lunExists = device.logicalUnitNumbers.contains(lun)
            switch TaskManagementCode(rawValue: function) {
            case .abortTask:
                let referenced = pdu.uint32(20)
                if let task = tasks[referenced] {
                    abort(task)
                } else {
                    // §11.5.1: a task never received (RefCmdSN not yet delivered) counts as aborted.
                    let refCmdSN = pdu.uint32(32)
                    response = (refCmdSN &- window.expCmdSN) < 0x8000_0000 ? .functionComplete : .taskDoesNotExist
                }
            case .abortTaskSet, .clearTaskSet:
                if !lunExists { response = .lunDoesNotExist; break }
                for task in tasks.values where task.lun == lun { abort(task) }
                _ = device.taskManagement(function == 2 ? .abortTaskSet : .clearTaskSet, lun: lun, nexus: nexus)
            case .logicalUnitReset:
                if !lunExists { response = .lunDoesNotExist; break }
                for task in tasks.values where task.lun == lun { abort(task) }
                response = map(device.taskManagement(.logicalUnitReset, lun: lun, nexus: nexus))
            case .targetWarmReset:
                for task in tasks.values { abort(task) }
                response = map(device.taskManagement(.targetWarmReset, lun: lun, nexus: nexus))
            case .targetColdReset:
                for task in tasks.values { abort(task) }
                response = map(device.taskManagement(.targetColdReset, lun: lun, nexus: nexus))
                closeAfter = true  // a cold reset also drops the connection (§11.5.1)
            case .clearACA:
                if !lunExists { response = .lunDoesNotExist; break }
                response = map(device.taskManagement(.clearACA, lun: lun, nexus: nexus))
            case .taskReassign:
                response = .reassignmentNotSupported
            case nil:
                response = .functionRejected
            }
        } else {
            response = .functionRejected
        }
        guard let context else { return }
        var header = OutboundHeader(.taskManagementResponse, allocator: context.channel.allocator)
        header.set(response.rawValue, at: 2)
        header.setInitiatorTaskTag(pdu.initiatorTaskTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        send(header, data: nil)
        if closeAfter {
            flushIfNeeded()
            context.close(promise: nil)
        }
    }

    private func map(_ response: TaskManagementResponse) -> TaskManagementResponseCode {
        switch response {
        case .functionComplete: .functionComplete
        case .functionRejected: .functionRejected
        case .lunDoesNotExist: .lunDoesNotExist
        case .functionNotSupported: .functionNotSupported
        }
    }

    /// A task waiting for data is dropped now; one on a worker has its result dropped.
    private func abort(_ task: SCSITask) {
        switch task.state {
        case .collectingData:
            tasks.removeValue(forKey: task.initiatorTaskTag)
        case .executing:
            tasks[task.initiatorTaskTag]?.aborted = true
        }
    }

    // MARK: Text and logout

    private func handleText(_ pdu: PDU) {
        guard let context else { return }
        var payload: ByteBuffer
        if pdu.targetTransferTag != WireConstants.reservedTag, let pending = pendingTextResponse,
           pending.tag == pdu.targetTransferTag {
            // The initiator asks for the next part of a long answer (§11.10.4).
            payload = pending.remaining
        } else {
            let answer = sendTargetsResponse(request: Array(pdu.data.readableBytesView),
                                             directory: environment.catalog.directory(forLocalAddress: localAddress),
                                             initiatorName: parameters.initiatorName, remoteAddress: remoteAddress,
                                             sessionTarget: parameters.sessionType == .normal ? parameters.targetName : nil)
            payload = context.channel.allocator.buffer(capacity: answer.count)
            payload.writeBytes(answer)
        }
        pendingTextResponse = nil
        let limit = Int(parameters.maxXmitDataSegmentLength)
        let part = payload.readSlice(length: min(limit, payload.readableBytes))!
        var header = OutboundHeader(.textResponse, flags: 0, allocator: context.channel.allocator)
        if payload.readableBytes > 0 {
            let tag = allocateTransferTag()
            pendingTextResponse = (tag, payload)
            header.flags = 0x40  // C: more to come
            header.setTargetTransferTag(tag)
        } else {
            header.flags = 0x80  // F
            header.setTargetTransferTag(WireConstants.reservedTag)
        }
        header.setLUN(pdu.lunField)
        header.setInitiatorTaskTag(pdu.initiatorTaskTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        send(header, data: part)
    }

    private func handleLogout(_ pdu: PDU) {
        let reason = pdu.flags & 0x7F
        if reason == LogoutReason.removeConnectionForRecovery.rawValue {
            sendLogoutResponse(pdu, response: .recoveryNotSupported)
            return
        }
        // Tasks still waiting for data cannot finish; those on workers are awaited (§11.14).
        for task in tasks.values where task.state == .collectingData { abort(task) }
        pendingLogout = pdu
        completeLogoutIfIdle()
    }

    private func completeLogoutIfIdle() {
        guard let pdu = pendingLogout, !tasks.values.contains(where: { !$0.aborted }) else { return }
        pendingLogout = nil
        sendLogoutResponse(pdu, response: .closedSuccessfully)
        flushIfNeeded()
        phase = .closed
        context?.close(promise: nil)
    }

    private func sendLogoutResponse(_ pdu: PDU, response: LogoutResponseCode) {
        guard let context else { return }
        var header = OutboundHeader(.logoutResponse, allocator: context.channel.allocator)
        header.set(response.rawValue, at: 2)
        header.setInitiatorTaskTag(pdu.initiatorTaskTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        header.set(UInt16(0), at: 40)  // Time2Wait
        header.set(UInt16(0), at: 42)  // Time2Retain
        send(header, data: nil)
    }

    // MARK: Target-initiated PDUs

    private func sendAsyncLogoutRequest(seconds: UInt16) {
        guard let context else { return }
        var header = OutboundHeader(.asyncMessage, allocator: context.channel.allocator)
        header.setInitiatorTaskTag(WireConstants.reservedTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        header.set(AsyncEvent.logoutRequested.rawValue, at: 36)
        header.set(seconds, at: 42)  // Parameter3: time to logout
        send(header, data: nil)
    }

    private func startPings() {
        guard let context, let interval = nopInterval else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timeout = nopTimeout
        pingTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.ping(timeout: timeout)
        }
    }

    private func ping(timeout: TimeAmount) {
        guard case .fullFeature = phase, let context else { return }
        if let outstanding = outstandingPing {
            if NIODeadline.now() - outstanding.sent >= timeout {
                logger.warning("NOP-In ping not answered; dropping the connection")
                environment.securityCounters.countNOPTimeout()
                context.close(promise: nil)
            }
            return
        }
        let tag = allocateTransferTag()
        outstandingPing = (tag, .now())
        var header = OutboundHeader(.nopIn, allocator: context.channel.allocator)
        header.setInitiatorTaskTag(WireConstants.reservedTag)
        header.setTargetTransferTag(tag)
        // An unsolicited NOP-In carries StatSN without advancing it (§11.19.3).
        header.setSequenceNumbers(statSN: statSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        send(header, data: nil)
        flushIfNeeded()
    }

    private func sendReject(_ reason: RejectReason, header rejected: ByteBuffer) {
        guard let context else { return }
        var header = OutboundHeader(.reject, allocator: context.channel.allocator)
        header.set(reason.rawValue, at: 2)
        header.setInitiatorTaskTag(WireConstants.reservedTag)
        header.setSequenceNumbers(statSN: nextStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        send(header, data: rejected)  // the data segment is the rejected PDU's header (§11.17.2)
    }

    // MARK: - Output

    private func nextStatSN() -> UInt32 {
        defer { statSN &+= 1 }
        return statSN
    }

    private func send(_ header: OutboundHeader, data: ByteBuffer?) {
        guard let context else { return }
        let (head, body, trailer) = writer.encode(header, data: data, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(head), promise: nil)
        if let body { context.write(wrapOutboundOut(body), promise: nil) }
        if let trailer { context.write(wrapOutboundOut(trailer), promise: nil) }
        needsFlush = true
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }
}

/// The part of a command that runs on an I/O worker: the engine call with caller-owned memory.
enum CommandExecution {
    struct Outcome: Sendable {
        var result: SCSICommandResult
        var dataIn: ByteBuffer?
    }

    static func run(device: SCSITarget, nexus: NexusID, lun: UInt64, attribute: TaskAttribute, command: PDU,
                    writeBuffer: AlignedBuffer?, writeLength: Int, readLength: Int, readBuffer: ByteBuffer?,
                    allocator: ByteBufferAllocator) -> Outcome {
        command.header.withUnsafeReadableBytes { header in
            let cdb = UnsafeRawBufferPointer(rebasing: header[32..<48])
            if command.additionalHeaders.readableBytes > 0 {
                let extended = extendedCDB(cdb, command.additionalHeaders)
                return extended.withUnsafeBytes { cdb in
                    run(device: device, nexus: nexus, lun: lun, attribute: attribute, cdb: cdb, command: command,
                        writeBuffer: writeBuffer, writeLength: writeLength, readLength: readLength, readBuffer: readBuffer,
                        allocator: allocator)
                }
            }
            return run(device: device, nexus: nexus, lun: lun, attribute: attribute, cdb: cdb, command: command,
                       writeBuffer: writeBuffer, writeLength: writeLength, readLength: readLength, readBuffer: readBuffer,
                        allocator: allocator)
        }
    }

    private static func run(device: SCSITarget, nexus: NexusID, lun: UInt64, attribute: TaskAttribute,
                            cdb: UnsafeRawBufferPointer, command: PDU, writeBuffer: AlignedBuffer?,
                            writeLength: Int, readLength: Int, readBuffer: ByteBuffer?,
                            allocator: ByteBufferAllocator) -> Outcome {
        func withDataOut<T>(_ body: (IOVectors) -> T) -> T {
            if let writeBuffer {
                return body(IOVectors(UnsafeMutableRawBufferPointer(rebasing: writeBuffer.bytes[0..<writeLength])))
            }
            // All data came as immediate data: use the receive buffer itself (no copy).
            return command.data.withUnsafeReadableBytes { bytes in
                body(IOVectors(UnsafeMutableRawBufferPointer(mutating: bytes)))
            }
        }
        guard readLength > 0 else {
            let result = withDataOut { dataOut in
                device.execute(cdb: cdb, lun: lun, nexus: nexus, attribute: attribute, dataOut: dataOut, dataIn: .empty)
            }
            return Outcome(result: result, dataIn: nil)
        }
        // The buffer the page-cache attempt allocated, when there was one.
        var dataIn = readBuffer ?? allocator.buffer(capacity: readLength)
        var result = SCSICommandResult(status: .good)
        dataIn.writeWithUnsafeMutableBytes(minimumWritableBytes: readLength) { space in
            let target = UnsafeMutableRawBufferPointer(rebasing: space[0..<readLength])
            result = withDataOut { dataOut in
                device.execute(cdb: cdb, lun: lun, nexus: nexus, attribute: attribute, dataOut: dataOut,
                               dataIn: IOVectors(target))
            }
            return min(result.dataInCount, readLength)
        }
        return Outcome(result: result, dataIn: dataIn)
    }

    /// CDBs longer than 16 bytes continue in an Extended CDB AHS (type 1, §11.3.5); the AHS
    /// was validated when the command arrived.
    private static func extendedCDB(_ basic: UnsafeRawBufferPointer, _ ahs: ByteBuffer) -> [UInt8] {
        var cdb = Array(basic)
        for case .extendedCDB(let rest) in (try? AdditionalHeaderSegments.parse(ahs)) ?? [] { cdb += rest }
        return cdb
    }
}

import Logging
import NIOCore
import SCSIEngine

/// One iSCSI connection (= one session; MaxConnections=1). It decodes nothing itself
/// (PDUDecoder frames, InitiatorPDU decodes) and decides nothing about the protocol: it feeds
/// the login state machine, then the session state machine, and carries out their actions:
/// writing PDUs, running commands in the engine (on `ioPool`, or here when the page cache
/// answers), timers, closing.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer  // one PDU frame (PDUDecoder)
    typealias OutboundOut = ByteBuffer

    private let environment: ConnectionEnvironment
    private let digestBox: DigestSettingsBox
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var remoteAddress = "?"
    private var localAddress = "?"
    private var login: LoginPhase?
    private var session: SessionStateMachine?
    private var established: EstablishedSession?
    private let inFlight = SessionCounters()
    private var dispatcher: CommandDispatcher?
    private var writer = PDUWriter()
    /// PDU headers, used again once written (no allocation per PDU).
    private var headerBuffers = BufferRecycler(slots: 128)
    /// Reused for every call into the state machines (no allocation per command).
    private var actions: [SessionAction] = []
    /// Reused for every drain of the dispatcher's mailbox.
    private var finished: [CompletionMailbox.Completion] = []
    private var pingTimer: RepeatedTask?
    private var reportedBufferedBytes = 0
    private var needsFlush = false
    private var inReadBurst = false

    init(environment: ConnectionEnvironment, digestBox: DigestSettingsBox) {
        self.environment = environment
        self.digestBox = digestBox
        self.logger = environment.logger
        actions.reserveCapacity(16)
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
        login = LoginPhase(environment: environment, remoteAddress: remoteAddress, localAddress: localAddress,
                           logger: logger)
        guard login!.admit(loop: NIOLoopBound(self, eventLoop: context.eventLoop), eventLoop: context.eventLoop) else {
            login = nil
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        login?.end()
        login = nil
        pingTimer?.cancel()
        session?.connectionClosed()
        syncBufferedBytes()
        // The dispatcher's drain callback holds this handler: dropping it breaks that cycle
        // (commands still on workers finish; their results are dropped with the mailbox).
        dispatcher = nil
        if let established {
            let stillOurs = environment.sessions.remove(tsih: established.tsih, channel: context.channel)
            if stillOurs, let device = established.device, let nexus = established.nexus { device.closeNexus(nexus) }
            logger.info("session closed")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("connection error: \(error)")
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let error = event as? DataDigestError {
            inReadBurst = true
            guard login == nil else { context.close(promise: nil); return }
            logger.warning("data digest error on opcode \(error.pdu.rawOpcode)")
            session?.receiveDataDigestError(header: error.pdu.header, into: &actions)
            performActions()
        } else if let abort = event as? AbortTasksEvent {
            session?.abortTasks(onLUN: abort.lun)
            syncBufferedBytes()
        } else if let request = event as? RequestLogoutEvent {
            session?.requestLogout(seconds: request.seconds, into: &actions)
            performActions()
            flushIfNeeded()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        let pdu = PDU(frame: unwrapInboundIn(data), headerDigest: digestBox.digests.header)
        if login != nil {
            receiveLogin(pdu)
            return
        }
        session?.receive(pdu, into: &actions)
        performActions()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        dispatcher?.endOfReadBurst()
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    // MARK: - Login

    /// Also called by LoginPhase when a throttled CHAP response gets its turn.
    func receiveLogin(_ pdu: PDU) {
        guard let context, var phase = login else { return }
        let outcome = phase.receive(pdu, loop: NIOLoopBound(self, eventLoop: context.eventLoop), eventLoop: context.eventLoop)
        login = phase
        switch outcome {
        case .waiting:
            return
        case .close:
            context.close(promise: nil)
        case .respond(let response, let numbers):
            send(.loginResponse(response, numbers))
        case .refuse(let response, let numbers):
            send(.loginResponse(response, numbers))
            flushIfNeeded()
            context.close(promise: nil)
        case .complete(var response, let negotiated, let cmdSN, let statSN):
            switch EstablishedSession.establish(negotiated, environment: environment, channel: context.channel,
                                                remoteAddress: remoteAddress, localAddress: localAddress, inFlight: inFlight) {
            case .failure(let refusal):
                let status = refusal.status
                logger.notice("login refused", metadata: ["status": "\(status)", "reason": "\(status.reason)"])
                response.transit = false
                (response.statusClass, response.statusDetail) = (status.statusClass, status.statusDetail)
                send(.loginResponse(response, SequenceNumbers(statSN: statSN, expCmdSN: cmdSN, maxCmdSN: cmdSN)))
                flushIfNeeded()
                context.close(promise: nil)
            case .success(let established):
                phase.end()
                login = nil
                startSession(established, response: response, cmdSN: cmdSN, statSN: statSN)
            }
        }
        flushIfNeeded()
    }

    private func startSession(_ established: EstablishedSession, response: LoginResponse, cmdSN: UInt32, statSN: UInt32) {
        self.established = established
        let negotiated = established.parameters
        let machine = SessionStateMachine(
            configuration: established.sessionConfiguration(environment: environment, localAddress: localAddress,
                                                            remoteAddress: remoteAddress),
            expCmdSN: cmdSN, statSN: statSN &+ 1)
        var final = response
        final.tsih = established.tsih
        send(.loginResponse(final, SequenceNumbers(statSN: statSN, expCmdSN: cmdSN, maxCmdSN: machine.maxCmdSN)))
        session = machine
        if let context, let device = established.device, let nexus = established.nexus {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            // Made once: a closure literal inside scheduleDrain would allocate its context per drain.
            let drain: @Sendable () -> Void = { loopBound.value.drainCompletions() }
            dispatcher = CommandDispatcher(pool: environment.ioPool, device: device, nexus: nexus,
                                           allocator: context.channel.allocator,
                                           scheduleDrain: { eventLoop.execute(drain) })
        }
        // Digests apply from the first full-feature PDU on, both ways (§13.1).
        let digests = DigestSettings(header: negotiated.headerDigest, data: negotiated.dataDigest)
        digestBox.digests = digests
        digestBox.maxRecvDataSegmentLength = Int(negotiated.maxRecvDataSegmentLength)
        writer.digests = digests
        logger[metadataKey: "initiator"] = "\(negotiated.initiatorName)"
        logger[metadataKey: "tsih"] = "\(established.tsih)"
        logger.info("session established", metadata: [
            "type": "\(negotiated.sessionType)", "target": "\(negotiated.targetName)",
            "headerDigest": "\(negotiated.headerDigest)", "dataDigest": "\(negotiated.dataDigest)",
        ])
        startPings(interval: established.nopInterval, timeout: established.nopTimeout)
    }

    // MARK: - Carrying out the session's actions

    private func performActions() {
        var index = 0
        while index < actions.count {
            let action = actions[index]
            index += 1
            switch action {
            case .send(let pdu): send(pdu)
            case .execute(let request): execute(request)
            case .taskManagement(let request):
                guard let device = established?.device, let nexus = established?.nexus, let context else {
                    session?.taskManagementCompleted(request, response: .functionRejected, into: &actions)
                    continue
                }
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                if let response = TaskManagementRunner.run(request, on: device, nexus: nexus, eventLoop: context.eventLoop, later: {
                    let handler = loopBound.value
                    handler.session?.taskManagementCompleted(request, response: $0, into: &handler.actions)
                    handler.performActions()
                }) {
                    session?.taskManagementCompleted(request, response: response, into: &actions)
                }
            case .close:
                flushIfNeeded()
                context?.close(promise: nil)
            }
        }
        actions.removeAll(keepingCapacity: true)
        syncBufferedBytes()
    }

    private func execute(_ request: CommandRequest) {
        inFlight.increment()
        if let done = dispatcher?.dispatch(request, inReadBurst: inReadBurst) { commandFinished(done) }
    }

    /// Everything the workers finished since the last drain, then one flush for all of it.
    private func drainCompletions() {
        dispatcher?.takeCompletions(into: &finished)
        for done in finished { commandFinished(done) }
        finished.removeAll(keepingCapacity: true)  // lets go of the read buffers for the recycler
        performActions()
        flushIfNeeded()
    }

    private func commandFinished(_ done: CompletionMailbox.Completion) {
        inFlight.decrement()
        let result = done.outcome.result
        inFlight.completed(read: min(result.dataInCount, done.readLength),
                           written: result.status == .good ? min(result.transferLength, done.writeLength) : 0,
                           good: result.status == .good)
        session?.commandCompleted(done.itt, result: result, dataIn: done.outcome.dataIn, into: &actions)
        if let dataIn = done.outcome.dataIn { dispatcher?.recycle(dataIn) }
    }

    /// Keeps the server-wide gauge of buffered Data-Out in step with this session's.
    private func syncBufferedBytes() {
        let now = session.map { $0.isClosed ? 0 : $0.bufferedWriteBytes } ?? 0
        environment.guards.addBuffered(now - reportedBufferedBytes)
        reportedBufferedBytes = now
    }

    // MARK: - Pings

    private func startPings(interval: TimeAmount?, timeout: TimeAmount) {
        guard let context, let interval else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.ping(timeout: timeout)
        }
    }

    private func ping(timeout: TimeAmount) {
        guard session != nil else { return }
        dispatcher?.releaseBuffersIfIdle()
        if session!.pingDue(now: .now(), timeout: timeout, into: &actions) {
            logger.warning("NOP-In ping not answered; dropping the connection")
            environment.securityCounters.countNOPTimeout()
        }
        performActions()
        flushIfNeeded()
    }

    // MARK: - Output

    private func send(_ pdu: TargetPDU) {
        guard let context else { return }
        let allocator = context.channel.allocator
        var (header, data) = TargetPDUEncoder.encode(
            pdu, header: headerBuffers.take(capacity: OutboundHeader.capacity, allocator: allocator), allocator: allocator)
        let (head, body, trailer) = writer.encode(&header, data: data, allocator: allocator)
        context.write(wrapOutboundOut(head), promise: nil)
        headerBuffers.give(head)
        if let body { context.write(wrapOutboundOut(body), promise: nil) }
        if let trailer { context.write(wrapOutboundOut(trailer), promise: nil) }
        needsFlush = true
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    func loginTimedOut() {
        guard login != nil else { return }
        logger.notice("login timed out")
        context?.close(promise: nil)
    }

    func grantLoginTurn() {
        login?.grantTurn()
    }
}

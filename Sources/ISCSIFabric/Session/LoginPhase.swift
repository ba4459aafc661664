import Logging
import NIOCore

/// A connection before full feature phase: the login state machine plus what guards it
/// (FabricLimits: a place among the connections in login, the CHAP throttle's turn, the login
/// timeout), the numbering of login responses and the failed-login log.
struct LoginPhase {
    enum Outcome {
        /// A throttled CHAP response waits for its turn; nothing to send yet.
        case waiting
        case respond(LoginResponse, SequenceNumbers)
        /// Send, then close.
        case refuse(LoginResponse, SequenceNumbers)
        /// Not a login request, or one before the last was answered (§6.1): close.
        case close
        /// Login succeeded: the final response (TSIH still to fill in) and the numbering the
        /// session continues with (`statSN` is the final response's).
        case complete(LoginResponse, NegotiatedParameters, cmdSN: UInt32, statSN: UInt32)
    }

    private var machine: LoginStateMachine
    private let environment: ConnectionEnvironment
    private let remoteAddress: String
    private let logger: Logger
    private var statSN: UInt32 = 1
    private var cmdSN: UInt32?
    private var holdsPlace = false
    private var timeout: Scheduled<Void>?
    private var turn: Scheduled<Void>?
    private var turnGranted = false

    init(environment: ConnectionEnvironment, remoteAddress: String, localAddress: String, logger: Logger) {
        self.environment = environment
        self.remoteAddress = remoteAddress
        self.logger = logger
        machine = LoginStateMachine(directory: environment.catalog.directory(forLocalAddress: localAddress),
                                    remoteAddress: remoteAddress, targetPortalGroupTag: environment.targetPortalGroupTag)
    }

    /// Takes a place among the connections in login and starts the login timeout; false when
    /// there are too many (the connection is closed before anything is spent on it).
    mutating func admit(loop: NIOLoopBound<ConnectionHandler>, eventLoop: any EventLoop) -> Bool {
        guard environment.guards.loginAdmission.admit(remoteAddress) else {
            environment.guards.countRefusedConnection()
            return false
        }
        holdsPlace = true
        timeout = eventLoop.scheduleTask(in: environment.loginTimeout) { loop.value.loginTimedOut() }
        return true
    }

    /// Login over (either way): timers stop, the place is given back.
    mutating func end() {
        timeout?.cancel()
        turn?.cancel()
        turn = nil
        if holdsPlace {
            holdsPlace = false
            environment.guards.loginAdmission.release(remoteAddress)
        }
    }

    mutating func grantTurn() {
        turn = nil
        turnGranted = true
    }

    mutating func receive(_ pdu: PDU, loop: NIOLoopBound<ConnectionHandler>, eventLoop: any EventLoop) -> Outcome {
        guard turn == nil else { return .close }
        guard case .login(let request)? = try? InitiatorPDU(decoding: pdu) else {
            // §6.2: anything else before login completes is a protocol error.
            logger.warning("opcode \(pdu.rawOpcode) during login; closing")
            return .close
        }
        if cmdSN == nil { cmdSN = request.cmdSN }
        if request.tsih != 0 {
            // Adding a connection to an existing session (MC/S) is not offered: MaxConnections=1.
            let response = LoginResponse(transit: false, continueFlag: false, currentStage: request.currentStage,
                                         nextStage: request.nextStage, isid: request.isid, tsih: request.tsih,
                                         initiatorTaskTag: request.initiatorTaskTag, statusClass: 0x02,
                                         statusDetail: 0x0A, data: [])
            return .refuse(response, consumeStatSN(maxCmdSN: request.cmdSN))
        }
        if machine.awaitsCHAPResponse && !turnGranted {
            // The CHAP response is verified in its turn (LoginThrottle), however many
            // connections the guesser opens.
            let delay = environment.guards.loginThrottle.delayBeforeVerifying(initiator: machine.initiatorName,
                                                                              address: remoteAddress)
            if delay > .zero {
                environment.guards.countDelayedVerification()
                turn = eventLoop.scheduleTask(in: delay) {
                    loop.value.grantLoginTurn()
                    loop.value.receiveLogin(pdu)
                }
                return .waiting
            }
        }
        turnGranted = false
        switch machine.receiveLoginRequest(request) {
        case .respond(let response):
            return .respond(response, consumeStatSN(maxCmdSN: request.cmdSN))
        case .fail(let response):
            logRefusal(response, request: request)
            if response.status == .authenticationFailure {
                environment.securityCounters.countCHAPFailure()
                if machine.usedCHAP {
                    environment.guards.loginThrottle.recordFailure(initiator: machine.initiatorName, address: remoteAddress)
                }
            }
            if response.status == .authorizationFailure { environment.securityCounters.countACLDenial() }
            return .refuse(response, consumeStatSN(maxCmdSN: request.cmdSN))
        case .complete(let response, let negotiated):
            if machine.usedCHAP { environment.guards.loginThrottle.recordSuccess(initiator: machine.initiatorName) }
            return .complete(response, negotiated, cmdSN: cmdSN ?? request.cmdSN, statSN: statSN)
        }
    }

    private mutating func consumeStatSN(maxCmdSN: UInt32) -> SequenceNumbers {
        defer { statSN &+= 1 }
        return SequenceNumbers(statSN: statSN, expCmdSN: cmdSN ?? 0, maxCmdSN: maxCmdSN)
    }

    /// One line per refused login, within the failed-login budget: who (initiator, CHAP
    /// user, address, ISID) and why; never a secret.
    private func logRefusal(_ response: LoginResponse, request: LoginRequest) {
        guard case .log(let suppressed) = environment.guards.failedLoginLog.decide() else { return }
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

// The target's side of the iSCSI login phase (RFC 7143 §6) for one connection, without I/O.
//
// Stages: 0 security negotiation, 1 login operational negotiation, 3 full feature phase.
// Feed every Login Request to `receiveLoginRequest(_:)` and send what it returns; after
// `.complete` the connection enters full feature phase, after `.fail` it is closed.
//
// Scope: leading logins of new sessions (TSIH 0). A login carrying a non-zero TSIH (adding a
// connection to, or reinstating one of, an existing session) is answered "session does not
// exist", as this target supports MaxConnections=1 and ErrorRecoveryLevel=0 only. Login
// timeouts belong to the caller.

public struct LoginStateMachine: Sendable, CustomStringConvertible, CustomReflectable {
    /// Largest text (in bytes) accepted across a run of C-bit requests.
    public static let maxTextLength = 65_536
    /// Longest iSCSI name (RFC 7143 §4.2.7.1).
    public static let maxNameLength = 223

    private enum State {
        /// No request seen yet.
        case initial
        /// In the security negotiation stage.
        case security
        /// In the operational negotiation stage.
        case operational
        case complete
        case failed
    }

    private enum Authentication {
        /// AuthMethod not negotiated yet.
        case notNegotiated
        case chap(CHAPAuthenticator)
        /// Authenticated (user for CHAP, nil for AuthMethod=None).
        case done(user: String?)
    }

    private struct Identity {
        var isid: UInt64
        var tsih: UInt16
        var cid: UInt16
    }

    private let directory: TargetDirectory
    private let remoteAddress: String
    private let targetPortalGroupTag: UInt16
    private let challengeGenerator: CHAPChallengeGenerator

    private var state: State = .initial
    private var identity: Identity?
    /// Text of C-bit requests not yet complete.
    private var pendingText: [UInt8] = []
    private var authentication: Authentication = .notNegotiated
    private var policy: AuthenticationPolicy = .none
    private var negotiation: OperationalNegotiation?
    /// The InitiatorName declared in the first request ("" before it).
    public private(set) var initiatorName = ""
    /// The CHAP_N the initiator tried (for the failed-login log; never a secret).
    public private(set) var attemptedCHAPUser: String?
    private var initiatorAlias: String?
    private var sessionType: SessionType = .normal
    private var target: TargetAccess?
    /// TargetPortalGroupTag (and TargetAlias) go in the first response that answers keys.
    private var declarationsSent = false
    private var continuationStage: UInt8?

    public init(directory: TargetDirectory, remoteAddress: String, targetPortalGroupTag: UInt16) {
        self.init(directory: directory, remoteAddress: remoteAddress, targetPortalGroupTag: targetPortalGroupTag,
                  challengeGenerator: CHAPAuthenticator.systemRandomChallenge)
    }

    /// As above with a chosen CHAP challenge source (tests use a fixed one).
    public init(directory: TargetDirectory, remoteAddress: String, targetPortalGroupTag: UInt16,
                challengeGenerator: @escaping CHAPChallengeGenerator) {
        self.directory = directory
        self.remoteAddress = remoteAddress
        self.targetPortalGroupTag = targetPortalGroupTag
        self.challengeGenerator = challengeGenerator
    }

    // Never print secrets (the directory holds CHAP secrets).
    public var description: String { "LoginStateMachine(\(state), initiator: \(initiatorName))" }
    public var customMirror: Mirror { Mirror(self, children: ["state": "\(state)", "initiatorName": initiatorName]) }

    /// The current stage: 0, 1, or 3 once complete.
    public var currentStage: UInt8 {
        switch state {
        case .initial, .security: return 0
        case .operational: return 1
        case .complete, .failed: return 3
        }
    }

    public mutating func receiveLoginRequest(_ request: LoginRequest) -> LoginAction {
        switch state {
        case .complete, .failed:
            return fail(request, .invalidDuringLogin)
        case .initial, .security, .operational:
            break
        }
        let action = process(request)
        if case .fail = action { state = .failed }
        return action
    }

    // MARK: - Processing

    private mutating func process(_ request: LoginRequest) -> LoginAction {
        // PDU-level checks.
        if case .initial = state {
            guard request.versionMin == 0 else { return fail(request, .unsupportedVersion) }
            guard request.tsih == 0 else { return fail(request, .sessionDoesNotExist) }
        }
        if identity == nil {
            identity = Identity(isid: request.isid, tsih: request.tsih, cid: request.cid)
        } else if let id = identity,
                  id.isid != request.isid || id.tsih != request.tsih || id.cid != request.cid {
            return fail(request, .initiatorError)
        }
        if request.transit && request.continueFlag { return fail(request, .initiatorError) }
        switch (state, request.currentStage) {
        case (.initial, 0), (.initial, 1), (.security, 0), (.operational, 1): break
        default: return fail(request, .initiatorError)
        }
        // A request continuing text (C bit) stays in the stage of the one before it.
        if let stage = continuationStage, stage != request.currentStage { return fail(request, .initiatorError) }
        if request.transit {
            let validNext = request.nextStage == 1 || request.nextStage == 3
            guard validNext, request.nextStage > request.currentStage else { return fail(request, .initiatorError) }
        }

        // Text reassembly (C bit).
        guard pendingText.count + request.data.count <= Self.maxTextLength else {
            return fail(request, .initiatorError)
        }
        pendingText.append(contentsOf: request.data)
        if request.continueFlag {
            continuationStage = request.currentStage
            return .respond(response(request, transit: false, nextStage: 0, keys: []))
        }
        continuationStage = nil
        let text = pendingText
        pendingText = []
        let keys: [TextKeyValue]
        do {
            keys = try TextKeys.parse(text)
        } catch {
            return fail(request, .initiatorError)
        }

        var replies: [TextKeyValue] = []
        if negotiation == nil {
            if let failure = startSession(keys) { return fail(request, failure) }
        } else if let failure = checkRepeatedDeclarations(keys) {
            return fail(request, failure)
        }
        if case .initial = state {
            if request.currentStage == 1 {
                // Security stage skipped: only possible when the target does not require it.
                guard !policy.requiresCHAP else { return fail(request, .authenticationFailure) }
                authentication = .done(user: nil)
                state = .operational
            } else {
                state = .security
            }
        }
        if !declarationsSent, sessionType == .normal {
            declarationsSent = true
            replies.append(TextKeyValue("TargetPortalGroupTag", String(targetPortalGroupTag)))
            if let alias = target?.alias { replies.append(TextKeyValue("TargetAlias", alias)) }
        }

        let securityKeys = keys.filter { LoginOnlyKeys.isSecurityKey($0.key) }
        let operationalKeys = keys.filter {
            !LoginOnlyKeys.isSecurityKey($0.key) && !LoginOnlyKeys.initiatorDeclarations.contains($0.key)
        }

        if case .security = state {
            switch securityStage(securityKeys, replies: &replies) {
            case .failure(let status): return fail(request, status)
            case .success: break
            }
        } else if !securityKeys.isEmpty {
            // Security keys after the security stage.
            return fail(request, .initiatorError)
        }

        // Operational keys (accepted in the security stage too, once negotiation exists).
        do {
            replies += try negotiation!.respond(to: operationalKeys)
        } catch {
            return fail(request, .initiatorError)
        }

        return decideTransit(request, replies: replies)
    }

    /// First request: names, session type, target lookup and authorization.
    private mutating func startSession(_ keys: [TextKeyValue]) -> LoginStatus? {
        guard let name = keys.value(for: "InitiatorName"), !name.isEmpty else { return .missingParameter }
        guard name.utf8.count <= Self.maxNameLength else { return .initiatorError }
        initiatorName = name
        initiatorAlias = keys.value(for: "InitiatorAlias")
        switch keys.value(for: "SessionType") ?? "Normal" {
        case "Normal": sessionType = .normal
        case "Discovery": sessionType = .discovery
        default: return .sessionTypeNotSupported
        }
        let settings: TargetLoginSettings
        switch sessionType {
        case .discovery:
            policy = directory.discoveryAuthentication
            settings = directory.discoverySettings
        case .normal:
            guard let targetName = keys.value(for: "TargetName"), !targetName.isEmpty else { return .missingParameter }
            guard let found = directory.target(named: targetName) else { return .notFound }
            guard found.isAllowed(name, remoteAddress) else { return .authorizationFailure }
            target = found
            policy = found.authentication
            settings = found.settings
        }
        negotiation = OperationalNegotiation(sessionType: sessionType, settings: settings)
        return nil
    }

    /// InitiatorName, TargetName, SessionType are declared once; a repeat must not change them.
    private func checkRepeatedDeclarations(_ keys: [TextKeyValue]) -> LoginStatus? {
        for pair in keys {
            switch pair.key {
            case "InitiatorName" where pair.value != initiatorName: return .initiatorError
            case "TargetName" where pair.value != (target?.name ?? pair.value): return .initiatorError
            case "SessionType" where pair.value != (sessionType == .normal ? "Normal" : "Discovery"):
                return .initiatorError
            default: continue
            }
        }
        return nil
    }

    private enum StageResult {
        case success
        case failure(LoginStatus)
    }

    /// AuthMethod and CHAP keys in the security stage.
    private mutating func securityStage(_ keys: [TextKeyValue], replies: inout [TextKeyValue]) -> StageResult {
        var chapKeys: [TextKeyValue] = []
        for pair in keys {
            if pair.key == "AuthMethod" {
                guard case .notNegotiated = authentication else { return .failure(.initiatorError) }
                let acceptable = policy.requiresCHAP ? "CHAP" : "None"
                guard TextKeys.listValues(pair.value).contains(acceptable) else {
                    return .failure(.authenticationFailure)
                }
                replies.append(TextKeyValue("AuthMethod", acceptable))
                authentication = policy.requiresCHAP
                    ? .chap(CHAPAuthenticator(policy: policy, challengeGenerator: challengeGenerator))
                    : .done(user: nil)
            } else if pair.key.hasPrefix("CHAP_") {
                if pair.key == "CHAP_N" { attemptedCHAPUser = String(pair.value.prefix(Self.maxNameLength)) }
                chapKeys.append(pair)
            } else {
                // SRP, KRB5, SPKM keys: methods never selected by this target.
                return .failure(.initiatorError)
            }
        }
        if !chapKeys.isEmpty || isCHAPInProgress {
            guard case .chap(var chap) = authentication else { return .failure(.initiatorError) }
            let outcome = chap.receive(chapKeys)
            switch outcome {
            case .send(let out):
                authentication = .chap(chap)
                replies += out
            case .authenticated(let user, let reply):
                authentication = .done(user: user)
                replies += reply
            case .failed:
                return .failure(.authenticationFailure)
            }
        }
        return .success
    }

    /// The next request is expected to carry the CHAP response: the caller may make it wait
    /// its turn (LoginThrottle) before handing it over.
    public var awaitsCHAPResponse: Bool {
        if case .chap(let c) = authentication { return c.awaitsResponse }
        return false
    }

    /// CHAP was how this login authenticated (or tried to).
    public var usedCHAP: Bool { policy.requiresCHAP }

    private var isCHAPInProgress: Bool {
        if case .chap(let c) = authentication { return !c.isComplete }
        return false
    }

    /// Whether to move on, and the response that says so.
    private mutating func decideTransit(_ request: LoginRequest, replies: [TextKeyValue]) -> LoginAction {
        var replies = replies
        switch state {
        case .security:
            guard request.transit else {
                return .respond(response(request, transit: false, nextStage: 0, keys: replies))
            }
            switch authentication {
            case .notNegotiated:
                // AuthMethod defaults to None.
                if policy.requiresCHAP { return fail(request, .authenticationFailure) }
                authentication = .done(user: nil)
            case .chap:
                // Still authenticating: not ready to leave the security stage.
                return .respond(response(request, transit: false, nextStage: 0, keys: replies))
            case .done:
                break
            }
            if request.nextStage == 1 || negotiation!.needsToOffer {
                // Operational negotiation is needed (the initiator asked for it, or the target
                // has offers to make): move to stage 1 (the target may answer a lower NSG).
                state = .operational
                return .respond(response(request, transit: true, nextStage: 1, keys: replies))
            }
            replies += negotiation!.makeTargetOffers()
            return complete(request, replies: replies)

        case .operational:
            replies += negotiation!.makeTargetOffers()
            guard request.transit, !negotiation!.hasOutstandingOffers else {
                return .respond(response(request, transit: false, nextStage: 0, keys: replies))
            }
            return complete(request, replies: replies)

        case .initial, .complete, .failed:
            return fail(request, .targetError)
        }
    }

    private mutating func complete(_ request: LoginRequest, replies: [TextKeyValue]) -> LoginAction {
        var parameters = negotiation!.finalParameters()
        parameters.sessionType = sessionType
        parameters.initiatorName = initiatorName
        parameters.initiatorAlias = initiatorAlias
        parameters.targetName = target?.name ?? ""
        parameters.isid = request.isid
        if case .done(let user) = authentication { parameters.authenticatedUser = user }
        state = .complete
        return .complete(response(request, transit: true, nextStage: 3, keys: replies), parameters)
    }

    // MARK: - Responses

    private func response(_ request: LoginRequest, transit: Bool, nextStage: UInt8,
                                   keys: [TextKeyValue]) -> LoginResponse {
        LoginResponse(transit: transit, continueFlag: false, currentStage: request.currentStage,
                             nextStage: transit ? nextStage : 0, versionMax: 0, versionActive: 0,
                             isid: request.isid, tsih: 0, initiatorTaskTag: request.initiatorTaskTag,
                             statusClass: 0, statusDetail: 0, data: TextKeys.encode(keys))
    }

    private func fail(_ request: LoginRequest, _ status: LoginStatus) -> LoginAction {
        .fail(LoginResponse(transit: false, continueFlag: false, currentStage: request.currentStage,
                            nextStage: 0, versionMax: 0, versionActive: 0, isid: request.isid, tsih: 0,
                            initiatorTaskTag: request.initiatorTaskTag, statusClass: status.statusClass,
                            statusDetail: status.statusDetail, data: []))
    }
}

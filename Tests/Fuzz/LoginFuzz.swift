import ISCSIFabric

/// `login`: `LoginStateMachine` fed whole login sequences against a directory with an open
/// target, a mutual-CHAP target and an address-restricted one (discovery with or without CHAP).
///
/// Input: [setup] then records of [flags] [control] [length: 2] [text…], one Login Request each:
///   setup bit 0: discovery requires CHAP; bit 1: the initiator connects from the allowed
///   address; bit 2: the open target offers CRC32C digests first.
///   flags: the Login Request's byte 1 (T 0x80, C 0x40, CSG bits 3–2, NSG bits 1–0).
///   control bit 0: VersionMin 1; bit 1: another ISID; bit 2: TSIH 1; bit 3: another CID;
///   bit 4: replace CHAP_R with the right answer for CHAP_N (the challenge is fixed), so
///   sequences get past authentication.
/// Invariants: responses echo ISID/ITT, carry valid text and a consistent status; a failed or
/// completed login accepts nothing more; a login to a CHAP target (or a CHAP discovery)
/// completes only with an authenticated user; negotiated values are within the RFC's ranges.
enum LoginFuzz {
    static let target = FuzzTarget(name: "login", summary: "LoginStateMachine on login request sequences", run: run)

    static let openTarget = "iqn.2026-01.org.example:open"
    static let chapTarget = "iqn.2026-01.org.example:chap"
    static let restrictedTarget = "iqn.2026-01.org.example:restricted"
    static let allowedInitiator = "iqn.2026-01.org.example:allowed"
    static let allowedAddress = "192.0.2.10"
    static let users = ["alice": "alice-secret-12", "bob": "bob-secret-1234"]
    static let chapPolicy = AuthenticationPolicy(incomingUsers: users, outgoingUser: ("target", "target-secret-1"))
    static let challengeIdentifier: UInt8 = 7
    static let challenge: [UInt8] = Array(0x10...0x1F)
    static let maxRecords = 32
    /// Keys allowed twice in one response: none. (An invalid MaxRecvDataSegmentLength used to
    /// be answered "Reject" beside the target's own declaration of that key; it now fails the
    /// login. Corpus/login/crash-reject-then-own-declaration keeps that case.)
    static let knownDuplicateAfterReject: Set<String> = []

    static func directory(_ setup: UInt8) -> TargetDirectory {
        var digestFirst = TargetLoginSettings()
        if setup & 4 != 0 {
            digestFirst.headerDigests = ["CRC32C", "None"]
            digestFirst.dataDigests = ["CRC32C", "None"]
            digestFirst.maxXmitDataSegmentLength = 65536
        }
        return TargetDirectory(
            targets: [
                TargetAccess(name: openTarget, alias: "open disk", settings: digestFirst, portals: ["192.0.2.1:3260,1"]),
                TargetAccess(name: chapTarget, authentication: chapPolicy, portals: ["192.0.2.1:3260,1"]),
                TargetAccess(name: restrictedTarget, portals: ["192.0.2.2:3260,2"],
                             isAllowed: { name, address in name == allowedInitiator && address == allowedAddress }),
            ],
            discoveryAuthentication: setup & 1 != 0 ? chapPolicy : .none)
    }

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let setup = input.byte()
        let dir = directory(setup)
        var machine = LoginStateMachine(
            directory: dir, remoteAddress: setup & 2 != 0 ? allowedAddress : "198.51.100.1", targetPortalGroupTag: 1,
            challengeGenerator: { (challengeIdentifier, challenge) })
        var finished = false
        var records = 0
        while !input.isEmpty, records < maxRecords {
            records += 1
            let flags = input.byte()
            let control = input.byte()
            var data = input.chunk()
            if control & 0x10 != 0 { answerChallenge(&data) }
            let request = LoginRequest(
                transit: flags & 0x80 != 0, continueFlag: flags & 0x40 != 0,
                currentStage: (flags >> 2) & 3, nextStage: flags & 3,
                versionMax: 0, versionMin: control & 1,
                isid: control & 2 != 0 ? 0x8000_0000_0042 : 0x0002_3D00_0001,
                tsih: control & 4 != 0 ? 1 : 0, initiatorTaskTag: UInt32(records),
                cid: control & 8 != 0 ? 2 : 1, cmdSN: 1, expStatSN: UInt32(records), data: data)
            let action = machine.receiveLoginRequest(request)
            fuzzLog("login: request T=\(request.transit) C=\(request.continueFlag) CSG \(request.currentStage) NSG \(request.nextStage): "
                    + String(decoding: data.map { $0 == 0 ? UInt8(ascii: "|") : $0 }, as: UTF8.self))
            fuzzLog("login: → \(summary(action))")
            check(action, for: request, directory: dir, afterEnd: finished)
            switch action {
            case .respond: break
            case .complete, .fail: finished = true
            }
            if finished, machine.currentStage != 3 { fuzzFailure("a finished login reports stage \(machine.currentStage)") }
        }
        _ = machine.description
    }

    static func summary(_ action: LoginAction) -> String {
        switch action {
        case .respond(let r), .complete(let r, _), .fail(let r):
            let kind = if case .respond = action { "respond" } else if case .complete = action { "complete" } else { "fail" }
            return "\(kind) T=\(r.transit) CSG \(r.currentStage) NSG \(r.nextStage) status \(r.status): "
                + String(decoding: r.data.map { $0 == 0 ? UInt8(ascii: "|") : $0 }, as: UTF8.self)
        }
    }

    static func check(_ action: LoginAction, for request: LoginRequest, directory: TargetDirectory, afterEnd: Bool) {
        let response: LoginResponse
        switch action {
        case .respond(let r), .complete(let r, _), .fail(let r): response = r
        }
        guard response.isid == request.isid, response.initiatorTaskTag == request.initiatorTaskTag,
              response.versionMax == 0, response.versionActive == 0, response.tsih == 0,
              response.currentStage == request.currentStage, !response.continueFlag
        else { fuzzFailure("response header does not answer the request: \(response)") }
        if !response.transit, response.nextStage != 0 { fuzzFailure("NSG \(response.nextStage) without T") }
        let keys: [TextKeyValue]
        do {
            keys = try TextKeys.parse(response.data)
        } catch .duplicateKey(let key) where knownDuplicateAfterReject.contains(key)
                    && (try? TextKeys.parse(response.data, repeatable: [key]))?.contains(TextKeyValue(key, "Reject")) == true {
            keys = (try? TextKeys.parse(response.data, repeatable: [key])) ?? []
        } catch {
            fuzzFailure("the target sent malformed text: \(error)")
        }
        if afterEnd {
            guard case .fail = action, response.status == .invalidDuringLogin else {
                fuzzFailure("a request after the end of the login was not refused: \(action)")
            }
            return
        }
        switch action {
        case .fail:
            guard response.statusClass != 0, !response.transit, keys.isEmpty else {
                fuzzFailure("a failure response with status \(response.status) / data")
            }
        case .respond:
            guard response.status == .success else { fuzzFailure("a continuing response with status \(response.status)") }
            if response.transit, response.nextStage != 1 { fuzzFailure("transit to stage \(response.nextStage) without completing") }
        case .complete(_, let p):
            guard response.status == .success, response.transit, response.nextStage == 3 else {
                fuzzFailure("a completing response that does not move to full feature phase")
            }
            checkParameters(p, keys: keys, directory: directory)
        }
    }

    static func checkParameters(_ p: NegotiatedParameters, keys: [TextKeyValue], directory: TargetDirectory) {
        let policy: AuthenticationPolicy
        switch p.sessionType {
        case .discovery:
            policy = directory.discoveryAuthentication
        case .normal:
            guard let t = directory.target(named: p.targetName) else { fuzzFailure("logged in to unknown target \(p.targetName)") }
            if t.name == restrictedTarget, p.initiatorName != allowedInitiator { fuzzFailure("restricted target admitted \(p.initiatorName)") }
            policy = t.authentication
        }
        if policy.requiresCHAP {
            guard let user = p.authenticatedUser, policy.incomingUsers[user] != nil else {
                fuzzFailure("login completed without CHAP (user \(p.authenticatedUser ?? "none"))")
            }
        } else if p.authenticatedUser != nil {
            fuzzFailure("an authenticated user on a target without CHAP")
        }
        let segment: ClosedRange<UInt32> = 512...16_777_215
        guard segment.contains(p.maxRecvDataSegmentLength), segment.contains(p.maxXmitDataSegmentLength),
              segment.contains(p.maxBurstLength), segment.contains(p.firstBurstLength),
              p.maxOutstandingR2T >= 1, p.maxConnections >= 1, p.defaultTime2Wait <= 3600,
              p.defaultTime2Retain <= 3600, p.errorRecoveryLevel <= 2,
              !p.initiatorName.isEmpty, p.initiatorName.utf8.count <= LoginStateMachine.maxNameLength
        else { fuzzFailure("negotiated parameters out of range: \(p)") }
        if p.sessionType == .normal, p.firstBurstLength > p.maxBurstLength {
            fuzzFailure("FirstBurstLength \(p.firstBurstLength) > MaxBurstLength \(p.maxBurstLength)")
        }
        _ = keys
    }

    /// Writes the correct CHAP_R for the CHAP_N named in `data` (when it parses).
    static func answerChallenge(_ data: inout [UInt8]) {
        guard var pairs = try? TextKeys.parse(data),
              let name = pairs.value(for: "CHAP_N"), let secret = users[name],
              let i = pairs.firstIndex(where: { $0.key == "CHAP_R" })
        else { return }
        let answer = CHAP.response(identifier: challengeIdentifier, secret: Array(secret.utf8), challenge: challenge)
        pairs[i].value = CHAP.encodeHex(answer)
        data = TextKeys.encode(pairs)
    }
}

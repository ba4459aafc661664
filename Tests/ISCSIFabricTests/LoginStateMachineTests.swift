import Testing
@testable import ISCSIFabric

@Suite struct LoginStateMachineTests {
    typealias F = LoginFixtures
    typealias V = CHAPVectors

    func expectResponse(_ r: LoginResponse, t: Bool, csg: UInt8, nsg: UInt8, status: LoginStatus = .success,
                        keys: [TextKeyValue], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.transit == t, sourceLocation: sourceLocation)
        #expect(r.continueFlag == false, sourceLocation: sourceLocation)
        #expect(r.currentStage == csg, sourceLocation: sourceLocation)
        #expect(r.nextStage == nsg, sourceLocation: sourceLocation)
        #expect(r.versionMax == 0 && r.versionActive == 0, sourceLocation: sourceLocation)
        #expect(r.isid == F.isid, sourceLocation: sourceLocation)
        #expect(r.tsih == 0, sourceLocation: sourceLocation)
        #expect(r.initiatorTaskTag == F.itt, sourceLocation: sourceLocation)
        #expect(r.status == status, sourceLocation: sourceLocation)
        #expect(F.pairs(r.data) == keys, sourceLocation: sourceLocation)
    }

    func expectFailure(_ action: LoginAction, _ status: LoginStatus, csg: UInt8 = 0,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(action.isFail, sourceLocation: sourceLocation)
        expectResponse(action.response, t: false, csg: csg, nsg: 0, status: status, keys: [],
                       sourceLocation: sourceLocation)
    }

    var leading: [(String, String)] {
        [("InitiatorName", F.initiator), ("InitiatorAlias", "client1"), ("SessionType", "Normal"),
         ("TargetName", F.openTarget)]
    }

    // MARK: - Normal sessions

    @Test func noAuthenticationFullSequence() {
        var m = F.machine()
        let a1 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        #expect(a1.isRespond)
        expectResponse(a1.response, t: true, csg: 0, nsg: 1, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("TargetAlias", "open disk"),
            TextKeyValue("AuthMethod", "None"),
        ])
        #expect(m.currentStage == 1)

        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, F.fullOperationalOffer))
        expectResponse(a2.response, t: true, csg: 1, nsg: 3, keys: F.fullOperationalAnswer)
        var expected = NegotiatedParameters()
        expected.sessionType = .normal
        expected.initiatorName = F.initiator
        expected.initiatorAlias = "client1"
        expected.targetName = F.openTarget
        expected.isid = F.isid
        expected.initialR2T = false
        expected.immediateData = true
        expected.maxRecvDataSegmentLength = 262_144
        expected.maxXmitDataSegmentLength = 262_144
        expected.maxBurstLength = 1_048_576
        expected.firstBurstLength = 262_144
        expected.defaultTime2Wait = 2
        expected.defaultTime2Retain = 0
        expected.maxOutstandingR2T = 1
        expected.authenticatedUser = nil
        #expect(a2.parameters == expected)
        #expect(m.currentStage == 3)

        // Nothing more is accepted once complete.
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3)), .invalidDuringLogin, csg: 1)
    }

    @Test func targetOffersKeysTheInitiatorDidNotSend() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, [
            ("HeaderDigest", "CRC32C,None"), ("MaxRecvDataSegmentLength", "65536"),
        ]))
        // Not ready to transit: the target's offers need answers.
        #expect(a2.isRespond)
        expectResponse(a2.response, t: false, csg: 1, nsg: 0, keys: [
            TextKeyValue("HeaderDigest", "CRC32C"), TextKeyValue("MaxRecvDataSegmentLength", "262144"),
            TextKeyValue("InitialR2T", "No"), TextKeyValue("MaxBurstLength", "1048576"),
            TextKeyValue("FirstBurstLength", "262144"), TextKeyValue("MaxOutstandingR2T", "8"),
        ])
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, [
            ("InitialR2T", "No"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"), ("MaxOutstandingR2T", "4"),
        ]))
        expectResponse(a3.response, t: true, csg: 1, nsg: 3, keys: [])
        let p = a3.parameters
        #expect(p?.headerDigest == true && p?.dataDigest == false)
        #expect(p?.initialR2T == false && p?.immediateData == true)
        #expect(p?.maxBurstLength == 262_144 && p?.firstBurstLength == 65536 && p?.maxOutstandingR2T == 4)
        #expect(p?.maxXmitDataSegmentLength == 65536 && p?.maxRecvDataSegmentLength == 262_144)
    }

    @Test func skippingSecurityStageWhenNotRequired() {
        var m = F.machine()
        let a = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, leading + F.fullOperationalOffer))
        expectResponse(a.response, t: true, csg: 1, nsg: 3, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("TargetAlias", "open disk"),
        ] + F.fullOperationalAnswer)
        #expect(a.parameters?.targetName == F.openTarget)
    }

    @Test func directToFullFeatureIsLoweredToOperationalWhenTargetMustOffer() {
        var m = F.machine()
        let a1 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, leading + [("AuthMethod", "None")]))
        expectResponse(a1.response, t: true, csg: 0, nsg: 1, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("TargetAlias", "open disk"),
            TextKeyValue("AuthMethod", "None"),
        ])
        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3))
        expectResponse(a2.response, t: false, csg: 1, nsg: 0, keys: [
            TextKeyValue("MaxRecvDataSegmentLength", "262144"), TextKeyValue("InitialR2T", "No"),
            TextKeyValue("MaxBurstLength", "1048576"), TextKeyValue("FirstBurstLength", "262144"),
            TextKeyValue("MaxOutstandingR2T", "8"),
        ])
        // An empty request with T=1 does not complete while offers are unanswered.
        _ = a2
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, [
            ("InitialR2T", "No"), ("MaxBurstLength", "1048576"), ("FirstBurstLength", "262144"), ("MaxOutstandingR2T", "8"),
        ]))
        expectResponse(a3.response, t: true, csg: 1, nsg: 3, keys: [])
        #expect(a3.parameters?.maxOutstandingR2T == 8)
    }

    @Test func directToFullFeatureWhenNothingToOffer() {
        var settings = TargetLoginSettings()
        settings.initialR2T = true
        settings.maxBurstLength = 262_144
        settings.firstBurstLength = 65536
        settings.maxOutstandingR2T = 1
        let dir = TargetDirectory(targets: [TargetAccess(name: F.openTarget, settings: settings, portals: [])])
        var m = F.machine(dir)
        let a = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, leading + [("AuthMethod", "None")]))
        expectResponse(a.response, t: true, csg: 0, nsg: 3, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("AuthMethod", "None"),
            TextKeyValue("MaxRecvDataSegmentLength", "262144"),
        ])
        #expect(a.parameters?.maxRecvDataSegmentLength == 262_144)
        #expect(a.parameters?.maxXmitDataSegmentLength == 8192)
    }

    // MARK: - CHAP

    var chapLeading: [(String, String)] {
        [("InitiatorName", F.initiator), ("SessionType", "Normal"), ("TargetName", F.chapTarget)]
    }

    mutating func chapUpToChallenge(_ m: inout LoginStateMachine) {
        let a1 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, chapLeading + [("AuthMethod", "CHAP,None")]))
        expectResponse(a1.response, t: false, csg: 0, nsg: 0, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("AuthMethod", "CHAP"),
        ])
        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("CHAP_A", "5")]))
        expectResponse(a2.response, t: false, csg: 0, nsg: 0, keys: [
            TextKeyValue("CHAP_A", "5"), TextKeyValue("CHAP_I", "7"), TextKeyValue("CHAP_C", V.challengeHex),
        ])
    }

    @Test mutating func chapOneWay() {
        var m = F.machine()
        chapUpToChallenge(&m)
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("CHAP_N", V.user), ("CHAP_R", V.response)]))
        expectResponse(a3.response, t: true, csg: 0, nsg: 1, keys: [])
        let a4 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, F.fullOperationalOffer))
        expectResponse(a4.response, t: true, csg: 1, nsg: 3, keys: F.fullOperationalAnswer)
        #expect(a4.parameters?.authenticatedUser == V.user)
        #expect(a4.parameters?.targetName == F.chapTarget)
    }

    @Test mutating func chapMutual() {
        var m = F.machine()
        chapUpToChallenge(&m)
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("CHAP_N", V.user), ("CHAP_R", V.response), ("CHAP_I", "42"), ("CHAP_C", V.initiatorChallengeHex),
        ]))
        expectResponse(a3.response, t: true, csg: 0, nsg: 1, keys: [
            TextKeyValue("CHAP_N", V.targetUser), TextKeyValue("CHAP_R", V.mutualResponse),
        ])
        let a4 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, F.fullOperationalOffer))
        #expect(a4.parameters?.authenticatedUser == V.user)
    }

    @Test mutating func chapReflectedChallengeFails() {
        var m = F.machine()
        chapUpToChallenge(&m)
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("CHAP_N", V.user), ("CHAP_R", V.response), ("CHAP_I", "7"), ("CHAP_C", V.challengeHex),
        ]))
        expectFailure(a3, .authenticationFailure)
    }

    @Test mutating func unknownUserAndWrongSecretGiveIdenticalResponses() {
        var unknown = F.machine()
        chapUpToChallenge(&unknown)
        let u = unknown.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("CHAP_N", "mallory"), ("CHAP_R", V.response)]))
        var wrong = F.machine()
        chapUpToChallenge(&wrong)
        let w = wrong.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("CHAP_N", V.user), ("CHAP_R", "0x0123456789abcdef0123456789abcdef"),
        ]))
        #expect(u == w)
        expectFailure(u, .authenticationFailure)
        #expect(u.response.statusClass == 0x02 && u.response.statusDetail == 0x01)
        // The machine stays failed.
        expectFailure(unknown.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1)), .invalidDuringLogin)
    }

    @Test func chapRequiredButOnlyNoneOffered() {
        var m = F.machine()
        let a = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, chapLeading + [("AuthMethod", "None")]))
        expectFailure(a, .authenticationFailure)
    }

    @Test func chapRequiredButSecurityStageSkipped() {
        var m = F.machine()
        let a = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, chapLeading))
        expectFailure(a, .authenticationFailure, csg: 1)
    }

    @Test func chapRequiredButNoAuthMethodBeforeTransit() {
        var m = F.machine()
        let a = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, chapLeading))
        expectFailure(a, .authenticationFailure)
    }

    @Test func transitToFullFeatureRefusedWhileCHAPIncomplete() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, chapLeading + [("AuthMethod", "CHAP")]))
        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, [("CHAP_A", "5")]))
        #expect(a2.isRespond)
        #expect(a2.response.transit == false)
        #expect(m.currentStage == 0)
        // Jumping to the operational stage before authenticating is a protocol error.
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3)), .initiatorError, csg: 1)
    }

    @Test func chapKeysWithoutCHAPAreAnError() {
        var m = F.machine()
        let a = m.receiveLoginRequest(F.request(t: false, csg: 0, nsg: 0, leading + [("AuthMethod", "None"), ("CHAP_A", "5")]))
        expectFailure(a, .initiatorError)
    }

    // MARK: - Discovery

    @Test func discoverySession() {
        var m = F.machine()
        let a1 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", F.initiator), ("SessionType", "Discovery"), ("AuthMethod", "None"),
        ]))
        expectResponse(a1.response, t: true, csg: 0, nsg: 1, keys: [TextKeyValue("AuthMethod", "None")])
        let a2 = m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3, [
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "0"),
            ("IFMarker", "No"), ("OFMarker", "No"), ("ErrorRecoveryLevel", "0"), ("MaxConnections", "1"),
            ("MaxRecvDataSegmentLength", "32768"),
        ]))
        expectResponse(a2.response, t: true, csg: 1, nsg: 3, keys: [
            TextKeyValue("HeaderDigest", "None"), TextKeyValue("DataDigest", "None"),
            TextKeyValue("DefaultTime2Wait", "2"), TextKeyValue("DefaultTime2Retain", "0"),
            TextKeyValue("IFMarker", "No"), TextKeyValue("OFMarker", "No"), TextKeyValue("ErrorRecoveryLevel", "0"),
            TextKeyValue("MaxConnections", "Irrelevant"), TextKeyValue("MaxRecvDataSegmentLength", "262144"),
        ])
        let p = a2.parameters
        #expect(p?.sessionType == .discovery)
        #expect(p?.targetName == "")
        #expect(p?.initiatorName == F.initiator)
        #expect(p?.maxXmitDataSegmentLength == 32768)
    }

    @Test func discoveryWithCHAP() {
        let dir = TargetDirectory(targets: F.directory.targets, discoveryAuthentication: CHAPVectors.policy)
        var m = F.machine(dir)
        let a1 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", F.initiator), ("SessionType", "Discovery"), ("AuthMethod", "CHAP"),
        ]))
        expectResponse(a1.response, t: false, csg: 0, nsg: 0, keys: [TextKeyValue("AuthMethod", "CHAP")])
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("CHAP_A", "5")]))
        let a3 = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 3, [("CHAP_N", V.user), ("CHAP_R", V.response)]))
        expectResponse(a3.response, t: true, csg: 0, nsg: 3, keys: [TextKeyValue("MaxRecvDataSegmentLength", "262144")])
        #expect(a3.parameters?.authenticatedUser == V.user)
        #expect(a3.parameters?.sessionType == .discovery)
    }

    // MARK: - Errors

    @Test func unknownTarget() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", F.initiator), ("TargetName", "iqn.2026-01.org.nowhere:none"),
        ])), .notFound)
    }

    @Test func initiatorNotAllowed() {
        var m = F.machine(address: "198.51.100.7")
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", F.initiator), ("TargetName", F.restrictedTarget),
        ])), .authorizationFailure)
        var wrongAddress = F.machine(address: "203.0.113.9")
        expectFailure(wrongAddress.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", "iqn.allowed"), ("TargetName", F.restrictedTarget),
        ])), .authorizationFailure)
        var allowed = F.machine(address: "198.51.100.7")
        #expect(allowed.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", "iqn.allowed"), ("TargetName", F.restrictedTarget),
        ])).isRespond)
    }

    @Test func missingInitiatorName() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("TargetName", F.openTarget)])),
                      .missingParameter)
    }

    @Test func missingTargetNameInNormalSession() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [("InitiatorName", F.initiator)])),
                      .missingParameter)
    }

    @Test func unknownSessionType() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, [
            ("InitiatorName", F.initiator), ("SessionType", "Bogus"),
        ])), .sessionTypeNotSupported)
    }

    @Test func unsupportedVersion() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading, versionMin: 1)),
                      .unsupportedVersion)
    }

    @Test func nonZeroTSIH() {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading, tsih: 5)),
                      .sessionDoesNotExist)
    }

    @Test(arguments: [
        (true, false, UInt8(0), UInt8(2)),   // NSG 2 is reserved
        (true, false, UInt8(0), UInt8(0)),   // no forward move
        (true, true, UInt8(0), UInt8(1)),    // T and C together
        (false, false, UInt8(3), UInt8(0)),  // CSG 3 is not a login stage
        (false, false, UInt8(2), UInt8(0)),  // CSG 2 is reserved
    ])
    func badStageFieldsOnFirstRequest(t: Bool, c: Bool, csg: UInt8, nsg: UInt8) {
        var m = F.machine()
        expectFailure(m.receiveLoginRequest(F.request(t: t, c: c, csg: csg, nsg: nsg, leading)), .initiatorError, csg: csg)
    }

    @Test func backwardsStageTransition() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        expectFailure(m.receiveLoginRequest(F.request(t: false, csg: 0, nsg: 0)), .initiatorError)
    }

    @Test func operationalStageCannotTransitToItself() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 1)), .initiatorError, csg: 1)
    }

    @Test func securityKeysInOperationalStage() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        expectFailure(m.receiveLoginRequest(F.request(t: false, csg: 1, nsg: 0, [("AuthMethod", "None")])),
                      .initiatorError, csg: 1)
    }

    @Test func renegotiatedKeyFailsTheLogin() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, leading + [("AuthMethod", "None")]))
        _ = m.receiveLoginRequest(F.request(t: false, csg: 1, nsg: 0, [("MaxBurstLength", "65536")]))
        expectFailure(m.receiveLoginRequest(F.request(t: false, csg: 1, nsg: 0, [("MaxBurstLength", "4096")])),
                      .initiatorError, csg: 1)
    }

    @Test func changedISIDFailsTheLogin() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: false, csg: 0, nsg: 0, leading + [("AuthMethod", "None")]))
        let a = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, isid: F.isid + 1))
        #expect(a.isFail)
        #expect(a.response.status == .initiatorError)
    }

    @Test func malformedTextFailsTheLogin() {
        var m = F.machine()
        var r = F.request(t: true, csg: 0, nsg: 1)
        r.data = Array("InitiatorName\0".utf8)
        expectFailure(m.receiveLoginRequest(r), .initiatorError)
    }

    // MARK: - Text spanning PDUs (C bit)

    @Test func multiPDUContinue() {
        var m = F.machine()
        let whole = TextKeys.encode((leading + [("AuthMethod", "None")]).map { TextKeyValue($0.0, $0.1) })
        let cut1 = 20, cut2 = 70  // inside keys/values
        var r1 = F.request(t: false, c: true, csg: 0, nsg: 0)
        r1.data = Array(whole[..<cut1])
        var r2 = F.request(t: false, c: true, csg: 0, nsg: 0)
        r2.data = Array(whole[cut1..<cut2])
        var r3 = F.request(t: true, c: false, csg: 0, nsg: 1)
        r3.data = Array(whole[cut2...])
        let a1 = m.receiveLoginRequest(r1)
        #expect(a1.isRespond)
        expectResponse(a1.response, t: false, csg: 0, nsg: 0, keys: [])
        #expect(a1.response.data.isEmpty)
        let a2 = m.receiveLoginRequest(r2)
        expectResponse(a2.response, t: false, csg: 0, nsg: 0, keys: [])
        let a3 = m.receiveLoginRequest(r3)
        expectResponse(a3.response, t: true, csg: 0, nsg: 1, keys: [
            TextKeyValue("TargetPortalGroupTag", "1"), TextKeyValue("TargetAlias", "open disk"),
            TextKeyValue("AuthMethod", "None"),
        ])
    }

    @Test func continuedTextMustStayInOneStage() {
        var m = F.machine()
        var r1 = F.request(t: false, c: true, csg: 0, nsg: 0)
        r1.data = Array("InitiatorName=iqn.x".utf8)
        _ = m.receiveLoginRequest(r1)
        expectFailure(m.receiveLoginRequest(F.request(t: true, csg: 1, nsg: 3)), .initiatorError, csg: 1)
    }

    @Test func continuedTextIsBounded() {
        var m = F.machine()
        var r = F.request(t: false, c: true, csg: 0, nsg: 0)
        r.data = [UInt8](repeating: UInt8(ascii: "a"), count: 40_000)
        #expect(m.receiveLoginRequest(r).isRespond)
        expectFailure(m.receiveLoginRequest(r), .initiatorError)
    }

    @Test func descriptionHidesSecrets() {
        var m = F.machine()
        _ = m.receiveLoginRequest(F.request(t: true, csg: 0, nsg: 1, chapLeading + [("AuthMethod", "CHAP")]))
        #expect(!String(describing: m).contains(V.secret))
        #expect(!String(reflecting: m).contains(V.secret))
        var dumped = ""
        dump(m, to: &dumped)
        #expect(!dumped.contains(V.secret))
    }
}

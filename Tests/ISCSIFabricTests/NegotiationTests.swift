import Testing
@testable import ISCSIFabric

@Suite struct NegotiationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var key: String
        var offer: String
        var answer: String?
        var testDescription: String { "\(key)=\(offer) → \(answer ?? "(none)")" }
        init(_ key: String, _ offer: String, _ answer: String?) {
            self.key = key
            self.offer = offer
            self.answer = answer
        }
    }

    /// Target settings are the defaults: MaxBurst 1 MiB, FirstBurst 256 KiB, InitialR2T=No,
    /// ImmediateData=Yes, MaxOutstandingR2T 8, MaxConnections 1, Time2Wait 2, Time2Retain 20.
    static let normalCases: [Case] = [
        Case("HeaderDigest", "CRC32C,None", "CRC32C"),
        Case("HeaderDigest", "None,CRC32C", "None"),
        Case("DataDigest", "CRC32C", "CRC32C"),
        Case("HeaderDigest", "MD5", "Reject"),
        Case("MaxConnections", "4", "1"),
        Case("MaxConnections", "0", "Reject"),
        Case("MaxConnections", "65536", "Reject"),
        Case("InitialR2T", "Yes", "Yes"),          // OR
        Case("InitialR2T", "No", "No"),
        Case("InitialR2T", "maybe", "Reject"),
        Case("ImmediateData", "No", "No"),         // AND
        Case("ImmediateData", "Yes", "Yes"),
        Case("MaxRecvDataSegmentLength", "65536", nil),  // declarative
        Case("MaxBurstLength", "16776192", "1048576"),   // min
        Case("MaxBurstLength", "4096", "4096"),
        Case("MaxBurstLength", "0x1000", "4096"),
        Case("MaxBurstLength", "511", "Reject"),
        Case("MaxBurstLength", "16777216", "Reject"),
        Case("MaxBurstLength", "abc", "Reject"),
        Case("FirstBurstLength", "16776192", "262144"),  // min
        Case("FirstBurstLength", "1024", "1024"),
        Case("DefaultTime2Wait", "0", "2"),              // max
        Case("DefaultTime2Wait", "10", "10"),
        Case("DefaultTime2Wait", "3601", "Reject"),
        Case("DefaultTime2Retain", "0", "0"),            // min
        Case("DefaultTime2Retain", "60", "20"),
        Case("MaxOutstandingR2T", "16", "8"),            // min
        Case("MaxOutstandingR2T", "1", "1"),
        Case("MaxOutstandingR2T", "0", "Reject"),
        Case("DataPDUInOrder", "No", "Yes"),             // OR
        Case("DataSequenceInOrder", "No", "Yes"),
        Case("ErrorRecoveryLevel", "2", "0"),            // min, we support 0
        Case("ErrorRecoveryLevel", "3", "Reject"),
        Case("OFMarker", "Yes", "No"),
        Case("IFMarker", "No", "No"),
        Case("OFMarkInt", "2048~8192", "Irrelevant"),
        Case("TaskReporting", "ResponseFence,RFC3720", "RFC3720"),
        Case("X-com.example.Feature", "1", "NotUnderstood"),
        Case("iSCSIFutureKey", "1", "NotUnderstood"),
        Case("TargetAddress", "1.2.3.4", nil),           // target-only declaration: ignored
    ]

    @Test(arguments: normalCases)
    func normalSessionAnswer(_ c: Case) throws {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        let answers = try n.respond(to: [TextKeyValue(c.key, c.offer)])
        #expect(answers == (c.answer.map { [TextKeyValue(c.key, $0)] } ?? []))
    }

    /// A declaration out of range cannot be answered "Reject" (the target's own declaration
    /// carries the same key in the same response; the login fuzzer found the duplicate):
    /// the login fails instead.
    @Test(arguments: ["511", "16777216", "abc", ""])
    func invalidMaxRecvDataSegmentLengthFailsTheLogin(_ value: String) {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        #expect(throws: NegotiationError.invalidDeclaration(key: "MaxRecvDataSegmentLength", value: value)) {
            try n.respond(to: [TextKeyValue("MaxRecvDataSegmentLength", value)])
        }
    }

    @Test(arguments: ["MaxConnections", "InitialR2T", "ImmediateData", "MaxBurstLength", "FirstBurstLength",
                      "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder"])
    func irrelevantInDiscovery(_ key: String) throws {
        var n = OperationalNegotiation(sessionType: .discovery, settings: TargetLoginSettings())
        let value = ["InitialR2T", "ImmediateData", "DataPDUInOrder", "DataSequenceInOrder"].contains(key) ? "Yes" : "1024"
        #expect(try n.respond(to: [TextKeyValue(key, value)]) == [TextKeyValue(key, "Irrelevant")])
    }

    @Test func parametersFollowAnswers() throws {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        #expect(n.parameters.initialR2T == true)  // RFC defaults before negotiation
        #expect(n.parameters.maxBurstLength == 262_144)
        _ = try n.respond(to: [
            TextKeyValue("HeaderDigest", "CRC32C"), TextKeyValue("DataDigest", "CRC32C,None"),
            TextKeyValue("InitialR2T", "No"), TextKeyValue("ImmediateData", "Yes"),
            TextKeyValue("MaxRecvDataSegmentLength", "65536"), TextKeyValue("MaxBurstLength", "524288"),
            TextKeyValue("DefaultTime2Wait", "5"), TextKeyValue("DefaultTime2Retain", "10"),
            TextKeyValue("MaxOutstandingR2T", "4"), TextKeyValue("ErrorRecoveryLevel", "1"),
        ])
        let p = n.finalParameters()
        #expect(p.headerDigest && p.dataDigest)
        #expect(p.initialR2T == false && p.immediateData == true)
        #expect(p.maxXmitDataSegmentLength == 65536)
        #expect(p.maxRecvDataSegmentLength == 8192)  // not declared yet
        #expect(p.maxBurstLength == 524_288)
        #expect(p.defaultTime2Wait == 5 && p.defaultTime2Retain == 10)
        #expect(p.maxOutstandingR2T == 4 && p.errorRecoveryLevel == 0)
    }

    @Test func firstBurstIsBoundedByMaxBurstAndAnsweredInOrder() throws {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        let answers = try n.respond(to: [TextKeyValue("FirstBurstLength", "65536"), TextKeyValue("MaxBurstLength", "8192")])
        #expect(answers == [TextKeyValue("FirstBurstLength", "8192"), TextKeyValue("MaxBurstLength", "8192")])
        #expect(n.finalParameters().firstBurstLength == 8192)
    }

    @Test func firstBurstIrrelevantWithInitialR2TAndNoImmediateData() throws {
        var settings = TargetLoginSettings()
        settings.initialR2T = true
        settings.immediateData = false
        var n = OperationalNegotiation(sessionType: .normal, settings: settings)
        let answers = try n.respond(to: [TextKeyValue("FirstBurstLength", "65536"), TextKeyValue("InitialR2T", "No"),
                                         TextKeyValue("ImmediateData", "Yes")])
        #expect(answers == [TextKeyValue("FirstBurstLength", "Irrelevant"), TextKeyValue("InitialR2T", "Yes"),
                            TextKeyValue("ImmediateData", "No")])
    }

    @Test func renegotiationIsAnError() throws {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        _ = try n.respond(to: [TextKeyValue("MaxBurstLength", "4096")])
        #expect(throws: NegotiationError.keyRenegotiated("MaxBurstLength")) {
            try n.respond(to: [TextKeyValue("MaxBurstLength", "8192")])
        }
    }

    @Test func targetOffersKeysWhoseDefaultItDoesNotWant() throws {
        var n = OperationalNegotiation(sessionType: .normal, settings: TargetLoginSettings())
        _ = try n.respond(to: [TextKeyValue("MaxBurstLength", "65536")])
        #expect(n.needsToOffer)
        let offers = n.makeTargetOffers()
        // FirstBurstLength is bounded by the negotiated MaxBurstLength (65536 = its default: no offer).
        #expect(offers == [
            TextKeyValue("MaxRecvDataSegmentLength", "262144"), TextKeyValue("InitialR2T", "No"),
            TextKeyValue("MaxOutstandingR2T", "8"),
        ])
        #expect(n.hasOutstandingOffers)
        #expect(n.makeTargetOffers() == [])  // only once
        #expect(n.parameters.maxRecvDataSegmentLength == 262_144)
        // Answers are consumed silently and complete the negotiation.
        let answers = try n.respond(to: [TextKeyValue("InitialR2T", "No"), TextKeyValue("MaxOutstandingR2T", "Reject")])
        #expect(answers == [])
        #expect(!n.hasOutstandingOffers)
        let p = n.finalParameters()
        #expect(p.initialR2T == false && p.firstBurstLength == 65536 && p.maxOutstandingR2T == 1)
        #expect(p.maxBurstLength == 65536)
    }

    @Test func targetOffersRequiredDigestAndChecksAnswer() throws {
        var settings = TargetLoginSettings()
        settings.headerDigests = ["CRC32C"]
        var n = OperationalNegotiation(sessionType: .discovery, settings: settings)
        #expect(n.makeTargetOffers() == [TextKeyValue("MaxRecvDataSegmentLength", "262144"),
                                         TextKeyValue("HeaderDigest", "CRC32C")])
        #expect(throws: NegotiationError.invalidAnswer(key: "HeaderDigest", value: "None")) {
            try n.respond(to: [TextKeyValue("HeaderDigest", "None")])
        }
        var m = OperationalNegotiation(sessionType: .discovery, settings: settings)
        _ = m.makeTargetOffers()
        #expect(try m.respond(to: [TextKeyValue("HeaderDigest", "CRC32C")]) == [])
        #expect(m.finalParameters().headerDigest)
    }

    @Test func requiredDigestOfferedByInitiatorWithoutIt() throws {
        var settings = TargetLoginSettings()
        settings.dataDigests = ["CRC32C"]
        var n = OperationalNegotiation(sessionType: .normal, settings: settings)
        #expect(try n.respond(to: [TextKeyValue("DataDigest", "None")]) == [TextKeyValue("DataDigest", "Reject")])
        #expect(n.finalParameters().dataDigest == false)
    }

    @Test func discoveryOffersOnlyDeclaration() {
        var n = OperationalNegotiation(sessionType: .discovery, settings: TargetLoginSettings())
        #expect(!n.needsToOffer)
        #expect(n.makeTargetOffers() == [TextKeyValue("MaxRecvDataSegmentLength", "262144")])
        #expect(!n.hasOutstandingOffers)
    }

    @Test func nothingToOfferWhenSettingsEqualDefaults() {
        var s = TargetLoginSettings()
        s.initialR2T = true
        s.maxBurstLength = 262_144
        s.firstBurstLength = 65536
        s.maxOutstandingR2T = 1
        let n = OperationalNegotiation(sessionType: .normal, settings: s)
        #expect(!n.needsToOffer)
        #expect(n.pendingTargetOffers == [TextKeyValue("MaxRecvDataSegmentLength", "262144")])
    }
}

import Testing
@testable import ISCSIFabric

enum LoginFixtures {
    static let initiator = "iqn.1994-05.com.redhat:client1"
    static let openTarget = "iqn.2026-01.org.swifttarget:open"
    static let chapTarget = "iqn.2026-01.org.swifttarget:chap"
    static let restrictedTarget = "iqn.2026-01.org.swifttarget:restricted"
    static let isid: UInt64 = 0x0002_3D00_0001
    static let itt: UInt32 = 0x1234_5678

    static var directory: TargetDirectory {
        TargetDirectory(targets: [
            TargetAccess(name: openTarget, alias: "open disk", portals: ["192.0.2.1:3260,1", "[2001:db8::1]:3260,1"]),
            TargetAccess(name: chapTarget, authentication: CHAPVectors.policy, portals: ["192.0.2.1:3260,1"]),
            TargetAccess(name: restrictedTarget, portals: ["192.0.2.2:3260,2"],
                         isAllowed: { name, address in name == "iqn.allowed" && address == "198.51.100.7" }),
        ])
    }

    static func machine(_ directory: TargetDirectory = directory, address: String = "198.51.100.7") -> LoginStateMachine {
        LoginStateMachine(directory: directory, remoteAddress: address, targetPortalGroupTag: 1,
                          challengeGenerator: CHAPVectors.fixedChallenge)
    }

    static func request(t: Bool, c: Bool = false, csg: UInt8, nsg: UInt8, _ keys: [(String, String)] = [],
                        versionMin: UInt8 = 0, isid: UInt64 = isid, tsih: UInt16 = 0, cid: UInt16 = 1) -> LoginRequest {
        LoginRequest(transit: t, continueFlag: c, currentStage: csg, nextStage: nsg, versionMax: 0,
                     versionMin: versionMin, isid: isid, tsih: tsih, initiatorTaskTag: itt, cid: cid, cmdSN: 1,
                     expStatSN: 0, data: TextKeys.encode(keys.map { TextKeyValue($0.0, $0.1) }))
    }

    static func pairs(_ data: [UInt8]) -> [TextKeyValue] {
        (try? TextKeys.parse(data)) ?? [TextKeyValue("<unparseable>", "")]
    }

    /// The operational keys open-iscsi sends for a normal session.
    static let fullOperationalOffer: [(String, String)] = [
        ("HeaderDigest", "None"), ("DataDigest", "None"), ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "0"),
        ("IFMarker", "No"), ("OFMarker", "No"), ("ErrorRecoveryLevel", "0"), ("InitialR2T", "No"),
        ("ImmediateData", "Yes"), ("MaxBurstLength", "16776192"), ("FirstBurstLength", "262144"),
        ("MaxOutstandingR2T", "1"), ("MaxConnections", "1"), ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"), ("MaxRecvDataSegmentLength", "262144"),
    ]

    static let fullOperationalAnswer: [TextKeyValue] = [
        TextKeyValue("HeaderDigest", "None"), TextKeyValue("DataDigest", "None"),
        TextKeyValue("DefaultTime2Wait", "2"), TextKeyValue("DefaultTime2Retain", "0"),
        TextKeyValue("IFMarker", "No"), TextKeyValue("OFMarker", "No"), TextKeyValue("ErrorRecoveryLevel", "0"),
        TextKeyValue("InitialR2T", "No"), TextKeyValue("ImmediateData", "Yes"),
        TextKeyValue("MaxBurstLength", "1048576"), TextKeyValue("FirstBurstLength", "262144"),
        TextKeyValue("MaxOutstandingR2T", "1"), TextKeyValue("MaxConnections", "1"),
        TextKeyValue("DataPDUInOrder", "Yes"), TextKeyValue("DataSequenceInOrder", "Yes"),
        // The target's own declaration follows the answers.
        TextKeyValue("MaxRecvDataSegmentLength", "262144"),
    ]
}

extension LoginAction {
    var response: LoginResponse {
        switch self {
        case .respond(let r), .complete(let r, _), .fail(let r): return r
        }
    }
    var parameters: NegotiatedParameters? {
        if case .complete(_, let p) = self { return p }
        return nil
    }
    var isRespond: Bool {
        if case .respond = self { return true }
        return false
    }
    var isFail: Bool {
        if case .fail = self { return true }
        return false
    }
}

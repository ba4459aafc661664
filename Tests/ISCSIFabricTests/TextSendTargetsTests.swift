import Testing
@testable import ISCSIFabric

@Suite struct TextSendTargetsTests {
    typealias F = LoginFixtures

    func answer(_ request: String, initiator: String = F.initiator, address: String = "198.51.100.7",
                sessionTarget: String? = nil) -> [TextKeyValue] {
        let data = sendTargetsResponse(request: Array(request.utf8), directory: F.directory, initiatorName: initiator,
                                       remoteAddress: address, sessionTarget: sessionTarget)
        return (try? TextKeys.parse(data, repeatable: ["TargetName", "TargetAddress"])) ?? []
    }

    @Test func allListsVisibleTargetsWithPortals() {
        #expect(answer("SendTargets=All\0") == [
            TextKeyValue("TargetName", F.openTarget),
            TextKeyValue("TargetAddress", "192.0.2.1:3260,1"),
            TextKeyValue("TargetAddress", "[2001:db8::1]:3260,1"),
            TextKeyValue("TargetName", F.chapTarget),
            TextKeyValue("TargetAddress", "192.0.2.1:3260,1"),
        ])
        // The restricted target appears for the allowed initiator at the allowed address.
        #expect(answer("SendTargets=All\0", initiator: "iqn.allowed").suffix(2) == [
            TextKeyValue("TargetName", F.restrictedTarget), TextKeyValue("TargetAddress", "192.0.2.2:3260,2"),
        ])
    }

    @Test func exactBytes() {
        let data = sendTargetsResponse(request: Array("SendTargets=\(F.chapTarget)\0".utf8), directory: F.directory,
                                       initiatorName: F.initiator, remoteAddress: "198.51.100.7", sessionTarget: nil)
        #expect(data == Array("TargetName=\(F.chapTarget)\0TargetAddress=192.0.2.1:3260,1\0".utf8))
    }

    @Test func namedTargetOnlyWhenAllowed() {
        #expect(answer("SendTargets=\(F.restrictedTarget)\0") == [])
        #expect(answer("SendTargets=iqn.2026-01.org.nowhere:none\0") == [])
        #expect(answer("SendTargets=\(F.restrictedTarget)\0", initiator: "iqn.allowed").count == 2)
    }

    @Test func emptyValueInNormalSessionIsTheSessionTarget() {
        #expect(answer("SendTargets=\0", sessionTarget: F.chapTarget) == [
            TextKeyValue("TargetName", F.chapTarget), TextKeyValue("TargetAddress", "192.0.2.1:3260,1"),
        ])
    }

    @Test func allInNormalSessionAndEmptyInDiscoveryAreRejected() {
        #expect(answer("SendTargets=All\0", sessionTarget: F.openTarget) == [TextKeyValue("SendTargets", "Reject")])
        #expect(answer("SendTargets=\0") == [TextKeyValue("SendTargets", "Reject")])
    }

    @Test func otherKeysNotUnderstood() {
        #expect(answer("X-com.example.Foo=1\0SendTargets=\(F.chapTarget)\0") == [
            TextKeyValue("X-com.example.Foo", "NotUnderstood"),
            TextKeyValue("TargetName", F.chapTarget), TextKeyValue("TargetAddress", "192.0.2.1:3260,1"),
        ])
    }

    @Test func malformedRequestGivesEmptyAnswer() {
        #expect(sendTargetsResponse(request: Array("SendTargets".utf8), directory: F.directory,
                                    initiatorName: F.initiator, remoteAddress: "x", sessionTarget: nil) == [])
    }
}

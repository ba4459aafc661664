import Testing
@testable import ISCSIFabric

// Expected MD5 values were computed independently with Python's hashlib:
//   md5(bytes([7]) + b"secretsecret12" + bytes(range(16)))          = d2ad9b55…779b04
//   md5(bytes([42]) + b"targetsecret12" + bytes(range(0xf0, 0x100))) = a6ac4b5c…af3192
//   md5(bytes([42]) + b"targetsecret12" + bytes(range(0xf0, 0xf5)))  = a4d66573…e32da4
enum CHAPVectors {
    static let identifier: UInt8 = 7
    static let challenge: [UInt8] = Array(0..<16)
    static let challengeHex = "0x000102030405060708090a0b0c0d0e0f"
    static let user = "alice"
    static let secret = "secretsecret12"
    static let response = "0xd2ad9b553183668fa064205c85779b04"
    static let targetUser = "target"
    static let targetSecret = "targetsecret12"
    static let initiatorIdentifier: UInt8 = 42
    static let initiatorChallengeHex = "0xf0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
    static let initiatorChallengeBase64 = "0b8PHy8/T19vf4+fr7/P3+/w=="
    static let mutualResponse = "0xa6ac4b5c63b05345a280a998dbaf3192"

    static let fixedChallenge: CHAPChallengeGenerator = { (identifier, challenge) }
    static let policy = AuthenticationPolicy(incomingUsers: [user: secret], outgoingUser: (targetUser, targetSecret))
}

@Suite struct CHAPTests {
    typealias V = CHAPVectors

    @Test func md5ResponseMatchesIndependentVector() {
        let r = CHAP.response(identifier: V.identifier, secret: Array(V.secret.utf8), challenge: V.challenge)
        #expect(CHAP.encodeHex(r) == V.response)
        let short = CHAP.response(identifier: 42, secret: Array(V.targetSecret.utf8), challenge: Array(0xF0...0xF4))
        #expect(CHAP.encodeHex(short) == "0xa4d665733515e20a813146447be32da4")
    }

    @Test func binaryDecoding() {
        #expect(CHAP.decodeBinary("0x0aFF") == [0x0A, 0xFF])
        #expect(CHAP.decodeBinary("0XaFf") == [0x0A, 0xFF])     // odd digit count
        #expect(CHAP.decodeBinary("0b8PHy8/Q=") == [0xF0, 0xF1, 0xF2, 0xF3, 0xF4])
        #expect(CHAP.decodeBinary(V.initiatorChallengeBase64) == Array(0xF0...0xFF))
        #expect(CHAP.decodeBinary("0BAAE=") == [0x00, 0x01])
        #expect(CHAP.decodeBinary("0x") == nil)
        #expect(CHAP.decodeBinary("0xzz") == nil)
        #expect(CHAP.decodeBinary("1234") == nil)
        #expect(CHAP.decodeBinary("0b8PH") == nil)
        #expect(CHAP.decodeBinary("0b=AAA") == nil)
        #expect(CHAP.decodeBinary("0x" + String(repeating: "00", count: 1025)) == nil)
        #expect(CHAP.decodeBinary("0x" + String(repeating: "00", count: 1024))?.count == 1024)
    }

    @Test func constantTimeEqual() {
        #expect(CHAP.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!CHAP.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!CHAP.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    func started() -> CHAPAuthenticator {
        var a = CHAPAuthenticator(policy: V.policy, challengeGenerator: V.fixedChallenge)
        let out = a.receive([TextKeyValue("CHAP_A", "7,5")])
        #expect(out == .send([TextKeyValue("CHAP_A", "5"), TextKeyValue("CHAP_I", "7"),
                              TextKeyValue("CHAP_C", V.challengeHex)]))
        return a
    }

    @Test func oneWay() {
        var a = started()
        #expect(a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response)])
            == .authenticated(user: V.user, reply: []))
        #expect(a.isComplete)
    }

    @Test func responseInBase64IsAccepted() {
        var a = started()
        // base64 of the 16 response bytes
        let b64 = "0b0q2bVTGDZo+gZCBchXebBA=="
        let bytes = CHAP.decodeBinary(b64)
        #expect(bytes.map(CHAP.encodeHex) == V.response)
        #expect(a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", b64)])
            == .authenticated(user: V.user, reply: []))
    }

    @Test(arguments: [V.initiatorChallengeHex, V.initiatorChallengeBase64])
    func mutual(challenge: String) {
        var a = started()
        let out = a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response),
                             TextKeyValue("CHAP_I", "42"), TextKeyValue("CHAP_C", challenge)])
        #expect(out == .authenticated(user: V.user, reply: [TextKeyValue("CHAP_N", V.targetUser),
                                                            TextKeyValue("CHAP_R", V.mutualResponse)]))
    }

    @Test func reflectedChallengeIsRejected() {
        var a = started()
        #expect(a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response),
                           TextKeyValue("CHAP_I", "7"), TextKeyValue("CHAP_C", V.challengeHex)]) == .failed)
    }

    @Test func mutualWithoutOutgoingUserFails() {
        var a = CHAPAuthenticator(policy: AuthenticationPolicy(incomingUsers: [V.user: V.secret]),
                                  challengeGenerator: V.fixedChallenge)
        _ = a.receive([TextKeyValue("CHAP_A", "5")])
        #expect(a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response),
                           TextKeyValue("CHAP_I", "42"), TextKeyValue("CHAP_C", V.initiatorChallengeHex)]) == .failed)
    }

    @Test func mutualNeedsBothIdentifierAndChallenge() {
        var a = started()
        #expect(a.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response),
                           TextKeyValue("CHAP_I", "42")]) == .failed)
    }

    @Test func failures() {
        var wrongSecret = started()
        #expect(wrongSecret.receive([TextKeyValue("CHAP_N", V.user),
                                     TextKeyValue("CHAP_R", "0x00000000000000000000000000000000")]) == .failed)
        var unknownUser = started()
        #expect(unknownUser.receive([TextKeyValue("CHAP_N", "mallory"), TextKeyValue("CHAP_R", V.response)]) == .failed)
        var badEncoding = started()
        #expect(badEncoding.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", "d2ad9b55")]) == .failed)
        var noMD5 = CHAPAuthenticator(policy: V.policy, challengeGenerator: V.fixedChallenge)
        #expect(noMD5.receive([TextKeyValue("CHAP_A", "6,7")]) == .failed)
        var outOfOrder = CHAPAuthenticator(policy: V.policy, challengeGenerator: V.fixedChallenge)
        #expect(outOfOrder.receive([TextKeyValue("CHAP_N", V.user), TextKeyValue("CHAP_R", V.response)]) == .failed)
        var again = started()
        #expect(again.receive([TextKeyValue("CHAP_A", "5")]) == .failed)
    }

    @Test func descriptionsDoNotRevealSecrets() {
        let a = started()
        #expect(!String(describing: a).contains(V.secret))
        #expect(!String(reflecting: a).contains(V.secret))
        #expect(!String(describing: Mirror(reflecting: a).children.map { $0.value }).contains(V.secret))
    }
}

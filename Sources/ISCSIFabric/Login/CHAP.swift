// CHAP with MD5 (RFC 1994) as used by iSCSI (RFC 7143 §12.1.3), the target's side.
//
//   I -> AuthMethod=CHAP,...            T -> AuthMethod=CHAP
//   I -> CHAP_A=<A1,A2,...>             T -> CHAP_A=5 CHAP_I=<I> CHAP_C=<C>
//   I -> CHAP_N=<N> CHAP_R=<R>          (one-way)            T -> (nothing more for CHAP)
//   I -> CHAP_N CHAP_R CHAP_I=<I'> CHAP_C=<C'>  (mutual)     T -> CHAP_N=<N'> CHAP_R=<R'>
//
// R = MD5(I || secret || C). Secrets never leave this type: it has no description of them and
// failures carry no detail (unknown user and wrong secret are indistinguishable).

import Crypto

public enum CHAP {
    /// The only algorithm accepted: 5 = MD5.
    public static let md5Algorithm = "5"
    /// Length of the challenges the target sends (RFC 7143 recommends at least 16).
    public static let challengeLength = 16
    /// Longest binary value accepted (RFC 7143 §12.1.3).
    public static let maxBinaryLength = 1024

    /// RFC 1994 response: MD5 over identifier, secret, challenge.
    public static func response(identifier: UInt8, secret: [UInt8], challenge: [UInt8]) -> [UInt8] {
        var md5 = Insecure.MD5()
        md5.update(data: [identifier])
        md5.update(data: secret)
        md5.update(data: challenge)
        return Array(md5.finalize())
    }

    /// Encodes a binary value as an iSCSI hex-constant ("0x" + lowercase hex digits).
    public static func encodeHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes an iSCSI binary value: hex-constant "0x…"/"0X…" or base64-constant "0b…"/"0B…".
    /// Returns nil on malformed input, an empty value, or more than `maxBinaryLength` bytes.
    public static func decodeBinary(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count > 2, u[0] == UInt8(ascii: "0") else { return nil }
        let body = u[2...]
        let decoded: [UInt8]?
        switch u[1] {
        case UInt8(ascii: "x"), UInt8(ascii: "X"): decoded = decodeHex(body)
        case UInt8(ascii: "b"), UInt8(ascii: "B"): decoded = decodeBase64(body)
        default: return nil
        }
        guard let bytes = decoded, !bytes.isEmpty, bytes.count <= maxBinaryLength else { return nil }
        return bytes
    }

    /// Compares in time independent of where the contents differ (lengths are not secret).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func decodeHex(_ digits: ArraySlice<UInt8>) -> [UInt8]? {
        var d = Array(digits)
        if d.count % 2 == 1 { d.insert(UInt8(ascii: "0"), at: 0) }
        var out: [UInt8] = []
        out.reserveCapacity(d.count / 2)
        var i = 0
        while i < d.count {
            guard let hi = hexValue(d[i]), let lo = hexValue(d[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func base64Value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    /// RFC 4648 base64 with '=' padding required to a multiple of 4 characters.
    private static func decodeBase64(_ chars: ArraySlice<UInt8>) -> [UInt8]? {
        let c = Array(chars)
        guard !c.isEmpty, c.count % 4 == 0 else { return nil }
        var padding = 0
        if c.last == UInt8(ascii: "=") { padding += 1 }
        if c.count >= 2 && c[c.count - 2] == UInt8(ascii: "=") { padding += 1 }
        var out: [UInt8] = []
        out.reserveCapacity(c.count / 4 * 3)
        var i = 0
        while i < c.count {
            let last = i + 4 == c.count
            var v: UInt32 = 0
            for j in 0..<4 {
                let ch = c[i + j]
                let digit: UInt8
                if ch == UInt8(ascii: "=") {
                    guard last, j >= 4 - padding else { return nil }
                    digit = 0
                } else {
                    guard let d = base64Value(ch) else { return nil }
                    digit = d
                }
                v = v << 6 | UInt32(digit)
            }
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            if !(last && padding == 2) { out.append(UInt8(truncatingIfNeeded: v >> 8)) }
            if !(last && padding >= 1) { out.append(UInt8(truncatingIfNeeded: v)) }
            i += 4
        }
        return out
    }
}

/// Produces the target's CHAP identifier and challenge. The default uses the system CSPRNG.
public typealias CHAPChallengeGenerator = @Sendable () -> (identifier: UInt8, challenge: [UInt8])

/// The target's side of one CHAP exchange.
public struct CHAPAuthenticator: Sendable, CustomStringConvertible, CustomReflectable {
    public enum Outcome: Sendable, Equatable {
        /// Keys to send; the exchange continues.
        case send([TextKeyValue])
        /// The initiator proved it knows the secret of `user`; `reply` holds the target's
        /// CHAP_N/CHAP_R for mutual CHAP (empty for one-way).
        case authenticated(user: String, reply: [TextKeyValue])
        /// Authentication failed; answer with status 0x0201 and no detail.
        case failed
    }

    private enum State {
        case awaitingAlgorithm
        case awaitingResponse(identifier: UInt8, challenge: [UInt8])
        case done
        case failed
    }

    private let policy: AuthenticationPolicy
    private let generator: CHAPChallengeGenerator
    private var state: State = .awaitingAlgorithm

    public static let systemRandomChallenge: CHAPChallengeGenerator = {
        var rng = SystemRandomNumberGenerator()
        let challenge = (0..<CHAP.challengeLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        return (UInt8.random(in: .min ... .max, using: &rng), challenge)
    }

    public init(policy: AuthenticationPolicy, challengeGenerator: @escaping CHAPChallengeGenerator = CHAPAuthenticator.systemRandomChallenge) {
        self.policy = policy
        self.generator = challengeGenerator
    }

    public var description: String { "CHAPAuthenticator(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// The challenge is out: the next keys carry the response to verify.
    public var awaitsResponse: Bool {
        if case .awaitingResponse = state { return true }
        return false
    }

    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Feeds the CHAP_* keys of one (reassembled) login request.
    public mutating func receive(_ keys: [TextKeyValue]) -> Outcome {
        let outcome = step(keys)
        if case .failed = outcome { state = .failed }
        return outcome
    }

    private mutating func step(_ keys: [TextKeyValue]) -> Outcome {
        switch state {
        case .awaitingAlgorithm:
            guard let algorithms = keys.value(for: "CHAP_A") else {
                // Nothing for CHAP yet (e.g. an empty PDU): wait; other CHAP keys are out of order.
                return keys.isEmpty ? .send([]) : .failed
            }
            guard keys.count == 1, TextKeys.listValues(algorithms).contains(CHAP.md5Algorithm) else {
                return .failed
            }
            let (identifier, challenge) = generator()
            guard !challenge.isEmpty, challenge.count <= CHAP.maxBinaryLength else { return .failed }
            state = .awaitingResponse(identifier: identifier, challenge: challenge)
            return .send([
                TextKeyValue("CHAP_A", CHAP.md5Algorithm),
                TextKeyValue("CHAP_I", String(identifier)),
                TextKeyValue("CHAP_C", CHAP.encodeHex(challenge)),
            ])

        case .awaitingResponse(let identifier, let challenge):
            if keys.isEmpty { return .send([]) }
            guard let name = keys.value(for: "CHAP_N"), let responseText = keys.value(for: "CHAP_R"),
                  keys.value(for: "CHAP_A") == nil
            else { return .failed }
            let received = CHAP.decodeBinary(responseText) ?? []
            // Same work whether or not the user exists; the outcome is identical either way.
            let knownSecret = policy.incomingUsers[name]
            let secret = Array((knownSecret ?? "\u{0}unknown-user-placeholder").utf8)
            let expected = CHAP.response(identifier: identifier, secret: secret, challenge: challenge)
            let matches = CHAP.constantTimeEqual(expected, received)
            guard matches, knownSecret != nil else { return .failed }

            let initiatorIdentifier = keys.value(for: "CHAP_I")
            let initiatorChallenge = keys.value(for: "CHAP_C")
            switch (initiatorIdentifier, initiatorChallenge) {
            case (nil, nil):
                state = .done
                return .authenticated(user: name, reply: [])
            case (let idText?, let challengeText?):
                guard let outgoing = policy.outgoingUser,
                      let id = OperationalNegotiation.number(idText), id <= 255,
                      let theirChallenge = CHAP.decodeBinary(challengeText),
                      // A reflected challenge would let the initiator replay our own response.
                      !CHAP.constantTimeEqual(theirChallenge, challenge)
                else { return .failed }
                let answer = CHAP.response(identifier: UInt8(id), secret: Array(outgoing.secret.utf8),
                                           challenge: theirChallenge)
                state = .done
                return .authenticated(user: name, reply: [
                    TextKeyValue("CHAP_N", outgoing.name),
                    TextKeyValue("CHAP_R", CHAP.encodeHex(answer)),
                ])
            default:
                return .failed
            }

        case .done, .failed:
            return keys.isEmpty ? .send([]) : .failed
        }
    }
}

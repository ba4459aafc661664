@testable import ISCSIFabric

/// `text-keys`: the key=value codec of Login/Text PDUs (`TextKeys.parse/encode/listValues`),
/// CHAP's binary values (`CHAP.decodeBinary`) and the SendTargets answer built from a text.
///
/// Input: [flags] text…   flags bit 0: TargetName/TargetAddress may repeat (as in a
/// SendTargets response); bit 1: answer as a normal session (SendTargets= names its own target).
/// Invariants: parse(encode(pairs)) == pairs; list values join back to the value; a decoded
/// binary value re-encodes (hex) to the same bytes; our SendTargets answer is valid text.
enum TextKeysFuzz {
    static let target = FuzzTarget(name: "text-keys", summary: "text key codec, CHAP binary values, SendTargets", run: run)

    static let directory = TargetDirectory(targets: [
        TargetAccess(name: "iqn.2026-01.org.example:disk1", portals: ["192.0.2.1:3260,1", "[2001:db8::1]:3260,1"]),
        TargetAccess(name: "iqn.2026-01.org.example:hidden", portals: ["192.0.2.2:3260,2"],
                     isAllowed: { name, _ in name == "iqn.2026-01.org.example:admin" }),
    ])

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let text = input.rest()
        let repeatable: Set<String> = flags & 1 != 0 ? ["TargetName", "TargetAddress"] : []

        // The whole text as one value, as a CHAP_R/CHAP_C would arrive.
        checkBinary(String(decoding: text, as: UTF8.self))

        if let pairs = try? TextKeys.parse(text, repeatable: repeatable) {
            let again: [TextKeyValue]
            do {
                again = try TextKeys.parse(TextKeys.encode(pairs), repeatable: repeatable)
            } catch {
                fuzzFailure("encoded pairs do not parse: \(error)")
            }
            guard again == pairs else { fuzzFailure("parse(encode(pairs)) differs") }
            for pair in pairs {
                guard TextKeys.isValidKey(Array(pair.key.utf8)),
                      pair.value.utf8.count <= TextKeys.maxValueLength(forKey: pair.key)
                else { fuzzFailure("parse accepted key \(pair.key.utf8.count) bytes / value \(pair.value.utf8.count) bytes") }
                let list = TextKeys.listValues(pair.value)
                guard list.joined(separator: ",") == pair.value else { fuzzFailure("list values do not join back") }
                checkBinary(pair.value)
            }
            _ = pairs.value(for: "SendTargets")
        }

        let own = flags & 2 != 0 ? "iqn.2026-01.org.example:disk1" : nil
        let answer = sendTargetsResponse(request: text, directory: directory, initiatorName: "iqn.2026-01.org.example:client",
                                         remoteAddress: "192.0.2.77", sessionTarget: own)
        if !answer.isEmpty, (try? TextKeys.parse(answer, repeatable: ["TargetName", "TargetAddress", "SendTargets"])) == nil,
           (try? TextKeys.parse(text)) != nil {
            fuzzFailure("SendTargets answered text that does not parse")
        }
    }

    static func checkBinary(_ value: String) {
        guard let decoded = CHAP.decodeBinary(value) else { return }
        guard !decoded.isEmpty, decoded.count <= CHAP.maxBinaryLength else {
            fuzzFailure("decodeBinary returned \(decoded.count) bytes")
        }
        guard CHAP.decodeBinary(CHAP.encodeHex(decoded)) == decoded else {
            fuzzFailure("hex re-encoding of a binary value decodes differently")
        }
    }
}

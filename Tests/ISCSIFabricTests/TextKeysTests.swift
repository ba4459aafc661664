import Testing
@testable import ISCSIFabric

@Suite struct TextKeysTests {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func encodesNULTerminatedPairsInOrder() throws {
        let pairs = [TextKeyValue("InitiatorName", "iqn.x"), TextKeyValue("AuthMethod", "CHAP,None"),
                     TextKeyValue("SendTargets", "")]
        let encoded = TextKeys.encode(pairs)
        #expect(encoded == bytes("InitiatorName=iqn.x\0AuthMethod=CHAP,None\0SendTargets=\0"))
        #expect(try TextKeys.parse(encoded) == pairs)
    }

    @Test func roundTripKeepsOrderAndValuesWithEquals() throws {
        let pairs = [TextKeyValue("Z", "1"), TextKeyValue("A", "a=b=c"), TextKeyValue("X-com.example.K", "ü")]
        #expect(try TextKeys.parse(TextKeys.encode(pairs)) == pairs)
        #expect(try TextKeys.parse(TextKeys.encode([])) == [])
    }

    @Test func rejectsMissingEquals() {
        #expect(throws: TextKeysError.missingEquals) { try TextKeys.parse(bytes("A=1\0B\0")) }
    }

    @Test func rejectsUnterminated() {
        #expect(throws: TextKeysError.notNULTerminated) { try TextKeys.parse(bytes("A=1\0B=2")) }
    }

    @Test func rejectsEmptyKey() {
        #expect(throws: TextKeysError.emptyKey) { try TextKeys.parse(bytes("=1\0")) }
    }

    @Test func keyLengthLimit() throws {
        let ok = String(repeating: "K", count: 63)
        #expect(try TextKeys.parse(bytes("\(ok)=v\0")) == [TextKeyValue(ok, "v")])
        let long = String(repeating: "K", count: 64)
        #expect(throws: TextKeysError.invalidKey(String(repeating: "K", count: 63))) {
            try TextKeys.parse(bytes("\(long)=v\0"))
        }
        #expect(throws: TextKeysError.invalidKey("Bad Key")) { try TextKeys.parse(bytes("Bad Key=v\0")) }
    }

    @Test func valueLengthLimits() throws {
        let v255 = String(repeating: "v", count: 255)
        #expect(try TextKeys.parse(bytes("K=\(v255)\0")).first?.value == v255)
        #expect(throws: TextKeysError.valueTooLong(key: "K")) { try TextKeys.parse(bytes("K=\(v255)v\0")) }
        // CHAP_C / CHAP_R may carry up to 1024 binary bytes (2050 hex characters).
        let hex = "0x" + String(repeating: "ab", count: 1024)
        #expect(try TextKeys.parse(bytes("CHAP_C=\(hex)\0")).first?.value == hex)
        #expect(throws: TextKeysError.valueTooLong(key: "CHAP_R")) {
            try TextKeys.parse(bytes("CHAP_R=\(hex)0\0"))
        }
    }

    @Test func rejectsDuplicatesUnlessRepeatable() throws {
        let data = bytes("TargetName=a\0TargetAddress=x\0TargetName=b\0")
        #expect(throws: TextKeysError.duplicateKey("TargetName")) { try TextKeys.parse(data) }
        let parsed = try TextKeys.parse(data, repeatable: ["TargetName"])
        #expect(parsed.map(\.value) == ["a", "x", "b"])
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: TextKeysError.invalidUTF8) { try TextKeys.parse([0x41, 0x3D, 0xFF, 0x00]) }
    }

    @Test func toleratesExtraNULs() throws {
        #expect(try TextKeys.parse(bytes("A=1\0\0\0")) == [TextKeyValue("A", "1")])
    }

    @Test func listValues() {
        #expect(TextKeys.listValues("CRC32C,None") == ["CRC32C", "None"])
        #expect([TextKeyValue("A", "1")].value(for: "A") == "1")
        #expect([TextKeyValue("A", "1")].value(for: "B") == nil)
    }
}

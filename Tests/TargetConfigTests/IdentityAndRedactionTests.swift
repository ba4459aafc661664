import Foundation
import Testing
@testable import TargetConfig

@Suite struct IdentityAndRedactionTests {
    @Test func missingIdentitiesAreGeneratedOnceAndPersisted() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.json"
        let handWritten = Fixture.minimal()
            .replacingOccurrences(of: ",\n          \"serial\": \"0000000000000001\",\n          \"naaId\": \"6020000000000000000000000000000a\"", with: "")
        #expect(!handWritten.contains("serial"))
        try Data(handWritten.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)

        let first = try ConfigStore(path: path).load()
        #expect(first.generatedIdentities.map(\.description) == ["targets[0].luns[0].serial", "targets[0].luns[0].naaId"])
        let lun = first.config.targets[0].luns[0]
        #expect(first.warnings.map(\.description) == [
            "\(path):7: warning: targets[0].luns[0].serial: was missing; generated \(lun.serial)",
            "\(path):7: warning: targets[0].luns[0].naaId: was missing; generated \(lun.naaId)",
        ])
        // The second load sees the same identity, read from the rewritten file.
        let second = try ConfigStore(path: path).load()
        #expect(second.generatedIdentities.isEmpty)
        #expect(second.config.targets[0].luns[0].serial == lun.serial)
        #expect(second.config.targets[0].luns[0].naaId == lun.naaId)
    }

    @Test func generatedNAAIsLocallyAdministeredType6() {
        for _ in 0..<50 {
            let naa = LUNIdentity.generateNAA()
            #expect(naa.count == 32 && naa.first == "6")
            // OUI = hex digits 1...6; first OUI octet has the local bit (0x02) set, multicast bit clear.
            let firstOctet = UInt8(naa.dropFirst().prefix(2), radix: 16)!
            #expect(firstOctet & 0x03 == 0x02)
        }
    }

    @Test func secretsNeverPrinted() throws {
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let dumped = "\(c) \(String(reflecting: c))"
        var mirrored = ""
        dump(c, to: &mirrored)
        for secret in ["disc0very-s3cr", "d3fault-secret", "a-twelve-byte", "t-twelve-byte"] {
            #expect(!dumped.contains(secret))
            #expect(!mirrored.contains(secret))
        }
        let red = c.redactingSecrets()
        #expect(red.targets[0].auth?.outgoingUser?.secret == "********")
        #expect(red.discoveryAuth.incomingUsers[0].secret == "********")
        #expect(!String(decoding: try ConfigFile.encode(red), as: UTF8.self).contains("a-twelve-byte"))
        #expect(String(decoding: try ConfigFile.encode(c), as: UTF8.self).contains("a-twelve-byte"))
    }

    @Test func discoverableTargetsCombineACLAndServerAddresses() throws {
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let names = { (i: String, a: String, l: String) in
            c.discoverableTargets(initiatorName: i, address: a, localAddress: l).map(\.name)
        }
        #expect(names("iqn.1991-05.com.microsoft:db1-sql", "192.0.2.20", "192.0.2.10")
                == ["iqn.2026-01.com.example:storage.db1", "iqn.2026-01.com.example:backup"])
        #expect(names("iqn.1991-05.com.microsoft:db1-sql", "192.0.2.20", "192.0.2.99") == ["iqn.2026-01.com.example:backup"])
        #expect(names("iqn.1991-05.com.microsoft:web", "192.0.2.20", "192.0.2.10") == ["iqn.2026-01.com.example:backup"])
    }
}

import Foundation
import Testing
@testable import TargetConfig

@Suite struct FileFormatTests {
    @Test func exampleLoadsWithExpectedWarnings() throws {
        let loaded = try ConfigFile.decode(Fixture.exampleJSON, fileName: "config-example.json")
        let c = loaded.config
        #expect(c.targets.count == 2)
        #expect(c.portals == [Portal(address: "0.0.0.0", port: 3260), Portal(address: "::", port: 3260)])
        #expect(c.targets[0].luns[1].size == 21_474_836_480)
        #expect(c.targets[0].luns[1].writeCache == .writeBack)
        #expect(c.targets[1].luns[0].writeCache == .writeThrough)  // default
        #expect(c.targets[0].auth?.mode == .mutualCHAP)
        #expect(c.targets[0].allowedClients?[1].initiatorRegex == #"iqn\.1994-05\.com\.redhat:[0-9a-f]+"#)
        let w = loaded.warnings.map(\.description)
        #expect(w.contains { $0.hasSuffix("warning: targets[0].luns[1].writeCache: write-back caching can lose acknowledged writes on a power failure unless initiators flush") })
        #expect(!loaded.warnings.contains { $0.severity == .error })
    }

    @Test func roundTripIsLossless() throws {
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let data = try ConfigFile.encode(c)
        let again = try ConfigFile.decode(data).config
        #expect(again == c)
        // Canonical encoding is stable.
        #expect(try ConfigFile.encode(again) == data)
    }

    @Test func unknownFieldsAreErrorsWithPathAndLine() {
        let text = Fixture.minimal(lunExtra: "\n          \"readonly\": true,", targetExtra: "\n      \"aliass\": \"x\",")
        let errs = loadErrors(text)
        #expect(errs == [
            "/etc/swifttarget/config.json:6: targets[0].aliass: unknown field \"aliass\"",
            "/etc/swifttarget/config.json:12: targets[0].luns[0].readonly: unknown field \"readonly\"",
        ])
    }

    @Test func unknownTopLevelAndNestedSettingsFields() {
        let text = Fixture.minimal(topExtra: "\n  \"defaults\": { \"connection\": { \"maxBurst\": 5 } },\n  \"portal\": [],")
        #expect(loadErrors(text) == [
            "/etc/swifttarget/config.json:3: defaults.connection.maxBurst: unknown field \"maxBurst\"",
            "/etc/swifttarget/config.json:4: portal: unknown field \"portal\"",
        ])
    }

    @Test func typeErrorsNameTheField() {
        #expect(loadErrors(Fixture.minimal(lunExtra: "\n          \"size\": \"10G\",")) == [
            "/etc/swifttarget/config.json:11: targets[0].luns[0].size: expected an integer, found a string",
        ])
        #expect(loadErrors(Fixture.minimal(lunExtra: "\n          \"writeCache\": \"wb\",")) == [
            "/etc/swifttarget/config.json:11: targets[0].luns[0].writeCache: \"wb\" is not one of \"write-back\", \"write-through\"",
        ])
        #expect(loadErrors(Fixture.minimal(lunExtra: "\n          \"size\": -5,")) == [
            "/etc/swifttarget/config.json:11: targets[0].luns[0].size: -5 is out of range (0...18446744073709551615)",
        ])
    }

    @Test func missingRequiredFieldPointsAtEnclosingObject() {
        let text = Fixture.minimal().replacingOccurrences(of: "\"path\": \"/srv/a.img\",", with: "\"readOnly\": false,")
        #expect(loadErrors(text) == [
            "/etc/swifttarget/config.json:7: targets[0].luns[0].path: required field is missing",
        ])
    }

    /// Type errors do not hide what comes after them: one pass lists every problem, with the
    /// file's own indices although a broken element was set aside to go on.
    @Test func everyProblemInOnePassTypeErrorsIncluded() {
        let text = """
            {
              "version": 1,
              "portals": ["127.0.0.1:3260", 7],
              "targets": [
                {"luns": []},
                {"name": "iqn.2026-12.org.example:b",
                 "luns": [{"id": 0, "backstore": "floppy", "path": "/srv/b.img"},
                          {"id": 1, "backstore": "sparse", "path": "srv/c.img", "size": "1G"}],
                 "aliass": "x"},
                {"name": "bad name", "luns": [{"id": 0, "backstore": "sparse", "path": "/srv/d.img"}]},
                {"name": "iqn.2026-12.org.example:e", "luns": []}
              ]
            }
            """
        #expect(loadErrors(text) == [
            "/etc/swifttarget/config.json:3: portals[1]: expected a string, found a number",
            "/etc/swifttarget/config.json:5: targets[0].name: required field is missing",
            "/etc/swifttarget/config.json:7: targets[1].luns[0].backstore: \"floppy\" is not one of \"file\", \"sparse\", \"raw\", \"rbd\"",
            "/etc/swifttarget/config.json:8: targets[1].luns[1].size: expected an integer, found a string",
            "/etc/swifttarget/config.json:8: targets[1].luns[1].path: must be an absolute path",
            "/etc/swifttarget/config.json:9: targets[1].aliass: unknown field \"aliass\"",
            "/etc/swifttarget/config.json:10: targets[2].name: \"bad name\" is not a valid iSCSI name: must start with iqn., eui. or naa. (e.g. iqn.2026-01.com.example:storage)",
        ])
        // Warnings come apart, after the errors.
        do {
            _ = try ConfigFile.decode(Data(text.utf8), fileName: "c.json")
            Issue.record("decoded")
        } catch {
            let lines = error.description.split(separator: "\n")
            #expect(lines.dropLast(2).allSatisfy { !$0.contains("warning") })
            #expect(lines.suffix(2) == ["1 warning:", "c.json:11: warning: targets[3].luns: target has no LUNs"])
        }
    }

    @Test func syntaxErrorsHaveLineAndColumn() {
        let text = "{\n  \"version\": 1,\n  \"targets\": [,]\n}"
        #expect(loadErrors(text) == ["/etc/swifttarget/config.json:3: (root): invalid JSON at column 15: unexpected character ','"])
        #expect(loadErrors("{\"version\": 1, \"version\": 1}") == [
            "/etc/swifttarget/config.json:1: (root): invalid JSON at column 16: duplicate field \"version\"",
        ])
    }

    @Test func validationErrorsCarryFileAndLine() {
        let text = Fixture.minimal().replacingOccurrences(of: "\"/srv/a.img\"", with: "\"srv/a.img\"")
        #expect(loadErrors(text) == [
            "/etc/swifttarget/config.json:10: targets[0].luns[0].path: must be an absolute path",
        ])
    }

    @Test func defaultsForOptionalTopLevelFields() throws {
        let c = try ConfigFile.decode(Data(#"{"version": 1}"#.utf8)).config
        #expect(c.portals == [Portal(address: "0.0.0.0", port: 3260)])
        #expect(c.discoveryAuth == .noAuth)
        #expect(c.targets.isEmpty)
    }

    @Test func portalParsing() {
        #expect(Portal("10.0.0.1:3261") == Portal(address: "10.0.0.1", port: 3261))
        #expect(Portal("[2001:db8::1]:3260") == Portal(address: "2001:db8::1", port: 3260))
        #expect(Portal("2001:db8::1") == Portal(address: "2001:db8::1", port: 3260))
        #expect(Portal("10.0.0.1") == Portal(address: "10.0.0.1", port: 3260))
        #expect(Portal("10.0.0.1:0") == nil)
        #expect(Portal("host.example:3260") == nil)
        #expect(Portal(address: "::", port: 3260).description == "[::]:3260")
    }
}

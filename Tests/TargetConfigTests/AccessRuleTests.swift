import Foundation
import Testing
@testable import TargetConfig

@Suite struct AccessRuleTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.0.2.0/25", "192.0.2.127", true),
        ("192.0.2.0/25", "192.0.2.128", false),
        ("192.0.2.7", "192.0.2.7", true),
        ("192.0.2.7", "192.0.2.8", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("10.0.0.0/8", "::ffff:10.1.1.1", true),       // v4-mapped client on a dual-stack socket
        ("10.0.0.0/8", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("[2001:db8:10::]/48", "2001:db8:10:1::5", true),  // IET bracket syntax
        ("2001:db8:10::/47", "2001:db8:11::1", true),
        ("2001:db8:10::/48", "2001:db8:11::1", false),
        ("fe80::/10", "fe80::1%eth0", true),
        ("::/0", "10.0.0.1", false),                     // v6 network never matches v4
        ("::1", "::1", true),
        ("2001:db8::1/128", "[2001:db8::1]", true),
    ])
    func cidr(network: String, address: String, expected: Bool) throws {
        let net = try #require(IPNetwork(network))
        let rule = AccessRule(.allow, address: net)
        #expect(rule.matches(initiatorName: "iqn.x", address: address) == expected)
    }

    @Test func invalidNetworksAreRejected() {
        for s in ["10.0.0.0/33", "2001:db8::/129", "10.0.0", "host.example", "10.0.0.0/-1", "", "::ffff:10.0.0.0/90"] {
            #expect(IPNetwork(s) == nil, "\(s)")
        }
        #expect(IPNetwork("::ffff:10.0.0.0/104")?.description == "10.0.0.0/8")
        #expect(IPNetwork("[2001:db8::]/32")?.description == "2001:db8::/32")
    }

    @Test(arguments: [
        ("iqn.1991-05.com.microsoft:*", "iqn.1991-05.com.microsoft:host1.example.com", true),
        ("iqn.1991-05.com.microsoft:*", "iqn.1994-05.com.redhat:abc", false),
        ("iqn.1991-05.com.microsoft:*", "IQN.1991-05.COM.MICROSOFT:HOST", true),  // case-insensitive
        ("iqn.2026-01.com.example:host?", "iqn.2026-01.com.example:host7", true),
        ("iqn.2026-01.com.example:host?", "iqn.2026-01.com.example:host10", false),
        ("iqn.2026-01.com.example:host[0-4]", "iqn.2026-01.com.example:host3", true),
        ("iqn.2026-01.com.example:host[!0-4]", "iqn.2026-01.com.example:host3", false),
        ("iqn.2026-01.com.example:exact", "iqn.2026-01.com.example:exact", true),
        ("iqn.2026-01.com.example:exact", "iqn.2026-01.com.example:exactly", false),
        ("*:db-*-prod", "iqn.2026-01.com.example:db-01-prod", true),
        ("*:db-*-prod", "iqn.2026-01.com.example:db-01-test", false),
        (#"iqn.2026-01.com.example:a\*"#, "iqn.2026-01.com.example:a*", true),
        (#"iqn.2026-01.com.example:a\*"#, "iqn.2026-01.com.example:ab", false),
    ])
    func globs(pattern: String, name: String, expected: Bool) {
        #expect(AccessRule(.allow, initiator: pattern).matches(initiatorName: name, address: "10.0.0.1") == expected)
    }

    @Test func regexMatchesWholeNameLikeIET() {
        let r = AccessRule(.allow, initiatorRegex: #"iqn\.1994-05\.com\.redhat:[0-9a-f]+"#)
        #expect(r.matches(initiatorName: "iqn.1994-05.com.redhat:abc123", address: "10.0.0.1"))
        #expect(!r.matches(initiatorName: "iqn.1994-05.com.redhat:abc123-extra", address: "10.0.0.1"))
        #expect(!r.matches(initiatorName: "x-iqn.1994-05.com.redhat:abc", address: "10.0.0.1"))
        let alt = AccessRule(.allow, initiatorRegex: "iqn.a|iqn.b")  // alternation is anchored as a whole
        #expect(alt.matches(initiatorName: "iqn.b", address: "1.2.3.4"))
        #expect(!alt.matches(initiatorName: "iqn.bc", address: "1.2.3.4"))
    }

    @Test func ruleNeedsAllConditions() {
        let r = AccessRule(.allow, initiator: "iqn.1991-05.com.microsoft:*", address: IPNetwork("192.0.2.0/24"))
        #expect(r.matches(initiatorName: "iqn.1991-05.com.microsoft:h", address: "192.0.2.9"))
        #expect(!r.matches(initiatorName: "iqn.1991-05.com.microsoft:h", address: "198.51.100.9"))
        #expect(!r.matches(initiatorName: "iqn.other:h", address: "192.0.2.9"))
        #expect(!r.matches(initiatorName: "iqn.1991-05.com.microsoft:h", address: "not-an-ip"))
        #expect(AccessRule(.deny).matches(initiatorName: "anything", address: "not-an-ip"))
    }

    @Test func firstMatchWinsAndDefaults() {
        let rules: [AccessRule] = [
            .deny(address: "192.0.2.66"),
            .allow(initiator: "iqn.2026-01.com.example:admin"),
            .deny(address: "192.0.2.0/28"),
            .allow(address: "192.0.2.0/24"),
            .allow(address: "2001:db8::/32"),
        ]
        let table: [(String, String, AccessAction, Int?)] = [
            ("iqn.2026-01.com.example:admin", "192.0.2.66", .deny, 0),    // deny before the admin allow
            ("iqn.2026-01.com.example:admin", "192.0.2.5", .allow, 1),    // admin allow before the /28 deny
            ("iqn.2026-01.com.example:other", "192.0.2.5", .deny, 2),
            ("iqn.2026-01.com.example:other", "192.0.2.200", .allow, 3),
            ("iqn.2026-01.com.example:other", "2001:db8::7", .allow, 4),
            ("iqn.2026-01.com.example:other", "198.51.100.1", .deny, nil), // nothing matched: deny
        ]
        for (name, addr, action, idx) in table {
            let r = AccessRule.evaluate(rules, initiatorName: name, address: addr)
            #expect(r.action == action && r.ruleIndex == idx, "\(name) \(addr)")
        }
        #expect(AccessRule.evaluate([], initiatorName: "iqn.any", address: "203.0.113.1").action == .allow)
    }

    @Test func rulesRoundTripThroughJSON() throws {
        let json = Fixture.minimal(targetExtra: """

              "allowedClients": [
                { "action": "deny", "address": "[2001:db8::]/32" },
                { "action": "allow", "initiator": "iqn.1991-05.com.microsoft:*" },
                { "action": "allow", "address": "10.0.0.0/8", "comment": "lab" }
              ],
        """)
        let c = try ConfigFile.decode(Data(json.utf8)).config
        let rules = try #require(c.targets[0].allowedClients)
        #expect(rules[0].address?.description == "2001:db8::/32")
        #expect(rules[2].comment == "lab")
        #expect(try ConfigFile.decode(try ConfigFile.encode(c)).config == c)
        #expect(loadErrors(Fixture.minimal(targetExtra: "\n      \"allowedClients\": [{ \"action\": \"permit\" }],")) == [
            "/etc/swifttarget/config.json:6: targets[0].allowedClients[0].action: \"permit\" is not one of \"allow\", \"deny\"",
        ])
        #expect(loadErrors(Fixture.minimal(targetExtra: "\n      \"allowedClients\": [{ \"action\": \"allow\", \"address\": \"10.0.0.0/40\" }],")) == [
            "/etc/swifttarget/config.json:6: targets[0].allowedClients[0].address: \"10.0.0.0/40\" is not an IPv4/IPv6 address or CIDR network",
        ])
    }
}

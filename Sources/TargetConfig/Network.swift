import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A binary IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored
/// as IPv4 so that `10.0.0.0/8` matches a client seen on a dual-stack socket.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes.
    public let bytes: [UInt8]
    public var isIPv4: Bool { bytes.count == 4 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            self.bytes = Array(bytes[12..<16])
        } else {
            self.bytes = bytes
        }
    }

    /// Parses `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]` or `fe80::1%eth0` (zone dropped) with inet_pton.
    public init?(_ text: String) {
        var s = text
        if s.hasPrefix("["), s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        if let pct = s.firstIndex(of: "%") { s = String(s[..<pct]) }
        if !s.contains(":") {
            var a = in_addr()
            guard inet_pton(AF_INET, s, &a) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: &a) { Array($0) })
        } else {
            var a = in6_addr()
            guard inet_pton(AF_INET6, s, &a) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: &a) { Array($0) })
        }
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        if isIPv4 {
            var a = in_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
            _ = inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
        } else {
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
            _ = inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address with a prefix length: `10.0.0.0/8`, `192.0.2.7` (= /32), `2001:db8::/32`,
/// `[2001:db8::]/32` (IET style) or `::1`. Encoded in JSON as that string.
public struct IPNetwork: Codable, Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        var addrPart = Substring(t)
        var prefix: Int?
        if let slash = t.lastIndex(of: "/") {
            guard let p = Int(t[t.index(after: slash)...]), p >= 0 else { return nil }
            prefix = p
            addrPart = t[..<slash]
        }
        guard let a = IPAddress(String(addrPart)) else { return nil }
        let maxBits = a.isIPv4 ? 32 : 128
        // An IPv4-mapped IPv6 network such as ::ffff:10.0.0.0/104 becomes 10.0.0.0/8.
        if let p = prefix, a.isIPv4, String(addrPart).contains(":") {
            guard p >= 96 else { return nil }
            prefix = p - 96
        }
        let p = prefix ?? maxBits
        guard p <= maxBits else { return nil }
        address = a
        prefixLength = p
    }

    /// True when `addr` lies inside this network. IPv4 never matches an IPv6 network and vice versa.
    public func contains(_ addr: IPAddress) -> Bool {
        guard addr.bytes.count == address.bytes.count else { return false }
        var bits = prefixLength
        for i in 0..<address.bytes.count {
            if bits <= 0 { return true }
            let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(0xFF << (8 - bits) & 0xFF)
            if addr.bytes[i] & mask != address.bytes[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    public var description: String {
        let full = address.isIPv4 ? 32 : 128
        return prefixLength == full ? address.description : "\(address)/\(prefixLength)"
    }

    /// True when the address has bits set beyond the prefix (`10.1.2.3/8`): legal, but usually a typo.
    public var hasHostBits: Bool {
        var bits = prefixLength
        for b in address.bytes {
            let mask: UInt8 = bits >= 8 ? 0xFF : (bits <= 0 ? 0 : UInt8(0xFF << (8 - bits) & 0xFF))
            if b & ~mask != 0 { return true }
            bits -= 8
        }
        return false
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let n = IPNetwork(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "\"\(s)\" is not an IPv4/IPv6 address or CIDR network")
        }
        self = n
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A listening portal, `address:port`. The address may be a wildcard (`0.0.0.0`, `::`).
/// Encoded in JSON as `"192.0.2.10:3260"` or `"[2001:db8::10]:3260"`; the port defaults to 3260.
public struct Portal: Codable, Sendable, Hashable, CustomStringConvertible {
    public var address: String
    public var port: Int

    public init(address: String, port: Int = 3260) {
        self.address = address
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port`, or an address without port (3260).
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        var host = t
        var port = 3260
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { return nil }
            host = String(t[t.index(after: t.startIndex)..<close])
            let rest = t[t.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { return nil }
                port = p
            }
        } else if t.filter({ $0 == ":" }).count == 1, let colon = t.firstIndex(of: ":") {
            host = String(t[..<colon])
            guard let p = Int(t[t.index(after: colon)...]) else { return nil }
            port = p
        }
        guard IPAddress(host) != nil else { return nil }
        guard (1...65535).contains(port) else { return nil }
        self.address = host
        self.port = port
    }

    public var ipAddress: IPAddress? { IPAddress(address) }
    public var isWildcard: Bool { ipAddress.map { $0.bytes.allSatisfy { $0 == 0 } } ?? false }

    public var description: String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let p = Portal(s) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "\"\(s)\" is not a portal (address:port, [IPv6]:port; port 1...65535)")
        }
        self = p
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

// MARK: - Access rules

/// One client access rule. A rule matches when every condition it has matches:
/// `initiator` (a glob) or `initiatorRegex`, and `address` (a CIDR network). A rule without
/// conditions matches everyone. In a list, the first matching rule decides; when no rule
/// matches a non-empty list the login is denied; an empty list allows everyone.
///
/// Initiator patterns: `initiator` is a **glob** compared case-insensitively (iSCSI names are
/// case-insensitive): `*` any run of characters, `?` one character, `[abc]`/`[a-z]`/`[!a]`
/// classes, `\` escapes. `initiatorRegex` is an **extended regular expression that must match
/// the whole name** (as IET's `initiators.allow` does), also case-insensitive; it exists
/// mainly for imported IET rules.
public struct AccessRule: Codable, Sendable, Hashable {
    public var action: AccessAction
    public var initiator: String?
    public var initiatorRegex: String?
    public var address: IPNetwork?
    /// Free text for admins; ignored by matching.
    public var comment: String?

    public init(
        _ action: AccessAction, initiator: String? = nil, initiatorRegex: String? = nil,
        address: IPNetwork? = nil, comment: String? = nil
    ) {
        self.action = action
        self.initiator = initiator
        self.initiatorRegex = initiatorRegex
        self.address = address
        self.comment = comment
    }

    public static func allow(initiator: String? = nil, address: String? = nil) -> AccessRule {
        AccessRule(.allow, initiator: initiator, address: address.flatMap(IPNetwork.init))
    }
    public static func deny(initiator: String? = nil, address: String? = nil) -> AccessRule {
        AccessRule(.deny, initiator: initiator, address: address.flatMap(IPNetwork.init))
    }

    /// Does this one rule match the client? `address` is the peer IP (text, any form `IPAddress` accepts).
    /// An unparsable address never matches a rule that has an `address` condition.
    public func matches(initiatorName: String, address clientAddress: String) -> Bool {
        matches(initiatorName: initiatorName, address: IPAddress(clientAddress))
    }

    public func matches(initiatorName: String, address clientAddress: IPAddress?) -> Bool {
        if let glob = initiator, !Glob.matches(pattern: glob, name: initiatorName) { return false }
        if let re = initiatorRegex, !AccessRule.regexMatches(re, initiatorName) { return false }
        if let net = address {
            guard let a = clientAddress, net.contains(a) else { return false }
        }
        return true
    }

    /// First-match-wins evaluation of an ordered rule list; returns the deciding rule's index too.
    public static func evaluate(
        _ rules: [AccessRule], initiatorName: String, address: String
    ) -> (action: AccessAction, ruleIndex: Int?) {
        if rules.isEmpty { return (.allow, nil) }
        let a = IPAddress(address)
        for (i, r) in rules.enumerated() where r.matches(initiatorName: initiatorName, address: a) {
            return (r.action, i)
        }
        return (.deny, nil)
    }

    /// Nil when the pattern compiles, else the reason.
    public static func regexError(_ pattern: String) -> String? {
        do {
            _ = try NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
            return nil
        } catch {
            return "invalid regular expression \"\(pattern)\""
        }
    }

    static func regexMatches(_ pattern: String, _ name: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: [.caseInsensitive]) else {
            return false
        }
        let range = NSRange(name.startIndex..., in: name)
        return re.firstMatch(in: name, options: [], range: range) != nil
    }

    enum CodingKeys: String, CodingKey { case action, initiator, initiatorRegex, address, comment }
}

/// Shell-style glob matching used for initiator patterns (case-insensitive).
public enum Glob {
    public static func matches(pattern: String, name: String) -> Bool {
        match(Array(pattern.lowercased()), 0, Array(name.lowercased()), 0)
    }

    private static func match(_ p: [Character], _ pi0: Int, _ s: [Character], _ si0: Int) -> Bool {
        var pi = pi0, si = si0
        var starP = -1, starS = -1
        while si < s.count {
            if pi < p.count {
                let c = p[pi]
                if c == "*" {
                    starP = pi; starS = si; pi += 1; continue
                }
                if c == "?" { pi += 1; si += 1; continue }
                if c == "[", let (ok, next) = matchClass(p, pi, s[si]) {
                    if ok { pi = next; si += 1; continue }
                } else if c == "\\", pi + 1 < p.count {
                    if p[pi + 1] == s[si] { pi += 2; si += 1; continue }
                } else if c == s[si] {
                    pi += 1; si += 1; continue
                }
            }
            if starP >= 0 {
                pi = starP + 1; starS += 1; si = starS; continue
            }
            return false
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Returns (matched, index after the class) or nil if `[` does not start a valid class.
    private static func matchClass(_ p: [Character], _ start: Int, _ ch: Character) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count, p[i] == "!" || p[i] == "^" { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < p.count {
            if p[i] == "]" && !first { return (matched != negate, i + 1) }
            first = false
            if i + 2 < p.count, p[i + 1] == "-", p[i + 2] != "]" {
                if p[i] <= ch && ch <= p[i + 2] { matched = true }
                i += 3
            } else {
                if p[i] == ch { matched = true }
                i += 1
            }
        }
        return nil
    }
}

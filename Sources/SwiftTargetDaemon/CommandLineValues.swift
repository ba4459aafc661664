import ArgumentParser
import Foundation

/// A listening address, `HOST:PORT`, `[IPv6]:PORT` or `HOST` (port 3260, RFC 7143 §13.4 default).
struct Portal {
    var host: String
    var port: Int

    var advertised: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func parse(_ text: String) throws -> Portal {
        var host = text
        var port = 3260
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ValidationError("portal '\(text)': missing ']'") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = try parsePort(String(rest.dropFirst()), text) }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            port = try parsePort(String(text[text.index(after: colon)...]), text)
        }
        guard !host.isEmpty else { throw ValidationError("portal '\(text)': empty host") }
        return Portal(host: host, port: port)
    }

    private static func parsePort(_ value: String, _ text: String) throws -> Int {
        guard let port = Int(value), (1...65535).contains(port) else {
            throw ValidationError("portal '\(text)': port must be 1…65535")
        }
        return port
    }
}

/// `USER:SECRET` from the command line.
struct Credential {
    var user: String
    var secret: String

    static func parse(_ text: String, option: String) throws -> Credential {
        guard let colon = text.firstIndex(of: ":") else { throw ValidationError("\(option) wants USER:SECRET") }
        let user = String(text[..<colon])
        let secret = String(text[text.index(after: colon)...])
        guard !user.isEmpty, !secret.isEmpty else { throw ValidationError("\(option): user and secret must not be empty") }
        guard !user.contains(where: \.isWhitespace), !secret.contains(where: \.isWhitespace) else {
            throw ValidationError("\(option): no whitespace in user or secret")
        }
        return Credential(user: user, secret: secret)
    }
}

/// iSCSI names (RFC 7143 §4.2.7.1, RFC 3722 stringprep kept to the common ASCII subset).
enum IQN {
    static func isValid(_ name: String) -> Bool {
        guard name.utf8.count <= 223 else { return false }
        let lower = name.lowercased()
        guard lower == name else { return false }
        if name.hasPrefix("eui.") {
            let hex = name.dropFirst(4)
            return hex.count == 16 && hex.allSatisfy(\.isHexDigit)
        }
        if name.hasPrefix("naa.") {
            let hex = name.dropFirst(4)
            return (hex.count == 16 || hex.count == 32) && hex.allSatisfy(\.isHexDigit)
        }
        // iqn.YYYY-MM.reversed.domain[:anything]
        let parts = name.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "iqn" else { return false }
        let date = parts[1]
        guard date.count == 7, date[date.index(date.startIndex, offsetBy: 4)] == "-",
              date.replacingOccurrences(of: "-", with: "").allSatisfy(\.isNumber) else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-:")
        return !parts[2].isEmpty && parts[2].allSatisfy { allowed.contains($0) }
    }
}

/// Stable LUN identity: the same target, LUN and path give the same serial and NAA id on
/// every start, so initiators' multipath and udev names survive restarts.
struct LUNIdentity {
    var target: String
    var lun: UInt64
    var path: String

    var uniqueID: UInt64 {
        // FNV-1a 64 over "target|lun|path".
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(target)|\(lun)|\(path)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    var serialNumber: String {
        let hex = String(uniqueID, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

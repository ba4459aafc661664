// Key=value text data of Login and Text PDUs (RFC 7143 §6.1): UTF-8 "key=value" strings,
// each terminated by one NUL byte, order significant.

/// One key=value pair.
public struct TextKeyValue: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }

    public var description: String { "\(key)=\(value)" }
}

public enum TextKeysError: Error, Sendable, Hashable {
    /// The last pair is not NUL-terminated (text spanning PDUs must be joined first).
    case notNULTerminated
    /// A pair without '=' (the string up to the NUL is given).
    case missingEquals
    case emptyKey
    /// Key longer than 63 bytes or with characters outside a standard-label.
    case invalidKey(String)
    /// Value longer than permitted for its key.
    case valueTooLong(key: String)
    /// Key or value is not valid UTF-8.
    case invalidUTF8
    /// The same key twice in one text (RFC 7143 §6.1: a key may appear once per request).
    case duplicateKey(String)
}

public enum TextKeys {
    /// Longest key name (standard-label) in bytes.
    public static let maxKeyLength = 63
    /// Longest value in bytes unless a key allows more.
    public static let maxValueLength = 255
    /// CHAP_C / CHAP_R are large-binary-values of at most 1024 bytes (RFC 7143 §12.1.3);
    /// their longest encoding is hex: "0x" + 2048 digits.
    public static let maxLargeBinaryEncodedLength = 2 + 2 * 1024

    /// Longest value (in bytes, encoded) accepted for `key`.
    public static func maxValueLength(forKey key: String) -> Int {
        switch key {
        case "CHAP_C", "CHAP_R": return maxLargeBinaryEncodedLength
        default: return maxValueLength
        }
    }

    /// Parses text data into pairs, keeping order.
    /// - Parameter repeatable: keys that may legitimately occur more than once (e.g. TargetName and
    ///   TargetAddress in SendTargets responses); all others are rejected when repeated.
    public static func parse(_ data: some Collection<UInt8>, repeatable: Set<String> = [])
        throws(TextKeysError) -> [TextKeyValue]
    {
        var result: [TextKeyValue] = []
        var seen: Set<String> = []
        var current: [UInt8] = []
        current.reserveCapacity(64)
        for byte in data {
            if byte != 0 {
                current.append(byte)
                continue
            }
            defer { current.removeAll(keepingCapacity: true) }
            // Tolerate empty strings (extra NULs, e.g. padding passed in by mistake).
            if current.isEmpty { continue }
            let pair = try parsePair(current)
            if !repeatable.contains(pair.key) {
                guard seen.insert(pair.key).inserted else { throw .duplicateKey(pair.key) }
            }
            result.append(pair)
        }
        guard current.isEmpty else { throw .notNULTerminated }
        return result
    }

    private static func parsePair(_ bytes: [UInt8]) throws(TextKeysError) -> TextKeyValue {
        guard let eq = bytes.firstIndex(of: UInt8(ascii: "=")) else { throw .missingEquals }
        guard eq > 0 else { throw .emptyKey }
        let keyBytes = bytes[..<eq]
        let valueBytes = bytes[(eq + 1)...]
        guard let key = String(validating: keyBytes, as: UTF8.self) else { throw .invalidUTF8 }
        guard isValidKey(keyBytes) else { throw .invalidKey(String(key.prefix(maxKeyLength))) }
        guard valueBytes.count <= maxValueLength(forKey: key) else { throw .valueTooLong(key: key) }
        guard let value = String(validating: valueBytes, as: UTF8.self) else { throw .invalidUTF8 }
        return TextKeyValue(key, value)
    }

    /// A standard-label (RFC 7143 §6.1): letters, digits, '.', '-', '+', '@', '_', at most
    /// 63 bytes; extension keys additionally start with "X-" or "X#".
    static func isValidKey(_ bytes: some Collection<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maxKeyLength else { return false }
        for (i, b) in bytes.enumerated() {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "@"), UInt8(ascii: "_"):
                continue
            case UInt8(ascii: "#") where i == 1:
                continue
            default:
                return false
            }
        }
        return true
    }

    /// Encodes pairs as text data: each "key=value" followed by one NUL.
    public static func encode(_ pairs: [TextKeyValue]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 })
        for pair in pairs {
            out.append(contentsOf: pair.key.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: pair.value.utf8)
            out.append(0)
        }
        return out
    }

    /// Splits a list-valued key (comma separated, RFC 7143 §6.1 "list-of-values").
    public static func listValues(_ value: String) -> [String] {
        value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
}

extension Array where Element == TextKeyValue {
    /// The value of the first pair with `key`, if any.
    public func value(for key: String) -> String? {
        first { $0.key == key }?.value
    }
}

import Crypto
import _CryptoExtras
import Foundation

/// The web console's single admin account, stored as a salted PBKDF2-HMAC-SHA256 hash.
///
/// File format (UTF-8 text; `#` lines and blank lines are ignored; exactly one account line):
///
/// ```
/// # swift-targetd web console credentials
/// admin:pbkdf2-sha256$210000$<salt, base64>$<derived key, base64>
/// ```
///
/// The user name is everything before the first `:` (no whitespace or `:` in it); the hash
/// field is `pbkdf2-sha256$<rounds>$<salt>$<key>` with standard base64 (with padding), a salt
/// of 16 random bytes and a 32-byte key. Files with fewer than 100 000 rounds are refused.
/// Create one with `WebCredentials.make(password:)` (the daemon exposes it as
/// `swift-targetd web-password PATH`) and keep it mode 0600.
public struct WebCredentials: Sendable, Equatable {
    public static let defaultUser = "admin"
    public static let defaultRounds = 210_000
    public static let minimumRounds = 100_000

    public let user: String
    let rounds: Int
    let salt: [UInt8]
    let key: [UInt8]

    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses the text of a credentials file.
    public init(fileText: String) throws {
        let lines = fileText.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1, let line = lines.first else {
            throw FormatError(description: "expected exactly one line user:pbkdf2-sha256$rounds$salt$key")
        }
        guard let colon = line.firstIndex(of: ":") else { throw FormatError(description: "missing ':' after the user name") }
        let user = String(line[..<colon])
        guard !user.isEmpty, !user.contains(where: \.isWhitespace) else { throw FormatError(description: "invalid user name") }
        let parts = line[line.index(after: colon)...].split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256" else {
            throw FormatError(description: "hash must be pbkdf2-sha256$rounds$salt$key")
        }
        guard let rounds = Int(parts[1]), rounds >= Self.minimumRounds else {
            throw FormatError(description: "rounds must be a number ≥ \(Self.minimumRounds)")
        }
        guard let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8,
              let key = Data(base64Encoded: String(parts[3])), key.count >= 16
        else { throw FormatError(description: "salt or key is not valid base64") }
        self.user = user
        self.rounds = rounds
        self.salt = Array(salt)
        self.key = Array(key)
    }

    /// Reads a credentials file (see the type's documentation for the format).
    public static func load(path: String) throws -> WebCredentials {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let text = String(data: data, encoding: .utf8) else { throw FormatError(description: "\(path): not UTF-8") }
        do { return try WebCredentials(fileText: text) } catch let e as FormatError {
            throw FormatError(description: "\(path): \(e.description)")
        }
    }

    /// The text of a new credentials file for `password` (random salt, `rounds` PBKDF2 rounds).
    public static func make(password: String, user: String = defaultUser, rounds: Int = defaultRounds) throws -> String {
        guard !user.isEmpty, !user.contains(where: { $0.isWhitespace || $0 == ":" }) else {
            throw FormatError(description: "user name must be non-empty without whitespace or ':'")
        }
        guard !password.isEmpty else { throw FormatError(description: "password must not be empty") }
        guard rounds >= minimumRounds else { throw FormatError(description: "rounds must be ≥ \(minimumRounds)") }
        var g = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        let key = try derive(password: password, salt: salt, rounds: rounds)
        return """
            # swift-targetd web console credentials (PBKDF2-HMAC-SHA256); keep this file mode 0600
            \(user):pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())

            """
    }

    /// Constant-time check of a user name and password.
    public func verify(user: String, password: String) -> Bool {
        guard let derived = try? Self.derive(password: password, salt: salt, rounds: rounds, length: key.count) else { return false }
        let userOK = constantTimeEqual(Array(user.utf8), Array(self.user.utf8))
        return constantTimeEqual(derived, key) && userOK
    }

    static func derive(password: String, salt: [UInt8], rounds: Int, length: Int = 32) throws -> [UInt8] {
        let k = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: length, unsafeUncheckedRounds: rounds)
        return k.withUnsafeBytes { Array($0) }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    let n = max(a.count, b.count)
    for i in 0..<n {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        diff |= x ^ y
    }
    return diff == 0
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool { constantTimeEqual(Array(a.utf8), Array(b.utf8)) }

/// `n` random bytes as unpadded base64url (safe in cookies and form fields).
func randomToken(bytes n: Int = 32) -> String {
    var g = SystemRandomNumberGenerator()
    let b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    return Data(b).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

import Foundation

/// A field path inside the configuration, printed as `targets[1].luns[0].path`.
public struct ConfigPath: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }
    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    /// Parses `targets[1].luns[0].path` (used mainly by tests and callers building paths by hand).
    public init(stringLiteral value: String) {
        var comps = [Component]()
        for part in value.split(separator: ".", omittingEmptySubsequences: true) {
            var rest = Substring(part)
            if let b = rest.firstIndex(of: "[") {
                if b > rest.startIndex { comps.append(.key(String(rest[..<b]))) }
                rest = rest[b...]
                while rest.hasPrefix("["), let e = rest.firstIndex(of: "]") {
                    comps.append(.index(Int(rest[rest.index(after: rest.startIndex)..<e]) ?? 0))
                    rest = rest[rest.index(after: e)...]
                }
            } else {
                comps.append(.key(String(rest)))
            }
        }
        components = comps
    }

    public func key(_ k: String) -> ConfigPath { ConfigPath(components + [.key(k)]) }
    public func index(_ i: Int) -> ConfigPath { ConfigPath(components + [.index(i)]) }
    public func at(_ k: String, _ i: Int) -> ConfigPath { key(k).index(i) }
    public static func / (lhs: ConfigPath, rhs: String) -> ConfigPath { lhs.key(rhs) }
    public subscript(i: Int) -> ConfigPath { index(i) }

    public var description: String {
        var s = ""
        for c in components {
            switch c {
            case .key(let k): s += s.isEmpty ? k : ".\(k)"
            case .index(let i): s += "[\(i)]"
            }
        }
        return s.isEmpty ? "(root)" : s
    }
}

public enum Severity: String, Sendable, Codable, Hashable {
    case error
    case warning
}

/// One validation or load problem. `description` is the message shown to admins:
/// `/etc/swifttarget/config.json:14: targets[1].luns[0].path: must be an absolute path`.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var severity: Severity
    public var path: ConfigPath
    public var message: String
    /// Set when the diagnostic comes from a file.
    public var file: String?
    /// 1-based line in `file`, when known.
    public var line: Int?

    public init(_ severity: Severity, _ path: ConfigPath, _ message: String, file: String? = nil, line: Int? = nil) {
        self.severity = severity
        self.path = path
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        var prefix = ""
        if let file { prefix = file + (line.map { ":\($0)" } ?? "") + ": " }
        let tag = severity == .warning ? "warning: " : ""
        return "\(prefix)\(tag)\(path): \(message)"
    }
}

/// Thrown by `ConfigFile.load`/`decode` and `ConfigStore.save` when there are errors.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Errors first; warnings found alongside are included too.
    public var diagnostics: [ConfigDiagnostic]
    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .warning } }
    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }
    /// Every error, then the warnings apart.
    public var description: String {
        let w = warnings
        return (errors.map(\.description) + (w.isEmpty ? [] : ["\(w.count) warning\(w.count == 1 ? "" : "s"):"] + w.map(\.description)))
            .joined(separator: "\n")
    }
}

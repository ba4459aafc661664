import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A successfully loaded configuration and the warnings found while loading it.
public struct LoadedConfig: Sendable {
    public var config: Config
    public var warnings: [ConfigDiagnostic]
    /// LUNs (`targets[i].luns[j]`) whose serial or NAA id was missing in the file and was
    /// generated while loading; the file must be saved to keep them (ConfigStore.load does).
    public var generatedIdentities: [ConfigPath] = []
}

/// An operating-system error while reading or writing the configuration file.
public struct ConfigIOError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32
    public var description: String { "\(path): \(operation) failed: \(String(cString: strerror(errno)))" }
}

/// Points where tests can interrupt `ConfigStore.save` to simulate a crash.
public struct AtomicWriteHooks: Sendable {
    /// Called with the temporary file's path after it was written and fsynced, before the rename.
    public var afterTempWrite: (@Sendable (String) throws -> Void)?
    public init(afterTempWrite: (@Sendable (String) throws -> Void)? = nil) { self.afterTempWrite = afterTempWrite }
}

/// JSON encoding and strict decoding of `Config`.
public enum ConfigFile {
    /// Canonical form: pretty-printed, keys sorted, trailing newline. Secrets are included.
    public static func encode(_ config: Config) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var d = try e.encode(config)
        d.append(0x0A)
        return d
    }

    /// Parses, strictly decodes and validates. Throws `ConfigError` listing every problem
    /// (`file:line: field.path: message`); on success returns the warnings.
    public static func decode(_ data: Data, fileName: String = "config.json") throws(ConfigError) -> LoadedConfig {
        let tree: JSONNode
        do {
            tree = try JSONTreeParser.parse(data)
        } catch {
            throw ConfigError([ConfigDiagnostic(.error, ConfigPath(), "invalid JSON at column \(error.column): \(error.message)",
                                                file: fileName, line: error.line)])
        }
        // Every problem in one pass: type errors, unknown fields, then what validation finds in
        // the rest (RepairingDecode).
        let decoding = RepairingDecode(tree)
        var diags = decoding.typeErrors.map { ConfigDiagnostic(.error, ConfigPath($0.path), $0.message, file: fileName, line: $0.line) }
        diags += decoding.unknown.map { path, line in
            ConfigDiagnostic(.error, path, "unknown field \"\(path.components.last.map { c -> String in if case .key(let k) = c { return k }; return "" } ?? "")\"",
                             file: fileName, line: line)
        }
        guard let config = decoding.config else { throw ConfigError(Self.ordered(diags)) }
        for var d in ConfigValidator.validate(config) {
            d.path = ConfigPath(decoding.original(d.path.components))
            if decoding.followsFromRemoval(d.path.components) { continue }
            d.file = fileName
            d.line = tree.locate(d.path.components).line
            diags.append(d)
        }
        if !decoding.typeErrors.isEmpty { throw ConfigError(Self.ordered(diags)) }
        var generated = [ConfigPath]()
        for (ti, t) in config.targets.enumerated() {
            for li in t.luns.indices {
                let p = ConfigPath().at("targets", ti).at("luns", li)
                for key in ["serial", "naaId"] where !tree.locate((p / key).components).exact {
                    generated.append(p / key)
                    diags.append(ConfigDiagnostic(.warning, p / key, "was missing; generated \(key == "serial" ? t.luns[li].serial : t.luns[li].naaId)",
                                                  file: fileName, line: tree.locate(p.components).line))
                }
            }
        }
        if diags.contains(where: { $0.severity == .error }) { throw ConfigError(Self.ordered(diags)) }
        return LoadedConfig(config: config, warnings: diags, generatedIdentities: generated)
    }

    /// Errors by line, then warnings by line.
    static func ordered(_ diags: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        diags.enumerated().sorted { a, b in
            (a.element.severity == .error ? 0 : 1, a.element.line ?? 0, a.offset) < (b.element.severity == .error ? 0 : 1, b.element.line ?? 0, b.offset)
        }.map(\.element)
    }
}

/// Reads and atomically writes the configuration file (mode 0600: it holds CHAP secrets).
public struct ConfigStore: Sendable {
    public var path: String
    public var hooks: AtomicWriteHooks
    /// The bytes this store last read from or wrote to the file. A file that holds anything
    /// else was edited by someone else meanwhile, and `save` refuses to overwrite it.
    private let known = KnownContents()

    public init(path: String, hooks: AtomicWriteHooks = AtomicWriteHooks()) {
        self.path = path
        self.hooks = hooks
    }

    public var fileExists: Bool { access(path, F_OK) == 0 }

    /// Loads and validates. Errors: `ConfigIOError` (cannot read) or `ConfigError` (content).
    /// Warns when the file is readable by group or others. When LUN identities had to be
    /// generated and `persistGeneratedIdentities` is true, the file is rewritten (atomically,
    /// canonical formatting) so the identities survive restarts.
    public func load(persistGeneratedIdentities: Bool = true) throws -> LoadedConfig {
        let (loaded, data) = try read()
        known.set(data)
        if persistGeneratedIdentities && !loaded.generatedIdentities.isEmpty {
            try save(loaded.config)
        }
        return loaded
    }

    /// Reads and validates the file as `load` does, without adopting it: what a reload
    /// applies (and then adopts with `save(_:replacing:)` or `adopt`).
    public func read() throws -> (loaded: LoadedConfig, data: Data) {
        let data = try contents()
        var loaded = try ConfigFile.decode(data, fileName: path)
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            loaded.warnings.insert(ConfigDiagnostic(
                .warning, ConfigPath(),
                "file mode is \(String(st.st_mode & 0o777, radix: 8)); it holds CHAP secrets and should be 600",
                file: path, line: nil), at: 0)
        }
        return (loaded, data)
    }

    private func contents() throws(ConfigIOError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code
            throw ConfigIOError(operation: "read", path: path, errno: Int32(code ?? Int(ENOENT)))
        }
    }

    /// Throws when the file holds something other than what this store last read or wrote
    /// (`expected`, when given, instead): a hand edit not yet reloaded. A file that is gone,
    /// or a store that never read one, has nothing to lose.
    public func checkUnchangedOnDisk(expected: Data? = nil) throws(ConfigChangedOnDisk) {
        guard let now = try? contents() else { return }
        let same = expected.map { $0 == now } ?? known.matches(now)
        if same == false { throw ConfigChangedOnDisk(path: path) }
    }

    /// Takes `data` (just read and applied) as what the file holds.
    public func adopt(_ data: Data) { known.set(data) }

    /// Validates, then writes atomically: temp file in the same directory (mode 0600), write,
    /// fsync, rename over the old file, fsync the directory. On any failure the old file is
    /// untouched and the temp file removed. Throws `ConfigError` if the config has errors.
    /// Returns the warnings.
    /// Refuses (`ConfigChangedOnDisk`) to overwrite a file edited since it was read: `replacing`
    /// names the contents a reload read, otherwise those last read or written.
    @discardableResult
    public func save(_ config: Config, replacing: Data? = nil) throws -> [ConfigDiagnostic] {
        let diags = config.validate()
        if diags.contains(where: { $0.severity == .error }) {
            throw ConfigError(diags.map { var d = $0; d.file = path; return d })
        }
        try checkUnchangedOnDisk(expected: replacing)
        let data = try ConfigFile.encode(config)
        try AtomicFile.write(data, to: path, mode: 0o600, hooks: hooks)
        known.set(data)
        return diags
    }
}

/// The configuration file was changed by someone else since the daemon read it.
public struct ConfigChangedOnDisk: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var description: String {
        "\(path) was changed on disk since the daemon read it, and nothing was changed: apply that edit with `swift-targetctl reload` (or SIGHUP) first, or undo it"
    }
}

/// Kept as bytes rather than `Data`: Data's enum hides its storage pointer in spare bits,
/// where LeakSanitizer cannot see it, so a Data kept for the process's life reads as a leak.
private final class KnownContents: Sendable {
    private let bytes = Mutex<[UInt8]?>(nil)
    func matches(_ data: Data) -> Bool? { bytes.withLock { $0.map { $0.elementsEqual(data) } } }
    func set(_ new: Data) { bytes.withLock { $0 = [UInt8](new) } }
}

/// Crash-safe replacement of a file's contents.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600, hooks: AtomicWriteHooks = AtomicWriteHooks()) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let base = url.lastPathComponent
        var rng = SystemRandomNumberGenerator()
        let tmp = dir + "/." + base + ".tmp-\(getpid())-\(String(rng.next() as UInt32, radix: 16))"

        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ConfigIOError(operation: "create", path: tmp, errno: errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            defer { close(fd) }
            // The umask may have cleared bits; set exactly `mode`.
            guard fchmod(fd, mode) == 0 else { throw ConfigIOError(operation: "chmod", path: tmp, errno: errno) }
            try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
                var off = 0
                while off < buf.count {
                    let n = sysWrite(fd, buf.baseAddress! + off, buf.count - off)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw ConfigIOError(operation: "write", path: tmp, errno: errno)
                    }
                    off += n
                }
            }
            guard fsync(fd) == 0 else { throw ConfigIOError(operation: "fsync", path: tmp, errno: errno) }
        }
        try hooks.afterTempWrite?(tmp)
        guard rename(tmp, path) == 0 else { throw ConfigIOError(operation: "rename", path: path, errno: errno) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            defer { close(dfd) }
            guard fsync(dfd) == 0 else { throw ConfigIOError(operation: "fsync", path: dir, errno: errno) }
        }
    }
}

private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

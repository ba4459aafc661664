#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
@testable import Backstores

/// A fresh directory under /tmp, removed when the value is dropped via `remove()`.
struct TempDir {
    let path: String

    init() {
        var template = Array("/tmp/backstores-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

func readBytes(_ store: any BlockStore, at offset: UInt64, count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xEE, count: count)
    try out.withUnsafeMutableBytes { try store.read(into: $0, at: offset) }
    return out
}

func writeBytes(_ store: any BlockStore, _ bytes: [UInt8], at offset: UInt64, durable: Bool = false) throws {
    try bytes.withUnsafeBytes { try store.write(from: $0, at: offset, durable: durable) }
}

/// Reads a file through a separate descriptor (what another process would see).
func readFileDirectly(_ path: String, at offset: UInt64, count: Int) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0)
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
    precondition(n == count)
    return out
}

func statPath(_ path: String) -> stat {
    var st = stat()
    precondition(stat(path, &st) == 0, "stat \(path)")
    return st
}

/// Opens a spec and returns the typed error it throws (or nil if it opened).
func openError(_ spec: BackstoreSpec) -> BackstoreOpenError? {
    do {
        let store = try openBackstore(spec)
        store.close()
        return nil
    } catch let error as BackstoreOpenError {
        return error
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

func backstoreError(_ body: () throws -> Void) -> BackstoreError? {
    do {
        try body()
        return nil
    } catch let error as BackstoreError {
        return error
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

/// Runs a program, returns (status, stdout, stderr).
func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus,
            String(decoding: outData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
            String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
}

/// Finds an executable in the usual system directories.
func which(_ name: String) -> String? {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] where access("\(dir)/\(name)", X_OK) == 0 {
        return "\(dir)/\(name)"
    }
    return nil
}

/// nil when equal, else a short description of the first difference (keeps failure
/// output readable instead of dumping megabyte arrays).
func diff(_ got: [UInt8], _ expected: [UInt8]) -> String? {
    if got == expected { return nil }
    let common = min(got.count, expected.count)
    if let i = (0..<common).first(where: { got[$0] != expected[$0] }) {
        return "first difference at byte \(i): got \(got[i]), expected \(expected[i]) (lengths \(got.count)/\(expected.count))"
    }
    return "lengths differ: got \(got.count), expected \(expected.count)"
}

/// A list appended to from several threads.
final class LockedList: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var storage: [String] = []

    func append(_ item: String) {
        lock.lock()
        storage.append(item)
        lock.unlock()
    }

    var items: [String] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

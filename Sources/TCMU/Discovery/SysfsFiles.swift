#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small sysfs/configfs file access (no Foundation in the data path).
public enum SysfsFiles {
    public static func read(_ path: String, limit: Int = 4096) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, limit - total) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            total += n
        }
        return String(decoding: bytes[0..<total], as: UTF8.self)
    }

    public static func readTrimmed(_ path: String) -> String? {
        read(path).map { String($0.drop(while: { $0 == " " }).prefix(while: { $0 != "\n" && $0 != "\0" })) }
    }

    public static func readUInt64(_ path: String) -> UInt64? {
        guard let t = readTrimmed(path) else { return nil }
        if t.hasPrefix("0x") { return UInt64(t.dropFirst(2), radix: 16) }
        return UInt64(t)
    }

    /// Writes `value`; returns 0 or the errno.
    @discardableResult
    public static func write(_ path: String, _ value: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let n = value.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        return n < 0 ? errno : 0
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates (or truncates) a regular file with `value`; returns 0 or the errno.
    @discardableResult
    public static func create(_ path: String, mode: mode_t, _ value: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let n = value.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        return n < 0 ? errno : (n == value.utf8.count ? 0 : EIO)
    }

    /// Entry names of a directory (no `.`/`..`).
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

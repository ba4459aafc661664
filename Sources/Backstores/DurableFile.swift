#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO

/// A small file replaced whole and durably: a new content is written to a temporary file
/// beside it, fsynced, renamed over it and the directory fsynced, so after a crash the file
/// holds either the old content or the new one, never a mix. For state a LU keeps through a
/// power loss (persistent reservations with APTPL), not for data.
public final class DurableFile: Sendable {
    public let path: String
    /// Larger contents are refused on reading (the file is not ours then).
    public static let maxBytes = 1 << 20

    public init(path: String) {
        self.path = path
    }

    /// The content, nil when the file does not exist.
    public func load() throws(BackstoreError) -> [UInt8]? {
        let fd = clinuxio_open(path, O_RDONLY | O_NOCTTY, 0)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw BackstoreError(.open, errno: errno, path: path)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackstoreError(.read, errno: errno, path: path)
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > Self.maxBytes { throw BackstoreError(.read, errno: EFBIG, path: path) }
        }
    }

    /// Replaces the content; durable when it returns. On failure the old content stays.
    public func save(_ bytes: [UInt8]) throws(BackstoreError) {
        // What could not be read back is not written (EFBIG).
        if bytes.count > Self.maxBytes { throw BackstoreError(.write, errno: EFBIG, path: path) }
        let tmp = path + ".tmp"
        var fd = clinuxio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0o600)
        if fd < 0 && errno == ENOENT && (mkdir(directory, 0o700) == 0 || errno == EEXIST) {
            // The first save makes the directory (private: the state names initiators).
            try Self.sync(directory: Self.parent(of: directory))
            fd = clinuxio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0o600)
        }
        if fd < 0 { throw BackstoreError(.create, errno: errno, path: tmp) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let e = n < 0 ? errno : EIO
                close(fd); unlink(tmp)
                throw BackstoreError(.write, errno: e, path: tmp)
            }
            done += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd); unlink(tmp)
            throw BackstoreError(.flush, errno: e, path: tmp)
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw BackstoreError(.write, errno: e, path: path)
        }
        try syncDirectory()
    }

    /// Removes the file (durably); nothing to do when it does not exist.
    public func remove() throws(BackstoreError) {
        if unlink(path) != 0 {
            if errno == ENOENT { return }
            throw BackstoreError(.write, errno: errno, path: path)
        }
        try syncDirectory()
    }

    private var directory: String { Self.parent(of: path) }

    private func syncDirectory() throws(BackstoreError) { try Self.sync(directory: directory) }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func sync(directory dir: String) throws(BackstoreError) {
        let dfd = clinuxio_open(dir, O_RDONLY | O_DIRECTORY, 0)
        if dfd < 0 { throw BackstoreError(.open, errno: errno, path: dir) }
        defer { close(dfd) }
        if fsync(dfd) != 0 { throw BackstoreError(.flush, errno: errno, path: dir) }
    }
}

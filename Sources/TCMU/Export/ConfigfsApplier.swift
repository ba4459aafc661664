#if canImport(Glibc)
import Glibc
#endif

/// Executes configfs steps under a root (the real `/sys/kernel/config/target`, or a
/// temp dir in tests).
public struct ConfigfsApplier: Sendable {
    public var root: String

    public init(root: String = "/sys/kernel/config/target") {
        self.root = root
    }

    public struct StepFailed: Error, Sendable, CustomStringConvertible {
        public var step: ConfigfsStep
        public var errno: Int32
        public var description: String { "\(step): \(String(cString: strerror(errno)))" }
    }

    /// Runs `steps` in order; stops at the first failure (creation) or, with
    /// `ignoringMissing`, skips steps whose object is already gone (teardown).
    public func apply(_ steps: [ConfigfsStep], ignoringMissing: Bool = false) throws {
        for step in steps {
            let e = run(step)
            if e == 0 { continue }
            if ignoringMissing && (e == ENOENT || e == ENOTDIR) { continue }
            throw StepFailed(step: step, errno: e)
        }
    }

    private func run(_ step: ConfigfsStep) -> Int32 {
        switch step {
        case .makeDirectory(let p):
            // mkdir -p: parents (iscsi/<iqn>) are created implicitly by configfs groups.
            var path = root
            for part in p.split(separator: "/") {
                path += "/" + part
                if mkdir(path, 0o755) != 0 && errno != EEXIST { return errno }
            }
            return 0
        case .write(let p, let v):
            return SysfsFiles.write(root + "/" + p, v)
        case .symlink(let t, let l):
            return symlink(root + "/" + t, root + "/" + l) == 0 || errno == EEXIST ? 0 : errno
        case .removeDirectory(let p):
            return rmdir(root + "/" + p) == 0 ? 0 : errno
        case .unlink(let p):
            return unlink(root + "/" + p) == 0 ? 0 : errno
        }
    }
}

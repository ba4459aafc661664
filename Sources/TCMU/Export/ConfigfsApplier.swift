#if canImport(Glibc)
import Glibc
#endif

/// Executes configfs steps under a root (the real `/sys/kernel/config/target`, or a
/// temp dir in tests).
public struct ConfigfsApplier: Sendable {
    public var root: String
    /// For tests on a plain directory: a write creates the attribute file and `rmdir`
    /// drops the files in the directory first, as configfs does with its attributes.
    public var emulatesConfigfs: Bool

    public init(root: String = "/sys/kernel/config/target", emulatesConfigfs: Bool = false) {
        self.root = root
        self.emulatesConfigfs = emulatesConfigfs
    }

    public struct StepFailed: Error, Sendable, CustomStringConvertible {
        public var step: ConfigfsStep
        public var errno: Int32
        /// CHAP secrets (`auth/password*`) are not repeated in the message.
        public var description: String {
            var shown = step
            if case .write(let p, _) = step, p.contains("/auth/password") { shown = .write(p, "<redacted>") }
            return "\(shown): \(String(cString: strerror(errno)))"
        }
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
            if emulatesConfigfs {
                // Attribute groups (attrib/, param/, auth/) exist by themselves in configfs.
                if let slash = p.lastIndex(of: "/") { _ = run(.makeDirectory(String(p[..<slash]))) }
                let fd = open(root + "/" + p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                if fd < 0 { return errno }
                close(fd)
            }
            return SysfsFiles.write(root + "/" + p, v)
        case .symlink(let t, let l):
            return symlink(root + "/" + t, root + "/" + l) == 0 || errno == EEXIST ? 0 : errno
        case .removeDirectory(let p):
            if emulatesConfigfs { removeAttributes(root + "/" + p) }
            return rmdir(root + "/" + p) == 0 ? 0 : errno
        case .unlink(let p):
            return unlink(root + "/" + p) == 0 ? 0 : errno
        }
    }

    /// Emulation of configfs `rmdir`: attribute files and attribute groups go with the
    /// directory; child objects (other directories) make it fail as in configfs.
    private func removeAttributes(_ path: String) {
        for name in SysfsFiles.list(path) {
            let child = path + "/" + name
            var st = stat()
            guard lstat(child, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFREG {
                unlink(child)
            } else if (st.st_mode & S_IFMT) == S_IFDIR, Self.attributeGroups.contains(name) {
                removeAttributes(child)
                rmdir(child)
            }
        }
    }

    private static let attributeGroups: Set<String> = ["attrib", "param", "auth", "wwn", "action", "alua", "pr", "statistics",
                                                                 "fabric_statistics", "lun", "np", "acls"]
}

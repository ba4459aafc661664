#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO

/// What to open: the `--lun kind:path,size=…` of the command line or a config entry.
public struct BackstoreSpec: Sendable, Equatable {
    public var kind: BackstoreKind
    public var path: String
    /// Size for a new image; must match an existing one when given.
    public var size: UInt64?
    public var readOnly: Bool
    /// O_DIRECT with aligned buffers (raw devices only).
    public var directIO: Bool
    /// The configuration's meaning of `size` for an existing image: grown when smaller,
    /// kept when larger. Without it (`serve`), an image of another size is refused.
    public var growsExistingImage: Bool
    /// Kind-specific `key=value` settings (`BackstoreKind.settings`), e.g. rbd's conf, id, keyring.
    public var options: [String: String] = [:]

    public init(kind: BackstoreKind, path: String, size: UInt64? = nil, readOnly: Bool = false, directIO: Bool = false,
                growsExistingImage: Bool = false) {
        self.kind = kind
        self.path = path
        self.size = size
        self.readOnly = readOnly
        self.directIO = directIO
        self.growsExistingImage = growsExistingImage
    }
}

/// Why a spec could not be parsed or opened, worded for an admin (`description`).
public struct BackstoreOpenError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The spec text or its values are malformed (parse errors, bad option combos).
        case invalidSpec
        /// The path does not exist (and no size was given to create it).
        case notFound
        /// `file:`/`sparse:` path is a directory, device, FIFO, …
        case notRegularFile
        /// `raw:` path is not a block device.
        case notBlockDevice
        /// An existing image or device has a different size than `size=` asked for.
        case sizeMismatch(actual: UInt64, requested: UInt64)
        /// A size is zero or not a multiple of the logical block size.
        case badSize
        /// Another process holds the image's exclusive lock.
        case inUse
        /// A system call failed with this errno.
        case system(errno: Int32)
    }

    public var reason: Reason
    public var path: String
    public var message: String

    public init(_ reason: Reason, path: String, message: String) {
        self.reason = reason
        self.path = path
        self.message = message
    }

    public var description: String { message }
}

/// Opens (creating where asked) the store a spec names. Errors say what is wrong with
/// which path, for an admin to read.
///
/// - `file:` a regular file; created fully allocated (mode 0600) when missing and
///   `size` is given.
/// - `sparse:` a regular file; created sparse (ftruncate) when missing and `size` given.
/// - `raw:` a block device; `size`, when given, must equal the device size.
///
/// Every store holds an exclusive `flock` on its file/device node, so a second opener
/// (another daemon, or this one) fails with `.inUse`.
public func openBackstore(_ spec: BackstoreSpec) throws -> any BlockStore {
    try openStore(for: spec)
}

/// The one way every runtime (`serve`, the configuration's TargetRuntime and LIORuntime,
/// the TCMU handler) opens a LUN's store.
public func openStore(for spec: BackstoreSpec) throws(BackstoreOpenError) -> any BlockStore {
    var spec = spec
    if spec.growsExistingImage, spec.kind.sizing == .byImage, spec.kind.locator == .path, let wanted = spec.size {
        var st = stat()
        if stat(spec.path, &st) == 0 {
            if UInt64(st.st_size) < wanted && !spec.readOnly { try resizeImage(kind: spec.kind, path: spec.path, to: wanted) }
            spec.size = nil  // an existing image keeps the size it has (now)
        }
    }
    return try openBackstoreTyped(spec)
}

/// Sets a running store's size (grow or shrink; callers refuse what they must not do).
public func resizeStore(_ store: any BlockStore, to size: UInt64) throws {
    if let image = store as? RBDImageStore {
        try image.resize(to: size)
    } else {
        try resizeImage(kind: store.kind, path: store.path, to: size)
    }
}

/// Sets an image file's size (grow or shrink; callers refuse what they must not do): `file`
/// images get a grown range allocated (posix_fallocate; a sparse extension where the file
/// system cannot preallocate), other images are extended sparse. Synced before it returns.
public func resizeImage(kind: BackstoreKind, path: String, to size: UInt64) throws(BackstoreOpenError) {
    guard kind.sizing == .byImage else {
        throw BackstoreOpenError(.invalidSpec, path: path, message: "\(path): a \(kind.rawValue) device has the size it has")
    }
    try validateSize(size, path: path)
    let fd = clinuxio_open(path, O_RDWR | O_NOCTTY, 0)
    if fd < 0 { throw systemError("open", path, -fd) }
    defer { Glibc.close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw systemError("stat", path, errno) }
    let old = UInt64(st.st_size)
    var done = false
    if kind == .file && size > old {
        let rc = clinuxio_allocate(fd, old, size - old)
        if rc == 0 {
            done = true
        } else if rc != -EOPNOTSUPP && rc != -ENOSYS && rc != -EINVAL {
            throw BackstoreOpenError(.system(errno: -rc), path: path, message: "cannot allocate \(size) bytes for \(path): \(errnoText(-rc))")
        }
    }
    if !done && ftruncate(fd, off_t(size)) != 0 { throw systemError("resize", path, errno) }
    if fdatasyncRetrying(fd) != 0 { throw systemError("sync", path, errno) }
}

/// `openBackstore` with the error type spelled out.
public func openBackstoreTyped(_ spec: BackstoreSpec) throws(BackstoreOpenError) -> any BlockStore {
    let path = spec.path
    guard !path.isEmpty else {
        throw BackstoreOpenError(.invalidSpec, path: path, message: "backstore path is empty")
    }
    if let size = spec.size {
        try validateSize(size, path: path)
    }
    switch spec.kind {
    case .file, .sparse:
        if spec.directIO {
            throw BackstoreOpenError(.invalidSpec, path: path, message: "\(spec.kind.rawValue):\(path): 'direct' is only supported for raw: block devices")
        }
        let core = try openImageFile(spec)
        do throws(BackstoreError) {
            return spec.kind == .file ? try FileStore(core: core) : try SparseImageStore(core: core)
        } catch {
            core.close()
            throw BackstoreOpenError(.system(errno: error.errno), path: path,
                                     message: "\(path): cannot replay its atomic write journal \(error.path): \(errnoText(error.errno))")
        }
    case .raw:
        return try openRawDevice(spec)
    case .rbd:
        return try openRBDImage(spec)
    }
}

let imageBlockSize: UInt64 = 512

func validateSize(_ size: UInt64, path: String) throws(BackstoreOpenError) {
    if size == 0 || size % imageBlockSize != 0 {
        throw BackstoreOpenError(.badSize, path: path, message: "\(path): size \(size) bytes is not a positive multiple of \(imageBlockSize)")
    }
}

func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

private func systemError(_ what: String, _ path: String, _ e: Int32) -> BackstoreOpenError {
    BackstoreOpenError(.system(errno: e), path: path, message: "cannot \(what) \(path): \(errnoText(e))")
}

private func fileTypeName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFBLK: return "a block device"
    case S_IFCHR: return "a character device"
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "not a regular file"
    }
}

/// flock(LOCK_EX|LOCK_NB); a lock still held after a second becomes `.inUse`. The wait covers
/// a store of this process that is closing the same image (a LUN re-added, a TCMU device
/// removed and added again): its descriptor, and the lock, go with its last in-flight command.
private func lockExclusively(_ fd: Int32, path: String) throws(BackstoreOpenError) {
    var waited = 0
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
        let e = errno
        if e == EINTR { continue }
        if e == EWOULDBLOCK {
            if waited < 20 {
                waited += 1
                usleep(50_000)
                continue
            }
            throw BackstoreOpenError(.inUse, path: path, message: "\(path) is in use by another process (it holds an exclusive lock on it)")
        }
        throw systemError("lock", path, e)
    }
}

private func fstatOrThrow(_ fd: Int32, path: String) throws(BackstoreOpenError) -> stat {
    var st = stat()
    if fstat(fd, &st) != 0 { throw systemError("stat", path, errno) }
    return st
}

/// Opens `path` a second time O_DSYNC (+ `extraFlags`) for durable writes and checks it
/// is the same inode as `st`.
private func openDurable(_ path: String, extraFlags: Int32, matching st: stat) throws(BackstoreOpenError) -> FDHandle {
    let fd = clinuxio_open(path, O_RDWR | O_DSYNC | O_NOCTTY | extraFlags, 0)
    if fd < 0 { throw systemError("open (O_DSYNC)", path, -fd) }
    let handle = FDHandle(fd)
    let st2 = try fstatOrThrow(fd, path: path)
    if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino || st2.st_rdev != st.st_rdev {
        handle.close()
        throw BackstoreOpenError(.system(errno: ESTALE), path: path, message: "\(path) was replaced while it was being opened")
    }
    return handle
}

// MARK: - Image files

private func openImageFile(_ spec: BackstoreSpec) throws(BackstoreOpenError) -> StoreCore {
    let path = spec.path
    var st = stat()
    if stat(path, &st) != 0 {
        let e = errno
        guard e == ENOENT else { throw systemError("stat", path, e) }
        guard let size = spec.size else {
            throw BackstoreOpenError(.notFound, path: path, message: "\(path) does not exist; give size=… to create it (e.g. \(spec.kind.rawValue):\(path),size=1G)")
        }
        if spec.readOnly {
            throw BackstoreOpenError(.notFound, path: path, message: "\(path) does not exist and cannot be created read-only")
        }
        if let core = try createImageFile(spec, size: size) { return core }
        // Lost a creation race: someone else made it meanwhile; open it like any other.
    }
    return try openExistingImageFile(spec)
}

/// Creates a new image (O_EXCL, mode 0600). Returns nil if the file appeared meanwhile.
private func createImageFile(_ spec: BackstoreSpec, size: UInt64) throws(BackstoreOpenError) -> StoreCore? {
    let path = spec.path
    let fd = clinuxio_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOCTTY, 0o600)
    if fd == -EEXIST { return nil }
    if fd < 0 { throw systemError("create", path, -fd) }
    let handle = FDHandle(fd)
    do throws(BackstoreOpenError) {
        try lockExclusively(fd, path: path)
        if spec.kind == .file {
            let rc = clinuxio_allocate(fd, 0, size)
            if rc == -EOPNOTSUPP || rc == -ENOSYS {
                // File system cannot preallocate: fall back to a (sparse) ftruncate.
                if ftruncate(fd, off_t(size)) != 0 { throw systemError("resize", path, errno) }
            } else if rc != 0 {
                throw BackstoreOpenError(.system(errno: -rc), path: path, message: "cannot allocate \(size) bytes for \(path): \(errnoText(-rc))")
            }
        } else if ftruncate(fd, off_t(size)) != 0 {
            throw systemError("resize", path, errno)
        }
        if fdatasyncRetrying(fd) != 0 { throw systemError("sync", path, errno) }
        let st = try fstatOrThrow(fd, path: path)
        let durable = try openDurable(path, extraFlags: 0, matching: st)
        return StoreCore(path: path, readOnly: false, main: handle, durable: durable, direct: nil, byteCount: size)
    } catch {
        unlink(path)
        handle.close()
        throw error
    }
}

private func openExistingImageFile(_ spec: BackstoreSpec) throws(BackstoreOpenError) -> StoreCore {
    let path = spec.path
    var st = stat()
    if stat(path, &st) != 0 {
        let e = errno
        if e == ENOENT {
            throw BackstoreOpenError(.notFound, path: path, message: "\(path) does not exist; give size=… to create it")
        }
        throw systemError("stat", path, e)
    }
    if st.st_mode & S_IFMT != S_IFREG {
        let hint = st.st_mode & S_IFMT == S_IFBLK ? " (use raw:\(path) for block devices)" : ""
        throw BackstoreOpenError(.notRegularFile, path: path, message: "\(path) is \(fileTypeName(st.st_mode)), not a regular image file\(hint)")
    }
    // O_NONBLOCK: never hang on a FIFO swapped in after the stat; harmless for files.
    let flags = (spec.readOnly ? O_RDONLY : O_RDWR) | O_NOCTTY | O_NONBLOCK
    let fd = clinuxio_open(path, flags, 0)
    if fd < 0 { throw systemError("open", path, -fd) }
    let handle = FDHandle(fd)
    do throws(BackstoreOpenError) {
        st = try fstatOrThrow(fd, path: path)
        if st.st_mode & S_IFMT != S_IFREG {
            throw BackstoreOpenError(.notRegularFile, path: path, message: "\(path) is \(fileTypeName(st.st_mode)), not a regular image file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        try lockExclusively(fd, path: path)
        let actual = UInt64(st.st_size)
        if let requested = spec.size, requested != actual {
            throw BackstoreOpenError(.sizeMismatch(actual: actual, requested: requested), path: path,
                message: "\(path) exists with size \(actual) bytes (\(formatSize(actual))), but size=\(requested) (\(formatSize(requested))) was requested; remove size= to use it as is")
        }
        if actual == 0 {
            throw BackstoreOpenError(.badSize, path: path, message: "\(path) is empty (0 bytes); delete it and give size=… to create it")
        }
        if actual % imageBlockSize != 0 {
            throw BackstoreOpenError(.badSize, path: path, message: "\(path) is \(actual) bytes, not a multiple of \(imageBlockSize); resize it (truncate -s) to a whole number of blocks")
        }
        let durable = spec.readOnly ? nil : try openDurable(path, extraFlags: 0, matching: st)
        return StoreCore(path: path, readOnly: spec.readOnly, main: handle, durable: durable, direct: nil, byteCount: actual)
    } catch {
        handle.close()
        throw error
    }
}

// MARK: - Block devices

private func openRawDevice(_ spec: BackstoreSpec) throws(BackstoreOpenError) -> RawDeviceStore {
    let path = spec.path
    var st = stat()
    if stat(path, &st) != 0 {
        let e = errno
        if e == ENOENT { throw BackstoreOpenError(.notFound, path: path, message: "\(path) does not exist (raw: needs an existing block device)") }
        throw systemError("stat", path, e)
    }
    if st.st_mode & S_IFMT != S_IFBLK {
        let hint = st.st_mode & S_IFMT == S_IFREG ? " (use file:\(path) or sparse:\(path) for image files)" : ""
        throw BackstoreOpenError(.notBlockDevice, path: path, message: "\(path) is \(fileTypeName(st.st_mode)), not a block device\(hint)")
    }
    let directFlag = spec.directIO ? clinuxio_o_direct_flag() : 0
    let flags = (spec.readOnly ? O_RDONLY : O_RDWR) | O_NOCTTY | directFlag
    let fd = clinuxio_open(path, flags, 0)
    if fd < 0 {
        let e = -fd
        if e == EINVAL && spec.directIO {
            throw BackstoreOpenError(.system(errno: e), path: path, message: "cannot open \(path) with O_DIRECT (direct): \(errnoText(e))")
        }
        throw systemError("open", path, e)
    }
    let handle = FDHandle(fd)
    do throws(BackstoreOpenError) {
        st = try fstatOrThrow(fd, path: path)
        if st.st_mode & S_IFMT != S_IFBLK {
            throw BackstoreOpenError(.notBlockDevice, path: path, message: "\(path) is \(fileTypeName(st.st_mode)), not a block device")
        }
        try lockExclusively(fd, path: path)
        var size: UInt64 = 0
        var rc = clinuxio_blk_getsize64(fd, &size)
        if rc != 0 { throw systemError("get the size (BLKGETSIZE64) of", path, -rc) }
        var lbs: Int32 = 0
        rc = clinuxio_blk_logical_block_size(fd, &lbs)
        if rc != 0 { throw systemError("get the block size (BLKSSZGET) of", path, -rc) }
        guard lbs >= 512, lbs & (lbs - 1) == 0 else {
            throw BackstoreOpenError(.badSize, path: path, message: "\(path) reports an unusable logical block size \(lbs)")
        }
        if let requested = spec.size, requested != size {
            throw BackstoreOpenError(.sizeMismatch(actual: size, requested: requested), path: path,
                message: "\(path) is \(size) bytes (\(formatSize(size))), but size=\(requested) (\(formatSize(requested))) was requested")
        }
        if size == 0 {
            throw BackstoreOpenError(.badSize, path: path, message: "\(path) has size 0 (no medium, or an unattached loop device?)")
        }
        let durable = spec.readOnly ? nil : try openDurable(path, extraFlags: directFlag, matching: st)
        let core = StoreCore(path: path, readOnly: spec.readOnly, main: handle, durable: durable,
                             direct: spec.directIO ? DirectIOConfig(alignment: Int(lbs)) : nil, byteCount: size)
        return RawDeviceStore(core: core, logicalBlockSize: Int(lbs), discardSupported: deviceAdvertisesDiscard(st.st_rdev))
    } catch {
        handle.close()
        throw error
    }
}

/// Reads /sys/dev/block/MAJ:MIN/queue/discard_max_bytes; true unless it says 0.
/// (Unknown → true: the first BLKDISCARD will tell.)
func deviceAdvertisesDiscard(_ rdev: dev_t) -> Bool {
    let dev = UInt64(rdev)
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
    let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
    guard let text = readSmallFile("/sys/dev/block/\(major):\(minor)/queue/discard_max_bytes") else { return true }
    let trimmed = text.filter { $0.isNumber }
    return UInt64(trimmed).map { $0 > 0 } ?? true
}

func readSmallFile(_ path: String) -> String? {
    let fd = clinuxio_open(path, O_RDONLY, 0)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    var bytes = [UInt8](repeating: 0, count: 256)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return nil }
    return String(decoding: bytes[0..<n], as: UTF8.self)
}

/// "1 GiB", "512 bytes", "1.5 MiB" — for messages.
func formatSize(_ bytes: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
    for (unit, name) in units where bytes >= unit {
        if bytes % unit == 0 { return "\(bytes / unit) \(name)" }
        let tenths = (bytes * 10 + unit / 2) / unit
        return "\(tenths / 10).\(tenths % 10) \(name)"
    }
    return "\(bytes) bytes"
}

import CTCMU
#if canImport(Glibc)
import Glibc
#endif

/// An open uio node and its mapping. The handler owns it; `close()` unmaps and closes.
public struct UIOMapping: @unchecked Sendable {
    public var fd: Int32
    public var base: UnsafeMutableRawPointer
    public var size: Int
    /// What undoes the mapping (munmap + close for a real device; the simulator's own).
    public var release: @Sendable () -> Void

    public init(fd: Int32, base: UnsafeMutableRawPointer, size: Int, release: @escaping @Sendable () -> Void) {
        self.fd = fd
        self.base = base
        self.size = size
        self.release = release
    }

    public struct OpenError: Error, Sendable, Equatable, CustomStringConvertible {
        public var step: String
        public var errno: Int32
        public var description: String { "\(step): \(String(cString: strerror(errno)))" }
    }

    /// Opens `/dev/<uio>` and maps exactly `maps/map0/size` bytes (anything else is EINVAL).
    public static func open(uio: String, sysfsClass: String, deviceDirectory: String) throws(OpenError) -> UIOMapping {
        guard let size = SysfsFiles.readUInt64("\(sysfsClass)/\(uio)/maps/map0/size"), size > 0 else {
            throw OpenError(step: "read \(sysfsClass)/\(uio)/maps/map0/size", errno: ENOENT)
        }
        let fd = Glibc.open("\(deviceDirectory)/\(uio)", O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw OpenError(step: "open \(deviceDirectory)/\(uio)", errno: errno) }
        var err: Int32 = 0
        guard let base = ctcmu_map(fd, size, &err) else {
            Glibc.close(fd)
            throw OpenError(step: "mmap \(deviceDirectory)/\(uio) (\(size) bytes)", errno: err)
        }
        let address = UInt(bitPattern: base)
        return UIOMapping(fd: fd, base: base, size: Int(size)) {
            _ = ctcmu_unmap(UnsafeMutableRawPointer(bitPattern: address), size)
            _ = ctcmu_close(fd)
        }
    }
}

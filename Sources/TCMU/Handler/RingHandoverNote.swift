#if canImport(Glibc)
import Glibc
#endif

/// The ring tail a cleanly stopping handler leaves for the next one (see `RingTakeover`):
/// one small file per device in the hand-over directory, read once and removed.
public struct RingHandoverNote: Sendable {
    public let path: String

    public init(directory: String, device name: UIODeviceName) {
        path = "\(directory)/user_\(name.hbaID)-\(name.device).tail"
    }

    /// The noted tail, if any; the note is gone afterwards, so a handler that crashes later
    /// is never taken for one that stopped cleanly.
    func take() -> UInt32? {
        defer { unlink(path) }
        return SysfsFiles.readTrimmed(path).flatMap { UInt32($0) }
    }

    /// Writes the tail: directories made (0700), a temporary file renamed over the note so a
    /// reader sees all of it or nothing. False if any step failed.
    func write(tail: UInt32) -> Bool {
        var dir = ""
        for part in path.split(separator: "/").dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { return false }
        }
        let temporary = path + ".new"
        guard SysfsFiles.create(temporary, mode: 0o600, "\(tail)\n") == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxIO
import Synchronization

/// Writes that land whole or not at all, even across a crash or power loss (WRITE ATOMIC,
/// SBC-4 4.29), for image files: a file system gives no such promise past one page, so the
/// data goes first to a journal file beside the image (`.NAME.atomic-journal`), durable; then
/// in place, durable; then the journal record is retired. Opening the image replays a
/// complete record that was never retired; a torn record (its checksum fails) was never
/// started in place, so it is dropped. One writer at a time: the engine holds the LU
/// exclusively for the whole write. Costs three durable writes.
final class AtomicWriteJournal: Sendable {
    /// The largest atomic write: one record.
    static let maxBytes = 1 << 20
    private static let headerSize = 64
    private static let magic: [UInt8] = Array("SWTATOM1".utf8)

    let path: String
    private let handle = Mutex<FDHandle?>(nil)

    init(imagePath: String) {
        let slash = imagePath.lastIndex(of: "/")
        let dir = slash.map { String(imagePath[...$0]) } ?? ""
        let name = slash.map { String(imagePath[imagePath.index(after: $0)...]) } ?? imagePath
        path = dir + "." + name + ".atomic-journal"
    }

    /// The journal descriptor, opened (and the file created, mode 0600) on first use.
    private func journal() throws(BackstoreError) -> FDHandle {
        try handle.withLock { (h: inout FDHandle?) throws(BackstoreError) -> FDHandle in
            if let h { return h }
            let fd = clinuxio_open(path, O_RDWR | O_CREAT | O_DSYNC | O_NOCTTY, 0o600)
            if fd < 0 { throw BackstoreError(.write, errno: -fd, path: path) }
            let opened = FDHandle(fd)
            h = opened
            return opened
        }
    }

    func close() {
        handle.withLock { $0?.close() }
    }

    /// Writes `data` at `offset` of the image through the journal.
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, into core: StoreCore) throws(BackstoreError) {
        precondition(data.count <= Self.maxBytes)
        let j = try journal()
        let record = Self.record(offset: offset, data: data)
        try Self.pwriteAll(j, record, at: 0, path: path)
        try core.write(from: data, at: offset, durable: true)
        try retire(j)
    }

    /// Applies a record a crash left pending, then retires it. Call before serving the image.
    func replay(into core: StoreCore) throws(BackstoreError) {
        let fd = clinuxio_open(path, O_RDWR | O_DSYNC | O_NOCTTY, 0)
        if fd == -ENOENT { return }
        if fd < 0 { throw BackstoreError(.read, errno: -fd, path: path) }
        let j = FDHandle(fd)
        handle.withLock { $0 = j }
        let header = try Self.pread(j, count: Self.headerSize, at: 0, path: path)
        let n = header.count
        guard n == Self.headerSize, Array(header[0 ..< 8]) == Self.magic, header[48] == 1,
              Self.checksum(header[0 ..< 40]) == Self.u64(header, 40) else { return }
        let offset = Self.u64(header, 16), length = Int(Self.u64(header, 24))
        guard length <= Self.maxBytes, offset + UInt64(length) <= core.byteCount else { try retire(j); return }
        let data = try Self.pread(j, count: length, at: UInt64(Self.headerSize), path: path)
        // A record whose data does not check out was torn before anything went in place.
        if data.count == length && Self.checksum(data) == Self.u64(header, 32) {
            var failure: BackstoreError?
            data.withUnsafeBytes { p in
                do throws(BackstoreError) { try core.write(from: p, at: offset, durable: true) } catch { failure = error }
            }
            if let failure { throw failure }
        }
        try retire(j)
    }

    /// State byte 0: nothing to replay (one byte, one sector: it cannot tear).
    private func retire(_ j: FDHandle) throws(BackstoreError) {
        try Self.pwriteAll(j, [0], at: 48, path: path)
    }

    /// A pending record: header, then the data.
    static func record(offset: UInt64, data: UnsafeRawBufferPointer) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: headerSize)
        h.replaceSubrange(0 ..< 8, with: magic)
        put(&h, 16, offset)
        put(&h, 24, UInt64(data.count))
        put(&h, 32, checksum(data))
        put(&h, 40, checksum(h[0 ..< 40]))
        h[48] = 1 // pending
        h.append(contentsOf: data)
        return h
    }

    private static func pwriteAll(_ j: FDHandle, _ bytes: [UInt8], at offset: UInt64, path: String) throws(BackstoreError) {
        let rc = try j.withFD(.write, path: path) { fd in
            bytes.withUnsafeBytes { p in pwriteFully(fd, p.baseAddress!, p.count, at: offset) }
        }
        if rc != 0 { throw BackstoreError(.write, errno: rc, path: path) }
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    private static func pread(_ j: FDHandle, count: Int, at offset: UInt64, path: String) throws(BackstoreError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try j.withFD(.read, path: path) { fd in
            out.withUnsafeMutableBytes { p in Glibc.pread(fd, p.baseAddress, p.count, off_t(offset)) }
        }
        if n < 0 { throw BackstoreError(.read, errno: errno, path: path) }
        return Array(out.prefix(n))
    }

    /// FNV-1a, 64 bits: enough to tell a torn record from a whole one.
    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    private static func put(_ h: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0 ..< 8 { h[at + i] = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) }
    }

    private static func u64(_ h: [UInt8], _ at: Int) -> UInt64 {
        (0 ..< 8).reduce(UInt64(0)) { $0 << 8 | UInt64(h[at + $1]) }
    }
}

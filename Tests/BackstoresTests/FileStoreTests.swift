#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
@testable import Backstores

@Suite("FileStore")
struct FileStoreTests {
    @Test("creates a fully allocated 0600 file of the requested size")
    func createsAllocated() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: 4 << 20))
        defer { store.close() }
        #expect(store is FileStore)
        #expect(store.kind == .file)
        #expect(store.path == path)
        #expect(store.byteCount == 4 << 20)
        #expect(store.logicalBlockSize == 512)
        #expect(!store.isThinProvisioned)
        #expect(!store.supportsDiscard)
        #expect(!store.isReadOnly)
        let st = statPath(path)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(UInt64(st.st_size) == 4 << 20)
        #expect(UInt64(st.st_blocks) * 512 >= 4 << 20, "fully allocated")
        #expect(try store.allocationState(at: 0, limit: .max) == AllocationExtent(mapped: true, length: 4 << 20))
        #expect(try store.allocationState(at: 1000, limit: 10) == AllocationExtent(mapped: true, length: 10))
        #expect(diff(try readBytes(store, at: 12345, count: 4096), [UInt8](repeating: 0, count: 4096)) == nil)
    }

    @Test("reopens an existing file with and without a matching size")
    func reopen() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let data = pattern(5000, seed: 1)
        do {
            let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20))
            try writeBytes(store, data, at: 777)
            store.close()
        }
        for size: UInt64? in [nil, 1 << 20] {
            let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: size))
            #expect(store.byteCount == 1 << 20)
            #expect(diff(try readBytes(store, at: 777, count: data.count), data) == nil)
            store.close()
        }
    }

    @Test("size mismatch names path, actual and requested size")
    func sizeMismatch() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20)).close()
        let error = try #require(openError(BackstoreSpec(kind: .file, path: path, size: 2 << 20)))
        #expect(error.reason == .sizeMismatch(actual: 1 << 20, requested: 2 << 20))
        #expect(error.description.contains(path))
        #expect(error.description.contains("1048576"))
        #expect(error.description.contains("2097152"))
    }

    @Test("missing file without size says how to create it")
    func missingWithoutSize() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("nope.img")
        for kind in [BackstoreKind.file, .sparse] {
            let error = try #require(openError(BackstoreSpec(kind: kind, path: path)))
            #expect(error.reason == .notFound)
            #expect(error.description.contains(path))
            #expect(error.description.contains("does not exist; give size="))
        }
        #expect(access(path, F_OK) != 0, "nothing was created")
        let ro = try #require(openError(BackstoreSpec(kind: .file, path: path, size: 1 << 20, readOnly: true)))
        #expect(ro.reason == .notFound)
    }

    @Test("directories and other non-regular files are rejected")
    func notRegular() throws {
        let dir = TempDir()
        defer { dir.remove() }
        for spec in [BackstoreSpec(kind: .file, path: dir.path), BackstoreSpec(kind: .sparse, path: dir.path, size: 1 << 20),
                     BackstoreSpec(kind: .file, path: dir.path, readOnly: true)] {
            let error = try #require(openError(spec))
            #expect(error.reason == .notRegularFile)
            #expect(error.description.contains("is a directory"))
            #expect(error.description.contains(dir.path))
        }
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = try #require(openError(BackstoreSpec(kind: .file, path: fifo, readOnly: true)))
        #expect(error.reason == .notRegularFile)
        #expect(error.description.contains("FIFO"))
        let dev = try #require(openError(BackstoreSpec(kind: .file, path: "/dev/null")))
        #expect(dev.reason == .notRegularFile)
    }

    @Test("sizes must be positive multiples of 512")
    func badSizes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        for size: UInt64 in [0, 1, 511, 513, 1_000_000] {
            let error = try #require(openError(BackstoreSpec(kind: .file, path: dir.file("a.img"), size: size)))
            #expect(error.reason == .badSize)
        }
        #expect(access(dir.file("a.img"), F_OK) != 0)
        // An existing odd-sized or empty file.
        let odd = dir.file("odd.img")
        _ = FileManager.default.createFile(atPath: odd, contents: Data(count: 1000))
        #expect(openError(BackstoreSpec(kind: .file, path: odd))?.reason == .badSize)
        let empty = dir.file("empty.img")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(openError(BackstoreSpec(kind: .sparse, path: empty))?.reason == .badSize)
        // direct is for raw devices only.
        #expect(openError(BackstoreSpec(kind: .file, path: dir.file("d.img"), size: 512, directIO: true))?.reason == .invalidSpec)
    }

    @Test("byte-exact read back at odd offsets and sizes", arguments: [BackstoreKind.file, .sparse])
    func oddOffsets(kind: BackstoreKind) throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let size = 2 << 20
        let store = try openBackstore(BackstoreSpec(kind: kind, path: path, size: UInt64(size)))
        defer { store.close() }
        var model = [UInt8](repeating: 0, count: size)
        let writes: [(Int, Int)] = [(0, 1), (1, 3), (511, 2), (513, 511), (4095, 4097), (65537, 100_000),
                                    (size - 1, 1), (size - 7000, 7000), (300_001, 1 << 20), (123, 65536)]
        for (i, (offset, count)) in writes.enumerated() {
            let data = pattern(count, seed: UInt64(i + 10))
            try writeBytes(store, data, at: UInt64(offset), durable: i % 2 == 0)
            model.replaceSubrange(offset..<offset + count, with: data)
        }
        for (offset, count) in writes + [(0, size), (17, 3), (size - 3, 3)] {
            #expect(diff(try readBytes(store, at: UInt64(offset), count: count), Array(model[offset..<offset + count])) == nil,
                    "read \(count) at \(offset)")
        }
        try store.flush()
        #expect(diff(readFileDirectly(path, at: 0, count: size), model) == nil)
        // Zero-length calls are no-ops.
        try store.read(into: UnsafeMutableRawBufferPointer(start: nil, count: 0), at: 5)
        try store.write(from: UnsafeRawBufferPointer(start: nil, count: 0), at: 5, durable: true)
    }

    @Test("reads beyond EOF are zero-filled")
    func readPastEOF() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("disk.img"), size: 8192))
        defer { store.close() }
        let tail = pattern(100, seed: 3)
        try writeBytes(store, tail, at: 8192 - 100)
        #expect(diff(try readBytes(store, at: 8192 - 100, count: 300), tail + [UInt8](repeating: 0, count: 200)) == nil)
        #expect(diff(try readBytes(store, at: 1 << 30, count: 64), [UInt8](repeating: 0, count: 64)) == nil)
    }

    @Test("durable writes are visible to another descriptor; read-only stores refuse writes")
    func durableAndReadOnly() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20))
        let data = pattern(12345, seed: 4)
        try writeBytes(store, data, at: 4096, durable: true)
        #expect(diff(readFileDirectly(path, at: 4096, count: data.count), data) == nil)
        try writeBytes(store, data.reversed(), at: 300_000, durable: false)
        try store.flush()
        #expect(diff(readFileDirectly(path, at: 300_000, count: data.count), data.reversed()) == nil)
        store.close()

        let ro = try openBackstore(BackstoreSpec(kind: .file, path: path, readOnly: true))
        defer { ro.close() }
        #expect(ro.isReadOnly)
        #expect(diff(try readBytes(ro, at: 4096, count: data.count), data) == nil)
        #expect(backstoreError { try writeBytes(ro, [1], at: 0) }?.errno == EROFS)
        #expect(backstoreError { try ro.discard(offset: 0, length: 512) }?.errno == EROFS)
        try ro.flush()
    }

    @Test("discard on a plain file zeroes the range and keeps it allocated")
    func fileDiscard() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let size = 1 << 20
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: UInt64(size)))
        defer { store.close() }
        let data = pattern(size, seed: 5)
        try writeBytes(store, data, at: 0)
        try store.flush()
        let blocksBefore = statPath(path).st_blocks
        try store.discard(offset: 1000, length: 200_000)
        var expected = data
        expected.replaceSubrange(1000..<201_000, with: [UInt8](repeating: 0, count: 200_000))
        #expect(diff(try readBytes(store, at: 0, count: size), expected) == nil)
        #expect(statPath(path).st_blocks == blocksBefore, "plain files stay allocated")
        // Past the end: clamped, never grows the file.
        try store.discard(offset: UInt64(size) - 512, length: 1 << 30)
        #expect(statPath(path).st_size == size)
        #expect(diff(try readBytes(store, at: UInt64(size) - 512, count: 512), [UInt8](repeating: 0, count: 512)) == nil)
    }

    @Test("zero-write fallback of discard works through the write path")
    func writeZerosFallback() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("disk.img"), size: 4 << 20))
        defer { store.close() }
        try writeBytes(store, pattern(4 << 20, seed: 6), at: 0)
        let core = try #require(store as? FileStore).core
        try core.writeZeros(offset: 3, length: 3 << 20)
        #expect(diff(try readBytes(store, at: 3, count: 3 << 20), [UInt8](repeating: 0, count: 3 << 20)) == nil)
        #expect(diff(try readBytes(store, at: 0, count: 3), Array(pattern(4 << 20, seed: 6)[0..<3])) == nil)
    }

    @Test("an exclusive lock keeps a second opener out", arguments: [BackstoreKind.file, .sparse])
    func exclusiveLock(kind: BackstoreKind) throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let first = try openBackstore(BackstoreSpec(kind: kind, path: path, size: 1 << 20))
        for readOnly in [false, true] {
            let error = try #require(openError(BackstoreSpec(kind: kind, path: path, readOnly: readOnly)))
            #expect(error.reason == .inUse)
            #expect(error.description.contains("in use by another process"))
            #expect(error.description.contains(path))
        }
        // Another process (flock(1)) sees the lock too.
        if let flockTool = which("flock") {
            let result = try run(flockTool, ["--nonblock", "--exclusive", path, "true"])
            #expect(result.status != 0, "flock(1) must not get the lock while the store is open")
        }
        first.close()
        first.close()  // idempotent
        let second = try openBackstore(BackstoreSpec(kind: kind, path: path))
        second.close()
    }

    @Test("closed stores fail with EBADF")
    func closedStore() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .sparse, path: dir.file("disk.img"), size: 1 << 20))
        store.close()
        #expect(backstoreError { _ = try readBytes(store, at: 0, count: 512) }?.errno == EBADF)
        #expect(backstoreError { try writeBytes(store, [1, 2], at: 0) }?.errno == EBADF)
        #expect(backstoreError { try store.flush() }?.errno == EBADF)
        #expect(backstoreError { try store.discard(offset: 0, length: 4096) }?.errno == EBADF)
        #expect(backstoreError { _ = try store.allocationState(at: 0, limit: 1) }?.errno == EBADF)
        #expect(backstoreError { try store.refreshSize() }?.errno == EBADF)
        let error = try #require(backstoreError { try store.flush() })
        #expect(error.operation == .flush)
        #expect(error.description.contains("Bad file descriptor"))
    }

    @Test("close() racing in-flight I/O only ever yields EBADF")
    func closeRace() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("disk.img"), size: 4 << 20))
        let data = pattern(64 << 10, seed: 9)
        try writeBytes(store, data, at: 0)
        // Plain threads (not the cooperative pool): these loops block in syscalls.
        let group = DispatchGroup()
        let failures = LockedList()
        for worker in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for _ in 0..<100_000 {  // bounded: never hangs the suite
                    do {
                        if worker % 2 == 0 {
                            let back = try readBytes(store, at: 0, count: data.count)
                            if let d = diff(back, data) { failures.append("read: \(d)") }
                        } else {
                            try writeBytes(store, data, at: 0, durable: worker == 3)
                        }
                    } catch let error as BackstoreError {
                        if error.errno != EBADF { failures.append("\(error)") }
                        return
                    } catch {
                        failures.append("\(error)")
                        return
                    }
                }
                failures.append("worker \(worker) never saw the close")
            }
        }
        usleep(50_000)
        store.close()
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(failures.items.isEmpty, "\(failures.items)")
    }

    @Test("refreshSize follows an externally grown file")
    func refresh() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("disk.img")
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20))
        defer { store.close() }
        #expect(truncate(path, 3 << 20) == 0)
        #expect(store.byteCount == 1 << 20)
        #expect(try store.refreshSize() == 3 << 20)
        #expect(store.byteCount == 3 << 20)
    }

    @Test("concurrent writers and readers on disjoint ranges")
    func concurrency() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("disk.img"), size: 8 << 20))
        defer { store.close() }
        let chunk = 64 << 10
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<16 {
                        let offset = UInt64((worker * 16 + round) * chunk)
                        let data = pattern(chunk, seed: offset)
                        try writeBytes(store, data, at: offset, durable: round % 4 == 0)
                        let back = try readBytes(store, at: offset, count: chunk)
                        #expect(diff(back, data) == nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(diff(try readBytes(store, at: UInt64(5 * 16 + 3) * UInt64(chunk), count: chunk), pattern(chunk, seed: UInt64((5 * 16 + 3) * chunk))) == nil)
    }
}

/// EXTENDED COPY's offload: copy_file_range between two image files, or within one.
@Suite struct StoreCopyTests {
    @Test func copiesBetweenFilesInTheKernel() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let a = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("a.img"), size: 1 << 20))
        let b = try openBackstore(BackstoreSpec(kind: .sparse, path: dir.file("b.img"), size: 1 << 20))
        defer { a.close(); b.close() }
        let data = pattern(64 << 10, seed: 5)
        try data.withUnsafeBytes { try a.write(from: $0, at: 4096, durable: false) }
        #expect(try a.copy(to: b, from: 4096, to: 8192, length: UInt64(data.count), durable: true))
        #expect(try readBytes(b, at: 8192, count: data.count) == data)
        #expect(try a.copy(to: a, from: 4096, to: 512 << 10, length: UInt64(data.count), durable: false))
        #expect(try readBytes(a, at: 512 << 10, count: data.count) == data)
        // Beyond the source's end there is nothing to copy: an error, not a short copy.
        #expect(throws: BackstoreError.self) { _ = try a.copy(to: b, from: (1 << 20) - 512, to: 0, length: 4096, durable: false) }
    }
}

/// WRITE ATOMIC's crash safety: the journal beside an image file.
@Suite struct AtomicWriteJournalTests {
    @Test func writesInPlaceAndRetiresTheRecord() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .sparse, path: dir.file("a.img"), size: 4 << 20))
        defer { store.close() }
        #expect(store.atomicWriteLimit == 1 << 20)
        let data = pattern(128 << 10, seed: 7)
        try data.withUnsafeBytes { try store.writeAtomically(from: $0, at: 4096) }
        #expect(try readBytes(store, at: 4096, count: data.count) == data)
        let journal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file(".a.img.atomic-journal"))))
        #expect(Array(journal[0 ..< 8]) == Array("SWTATOM1".utf8))
        #expect(journal[48] == 0, "retired: nothing to replay")
        var st = stat()
        #expect(stat(dir.file(".a.img.atomic-journal"), &st) == 0 && st.st_mode & 0o777 == 0o600)
    }

    /// A crash after the record was durable but before (or while) the data went in place:
    /// opening the image writes the whole record; a torn record is dropped.
    @Test func replaysAPendingRecordAndDropsATornOne() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("b.img")
        let journalPath = dir.file(".b.img.atomic-journal")
        try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20)).close()
        let data = pattern(64 << 10, seed: 9)
        var record = data.withUnsafeBytes { AtomicWriteJournal.record(offset: 8192, data: $0) }
        // Half the data reached the image before the crash.
        let half = try openBackstore(BackstoreSpec(kind: .file, path: path))
        try writeBytes(half, Array(data[0 ..< 32 << 10]), at: 8192)
        half.close()
        try Data(record).write(to: URL(fileURLWithPath: journalPath))
        let reopened = try openBackstore(BackstoreSpec(kind: .file, path: path))
        #expect(try readBytes(reopened, at: 8192, count: data.count) == data)
        reopened.close()
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: journalPath)))[48] == 0)
        // A torn record (its last byte never written): not applied.
        record[record.count - 1] ^= 0xFF
        record.replaceSubrange(16 ..< 24, with: [0, 0, 0, 0, 0, 0, 0, 0]) // would land at 0
        let header = Array(record[0 ..< 40])
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in header { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        for i in 0 ..< 8 { record[40 + i] = UInt8(truncatingIfNeeded: h >> (56 - 8 * UInt64(i))) }
        try Data(record).write(to: URL(fileURLWithPath: journalPath))
        let again = try openBackstore(BackstoreSpec(kind: .file, path: path))
        defer { again.close() }
        #expect(try readBytes(again, at: 0, count: 4096) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func devicesAndReadOnlyImagesPromiseNothing() throws {
        let dir = TempDir()
        defer { dir.remove() }
        try openBackstore(BackstoreSpec(kind: .file, path: dir.file("c.img"), size: 1 << 20)).close()
        let ro = try openBackstore(BackstoreSpec(kind: .file, path: dir.file("c.img"), readOnly: true))
        defer { ro.close() }
        #expect(ro.atomicWriteLimit == 0)
        #expect(throws: BackstoreError.self) { try [UInt8](repeating: 1, count: 512).withUnsafeBytes { try ro.writeAtomically(from: $0, at: 0) } }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
@testable import Backstores

/// A loop device over a 64 MiB file in a temp dir, detached by `detach()`.
struct LoopDevice {
    let dir: TempDir
    let backingFile: String
    let device: String

    /// Nil (with an issue recorded) when no loop device can be set up, e.g. not root.
    static func make(size: Int = 64 << 20) -> LoopDevice? {
        let dir = TempDir()
        let backing = dir.file("loop-backing.img")
        guard FileManager.default.createFile(atPath: backing, contents: nil), truncate(backing, off_t(size)) == 0 else {
            Issue.record("cannot create the loop backing file \(backing)")
            dir.remove()
            return nil
        }
        guard let losetup = which("losetup") else {
            Issue.record("losetup not found: the raw block device tests did NOT run (install util-linux)")
            dir.remove()
            return nil
        }
        do {
            let result = try run(losetup, ["--find", "--show", backing])
            guard result.status == 0, result.out.hasPrefix("/dev/") else {
                Issue.record("cannot create a loop device (uid \(getuid()); these tests need root): losetup exited \(result.status): \(result.err)")
                dir.remove()
                return nil
            }
            return LoopDevice(dir: dir, backingFile: backing, device: result.out)
        } catch {
            Issue.record("cannot run losetup: \(error)")
            dir.remove()
            return nil
        }
    }

    func detach() {
        if let losetup = which("losetup") {
            let result = try? run(losetup, ["-d", device])
            if result?.status != 0 { Issue.record("losetup -d \(device) failed: \(result?.err ?? "?")") }
        }
        dir.remove()
    }
}

/// An owned buffer whose address is `misalign` bytes past a 4096 boundary.
final class OffsetBuffer {
    let raw: UnsafeMutableRawPointer
    let buffer: UnsafeMutableRawBufferPointer

    init(count: Int, misalign: Int) {
        var p: UnsafeMutableRawPointer?
        precondition(posix_memalign(&p, 4096, count + misalign + 4096) == 0)
        raw = p!
        buffer = UnsafeMutableRawBufferPointer(start: raw + misalign, count: count)
    }

    deinit { free(raw) }

    var bytes: [UInt8] { Array(buffer) }

    func fill(_ bytes: [UInt8]) {
        precondition(bytes.count == buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }
}

@Suite("RawDeviceStore on a real loop device", .serialized)
struct RawDeviceStoreTests {
    @Test("open, size, block size, byte-exact I/O, discard, refresh", arguments: [false, true])
    func loopDevice(directIO: Bool) throws {
        guard let loop = LoopDevice.make() else { return }
        defer { loop.detach() }
        let size = 64 << 20
        let store = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device, directIO: directIO))
        defer { store.close() }
        let raw = try #require(store as? RawDeviceStore)
        #expect(raw.isDirectIO == directIO)
        #expect(store.mayReadWithoutBlocking == !directIO, "O_DIRECT bypasses the page cache")
        #expect(store.kind == .raw)
        #expect(store.path == loop.device)
        #expect(store.byteCount == UInt64(size))
        #expect(store.logicalBlockSize == 512)
        #expect(!store.isThinProvisioned)
        #expect(store.supportsDiscard)
        #expect(try store.allocationState(at: 0, limit: .max) == AllocationExtent(mapped: true, length: UInt64(size)))
        #expect(try store.refreshSize() == UInt64(size))

        var model = [UInt8](repeating: 0, count: 4 << 20)
        // Aligned buffer, aligned offset: the zero-copy path.
        let aligned = OffsetBuffer(count: 1 << 20, misalign: 0)
        aligned.fill(pattern(1 << 20, seed: 21))
        try store.write(from: UnsafeRawBufferPointer(aligned.buffer), at: 0, durable: false)
        model.replaceSubrange(0..<(1 << 20), with: aligned.bytes)
        // Unaligned caller buffer (address % 512 != 0), aligned offset and length.
        let misaligned = OffsetBuffer(count: 8192, misalign: 3)
        misaligned.fill(pattern(8192, seed: 22))
        try store.write(from: UnsafeRawBufferPointer(misaligned.buffer), at: 1 << 20, durable: true)
        model.replaceSubrange((1 << 20)..<(1 << 20) + 8192, with: misaligned.bytes)
        // Unaligned offsets and lengths (read-modify-write of the edge blocks under O_DIRECT),
        // including one larger than the bounce buffer and one inside a single block.
        for (i, (offset, count)) in [(2_000_001, 3), (2_100_000, 5000), (2_200_000 + 511, 1_500_000), (100, 200), (1 << 20 + 8191, 2)].enumerated() {
            let data = pattern(count, seed: UInt64(30 + i))
            try writeBytes(store, data, at: UInt64(offset), durable: i % 2 == 1)
            model.replaceSubrange(offset..<offset + count, with: data)
        }
        // Read back through every alignment combination.
        #expect(diff(try readBytes(store, at: 0, count: model.count), model) == nil)
        for (offset, count, misalign) in [(0, 4096, 0), (1, 1000, 0), (513, 70_000, 7), (1 << 20, 8192, 1), (2_199_999, 1_600_000, 0)] {
            let out = OffsetBuffer(count: count, misalign: misalign)
            try store.read(into: out.buffer, at: UInt64(offset))
            #expect(diff(out.bytes, Array(model[offset..<offset + count])) == nil, "read \(count) at \(offset) misaligned by \(misalign)")
        }
        try store.flush()
        // Reads past the end of the device zero-fill.
        #expect(diff(try readBytes(store, at: UInt64(size) - 512, count: 1024), [UInt8](repeating: 0, count: 1024)) == nil)

        // Discard (aligned middle via BLKDISCARD, unaligned edges zeroed) reads back zeros.
        try store.discard(offset: 1000, length: 3 << 20)
        model.replaceSubrange(1000..<1000 + (3 << 20), with: [UInt8](repeating: 0, count: 3 << 20))
        #expect(diff(try readBytes(store, at: 0, count: model.count), model) == nil)
        #expect(store.supportsDiscard, "loop devices support BLKDISCARD")
        try store.flush()
        // The loop device punched holes in its backing file.
        #expect(Int(statPath(loop.backingFile).st_blocks) * 512 < 2 << 20)
    }

    @Test("discard falls back to zeroing when the device cannot discard")
    func discardFallback() throws {
        guard let loop = LoopDevice.make() else { return }
        defer { loop.detach() }
        let store = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device, directIO: true))
        defer { store.close() }
        let raw = try #require(store as? RawDeviceStore)
        // Same descriptor, but as if discard_max_bytes were 0: BLKZEROOUT / zero writes.
        let noDiscard = RawDeviceStore(core: raw.core, logicalBlockSize: raw.logicalBlockSize, discardSupported: false)
        #expect(!noDiscard.supportsDiscard)
        let data = pattern(1 << 20, seed: 50)
        try writeBytes(noDiscard, data, at: 0)
        try noDiscard.discard(offset: 777, length: 300_000)
        var expected = data
        expected.replaceSubrange(777..<300_777, with: [UInt8](repeating: 0, count: 300_000))
        #expect(diff(try readBytes(store, at: 0, count: 1 << 20), expected) == nil)
    }

    @Test("concurrent sub-block O_DIRECT writes to one block all land")
    func concurrentPartialBlockWrites() async throws {
        guard let loop = LoopDevice.make() else { return }
        defer { loop.detach() }
        let store = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device, directIO: true))
        defer { store.close() }
        let base: UInt64 = 1 << 20
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<32 {
                        // Each (worker, round) owns one byte of the same two blocks.
                        let offset = base + UInt64(round * 32 + worker * 4)
                        try writeBytes(store, [UInt8(worker + 1), UInt8(round + 1)], at: offset)
                    }
                }
            }
            try await group.waitForAll()
        }
        let back = try readBytes(store, at: base, count: 1024)
        for worker in 0..<8 {
            for round in 0..<32 {
                let i = round * 32 + worker * 4
                #expect(back[i] == UInt8(worker + 1) && back[i + 1] == UInt8(round + 1), "lost update at \(i)")
            }
        }
    }

    @Test("exclusive lock, read-only, wrong kinds, size mismatch")
    func loopDeviceErrors() throws {
        guard let loop = LoopDevice.make() else { return }
        defer { loop.detach() }
        let store = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device, size: 64 << 20))
        let busy = try #require(openError(BackstoreSpec(kind: .raw, path: loop.device)))
        #expect(busy.reason == .inUse)
        #expect(busy.description.contains("in use by another process"))
        try writeBytes(store, pattern(4096, seed: 40), at: 8192, durable: true)
        store.close()

        let ro = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device, readOnly: true, directIO: true))
        #expect(ro.isReadOnly)
        #expect(diff(try readBytes(ro, at: 8192, count: 4096), pattern(4096, seed: 40)) == nil)
        #expect(backstoreError { try writeBytes(ro, [0], at: 0) }?.errno == EROFS)
        #expect(backstoreError { try ro.discard(offset: 0, length: 4096) }?.errno == EROFS)
        ro.close()

        let mismatch = try #require(openError(BackstoreSpec(kind: .raw, path: loop.device, size: 1 << 20)))
        #expect(mismatch.reason == .sizeMismatch(actual: 64 << 20, requested: 1 << 20))
        #expect(mismatch.description.contains(loop.device))
        let asFile = try #require(openError(BackstoreSpec(kind: .file, path: loop.device)))
        #expect(asFile.reason == .notRegularFile)
        #expect(asFile.description.contains("use raw:"))
        // Refresh after the backing file grows (losetup -c re-reads its size).
        if let losetup = which("losetup") {
            let grown = try openBackstore(BackstoreSpec(kind: .raw, path: loop.device))
            defer { grown.close() }
            #expect(truncate(loop.backingFile, 96 << 20) == 0)
            #expect(try run(losetup, ["-c", loop.device]).status == 0)
            #expect(try grown.refreshSize() == 96 << 20)
            #expect(grown.byteCount == 96 << 20)
        }
    }

    @Test("raw: rejects regular files and missing paths (no root needed)")
    func rawRejectsNonDevices() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("img")
        try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20)).close()
        let error = try #require(openError(BackstoreSpec(kind: .raw, path: path)))
        #expect(error.reason == .notBlockDevice)
        #expect(error.description.contains("not a block device"))
        #expect(error.description.contains("use file:"))
        #expect(openError(BackstoreSpec(kind: .raw, path: dir.file("missing")))?.reason == .notFound)
        #expect(openError(BackstoreSpec(kind: .raw, path: "/dev/null"))?.reason == .notBlockDevice)
    }
}

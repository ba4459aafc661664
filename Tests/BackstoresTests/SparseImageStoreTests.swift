#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
@testable import Backstores

/// All extents of a store, walked with allocationState.
func extents(_ store: any BlockStore, limit: UInt64 = .max) throws -> [(offset: UInt64, mapped: Bool, length: UInt64)] {
    var result: [(UInt64, Bool, UInt64)] = []
    var offset: UInt64 = 0
    while offset < store.byteCount {
        let extent = try store.allocationState(at: offset, limit: limit)
        #expect(extent.length > 0)
        if extent.length == 0 { break }
        if let last = result.last, last.1 == extent.mapped, limit == .max {
            Issue.record("adjacent extents with the same state at \(offset)")
        }
        result.append((offset, extent.mapped, extent.length))
        offset += extent.length
    }
    #expect(offset == store.byteCount)
    return result
}

/// SEEK_HOLE from `offset` through a separate descriptor.
func nextHole(_ path: String, from offset: Int) -> Int {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    return lseek(fd, off_t(offset), 4 /* SEEK_HOLE */)
}

@Suite("SparseImageStore")
struct SparseImageStoreTests {
    @Test("creates a sparse file that reads as zeros and reports one hole")
    func createsSparse() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("thin.img")
        let store = try openBackstore(BackstoreSpec(kind: .sparse, path: path, size: 20 << 30))
        defer { store.close() }
        #expect(store is SparseImageStore)
        #expect(store.kind == .sparse)
        #expect(store.isThinProvisioned)
        #expect(store.supportsDiscard)
        #expect(store.byteCount == 20 << 30)
        let st = statPath(path)
        #expect(st.st_blocks == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(try store.allocationState(at: 0, limit: .max) == AllocationExtent(mapped: false, length: 20 << 30))
        #expect(try store.allocationState(at: 5 << 30, limit: 4096) == AllocationExtent(mapped: false, length: 4096))
        #expect(diff(try readBytes(store, at: (10 << 30) + 3, count: 70_000), [UInt8](repeating: 0, count: 70_000)) == nil)
        // At or past the end: empty extent.
        #expect(try store.allocationState(at: 20 << 30, limit: 1) == AllocationExtent(mapped: false, length: 0))
    }

    @Test("allocationState reports data and hole extents")
    func allocationExtents() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let store = try openBackstore(BackstoreSpec(kind: .sparse, path: dir.file("thin.img"), size: 16 << 20))
        defer { store.close() }
        try writeBytes(store, pattern(4096, seed: 1), at: 1 << 20)
        try writeBytes(store, pattern(8192, seed: 2), at: 8 << 20, durable: true)
        try writeBytes(store, pattern(4096, seed: 3), at: (16 << 20) - 4096)
        let all = try extents(store)
        #expect(all.map(\.mapped) == [false, true, false, true, false, true])
        let mib: UInt64 = 1 << 20
        let expectedOffsets: [UInt64] = [0, mib, mib + 4096, 8 * mib, 8 * mib + 8192, 16 * mib - 4096]
        #expect(all.map(\.offset) == expectedOffsets)
        // Limits cut extents; a start inside an extent measures from there.
        #expect(try store.allocationState(at: 100, limit: 1000) == AllocationExtent(mapped: false, length: 1000))
        #expect(try store.allocationState(at: (8 << 20) + 4096, limit: .max) == AllocationExtent(mapped: true, length: 4096))
        #expect(try store.allocationState(at: (16 << 20) - 100, limit: .max) == AllocationExtent(mapped: true, length: 100))
        let limited = try extents(store, limit: 3 << 20)
        #expect(limited.allSatisfy { $0.length <= 3 << 20 })
    }

    @Test("discard punches exactly the range; partial blocks at the edges read as zeros")
    func punchHoles() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("thin.img")
        let size = 1 << 20
        let store = try openBackstore(BackstoreSpec(kind: .sparse, path: path, size: UInt64(size)))
        defer { store.close() }
        let data = pattern(size, seed: 7)
        try writeBytes(store, data, at: 0)
        try store.flush()
        let blocksFull = statPath(path).st_blocks
        #expect(Int(blocksFull) * 512 >= size)
        #expect(try store.allocationState(at: 0, limit: .max) == AllocationExtent(mapped: true, length: UInt64(size)))

        // Unaligned both ends: 4096+100 ..< 4096+100+65536+1000.
        let start = 4096 + 100
        let length = 65536 + 1000
        try store.discard(offset: UInt64(start), length: UInt64(length))
        var expected = data
        expected.replaceSubrange(start..<start + length, with: [UInt8](repeating: 0, count: length))
        #expect(diff(try readBytes(store, at: 0, count: size), expected) == nil)
        #expect(diff(readFileDirectly(path, at: 0, count: size), expected) == nil)
        // The whole 4 KiB pages inside were deallocated: 8192 ..< 69632 (16 pages).
        #expect(nextHole(path, from: 0) == 8192)
        #expect(try store.allocationState(at: 8192, limit: .max) == AllocationExtent(mapped: false, length: 69632 - 8192))
        #expect(try store.allocationState(at: 4096, limit: .max) == AllocationExtent(mapped: true, length: 4096))
        let blocksAfter = statPath(path).st_blocks
        #expect(blocksFull - blocksAfter == (69632 - 8192) / 512)

        // A sub-block discard only zeroes.
        try store.discard(offset: 200_003, length: 10)
        #expect(diff(try readBytes(store, at: 200_000, count: 16), Array(data[200_000..<200_003]) + [UInt8](repeating: 0, count: 10) + Array(data[200_013..<200_016])) == nil)
        #expect(statPath(path).st_blocks == blocksAfter)

        // Discarding everything (and beyond the end) leaves an empty, same-sized file.
        try store.discard(offset: 0, length: UInt64(size) * 4)
        #expect(statPath(path).st_blocks == 0)
        #expect(statPath(path).st_size == size)
        #expect(diff(try readBytes(store, at: 0, count: size), [UInt8](repeating: 0, count: size)) == nil)
        #expect(try extents(store).map(\.mapped) == [false])
    }

    @Test("a sparse image can be reopened, also read-only")
    func reopen() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("thin.img")
        do {
            let store = try openBackstore(BackstoreSpec(kind: .sparse, path: path, size: 64 << 20))
            try writeBytes(store, pattern(1000, seed: 8), at: 33 << 20, durable: true)
            store.close()
        }
        let ro = try openBackstore(BackstoreSpec(kind: .sparse, path: path, size: 64 << 20, readOnly: true))
        defer { ro.close() }
        #expect(ro.isReadOnly)
        #expect(diff(try readBytes(ro, at: 33 << 20, count: 1000), pattern(1000, seed: 8)) == nil)
        #expect(try ro.allocationState(at: 33 << 20, limit: .max).mapped)
        let mismatch = try #require(openError(BackstoreSpec(kind: .sparse, path: dir.file("thin.img"), size: 32 << 20)))
        #expect(mismatch.reason == .inUse)  // lock is checked before size
    }
}

import Foundation
import Synchronization
import Testing
@testable import Backstores

/// Against a real cluster: runs when CEPH_CONF names one (scripts/rbd-test.sh starts one and
/// runs these); shown as skipped otherwise.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["CEPH_CONF"] != nil, "needs a Ceph cluster (CEPH_CONF)"))
struct RBDImageStoreTests {
    static func open(_ image: String, size: UInt64 = 64 << 20) throws -> RBDImageStore {
        var spec = BackstoreSpec(kind: .rbd, path: "rbd/\(image)", size: size)
        spec.options["conf"] = ProcessInfo.processInfo.environment["CEPH_CONF"]!
        return try openStore(for: spec) as! RBDImageStore
    }

    @Test func writeReadDiscardAndAllocation() throws {
        let name = "unit-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name)
        defer { store.close() }
        #expect(store.byteCount == 64 << 20 && store.objectSize == 4 << 20)
        var data = [UInt8](repeating: 0, count: 257 * 512)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        try data.withUnsafeBytes { try store.write(from: $0, at: 0, durable: true) }
        var back = [UInt8](repeating: 0, count: data.count)
        try back.withUnsafeMutableBytes { try store.read(into: $0, at: 0) }
        #expect(back == data)
        // Scattered buffers: one readv.
        var a = [UInt8](repeating: 0, count: 1000), b = [UInt8](repeating: 0, count: 3096)
        try a.withUnsafeMutableBytes { pa in try b.withUnsafeMutableBytes { pb in try store.read(into: [pa, pb], at: 100) } }
        #expect(a + b == Array(data[100..<4196]))
        try store.flush()
        // Data in a later object too: librbd reports objects out of order, the answer must not be.
        try data.withUnsafeBytes { try store.write(from: UnsafeRawBufferPointer(rebasing: $0[0..<4096]), at: 32 << 20, durable: false) }
        #expect(try store.allocationState(at: 512, limit: 1 << 20) == AllocationExtent(mapped: true, length: 256 * 512))
        #expect(try store.allocationState(at: 512, limit: 48 << 20) == AllocationExtent(mapped: true, length: 256 * 512))
        #expect(try store.allocationState(at: 257 * 512, limit: 48 << 20) == AllocationExtent(mapped: false, length: (32 << 20) - 257 * 512))
        #expect(try store.allocationState(at: 8 << 20, limit: 1 << 20) == AllocationExtent(mapped: false, length: 1 << 20))
        try store.discard(offset: 0, length: 512)
        var first = [UInt8](repeating: 0xFF, count: 512)
        try first.withUnsafeMutableBytes { try store.read(into: $0, at: 0) }
        #expect(first == [UInt8](repeating: 0, count: 512), "a discarded block reads as zeros")
        #expect(try store.allocationState(at: 512, limit: 1 << 20).mapped, "the next block is still mapped")
    }
}

extension RBDImageStoreTests {
    @Test func aResizeElsewhereIsNoticed() throws {
        let name = "watch-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name)
        defer { store.close() }
        let seen = Mutex(0)
        store.watchCapacity { seen.withLock { $0 += 1 } }
        // Another client (a second handle) grows the image, as `rbd resize` on another host would.
        let other = try Self.open(name)
        try other.resize(to: 96 << 20)
        other.close()
        for _ in 0..<50 where seen.withLock({ $0 }) == 0 { usleep(100_000) }
        #expect(seen.withLock { $0 } >= 1, "no capacity notification within 5 s")
        #expect(store.byteCount == 96 << 20)
    }
}

extension RBDImageStoreTests {
    /// Another gateway breaking our lock blocklists us: the store re-opens on a new
    /// connection and the write goes through.
    @Test func aBlocklistedClientReopens() throws {
        let name = "fence-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name)
        defer { store.close() }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        try block.withUnsafeBytes { try store.write(from: $0, at: 0, durable: true) }
        let address = try #require(try RBDCluster.connection(for: store.location).clientAddress)
        let ceph = Process()
        ceph.executableURL = URL(fileURLWithPath: "/usr/bin/ceph")
        ceph.arguments = ["osd", "blocklist", "add", address, "600"]
        try ceph.run()
        ceph.waitUntilExit()
        #expect(ceph.terminationStatus == 0, "ceph osd blocklist add \(address)")
        let other = [UInt8](repeating: 0x5A, count: 4096)
        try other.withUnsafeBytes { try store.write(from: $0, at: 4096, durable: true) }
        var back = [UInt8](repeating: 0, count: 8192)
        try back.withUnsafeMutableBytes { try store.read(into: $0, at: 0) }
        #expect(back == block + other)
        #expect(store.reopens == 1, "the write went through a re-opened image")
    }
}

extension RBDImageStoreTests {
    @Test func writeSameIsOneRequestRepeatingThePattern() throws {
        let store = try Self.open("same-\(UInt32.random(in: 0...UInt32.max))")
        defer { store.close() }
        let pattern = (0..<512).map { UInt8(truncatingIfNeeded: $0 ^ 0x3C) }
        try pattern.withUnsafeBytes { try store.writeRepeating($0, at: 4096, length: 3 << 20, durable: true) }
        var back = [UInt8](repeating: 0, count: (3 << 20) + 1024)
        try back.withUnsafeMutableBytes { try store.read(into: $0, at: 3584) }
        #expect(back[0..<512].allSatisfy { $0 == 0 } && back[back.count - 512 ..< back.count].allSatisfy { $0 == 0 })
        for block in stride(from: 512, to: (3 << 20) + 512, by: 512) where Array(back[block ..< block + 512]) != pattern {
            Issue.record("block at \(3584 + block) differs")
            break
        }
    }
}

extension RBDImageStoreTests {
    /// The callback path (CompletingBlockStore): librbd's thread answers, byte-exact.
    @Test func submittedReadsAndWritesCompleteByCallback() throws {
        let name = "callback-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name)
        defer { store.close() }
        let payload = (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ 3) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: payload.count, alignment: 4096)
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: payload.count, alignment: 4096)
        defer { out.deallocate(); into.deallocate() }
        out.copyBytes(from: payload)
        let done = DispatchSemaphore(value: 0)
        let errors = Mutex<[BackstoreError?]>([])
        store.submitWrite(from: UnsafeRawBufferPointer(out), at: 1 << 20) { error in
            errors.withLock { $0.append(error) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        store.submitRead(into: into, at: 1 << 20) { error in
            errors.withLock { $0.append(error) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(Array(into) == payload)
        // A read crossing the end: librbd clips it; the short count is an error.
        store.submitRead(into: into, at: store.byteCount - 512) { error in
            errors.withLock { $0.append(error) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        let seen = errors.withLock { $0 }
        #expect(seen.count == 3 && seen[0] == nil && seen[1] == nil)
        #expect(seen.last??.operation == .read && seen.last??.errno == EIO)
    }
}

extension RBDImageStoreTests {
    /// COMPARE AND WRITE at the OSD: through a second handle (another gateway) the compare
    /// sees what the first wrote, a mismatch names the exact byte and writes nothing.
    @Test func compareAndWriteIsDoneByTheCluster() throws {
        let name = "caw-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name)
        defer { store.close() }
        let other = try Self.open(name)
        defer { other.close() }
        let old = [UInt8](repeating: 0x11, count: 512), new = [UInt8](repeating: 0x22, count: 512)
        try old.withUnsafeBytes { try store.write(from: $0, at: 5 << 20, durable: true) }
        let matched = try old.withUnsafeBytes { e in try new.withUnsafeBytes { r in
            try other.compareAndWrite(expected: e, replacement: r, at: 5 << 20) } }
        #expect(matched == .written)
        var expected = new
        expected[300] = 0x99
        let missed = try expected.withUnsafeBytes { e in try old.withUnsafeBytes { r in
            try store.compareAndWrite(expected: e, replacement: r, at: 5 << 20) } }
        #expect(missed == .mismatch(offset: 300))
        var back = [UInt8](repeating: 0, count: 512)
        try back.withUnsafeMutableBytes { try store.read(into: $0, at: 5 << 20) }
        #expect(back == new)
        // Two blocks: not something librbd 16 can compare; the engine's lock does it.
        let two = [UInt8](repeating: 0, count: 1024)
        let wide = try two.withUnsafeBytes { e in try two.withUnsafeBytes { r in
            try store.compareAndWrite(expected: e, replacement: r, at: 0) } }
        #expect(wide == .unsupported)
    }
}

extension RBDImageStoreTests {
    /// The web console's image picker: the names `rbd ls` shows.
    @Test func aPoolListsItsImages() throws {
        let name = "listed-\(UInt32.random(in: 0...UInt32.max))"
        let store = try Self.open(name, size: 4 << 20)
        store.close()
        let options = ["conf": ProcessInfo.processInfo.environment["CEPH_CONF"]!]
        let names = try RBDPool.imageNames(pool: "rbd", options: options)
        #expect(names.contains(name))
        #expect(names == names.sorted())
        #expect(throws: BackstoreOpenError.self) { try RBDPool.imageNames(pool: "no-such-pool", options: options) }
    }
}

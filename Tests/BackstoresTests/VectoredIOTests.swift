#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Backstores

/// Vectored reads and writes (one preadv/pwritev for a scattered TCMU buffer) land the same
/// bytes as the one-buffer calls, on file and sparse stores (raw devices with O_DIRECT keep
/// the per-buffer path, which handles alignment).
@Suite("Vectored I/O")
struct VectoredIOTests {
    /// Uneven pieces, including empty ones and ones that are not block multiples.
    static let sizes = [4096, 0, 512, 7, 4096 * 3, 1, 8192 - 8]

    func buffers(_ total: Int) -> (UnsafeMutableRawBufferPointer, [UnsafeMutableRawBufferPointer]) {
        let whole = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 4096)
        var pieces: [UnsafeMutableRawBufferPointer] = []
        var at = 0
        for s in Self.sizes {
            pieces.append(UnsafeMutableRawBufferPointer(rebasing: whole[at ..< at + s]))
            at += s
        }
        return (whole, pieces)
    }

    @Test("write and read back scattered buffers", arguments: [
        BackstoreSpec(kind: .file, path: "", size: 1 << 20),
        BackstoreSpec(kind: .sparse, path: "", size: 1 << 20),
    ])
    func roundTrip(_ template: BackstoreSpec) throws {
        let dir = TempDir()
        defer { dir.remove() }
        var spec = template
        spec.path = dir.file("v.img")
        let store = try openBackstore(spec)
        defer { store.close() }
        let total = Self.sizes.reduce(0, +)
        let data = pattern(total, seed: 0xFEED)
        let (out, outPieces) = buffers(total)
        defer { out.deallocate() }
        out.copyBytes(from: data)
        let offset: UInt64 = 4096 * 5 + 512
        for durable in [false, true] {
            try store.write(from: outPieces, at: offset, durable: durable)
            #expect(try readBytes(store, at: offset, count: total) == data)
            #expect(readFileDirectly(spec.path, at: offset, count: total) == data)
            let (back, backPieces) = buffers(total)
            defer { back.deallocate() }
            try store.read(into: backPieces, at: offset)
            #expect(Array(back) == data)
            // Just written, so cached: the non-blocking form returns it too.
            let (fast, fastPieces) = buffers(total)
            defer { fast.deallocate() }
            #expect(store.readWithoutBlocking(into: fastPieces, at: offset))
            #expect(Array(fast) == data)
            #expect(store.mayReadWithoutBlocking)
        }
        // Past the end: refused by the range check, nothing read.
        let (tail, tailPieces) = buffers(total)
        defer { tail.deallocate() }
        #expect(!store.readWithoutBlocking(into: tailPieces, at: (1 << 20) - 4096))
    }

    @Test("a vectored write to a read-only store fails with EROFS")
    func readOnly() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("ro.img")
        try openBackstore(BackstoreSpec(kind: .file, path: path, size: 1 << 20)).close()
        let store = try openBackstore(BackstoreSpec(kind: .file, path: path, readOnly: true))
        defer { store.close() }
        let (buf, pieces) = buffers(Self.sizes.reduce(0, +))
        defer { buf.deallocate() }
        #expect(backstoreError { try store.write(from: pieces, at: 0, durable: false) }?.errno == EROFS)
    }
}

import Testing
@testable import ISCSIFabric

@Suite struct CRC32CTests {
    /// Bit-at-a-time reference implementation, independent of the tables.
    static func reference(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in data {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    static let readPDU: [UInt8] = [
        0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]

    /// RFC 3720 Appendix B.4: input and the digest bytes as they appear on the wire.
    static let vectors: [(String, [UInt8], UInt32, [UInt8])] = [
        ("32 bytes of zeros", [UInt8](repeating: 0, count: 32), 0x8A91_36AA, [0xAA, 0x36, 0x91, 0x8A]),
        ("32 bytes of ones", [UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43, [0x43, 0xAB, 0xA8, 0x62]),
        ("32 incrementing", (0..<32).map { UInt8($0) }, 0x46DD_794E, [0x4E, 0x79, 0xDD, 0x46]),
        ("32 decrementing", (0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C, [0x5C, 0xDB, 0x3F, 0x11]),
        ("iSCSI read PDU", readPDU, 0xD996_3A56, [0x56, 0x3A, 0x96, 0xD9]),
        ("check string", Array("123456789".utf8), 0xE306_9283, [0x83, 0x92, 0x06, 0xE3]),
    ]

    @Test(arguments: 0..<vectors.count)
    func rfc3720Vectors(index: Int) {
        let (_, input, crc, wire) = Self.vectors[index]
        #expect(CRC32C.checksum(input) == crc)
        #expect(Self.reference(input) == crc)
        let b = CRC32C.wireBytes(crc)
        #expect([b.0, b.1, b.2, b.3] == wire)
        #expect(CRC32C.value(wireBytes: b) == crc)
    }

    @Test func continuingOverEverySplitEqualsOnePass() {
        let data = Self.readPDU + (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let whole = CRC32C.checksum(data)
        for split in 0...data.count {
            let first = CRC32C.checksum(Array(data[..<split]))
            #expect(CRC32C.checksum(Array(data[split...]), continuing: first) == whole)
        }
        // Three pieces.
        let a = CRC32C.checksum(Array(data[..<7]))
        let b = CRC32C.checksum(Array(data[7..<61]), continuing: a)
        #expect(CRC32C.checksum(Array(data[61...]), continuing: b) == whole)
    }

    @Test func emptyInputReturnsPrevious() {
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([], continuing: 0x1234_5678) == 0x1234_5678)
    }

    @Test func unalignedAndLongBuffersMatchReference() {
        var rng = SplitMix64(seed: 42)
        let data = (0..<4099).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for offset in 0..<9 {
            let slice = Array(data[offset...])
            slice.withUnsafeBytes { whole in
                // Unaligned views into one buffer.
                let view = UnsafeRawBufferPointer(rebasing: whole[1...])
                #expect(CRC32C.checksum(view) == Self.reference(Array(slice[1...])))
            }
            #expect(CRC32C.checksum(slice) == Self.reference(slice))
        }
    }
}

/// The CPU path and the software path give the same digests, over every block-size boundary of
/// the three-way interleaving (8 KiB and 256-byte blocks) and every alignment.
@Suite struct CRC32CPathsTests {
    @Test func theCPUIsUsedWhereItCan() {
        #if arch(x86_64) || arch(arm64)
        #expect(CRC32C.hardware, "this CPU has CRC32C instructions; the digests should use them")
        #endif
    }

    @Test(arguments: 0..<CRC32CTests.vectors.count)
    func softwarePathMeetsTheRFCVectors(index: Int) {
        let (_, input, crc, _) = CRC32CTests.vectors[index]
        #expect(input.withUnsafeBytes { CRC32C.softwareChecksum($0) } == crc)
    }

    @Test func bothPathsAgreeOnEveryLengthAroundTheBlockSizes() {
        var rng = SplitMix64(seed: 7)
        let data = (0..<(3 * 8192 * 2 + 3 * 256 + 64)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var lengths = Set<Int>([0, 1, 7, 8, 9, 63, 64, 767, 768, 769, 4096])
        for base in [3 * 256, 3 * 8192, 3 * 8192 + 3 * 256, 2 * 3 * 8192] { for d in -9...9 { lengths.insert(base + d) } }
        data.withUnsafeBytes { all in
            for length in lengths.sorted() where length >= 0 {
                for offset in [0, 1, 3, 5] where offset + length <= all.count {
                    let view = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let software = CRC32C.softwareChecksum(view)
                    #expect(CRC32C.checksum(view) == software, "length \(length), offset \(offset)")
                    // Continuing from a previous value, as the data digest over several buffers does.
                    #expect(CRC32C.checksum(view, continuing: 0xDEAD_BEEF) == CRC32C.softwareChecksum(view, continuing: 0xDEAD_BEEF))
                }
            }
            let whole = UnsafeRawBufferPointer(rebasing: all[0..<(3 * 8192 + 100)])
            #expect(CRC32C.checksum(whole) == CRC32CTests.reference(Array(whole)))
        }
    }
}

/// Deterministic generator for tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import CCRC32C

// CRC32C (Castagnoli) for iSCSI header and data digests (RFC 7143 §13.1, RFC 3720 Appendix B.4).
//
// Polynomial 0x1EDC6F41 (reflected: 0x82F63B78), initial value 0xFFFFFFFF, reflected input
// and output, final complement. With the CPU's CRC instructions (SSE4.2 `crc32q`, ARMv8
// `crc32cx`; CModules/CCRC32C, three interleaved chains for large buffers) where the CPU has
// them, checked once at run time; otherwise slicing-by-8 with eight 256-entry tables computed
// once. Both are tested against the same vectors. `scripts/benchmark.sh crc32c` measures them.
//
// Wire byte order of a digest: the 32-bit CRC value is sent LEAST significant byte first
// (little-endian), i.e. for crc = 0x8A9136AA (32 zero bytes) the four bytes on the wire are
// AA 36 91 8A. This is the order RFC 3720 B.4 lists its examples in ("Byte:" lines), and it is
// what Linux / open-iscsi transmit. Use `wireBytes(_:)` to obtain them and `value(wireBytes:)`
// to read a received digest back. Note that this is the only little-endian field in iSCSI.

public enum CRC32C {
    /// Computes the CRC32C of `bytes`. With `previous` set to the result for preceding bytes,
    /// `checksum(b, continuing: checksum(a)) == checksum(a + b)`; the default 0 starts afresh.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return previous }
        if hardware { return ~ccrc32c_hw_update(~previous, base, bytes.count) }
        return softwareChecksum(bytes, continuing: previous)
    }

    /// Whether this CPU computes it (checked once).
    public static let hardware = ccrc32c_hw_available() != 0

    /// The software path, for the benchmark's comparison.
    public static func softwareChecksumForBenchmark(_ bytes: UnsafeRawBufferPointer) -> UInt32 { softwareChecksum(bytes) }

    /// Slicing-by-8, for CPUs without CRC instructions (and to test the hardware path against).
    static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        guard var pointer = bytes.baseAddress, bytes.count > 0 else { return previous }
        var remaining = bytes.count
        let t = tables
        t.withUnsafeBufferPointer { tb in
            let t0 = tb.baseAddress!
            // Align to 8 bytes so the 64-bit loads below are aligned.
            while remaining > 0 && (UInt(bitPattern: pointer) & 7) != 0 {
                crc = t0[Int((crc ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                pointer += 1
                remaining -= 1
            }
            while remaining >= 8 {
                let word = UInt64(littleEndian: pointer.load(as: UInt64.self))
                let lo = UInt32(truncatingIfNeeded: word) ^ crc
                let hi = UInt32(truncatingIfNeeded: word >> 32)
                crc = t0[7 * 256 + Int(lo & 0xFF)]
                    ^ t0[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t0[5 * 256 + Int((lo >> 16) & 0xFF)]
                    ^ t0[4 * 256 + Int(lo >> 24)]
                    ^ t0[3 * 256 + Int(hi & 0xFF)]
                    ^ t0[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t0[1 * 256 + Int((hi >> 16) & 0xFF)]
                    ^ t0[Int(hi >> 24)]
                pointer += 8
                remaining -= 8
            }
            while remaining > 0 {
                crc = t0[Int((crc ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                pointer += 1
                remaining -= 1
            }
        }
        return ~crc
    }

    /// Convenience for byte arrays and other contiguous collections.
    public static func checksum(_ bytes: [UInt8], continuing previous: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: previous) }
    }

    /// The four digest bytes in wire order (least significant byte first; see the file comment).
    public static func wireBytes(_ crc: UInt32) -> (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8),
         UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 24))
    }

    /// Reads a digest received on the wire (inverse of `wireBytes`).
    public static func value(wireBytes b: (UInt8, UInt8, UInt8, UInt8)) -> UInt32 {
        UInt32(b.0) | UInt32(b.1) << 8 | UInt32(b.2) << 16 | UInt32(b.3) << 24
    }

    /// Reflected Castagnoli polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// Slicing-by-8 tables, table k at offset k*256. Computed once on first use.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()
}

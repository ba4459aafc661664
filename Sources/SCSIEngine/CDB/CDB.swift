/// Big-endian field access on a CDB or parameter list that never reads past its end
/// (a short buffer reads as zeros; the length check is done once at dispatch).
struct ByteReader {
    let bytes: UnsafeRawBufferPointer

    @inline(__always) var count: Int { bytes.count }

    @inline(__always) subscript(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }

    @inline(__always) func u16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    @inline(__always) func u24(_ i: Int) -> UInt32 { UInt32(self[i]) << 16 | UInt32(self[i + 1]) << 8 | UInt32(self[i + 2]) }
    @inline(__always) func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) << 16 | UInt32(u16(i + 2)) }
    @inline(__always) func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) << 32 | UInt64(u32(i + 4)) }
    @inline(__always) func bit(_ i: Int, _ b: Int) -> Bool { self[i] & (1 << b) != 0 }
}

/// CDB length from the group code (SPC-4 4.2.5.1).
func cdbLength(opcode: UInt8) -> Int {
    switch opcode >> 5 {
    case 0: return 6
    case 1, 2: return 10
    case 4: return 16
    case 5: return 12
    default: return 6 // groups 3, 6, 7: variable or vendor; we check by command
    }
}

/// The decoded LBA/length of a READ/WRITE-family CDB (SBC-3 5.x).
struct BlockRange {
    var lba: UInt64
    var blocks: UInt64
    /// FUA bit (force unit access).
    var fua: Bool
}

/// Growable big-endian output for the small data-in answers (INQUIRY, MODE SENSE, ...).
struct ByteWriter {
    var bytes: [UInt8] = []
    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    mutating func ascii(_ s: String, width: Int) {
        var u = Array(s.utf8.prefix(width))
        while u.count < width { u.append(0x20) }
        bytes.append(contentsOf: u)
    }
    mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    var count: Int { bytes.count }
    mutating func set16(_ at: Int, _ v: UInt16) { bytes[at] = UInt8(v >> 8); bytes[at + 1] = UInt8(truncatingIfNeeded: v) }
    mutating func set32(_ at: Int, _ v: UInt32) { set16(at, UInt16(v >> 16)); set16(at + 2, UInt16(truncatingIfNeeded: v)) }
}

// Typed-throws wrappers: the standard library's withUnsafe*Bytes only rethrow `any Error`.
extension Array where Element == UInt8 {
    @inline(__always)
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let r: Result<R, E> = withUnsafeBytes { p in
            do throws(E) { return .success(try body(p)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    @inline(__always)
    mutating func withMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let r: Result<R, E> = withUnsafeMutableBytes { p in
            do throws(E) { return .success(try body(p)) } catch { return .failure(error) }
        }
        return try r.get()
    }
}

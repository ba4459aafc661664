import Backstores

// Helpers over caller-owned scatter/gather lists. The READ/WRITE paths hand the
// segments straight to the store; only small control payloads are gathered into arrays.
extension IOVectors {
    /// Calls `body` with consecutive slices of the segments covering bytes [0, length).
    @inline(__always)
    func forEachSegment<E: Error>(upTo length: Int, _ body: (UnsafeMutableRawBufferPointer, Int) throws(E) -> Void) throws(E) {
        var done = 0
        if length <= 0 { return }
        let n0 = Swift.min(first.count, length)
        if n0 > 0, let base = first.baseAddress {
            try body(UnsafeMutableRawBufferPointer(start: base, count: n0), 0)
            done = n0
        }
        if done >= length { return }
        for seg in more {
            let n = Swift.min(seg.count, length - done)
            if n > 0, let base = seg.baseAddress {
                try body(UnsafeMutableRawBufferPointer(start: base, count: n), done)
                done += n
            }
            if done >= length { return }
        }
    }

    /// The segments covering bytes [0, length), for one vectored store call.
    func segments(upTo length: Int) -> [UnsafeMutableRawBufferPointer] {
        var out: [UnsafeMutableRawBufferPointer] = []
        out.reserveCapacity(more.count + 1)
        forEachSegment(upTo: length) { seg, _ in out.append(seg) }
        return out
    }

    /// Copies `bytes` into the segments; returns how many fitted.
    @discardableResult
    func copyIn(_ bytes: [UInt8]) -> Int {
        let n = Swift.min(bytes.count, count)
        bytes.withUnsafeBytes { src in
            forEachSegment(upTo: n) { seg, off in
                seg.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[off ..< off + seg.count]))
            }
        }
        return n
    }

    /// Gathers the first `length` bytes (or fewer if the list is shorter) into an array.
    func gather(_ length: Int) -> [UInt8] {
        let n = Swift.min(length, count)
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { dst in
            forEachSegment(upTo: n) { seg, off in
                UnsafeMutableRawBufferPointer(rebasing: dst[off ..< off + seg.count]).copyMemory(from: UnsafeRawBufferPointer(seg))
            }
        }
        return out
    }

    /// The segments as a single contiguous view when there is only one (the common case).
    var contiguous: UnsafeMutableRawBufferPointer? { more.isEmpty ? first : nil }
}

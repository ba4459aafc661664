import Synchronization

/// Cumulative per-LU counters, lock-free: a few relaxed atomic adds per command.
/// Readers take a `snapshot()` (fields may be from slightly different instants).
public final class LUNStatisticsRecorder: Sendable {
    /// Upper bounds of the latency buckets in seconds; the last bucket is unbounded.
    public static let bucketBounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                0.25, 0.5, 1, 2.5]

    private let reads = Atomic<UInt64>(0)
    private let writes = Atomic<UInt64>(0)
    private let others = Atomic<UInt64>(0)
    private let bytesIn = Atomic<UInt64>(0)
    private let bytesOut = Atomic<UInt64>(0)
    private let errorCount = Atomic<UInt64>(0)
    private let latencyNanos = Atomic<UInt64>(0)
    // One counter per bucket (Atomic is non-copyable, so no array).
    private let b0 = Atomic<UInt64>(0), b1 = Atomic<UInt64>(0), b2 = Atomic<UInt64>(0), b3 = Atomic<UInt64>(0)
    private let b4 = Atomic<UInt64>(0), b5 = Atomic<UInt64>(0), b6 = Atomic<UInt64>(0), b7 = Atomic<UInt64>(0)
    private let b8 = Atomic<UInt64>(0), b9 = Atomic<UInt64>(0), b10 = Atomic<UInt64>(0), b11 = Atomic<UInt64>(0)
    private let b12 = Atomic<UInt64>(0), b13 = Atomic<UInt64>(0), b14 = Atomic<UInt64>(0)

    public init() {}

    public enum CommandClass: Sendable { case read, write, other }

    /// The command table's statistics class of the operation code.
    @inline(__always)
    static func classify(_ opcode: UInt8) -> CommandClass { CommandLookup.statisticsClass(opcode) }

    /// Counts one finished command.
    @inline(__always)
    func record(opcode: UInt8, result: SCSICommandResult, nanoseconds: UInt64) {
        switch Self.classify(opcode) {
        case .read:
            reads.add(1, ordering: .relaxed)
            bytesIn.add(UInt64(result.dataInCount), ordering: .relaxed)
        case .write:
            writes.add(1, ordering: .relaxed)
            if result.status == .good { bytesOut.add(UInt64(result.transferLength), ordering: .relaxed) }
        case .other:
            others.add(1, ordering: .relaxed)
        }
        if result.status != .good { errorCount.add(1, ordering: .relaxed) }
        latencyNanos.add(nanoseconds, ordering: .relaxed)
        countBucket(Self.bucketIndex(nanoseconds))
    }

    @inline(__always)
    static func bucketIndex(_ ns: UInt64) -> Int {
        // Bounds in ns: 100µs, 250µs, 500µs, 1ms, 2.5ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s.
        let bounds: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000)
        if ns <= bounds.0 { return 0 }
        if ns <= bounds.1 { return 1 }
        if ns <= bounds.2 { return 2 }
        if ns <= bounds.3 { return 3 }
        if ns <= bounds.4 { return 4 }
        if ns <= bounds.5 { return 5 }
        if ns <= bounds.6 { return 6 }
        if ns <= 25_000_000 { return 7 }
        if ns <= 50_000_000 { return 8 }
        if ns <= 100_000_000 { return 9 }
        if ns <= 250_000_000 { return 10 }
        if ns <= 500_000_000 { return 11 }
        if ns <= 1_000_000_000 { return 12 }
        if ns <= 2_500_000_000 { return 13 }
        return 14
    }

    private func countBucket(_ i: Int) {
        switch i {
        case 0: b0.add(1, ordering: .relaxed)
        case 1: b1.add(1, ordering: .relaxed)
        case 2: b2.add(1, ordering: .relaxed)
        case 3: b3.add(1, ordering: .relaxed)
        case 4: b4.add(1, ordering: .relaxed)
        case 5: b5.add(1, ordering: .relaxed)
        case 6: b6.add(1, ordering: .relaxed)
        case 7: b7.add(1, ordering: .relaxed)
        case 8: b8.add(1, ordering: .relaxed)
        case 9: b9.add(1, ordering: .relaxed)
        case 10: b10.add(1, ordering: .relaxed)
        case 11: b11.add(1, ordering: .relaxed)
        case 12: b12.add(1, ordering: .relaxed)
        case 13: b13.add(1, ordering: .relaxed)
        default: b14.add(1, ordering: .relaxed)
        }
    }

    private func loadBucket(_ i: Int) -> UInt64 {
        switch i {
        case 0: return b0.load(ordering: .relaxed)
        case 1: return b1.load(ordering: .relaxed)
        case 2: return b2.load(ordering: .relaxed)
        case 3: return b3.load(ordering: .relaxed)
        case 4: return b4.load(ordering: .relaxed)
        case 5: return b5.load(ordering: .relaxed)
        case 6: return b6.load(ordering: .relaxed)
        case 7: return b7.load(ordering: .relaxed)
        case 8: return b8.load(ordering: .relaxed)
        case 9: return b9.load(ordering: .relaxed)
        case 10: return b10.load(ordering: .relaxed)
        case 11: return b11.load(ordering: .relaxed)
        case 12: return b12.load(ordering: .relaxed)
        case 13: return b13.load(ordering: .relaxed)
        default: return b14.load(ordering: .relaxed)
        }
    }

    public struct Snapshot: Sendable, Equatable {
        public var readCommands: UInt64
        public var writeCommands: UInt64
        public var otherCommands: UInt64
        public var bytesRead: UInt64
        public var bytesWritten: UInt64
        public var errors: UInt64
        /// Non-cumulative count per bucket; `bucketBounds.count + 1` entries (the last: above 2.5 s).
        public var bucketCounts: [UInt64]
        public var latencySumSeconds: Double

        /// Prometheus-style cumulative counts, one per `bucketBounds` entry (the +Inf bucket
        /// is the command total).
        public var cumulativeBucketCounts: [UInt64] {
            var out: [UInt64] = []
            out.reserveCapacity(LUNStatisticsRecorder.bucketBounds.count)
            var total: UInt64 = 0
            for c in bucketCounts.prefix(LUNStatisticsRecorder.bucketBounds.count) {
                total += c
                out.append(total)
            }
            return out
        }
    }

    public func snapshot() -> Snapshot {
        Snapshot(readCommands: reads.load(ordering: .relaxed), writeCommands: writes.load(ordering: .relaxed),
                 otherCommands: others.load(ordering: .relaxed), bytesRead: bytesIn.load(ordering: .relaxed),
                 bytesWritten: bytesOut.load(ordering: .relaxed), errors: errorCount.load(ordering: .relaxed),
                 bucketCounts: (0...14).map { loadBucket($0) },
                 latencySumSeconds: Double(latencyNanos.load(ordering: .relaxed)) / 1e9)
    }
}

import AdminCore
import Foundation

/// Rates of one LUN between two samples of its cumulative counters.
struct LUNRates: Sendable, Equatable {
    var target: String
    var lun: Int
    /// Seconds between the samples; nil on the first sample (no rates yet).
    var interval: Double?
    var iops: Double?
    var readMBps: Double?
    var writeMBps: Double?
    /// Average latency over the interval (or since start when there is no interval), seconds.
    var averageLatency: Double?
    var p50: Double?
    var p99: Double?
    /// Average latency since the daemon started, seconds.
    var averageLatencySinceStart: Double?
    var current: LUNStatistics
}

/// Keeps the previous sample of every LUN's counters in memory so the statistics page can
/// show IOPS and MB/s as the difference of two samples.
actor StatisticsSampler {
    private var previous: [String: (time: Double, stats: LUNStatistics)] = [:]

    func sample(_ stats: [LUNStatistics], now: Double = Date().timeIntervalSince1970) -> [LUNRates] {
        var out: [LUNRates] = []
        var next: [String: (time: Double, stats: LUNStatistics)] = [:]
        for s in stats.sorted(by: { ($0.target, $0.lun) < ($1.target, $1.lun) }) {
            let key = "\(s.target)\u{0}\(s.lun)"
            next[key] = (now, s)
            out.append(computeRates(previous: previous[key].map { ($0.time, $0.stats) }, current: s, now: now))
        }
        previous = next
        return out
    }
}

func computeRates(previous: (Double, LUNStatistics)?, current s: LUNStatistics, now: Double) -> LUNRates {
    var r = LUNRates(target: s.target, lun: s.lun, current: s)
    let total = s.readCommands &+ s.writeCommands &+ s.otherCommands
    var counts = s.latencyCounts
    var latencyCount = histogramCount(s)
    if latencyCount > 0 { r.averageLatencySinceStart = s.latencySumSeconds / Double(latencyCount) }
    var latencySum = s.latencySumSeconds
    if let (t0, p) = previous, now > t0,
       // Counters that went backwards mean the daemon restarted: start over.
       p.readCommands <= s.readCommands, p.writeCommands <= s.writeCommands, p.otherCommands <= s.otherCommands,
       p.bytesRead <= s.bytesRead, p.bytesWritten <= s.bytesWritten {
        let dt = now - t0
        r.interval = dt
        let ptotal = p.readCommands + p.writeCommands + p.otherCommands
        r.iops = Double(total - ptotal) / dt
        r.readMBps = Double(s.bytesRead - p.bytesRead) / dt / 1_000_000
        r.writeMBps = Double(s.bytesWritten - p.bytesWritten) / dt / 1_000_000
        if p.latencyBuckets == s.latencyBuckets, p.latencyCounts.count == s.latencyCounts.count,
           zip(p.latencyCounts, s.latencyCounts).allSatisfy({ $0 <= $1 }) {
            counts = zip(s.latencyCounts, p.latencyCounts).map { $0 - $1 }
            let pc = histogramCount(p)
            latencyCount = latencyCount >= pc ? latencyCount - pc : 0
            latencySum = s.latencySumSeconds - p.latencySumSeconds
        }
    }
    if latencyCount > 0 {
        r.averageLatency = latencySum / Double(latencyCount)
        r.p50 = histogramQuantile(0.5, bounds: s.latencyBuckets, cumulative: counts, total: latencyCount)
        r.p99 = histogramQuantile(0.99, bounds: s.latencyBuckets, cumulative: counts, total: latencyCount)
    }
    return r
}

/// Quantile estimate from cumulative bucket counts, interpolating linearly inside the bucket
/// (as Prometheus' `histogram_quantile`). Observations above the last finite bound yield that bound.
func histogramQuantile(_ q: Double, bounds: [Double], cumulative: [UInt64], total: UInt64) -> Double? {
    let n = min(bounds.count, cumulative.count)
    guard total > 0, n > 0 else { return nil }
    let rank = q * Double(total)
    var lowerBound = 0.0
    var lowerCount = 0.0
    for i in 0..<n {
        let c = Double(cumulative[i])
        if c >= rank {
            let upper = bounds[i]
            if upper.isInfinite { return lowerBound }
            let inBucket = c - lowerCount
            if inBucket <= 0 { return upper }
            return lowerBound + (upper - lowerBound) * (rank - lowerCount) / inBucket
        }
        lowerBound = bounds[i].isInfinite ? lowerBound : bounds[i]
        lowerCount = c
    }
    return lowerBound
}

func formatSeconds(_ s: Double?) -> String {
    guard let s else { return "–" }
    if s < 0.001 { return String(format: "%.0f µs", s * 1_000_000) }
    if s < 1 { return String(format: "%.2f ms", s * 1000) }
    return String(format: "%.2f s", s)
}

func formatRate(_ v: Double?, _ fmt: String = "%.1f") -> String {
    guard let v else { return "–" }
    return String(format: fmt, v)
}

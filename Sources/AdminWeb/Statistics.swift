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

/// Samples of every LUN's cumulative counters over the last minutes. The console takes one
/// every `interval` while it runs (`AdminWebServer.runStatisticsSampling`) and one per view of
/// the statistics page, so its rates and charts come from the counters' own history, the same
/// for every viewer, not from whoever viewed the page last.
actor StatisticsHistory {
    /// Seconds between background samples.
    let interval: Double
    /// Seconds of history kept (and charted).
    let window: Double
    /// Views closer than this to the newest sample add none (a refresh storm stays cheap).
    let minimumGap: Double
    private var samples: [(time: Double, stats: [LUNKey: LUNStatistics])] = []

    struct LUNKey: Hashable, Sendable, Comparable {
        var target: String
        var lun: Int
        static func < (a: LUNKey, b: LUNKey) -> Bool { (a.target, a.lun) < (b.target, b.lun) }
    }

    init(interval: Double = 5, window: Double = 600, minimumGap: Double = 1) {
        self.interval = interval
        self.window = window
        self.minimumGap = minimumGap
    }

    func record(_ stats: [LUNStatistics], now: Double = Date().timeIntervalSince1970) {
        if let last = samples.last, now - last.time < minimumGap { return }
        var byLUN: [LUNKey: LUNStatistics] = [:]
        for s in stats { byLUN[LUNKey(target: s.target, lun: s.lun)] = s }
        samples.append((now, byLUN))
        // One sample before the window, so its first interval is charted whole.
        while samples.count > 2, now - samples[1].time > window { samples.removeFirst() }
    }

    /// Each LUN's rates between consecutive samples, oldest first; the LUNs in order.
    func series() -> [(key: LUNKey, points: [(time: Double, rates: LUNRates)])] {
        var out: [LUNKey: [(time: Double, rates: LUNRates)]] = [:]
        for (a, b) in zip(samples, samples.dropFirst()) {
            for (key, current) in b.stats {
                out[key, default: []].append((b.time, computeRates(previous: a.stats[key].map { (a.time, $0) }, current: current, now: b.time)))
            }
        }
        // A LUN with one sample so far is listed too, with no points yet.
        if let last = samples.last {
            for key in last.stats.keys where out[key] == nil { out[key] = [] }
        }
        return out.keys.sorted().map { ($0, out[$0]!) }
    }

    /// Each LUN's rates over the last interval sampled (nil where there is no earlier sample).
    func latest() -> [LUNKey: LUNRates] {
        var out: [LUNKey: LUNRates] = [:]
        guard let last = samples.last else { return out }
        let previous = samples.count > 1 ? samples[samples.count - 2] : nil
        for (key, current) in last.stats {
            out[key] = computeRates(previous: previous.flatMap { p in p.stats[key].map { (p.time, $0) } }, current: current, now: last.time)
        }
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

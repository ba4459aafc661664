import AdminAPI
import AdminCore
import ArgumentParser
import Foundation

/// `swift-targetctl stats [--watch [--interval S] [--count N]]`: per-LUN counters, or their
/// rates refreshed every interval (like vmstat), in human units.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Per-LUN counters and security counters; --watch for rates every interval.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false
    @Flag(help: "Print per-LUN IOPS, throughput and latency every interval until interrupted.") var watch = false
    @Option(help: "Seconds between samples with --watch (0.2…3600).") var interval: Double = 2
    @Option(help: "With --watch: stop after this many samples.") var count: Int?

    func validate() throws {
        if !(0.2...3600).contains(interval) { throw ValidationError("--interval takes 0.2…3600 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if json && watch { throw ValidationError("--json and --watch do not go together") }
    }

    func sample() async throws -> StatisticsView {
        try JSONDecoder().decode(StatisticsView.self, from: try await connection.client.raw(.GET, "/v1/statistics"))
    }

    func run() async throws {
        try await perform {
            guard watch else {
                let data = try await connection.client.raw(.GET, "/v1/statistics")
                if json { printJSON(data); return }
                let s = try JSONDecoder().decode(StatisticsView.self, from: data)
                for l in s.luns {
                    let total = l.readCommands + l.writeCommands + l.otherCommands
                    let avg = total > 0 ? l.latencySumSeconds / Double(total) : 0
                    print("\(l.target) LUN \(l.lun): reads \(l.readCommands) (\(HumanUnits.bytes(l.bytesRead))) "
                          + "writes \(l.writeCommands) (\(HumanUnits.bytes(l.bytesWritten))) other \(l.otherCommands) "
                          + "errors \(l.errors) avg \(HumanUnits.seconds(avg))")
                }
                print("security: CHAP failures \(s.security.chapFailures), ACL denials \(s.security.aclDenials), NOP timeouts \(s.security.nopTimeouts)")
                return
            }
            var previous = try await sample()
            var last = Date()
            var samples = 0
            while count.map({ samples < $0 }) ?? true {
                try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                let now = try await sample()
                let at = Date()
                let seconds = at.timeIntervalSince(last)
                print(HumanUnits.rateTable(previous: previous.luns, now: now.luns, seconds: seconds, at: at))
                FileHandle.standardOutput.synchronizeFile()
                previous = now
                last = at
                samples += 1
            }
        }
    }
}

/// Numbers as an admin reads them.
enum HumanUnits {
    static func bytes(_ n: UInt64) -> String { ByteCount.formatted(n) }

    /// A rate's bytes, rounded to whole bytes.
    static func bytes(_ n: Double) -> String { ByteCount.formatted(UInt64(max(0, n.rounded()))) }

    /// 0.00042 → "420 µs".
    static func seconds(_ s: Double) -> String {
        if s == 0 { return "0 ms" }
        if s < 0.001 { return String(format: "%.0f µs", s * 1e6) }
        if s < 1 { return String(format: "%.2f ms", s * 1e3) }
        return String(format: "%.2f s", s)
    }

    /// One sample of --watch: per LUN, the rates between two readings of the counters.
    static func rateTable(previous: [LUNStatistics], now: [LUNStatistics], seconds: Double, at: Date) -> String {
        let before = Dictionary(previous.map { ("\($0.target)|\($0.lun)", $0) }, uniquingKeysWith: { a, _ in a })
        let time = ISO8601DateFormatter.string(from: at, timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
        var out = "\(time)  \("target LUN".padding(toLength: 44, withPad: " ", startingAt: 0))  read IOPS  write IOPS     read/s    write/s  avg lat  errors"
        for l in now.sorted(by: { ($0.target, $0.lun) < ($1.target, $1.lun) }) {
            let p = before["\(l.target)|\(l.lun)"]
            // A counter that went down (the daemon restarted) counts from zero.
            func delta(_ a: UInt64, _ b: UInt64?) -> Double { Double(b.map { a >= $0 ? a - $0 : a } ?? a) }
            let reads = delta(l.readCommands, p?.readCommands), writes = delta(l.writeCommands, p?.writeCommands)
            let others = delta(l.otherCommands, p?.otherCommands)
            let commands = reads + writes + others
            let latency = commands > 0 ? max(0, l.latencySumSeconds - (p?.latencySumSeconds ?? 0)) / commands : 0
            let name = "\(l.target) \(l.lun)"
            out += "\n" + String(repeating: " ", count: time.count + 2) + name.padding(toLength: max(44, name.count), withPad: " ", startingAt: 0)
            out += String(format: "  %9.0f  %10.0f", reads / seconds, writes / seconds)
            out += "  " + pad(bytes(delta(l.bytesRead, p?.bytesRead) / seconds), 9) + "  " + pad(bytes(delta(l.bytesWritten, p?.bytesWritten) / seconds), 9)
            out += "  " + pad(Self.seconds(latency), 7) + "  " + pad(String(Int(delta(l.errors, p?.errors))), 6)
        }
        return out
    }

    private static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}

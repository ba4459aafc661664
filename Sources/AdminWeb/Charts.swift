import Foundation

/// Small server-rendered SVG line charts (no script): the statistics page draws each LUN's
/// IOPS, throughput and p99 latency over the kept history with them.
struct LineChart {
    struct Series {
        var name: String
        var color: String
        /// nil: no value for that sample (drawn as a gap).
        var values: [Double?]
    }

    var title: String
    var unit: String
    var times: [Double]
    var series: [Series]
    var width = 320
    var height = 90
    /// How the largest value and the latest ones are printed.
    var format: (Double) -> String = { String(format: "%.1f", $0) }
    /// Seconds the x axis spans (ends at the newest sample).
    var span: Double = 600

    var svg: String {
        let top = 14.0, bottom = Double(height) - 12, left = 2.0, right = Double(width) - 2
        let end = times.last ?? 0, start = end - span
        let largest = series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0
        let ceiling = largest > 0 ? largest * 1.1 : 1
        func x(_ t: Double) -> Double { left + (right - left) * max(0, t - start) / span }
        func y(_ v: Double) -> Double { bottom - (bottom - top) * v / ceiling }
        var s = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
        s += "viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(h(title))\" data-points=\"\(times.count)\">"
        s += "<title>\(h(title)) over the last \(Int(span / 60)) minutes</title>"
        s += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#fff\" stroke=\"#ccc\"/>"
        s += "<text x=\"4\" y=\"11\" font-size=\"10\" fill=\"#333\">\(h(title)) (\(h(unit)))</text>"
        s += "<text x=\"\(width - 4)\" y=\"11\" font-size=\"10\" fill=\"#777\" text-anchor=\"end\">max \(h(format(largest)))</text>"
        s += "<text x=\"4\" y=\"\(height - 2)\" font-size=\"9\" fill=\"#777\">−\(Int(span / 60)) min</text>"
        s += "<text x=\"\(width - 4)\" y=\"\(height - 2)\" font-size=\"9\" fill=\"#777\" text-anchor=\"end\">now</text>"
        for line in series {
            // A polyline per run of values, so a missing sample leaves a gap.
            var runs: [[String]] = [[]]
            for (t, v) in zip(times, line.values) {
                if let v { runs[runs.count - 1].append(String(format: "%.1f,%.1f", x(t), y(v))) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where !run.isEmpty {
                let points = run.count == 1 ? [run[0], run[0]] : run
                s += "<polyline class=\"series-\(h(line.name))\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>"
            }
        }
        return s + "</svg>"
    }
}

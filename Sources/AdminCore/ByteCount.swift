import Foundation

/// Byte counts as admins read them, for the web console and swift-targetctl alike.
public enum ByteCount {
    /// `1536` → `1.5 KiB` (binary multiples; one decimal below 100).
    public static func formatted(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        if i == 0 { return "\(n) B" }
        return String(format: v >= 100 ? "%.0f %@" : "%.1f %@", v, units[i])
    }
}

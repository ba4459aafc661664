import AdminCore
import Foundation

/// A block device or partition offered by the LUN picker.
public struct BlockDevice: Sendable, Hashable {
    /// `/dev/sda1`
    public var path: String
    public var sizeBytes: UInt64
    public var isPartition: Bool

    public init(path: String, sizeBytes: UInt64, isPartition: Bool) {
        self.path = path
        self.sizeBytes = sizeBytes
        self.isPartition = isPartition
    }

    /// "partition", "RAID", "LVM / device-mapper" or "disk", for the picker.
    public var kindLabel: String {
        if isPartition { return "partition" }
        if path.hasPrefix("/dev/mapper/") || path.hasPrefix("/dev/dm-") { return "LVM / device-mapper" }
        if path.hasPrefix("/dev/md") { return "RAID" }
        if path.hasPrefix("/dev/loop") { return "loop" }
        return "disk"
    }

    /// Whole disks from `/sys/block` (skipping empty ones, RAM disks and unused loop devices)
    /// and their partitions, sorted by path.
    @Sendable public static func scanSysBlock() -> [BlockDevice] {
        scan(sysBlock: "/sys/block")
    }

    static func scan(sysBlock: String) -> [BlockDevice] {
        let fm = FileManager.default
        guard let disks = try? fm.contentsOfDirectory(atPath: sysBlock) else { return [] }
        func size(_ dir: String) -> UInt64 {
            guard let s = try? String(contentsOfFile: dir + "/size", encoding: .utf8),
                  let sectors = UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines)) else { return 0 }
            return sectors * 512
        }
        var out: [BlockDevice] = []
        for disk in disks where !disk.hasPrefix("ram") {
            let dir = sysBlock + "/" + disk
            let bytes = size(dir)
            guard bytes > 0 else { continue }
            var path = "/dev/" + disk.replacingOccurrences(of: "!", with: "/")
            // Device-mapper devices (LVM logical volumes, crypt) by their stable /dev/mapper name.
            if let name = try? String(contentsOfFile: dir + "/dm/name", encoding: .utf8) {
                let n = name.trimmingCharacters(in: .whitespacesAndNewlines)
                if !n.isEmpty && !n.contains("/") { path = "/dev/mapper/" + n }
            }
            out.append(BlockDevice(path: path, sizeBytes: bytes, isPartition: false))
            for part in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where part.hasPrefix(disk) {
                let pdir = dir + "/" + part
                guard fm.fileExists(atPath: pdir + "/partition") else { continue }
                let pbytes = size(pdir)
                if pbytes > 0 {
                    out.append(BlockDevice(path: "/dev/" + part.replacingOccurrences(of: "!", with: "/"), sizeBytes: pbytes, isPartition: true))
                }
            }
        }
        return out.sorted { $0.path < $1.path }
    }
}

/// `1536` → `1.5 KiB`.
func formatBytes(_ n: UInt64) -> String { ByteCount.formatted(n) }

/// Parses `64M`, `10G`, `512K`, `1T` (binary multiples) or plain bytes.
func parseSize(_ text: String) -> UInt64? {
    var t = text.trimmingCharacters(in: .whitespaces).uppercased()
    if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") && t.count > 1 && !t.dropLast().allSatisfy(\.isNumber) {
        t.removeLast()
    }
    let mult: UInt64
    switch t.last {
    case "K": mult = 1 << 10
    case "M": mult = 1 << 20
    case "G": mult = 1 << 30
    case "T": mult = 1 << 40
    default: mult = 1
    }
    if mult != 1 { t.removeLast() }
    guard let v = UInt64(t), v > 0 else { return nil }
    let (r, overflow) = v.multipliedReportingOverflow(by: mult)
    return overflow ? nil : r
}

// Micro-benchmarks for scripts/benchmark.sh: `swift-target-bench crc32c` prints the CRC32C
// rate on 1 MiB buffers on one core, for the path in use and for the software fallback.
import Foundation
import ISCSIFabric

func rate(_ body: (UnsafeRawBufferPointer) -> UInt32) -> Double {
    let buffer = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
    return buffer.withUnsafeBytes { b in
        var sink: UInt32 = 0
        for _ in 0..<16 { sink ^= body(b) }  // warm up
        var rounds = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: UInt64 = 0
        while elapsed < 1_000_000_000 {
            for _ in 0..<32 { sink ^= body(b) }
            rounds += 32
            elapsed = DispatchTime.now().uptimeNanoseconds - start
        }
        if sink == 0x5A5A_5A5A { print("") }  // keeps the work
        return Double(rounds * b.count) / Double(elapsed)  // bytes per ns = GB/s
    }
}

switch CommandLine.arguments.dropFirst().first {
case "crc32c":
    let used = rate { CRC32C.checksum($0) }
    let software = rate { CRC32C.softwareChecksumForBenchmark($0) }
    print(String(format: "crc32c: %.2f GB/s (%@, 1 MiB buffers, one core); software slicing-by-8: %.2f GB/s",
                 used, CRC32C.hardware ? "CPU instructions" : "software", software))
default:
    print("usage: swift-target-bench crc32c")
    exit(2)
}

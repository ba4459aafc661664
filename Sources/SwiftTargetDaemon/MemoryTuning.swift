import CLinuxIO

/// The allocator settings a target serving large commands needs.
///
/// A read's data buffer is as long as the command (128 KiB to MaxBurstLength and more). glibc
/// gives allocations above its mmap threshold (128 KiB at first) fresh mappings, and returns
/// free memory at the top of a heap to the kernel past its trim threshold, so with a few dozen
/// such buffers in flight each command paid page faults and zeroing for its buffer. Measured
/// (`scripts/benchmark.sh`, 128k sequential reads QD32, 2 cores): 979 MB/s (0.63x tgtd) with
/// glibc's defaults, 2,381 MB/s (1.32x) with these. The cost is memory kept: up to the trim
/// threshold of free heap stays with the process.
enum MemoryTuning {
    /// Buffers up to this size come from the heap (larger commands are rare enough to map).
    static let mmapThreshold = 8 << 20
    /// Free heap kept before any goes back to the kernel.
    static let trimThreshold = 64 << 20
    /// Taken from the kernel beyond each growth, so growth comes in few steps.
    static let topPad = 16 << 20

    static func apply() {
        _ = clinuxio_tune_allocator(mmapThreshold, trimThreshold, topPad)
    }
}

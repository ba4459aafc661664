import Backstores
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where a LU stands with SANITIZE (SBC-4 4.11).
enum SanitizeStatus: Sendable, Equatable {
    case idle
    /// Running; PROGRESS INDICATION as a fraction of 65536.
    case running(progress: UInt16)
    /// The last sanitize failed: the LU answers MEDIUM ERROR until a sanitize succeeds or,
    /// when that one allowed it (AUSE), EXIT FAILURE MODE.
    case failed(exitAllowed: Bool)
}

/// SANITIZE service actions (SBC-4 5.25 table 84).
enum SanitizeAction {
    static let overwrite: UInt8 = 0x01
    static let blockErase: UInt8 = 0x02
    static let cryptographicErase: UInt8 = 0x03
    static let exitFailureMode: UInt8 = 0x1F
}

extension ASC {
    /// LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
    static let sanitizeInProgress = ASC(0x04, 0x1B)
    /// SANITIZE COMMAND FAILED.
    static let sanitizeFailed = ASC(0x31, 0x03)
}

extension LogicalUnit {
    /// The answer every command but INQUIRY, REPORT LUNS and REQUEST SENSE gets while a
    /// sanitize runs or after one failed (SBC-4 4.11.3, 4.11.4). Call under the state lock.
    static func sanitizeRefusal(_ status: SanitizeStatus) -> SCSIError? {
        switch status {
        case .idle: return nil
        case .running(let progress): return SCSIError(key: SenseKey.notReady, asc: .sanitizeInProgress, progress: progress)
        case .failed: return SCSIError(key: SenseKey.mediumError, asc: .sanitizeFailed)
        }
    }

    /// SANITIZE (SBC-4 5.25): OVERWRITE writes the pattern over every block (inverted on
    /// alternate passes with INVERT), BLOCK ERASE deallocates every block (thin LUs: holes
    /// that read as zeros), CRYPTOGRAPHIC ERASE is not supported, EXIT FAILURE
    /// MODE leaves the failure mode a sanitize with AUSE left behind. With IMMED the
    /// command answers GOOD at once and the sanitize runs on; meanwhile other commands get
    /// NOT READY, SANITIZE IN PROGRESS with the progress.
    func sanitize(_ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        let cdb = ctx.cdb
        let immediate = cdb.bit(1, 7)
        let znr = cdb.bit(1, 6)
        let ause = cdb.bit(1, 5)
        let action = cdb[1] & 0x1F
        let length = Int(cdb.u16(7))
        if znr { throw SCSIError.invalidCDB(byte: 1, bit: 6) } // no zoned devices
        for i in 2 ... 6 where cdb[i] != 0 { throw SCSIError.invalidCDB(byte: i) } // reserved
        var pattern: [UInt8] = []
        var passes = 1
        var invert = false
        switch action {
        case SanitizeAction.overwrite:
            // Parameter list: INVERT, TEST, OVERWRITE COUNT; INITIALIZATION PATTERN LENGTH; pattern.
            if length < 5 { throw SCSIError.invalidCDB(byte: 7) }
            if ctx.dataOut.count < length {
                return SCSICommandResult(status: .checkCondition, sense: SCSIError.shortDataOut.senseBytes, transferLength: length)
            }
            let p = ctx.dataOut.gather(length)
            let patternLength = Int(UInt16(p[2]) << 8 | UInt16(p[3]))
            if p[0] & 0x60 != 0 { throw SCSIError.invalidParameter(byte: 0, bit: 6) } // TEST: vendor specific
            passes = Int(p[0] & 0x1F)
            if passes == 0 { throw SCSIError.invalidParameter(byte: 0, bit: 4) }
            invert = p[0] & 0x80 != 0
            if patternLength == 0 || patternLength > blockSize { throw SCSIError.invalidParameter(byte: 2) }
            if length != 4 + patternLength { throw SCSIError.invalidCDB(byte: 7) }
            pattern = Array(p[4 ..< 4 + patternLength])
        case SanitizeAction.blockErase, SanitizeAction.exitFailureMode:
            if length != 0 { throw SCSIError.invalidCDB(byte: 7) }
        default:
            // CRYPTOGRAPHIC ERASE: the stores hold no media encryption key to change.
            throw SCSIError.invalidCDB(byte: 1, bit: 4)
        }
        try checkWritable(snap)
        if action == SanitizeAction.exitFailureMode {
            try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) in
                switch s.sanitize {
                case .failed(let allowed):
                    if !allowed { throw SCSIError(key: SenseKey.mediumError, asc: .sanitizeFailed) }
                    s.sanitize = .idle
                case .running(let p): throw SCSIError(key: SenseKey.notReady, asc: .sanitizeInProgress, progress: p)
                case .idle: break
                }
            }
            return SCSICommandResult(status: .good, transferLength: length)
        }
        try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) in
            if case .running(let p) = s.sanitize { throw SCSIError(key: SenseKey.notReady, asc: .sanitizeInProgress, progress: p) }
            s.sanitize = .running(progress: 0)
        }
        let job = SanitizeJob(unit: self, target: ctx.target, action: action, pattern: pattern, passes: passes,
                              invert: invert, ause: ause)
        if immediate {
            DispatchQueue.global().async { _ = job.run() }
            return SCSICommandResult(status: .good, transferLength: length)
        }
        if let error = job.run() { throw error }
        return SCSICommandResult(status: .good, transferLength: length)
    }
}

/// One sanitize operation: writes or deallocates the whole LU under the exclusive I/O lock,
/// reporting progress in the LU state, at most at the target's sanitize rate. It belongs to
/// the LU, not to the command: aborts, resets and logouts leave it running (SBC-4 4.11.3).
struct SanitizeJob: Sendable {
    let unit: LogicalUnit
    let target: SCSITarget
    let action: UInt8
    let pattern: [UInt8]
    let passes: Int
    let invert: Bool
    let ause: Bool

    /// Runs to the end; nil when the LU was sanitized.
    func run() -> SCSIError? {
        let total = unit.store.byteCount
        let failure: BackstoreError? = unit.ioLock.exclusive { () -> BackstoreError? in
            do throws(BackstoreError) {
                if action == SanitizeAction.blockErase {
                    try blockErase(total)
                } else {
                    try overwrite(total)
                }
                return nil
            } catch {
                return error
            }
        }
        unit.state.withLock { s in s.sanitize = failure == nil ? .idle : .failed(exitAllowed: ause) }
        return failure.map { _ in SCSIError(key: SenseKey.mediumError, asc: .sanitizeFailed) }
    }

    /// Deallocates the LU, in 1 MiB steps when a rate applies, else in one go.
    private func blockErase(_ total: UInt64) throws(BackstoreError) {
        var pace = Pace(target: target)
        let step: UInt64 = target.sanitizeBytesPerSecond == 0 ? max(total, 1) : 1 << 20
        var at: UInt64 = 0
        while at < total {
            let n = min(step, total - at)
            try unit.store.discard(offset: at, length: n)
            at += n
            report(done: at, of: total)
            pace.wait(after: n)
        }
        try unit.store.flush()
    }

    private func report(done: UInt64, of work: UInt64) {
        let progress = UInt16(min(65535, done * 65536 / max(work, 1)))
        unit.state.withLock { $0.sanitize = .running(progress: progress) }
    }

    /// Keeps the bytes done at or under the target's rate (read again each step).
    private struct Pace {
        let target: SCSITarget
        let start = ContinuousClock.now
        var bytes: UInt64 = 0

        mutating func wait(after n: UInt64) {
            bytes += n
            let rate = target.sanitizeBytesPerSecond
            guard rate > 0 else { return }
            let due = start + .nanoseconds(Int64(min(bytes * 1_000_000_000 / rate, UInt64(Int64.max))))
            let ahead = due - ContinuousClock.now
            if ahead > .zero {
                let c = ahead.components
                usleep(UInt32(min(c.seconds * 1_000_000 + c.attoseconds / 1_000_000_000_000, 1_000_000)))
            }
        }
    }

    /// Every pass writes the pattern (its inverse on even passes with INVERT) over the LU,
    /// in 1 MiB chunks, then makes it durable (SBC-4 5.25.3).
    private func overwrite(_ total: UInt64) throws(BackstoreError) {
        let bs = unit.blockSize
        // One block of the pattern repeated, then a 1 MiB chunk of blocks.
        var block = [UInt8](repeating: 0, count: bs)
        for i in 0 ..< bs { block[i] = pattern[i % pattern.count] }
        let chunkBytes = UInt64(max(bs, (1 << 20) / bs * bs))
        let work = total * UInt64(passes)
        var done: UInt64 = 0
        var pace = Pace(target: target)
        for pass in 0 ..< passes {
            let inverted = invert && pass % 2 == 1
            let unitBlock = inverted ? block.map { ~$0 } : block
            var chunk = [UInt8]()
            chunk.reserveCapacity(Int(min(chunkBytes, total)))
            while UInt64(chunk.count) < min(chunkBytes, total) { chunk.append(contentsOf: unitBlock) }
            var at: UInt64 = 0
            while at < total {
                let n = Int(min(UInt64(chunk.count), total - at))
                try chunk.withBytes { (p) throws(BackstoreError) in
                    try unit.store.write(from: UnsafeRawBufferPointer(rebasing: p[0 ..< n]), at: at, durable: false)
                }
                at += UInt64(n)
                done += UInt64(n)
                report(done: done, of: work)
                pace.wait(after: UInt64(n))
            }
        }
        try unit.store.flush()
    }
}

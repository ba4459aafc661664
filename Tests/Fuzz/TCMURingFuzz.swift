import CTCMU
import Logging
import SCSIEngine
import TCMU

/// `tcmu-ring`: the TCMU mailbox and command ring as the kernel would have left them, read by
/// a real `RingServer` (`MappedRing` checks the mailbox, `RingCursor` walks `len_op`s,
/// `RingCommand` decodes each command entry's CDB offset and iovecs, TMR entries abort,
/// responses are written back and `cmd_tail` advances).
///
/// Input: [mode] mapping…  The mapping is the rest of the input (at least 256 bytes, zeros
/// after): mailbox at 0 (version, flags, cmdr_off, cmdr_size, cmd_head; cmd_tail at 64),
/// entries at cmdr_off + position, the data area after the ring.
///   mode bit 0: take the mailbox as it is (else version 2, cmdr_off 128 and a cmdr_size that
///   fits are written in, keeping the flags); bit 1: head and tail as they are (else reduced
///   into the ring, 8-aligned); bit 2: a fast executor answers READs on the reader thread;
///   bit 3: two worker threads.
/// The mapping is an exactly sized heap block, so AddressSanitizer flags any access past it;
/// the executor reads all data-out and writes all data-in bytes it is given.
/// Invariant: the server stops (no hang) and leaves `cmd_tail` inside the ring.
enum TCMURingFuzz {
    static let target = FuzzTarget(name: "tcmu-ring", summary: "TCMU mailbox/ring entries through RingServer", run: run)
    static let minimumMapping = 256
    /// Malformed entries are logged as errors: quiet unless $FUZZ_VERBOSE.
    static let logger: Logger = {
        var l = Logger(label: "fuzz.tcmu-ring")
        l.logLevel = fuzzVerbose ? .info : .critical
        return l
    }()

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let mode = input.byte()
        let image = input.rest()
        let size = (max(image.count, minimumMapping) + 7) & ~7
        let base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { base.deallocate() }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        image.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: image.count) }

        if mode & 1 == 0 { fixMailbox(base, size: size, keepPositions: mode & 2 != 0) }
        let ring: MappedRing
        do {
            ring = try MappedRing(base: base, size: size)
        } catch {
            fuzzLog("tcmu-ring: \(error)")
            return
        }

        let initialTail = ring.tail
        var fds: [Int32] = [-1, -1]
        guard ctcmu_socketpair(&fds) == 0 else { fuzzFailure("socketpair failed") }
        defer {
            _ = ctcmu_close(fds[0])
            _ = ctcmu_close(fds[1])
        }
        let mapping = (start: Int(bitPattern: base), size: size)
        let executor: RingCommandExecutor = { cdb, dataOut, dataIn in
            touch(dataOut, mapping: mapping, write: false)
            touch(dataIn, mapping: mapping, write: true)
            let opcode = cdb.first ?? 0
            if opcode & 1 != 0 {
                return SCSICommandResult(status: .checkCondition,
                                         sense: [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0])
            }
            let produced = min(dataIn.count, Int(cdb.count > 4 ? cdb[4] : 0) * 8)
            return SCSICommandResult(status: .good, dataInCount: produced, transferLength: produced)
        }
        var fast: RingFastExecutor?
        if mode & 4 != 0 {
            fast = { cdb, dataIn in
                guard cdb.first == 0x28 else { return nil }
                touch(dataIn, mapping: mapping, write: true)
                return SCSICommandResult(status: .good, dataInCount: dataIn.count, transferLength: dataIn.count)
            }
        }
        let server: RingServer
        do {
            server = try RingServer(name: "fuzz", ring: ring, signalFD: fds[1], workerThreads: mode & 8 != 0 ? 2 : 1,
                                    executor: executor, fastExecutor: fast, logger: logger)
        } catch {
            fuzzFailure("RingServer: \(error)")
        }
        // The reader drains the ring once at start; stop() waits for it and for the workers.
        server.stop()
        let tail = ring.tail
        if initialTail < ring.ringSize, tail >= ring.ringSize { fuzzFailure("cmd_tail \(tail) outside a \(ring.ringSize)-byte ring") }
        fuzzLog("tcmu-ring: \(server.statistics), cmd_tail \(initialTail) -> \(tail), head \(ring.head)")
    }

    /// What a kernel mailbox always satisfies, so the fuzzer spends its time on entries.
    static func fixMailbox(_ base: UnsafeMutableRawPointer, size: Int, keepPositions: Bool) {
        let flags = ctcmu_mb_flags(base)
        var ringSize = ctcmu_mb_cmdr_size(base) & ~7
        let room = UInt32(size - TCMUProtocol.mailboxSize)
        if ringSize == 0 || ringSize > room { ringSize = max(8, (room / 2) & ~7) }
        var head = ctcmu_mb_cmd_head(base)
        var tail = ctcmu_mb_cmd_tail(base)
        if !keepPositions {
            head = (head % ringSize) & ~7
            tail = (tail % ringSize) & ~7
        }
        ctcmu_mb_init(base, TCMUProtocol.mailboxVersion, flags, UInt32(TCMUProtocol.mailboxSize), ringSize)
        ctcmu_mb_set_cmd_head(base, head)
        ctcmu_mb_set_cmd_tail(base, tail)
    }

    /// Reads or writes every byte of `v`, checking it lies in the mapping.
    static func touch(_ v: IOVectors, mapping: (start: Int, size: Int), write: Bool) {
        for segment in [v.first] + v.more where segment.count > 0 {
            guard let p = segment.baseAddress else { fuzzFailure("a data segment without memory") }
            let start = Int(bitPattern: p)
            guard start >= mapping.start, start + segment.count <= mapping.start + mapping.size else {
                fuzzFailure("a data segment outside the mapping")
            }
            if write {
                segment.initializeMemory(as: UInt8.self, repeating: 0xA5)
            } else {
                var sum: UInt8 = 0
                for b in segment { sum &+= b }
                if sum == 0x5A { _ = segment.first }
            }
        }
    }
}

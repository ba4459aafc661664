import TCMU
#if canImport(Glibc)
import Glibc
#endif

/// Drives a ring server with random commands through the simulator and checks every byte
/// against a model of the device.
///
/// Like a real initiator, it never has two in-flight commands on overlapping blocks when
/// one of them writes, so the model is exact whatever order the handler completes in.
/// TMR ABORT TASK entries hit random in-flight commands: an aborted command either ran
/// (GOOD, its effect is in the model) or did not (TASK ABORTED, no effect).
struct RandomizedWorkload {
    struct Report: Sendable {
        var commands = 0
        var reads = 0
        var writes = 0
        var others = 0
        var bytesVerified = 0
        var abortsSent = 0
        var abortedBeforeStart = 0
        var ringFullWaits = 0
        var stolenSlots = 0
        var wraps = 0
    }

    enum Failure: Error, CustomStringConvertible {
        case mismatch(String)
        var description: String { if case .mismatch(let s) = self { return s }; return "" }
    }

    var commands: Int
    var seed: UInt64
    var deviceBlocks = 16384          // 8 MiB of 512-byte blocks
    var maxBlocksPerCommand = 128     // 64 KiB
    var queueDepth = 64

    private struct Pending {
        var lba: UInt64
        var blocks: Int
        var isWrite: Bool
        var seed: UInt64
        var kind: Kind
        var aborted = false
    }
    private enum Kind { case read, write, testUnitReady, readCapacity, inquiry }

    func run(simulator sim: KernelRingSimulator, store: UnlockedMemoryStore) throws -> Report {
        let bs = 512
        let model = UnsafeMutableRawBufferPointer.allocate(byteCount: deviceBlocks * bs, alignment: 16)
        defer { model.deallocate() }
        model.copyMemory(from: UnsafeRawBufferPointer(store.bytes))
        var rng = FastRandom(seed: seed)
        var report = Report()
        var pending: [Int: Pending] = [:]
        var idOfTag: [Int: UInt16] = [:]
        var nextTag = 0
        var completed = 0
        var lastHead: UInt32 = 0

        func overlaps(_ lba: UInt64, _ n: Int, write: Bool) -> Bool {
            for p in pending.values where p.kind == .read || p.kind == .write {
                if (write || p.isWrite) && lba < p.lba + UInt64(p.blocks) && p.lba < lba + UInt64(n) { return true }
            }
            return false
        }

        var checkFailure: Failure?
        while completed < commands {
            // Submit while there is room.
            var submittedNow = 0
            while nextTag < commands && pending.count < queueDepth {
                let roll = rng.below(100)
                var p: Pending
                var cdb: [UInt8]
                var length: Int
                var isRead = true
                if roll < 4 {
                    let k = rng.below(3)
                    if k == 0 { p = Pending(lba: 0, blocks: 0, isWrite: false, seed: 0, kind: .testUnitReady); cdb = CDBs.testUnitReady; length = 0 }
                    else if k == 1 { p = Pending(lba: 0, blocks: 0, isWrite: false, seed: 0, kind: .readCapacity); cdb = CDBs.readCapacity10; length = 8 }
                    else { p = Pending(lba: 0, blocks: 0, isWrite: false, seed: 0, kind: .inquiry); cdb = CDBs.inquiry(allocation: 96); length = 96 }
                } else {
                    let isWrite = rng.below(2) == 0
                    let big = rng.below(16) == 0
                    let n = big ? 1 + rng.below(maxBlocksPerCommand) : 1 + rng.below(8)
                    let lba = UInt64(rng.below(deviceBlocks - n + 1))
                    if overlaps(lba, n, write: isWrite) { continue }
                    p = Pending(lba: lba, blocks: n, isWrite: isWrite, seed: rng.next(), kind: isWrite ? .write : .read)
                    let use10 = rng.below(2) == 0
                    cdb = isWrite
                        ? (use10 ? CDBs.write10(lba: UInt32(lba), blocks: UInt16(n)) : CDBs.write16(lba: lba, blocks: UInt32(n)))
                        : (use10 ? CDBs.read10(lba: UInt32(lba), blocks: UInt16(n)) : CDBs.read16(lba: lba, blocks: UInt32(n)))
                    length = n * bs
                    isRead = !isWrite
                }
                let tag = nextTag
                let seedForFill = p.seed
                let id = sim.submit(cdb: cdb, length: length, isRead: isRead, tag: tag,
                                    fill: p.kind == .write ? { buf, at in FastRandom.fill(buf, seed: seedForFill, skip: at) } : nil)
                guard let id else { report.ringFullWaits += 1; break }
                if sim.head < lastHead { report.wraps += 1 }
                lastHead = sim.head
                pending[tag] = p
                idOfTag[tag] = id
                nextTag += 1
                submittedNow += 1
                // Now and then abort a random in-flight command (a TMR entry on the ring).
                if rng.below(50) == 0, let victim = pending.keys.randomElement(using: &rng), let vid = idOfTag[victim] {
                    if sim.submitTaskManagement(.abortTask, ids: [vid]) {
                        pending[victim]!.aborted = true
                        report.abortsSent += 1
                    }
                }
            }
            if submittedNow > 0 { sim.kick() }

            // Collect completions.
            if !sim.waitForKick(timeoutMS: 10_000) && pending.count > 0 {
                throw Failure.mismatch("no completion within 10 s; \(pending.count) pending, tail \(sim.lastCleaned) head \(sim.head)")
            }
            sim.retire { c in
                guard checkFailure == nil else { return }
                guard let p = pending.removeValue(forKey: c.tag) else {
                    checkFailure = .mismatch("completion for unknown tag \(c.tag)")
                    return
                }
                idOfTag[c.tag] = nil
                completed += 1
                if c.status == 0x40 {
                    guard p.aborted else { checkFailure = .mismatch("tag \(c.tag) TASK ABORTED but never aborted"); return }
                    report.abortedBeforeStart += 1
                    return
                }
                guard c.status == 0 else {
                    checkFailure = .mismatch("tag \(c.tag) \(p.kind) lba \(p.lba)+\(p.blocks): status \(c.status) sense \(c.sense.prefix(18))")
                    return
                }
                switch p.kind {
                case .write:
                    report.writes += 1
                    FastRandom.fill(UnsafeMutableRawBufferPointer(rebasing: model[Int(p.lba) * bs ..< (Int(p.lba) + p.blocks) * bs]), seed: p.seed, skip: 0)
                case .read:
                    report.reads += 1
                    let want = p.blocks * bs
                    guard c.readLength == nil || c.readLength == UInt32(want), c.gatheredLength == want else {
                        checkFailure = .mismatch("tag \(c.tag) read_len \(String(describing: c.readLength)) want \(want)")
                        return
                    }
                    var at = Int(p.lba) * bs
                    for seg in c.dataSegments {
                        if memcmp(c.data.baseAddress! + seg.offset, model.baseAddress! + at, seg.length) != 0 {
                            checkFailure = .mismatch("tag \(c.tag) read lba \(p.lba)+\(p.blocks): data differs from the model")
                            return
                        }
                        at += seg.length
                    }
                    report.bytesVerified += want
                case .readCapacity:
                    report.others += 1
                    let d = c.data.baseAddress! + c.dataSegments[0].offset
                    let last = UInt32(d.load(fromByteOffset: 0, as: UInt8.self)) << 24 | UInt32(d.load(fromByteOffset: 1, as: UInt8.self)) << 16
                        | UInt32(d.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt32(d.load(fromByteOffset: 3, as: UInt8.self))
                    if last != UInt32(deviceBlocks - 1) { checkFailure = .mismatch("READ CAPACITY last LBA \(last)") }
                case .inquiry:
                    report.others += 1
                    if c.gatheredLength < 36 { checkFailure = .mismatch("INQUIRY returned \(c.gatheredLength) bytes") }
                case .testUnitReady:
                    report.others += 1
                }
            }
            if let checkFailure { throw checkFailure }
            if sim.broken { throw Failure.mismatch("ring broken (unknown cmd_id in a completed slot)") }
        }
        // The store must equal the model byte for byte.
        if memcmp(store.bytes.baseAddress!, model.baseAddress!, model.count) != 0 {
            throw Failure.mismatch("final store contents differ from the model")
        }
        report.commands = completed
        report.stolenSlots = sim.stolenSlots
        return report
    }
}

extension Dictionary.Keys {
    func randomElement(using rng: inout FastRandom) -> Key? {
        guard !isEmpty else { return nil }
        return self[index(startIndex, offsetBy: rng.below(count))]
    }
}

import CTCMU
import TCMU
#if canImport(Glibc)
import Glibc
#endif

/// The kernel half of a TCMU device, byte for byte as `drivers/target/target_core_user.c`
/// lays it out, in a memfd: mailbox at 0, command ring at 128, data area after the ring
/// in 4 KiB blocks. Entries are sized like `tcmu_cmd_get_cmd_size` (iovec room for every
/// data block, CDB inside the entry, 8-byte aligned), PAD entries fill the ring end, space
/// is checked like `is_ring_space_avail` (one byte kept free), completions are retired
/// like `tcmu_handle_completions` (unknown cmd_id = broken ring).
///
/// The handler gets its own mapping of the same memfd (at another address) and a socket
/// standing in for the uio fd.
final class KernelRingSimulator {
    static let blockSize = 4096

    let ringSize: UInt32
    let dataOffset: Int
    let dataBlocks: Int
    let mapSize: Int
    let memfd: Int32
    /// The kernel's view.
    let base: UnsafeMutableRawPointer
    /// The handler's mapping (different address, same bytes).
    let handlerBase: UnsafeMutableRawPointer
    let kernelFD: Int32
    let handlerFD: Int32

    private(set) var head: UInt32 = 0
    private(set) var lastCleaned: UInt32 = 0
    private var blockUsed: [Bool]
    private(set) var usedBlocks = 0
    private var inFlight: [UInt16: InFlight] = [:]
    private var inFlightBitmap = [Bool](repeating: false, count: 65536)
    private(set) var broken = false
    var blocked = false
    /// Commands whose response was written into a slot other than their own entry.
    private(set) var stolenSlots = 0

    struct InFlight {
        var entryOffset: UInt32
        var blocks: [Int]
        var iovecs: [(offset: Int, length: Int)]
        var length: Int
        var isRead: Bool
        var tag: Int
    }

    struct Completion {
        var id: UInt16
        var tag: Int
        var status: UInt8
        var sense: [UInt8]
        var readLength: UInt32?
        /// For reads: min(read_len, length) bytes gathered from the data area.
        var data: UnsafeRawBufferPointer
        var dataSegments: [(offset: Int, length: Int)]
        var gatheredLength: Int
        var isRead: Bool
    }

    init(ringBytes: Int = 64 * 1024, dataBytes: Int = 1024 * 1024,
         capabilities: TCMUProtocol.Capabilities = [.outOfOrderCompletion, .readLength, .taskManagement, .keepBuffer]) {
        ringSize = UInt32(ringBytes - TCMUProtocol.mailboxSize)
        dataOffset = ringBytes
        dataBlocks = dataBytes / Self.blockSize
        mapSize = ringBytes + dataBytes
        blockUsed = [Bool](repeating: false, count: dataBlocks)
        memfd = ctcmu_memfd("tcmu-sim", UInt64(mapSize))
        precondition(memfd >= 0)
        var err: Int32 = 0
        base = ctcmu_map(memfd, UInt64(mapSize), &err)!
        handlerBase = ctcmu_map(memfd, UInt64(mapSize), &err)!
        var fds: [Int32] = [0, 0]
        precondition(ctcmu_socketpair(&fds) == 0)
        kernelFD = fds[0]
        handlerFD = fds[1]
        ctcmu_mb_init(base, TCMUProtocol.mailboxVersion, capabilities.rawValue,
                      UInt32(TCMUProtocol.mailboxSize), ringSize)
    }

    deinit {
        _ = ctcmu_unmap(base, UInt64(mapSize))
        _ = ctcmu_unmap(handlerBase, UInt64(mapSize))
        _ = ctcmu_close(memfd)
        _ = ctcmu_close(kernelFD)
        _ = ctcmu_close(handlerFD)
    }

    func handlerRing() throws -> MappedRing { try MappedRing(base: handlerBase, size: mapSize) }

    var inFlightCount: Int { inFlight.count }
    var inFlightIDs: [UInt16] { Array(inFlight.keys) }

    // MARK: - Ring space (target_core_user.c: spc_used, spc_free, head_to_end)

    private func used(_ head: UInt32, _ tail: UInt32) -> Int {
        let d = Int(head) - Int(tail)
        return d >= 0 ? d : Int(ringSize) + d
    }
    private func free(_ head: UInt32, _ tail: UInt32) -> Int { Int(ringSize) - used(head, tail) - 1 }
    private func headToEnd(_ head: UInt32) -> Int { Int(ringSize) - Int(head) }

    private static func roundUp(_ n: Int) -> Int { (n + 7) & ~7 }

    /// Reserves `size` bytes at head, writing a PAD to the ring end first when needed.
    /// Returns the entry offset or nil when the ring is full.
    private func reserve(_ size: Int) -> UInt32? {
        var needed = size
        if headToEnd(head) < size { needed += headToEnd(head) }
        guard free(head, lastCleaned) >= needed else { return nil }
        if headToEnd(head) < size {
            let pad = headToEnd(head)
            let off = UInt64(TCMUProtocol.mailboxSize) + UInt64(head)
            ctcmu_ent_write_hdr(base, off, UInt32(pad) | UInt32(TCMUProtocol.Opcode.pad.rawValue), 0)
            head = 0
        }
        return head
    }

    private func publish(_ size: Int) {
        head = (head + UInt32(size)) % ringSize
        ctcmu_mb_set_cmd_head(base, head)
    }

    func kick() {
        _ = ctcmu_uio_kick(kernelFD) // EAGAIN: the handler has wakeups queued already
    }

    // MARK: - Commands (queue_cmd_ring)

    private func lowestFreeID() -> UInt16? {
        for id in 1...0xFFFF where !inFlightBitmap[id] { return UInt16(id) }
        return nil
    }

    private func allocateBlocks(_ n: Int) -> [Int]? {
        guard dataBlocks - usedBlocks >= n else { return nil }
        var out: [Int] = []
        out.reserveCapacity(n)
        var i = 0
        while out.count < n {
            if !blockUsed[i] { out.append(i) }
            i += 1
        }
        for b in out { blockUsed[b] = true }
        usedBlocks += n
        return out
    }

    /// Queues a command. `fill` writes the data-out payload (or, for reads, is nil and the
    /// buffer keeps stale bytes, like reused kernel pages). Returns its cmd_id, or nil when
    /// ring or data area is full (the kernel's qfull queue).
    func submit(cdb: [UInt8], length: Int, isRead: Bool, tag: Int,
                fill: ((UnsafeMutableRawBufferPointer, Int) -> Void)? = nil) -> UInt16? {
        precondition(!blocked)
        let nBlocks = (length + Self.blockSize - 1) / Self.blockSize
        let base0 = Self.roundUp(max(TCMUProtocol.commandEntrySize,
                                     TCMUProtocol.iovecArrayOffset + nBlocks * TCMUProtocol.iovecSize))
        let size = Self.roundUp(base0 + cdb.count)
        guard size <= Int(ringSize) / 2, dataBlocks - usedBlocks >= nBlocks else { return nil }
        let savedHead = head
        guard let at = reserve(size) else { return nil }
        guard let id = lowestFreeID(), let blocks = allocateBlocks(nBlocks) else {
            head = savedHead
            return nil
        }
        // iovecs: consecutive blocks merge into one (scatter_data_area / tcmu_setup_iovs).
        var iovecs: [(offset: Int, length: Int)] = []
        var remaining = length
        for b in blocks {
            let l = min(remaining, Self.blockSize)
            let o = dataOffset + b * Self.blockSize
            if let last = iovecs.last, last.offset + last.length == o {
                iovecs[iovecs.count - 1].length += l
            } else {
                iovecs.append((o, l))
            }
            remaining -= l
        }
        if let fill {
            var at = 0
            for v in iovecs {
                fill(UnsafeMutableRawBufferPointer(start: base + v.offset, count: v.length), at)
                at += v.length
            }
        }
        let off = UInt64(TCMUProtocol.mailboxSize) + UInt64(at)
        memset(base + Int(off), 0, size)
        let cdbOff = off + UInt64(base0)
        ctcmu_req_write(base, off, UInt32(iovecs.count), 0, cdbOff)
        for (i, v) in iovecs.enumerated() {
            ctcmu_req_write_iov(base, off, UInt32(i), UInt64(v.offset), UInt64(v.length))
        }
        cdb.withUnsafeBytes { (base + Int(cdbOff)).copyMemory(from: $0.baseAddress!, byteCount: cdb.count) }
        ctcmu_ent_write_hdr(base, off, UInt32(size) | UInt32(TCMUProtocol.Opcode.command.rawValue), id)
        inFlight[id] = InFlight(entryOffset: at, blocks: blocks, iovecs: iovecs, length: length, isRead: isRead, tag: tag)
        inFlightBitmap[Int(id)] = true
        publish(size)
        return id
    }

    /// Queues a TMR notification listing `ids` (tcmu_tmr_notify). False when the ring is full.
    @discardableResult
    func submitTaskManagement(_ type: TCMUProtocol.TaskManagementType, ids: [UInt16]) -> Bool {
        let size = Self.roundUp(TCMUProtocol.tmrEntrySize + 2 * ids.count)
        guard let at = reserve(size) else { return false }
        let off = UInt64(TCMUProtocol.mailboxSize) + UInt64(at)
        memset(base + Int(off), 0, size)
        ctcmu_tmr_write(base, off, type.rawValue, UInt32(ids.count))
        for (i, id) in ids.enumerated() { ctcmu_tmr_write_cmd_id(base, off, UInt32(i), id) }
        ctcmu_ent_write_hdr(base, off, UInt32(size) | UInt32(TCMUProtocol.Opcode.taskManagement.rawValue), 0)
        publish(size)
        return true
    }

    /// An entry with an opcode this ABI does not define (a future kernel's).
    func submitUnknownEntry(op: UInt8, size: Int = 16) -> Bool {
        guard let at = reserve(size) else { return false }
        let off = UInt64(TCMUProtocol.mailboxSize) + UInt64(at)
        memset(base + Int(off), 0, size)
        ctcmu_ent_write_hdr(base, off, UInt32(size) | UInt32(op), 0)
        publish(size)
        return true
    }

    /// uflags of the entry at ring position `position` (after the handler processed it).
    func uflags(atRingPosition position: UInt32) -> UInt8 {
        ctcmu_ent_uflags(base, UInt64(TCMUProtocol.mailboxSize) + UInt64(position))
    }

    // MARK: - Completions (tcmu_handle_completions)

    /// Retires everything up to the handler's cmd_tail; `body` sees each completion while
    /// its data blocks are still allocated.
    func retire(_ body: (Completion) -> Void) {
        let tail = ctcmu_mb_cmd_tail(base)
        while lastCleaned != tail && !broken {
            let off = UInt64(TCMUProtocol.mailboxSize) + UInt64(lastCleaned)
            let lenOp = ctcmu_ent_len_op(base, off)
            let len = lenOp & ~TCMUProtocol.opMask
            let op = UInt8(lenOp & TCMUProtocol.opMask)
            guard len > 0 else { broken = true; return }
            if op == TCMUProtocol.Opcode.command.rawValue {
                let id = ctcmu_ent_cmd_id(base, off)
                guard let cmd = inFlight.removeValue(forKey: id) else {
                    broken = true // "cmd_id %u not found, ring is broken"
                    return
                }
                inFlightBitmap[Int(id)] = false
                if cmd.entryOffset != lastCleaned { stolenSlots += 1 }
                let uflags = ctcmu_ent_uflags(base, off)
                var status = ctcmu_rsp_scsi_status(base, off)
                if uflags & TCMUProtocol.UserFlags.unknownOp.rawValue != 0 { status = 0x02 }
                let sense = status == 0x02
                    ? [UInt8](UnsafeRawBufferPointer(start: ctcmu_rsp_sense(base, off), count: TCMUProtocol.senseBufferSize))
                    : []
                var readLength: UInt32? = nil
                var gathered = cmd.isRead ? cmd.length : 0
                if uflags & TCMUProtocol.UserFlags.readLength.rawValue != 0 {
                    readLength = ctcmu_rsp_read_len(base, off)
                    if cmd.isRead { gathered = min(gathered, Int(readLength!)) }
                }
                body(Completion(id: id, tag: cmd.tag, status: status, sense: sense, readLength: readLength,
                                data: UnsafeRawBufferPointer(start: base, count: mapSize),
                                dataSegments: cmd.iovecs, gatheredLength: gathered, isRead: cmd.isRead))
                for b in cmd.blocks { blockUsed[b] = false }
                usedBlocks -= cmd.blocks.count
            }
            lastCleaned = (lastCleaned + len) % ringSize
        }
    }

    /// Waits up to `timeoutMS` for the handler's kick and drains queued kicks.
    @discardableResult
    func waitForKick(timeoutMS: Int32) -> Bool {
        let r = ctcmu_wait(kernelFD, -1, timeoutMS)
        guard r > 0 else { return false }
        var buf = [UInt8](repeating: 0, count: 4096)
        while read(kernelFD, &buf, buf.count) > 0 {}
        return true
    }

    // MARK: - action/reset_ring (tcmu_reset_ring)

    /// Completes every in-flight command BUSY and zeroes head, tail and the cleaned mark.
    func resetRing() -> [Int] {
        var tags: [Int] = []
        for (id, cmd) in inFlight {
            tags.append(cmd.tag)
            inFlightBitmap[Int(id)] = false
            for b in cmd.blocks { blockUsed[b] = false }
        }
        usedBlocks = 0
        inFlight.removeAll()
        head = 0
        lastCleaned = 0
        ctcmu_mb_set_cmd_head(base, 0)
        ctcmu_mb_set_cmd_tail(base, 0)
        broken = false
        return tags
    }
}

import Backstores
import Synchronization

/// Per-LU state that commands of several nexuses share; guarded by `LogicalUnit.state`.
struct LogicalUnitState: Sendable {
    var mode: ModePages
    var pr = PersistentReservations()
    /// Holder of a RESERVE(6)/RESERVE(10) reservation (SPC-2 5.5.1).
    var legacyHolder: NexusID?
    var unitAttentions = UnitAttentions()
    var stopped = false
}

/// What one command sees of the world besides the LU.
struct CommandContext {
    let cdb: ByteReader
    let nexus: NexusID
    let dataOut: IOVectors
    let dataIn: IOVectors
    unowned let target: SCSITarget
    /// Set for the event-loop fast path: reads may only come from the page cache.
    var nonBlocking = false
    /// Set when the caller takes the answer by callback: a READ or WRITE of a
    /// CompletingBlockStore is submitted and answered here (from the store's thread).
    var onCompletion: (@Sendable (SCSICommandResult) -> Void)?

    /// False on the event-loop paths, where nothing may wait.
    var mayBlock: Bool { !nonBlocking && onCompletion == nil }

    /// Looked up only by the few commands that need names (VPD 0x83, PR), not per I/O.
    var identity: ITNexus {
        target.identity(of: nexus) ?? ITNexus(initiatorName: "", isid: 0, targetName: target.name)
    }
}

/// The LU settings the command handlers read without the lock (captured at dispatch).
/// WCE is not here: writes read it under the I/O lock (`writeCacheOn`), so none can use
/// a setting older than a MODE SELECT that turned the cache off.
struct CommandSnapshot {
    var softwareWriteProtect: Bool
}

/// One logical unit: a store, its configuration and the shared state. Commands run
/// concurrently; the mutex is held only for state checks, never across I/O.
final class LogicalUnit: Sendable {
    let lun: UInt64
    let store: any BlockStore
    let configuration: LogicalUnitConfiguration
    let defaults: ModePages
    let state: Mutex<LogicalUnitState>
    let ioLock = IOLock()
    /// WCE as writes see it: read under `ioLock` (shared), changed under it (exclusive),
    /// so a write runs entirely before or entirely after a change.
    let writeCacheOn: Atomic<Bool>
    let statistics: LUNStatisticsRecorder
    /// Where the persistent reservations live when other gateways serve the same store.
    let sharedReservations: SharedReservations?
    /// The store again when it completes reads and writes by callback.
    let completingStore: (any CompletingBlockStore)?

    init(lun: UInt64, store: any BlockStore, configuration: LogicalUnitConfiguration) {
        self.lun = lun
        self.store = store
        self.configuration = configuration
        statistics = configuration.statistics ?? LUNStatisticsRecorder()
        defaults = ModePages(writeCacheEnabled: configuration.writeCacheEnabled)
        state = Mutex(LogicalUnitState(mode: defaults))
        writeCacheOn = Atomic(defaults.writeCacheEnabled)
        sharedReservations = ((try? store.sharedRecord("pr")) ?? nil).map(SharedReservations.init)
        completingStore = store as? any CompletingBlockStore
    }

    /// Whether a write must reach the media before GOOD. Call under `ioLock`.
    @inline(__always)
    func mustBeDurable(fua: Bool) -> Bool { fua || !writeCacheOn.load(ordering: .relaxed) }

    var blockSize: Int { store.logicalBlockSize }
    var blockCount: UInt64 { store.byteCount / UInt64(store.logicalBlockSize) }
    var isThin: Bool { store.isThinProvisioned }

    /// Commands the non-blocking path may run: the reads, whose data may sit in the page cache.
    static func mayRunWithoutBlocking(_ opcode: UInt8) -> Bool {
        opcode == Opcode.read10 || opcode == Opcode.read16 || opcode == Opcode.read12 || opcode == Opcode.read6
    }

    /// Commands a CompletingBlockStore may answer by callback: the plain reads and writes.
    static func mayComplete(_ opcode: UInt8) -> Bool {
        mayRunWithoutBlocking(opcode)
            || opcode == Opcode.write10 || opcode == Opcode.write16 || opcode == Opcode.write12 || opcode == Opcode.write6
    }

    /// How a command left `execute`.
    enum Execution {
        case finished(SCSICommandResult)
        /// Only on the event-loop paths: the command must run again where it may block. Nothing
        /// has changed then: unit attentions and reservations were checked, not consumed.
        case wouldBlock
        /// Handed to the store; `ctx.onCompletion` gets the answer.
        case submitted
    }

    /// Reads a single CDB, checks unit attentions and reservations, and runs the command.
    func execute(_ ctx: CommandContext) -> Execution {
        let op = ctx.cdb[0]
        let info = CommandInfo.lookup(op, ctx.cdb)
        do throws(SCSIError) {
            if let shared = sharedReservations, shared.isStale {
                // Another gateway changed the reservations: read them before deciding (not on
                // the event loop; a failed read keeps the last copy, the command's I/O will tell).
                if !ctx.mayBlock { throw SCSIError.wouldBlock }
                _ = try? shared.refresh(into: self, target: ctx.target)
            }
            let snapshot = try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) -> CommandSnapshot in
                s.unitAttentions.contact(ctx.nexus)
                if info?.reportsUnitAttention ?? true, let asc = s.unitAttentions.pop(ctx.nexus) {
                    throw SCSIError.unitAttention(asc)
                }
                if let info {
                    if let holder = s.legacyHolder, holder != ctx.nexus, !info.allowedUnderReserve {
                        throw SCSIError.reservationConflict
                    }
                    if !s.pr.allows(ctx.nexus, access: info.access) { throw SCSIError.reservationConflict }
                }
                return CommandSnapshot(softwareWriteProtect: s.mode.softwareWriteProtect)
            }
            guard let info else { throw SCSIError.invalidOpcode }
            if ctx.cdb.count < info.length { throw SCSIError.invalidOpcode }
            // NACA and LINK are not supported (SAM-5 5.2 control byte).
            let control = ctx.cdb[info.length - 1]
            if control & 0x01 != 0 { throw SCSIError.invalidCDB(byte: info.length - 1, bit: 0) }
            if control & 0x04 != 0 { throw SCSIError.invalidCDB(byte: info.length - 1, bit: 2) }
            return .finished(try dispatch(op, ctx, snapshot))
        } catch {
            if error == .wouldBlock { return .wouldBlock }
            if error == .submitted { return .submitted }
            return .finished(error.result)
        }
    }

    private func dispatch(_ op: UInt8, _ ctx: CommandContext, _ snap: CommandSnapshot) throws(SCSIError) -> SCSICommandResult {
        switch op {
        case Opcode.testUnitReady: return SCSICommandResult(status: .good)
        case Opcode.inquiry: return try inquiry(ctx)
        case Opcode.requestSense: return requestSense(ctx)
        case Opcode.reportLuns: return try ctx.target.reportLuns(ctx, unit: self)
        case Opcode.modeSense6, Opcode.modeSense10: return try modeSense(ctx)
        case Opcode.modeSelect6, Opcode.modeSelect10: return try modeSelect(ctx)
        case Opcode.reserve6, Opcode.reserve10: return try reserve(ctx)
        case Opcode.release6, Opcode.release10: return try release(ctx)
        case Opcode.maintenanceIn: return try maintenanceIn(ctx)
        case Opcode.persistentReserveIn: return try persistentReserveIn(ctx)
        case Opcode.persistentReserveOut: return try persistentReserveOut(ctx)
        case Opcode.startStopUnit: return try startStopUnit(ctx)
        case Opcode.readCapacity10: return try readCapacity10(ctx)
        case Opcode.readDefectData10, Opcode.readDefectData12: return try readDefectData(ctx)
        case Opcode.serviceActionIn16:
            switch ctx.cdb[1] & 0x1F {
            case ServiceAction.readCapacity16: return try readCapacity16(ctx)
            case ServiceAction.getLBAStatus: return try getLBAStatus(ctx)
            default: throw SCSIError.invalidCDB(byte: 1, bit: 4)
            }
        case Opcode.read6, Opcode.read10, Opcode.read12, Opcode.read16: return try read(ctx)
        case Opcode.write6, Opcode.write10, Opcode.write12, Opcode.write16: return try write(ctx, snap)
        case Opcode.writeAndVerify10, Opcode.writeAndVerify12, Opcode.writeAndVerify16: return try write(ctx, snap, verify: true)
        case Opcode.verify10, Opcode.verify12, Opcode.verify16: return try verify(ctx)
        case Opcode.preFetch10, Opcode.preFetch16: return try preFetch(ctx)
        case Opcode.synchronizeCache10, Opcode.synchronizeCache16: return try synchronizeCache(ctx)
        case Opcode.writeSame10, Opcode.writeSame16: return try writeSame(ctx, snap)
        case Opcode.unmap: return try unmap(ctx, snap)
        case Opcode.compareAndWrite: return try compareAndWrite(ctx, snap)
        case Opcode.orWrite16: return try orWrite(ctx, snap)
        default: throw SCSIError.invalidOpcode
        }
    }

    /// DATA PROTECT for writes to a read-only or software-write-protected LU.
    func checkWritable(_ snap: CommandSnapshot) throws(SCSIError) {
        if configuration.readOnly || store.isReadOnly { throw SCSIError.writeProtected }
        if snap.softwareWriteProtect { throw SCSIError(key: SenseKey.dataProtect, asc: .softwareWriteProtected) }
    }

    /// Copies a small answer into data-in, truncated to the allocation length.
    func answer(_ bytes: [UInt8], allocationLength: Int, _ ctx: CommandContext) -> SCSICommandResult {
        let n = min(bytes.count, allocationLength)
        let copied = n == bytes.count ? ctx.dataIn.copyIn(bytes) : ctx.dataIn.copyIn(Array(bytes.prefix(n)))
        return SCSICommandResult(status: .good, dataInCount: copied, transferLength: n)
    }

    /// Queues a unit attention for every nexus that knows this LU except `except`.
    func queueUnitAttention(_ asc: ASC, except: NexusID? = nil) {
        state.withLock { $0.unitAttentions.queueForAll(asc, except: except) }
    }
}

/// Static facts about an operation code used before dispatch.
struct CommandInfo {
    /// CDB length.
    var length: Int
    /// Kind of medium access for reservation conflicts.
    var access: MediumAccess
    /// False for INQUIRY, REPORT LUNS, REQUEST SENSE (SPC-4 5.14 / SAM-5 5.14).
    var reportsUnitAttention = true
    /// Commands a non-holder may still run under RESERVE(6/10) (SPC-2 5.5.1 table 10).
    var allowedUnderReserve = false

    static func lookup(_ op: UInt8, _ cdb: ByteReader) -> CommandInfo? {
        switch op {
        case Opcode.inquiry: return CommandInfo(length: 6, access: .none, reportsUnitAttention: false, allowedUnderReserve: true)
        case Opcode.reportLuns: return CommandInfo(length: 12, access: .none, reportsUnitAttention: false, allowedUnderReserve: true)
        case Opcode.requestSense: return CommandInfo(length: 6, access: .none, reportsUnitAttention: false, allowedUnderReserve: true)
        case Opcode.testUnitReady: return CommandInfo(length: 6, access: .none)
        case Opcode.modeSense6: return CommandInfo(length: 6, access: .read)
        case Opcode.modeSense10: return CommandInfo(length: 10, access: .read)
        case Opcode.modeSelect6: return CommandInfo(length: 6, access: .write)
        case Opcode.modeSelect10: return CommandInfo(length: 10, access: .write)
        case Opcode.reserve6: return CommandInfo(length: 6, access: .none)
        case Opcode.reserve10: return CommandInfo(length: 10, access: .none)
        case Opcode.release6: return CommandInfo(length: 6, access: .none, allowedUnderReserve: true)
        case Opcode.release10: return CommandInfo(length: 10, access: .none, allowedUnderReserve: true)
        case Opcode.maintenanceIn: return CommandInfo(length: 12, access: .none, allowedUnderReserve: true)
        case Opcode.persistentReserveIn: return CommandInfo(length: 10, access: .none)
        case Opcode.persistentReserveOut: return CommandInfo(length: 10, access: .none)
        case Opcode.startStopUnit:
            // Only START=1 with POWER CONDITION 0 is allowed under reservations (SBC-3 table 13).
            return CommandInfo(length: 6, access: cdb[4] & 0xF1 == 0x01 ? .none : .write)
        case Opcode.readCapacity10: return CommandInfo(length: 10, access: .none)
        case Opcode.readDefectData10: return CommandInfo(length: 10, access: .read)
        case Opcode.readDefectData12: return CommandInfo(length: 12, access: .read)
        case Opcode.serviceActionIn16:
            // GET LBA STATUS reads metadata: treated as a read (SBC-3 table 13).
            return CommandInfo(length: 16, access: cdb[1] & 0x1F == ServiceAction.getLBAStatus ? .read : .none)
        case Opcode.read6: return CommandInfo(length: 6, access: .read)
        case Opcode.read10, Opcode.verify10, Opcode.preFetch10: return CommandInfo(length: 10, access: .read)
        case Opcode.read12, Opcode.verify12: return CommandInfo(length: 12, access: .read)
        case Opcode.read16, Opcode.verify16, Opcode.preFetch16: return CommandInfo(length: 16, access: .read)
        case Opcode.write6: return CommandInfo(length: 6, access: .write)
        case Opcode.write10, Opcode.writeAndVerify10, Opcode.synchronizeCache10, Opcode.writeSame10, Opcode.unmap:
            return CommandInfo(length: 10, access: .write)
        case Opcode.write12, Opcode.writeAndVerify12: return CommandInfo(length: 12, access: .write)
        case Opcode.write16, Opcode.writeAndVerify16, Opcode.synchronizeCache16, Opcode.writeSame16, Opcode.compareAndWrite,
             Opcode.orWrite16:
            return CommandInfo(length: 16, access: .write)
        default: return nil
        }
    }
}

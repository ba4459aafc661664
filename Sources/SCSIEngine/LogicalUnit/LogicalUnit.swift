import Backstores
import Synchronization

/// Per-LU state that commands of several nexuses share; guarded by `LogicalUnit.state`.
struct LogicalUnitState: Sendable {
    var mode: ModePages
    /// The values a start and a reset return to: saved with MODE SELECT SP=1, else the defaults.
    var savedMode: ModePages
    var pr = PersistentReservations()
    /// Holder of a RESERVE(6)/RESERVE(10) reservation (SPC-2 5.5.1).
    var legacyHolder: NexusID?
    var unitAttentions = UnitAttentions()
    var stopped = false
    var sanitize = SanitizeStatus.idle
    /// EXTENDED COPY results held for RECEIVE COPY RESULTS, per I_T nexus (SPC-4 6.18.2).
    var copyResults: [NexusID: [CopyResult]] = [:]
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
    /// The nexus's LUN map shows it this LU read-only.
    var readOnlyMapping = false
    /// Set when the caller takes the answer by callback: a READ or WRITE of a
    /// CompletingBlockStore is submitted and answered here (from the store's thread).
    var onCompletion: (@Sendable (SCSICommandResult) -> Void)?

    /// False on the event-loop paths, where nothing may wait.
    var mayBlock: Bool { !nonBlocking && onCompletion == nil }

    /// Looked up only by the few commands that need names (VPD 0x83, PR), not per I/O.
    var identity: ITNexus {
        target.identity(of: nexus) ?? ITNexus(initiatorName: "", initiatorPortID: 0, targetName: target.name)
    }
}

/// The LU settings the command handlers read without the lock (captured at dispatch).
/// WCE is not here: writes read it under the I/O lock (`writeCacheOn`), so none can use
/// a setting older than a MODE SELECT that turned the cache off.
struct CommandSnapshot {
    var softwareWriteProtect: Bool
    /// Read-only for this nexus by its LUN map.
    var readOnlyMapping = false
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
    /// Control page D_SENSE as answers see it.
    let descriptorSense = Atomic<Bool>(false)
    let statistics: LUNStatisticsRecorder
    /// Where the persistent reservations live when other gateways serve the same store.
    let sharedReservations: SharedReservations?
    /// Orders PERSISTENT RESERVE OUT service actions whose result is saved (APTPL).
    let prOutLock = Mutex(())
    /// The store again when it completes reads and writes by callback.
    let completingStore: (any CompletingBlockStore)?

    init(lun: UInt64, store: any BlockStore, configuration: LogicalUnitConfiguration) {
        self.lun = lun
        self.store = store
        self.configuration = configuration
        statistics = configuration.statistics ?? LUNStatisticsRecorder()
        defaults = ModePages(writeCacheEnabled: configuration.writeCacheEnabled)
        state = Mutex(LogicalUnitState(mode: defaults, savedMode: defaults))
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

    /// How a command left `execute`.
    enum Execution {
        case finished(SCSICommandResult)
        /// Only on the event-loop paths: the command must run again where it may block. Nothing
        /// has changed then: unit attentions and reservations were checked, not consumed.
        case wouldBlock
        /// Handed to the store; `ctx.onCompletion` gets the answer.
        case submitted
    }

    /// Looks the CDB up in the command table, checks unit attentions and reservations, and
    /// runs the command's handler.
    func execute(_ ctx: CommandContext) -> Execution {
        let found = CommandLookup.find(ctx.cdb)
        let command: CommandDescriptor?
        if case .command(let c) = found { command = c } else { command = nil }
        do throws(SCSIError) {
            if let shared = sharedReservations, shared.isStale {
                // Another gateway changed the reservations: read them before deciding (not on
                // the event loop; a failed read keeps the last copy, the command's I/O will tell).
                if !ctx.mayBlock { throw SCSIError.wouldBlock }
                _ = try? shared.refresh(into: self, target: ctx.target)
            }
            let snapshot = try state.withLock { (s: inout LogicalUnitState) throws(SCSIError) -> CommandSnapshot in
                s.unitAttentions.contact(ctx.nexus)
                // A sanitize outranks unit attentions: they stay pending until it ended (SBC-4 4.11.4).
                if s.sanitize != .idle, !(command?.allowedDuringSanitize ?? false),
                   let refusal = LogicalUnit.sanitizeRefusal(s.sanitize) {
                    throw refusal
                }
                if command?.reportsUnitAttention ?? true, let asc = s.unitAttentions.pop(ctx.nexus) {
                    throw SCSIError.unitAttention(asc)
                }
                if let command {
                    if let holder = s.legacyHolder, holder != ctx.nexus, !command.allowedUnderReserve {
                        throw SCSIError.reservationConflict
                    }
                    if !s.pr.allows(ctx.nexus, access: command.access(ctx.cdb)) { throw SCSIError.reservationConflict }
                }
                return CommandSnapshot(softwareWriteProtect: s.mode.softwareWriteProtect, readOnlyMapping: ctx.readOnlyMapping)
            }
            guard let command else {
                if case .unknownServiceAction = found { throw SCSIError.invalidCDB(byte: 1, bit: 4) }
                throw SCSIError.invalidOpcode
            }
            if ctx.cdb.count < command.length { throw SCSIError.invalidOpcode }
            if !command.isAvailable(on: self) {
                throw command.serviceAction == nil ? SCSIError.invalidOpcode : SCSIError.invalidCDB(byte: 1, bit: 4)
            }
            // NACA and LINK are not supported (SAM-5 5.2 control byte).
            let control = ctx.cdb[command.length - 1]
            if control & 0x01 != 0 { throw SCSIError.invalidCDB(byte: command.length - 1, bit: 0) }
            if control & 0x04 != 0 { throw SCSIError.invalidCDB(byte: command.length - 1, bit: 2) }
            return .finished(inSenseFormat(try command.handler(self, ctx, snapshot)))
        } catch {
            if error == .wouldBlock { return .wouldBlock }
            if error == .submitted { return .submitted }
            return .finished(inSenseFormat(error.result))
        }
    }

    /// Handlers build fixed-format sense; with D_SENSE set it goes out in descriptor format.
    @inline(__always)
    func inSenseFormat(_ result: SCSICommandResult) -> SCSICommandResult {
        guard !result.sense.isEmpty, descriptorSense.load(ordering: .relaxed),
              let sense = SenseData(parsing: result.sense) else { return result }
        var r = result
        r.sense = sense.bytes(.descriptor)
        return r
    }

    /// DATA PROTECT for writes to a read-only or software-write-protected LU.
    func checkWritable(_ snap: CommandSnapshot) throws(SCSIError) {
        if configuration.readOnly || store.isReadOnly || snap.readOnlyMapping { throw SCSIError.writeProtected }
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

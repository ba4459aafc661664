import Backstores
import Dispatch
import Synchronization

// Behaviour choices worth knowing when wiring a fabric (see also the tests):
// - Data-out shorter than the CDB needs (WRITE family, WRITE SAME, COMPARE AND WRITE,
//   UNMAP, PR OUT): CHECK CONDITION ILLEGAL REQUEST / INVALID FIELD IN INFORMATION UNIT
//   (05/0E03) and nothing is written; libiscsi's write residual tests accept this or GOOD.
//   `transferLength` still says what the CDB wanted, so the fabric can set the overflow
//   residual. Longer data-out: only the CDB's length is used (underflow residual), except
//   COMPARE AND WRITE, where it is INVALID FIELD IN CDB (libiscsi InvalidDataOutSize).
// - Data-in capacity smaller than the data: what fits is copied, `transferLength` is the
//   full length (capped by the allocation length for allocation-length commands).
// - Unit attentions: 29/00 on the first command of a nexus to each LU; a LUN reset queues
//   29/03 for every nexus (the issuer too), TARGET WARM RESET 29/02, TARGET COLD RESET 29/01; both
//   release RESERVE(6/10) and restore default mode pages; persistent reservations stay.
// - PRE-FETCH answers GOOD (no cache to stage into), never CONDITION MET.

/// A SCSI target device: the set of logical units one target name exports, the nexuses
/// that talk to it, and the command dispatcher. Thread-safe; `execute` is blocking
/// (it does the backstore I/O) and is called from I/O worker threads.
public final class SCSITarget: Sendable {
    /// The target name (IQN); used for the target port identifiers in VPD 0x83.
    public let name: String
    /// How the fabric names ports (VPD 0x83 port designators, TransportIDs).
    public let transport: any SCSITransport

    struct State {
        var units: [UInt64: LogicalUnit] = [:]
        var nexuses: [NexusID: ITNexus] = [:]
        var ids: [ITNexus: NexusID] = [:]
        /// Nexuses currently logged in (a closed one keeps its ID for reinstatement).
        var open: Set<NexusID> = []
        var nextID: UInt32 = 1
        /// The LUN maps, and what each nexus they name sees (absent: every LU as is).
        var maps: [LUNMap] = []
        var views: [NexusID: LUNView] = [:]

    }
    let state = Mutex(State())
    private let abortHandler = Mutex<(@Sendable (UInt64, [NexusID]) -> Void)?>(nil)
    /// Every gateway's target port group (one per gateway serving this target, ALUA).
    private let configuredPortGroups: Mutex<[UInt16]>
    /// How many LUs have a store that completes by callback (a cheap check per command).
    private let completingUnits = Atomic<Int>(0)
    private let sanitizeRate = Atomic<UInt64>(0)

    /// Bytes per second a SANITIZE of one of this target's LUs may write or erase, so it
    /// leaves the storage to the other LUs; 0: as fast as the store goes. Read when each
    /// chunk of a sanitize is done, so a change applies to sanitizes already running.
    public var sanitizeBytesPerSecond: UInt64 {
        get { sanitizeRate.load(ordering: .relaxed) }
        set { sanitizeRate.store(newValue, ordering: .relaxed) }
    }

    /// `portGroups`: the target port groups of every gateway exporting this target's LUNs
    /// (REPORT TARGET PORT GROUPS lists them all; one gateway: empty or its own tag).
    public init(name: String, portGroups: [UInt16] = [], transport: any SCSITransport = UnnamedTransport()) {
        self.name = name
        self.transport = transport
        configuredPortGroups = Mutex(portGroups)
    }

    /// A new gateway list (gateways added or removed); the next REPORT TARGET PORT GROUPS shows it.
    public func setPortGroups(_ groups: [UInt16]) {
        configuredPortGroups.withLock { $0 = groups }
    }

    public enum ConfigurationError: Error, Sendable, Equatable {
        case lunInUse(UInt64)
        case lunOutOfRange(UInt64)
        case invalidBlockSize(Int)
        /// The persistent reservations saved for the LU cannot be read (APTPL).
        case reservationsUnreadable(String)
        /// The mode pages saved for the LU cannot be read.
        case modePagesUnreadable(String)
    }

    /// Adds a logical unit at `lun`. Other nexuses see REPORTED LUNS DATA HAS CHANGED.
    public func addLogicalUnit(_ lun: UInt64, store: any BlockStore, configuration: LogicalUnitConfiguration) throws {
        // Single-level LUN addressing (SAM-5 4.6.7): peripheral (< 256) or flat space (< 16384).
        guard lun < 16384 else { throw ConfigurationError.lunOutOfRange(lun) }
        let bs = store.logicalBlockSize
        guard bs >= 512, bs.nonzeroBitCount == 1 else { throw ConfigurationError.invalidBlockSize(bs) }
        let unit = LogicalUnit(lun: lun, store: store, configuration: configuration)
        if unit.sharedReservations == nil, let saved = configuration.reservationPersistence {
            try unit.restoreReservations(from: saved, target: self)
        }
        if let saved = configuration.savedModePages { try unit.restoreModePages(from: saved) }
        let others = try state.withLock { s throws(ConfigurationError) -> [LogicalUnit] in
            if s.units[lun] != nil { throw .lunInUse(lun) }
            let others = Array(s.units.values)
            s.units[lun] = unit
            return others
        }
        if unit.completingStore != nil { completingUnits.add(1, ordering: .relaxed) }
        for u in others { u.queueUnitAttention(.reportedLunsDataHasChanged) }
        // A resize made elsewhere (a shared image) reaches every nexus (SBC-3 4.6).
        store.watchCapacity { [weak unit] in unit?.queueUnitAttention(.capacityDataHasChanged) }
    }

    /// Removes a logical unit; returns its store so the caller can close it.
    @discardableResult
    public func removeLogicalUnit(_ lun: UInt64) -> (any BlockStore)? {
        let (removed, others) = state.withLock { s -> (LogicalUnit?, [LogicalUnit]) in
            let r = s.units.removeValue(forKey: lun)
            return (r, Array(s.units.values))
        }
        guard let removed else { return nil }
        if removed.completingStore != nil { completingUnits.subtract(1, ordering: .relaxed) }
        for u in others { u.queueUnitAttention(.reportedLunsDataHasChanged) }
        return removed.store
    }

    /// LUNs in ascending order.
    public var logicalUnitNumbers: [UInt64] {
        state.withLock { $0.units.keys.sorted() }
    }

    /// Registers a nexus at login. The same identity gets the same ID (session reinstatement).
    public func openNexus(_ nexus: ITNexus) -> NexusID {
        state.withLock { s in
            let id = Self.id(for: nexus, in: &s)
            s.open.insert(id)
            return id
        }
    }

    private static func id(for nexus: ITNexus, in s: inout State) -> NexusID {
        if let id = s.ids[nexus] { return id }
        let id = NexusID(rawValue: s.nextID)
        if let view = LUNView.of(nexus.initiatorName, under: s.maps) { s.views[id] = view }
        s.nextID &+= 1
        s.ids[nexus] = id
        s.nexuses[id] = nexus
        return id
    }

    /// The ID of a nexus that may not have logged in yet (REGISTER AND MOVE names one).
    func nexusID(for nexus: ITNexus) -> NexusID {
        state.withLock { s in Self.id(for: nexus, in: &s) }
    }

    /// The same, noting in `created` an ID made now (for `forgetNexuses` if it is not kept).
    func nexusID(for nexus: ITNexus, created: inout [NexusID]) -> NexusID {
        let (id, fresh) = state.withLock { s -> (NexusID, Bool) in
            if let id = s.ids[nexus] { return (id, false) }
            return (Self.id(for: nexus, in: &s), true)
        }
        if fresh { created.append(id) }
        return id
    }

    /// Drops IDs made for identities a failed command named: never logged in, nothing kept of
    /// them, so hostile TransportIDs leave no trace.
    func forgetNexuses(_ ids: [NexusID]) {
        state.withLock { s in
            for id in ids where !s.open.contains(id) {
                if let identity = s.nexuses.removeValue(forKey: id) { s.ids.removeValue(forKey: identity) }
                s.views.removeValue(forKey: id)
            }
        }
    }

    /// Target port groups: every configured gateway's and those seen on nexuses, ascending.
    func portalGroupTags(including tag: UInt16) -> [UInt16] {
        var tags = Set(configuredPortGroups.withLock { $0 })
        state.withLock { s in
            tags.formUnion(s.nexuses.values.filter { $0.targetName == name }.map(\.targetPortalGroupTag))
        }
        tags.insert(tag)
        return tags.sorted()
    }

    func identity(of id: NexusID) -> ITNexus? {
        state.withLock { $0.nexuses[id] }
    }

    /// All known nexuses of an initiator (one port of it, or any), through one target port
    /// or any (for TransportIDs).
    func nexuses(initiatorName: String, initiatorPortID: UInt64?, targetPortalGroupTag: UInt16?) -> [NexusID] {
        state.withLock { s in
            s.nexuses.filter { (_, n) in
                n.targetName == name
                    && n.initiatorName.lowercased() == initiatorName.lowercased()
                    && (initiatorPortID == nil || n.initiatorPortID == initiatorPortID!)
                    && (targetPortalGroupTag == nil || n.targetPortalGroupTag == targetPortalGroupTag!)
            }.map(\.key).sorted { $0.rawValue < $1.rawValue }
        }
    }

    /// The nexus is gone (logout, connection loss): RESERVE(6/10) reservations it holds are
    /// released; persistent reservations stay.
    public func closeNexus(_ id: NexusID) {
        let (units, identity) = state.withLock { s -> ([LogicalUnit], ITNexus?) in
            s.open.remove(id)
            return (Array(s.units.values), s.nexuses[id])
        }
        for u in units {
            let held = u.state.withLock { s -> Bool in
                s.copyResults[id] = nil
                defer { if s.legacyHolder == id { s.legacyHolder = nil } }
                return s.legacyHolder == id
            }
            // Shared with other gateways: they must see it ended too. Only for a nexus that
            // held a RESERVE(6), so the rare round trip to the store is taken on this thread.
            if held, let identity, let shared = u.sharedReservations { shared.releaseLegacy(heldBy: identity, target: self) }
        }
    }

    func unit(_ lun: UInt64) -> LogicalUnit? {
        state.withLock { $0.units[lun] }
    }

    /// Runs one command to completion. `dataOut` holds the bytes the initiator sent (may be
    /// shorter or longer than the CDB asks for); `dataIn` is where data-in goes (its capacity
    /// is the fabric's expected transfer length).
    public func execute(cdb: UnsafeRawBufferPointer, lun: UInt64, nexus: NexusID,
                        attribute: TaskAttribute, dataOut: IOVectors, dataIn: IOVectors) -> SCSICommandResult {
        let mapped = state.withLock { $0.mapped(lun, for: nexus) }
        var ctx = CommandContext(cdb: ByteReader(bytes: cdb), nexus: nexus, dataOut: dataOut, dataIn: dataIn, target: self)
        if cdb.isEmpty { return SCSIError.invalidOpcode.result }
        if let mapped {
            let unit = mapped.unit
            ctx.readOnlyMapping = mapped.readOnly
            return recorded(unit, opcode: cdb[0]) {
                if case .finished(let result) = unit.execute(ctx) { return result }
                preconditionFailure("a blocking execution always finishes")
            }
        }
        return executeWithoutUnit(ctx)
    }

    /// The event-loop fast path: runs a READ whose data the page cache already holds, without
    /// blocking. Returns nil when the command is not a read or would block; the caller then runs
    /// `execute` on an I/O thread. A unit attention or reservation conflict is answered here.
    public func executeWithoutBlocking(cdb: UnsafeRawBufferPointer, lun: UInt64, nexus: NexusID,
                                       attribute: TaskAttribute, dataIn: IOVectors) -> SCSICommandResult? {
        guard let opcode = cdb.first, CommandLookup.descriptor(cdb)?.fastPaths.contains(.pageCacheRead) == true,
              let mapped = state.withLock({ $0.mapped(lun, for: nexus) }), mapped.unit.store.mayReadWithoutBlocking else { return nil }
        let unit = mapped.unit
        var ctx = CommandContext(cdb: ByteReader(bytes: cdb), nexus: nexus, dataOut: .empty, dataIn: dataIn, target: self)
        ctx.readOnlyMapping = mapped.readOnly
        ctx.nonBlocking = true
        let start = ContinuousClock.now
        guard case .finished(let result) = unit.execute(ctx) else { return nil }  // deferred: counted when it runs
        record(unit, opcode: opcode, result: result, since: start)
        return result
    }

    /// True when `submit` may take commands for `lun`: its store completes I/O by callback.
    /// One relaxed load when no LU does.
    public func completesByCallback(lun: UInt64, nexus: NexusID) -> Bool {
        guard completingUnits.load(ordering: .relaxed) > 0 else { return false }
        return state.withLock { $0.mapped(lun, for: nexus) }?.unit.completingStore != nil
    }

    /// The event-loop path for a store that completes by callback: a READ or WRITE of one
    /// buffer is handed to the store and `completion` answers it (on the store's thread; at
    /// once for an error found before). Returns false when the command did not go this way
    /// (another command, a store that blocks, a COMPARE AND WRITE in progress); nothing has
    /// changed then, and the caller runs `execute` on an I/O thread. The buffers must stay
    /// valid until `completion` ran.
    public func submit(cdb: UnsafeRawBufferPointer, lun: UInt64, nexus: NexusID, attribute: TaskAttribute,
                       dataOut: IOVectors, dataIn: IOVectors,
                       completion: @escaping @Sendable (SCSICommandResult) -> Void) -> Bool {
        guard let opcode = cdb.first, CommandLookup.descriptor(cdb)?.fastPaths.contains(.callback) == true,
              let mapped = state.withLock({ $0.mapped(lun, for: nexus) }), mapped.unit.completingStore != nil else { return false }
        let unit = mapped.unit
        let start = ContinuousClock.now
        let recorder = unit.statistics
        var ctx = CommandContext(cdb: ByteReader(bytes: cdb), nexus: nexus, dataOut: dataOut, dataIn: dataIn, target: self)
        ctx.readOnlyMapping = mapped.readOnly
        ctx.onCompletion = { result in
            SCSITarget.record(recorder, opcode: opcode, result: result, since: start)
            completion(result)
        }
        switch unit.execute(ctx) {
        case .wouldBlock: return false
        case .submitted: return true
        case .finished(let result):
            record(unit, opcode: opcode, result: result, since: start)
            completion(result)
            return true
        }
    }

    /// Runs a command and counts it in the LU's statistics (a few relaxed atomic adds).
    @inline(__always)
    private func recorded(_ unit: LogicalUnit, opcode: UInt8, _ body: () -> SCSICommandResult) -> SCSICommandResult {
        let start = ContinuousClock.now
        let result = body()
        record(unit, opcode: opcode, result: result, since: start)
        return result
    }

    @inline(__always)
    private func record(_ unit: LogicalUnit, opcode: UInt8, result: SCSICommandResult, since start: ContinuousClock.Instant) {
        SCSITarget.record(unit.statistics, opcode: opcode, result: result, since: start)
    }

    @inline(__always)
    private static func record(_ statistics: LUNStatisticsRecorder, opcode: UInt8, result: SCSICommandResult,
                               since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        statistics.record(opcode: opcode, result: result,
                          nanoseconds: UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds / 1_000_000_000)))
    }

    /// A LUN with nothing behind it (SPC-4 4.6.4 / SAM-5 5.9.5).
    private func executeWithoutUnit(_ ctx: CommandContext) -> SCSICommandResult {
        do throws(SCSIError) {
            switch ctx.cdb[0] {
            case Opcode.inquiry:
                if ctx.cdb[1] & 0x03 != 0 || ctx.cdb[2] != 0 { throw SCSIError.logicalUnitNotSupported }
                var data = [UInt8](repeating: 0, count: 36)
                data[0] = 0x7F // peripheral qualifier 3, device type 0x1F
                data[2] = 0x06
                data[3] = 0x12
                data[4] = 31
                let alloc = Int(ctx.cdb.u16(3))
                let n = min(data.count, alloc)
                let copied = ctx.dataIn.copyIn(Array(data.prefix(n)))
                return SCSICommandResult(status: .good, dataInCount: copied, transferLength: n)
            case Opcode.reportLuns:
                return try reportLuns(ctx, unit: nil)
            case Opcode.requestSense:
                // Sense data describing the missing LU, with GOOD status (SPC-4 6.39).
                let sense = SCSIError.logicalUnitNotSupported.senseBytes
                let n = min(sense.count, Int(ctx.cdb[4]))
                let copied = ctx.dataIn.copyIn(Array(sense.prefix(n)))
                return SCSICommandResult(status: .good, dataInCount: copied, transferLength: n)
            default:
                throw SCSIError.logicalUnitNotSupported
            }
        } catch {
            return error.result
        }
    }

    /// REPORT LUNS (SPC-4 6.33).
    func reportLuns(_ ctx: CommandContext, unit: LogicalUnit?) throws(SCSIError) -> SCSICommandResult {
        let select = ctx.cdb[2]
        let alloc = Int(ctx.cdb.u32(6))
        guard select <= 2 else { throw SCSIError.invalidCDB(byte: 2) }
        guard alloc >= 16 else { throw SCSIError.invalidCDB(byte: 6) }
        // Select 1 asks for well-known LUs only; we have none.
        let luns = select == 1 ? [] : visibleLUNs(for: ctx.nexus)
        var w = ByteWriter(capacity: 8 + luns.count * 8)
        w.u32(UInt32(luns.count * 8))
        w.u32(0)
        for l in luns {
            if l < 256 { w.u8(0); w.u8(UInt8(l)) } else { w.u8(0x40 | UInt8(l >> 8)); w.u8(UInt8(l & 0xFF)) }
            w.zeros(6)
        }
        // The condition belongs to the I_T nexus, whichever LU reported it (SPC-4 6.33).
        if unit != nil {
            for u in state.withLock({ Array($0.units.values) }) {
                u.state.withLock { $0.unitAttentions.remove(.reportedLunsDataHasChanged, for: ctx.nexus) }
            }
        }
        let n = min(w.count, alloc)
        let copied = ctx.dataIn.copyIn(n == w.count ? w.bytes : Array(w.bytes.prefix(n)))
        return SCSICommandResult(status: .good, dataInCount: copied, transferLength: n)
    }

    /// Whether `taskManagement` may wait on storage (a reset of an LU other gateways share
    /// tells them through the store): the fabric then calls it off its event loop.
    public func taskManagementMayBlock(_ function: TaskManagementFunction, lun: UInt64, nexus: NexusID) -> Bool {
        switch function {
        case .logicalUnitReset: return unit(lun, for: nexus)?.sharedReservations != nil
        case .targetWarmReset, .targetColdReset: return state.withLock { $0.units.values.contains { $0.sharedReservations != nil } }
        default: return false
        }
    }

    /// Engine side of a task management function (resets, unit attentions).
    public func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: NexusID) -> TaskManagementResponse {
        switch function {
        case .abortTask, .abortTaskSet, .clearTaskSet:
            // Aborting tasks is the fabric's job; nothing of ours is queued.
            return unit(lun, for: nexus) == nil && function != .abortTask ? .lunDoesNotExist : .functionComplete
        case .clearACA:
            // NACA is never accepted, so there is never an ACA to clear.
            return .functionRejected
        case .logicalUnitReset:
            guard let u = unit(lun, for: nexus) else { return .lunDoesNotExist }
            u.reset(asc: .busDeviceResetOccurred, by: nexus)
            // The nexuses of the other gateways of a shared LU see the reset too (SAM-5 6.3.3:
            // every I_T nexus of the logical unit), before the function completes.
            u.sharedReservations?.announceToOthers(.busDeviceResetOccurred, target: self)
            return .functionComplete
        case .targetWarmReset, .targetColdReset:
            // SAM-5 6.3: warm reset -> TARGET RESET OCCURRED (29/02), cold -> POWER ON (29/01).
            let asc = function == .targetWarmReset ? ASC(0x29, 0x02) : ASC(0x29, 0x01)
            for u in state.withLock({ Array($0.units.values) }) {
                u.reset(asc: asc, by: nexus)
                u.sharedReservations?.releaseLegacy(heldBy: nil, target: self)
            }
            return .functionComplete
        }
    }

    /// Installs what the fabric does when PERSISTENT RESERVE OUT PREEMPT AND ABORT asks for
    /// the tasks of other nexuses on a LUN to be aborted (SPC-4 5.13.11.5). Called after the
    /// reservation state changed, from the thread running the command, without engine locks.
    public func setAbortHandler(_ handler: @escaping @Sendable (_ lun: UInt64, _ nexuses: [NexusID]) -> Void) {
        abortHandler.withLock { $0 = handler }
    }

    /// Asks the fabric to abort the tasks of `nexuses` on `unit`, at the LUN number each of
    /// them uses for it.
    func abortTasks(unit: LogicalUnit, nexuses: [NexusID]) {
        guard !nexuses.isEmpty, let handler = abortHandler.withLock({ $0 }) else { return }
        let byNumber = state.withLock { s -> [UInt64: [NexusID]] in
            var out: [UInt64: [NexusID]] = [:]
            for n in nexuses {
                guard let view = s.views[n] else { out[unit.lun, default: []].append(n); continue }
                for e in view.entries.values where e.unit == unit.lun { out[e.lun, default: []].append(n) }
            }
            return out
        }
        for (lun, group) in byNumber.sorted(by: { $0.key < $1.key }) { handler(lun, group) }
    }

    /// The counters of a LU (nil when there is no such LUN).
    public func statistics(lun: UInt64) -> LUNStatisticsRecorder? {
        unit(lun)?.statistics
    }

    /// The store behind a LU.
    public func store(lun: UInt64) -> (any BlockStore)? {
        unit(lun)?.store
    }

    /// Signals that the store's capacity changed (after `refreshSize`): CAPACITY DATA HAS CHANGED.
    public func capacityChanged(lun: UInt64) {
        unit(lun)?.queueUnitAttention(.capacityDataHasChanged)
    }
}

extension LogicalUnit {
    /// LU reset (SAM-5 6.3.3, SPC-4 5.13.2): RESERVE(6/10) reservations are released, mode
    /// pages return to their saved values (the defaults, unless saved), persistent reservations stay, and
    /// every nexus, the issuing one included (SAM-5 6.3.3; libiscsi MultipathIO.Reset checks
    /// every path), gets the reset unit attention.
    func reset(asc: ASC, by nexus: NexusID) {
        let saved = state.withLock { s in
            s.legacyHolder = nil
            s.mode = s.savedMode
            s.unitAttentions.replaceAll(with: asc)
            return s.savedMode
        }
        descriptorSense.store(saved.descriptorSense, ordering: .relaxed)
        let wasOn = writeCacheOn.exchange(saved.writeCacheEnabled, ordering: .relaxed)
        if wasOn && !saved.writeCacheEnabled {
            // The cache an initiator had turned on is off again: what it acknowledged must
            // become durable. Not on the caller's thread (the fabric's event loop).
            let store = self.store
            DispatchQueue.global().async { try? store.flush() }
        }
    }
}

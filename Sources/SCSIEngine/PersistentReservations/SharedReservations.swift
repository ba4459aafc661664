import Backstores
import Synchronization

/// Persistent reservations that every gateway of a LUN shares (SPC-4 5.13 across target
/// ports): the state lives in the store's shared record (an object beside an rbd image), not
/// in this process. Registrations name their I_T nexus by identity (initiator port name and
/// target port), so each gateway maps them to its own nexus IDs.
///
/// - PERSISTENT RESERVE OUT reads the record, applies the service action to it and writes
///   it back only if nobody wrote in between (compare-and-swap), else starts again; the other
///   gateways are notified and re-read it before their next command.
/// - PERSISTENT RESERVE IN reads the record first, so every gateway answers alike.
/// - The unit attentions a service action causes travel in the record as numbered events;
///   each gateway queues those of nexuses it serves (an event without an initiator, a LUN
///   reset on another gateway, is for every nexus).
/// - Other commands check the reservation against the copy read at the last notice.
final class SharedReservations: Sendable {
    /// Unit attention events kept in the record for gateways that read it late.
    static let keptEvents = 64
    static let maxAttempts = 32

    struct Event: Equatable, Sendable {
        var serial: UInt64
        var nexus: ITNexus
        var asc: ASC
    }

    /// The record decoded (identities, not nexus IDs).
    struct Record: Equatable, Sendable {
        struct Registration: Equatable, Sendable {
            var nexus: ITNexus
            var key: UInt64
        }
        var generation: UInt32 = 0
        var registrations: [Registration] = []
        var holder: ITNexus?
        var type: PRType?
        /// The holder of a RESERVE(6)/RESERVE(10) reservation (SPC-2), shared the same way.
        var legacyHolder: ITNexus?
        var events: [Event] = []
    }

    /// What a service action works on: the reservations as this gateway names nexuses.
    struct State: Equatable {
        var pr: PersistentReservations
        var legacyHolder: NexusID?
    }

    private struct Cursor {
        /// The newest event already queued here.
        var lastEvent: UInt64 = 0
        var primed = false
    }

    let record: any SharedRecord
    private let cursor = Mutex(Cursor())
    /// A notice came (or nothing was read yet): read before the next command.
    private let stale = Atomic<Bool>(true)

    init(record: any SharedRecord) {
        self.record = record
        record.onChange { [weak self] in self?.stale.store(true, ordering: .releasing) }
    }

    /// Whether the local copy may be behind the record: a notice came, or no notices can come
    /// (the watch is down), so every command reads the record until it stands again.
    var isStale: Bool { stale.load(ordering: .acquiring) || !record.isWatched }

    // MARK: Reading into the local state

    /// Reads the record and installs it as the LU's state; queues the unit attention
    /// events not seen yet. Returns the version read.
    @discardableResult
    func refresh(into unit: LogicalUnit, target: SCSITarget) throws(SCSIError) -> (State, Record, UInt64) {
        stale.store(false, ordering: .releasing)
        let value: SharedRecordValue
        do { value = try record.read() } catch {
            stale.store(true, ordering: .releasing)
            throw SCSIError.backstore(.read, errno: error.errno)
        }
        // A record this version cannot read is never taken for "no reservations" (a write
        // would then wipe them): commands that need it fail until it is repaired.
        guard let decoded = try? Self.decode(value.bytes) else {
            stale.store(true, ordering: .releasing)
            throw SCSIError.backstore(.read, errno: 74 /* EBADMSG */)
        }
        let local = Self.localState(decoded, target: target)
        let fresh = cursor.withLock { c -> [Event] in
            defer { c.primed = true; c.lastEvent = max(c.lastEvent, decoded.events.last?.serial ?? 0) }
            // Events from before this gateway first read the record are history, not news.
            return c.primed ? decoded.events.filter { $0.serial > c.lastEvent } : []
        }
        unit.state.withLock { s in
            s.pr = local.pr
            s.legacyHolder = local.legacyHolder
            for event in fresh {
                if event.nexus.initiatorName.isEmpty {
                    s.unitAttentions.replaceAll(with: event.asc)  // for every nexus (a reset elsewhere)
                } else {
                    s.unitAttentions.queue(event.asc, for: target.nexusID(for: event.nexus))
                }
            }
        }
        return (local, decoded, value.version)
    }

    /// Runs one reservation change (a PERSISTENT RESERVE OUT service action, RESERVE or
    /// RELEASE) against the shared record. Returns what the action returned (the nexuses a
    /// PREEMPT AND ABORT preempted).
    func apply(_ action: (inout State) throws(PersistentReservations.Failure) -> [NexusID],
               unit: LogicalUnit, target: SCSITarget) throws(SCSIError) -> Result<[NexusID], PersistentReservations.Failure> {
        for _ in 0..<Self.maxAttempts {
            let (current, old, version) = try refresh(into: unit, target: target)
            var state = current
            let lost: [NexusID]
            do { lost = try action(&state) } catch { return .failure(error) }
            let attentions = state.pr.unitAttentions
            state.pr.unitAttentions = []
            if state == current && attentions.isEmpty { return .success(lost) }
            var next = Self.record(of: state, target: target)
            var serial = old.events.last?.serial ?? 0
            next.events = old.events
            for (nexus, asc) in attentions {
                guard let identity = target.identity(of: nexus) else { continue }
                serial += 1
                next.events.append(Event(serial: serial, nexus: identity, asc: asc))
            }
            next.events = Array(next.events.suffix(Self.keptEvents))
            let written: Bool
            do { written = try record.replace(Self.encode(next), ifVersion: version) } catch {
                throw SCSIError.backstore(.write, errno: error.errno)
            }
            guard written else { continue }  // another gateway came first: read and apply again
            cursor.withLock { $0.lastEvent = max($0.lastEvent, serial) }
            unit.state.withLock { s in
                s.pr = state.pr
                s.legacyHolder = state.legacyHolder
                for (nexus, asc) in attentions { s.unitAttentions.queue(asc, for: nexus) }
            }
            return .success(lost)
        }
        // Contended beyond reason: the initiator retries.
        throw SCSIError(key: SenseKey.notReady, asc: .becomingReady)
    }

    /// Puts a unit attention for every nexus of the other gateways into the record (a LUN
    /// reset here, which also ends a RESERVE(6) reservation); best effort: a failure leaves
    /// the others without it.
    func announceToOthers(_ asc: ASC, target: SCSITarget) {
        let everyNexus = ITNexus(initiatorName: "", initiatorPortID: 0, targetName: target.name, targetPortalGroupTag: 0)
        var serial: UInt64 = 0
        let written = update { record in
            record.legacyHolder = nil
            serial = (record.events.last?.serial ?? 0) + 1
            record.events = Array((record.events + [Event(serial: serial, nexus: everyNexus, asc: asc)]).suffix(Self.keptEvents))
            return true
        }
        if written { cursor.withLock { $0.lastEvent = max($0.lastEvent, serial) } }
    }

    /// A nexus that held a RESERVE(6) reservation is gone, or a reset ended it (nil: whoever
    /// held it; SPC-2 5.5.1): the reservation ends for every gateway. Best effort, like the
    /// local release.
    func releaseLegacy(heldBy nexus: ITNexus?, target: SCSITarget) {
        _ = update { record in
            guard record.legacyHolder != nil, nexus == nil || record.legacyHolder == nexus else { return false }
            record.legacyHolder = nil
            return true
        }
    }

    /// Read, change, compare-and-swap until written, for changes that need no nexus mapping;
    /// `change` returns false for nothing to write. True when written.
    private func update(_ change: (inout Record) -> Bool) -> Bool {
        for _ in 0..<Self.maxAttempts {
            guard let value = try? record.read(), var next = try? Self.decode(value.bytes), change(&next) else { return false }
            guard let written = try? record.replace(Self.encode(next), ifVersion: value.version) else { return false }
            if written { return true }
        }
        return false
    }

    // MARK: Identities ↔ nexus IDs

    static func localState(_ r: Record, target: SCSITarget) -> State {
        let registrations = r.registrations.map {
            PersistentReservations.Registration(nexus: target.nexusID(for: $0.nexus), key: $0.key)
        }
        var reservation: PersistentReservations.Reservation?
        if let holder = r.holder, let type = r.type {
            reservation = .init(holder: target.nexusID(for: holder), type: type)
        }
        return State(pr: PersistentReservations(generation: r.generation, registrations: registrations, reservation: reservation),
                     legacyHolder: r.legacyHolder.map { target.nexusID(for: $0) })
    }

    static func record(of state: State, target: SCSITarget) -> Record {
        let pr = state.pr
        var r = Record(generation: pr.generation)
        r.legacyHolder = state.legacyHolder.flatMap { target.identity(of: $0) }
        r.registrations = pr.registrations.compactMap { reg in
            target.identity(of: reg.nexus).map { Record.Registration(nexus: $0, key: reg.key) }
        }
        if let res = pr.reservation, let holder = target.identity(of: res.holder) {
            r.holder = holder
            r.type = res.type
        }
        return r
    }

    // MARK: Encoding (version 1: "STPR", then big-endian fields)

    enum DecodeError: Error { case malformed }

    static func encode(_ r: Record) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + 64 * r.registrations.count)
        w.append(Array("STPR".utf8)); w.u8(1)
        w.u32(r.generation)
        w.u16(UInt16(r.registrations.count))
        for reg in r.registrations { w.u64(reg.key); put(reg.nexus, &w) }
        if let holder = r.holder, let type = r.type { w.u8(type.rawValue); put(holder, &w) } else { w.u8(0) }
        if let legacy = r.legacyHolder { w.u8(1); put(legacy, &w) } else { w.u8(0) }
        w.u16(UInt16(r.events.count))
        for e in r.events { w.u64(e.serial); w.u8(e.asc.code); w.u8(e.asc.qualifier); put(e.nexus, &w) }
        return w.bytes
    }

    private static func put(_ n: ITNexus, _ w: inout ByteWriter) {
        let name = Array(n.initiatorName.utf8.prefix(1024)), target = Array(n.targetName.utf8.prefix(1024))
        w.u16(UInt16(name.count)); w.append(name)
        w.u16(UInt16(target.count)); w.append(target)
        w.u64(n.initiatorPortID); w.u16(n.targetPortalGroupTag)
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Record {
        if bytes.isEmpty { return Record() }
        var r = Reader(bytes: bytes)
        guard try r.take(4) == Array("STPR".utf8), try r.u8() == 1 else { throw .malformed }
        var out = Record(generation: try r.u32())
        for _ in 0..<(try r.u16()) {
            let key = try r.u64()
            out.registrations.append(.init(nexus: try r.nexus(), key: key))
        }
        let type = try r.u8()
        if type != 0 {
            guard let t = PRType(rawValue: type) else { throw .malformed }
            out.type = t
            out.holder = try r.nexus()
        }
        switch try r.u8() {
        case 0: break
        case 1: out.legacyHolder = try r.nexus()
        default: throw .malformed
        }
        for _ in 0..<(try r.u16()) {
            let serial = try r.u64()
            let asc = ASC(try r.u8(), try r.u8())
            out.events.append(Event(serial: serial, nexus: try r.nexus(), asc: asc))
        }
        return out
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0
        mutating func take(_ n: Int) throws(DecodeError) -> [UInt8] {
            guard n >= 0, at + n <= bytes.count else { throw .malformed }
            defer { at += n }
            return Array(bytes[at..<at + n])
        }
        mutating func u8() throws(DecodeError) -> UInt8 { try take(1)[0] }
        mutating func u16() throws(DecodeError) -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
        mutating func u32() throws(DecodeError) -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func u64() throws(DecodeError) -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
        mutating func nexus() throws(DecodeError) -> ITNexus {
            let name = String(decoding: try take(Int(try u16())), as: UTF8.self)
            let target = String(decoding: try take(Int(try u16())), as: UTF8.self)
            return ITNexus(initiatorName: name, initiatorPortID: try u64(), targetName: target, targetPortalGroupTag: try u16())
        }
    }
}

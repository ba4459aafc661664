/// Persistent reservation types (SPC-4 6.16.2 table 182).
public enum PRType: UInt8, Sendable, CaseIterable {
    case writeExclusive = 1
    case exclusiveAccess = 3
    case writeExclusiveRegistrantsOnly = 5
    case exclusiveAccessRegistrantsOnly = 6
    case writeExclusiveAllRegistrants = 7
    case exclusiveAccessAllRegistrants = 8

    /// All-registrants types: every registrant is a reservation holder (SPC-4 5.13.10).
    var isAllRegistrants: Bool { self == .writeExclusiveAllRegistrants || self == .exclusiveAccessAllRegistrants }
    /// Types where registrants (not only the holder) may access the medium.
    var registrantsHaveAccess: Bool { rawValue >= 5 }
    /// Exclusive access types also block reads by non-holders/non-registrants.
    var blocksReads: Bool { self == .exclusiveAccess || self == .exclusiveAccessRegistrantsOnly || self == .exclusiveAccessAllRegistrants }
}

/// The persistent reservation state of one logical unit (SPC-4 5.13) as a value type:
/// every PERSISTENT RESERVE OUT service action is a mutating func; unit attentions it
/// causes are collected in `unitAttentions` for the caller to queue.
struct PersistentReservations: Sendable, Equatable {
    struct Registration: Sendable, Equatable {
        var nexus: NexusID
        var key: UInt64
    }
    struct Reservation: Sendable, Equatable {
        /// The holder; for all-registrants types it is the nexus that reserved, but every
        /// registrant holds the reservation.
        var holder: NexusID
        var type: PRType
    }
    enum Failure: Error, Equatable {
        case conflict
        case invalidField(byte: Int)       // INVALID FIELD IN PARAMETER LIST
        case invalidCDBField(byte: Int, bit: Int?)
        case invalidRelease                // 05/2604
        case insufficientResources         // 05/5504
        /// SPEC_I_PT from a registered I_T nexus: INVALID FIELD IN CDB (SPC-4 5.13.7 table 43).
        case specifiedPortsFromRegistered
    }

    private(set) var generation: UInt32 = 0
    private(set) var registrations: [Registration] = []
    private(set) var reservation: Reservation?
    /// Activate persist through power loss: the APTPL bit of the last successful REGISTER,
    /// REGISTER AND IGNORE EXISTING KEY or REGISTER AND MOVE (SPC-4 5.13.5).
    var aptpl = false
    /// (nexus, ASC) unit attentions caused by the last operations.
    var unitAttentions: [(NexusID, ASC)] = []

    init() {}

    /// A state read back from where it is shared (SharedReservations).
    init(generation: UInt32, registrations: [Registration], reservation: Reservation?) {
        self.generation = generation
        self.registrations = registrations
        self.reservation = reservation
    }

    static func == (a: Self, b: Self) -> Bool {
        a.generation == b.generation && a.registrations == b.registrations && a.reservation == b.reservation
            && a.aptpl == b.aptpl
    }

    func key(of nexus: NexusID) -> UInt64? { registrations.first { $0.nexus == nexus }?.key }
    func isRegistered(_ nexus: NexusID) -> Bool { registrations.contains { $0.nexus == nexus } }

    /// True when `nexus` holds the reservation (any registrant, for all-registrants types).
    func isHolder(_ nexus: NexusID) -> Bool {
        guard let r = reservation else { return false }
        if r.type.isAllRegistrants { return isRegistered(nexus) }
        return r.holder == nexus
    }

    /// SPC-4 5.13.1 table 44 in short: may `nexus` run a command of this access kind?
    func allows(_ nexus: NexusID, access: MediumAccess) -> Bool {
        guard let r = reservation, access != .none else { return true }
        if isHolder(nexus) { return true }
        if r.type.registrantsHaveAccess, isRegistered(nexus) { return true }
        switch access {
        case .none: return true
        case .read: return !r.type.blocksReads
        case .write: return false
        }
    }

    // MARK: PERSISTENT RESERVE OUT

    /// REGISTER (ignoreExisting: false) and REGISTER AND IGNORE EXISTING KEY (SPC-4 5.13.7).
    mutating func register(_ nexus: NexusID, key: UInt64, serviceActionKey: UInt64, ignoreExisting: Bool,
                           aptpl: Bool = false) throws(Failure) {
        try register(nexus, siblings: [], specified: [], specifiesPorts: false, key: key, serviceActionKey: serviceActionKey,
                     ignoreExisting: ignoreExisting, aptpl: aptpl)
    }

    /// REGISTER naming more I_T nexuses than the issuing one, all or none (SPC-4 5.13.7):
    /// `siblings`, the issuing initiator port through the other target ports (ALL_TG_PT), take
    /// the same change; `specified`, the ports the TransportIDs name (SPEC_I_PT, each with the
    /// parameter list offset of its TransportID), are registered with the new key.
    mutating func register(_ nexus: NexusID, siblings: [NexusID], specified: [(NexusID, offset: Int)], specifiesPorts: Bool,
                           key: UInt64, serviceActionKey sak: UInt64, ignoreExisting: Bool, aptpl: Bool) throws(Failure) {
        let issuing = registrations.first { $0.nexus == nexus }
        if let issuing {
            if !ignoreExisting && issuing.key != key { throw .conflict }
            if specifiesPorts { throw .specifiedPortsFromRegistered }
        } else if !ignoreExisting && key != 0 {
            throw .conflict
        }
        for (n, offset) in specified where isRegistered(n) { throw .invalidField(byte: offset) }
        let named = [nexus] + siblings.filter { $0 != nexus }
        if sak != 0 {
            let fresh = Set(named.filter { !isRegistered($0) } + specified.map(\.0).filter { !named.contains($0) })
            if registrations.count + fresh.count > EngineLimits.maxRegistrations { throw .insufficientResources }
        }
        self.aptpl = aptpl
        if sak == 0 {
            guard issuing != nil || named.contains(where: isRegistered) else { return }
            for n in named { if let i = registrations.firstIndex(where: { $0.nexus == n }) { unregister(at: i) } }
        } else {
            for n in named + specified.map(\.0) {
                if let i = registrations.firstIndex(where: { $0.nexus == n }) { registrations[i].key = sak }
                else { registrations.append(Registration(nexus: n, key: sak)) }
            }
        }
        generation &+= 1
    }

    /// Removes a registration and releases what goes with it (SPC-4 5.13.11.2.2 / 5.13.10).
    private mutating func unregister(at i: Int) {
        let nexus = registrations[i].nexus
        registrations.remove(at: i)
        guard let r = reservation else { return }
        if r.type.isAllRegistrants {
            if registrations.isEmpty { reservation = nil }
            else if r.holder == nexus { reservation?.holder = registrations[0].nexus }
        } else if r.holder == nexus {
            reservation = nil
            if r.type == .writeExclusiveRegistrantsOnly || r.type == .exclusiveAccessRegistrantsOnly {
                for reg in registrations { unitAttentions.append((reg.nexus, .reservationsReleased)) }
            }
        }
    }

    /// RESERVE (SPC-4 5.13.9).
    mutating func reserve(_ nexus: NexusID, key: UInt64, type: PRType) throws(Failure) {
        guard let mine = self.key(of: nexus), mine == key else { throw .conflict }
        if let r = reservation {
            if isHolder(nexus) && r.type == type { return }
            throw .conflict
        }
        reservation = Reservation(holder: nexus, type: type)
    }

    /// RELEASE (SPC-4 5.13.11.2).
    mutating func release(_ nexus: NexusID, key: UInt64, type: PRType) throws(Failure) {
        guard let mine = self.key(of: nexus), mine == key else { throw .conflict }
        guard let r = reservation, isHolder(nexus) else { return }
        if r.type != type { throw .invalidRelease }
        reservation = nil
        if r.type.registrantsHaveAccess {
            for reg in registrations where reg.nexus != nexus { unitAttentions.append((reg.nexus, .reservationsReleased)) }
        }
    }

    /// CLEAR (SPC-4 5.13.11.2.6).
    mutating func clear(_ nexus: NexusID, key: UInt64) throws(Failure) {
        guard let mine = self.key(of: nexus), mine == key else { throw .conflict }
        for reg in registrations where reg.nexus != nexus { unitAttentions.append((reg.nexus, .reservationsPreempted)) }
        registrations.removeAll()
        reservation = nil
        generation &+= 1
    }

    /// PREEMPT and PREEMPT AND ABORT (SPC-4 5.13.11.4). Returns the nexuses that lost
    /// their registration (for PREEMPT AND ABORT their tasks are the fabric's to abort).
    @discardableResult
    mutating func preempt(_ nexus: NexusID, key: UInt64, serviceActionKey sak: UInt64, type: PRType) throws(Failure) -> [NexusID] {
        guard let mine = self.key(of: nexus), mine == key else { throw .conflict }
        guard let r = reservation else {
            if sak == 0 { throw .invalidField(byte: 8) }
            return try removeRegistrations(withKey: sak, except: nil)
        }
        if r.type.isAllRegistrants {
            if sak == 0 {
                let lost = registrations.filter { $0.nexus != nexus }.map(\.nexus)
                for n in lost { unitAttentions.append((n, .registrationsPreempted)) }
                registrations.removeAll { $0.nexus != nexus }
                reservation = Reservation(holder: nexus, type: type)
                generation &+= 1
                return lost
            }
            return try removeRegistrations(withKey: sak, except: nil)
        }
        let holderKey = self.key(of: r.holder)
        if sak == holderKey {
            let lost = registrations.filter { $0.key == sak && $0.nexus != nexus }.map(\.nexus)
            registrations.removeAll { $0.key == sak && $0.nexus != nexus }
            for n in lost { unitAttentions.append((n, .registrationsPreempted)) }
            if r.type != type {
                for reg in registrations where reg.nexus != nexus { unitAttentions.append((reg.nexus, .reservationsReleased)) }
            }
            reservation = Reservation(holder: nexus, type: type)
            generation &+= 1
            return lost
        }
        if sak == 0 { throw .invalidField(byte: 8) }
        return try removeRegistrations(withKey: sak, except: nil)
    }

    private mutating func removeRegistrations(withKey sak: UInt64, except: NexusID?) throws(Failure) -> [NexusID] {
        let lost = registrations.filter { $0.key == sak && $0.nexus != except }.map(\.nexus)
        if lost.isEmpty { throw .conflict }
        for n in lost {
            if let i = registrations.firstIndex(where: { $0.nexus == n }) { unregister(at: i) }
            unitAttentions.append((n, .registrationsPreempted))
        }
        generation &+= 1
        return lost
    }

    /// REGISTER AND MOVE (SPC-4 5.13.8): the holder registers `destination` with
    /// `serviceActionKey` and hands it the reservation.
    mutating func registerAndMove(_ nexus: NexusID, key: UInt64, serviceActionKey: UInt64,
                                  destination: NexusID, unregister unreg: Bool, aptpl: Bool = false) throws(Failure) {
        guard let mine = self.key(of: nexus), mine == key else { throw .conflict }
        guard let r = reservation else { throw .conflict }
        if r.type.isAllRegistrants || r.holder != nexus { throw .conflict }
        if serviceActionKey == 0 { throw .invalidField(byte: 8) }
        if destination == nexus { throw .invalidField(byte: 24) }
        if let i = registrations.firstIndex(where: { $0.nexus == destination }) {
            registrations[i].key = serviceActionKey
        } else {
            if registrations.count >= EngineLimits.maxRegistrations { throw .insufficientResources }
            registrations.append(Registration(nexus: destination, key: serviceActionKey))
        }
        reservation = Reservation(holder: destination, type: r.type)
        if unreg { registrations.removeAll { $0.nexus == nexus } }
        self.aptpl = aptpl
        generation &+= 1
    }

    /// Forgets everything (used when a nexus-less reset is asked for; PRs normally survive resets).
    mutating func dropNexus(_ nexus: NexusID) {
        if let i = registrations.firstIndex(where: { $0.nexus == nexus }) { unregister(at: i); generation &+= 1 }
    }
}

/// What a command does to the medium, for reservation conflicts (SPC-4 5.13.1 table 44,
/// SBC-3 4.17 table 13).
enum MediumAccess: Sendable {
    case none, read, write
}

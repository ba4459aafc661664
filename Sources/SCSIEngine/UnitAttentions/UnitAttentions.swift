/// Pending unit attention conditions of one logical unit, per I_T nexus (SAM-5 5.14,
/// SPC-4 4.5.5). Oldest first; a condition already queued is not queued twice.
struct UnitAttentions: Sendable {
    private var queues: [NexusID: [ASC]] = [:]
    /// Nexuses that have talked to this LU; the first contact reports POWER ON OCCURRED.
    private var seen: Set<NexusID> = []

    /// Marks first contact: the nexus starts with POWER ON OCCURRED (29/00) and nothing else.
    mutating func contact(_ nexus: NexusID) {
        if seen.insert(nexus).inserted {
            // Power on supersedes anything queued earlier (SAM-5 6.3.2).
            queues[nexus] = [.powerOnOccurred]
        }
    }

    mutating func queue(_ asc: ASC, for nexus: NexusID) {
        // A nexus that never contacted the LU will see POWER ON first, which covers it.
        guard seen.contains(nexus) else { return }
        var q = queues[nexus] ?? []
        if q.first == .powerOnOccurred { return }
        if !q.contains(asc) { q.append(asc) }
        queues[nexus] = q
    }

    mutating func queueForAll(_ asc: ASC, except: NexusID? = nil) {
        for n in seen where n != except { queue(asc, for: n) }
    }

    /// Resets: everything pending is replaced by the reset condition.
    mutating func replaceAll(with asc: ASC, except: NexusID? = nil) {
        for n in seen where n != except { queues[n] = [asc] }
    }

    func peek(_ nexus: NexusID) -> ASC? { queues[nexus]?.first }
    var isEmpty: Bool { queues.values.allSatisfy(\.isEmpty) }

    mutating func pop(_ nexus: NexusID) -> ASC? {
        guard var q = queues[nexus], !q.isEmpty else { return nil }
        let a = q.removeFirst()
        queues[nexus] = q
        return a
    }

    /// Removes one specific condition (REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED).
    mutating func remove(_ asc: ASC, for nexus: NexusID) {
        queues[nexus]?.removeAll { $0 == asc }
    }

    /// Everything queued for a nexus, oldest first.
    func pending(_ nexus: NexusID) -> [ASC] { queues[nexus] ?? [] }
}

import Synchronization

// Per-initiator LUN maps on the target: what each nexus sees (LUNMap.swift), kept in the
// target's state and consulted on every command.

extension SCSITarget.State {
    /// The LU a nexus reaches at `lun`.
    @inline(__always)
    func mapped(_ lun: UInt64, for nexus: NexusID) -> MappedUnit? {
        guard !views.isEmpty, let view = views[nexus] else { return units[lun].map { MappedUnit(unit: $0, readOnly: false) } }
        guard let e = view.entries[lun], let u = units[e.unit] else { return nil }
        return MappedUnit(unit: u, readOnly: e.readOnly)
    }
}

extension SCSITarget {
    /// The LUs a nexus may name in an EXTENDED COPY: those of this target its LUN map shows it.
    func reachableUnits(for nexus: NexusID) -> [MappedUnit] {
        state.withLock { s in
            guard let view = s.views[nexus] else { return s.units.values.map { MappedUnit(unit: $0, readOnly: false) } }
            return view.entries.values.compactMap { e in s.units[e.unit].map { MappedUnit(unit: $0, readOnly: e.readOnly) } }
        }
    }

    /// Replaces the LUN maps. Nexuses whose view changes get REPORTED LUNS DATA HAS CHANGED.
    public func setLUNMaps(_ maps: [LUNMap]) {
        let (changed, units) = state.withLock { s -> ([NexusID], [LogicalUnit]) in
            s.maps = maps
            var changed: [NexusID] = []
            for (id, nexus) in s.nexuses {
                let view = LUNView.of(nexus.initiatorName, under: maps)
                if view != s.views[id] { changed.append(id) }
                s.views[id] = view
            }
            return (changed.filter { s.open.contains($0) }, Array(s.units.values))
        }
        for u in units {
            u.state.withLock { st in for n in changed { st.unitAttentions.queue(.reportedLunsDataHasChanged, for: n) } }
        }
    }

    /// The LUN numbers a nexus sees, ascending.
    func visibleLUNs(for nexus: NexusID) -> [UInt64] {
        state.withLock { s in
            guard let view = s.views[nexus] else { return s.units.keys.sorted() }
            return view.entries.values.filter { s.units[$0.unit] != nil }.map(\.lun).sorted()
        }
    }

    /// Whether a nexus reaches a LU at `lun` (through its LUN map), for the fabric's task management.
    public func reaches(lun: UInt64, nexus: NexusID) -> Bool {
        unit(lun, for: nexus) != nil
    }

    /// The LU a nexus reaches at `lun` (through its LUN map).
    func unit(_ lun: UInt64, for nexus: NexusID) -> LogicalUnit? {
        state.withLock { $0.mapped(lun, for: nexus)?.unit }
    }
}

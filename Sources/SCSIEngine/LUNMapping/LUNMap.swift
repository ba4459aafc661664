/// Which logical units an initiator sees, at which LUN numbers, and whether read-only (LIO's
/// mapped LUNs, SCST's ini_groups). A target without maps shows every LU at its own number to
/// every initiator; with maps, an initiator whose name matches a map's patterns (the first such
/// map) sees exactly that map's LUNs; one that matches none sees every LU, so a final map for
/// `*` with no LUNs hides them from everyone not named before it.
public struct LUNMap: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// The LUN number the initiator uses.
        public var lun: UInt64
        /// The target's LU behind it.
        public var unit: UInt64
        /// Writes refused as write protected (DATA PROTECT), whatever the LU allows others.
        public var readOnly: Bool

        public init(lun: UInt64, unit: UInt64, readOnly: Bool = false) {
            self.lun = lun
            self.unit = unit
            self.readOnly = readOnly
        }
    }

    /// Initiator name patterns, compared without case: `*` matches any run of characters,
    /// `?` one character, everything else itself.
    public var initiators: [String]
    public var entries: [Entry]

    public init(initiators: [String], entries: [Entry]) {
        self.initiators = initiators
        self.entries = entries
    }

    public func matches(initiatorName name: String) -> Bool {
        initiators.contains { Self.glob(Array($0.lowercased().utf8), Array(name.lowercased().utf8)) }
    }

    /// Wildcard match, iterative with one backtrack point (linear in practice, no recursion
    /// an odd pattern could blow up).
    static func glob(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        var (pi, si) = (0, 0)
        var star: Int?, mark = 0
        while si < s.count {
            // A `*` in the pattern is a wildcard even where the name has a `*` too.
            if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = si; pi += 1
            } else if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if let st = star {
                pi = st + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// What one nexus sees: its LUN numbers and the LU behind each.
struct LUNView: Equatable, Sendable {
    var entries: [UInt64: LUNMap.Entry]

    /// The view of an initiator under `maps`; nil: no map names it, it sees every LU as is.
    static func of(_ initiatorName: String, under maps: [LUNMap]) -> LUNView? {
        guard let map = maps.first(where: { $0.matches(initiatorName: initiatorName) }) else { return nil }
        var entries: [UInt64: LUNMap.Entry] = [:]
        for e in map.entries where entries[e.lun] == nil { entries[e.lun] = e }
        return LUNView(entries: entries)
    }
}

/// A LU as one nexus reaches it.
struct MappedUnit {
    let unit: LogicalUnit
    /// Read-only for this nexus by its LUN map.
    let readOnly: Bool
}

/// The configuration file's `gateway`: this daemon's place among several gateways that export
/// the same (Ceph RBD) LUNs under the same target names (ALUA, SPC-4 5.15).
public struct GatewaySettings: Codable, Sendable, Hashable {
    /// This gateway's target port group, also its iSCSI target portal group tag and its
    /// relative target port (1…65535; each gateway its own).
    public var portGroup: Int
    /// Every gateway's port group, this one's included (REPORT TARGET PORT GROUPS lists them).
    /// Absent: only this one.
    public var portGroups: [Int]?

    public init(portGroup: Int = 1, portGroups: [Int]? = nil) {
        self.portGroup = portGroup
        self.portGroups = portGroups
    }

    /// The groups as listed to initiators, ascending.
    public var allGroups: [Int] { (portGroups ?? [portGroup]).sorted() }

    func problems() -> [(field: String, message: String)] {
        var out: [(String, String)] = []
        if !(1...65535).contains(portGroup) { out.append(("portGroup", "must be 1…65535")) }
        if let groups = portGroups {
            if groups.contains(where: { !(1...65535).contains($0) }) { out.append(("portGroups", "every group must be 1…65535")) }
            if Set(groups).count != groups.count { out.append(("portGroups", "lists a group twice")) }
            if !groups.contains(portGroup) { out.append(("portGroups", "must include this gateway's portGroup \(portGroup)")) }
        }
        return out
    }
}

/// The configfs directory of one TCMU backstore (`core/user_<hba>/<device>`): the
/// attributes the handler reads and the `action/` knobs it writes.
public struct ConfigfsDevice: RingControl, Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `attrib/dev_size` in bytes (the kernel's idea of the capacity).
    public var deviceSize: UInt64? { SysfsFiles.readUInt64(path + "/attrib/dev_size") }
    /// `attrib/hw_block_size`.
    public var blockSize: Int? { SysfsFiles.readUInt64(path + "/attrib/hw_block_size").map(Int.init) }
    /// `attrib/emulate_write_cache`.
    public var writeCacheEnabled: Bool? { SysfsFiles.readUInt64(path + "/attrib/emulate_write_cache").map { $0 != 0 } }
    /// `wwn/vpd_unit_serial` ("T10 VPD Unit Serial Number: <serial>").
    public var unitSerial: String? {
        guard let line = SysfsFiles.readTrimmed(path + "/wwn/vpd_unit_serial") else { return nil }
        guard let colon = line.lastIndex(of: ":") else { return line }
        let s = line[line.index(after: colon)...].drop(while: { $0 == " " })
        return s.isEmpty ? nil : String(s)
    }

    public struct ActionError: Error, Sendable, Equatable {
        public var action: String
        public var errno: Int32
    }

    public func setBlocked(_ blocked: Bool) throws {
        try action("block_dev", blocked ? "1" : "0")
    }

    public func resetRing() throws {
        try action("reset_ring", "1")
    }

    private func action(_ name: String, _ value: String) throws {
        let e = SysfsFiles.write(path + "/action/" + name, value)
        if e != 0 { throw ActionError(action: name, errno: e) }
    }
}

/// `/sys/module/target_core_user/parameters/{block,reset}_netlink` (4.19+): hold kernel
/// netlink events while the daemon (re)starts; release waits meant for a dead daemon.
enum NetlinkGate {
    static let parameters = "/sys/module/target_core_user/parameters"

    static func block() {
        if SysfsFiles.exists(parameters + "/block_netlink") {
            SysfsFiles.write(parameters + "/block_netlink", "1")
            SysfsFiles.write(parameters + "/reset_netlink", "1")
        }
    }

    static func unblock() {
        if SysfsFiles.exists(parameters + "/block_netlink") {
            SysfsFiles.write(parameters + "/block_netlink", "0")
        }
    }
}

/// One TCM-USER netlink event (ADDED/REMOVED/RECONFIG_DEVICE) with its attributes.
public struct NetlinkEvent: Sendable, Equatable {
    public var command: TCMUProtocol.NetlinkCommand
    /// `TCMU_ATTR_MINOR`: the N of /dev/uioN.
    public var minor: UInt32?
    /// `TCMU_ATTR_DEVICE_ID` (family version 2): echoed in the reply.
    public var deviceID: UInt32?
    /// `TCMU_ATTR_DEVICE`: the uio name string.
    public var deviceName: String
    /// RECONFIG carries exactly one of these.
    public var deviceConfig: String?
    public var deviceSize: UInt64?
    public var writeCache: Bool?

    public init(command: TCMUProtocol.NetlinkCommand, minor: UInt32? = nil, deviceID: UInt32? = nil,
                deviceName: String = "", deviceConfig: String? = nil, deviceSize: UInt64? = nil,
                writeCache: Bool? = nil) {
        self.command = command
        self.minor = minor
        self.deviceID = deviceID
        self.deviceName = deviceName
        self.deviceConfig = deviceConfig
        self.deviceSize = deviceSize
        self.writeCache = writeCache
    }

    /// `uioN` for the minor.
    public var uio: String? { minor.map { "uio\($0)" } }
}

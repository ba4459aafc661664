/// Finds TCMU devices among the uio nodes (`/sys/class/uio/uioN/name`).
public struct UIOScanner: Sendable {
    public var sysfsClass: String

    public init(sysfsClass: String = "/sys/class/uio") {
        self.sysfsClass = sysfsClass
    }

    public struct Found: Sendable, Equatable {
        /// `uioN`: the node under /dev and /sys/class/uio.
        public var uio: String
        public var name: UIODeviceName
    }

    /// Every TCMU device present now, in minor-number order.
    public func scan() -> [Found] {
        SysfsFiles.list(sysfsClass)
            .filter { $0.hasPrefix("uio") }
            .compactMap { uio in lookup(uio).map { Found(uio: uio, name: $0) } }
            .sorted { (Int($0.uio.dropFirst(3)) ?? 0) < (Int($1.uio.dropFirst(3)) ?? 0) }
    }

    /// The TCMU name of `uioN`, nil if it is absent or not a TCMU device.
    public func lookup(_ uio: String) -> UIODeviceName? {
        SysfsFiles.read("\(sysfsClass)/\(uio)/name").flatMap(UIODeviceName.init(parsing:))
    }
}

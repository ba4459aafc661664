/// The kinds of store a LUN can live on, each with what the runtimes and the admin faces
/// (config file, API, CLI, web, `serve`) need to know of it. A new kind is a case here, its
/// store and its branch in `openStore(for:)`: everything else reads these properties.
public enum BackstoreKind: String, Sendable, CaseIterable, Codable, Hashable {
    /// A regular image file, fully allocated (created with `size` when missing).
    case file
    /// A sparse image file (created with `size` when missing); UNMAP punches holes.
    case sparse
    /// A block device such as /dev/vg0/lv1; its size is the device's.
    case raw
    /// A Ceph RBD image, POOL/IMAGE, through librbd (created with `size` when missing).
    case rbd

    /// Where a LUN's capacity comes from.
    public enum Sizing: Sendable, Equatable {
        /// The image has a size of its own: `size` creates a missing one, and an existing one
        /// smaller than `size` may be grown (never shrunk implicitly).
        case byImage
        /// The device decides; a configured size must match it.
        case byDevice
    }

    public var sizing: Sizing {
        switch self {
        case .file, .sparse, .rbd: .byImage
        case .raw: .byDevice
        }
    }

    public var isSizedByDevice: Bool { sizing == .byDevice }

    /// Unallocated ranges exist and read as zeros.
    public var isThin: Bool { self == .sparse || self == .rbd }

    /// Commands wait on a network round trip (librbd): each holds an I/O worker while the
    /// cluster runs it, so the workers bound the commands in flight.
    public var waitsOnNetwork: Bool { self == .rbd }

    /// Seconds the kernel lets a command of this kind run in LIO mode (TCMU's `cmd_time_out`;
    /// nil: the kernel's 30 s). An rbd command fails by itself after the OSD op timeout (25 s,
    /// `RBDCluster`) with NOT READY, becoming ready, which initiators retry; a kernel timeout
    /// first would answer LOGICAL UNIT COMMUNICATION FAILURE, which Linux fails at once.
    public var kernelCommandTimeout: Int? { waitsOnNetwork ? 60 : nil }

    /// I/O workers a daemon with such LUNs runs by default: an initiator's queue depth of 32
    /// reaches the cluster whole.
    public static let networkStoreIOThreads = 32

    /// The default I/O worker count for LUNs of these kinds: one per CPU (at least 2), or
    /// `networkStoreIOThreads` when any waits on the network.
    public static func defaultIOThreads(for kinds: some Sequence<BackstoreKind>, processors: Int) -> Int {
        kinds.contains(where: \.waitsOnNetwork) ? max(networkStoreIOThreads, processors) : max(2, processors)
    }

    /// What names a store of this kind.
    public enum Locator: Sendable, Equatable {
        /// An absolute path of a file or device.
        case path
        /// POOL/IMAGE in a Ceph cluster.
        case poolImage
    }

    public var locator: Locator { self == .rbd ? .poolImage : .path }

    /// Flags a `--lun` spec of this kind takes besides `ro`.
    public var options: [String] { self == .raw ? ["direct"] : [] }

    /// `key=value` settings a spec of this kind takes besides `size=`.
    public var settings: [String] { self == .rbd ? ["conf", "id", "keyring", "shared"] : [] }

    /// What is wrong with `locator` for this kind, or nil.
    public func locatorProblem(_ locator: String) -> String? {
        switch self.locator {
        case .path:
            if locator.isEmpty { return "must not be empty" }
            if !locator.hasPrefix("/") { return "must be an absolute path" }
            if locator.contains("\0") { return "must not contain NUL" }
            if locator.hasSuffix("/") { return "must name a file or device, not a directory" }
            return nil
        case .poolImage:
            if case .failure(let problem) = RBDLocation.parse(locator, options: [:]) { return problem.message }
            return nil
        }
    }

    /// How pickers and help texts name it.
    public var label: String {
        switch self {
        case .file: "file (allocated image)"
        case .sparse: "sparse image"
        case .raw: "raw block device"
        case .rbd: "Ceph RBD image"
        }
    }

    /// A `--lun` example.
    public var example: String {
        switch self {
        case .file: "file:./disk.img,size=1G"
        case .sparse: "sparse:./thin.img,size=20G"
        case .raw: "raw:/dev/loop0"
        case .rbd: "rbd:rbd/disk1,size=10G"
        }
    }

    /// "file, sparse or raw", for messages.
    public static var spokenList: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let kind = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(raw)\" is not one of \(allowed)")
        }
        self = kind
    }
}

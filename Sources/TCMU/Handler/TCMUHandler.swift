import CTCMU
import Logging
import SCSIEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The TCMU userspace handler (what tcmu-runner is in C): finds TCMU devices whose
/// subtype is ours, serves each through the SCSI engine, and follows the kernel's
/// netlink events (ADDED / REMOVED / RECONFIG_DEVICE, each answered with `*_DONE`).
///
/// Devices are configured in configfs with
/// `dev_config=swifttarget/<kind>:<path>[;options]` (see `TCMUConfigString`).
public final class TCMUHandler: Sendable {
    public struct Configuration: Sendable {
        /// The handler subtype served; other subtypes are refused (-ENOENT), as libtcmu does.
        public var subtype = TCMUConfigString.subtype
        /// Concurrent commands per device.
        public var workerThreadsPerDevice = 8
        /// Microseconds a device's reader keeps polling the ring after the last command
        /// before it sleeps (0: never poll). Saves a wake-up and two system calls per command
        /// when commands follow closely (queue depth 1); polling stops by itself while the
        /// gaps are longer (see `RingServer.readerLoop`).
        public var pollMicroseconds = 50
        /// Where a stopping handler notes each ring's tail so that the next one runs the
        /// commands left on it rather than have the kernel answer them BUSY (`RingTakeover`).
        /// nil: no notes, commands left are always answered BUSY.
        public var handoverDirectory: String? = nil
        /// Reset each ring on open even when it looks empty (commands a previous daemon left
        /// are always answered BUSY through a reset, see `RingTakeover`).
        public var resetRingOnOpen = false
        /// Listen for netlink events (false: only the devices present at `start()`).
        public var useNetlink = true
        public var sysfsUIOClass = "/sys/class/uio"
        public var deviceDirectory = "/dev"
        public var configfsCore = TCMUProtocol.configfsCore
        /// Per-device command statistics (the daemon keys them by target and LUN); nil: none.
        public var statisticsRecorder: (@Sendable (UIODeviceName) -> LUNStatisticsRecorder?)? = nil

        public init() {}
    }

    public enum StartError: Error, Sendable, CustomStringConvertible {
        /// target_core_user is not loaded (or the netlink family is unavailable).
        case netlinkUnavailable(String)
        case system(String)
        public var description: String {
            switch self {
            case .netlinkUnavailable(let s): return "TCMU netlink unavailable: \(s)"
            case .system(let s): return s
            }
        }
    }

    public let configuration: Configuration
    let logger: Logger
    /// How a device is opened: the real uio node, or the simulator in tests.
    let openMapping: @Sendable (_ uio: String) throws -> UIOMapping

    private let devicesByUIO = Mutex<[String: TCMUDevice]>([:])
    private let running = Mutex<Running?>(nil)

    private struct Running: Sendable {
        var netlink: NetlinkChannel?
        var thread: JoinableThread?
        var stopFD: Int32
    }

    public convenience init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "tcmu")) {
        let c = configuration
        self.init(configuration: configuration, logger: logger) { uio in
            try UIOMapping.open(uio: uio, sysfsClass: c.sysfsUIOClass, deviceDirectory: c.deviceDirectory)
        }
    }

    init(configuration: Configuration, logger: Logger,
         openMapping: @escaping @Sendable (_ uio: String) throws -> UIOMapping) {
        self.configuration = configuration
        self.logger = logger
        self.openMapping = openMapping
    }

    /// Joins the netlink group, announces reply support, opens the devices present now
    /// (commands a previous daemon left on a ring are answered BUSY, see `RingTakeover`),
    /// then follows events on a thread of its own.
    public func start() throws {
        guard running.withLock({ $0 == nil }) else { return }
        var netlink: NetlinkChannel? = nil
        if configuration.useNetlink {
            // Hold kernel events while we scan, so none falls between scan and listen.
            NetlinkGate.block()
            defer { NetlinkGate.unblock() }
            do {
                netlink = try NetlinkChannel()
            } catch {
                throw StartError.netlinkUnavailable(error.description)
            }
            do {
                try netlink?.announceReplySupport()
            } catch {
                // Pre-4.14 kernels: no replies expected (EOPNOTSUPP).
                logger.warning("SET_FEATURES: \(error)")
            }
            rescan()
        } else {
            rescan()
        }
        let stopFD = ctcmu_eventfd()
        guard stopFD >= 0 else { throw StartError.system("eventfd: errno \(-stopFD)") }
        var thread: JoinableThread? = nil
        if let netlink {
            let fd = netlink.fd
            thread = JoinableThread { [self] in self.eventLoop(netlink, fd: fd, stopFD: stopFD) }
        }
        running.withLock { $0 = Running(netlink: netlink, thread: thread, stopFD: stopFD) }
        logger.info("TCMU handler started: subtype \(configuration.subtype), \(devices.count) device(s)")
    }

    /// Stops following events and closes every device (running commands complete first).
    public func stop() {
        guard let r = running.withLock({ r -> Running? in defer { r = nil }; return r }) else { return }
        _ = ctcmu_eventfd_signal(r.stopFD)
        r.thread?.join()
        _ = ctcmu_close(r.stopFD)
        let all = devicesByUIO.withLock { d -> [TCMUDevice] in defer { d = [:] }; return Array(d.values) }
        // The devices stay in the kernel: the next handler may pick their rings up.
        for device in all { device.close(handover: true) }
    }

    /// The devices being served, by uio node.
    public var devices: [TCMUDevice] {
        devicesByUIO.withLock { Array($0.values) }.sorted { $0.uio < $1.uio }
    }

    public func device(uio: String) -> TCMUDevice? { devicesByUIO.withLock { $0[uio] } }

    /// Opens every present device of our subtype not served yet.
    public func rescan() {
        for found in UIOScanner(sysfsClass: configuration.sysfsUIOClass).scan()
        where found.name.subtype == configuration.subtype && device(uio: found.uio) == nil {
            do {
                try open(uio: found.uio, name: found.name)
            } catch {
                logger.error("\(found.uio) (\(found.name.device)): cannot serve: \(error)")
            }
        }
    }

    // MARK: - Events

    private func eventLoop(_ netlink: NetlinkChannel, fd: Int32, stopFD: Int32) {
        while true {
            let w = ctcmu_wait(fd, stopFD, -1)
            if w < 0 || w & 2 != 0 { return }
            let events: [NetlinkEvent]
            do {
                events = try netlink.receive()
            } catch {
                logger.warning("netlink: \(error)")
                continue
            }
            for event in events {
                let status = handle(event)
                guard let reply = event.command.doneReply else { continue }
                do {
                    try netlink.reply(reply, status: status, deviceID: event.deviceID ?? 0)
                } catch {
                    logger.warning("netlink reply \(reply) for \(event.deviceName): \(error)")
                }
            }
        }
    }

    /// Acts on one event; returns the status for the `*_DONE` reply (0 or -errno).
    public func handle(_ event: NetlinkEvent) -> Int32 {
        guard let uio = event.uio else { return -EINVAL }
        switch event.command {
        case .addedDevice:
            guard let name = UIODeviceName(parsing: event.deviceName)
                    ?? UIOScanner(sysfsClass: configuration.sysfsUIOClass).lookup(uio) else { return -EINVAL }
            guard name.subtype == configuration.subtype else {
                logger.warning("\(uio): subtype '\(name.subtype)' is not ours ('\(configuration.subtype)')")
                return -ENOENT
            }
            if device(uio: uio) != nil { return 0 }
            do {
                try open(uio: uio, name: name)
                return 0
            } catch {
                logger.error("\(uio) (\(name.device)): cannot serve: \(error)")
                return -Self.errno(of: error)
            }
        case .removedDevice:
            let removed = devicesByUIO.withLock { $0.removeValue(forKey: uio) }
            if let removed {
                removed.close()
                logger.info("\(uio) (\(removed.name.device)) removed")
            }
            return 0
        case .reconfigDevice:
            guard let device = device(uio: uio) else { return -ENODEV }
            do {
                if let size = event.deviceSize {
                    try device.setDeviceSize(size)
                    logger.info("\(uio): dev_size \(size)")
                }
                if let config = event.deviceConfig {
                    try device.setDeviceConfig(config)
                    logger.info("\(uio): dev_config \(config)")
                }
                if let wce = event.writeCache {
                    try device.setWriteCache(wce)
                    logger.info("\(uio): write cache \(wce ? "on" : "off")")
                }
                return 0
            } catch {
                logger.error("\(uio): reconfigure failed: \(error)")
                return -Self.errno(of: error)
            }
        default:
            return -EOPNOTSUPP
        }
    }

    private func open(uio: String, name: UIODeviceName) throws {
        let mapping = try openMapping(uio)
        do {
            let device = try TCMUDevice(
                uio: uio, name: name, mapping: mapping,
                configfs: ConfigfsDevice(path: name.configfsPath(core: configuration.configfsCore)),
                workerThreads: configuration.workerThreadsPerDevice,
                pollMicroseconds: configuration.pollMicroseconds,
                resetRing: configuration.resetRingOnOpen,
                handoverNote: configuration.handoverDirectory.map { RingHandoverNote(directory: $0, device: name) },
                statistics: configuration.statisticsRecorder?(name), logger: logger)
            devicesByUIO.withLock { $0[uio] = device }
            logger.info("\(uio) (\(name.device)): serving \(name.cfgstring), \(device.capacity) bytes")
        } catch {
            mapping.release()
            throw error
        }
    }

    /// The errno an error stands for in a netlink reply.
    static func errno(of error: any Error) -> Int32 {
        switch error {
        case let e as UIOMapping.OpenError: return e.errno
        case let e as KernelSizedStore.ResizeError:
            if case .system(let n) = e { return n }
            return EINVAL
        default: return EINVAL
        }
    }
}

import Backstores
import Logging
import SCSIEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One TCMU device being served: its mapping, its store with the kernel's geometry, a
/// SCSI target with the store at LUN 0 (the kernel owns the fabric and REPORT LUNS/PR),
/// and the ring server.
public final class TCMUDevice: Sendable {
    public let uio: String
    private let nameState: Mutex<UIODeviceName>
    public let store: KernelSizedStore
    public let configfs: ConfigfsDevice
    let target: SCSITarget
    let nexus: NexusID
    /// The handler's own I_T nexus for reconfiguration commands (see `setWriteCache`).
    let reconfigureNexus: NexusID
    let server: RingServer
    let mapping: UIOMapping
    let logger: Logger
    /// Where a clean stop notes the ring's tail for the next handler (see `RingTakeover`).
    let handoverNote: RingHandoverNote?

    public var name: UIODeviceName { nameState.withLock { $0 } }

    public enum ReconfigureError: Error, Sendable, Equatable {
        case writeCacheRejected(status: UInt8)
    }

    /// Opens the backstore the cfgstring names and starts serving the ring.
    public init(uio: String, name: UIODeviceName, mapping: UIOMapping, configfs: ConfigfsDevice,
                workerThreads: Int, pollMicroseconds: Int = 0, resetRing: Bool, handoverNote: RingHandoverNote? = nil,
                statistics: LUNStatisticsRecorder? = nil, logger: Logger) throws {
        let spec = try TCMUConfigString.backstoreSpec(name.cfgstring)
        let ring = try MappedRing(base: mapping.base, size: mapping.size)
        let store = try KernelSizedStore(spec: spec, deviceSize: configfs.deviceSize, blockSize: configfs.blockSize)
        let target = SCSITarget(name: "tcmu:\(name.hbaID)/\(name.device)")
        let identity = TCMUConfigString.identity(name.cfgstring)
        var unit = LogicalUnitConfiguration(
            serialNumber: identity.serial ?? configfs.unitSerial ?? name.device,
            uniqueID: identity.uniqueID ?? Self.stableID(name.device),
            writeCacheEnabled: configfs.writeCacheEnabled ?? false)
        unit.statistics = statistics
        do {
            try target.addLogicalUnit(0, store: store, configuration: unit)
        } catch {
            store.close()
            throw error
        }
        _ = RingTakeover.prepare(ring: ring, signalFD: mapping.fd, control: configfs, always: resetRing,
                                 handedOverAt: handoverNote?.take(), name: uio, logger: logger)
        let nexus = target.openNexus(ITNexus(initiatorName: "tcmu", initiatorPortID: 0, targetName: target.name))
        let server: RingServer
        do {
            server = try RingServer(name: uio, ring: ring, signalFD: mapping.fd, workerThreads: workerThreads,
                                    pollMicroseconds: pollMicroseconds,
                                    executor: { cdb, out, into in
                                        target.execute(cdb: cdb, lun: 0, nexus: nexus, attribute: .simple,
                                                       dataOut: out, dataIn: into)
                                    },
                                    fastExecutor: { cdb, into in
                                        target.executeWithoutBlocking(cdb: cdb, lun: 0, nexus: nexus,
                                                                      attribute: .simple, dataIn: into)
                                    }, logger: logger)
        } catch {
            store.close()
            throw error
        }
        self.uio = uio
        self.nameState = Mutex(name)
        self.store = store
        self.configfs = configfs
        self.target = target
        self.nexus = nexus
        self.reconfigureNexus = target.openNexus(ITNexus(initiatorName: "tcmu-reconfigure", initiatorPortID: 1, targetName: target.name))
        self.server = server
        self.mapping = mapping
        self.logger = logger
        self.handoverNote = handoverNote
    }

    /// Stops the ring (running commands complete first), closes the store, unmaps.
    /// `handover`: the device stays in the kernel for a next handler, so note the tail (every
    /// command read has been answered now) for it to pick the pending commands up.
    public func close(handover: Bool = false) {
        server.stop()
        if handover, let handoverNote, !handoverNote.write(tail: server.ring.tail) {
            logger.warning("\(uio): could not write \(handoverNote.path): the next handler answers pending commands BUSY")
        }
        store.close()
        mapping.release()
    }

    public var statistics: RingServer.Statistics { server.statistics }
    public var capacity: UInt64 { store.byteCount }

    /// Resets the ring through configfs (see `RingServer.resetRing`).
    public func resetRing() throws { try server.resetRing(using: configfs) }

    // MARK: - RECONFIG_DEVICE

    /// `dev_size`: resize, then CAPACITY DATA HAS CHANGED for the initiators.
    public func setDeviceSize(_ bytes: UInt64) throws {
        try server.quiesce { try store.resize(to: bytes) }
        target.capacityChanged(lun: 0)
    }

    /// `dev_config`: serve the backstore a new cfgstring names.
    public func setDeviceConfig(_ config: String) throws {
        // The attribute carries "<subtype>/<cfgstring>".
        var name = self.name
        let parsed = UIODeviceName(parsing: "\(TCMUProtocol.uioNamePrefix)/\(name.hbaID)/\(name.device)/\(config)")
        let cfgstring = parsed?.cfgstring ?? config
        let spec = try TCMUConfigString.backstoreSpec(cfgstring)
        // No command may be inside the old store when it is closed.
        try server.quiesce { try store.replace(spec: spec) }
        name.cfgstring = cfgstring
        nameState.withLock { $0 = name }
    }

    /// `emulate_write_cache`: flips WCE in the caching mode page through the engine
    /// (MODE SENSE(10) + MODE SELECT(10)), as an initiator would.
    /// It runs on a nexus of its own: the kernel's nexus keeps its unit attentions (and gets
    /// MODE PARAMETERS CHANGED), and this one's power-on attention is consumed by a retry.
    public func setWriteCache(_ enabled: Bool) throws {
        var sense10: [UInt8] = [0x5A, 0x08, 0x08, 0, 0, 0, 0, 0, 64, 0]
        var data = [UInt8](repeating: 0, count: 64)
        var got: SCSICommandResult
        var attempts = 0
        repeat {
            attempts += 1
            got = data.withUnsafeMutableBytes { buf in
                sense10.withUnsafeBytes { cdb in
                    target.execute(cdb: cdb, lun: 0, nexus: reconfigureNexus, attribute: .simple,
                                   dataOut: .empty, dataIn: IOVectors(buf))
                }
            }
        } while got.status == .checkCondition && attempts < 3
        guard got.status == .good, got.dataInCount >= 8 + 20 else {
            throw ReconfigureError.writeCacheRejected(status: got.status.rawValue)
        }
        var page = Array(data[8 ..< 8 + Int(data[9]) + 2])
        page[0] &= 0x3F // PS is reserved in MODE SELECT
        if enabled { page[2] |= 0x04 } else { page[2] &= ~0x04 }
        var parameters = [UInt8](repeating: 0, count: 8) + page
        let length = parameters.count
        sense10 = [0x55, 0x10, 0, 0, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0]
        let set = parameters.withUnsafeMutableBytes { buf in
            sense10.withUnsafeBytes { cdb in
                target.execute(cdb: cdb, lun: 0, nexus: reconfigureNexus, attribute: .simple,
                               dataOut: IOVectors(buf), dataIn: .empty)
            }
        }
        // Turning the cache off flushes what it held (the engine's MODE SELECT does that).
        guard set.status == .good else { throw ReconfigureError.writeCacheRejected(status: set.status.rawValue) }
    }

    /// FNV-1a of the device name: a stable NAA identifier across restarts.
    static func stableID(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }
}

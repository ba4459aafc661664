import AdminCore
import Backstores
import Foundation
import ISCSIFabric
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import TargetConfig

/// How the runtime runs (not part of the configuration file).
public struct TargetServiceOptions: Sendable {
    /// I/O workers; nil: `BackstoreKind.defaultIOThreads` for the LUNs configured at start.
    public var ioThreads: Int?
    public var eventLoopThreads: Int = 1
    /// How long sessions get to log out (stop, restart, removal, shutdown) before their
    /// connections are closed.
    public var logoutGrace: TimeAmount = .seconds(5)
    public var logger: Logger = Logger(label: "swift-targetd")
    /// Limits set on the command line: they override the configuration file's `limits`
    /// (embedded target only; LIO has its own).
    public var limitOverrides = LimitSettings()
    public init() {}
}

/// Why the service could not start: worded for the admin.
public struct TargetServiceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The daemon's runtime: runs the configuration (LUNs, targets, portals) and applies changes
/// live, target by target, without touching the sessions of targets that did not change.
public actor TargetService: AdminBackend {
    /// One running target: its SCSI device and the stores behind its LUNs.
    struct Running {
        var device: SCSITarget
        var stores: [Int: any BlockStore]
    }

    public let store: ConfigStore
    public internal(set) var config: Config
    /// Warnings from loading the configuration.
    nonisolated public let loadWarnings: [ConfigDiagnostic]
    let options: TargetServiceOptions
    /// This gateway's target port group / portal group tag, fixed for the daemon's life
    /// (every nexus carries it; a changed `gateway.portGroup` applies at the next start).
    nonisolated public let portGroup: UInt16
    var logger: Logger { options.logger }

    let group: MultiThreadedEventLoopGroup
    let ioPool: IOWorkerPool
    let catalog: TargetCatalog
    let registry: SessionRegistry
    let environment: ConnectionEnvironment
    let server: ISCSIServer

    /// By lower-cased target name.
    var running: [String: Running] = [:]
    /// Targets an admin stopped (kept out of the catalog until started).
    var stopped: Set<String> = []
    /// Portal → bound listener address.
    var listening: [Portal: SocketAddress] = [:]
    /// Per-LUN counters that outlive target restarts ("target|lun").
    var recorders: [String: LUNStatisticsRecorder] = [:]
    var started = false
    /// Changes run one at a time (the actor is re-entered while a change awaits logouts).
    var changing = false
    var waitingChanges: [CheckedContinuation<Void, Never>] = []

    func beginChange() async {
        if changing {
            await withCheckedContinuation { waitingChanges.append($0) }
        } else {
            changing = true
        }
    }

    func endChange() {
        if waitingChanges.isEmpty { changing = false } else { waitingChanges.removeFirst().resume() }
    }

    /// Loads (and validates) the configuration. Throws `ConfigIOError` or `ConfigError`.
    public init(store: ConfigStore, options: TargetServiceOptions = TargetServiceOptions()) throws {
        let loaded = try store.load()
        self.store = store
        self.config = loaded.config
        self.loadWarnings = loaded.warnings
        self.options = options
        portGroup = UInt16(clamping: loaded.config.portGroup)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoopThreads))
        let kinds = loaded.config.targets.flatMap { $0.luns.map(\.backstore) }
        ioPool = IOWorkerPool(threads: max(1, options.ioThreads ?? BackstoreKind.defaultIOThreads(
            for: kinds, processors: ProcessInfo.processInfo.activeProcessorCount)))
        catalog = TargetCatalog(targets: [])
        registry = SessionRegistry()
        var environment = ConnectionEnvironment(catalog: catalog, sessions: registry, ioPool: ioPool, logger: options.logger)
        let timeouts = loaded.config.defaultTimeouts
        environment.nopInInterval = timeouts.nopInInterval > 0 ? .seconds(Int64(timeouts.nopInInterval)) : nil
        environment.nopInTimeout = .seconds(Int64(max(1, timeouts.nopInTimeout)))
        environment.loginTimeout = .seconds(Int64(max(1, timeouts.loginTimeout)))
        environment.guards = FabricGuards(limits: Self.limits(of: loaded.config, overrides: options.limitOverrides))
        environment.targetPortalGroupTag = portGroup
        self.environment = environment
        server = ISCSIServer(environment: environment, group: group)
    }

    /// The limits in force for a configuration: its `limits`, then the command line's.
    static func sanitizeRate(of config: Config, overrides: LimitSettings) -> UInt64 {
        UInt64(max(0, (config.limits ?? LimitSettings()).overridden(by: overrides).resolved.sanitizeMBPerSecond ?? 0)) << 20
    }

    static func limits(of config: Config, overrides: LimitSettings) -> FabricLimits {
        FabricLimits((config.limits ?? LimitSettings()).overridden(by: overrides))
    }

    // MARK: - Start and stop

    /// Opens every LUN, publishes the targets and listens on every portal. On failure
    /// everything opened so far is closed again.
    public func start() async throws {
        guard !started else { return }
        do {
            for target in config.targets {
                running[target.name.lowercased()] = try open(config.effective(target))
            }
            publish()
            for portal in config.portals { try await listen(portal) }
        } catch {
            await server.shutdown(grace: .milliseconds(10))
            for (_, r) in running { close(r) }
            running = [:]
            throw error
        }
        started = true
    }

    /// SIGTERM: sessions are asked to log out, in-flight commands complete, images are flushed.
    public func shutdown() async {
        await server.shutdown(grace: options.logoutGrace)
        ioPool.shutdown()
        for (_, r) in running { close(r) }
        running = [:]
        listening = [:]
        try? await group.shutdownGracefully()
        started = false
    }

    /// The addresses the portals are bound to (tests read the ports).
    public var boundAddresses: [SocketAddress] { Array(listening.values) }

    /// Listens on exactly `portals`: removed ones stop first (a new address may take the
    /// same port), then new ones are bound. If one cannot listen, the old set is restored and
    /// the change fails. Returns the portals that stopped.
    func switchPortals(to portals: [Portal]) async throws(AdminError) -> [Portal] {
        let wanted = Set(portals)
        var unbound: [Portal] = []
        for (p, address) in listening where !wanted.contains(p) {
            await server.stopListening(address)
            listening.removeValue(forKey: p)
            unbound.append(p)
        }
        var bound: [Portal] = []
        for p in portals where listening[p] == nil {
            do {
                try await listen(p)
                bound.append(p)
            } catch {
                for q in bound { if let a = listening.removeValue(forKey: q) { await server.stopListening(a) } }
                for q in unbound { try? await listen(q) }
                throw AdminError(.failed, "\(error); nothing was changed")
            }
        }
        return unbound
    }

    func listen(_ portal: Portal) async throws {
        do {
            let bound = try await server.listen(host: portal.address, port: portal.port)
            listening[portal] = bound
            logger.info("listening", metadata: ["portal": "\(portal)"])
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw TargetServiceError("cannot listen on \(portal): the port is already in use")
        } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
            throw TargetServiceError("cannot listen on \(portal): no local interface has that address")
        } catch let error as IOError where error.errnoCode == EACCES {
            throw TargetServiceError("cannot listen on \(portal): permission denied (ports below 1024 need root)")
        } catch {
            throw TargetServiceError("cannot listen on \(portal): \(error)")
        }
    }
}

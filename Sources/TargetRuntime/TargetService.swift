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
    public private(set) var config: Config
    /// Warnings from loading the configuration.
    nonisolated public let loadWarnings: [ConfigDiagnostic]
    private let options: TargetServiceOptions
    /// This gateway's target port group / portal group tag, fixed for the daemon's life
    /// (every nexus carries it; a changed `gateway.portGroup` applies at the next start).
    nonisolated public let portGroup: UInt16
    private var logger: Logger { options.logger }

    private let group: MultiThreadedEventLoopGroup
    private let ioPool: IOWorkerPool
    private let catalog: TargetCatalog
    private let registry: SessionRegistry
    private let environment: ConnectionEnvironment
    private let server: ISCSIServer

    /// By lower-cased target name.
    private var running: [String: Running] = [:]
    /// Targets an admin stopped (kept out of the catalog until started).
    private var stopped: Set<String> = []
    /// Portal → bound listener address.
    private var listening: [Portal: SocketAddress] = [:]
    /// Per-LUN counters that outlive target restarts ("target|lun").
    private var recorders: [String: LUNStatisticsRecorder] = [:]
    private var started = false
    /// Changes run one at a time (the actor is re-entered while a change awaits logouts).
    private var changing = false
    private var waitingChanges: [CheckedContinuation<Void, Never>] = []

    private func beginChange() async {
        if changing {
            await withCheckedContinuation { waitingChanges.append($0) }
        } else {
            changing = true
        }
    }

    private func endChange() {
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
    private func switchPortals(to portals: [Portal]) async throws(AdminError) -> [Portal] {
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

    private func listen(_ portal: Portal) async throws {
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

    // MARK: - Building targets

    /// Opens the LUNs of a target into a new device. Closes what it opened on failure.
    private func open(_ target: EffectiveTarget) throws -> Running {
        let device = SCSITarget(name: target.name, portGroups: Self.portGroups(of: config), transport: ISCSITransport())
        device.sanitizeBytesPerSecond = Self.sanitizeRate(of: config, overrides: options.limitOverrides)
        device.setLUNMaps(Self.lunMaps(of: target))
        server.attach(device)
        var stores: [Int: any BlockStore] = [:]
        do {
            for lun in target.luns {
                let store = try openStore(lun, target: target.name)
                stores[lun.id] = store
                try device.addLogicalUnit(UInt64(lun.id), store: store,
                                          configuration: unitConfiguration(lun, target: target.name))
            }
        } catch {
            for (_, s) in stores { s.close() }
            if let e = error as? TargetServiceError { throw e }
            throw TargetServiceError("target \(target.name): \(error)")
        }
        return Running(device: device, stores: stores)
    }

    private func openStore(_ lun: LUN, target: String) throws -> any BlockStore {
        do {
            var spec = BackstoreSpec(kind: lun.backstore, path: lun.path, size: lun.size, readOnly: lun.readOnly,
                                     growsExistingImage: true)
            spec.options = lun.options
            return try Backstores.openStore(for: spec)
        } catch let e where e.reason == .notFound && !lun.backstore.isSizedByDevice && !lun.readOnly {
            throw TargetServiceError("target \(target) LUN \(lun.id): \(lun.path) does not exist; set the LUN's \"size\" to create it")
        } catch {
            throw TargetServiceError("target \(target) LUN \(lun.id): \(error)")
        }
    }

    private func recorder(target: String, lun: Int) -> LUNStatisticsRecorder {
        let key = "\(target.lowercased())|\(lun)"
        if let r = recorders[key] { return r }
        let r = LUNStatisticsRecorder()
        recorders[key] = r
        return r
    }

    private func unitConfiguration(_ lun: LUN, target: String) -> LogicalUnitConfiguration {
        var c = LogicalUnitConfiguration(serialNumber: lun.serial, uniqueID: lun.engineUniqueID,
                                         readOnly: lun.readOnly, writeCacheEnabled: lun.writeCache == .writeBack)
        c.statistics = recorder(target: target, lun: lun.id)
        c.reservationPersistence = DurableFile(path: Self.statePath(configuration: store.path, lun: lun, "pr"))
        c.savedModePages = DurableFile(path: Self.statePath(configuration: store.path, lun: lun, "modepages"))
        return c
    }

    /// The engine's form of a target's LUN maps.
    static func lunMaps(of target: EffectiveTarget) -> [LUNMap] {
        target.lunMaps.map { m in
            LUNMap(initiators: m.initiators, entries: m.luns.map {
                LUNMap.Entry(lun: UInt64($0.mappedLun), unit: UInt64($0.lun), readOnly: $0.readOnly)
            })
        }
    }

    /// Where a LUN keeps state through restarts (`pr`: persistent reservations for APTPL,
    /// `modepages`: pages saved with MODE SELECT SP): beside the configuration, named by the
    /// LU's NAA identifier (which outlives renames).
    public static func statePath(configuration: String, lun: LUN, _ kind: String) -> String {
        "\(configuration).state/\(lun.naaId.lowercased()).\(kind)"
    }

    static func policy(_ auth: AuthSettings) -> AuthenticationPolicy {
        switch auth.mode {
        case .none:
            return .none
        case .chap, .mutualCHAP:
            var users: [String: String] = [:]
            for u in auth.incomingUsers { users[u.user] = u.secret }
            var p = AuthenticationPolicy(incomingUsers: users)
            if auth.mode == .mutualCHAP, let o = auth.outgoingUser { p.outgoingUser = (o.user, o.secret) }
            return p
        }
    }

    /// Every gateway's port group as REPORT TARGET PORT GROUPS lists them.
    static func portGroups(of config: Config) -> [UInt16] {
        (config.gateway?.allGroups ?? [config.portGroup]).map { UInt16(clamping: $0) }
    }

    static func loginSettings(_ c: EffectiveConnectionSettings, portGroup: UInt16) -> TargetLoginSettings {
        var s = TargetLoginSettings()
        s.maxRecvDataSegmentLength = UInt32(clamping: c.maxRecvDataSegmentLength)
        s.maxXmitDataSegmentLength = UInt32(clamping: c.maxXmitDataSegmentLength)
        s.maxBurstLength = UInt32(clamping: c.maxBurstLength)
        s.firstBurstLength = UInt32(clamping: c.firstBurstLength)
        s.initialR2T = c.initialR2T
        s.immediateData = c.immediateData
        s.maxOutstandingR2T = UInt32(clamping: c.maxOutstandingR2T)
        s.maxConnections = UInt32(clamping: c.maxConnections)
        s.defaultTime2Wait = UInt32(clamping: c.defaultTime2Wait)
        s.defaultTime2Retain = UInt32(clamping: c.defaultTime2Retain)
        s.headerDigests = c.headerDigest.map(\.rawValue)
        s.dataDigests = c.dataDigest.map(\.rawValue)
        s.targetPortalGroupTag = portGroup
        return s
    }

    static func access(_ e: EffectiveTarget, portals: [Portal], portGroup: UInt16) -> TargetAccess {
        var a = TargetAccess(name: e.name, alias: e.alias, authentication: policy(e.auth),
                             settings: loginSettings(e.connection, portGroup: portGroup),
                             portals: e.advertisedPortals(of: portals).map { "\($0),\(portGroup)" },
                             isAllowed: { e.allowsLogin(initiatorName: $0, address: $1) })
        a.maxSessions = e.connection.maxSessions
        a.nopInIntervalSeconds = e.timeouts.nopInInterval
        a.nopInTimeoutSeconds = e.timeouts.nopInTimeout
        a.isExposed = { e.isExposed(onLocalAddress: $0) }
        return a
    }

    /// Replaces the catalog snapshot: running, not stopped targets with their current settings.
    private func publish() {
        var served: [ServedTarget] = []
        for t in config.targets {
            let key = t.name.lowercased()
            guard let r = running[key], !stopped.contains(key) else { continue }
            served.append(ServedTarget(access: Self.access(config.effective(t), portals: config.portals, portGroup: portGroup), device: r.device))
        }
        catalog.replaceAll(targets: served, discoveryAuthentication: Self.policy(config.discoveryAuth),
                           discoverySettings: Self.loginSettings(config.defaultConnection, portGroup: portGroup))
    }

    private func close(_ r: Running) {
        for (_, s) in r.stores {
            do { try s.flush() } catch { logger.error("flush of \(s.path) failed: \(error)") }
            s.close()
        }
    }

    /// Asks the target's sessions to log out, waits for them (at most the grace period),
    /// closes what is left, then flushes and closes the stores.
    private func retire(_ name: String, _ r: Running) async {
        let sessions = registry.sessions(ofTarget: r.device.name)
        for s in sessions { registry.requestLogout(tsih: s.tsih, grace: options.logoutGrace) }
        let deadline = NIODeadline.now() + options.logoutGrace
        while !registry.sessions(ofTarget: r.device.name).isEmpty, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        for s in registry.sessions(ofTarget: r.device.name) { registry.close(tsih: s.tsih) }
        // Give commands already on workers a moment to finish before the stores go.
        try? await Task.sleep(nanoseconds: 50_000_000)
        close(r)
    }

    // MARK: - AdminBackend

    public func configuration() async -> Config { config }

    public func update(_ change: @Sendable (inout Config) throws -> Void) async throws -> ApplyReport {
        await beginChange()
        defer { endChange() }
        try store.refuseIfEditedOnDisk()
        return try await applyChange(change)
    }

    public func reload() async throws -> ApplyReport {
        await beginChange()
        defer { endChange() }
        let source = try ReloadSource(store)
        let fresh = source.config
        var report = try await applyChange({ $0 = fresh }, replacing: source.data)
        report.warnings = source.warnings + report.warnings
        return report
    }

    /// - Parameter replacing: the file contents a reload read (nil: those last read or written).
    private func applyChange(_ change: @Sendable (inout Config) throws -> Void, replacing: Data? = nil) async throws -> ApplyReport {
        let proposed = try ProposedChange(from: config, change)
        let new = proposed.config, diff = proposed.diff, warnings = proposed.warnings
        if diff.isEmpty {
            if let replacing { store.adopt(replacing) }
            return ApplyReport(effects: [], warnings: warnings)
        }

        // Open what is new before anything changes, so a bad path fails the whole change.
        let old = config
        var opened: [String: Running] = [:]
        for name in diff.addedTargets {
            guard let t = new.target(named: name) else { continue }
            do { opened[name.lowercased()] = try open(new.effective(t)) } catch {
                for (_, r) in opened { close(r) }
                throw AdminError(.failed, "\(error)")
            }
        }
        var newLUNs: [String: [Int: any BlockStore]] = [:]
        let restarts = Set(diff.targetsNeedingRestart.map { $0.lowercased() })
        for td in diff.changedTargets where !restarts.contains(td.name.lowercased()) {
            guard let t = new.target(named: td.name), running[td.name.lowercased()] != nil else { continue }
            for id in td.addedLUNs {
                guard let lun = t.lun(id) else { continue }
                do { newLUNs[td.name.lowercased(), default: [:]][id] = try openStore(lun, target: t.name) } catch {
                    for (_, r) in opened { close(r) }
                    for (_, m) in newLUNs { for (_, s) in m { s.close() } }
                    throw AdminError(.failed, "\(error)")
                }
            }
        }
        // Portals too: a portal that cannot listen fails the change, so nothing is saved that
        // is not in force.
        var unbound: [Portal] = []
        do {
            if diff.portalsChanged && started { unbound = try await switchPortals(to: new.portals) }
            try store.save(new, replacing: replacing)
        } catch {
            for (_, r) in opened { close(r) }
            for (_, m) in newLUNs { for (_, s) in m { s.close() } }
            if let error = error as? AdminError { throw error }
            if let error = error as? ConfigChangedOnDisk { throw AdminError(.conflict, error.description) }
            throw AdminError(.failed, "cannot save the configuration: \(error)")
        }
        config = new
        var effects: [AppliedEffect] = []
        func report(_ e: SettingEffect, _ outcome: String) {
            effects.append(AppliedEffect(setting: e.setting.rawValue, target: e.target, lun: e.lun,
                                         applyMode: e.applyMode.rawValue, outcome: outcome))
        }
        var retiring: [(String, Running)] = []

        // Removed targets leave the catalog at once; their sessions are logged out below.
        for name in diff.removedTargets {
            let key = name.lowercased()
            stopped.remove(key)
            if let r = running.removeValue(forKey: key) { retiring.append((name, r)) }
        }
        for (key, r) in opened { running[key] = r }

        var outcomes: [String: String] = [:]  // "setting|target|lun" → outcome
        func key(_ e: SettingEffect) -> String { "\(e.setting.rawValue)|\(e.target ?? "")|\(e.lun ?? -1)" }

        for td in diff.changedTargets {
            let k = td.name.lowercased()
            guard let t = new.target(named: td.name), let oldT = old.target(named: td.name) else { continue }
            if restarts.contains(k) { continue }
            guard var r = running[k] else { continue }
            for id in td.removedLUNs {
                if let s = r.device.removeLogicalUnit(UInt64(id)) { retireStore(s) }
                r.stores.removeValue(forKey: id)
            }
            // The new maps before the new LUNs: a LUN the change hides is never visible.
            if td.lunMapsChanged { r.device.setLUNMaps(Self.lunMaps(of: new.effective(t))) }
            for id in td.addedLUNs {
                guard let lun = t.lun(id), let s = newLUNs[k]?[id] else { continue }
                do {
                    try r.device.addLogicalUnit(UInt64(id), store: s, configuration: unitConfiguration(lun, target: t.name))
                    r.stores[id] = s
                } catch {
                    s.close()
                    outcomes["lunAdded|\(t.name)|\(id)"] = "failed: \(error)"
                }
            }
            for id in td.changedLUNs {
                guard let lun = t.lun(id), let oldLUN = oldT.lun(id) else { continue }
                if lun.readOnly != oldLUN.readOnly || lun.writeCache != oldLUN.writeCache {
                    // Re-add the LU with the new settings (initiators see REPORTED LUNS DATA HAS CHANGED).
                    if let s = r.device.removeLogicalUnit(UInt64(id)) { try? s.flush(); s.close() }
                    r.stores.removeValue(forKey: id)
                    do {
                        let s = try openStore(lun, target: t.name)
                        try r.device.addLogicalUnit(UInt64(id), store: s, configuration: unitConfiguration(lun, target: t.name))
                        r.stores[id] = s
                    } catch {
                        outcomes["lunReadOnly|\(t.name)|\(id)"] = "failed: \(error)"
                        outcomes["lunWriteCache|\(t.name)|\(id)"] = "failed: \(error)"
                    }
                } else if lun.size != oldLUN.size, let newSize = lun.size, let s = r.stores[id] {
                    outcomes["lunSize|\(t.name)|\(id)"] = resize(s, lun: lun, to: newSize, device: r.device, target: t.name)
                }
            }
            running[k] = r
        }
        publish()

        // Portals.
        // Portals were bound above; sessions that came in through a removed one are logged out.
        for p in unbound {
            let host = IPAddress(p.address)
            for session in registry.sessions where session.localPort == p.port
                && (p.isWildcard || IPAddress(session.localAddress) == host) {
                registry.requestLogout(tsih: session.tsih, grace: options.logoutGrace)
            }
        }

        if diff.effects.contains(where: { $0.setting == .portGroups }) {
            for (_, r) in running { r.device.setPortGroups(Self.portGroups(of: new)) }
        }
        if diff.limitsChanged {
            environment.guards.update(limits: Self.limits(of: new, overrides: options.limitOverrides))
            let rate = Self.sanitizeRate(of: new, overrides: options.limitOverrides)
            for (_, r) in running { r.device.sanitizeBytesPerSecond = rate }
            if !options.limitOverrides.isEmpty {
                outcomes["limits||-1"] = "applies to new logins; the command line still sets \(options.limitOverrides.summary)"
            }
        }

        // Restarts (LUN backing, block size, identity): only those targets.
        for name in restarts {
            guard let r = running.removeValue(forKey: name), let t = new.target(named: name) else { continue }
            publish()
            await retire(name, r)
            do {
                running[name] = try open(new.effective(t))
            } catch {
                outcomes["restart|\(name)"] = "failed: \(error)"
                logger.error("restart of \(t.name) failed: \(error)")
            }
            publish()
        }
        for (name, r) in retiring { await retire(name, r) }

        for e in diff.effects {
            if let o = outcomes[key(e)] { report(e, o); continue }
            if let t = e.target, let o = outcomes["restart|\(t.lowercased())"], e.applyMode == .targetRestart {
                report(e, o); continue
            }
            switch e.applyMode {
            case .immediate:
                switch e.setting {
                case .targetRemoved: report(e, "target removed; its sessions were logged out")
                case .targetAdded: report(e, stopped.contains(e.target?.lowercased() ?? "") ? "added (stopped)" : "target started")
                case .lunAdded: report(e, "applied; initiators see REPORTED LUNS DATA HAS CHANGED")
                case .lunRemoved: report(e, "applied; initiators see REPORTED LUNS DATA HAS CHANGED")
                case .lunSize: report(e, "applied")
                case .lunReadOnly, .lunWriteCache: report(e, "applied; the LUN was re-added")
                case .portals: report(e, "listeners updated")
                case .portGroups: report(e, "applied; REPORT TARGET PORT GROUPS lists them")
                default: report(e, "applied")
                }
            case .newLogins where e.setting == .defaults:
                report(e, "saved; targets without their own setting (and targets added later) use it at their next logins")
            case .newLogins:
                let atRestart = (e.setting == .loginTimeout && e.target == nil) || e.setting == .portGroup
                report(e, atRestart ? "applies after the daemon restarts" : "applies to new logins")
            case .targetRestart:
                report(e, "target restarted")
            }
        }
        logger.notice("configuration changed", metadata: ["changes": "\(diff.effects.count)"])
        return ApplyReport(effects: effects, warnings: warnings)
    }

    /// Grows an image (or re-reads a device) and tells the initiators the capacity changed.
    private func resize(_ s: any BlockStore, lun: LUN, to size: UInt64, device: SCSITarget, target: String) -> String {
        if !lun.backstore.isSizedByDevice {
            if size < s.byteCount { return "not applied: shrinking a LUN is refused (current size \(s.byteCount) bytes)" }
            if size > s.byteCount {
                do { try resizeStore(s, to: size) } catch { return "failed: \(error)" }
            }
        }
        do { try s.refreshSize() } catch { return "failed: \(error)" }
        device.capacityChanged(lun: UInt64(lun.id))
        return "applied; initiators see CAPACITY DATA HAS CHANGED (\(s.byteCount) bytes)"
    }

    /// A removed LU's store is closed once commands that may still use it are done.
    private func retireStore(_ s: any BlockStore) {
        let logger = self.logger
        Task.detached {
            try? await Task.sleep(nanoseconds: 500_000_000)
            do { try s.flush() } catch { logger.error("flush of \(s.path) failed: \(error)") }
            s.close()
        }
    }

    public func targetStatuses() async -> [TargetStatus] {
        config.targets.map { t in
            let key = t.name.lowercased()
            let r = running[key]
            var sizes: [Int: UInt64] = [:]
            for (id, s) in r?.stores ?? [:] { sizes[id] = s.byteCount }
            return TargetStatus(name: t.name, running: r != nil && !stopped.contains(key),
                                sessions: registry.sessions(ofTarget: t.name).count, lunSizes: sizes)
        }
    }

    public func sessions() async -> [SessionInfo] {
        registry.sessions.map { s in
            let p = s.parameters
            let hex = String(s.isid, radix: 16)
            var negotiated: [String: String] = [
                "MaxConnections": "\(p.maxConnections)", "InitialR2T": p.initialR2T ? "Yes" : "No",
                "ImmediateData": p.immediateData ? "Yes" : "No",
                "MaxRecvDataSegmentLength": "\(p.maxRecvDataSegmentLength)",
                "MaxXmitDataSegmentLength": "\(p.maxXmitDataSegmentLength)",
                "MaxBurstLength": "\(p.maxBurstLength)", "FirstBurstLength": "\(p.firstBurstLength)",
                "DefaultTime2Wait": "\(p.defaultTime2Wait)", "DefaultTime2Retain": "\(p.defaultTime2Retain)",
                "MaxOutstandingR2T": "\(p.maxOutstandingR2T)", "ErrorRecoveryLevel": "\(p.errorRecoveryLevel)",
            ]
            if let alias = p.initiatorAlias { negotiated["InitiatorAlias"] = alias }
            return SessionInfo(
                tsih: s.tsih, target: p.sessionType == .normal ? s.targetName : nil, initiator: s.initiatorName,
                isid: String(repeating: "0", count: max(0, 12 - hex.count)) + hex, remoteAddress: s.remoteAddress,
                localAddress: s.localAddress, authenticatedUser: s.authenticatedUser,
                headerDigest: p.headerDigest ? "CRC32C" : "None", dataDigest: p.dataDigest ? "CRC32C" : "None",
                negotiated: negotiated, commandsInFlight: s.commandsInFlight, connectedSince: s.connectedSince,
                commands: s.inFlight.commands, bytesRead: s.inFlight.bytesRead, bytesWritten: s.inFlight.bytesWritten,
                errors: s.inFlight.errors)
        }
    }

    public func logout(tsih: UInt16) async throws {
        guard registry.requestLogout(tsih: tsih, grace: options.logoutGrace) else {
            throw AdminError(.notFound, "no session with TSIH \(tsih)")
        }
    }

    public func control(_ action: ServiceAction, target: String?) async throws {
        await beginChange()
        defer { endChange() }
        let names: [String]
        if let target {
            guard let t = config.target(named: target) else { throw AdminError(.notFound, "no target named \(target)") }
            names = [t.name]
        } else {
            names = config.targets.map(\.name)
        }
        var failures: [String] = []
        for name in names {
            let key = name.lowercased()
            if action == .stop || action == .restart {
                stopped.insert(key)
                if let r = running.removeValue(forKey: key) {
                    publish()
                    await retire(name, r)
                }
            }
            if action == .start || action == .restart {
                stopped.remove(key)
                if running[key] == nil, let t = config.target(named: name) {
                    do { running[key] = try open(config.effective(t)) } catch {
                        stopped.insert(key)
                        failures.append("\(error)")
                    }
                }
                publish()
            }
        }
        if !failures.isEmpty { throw AdminError(.failed, failures.joined(separator: "\n")) }
    }

    public func statistics() async -> [LUNStatistics] {
        var out: [LUNStatistics] = []
        for t in config.targets {
            for lun in t.luns.sorted(by: { $0.id < $1.id }) {
                guard let r = recorders["\(t.name.lowercased())|\(lun.id)"] else { continue }
                let s = r.snapshot()
                out.append(LUNStatistics(
                    target: t.name, lun: lun.id, readCommands: s.readCommands, writeCommands: s.writeCommands,
                    otherCommands: s.otherCommands, bytesRead: s.bytesRead, bytesWritten: s.bytesWritten,
                    errors: s.errors, latencyBuckets: LUNStatisticsRecorder.bucketBounds,
                    latencyCounts: s.cumulativeBucketCounts, latencySumSeconds: s.latencySumSeconds))
            }
        }
        return out
    }

    public func securityCounters() async -> SecurityCounters {
        let c = environment.securityCounters
        var counters = SecurityCounters(chapFailures: c.chapFailures, aclDenials: c.aclDenials, nopTimeouts: c.nopTimeouts)
        let guards = environment.guards
        counters.loginsInProgress = guards.loginAdmission.inLogin
        counters.refusedConnections = guards.refusedConnections
        counters.delayedCHAPVerifications = guards.delayedVerifications
        counters.throttledPeers = guards.loginThrottle.throttledPeers()
        counters.bufferedWriteBytes = guards.bufferedWriteBytes
        counters.residentBytes = ProcessMemory.residentBytes()
        return counters
    }
}

import AdminCore
import Backstores
import Foundation
import Logging
import SCSIEngine
import Synchronization
import TCMU
import TargetConfig

/// How the LIO-backed runtime runs (not part of the configuration file).
public struct LIOServiceOptions: Sendable {
    public var logger = Logger(label: "swift-targetd.lio")
    /// configfs root of LIO.
    public var configfsRoot = "/sys/kernel/config/target"
    /// Where the record of the objects this daemon created is kept.
    public var record = LIOExportRecord()
    /// Leave the LIO export in place on shutdown, so a restarted daemon picks the rings
    /// (and the initiators' sessions) up where they were. Off: shutdown removes the export.
    public var keepExportOnShutdown = false
    public var handler = TCMUHandler.Configuration()
    /// Tests: `configfsRoot` is a plain directory (see `ConfigfsApplier.emulatesConfigfs`).
    public var emulatesConfigfs = false
    public init() {}
}

/// The daemon's runtime when the kernel target (LIO) is present: the same configuration
/// becomes LIO objects in configfs (`LIOExportBuilder`), every LUN a TCMU backstore whose
/// SCSI commands our handler runs through the shared SCSI engine. Changes are applied by
/// re-creating the LIO objects of the targets that changed; other targets are untouched.
public actor LIOService: AdminBackend {
    public let store: ConfigStore
    public private(set) var config: Config
    nonisolated public let loadWarnings: [ConfigDiagnostic]
    /// The configuration's `limits` at start (they concern the embedded fabric, not LIO).
    nonisolated public let initialLimits: LimitSettings?
    /// What LIO does not express exactly, for the current configuration.
    public private(set) var exportWarnings: [String] = []
    private let options: LIOServiceOptions
    private var logger: Logger { options.logger }
    private let handler: TCMUHandler
    private let applier: ConfigfsApplier
    private let recorders: RecorderTable
    /// What exists in configfs because of us (mirrors the record file).
    private var applied = LIOExportSpec(backstores: [])
    /// Targets (lower-cased IQNs) whose configfs steps have not all run.
    private var incomplete: Set<String> = []
    private var stopped: Set<String> = []
    private var started = false

    /// Loads (and validates) the configuration. Throws `ConfigIOError` or `ConfigError`.
    public init(store: ConfigStore, options: LIOServiceOptions = LIOServiceOptions()) throws {
        let loaded = try store.load()
        self.store = store
        self.config = loaded.config
        self.loadWarnings = loaded.warnings
        self.initialLimits = loaded.config.limits
        self.options = options
        self.applier = ConfigfsApplier(root: options.configfsRoot, emulatesConfigfs: options.emulatesConfigfs)
        let recorders = RecorderTable()
        self.recorders = recorders
        var hc = options.handler
        hc.statisticsRecorder = { name in recorders.recorder(forBackstore: name.device) }
        self.handler = TCMUHandler(configuration: hc, logger: options.logger)
    }

    // MARK: - Start and stop

    /// Starts the TCMU handler (joining the netlink family; pending commands of devices
    /// left by a previous daemon are picked up), then makes LIO match the configuration.
    public func start() async throws {
        guard !started else { return }
        let export: LIOExport
        do {
            (applied, incomplete) = try options.record.load()
            export = try buildExport(config)
            try handler.start()
            try reconcile(to: export.spec)
        } catch {
            // Never leave TPGs behind whose LUNs nobody serves: their initiators would hang.
            if !applied.targets.isEmpty || !applied.backstores.isEmpty { removeAll() }
            handler.stop()
            throw error
        }
        exportWarnings = export.warnings
        for w in export.warnings { logger.warning("\(w)") }
        started = true
        logger.notice("LIO export ready", metadata: [
            "targets": "\(applied.targets.count)", "backstores": "\(applied.backstores.count)"])
    }

    /// Removes the export (unless kept) and stops the handler; images are flushed by the
    /// handler closing its stores.
    public func shutdown() async {
        if !options.keepExportOnShutdown {
            removeAll()
        } else {
            logger.notice("leaving the LIO export in place for the next start")
        }
        handler.stop()
        started = false
    }

    private func removeAll() {
        do {
            try applier.apply(ConfigfsPlan.remove(applied).filter { !isHBA($0) }, ignoringMissing: true)
            removeHBAIfEmpty()
            applied = LIOExportSpec(backstores: [])
            incomplete = []
            options.record.remove()
            logger.notice("LIO export removed")
        } catch {
            logger.error("removing the LIO export failed: \(error); the record \(options.record.path) keeps what is left")
        }
    }

    // MARK: - Making configfs match

    private func buildExport(_ config: Config) throws -> LIOExport {
        try LIOExportBuilder.build(config) { t, lun in try Self.deviceSize(t, lun) }
    }

    /// The capacity a LUN is exported with: its configured size (the handler creates or
    /// grows the image), else the size of the existing image or device.
    static func deviceSize(_ t: EffectiveTarget, _ lun: LUN) throws -> UInt64 {
        if !lun.backstore.isSizedByDevice, let size = lun.size { return size }
        do {
            var spec = BackstoreSpec(kind: lun.backstore, path: lun.path, readOnly: true)
            spec.options = lun.options
            let s = try openStore(for: spec)
            defer { s.close() }
            if let size = lun.size, size < s.byteCount { return size }
            return s.byteCount
        } catch let e where e.reason == .notFound && !lun.backstore.isSizedByDevice {
            throw LIOExportError("target \(t.name) LUN \(lun.id): \(lun.path) does not exist; set the LUN's \"size\" to create it")
        } catch {
            throw LIOExportError("target \(t.name) LUN \(lun.id): \(error)")
        }
    }

    /// How a target's change reached LIO.
    enum Outcome: String {
        case created = "applied: LIO target created"
        case recreated = "applied: LIO target re-created (initiators log in again)"
        case live = "applied live (sessions kept)"
    }

    /// Makes configfs match `wanted`: targets whose only changes are LUNs are changed in
    /// place (sessions keep running); other changed targets are re-created; targets no
    /// longer wanted are removed; identical ones are left alone.
    @discardableResult
    private func reconcile(to wanted: LIOExportSpec) throws -> [String: Outcome] {
        var outcomes: [String: Outcome] = [:]
        for t in applied.targets {
            let key = t.iqn.lowercased()
            guard let old = applied.part(forTarget: key) else { continue }
            let present = SysfsFiles.exists(options.configfsRoot + "/" + t.tpgPath)
            guard let new = wanted.part(forTarget: key), present else {
                try remove(old)
                continue
            }
            let whole = !incomplete.contains(key)
            if old == new && whole { continue }
            if whole, try changeLUNsInPlace(from: old, to: new) {
                outcomes[key] = .live
            } else {
                try remove(old)
                outcomes[key] = .recreated
            }
        }
        // Backstores of ours no target references any more (e.g. left by a crash mid-change).
        let referenced = Set(applied.targets.flatMap { $0.luns.map(\.backstore) })
        let orphans = applied.backstores.filter { !referenced.contains($0.name) }
        if !orphans.isEmpty { try remove(LIOExportSpec(backstores: orphans)) }

        for t in wanted.targets where !applied.targets.contains(where: { $0.iqn.lowercased() == t.iqn.lowercased() }) {
            try create(wanted.part(forTarget: t.iqn)!)
            outcomes[t.iqn.lowercased()] = outcomes[t.iqn.lowercased()] ?? .created
        }
        for t in wanted.targets {
            try? applier.apply([.write(t.tpgPath + "/enable", stopped.contains(t.iqn.lowercased()) ? "0" : "1")])
        }
        removeHBAIfEmpty()
        return outcomes
    }

    /// A change confined to LUNs is made without touching the TPG: a new size is a
    /// RECONFIG of `attrib/dev_size` (CAPACITY DATA HAS CHANGED), a write-cache flip one of
    /// `attrib/emulate_write_cache`, and added or replaced LUNs are mapped in and out (LIO
    /// reports REPORTED LUNS DATA HAS CHANGED). False when the target itself changed.
    private func changeLUNsInPlace(from old: LIOExportSpec, to new: LIOExportSpec) throws -> Bool {
        guard var o = old.targets.first, var n = new.targets.first else { return false }
        let iqn = o.iqn
        o.luns = []
        n.luns = []
        guard o == n else { return false }
        func backstores(_ spec: LIOExportSpec) -> [Int: LIOExportSpec.Backstore] {
            var m: [Int: LIOExportSpec.Backstore] = [:]
            for l in spec.targets[0].luns { m[l.number] = spec.backstores.first { $0.name == l.backstore } }
            return m
        }
        let before = backstores(old), after = backstores(new)
        var steps: [ConfigfsStep] = []
        var replaced: Set<Int> = []
        for (number, b) in after {
            guard let a = before[number] else { continue }
            var same = a
            same.size = b.size
            same.writeCache = b.writeCache
            if same != b {
                replaced.insert(number)
                continue
            }
            if a.size != b.size {
                if b.size < a.size { replaced.insert(number); continue }  // shrinking: remove and add
                steps.append(.write(b.path + "/attrib/dev_size", "\(b.size)"))
            }
            if (a.writeCache ?? false) != (b.writeCache ?? false) {
                steps.append(.write(b.path + "/attrib/emulate_write_cache", b.writeCache == true ? "1" : "0"))
            }
        }
        let removed = Set(before.keys).subtracting(after.keys).union(replaced)
        let added = Set(after.keys).subtracting(before.keys).union(replaced)
        for number in added.subtracting(replaced) {
            if let b = after[number], !applied.backstores.contains(where: { $0.path == b.path }),
               SysfsFiles.exists(options.configfsRoot + "/" + b.path) {
                throw LIOExportError("LIO already has a backstore \(b.path) that swift-targetd did not create; remove it or free that name")
            }
        }
        // Record the union, marked incomplete, first: a failure or crash part-way leaves a
        // record of all that may exist, and the next reconcile re-creates the target.
        let key = iqn.lowercased()
        applied = applied.merging(LIOExportSpec(backstores: old.backstores)).merging(new)
        incomplete.insert(key)
        try saveRecord()
        do {
            try applier.apply(ConfigfsPlan.removeLUNs(removed, target: iqn, in: old), ignoringMissing: true)
            try applier.apply(steps)
            try applier.apply(ConfigfsPlan.addLUNs(added, target: iqn, in: new))
        } catch {
            throw LIOExportError("changing the LUNs of \(iqn) in LIO failed: \(error)")
        }
        let kept = Set(new.backstores.map(\.path))
        applied = applied.removing(LIOExportSpec(backstores: old.backstores.filter { !kept.contains($0.path) }))
        incomplete.remove(key)
        try saveRecord()
        logger.info("LIO target changed in place", metadata: ["target": "\(iqn)", "added": "\(added.sorted())",
                                                             "removed": "\(removed.sorted())"])
        return true
    }

    /// Creates one target's objects after checking that none of them exists already (an
    /// object we did not create is never adopted or changed). Recorded before the first
    /// step, so a crash half-way leaves a record of everything that may exist.
    private func create(_ part: LIOExportSpec) throws {
        let root = options.configfsRoot
        for t in part.targets where SysfsFiles.exists("\(root)/iscsi/\(t.iqn)") {
            throw LIOExportError("LIO already has a target \(t.iqn) that swift-targetd did not create; remove it (targetcli) or rename ours")
        }
        for b in part.backstores where SysfsFiles.exists("\(root)/\(b.path)") {
            throw LIOExportError("LIO already has a backstore \(b.path) that swift-targetd did not create; remove it or free that name")
        }
        let keys = Set(part.targets.map { $0.iqn.lowercased() })
        applied = applied.merging(part)
        incomplete.formUnion(keys)
        try saveRecord()
        do {
            var steps = try ConfigfsPlan.create(part)
            // A stopped target stays disabled while it is re-created.
            for t in part.targets where stopped.contains(t.iqn.lowercased()) {
                steps = steps.map { $0 == .write(t.tpgPath + "/enable", "1") ? .write(t.tpgPath + "/enable", "0") : $0 }
            }
            try applier.apply(steps)
        } catch {
            try? remove(part)
            throw LIOExportError("creating the LIO objects of \(part.targets.map(\.iqn).joined(separator: ", ")) failed: \(error)")
        }
        incomplete.subtract(keys)
        try saveRecord()
        logger.info("LIO target created", metadata: ["target": "\(part.targets.first?.iqn ?? "")",
                                                     "luns": "\(part.backstores.count)"])
    }

    private func remove(_ part: LIOExportSpec) throws {
        try applier.apply(ConfigfsPlan.remove(part).filter { !isHBA($0) }, ignoringMissing: true)
        applied = applied.removing(part)
        incomplete.subtract(part.targets.map { $0.iqn.lowercased() })
        try saveRecord()
        if let t = part.targets.first { logger.info("LIO target removed", metadata: ["target": "\(t.iqn)"]) }
    }

    private func saveRecord() throws {
        try options.record.save(applied, incomplete: incomplete)
    }

    /// The HBA directory is shared by all our backstores: removed only when empty.
    private func isHBA(_ step: ConfigfsStep) -> Bool {
        if case .removeDirectory(let p) = step { return p == "core/user_\(LIOExportBuilder.hba)" }
        return false
    }

    private func removeHBAIfEmpty() {
        let hba = "\(options.configfsRoot)/core/user_\(LIOExportBuilder.hba)"
        if SysfsFiles.exists(hba), SysfsFiles.list(hba).filter({ $0 != "hba_info" && $0 != "hba_mode" }).isEmpty {
            _ = rmdir(hba)
        }
    }

    // MARK: - AdminBackend

    public func configuration() async -> Config { config }

    public func update(_ change: @Sendable (inout Config) throws -> Void) async throws -> ApplyReport {
        try store.refuseIfEditedOnDisk()
        return try applyChange(change)
    }

    public func reload() async throws -> ApplyReport {
        let source = try ReloadSource(store)
        let fresh = source.config
        var report = try applyChange({ $0 = fresh }, replacing: source.data)
        report.warnings = source.warnings + report.warnings
        return report
    }

    /// - Parameter replacing: the file contents a reload read (nil: those last read or written).
    private func applyChange(_ change: @Sendable (inout Config) throws -> Void, replacing: Data? = nil) throws -> ApplyReport {
        let proposed = try ProposedChange(from: config, change)
        let new = proposed.config, diff = proposed.diff
        var warnings = proposed.warnings
        if diff.isEmpty {
            if let replacing { store.adopt(replacing) }
            return ApplyReport(effects: [], warnings: warnings)
        }
        let export: LIOExport
        do { export = try buildExport(new) } catch { throw AdminError(.invalid, "\(error)") }
        warnings += export.warnings

        let old = config
        let oldSpec = applied
        let outcomes: [String: Outcome]
        do {
            outcomes = try reconcile(to: export.spec)
        } catch {
            // Put back what was there; the configuration file is unchanged.
            _ = try? reconcile(to: (try? buildExport(old).spec) ?? oldSpec)
            throw AdminError(.failed, "\(error)")
        }
        do {
            try store.save(new, replacing: replacing)
        } catch {
            _ = try? reconcile(to: (try? buildExport(old).spec) ?? oldSpec)
            if let error = error as? ConfigChangedOnDisk { throw AdminError(.conflict, error.description) }
            throw AdminError(.failed, "cannot save the configuration: \(error)")
        }
        config = new
        exportWarnings = export.warnings
        let effects = diff.effects.map { e in
            AppliedEffect(setting: e.setting.rawValue, target: e.target, lun: e.lun, applyMode: e.applyMode.rawValue,
                          outcome: e.target.flatMap { outcomes[$0.lowercased()]?.rawValue } ?? "applied")
        }
        return ApplyReport(effects: effects, warnings: warnings)
    }

    public func targetStatuses() async -> [TargetStatus] {
        config.targets.map { t in
            let part = applied.part(forTarget: t.name)
            let tpg = part?.targets.first.map { options.configfsRoot + "/" + $0.tpgPath }
            let enabled = tpg.flatMap { SysfsFiles.readTrimmed($0 + "/enable") } == "1"
            var sizes: [Int: UInt64] = [:]
            for lun in part?.targets.first?.luns ?? [] {
                sizes[lun.number] = part?.backstores.first { $0.name == lun.backstore }?.size
            }
            return TargetStatus(name: t.name, running: enabled, sessions: tpg.map { LIOSessions.read(tpg: $0).count } ?? 0,
                                lunSizes: sizes)
        }
    }

    public func sessions() async -> [SessionInfo] {
        applied.targets.flatMap { t in
            LIOSessions.read(tpg: options.configfsRoot + "/" + t.tpgPath).map { s in
                SessionInfo(tsih: s.tsih, target: t.iqn, initiator: s.initiator, isid: s.isid,
                            remoteAddress: s.remoteAddress, localAddress: "", authenticatedUser: nil,
                            headerDigest: "", dataDigest: "", negotiated: [:], commandsInFlight: 0, connectedSince: 0)
            }
        }
    }

    public func logout(tsih: UInt16) async throws {
        throw AdminError(.failed, "LIO mode: LIO cannot end a single session; stop the target or remove the initiator from allowedClients")
    }

    public func control(_ action: ServiceAction, target: String?) async throws {
        let names: [String]
        if let target {
            guard let t = config.target(named: target) else { throw AdminError(.notFound, "no target named \(target)") }
            names = [t.name]
        } else {
            names = config.targets.map(\.name)
        }
        for name in names {
            guard let tpg = applied.part(forTarget: name)?.targets.first?.tpgPath else { continue }
            if action == .stop || action == .restart {
                stopped.insert(name.lowercased())
                try? applier.apply([.write(tpg + "/enable", "0")])
            }
            if action == .start || action == .restart {
                stopped.remove(name.lowercased())
                do { try applier.apply([.write(tpg + "/enable", "1")]) } catch {
                    throw AdminError(.failed, "target \(name): enabling the LIO TPG failed: \(error)")
                }
            }
        }
    }

    public func statistics() async -> [LUNStatistics] {
        var out: [LUNStatistics] = []
        for t in config.targets {
            for lun in t.luns.sorted(by: { $0.id < $1.id }) {
                let r = recorders.recorder(forBackstore: LIOExportBuilder.backstoreName(target: t.name, lun: lun.id))
                let s = r.snapshot()
                out.append(LUNStatistics(
                    target: t.name, lun: lun.id, readCommands: s.readCommands, writeCommands: s.writeCommands,
                    otherCommands: s.otherCommands, bytesRead: s.bytesRead, bytesWritten: s.bytesWritten,
                    errors: s.errors, latencyBuckets: LUNStatisticsRecorder.bucketBounds,
                    latencyCounts: s.cumulativeBucketCounts,
                    latencySumSeconds: s.latencySumSeconds))
            }
        }
        return out
    }

    /// LIO's own login counters (`fabric_statistics/iscsi_login_stats`) of our targets.
    public func securityCounters() async -> SecurityCounters {
        var c = SecurityCounters()
        for t in applied.targets {
            let dir = "\(options.configfsRoot)/iscsi/\(t.iqn)/fabric_statistics/iscsi_login_stats"
            c.chapFailures += SysfsFiles.readUInt64(dir + "/authenticate_fails") ?? 0
            c.aclDenials += SysfsFiles.readUInt64(dir + "/authorize_fails") ?? 0
        }
        return c
    }
}

/// Statistics recorders by backstore name, reachable from the handler's threads.
final class RecorderTable: Sendable {
    private let table = Mutex<[String: LUNStatisticsRecorder]>([:])

    func recorder(forBackstore name: String) -> LUNStatisticsRecorder {
        table.withLock { t in
            if let r = t[name] { return r }
            let r = LUNStatisticsRecorder()
            t[name] = r
            return r
        }
    }
}

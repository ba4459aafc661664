import AdminCore
import Backstores
import Foundation
import ISCSIFabric
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import TargetConfig

/// The AdminBackend's changes: a new configuration is validated, written, then applied live
/// (targets opened, re-opened, retired; LUNs added, resized, removed).
extension TargetService {
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
    func applyChange(_ change: @Sendable (inout Config) throws -> Void, replacing: Data? = nil) async throws -> ApplyReport {
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
    func resize(_ s: any BlockStore, lun: LUN, to size: UInt64, device: SCSITarget, target: String) -> String {
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
    func retireStore(_ s: any BlockStore) {
        let logger = self.logger
        Task.detached {
            try? await Task.sleep(nanoseconds: 500_000_000)
            do { try s.flush() } catch { logger.error("flush of \(s.path) failed: \(error)") }
            s.close()
        }
    }
}

import AdminCore
import Backstores
import Foundation
import ISCSIFabric
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import TargetConfig

/// Opening a target's LUNs into a SCSI device, publishing it in the catalog, closing it.
extension TargetService {
    /// Opens the LUNs of a target into a new device. Closes what it opened on failure.
    func open(_ target: EffectiveTarget) throws -> Running {
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

    func openStore(_ lun: LUN, target: String) throws -> any BlockStore {
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

    func recorder(target: String, lun: Int) -> LUNStatisticsRecorder {
        let key = "\(target.lowercased())|\(lun)"
        if let r = recorders[key] { return r }
        let r = LUNStatisticsRecorder()
        recorders[key] = r
        return r
    }

    func unitConfiguration(_ lun: LUN, target: String) -> LogicalUnitConfiguration {
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
    func publish() {
        var served: [ServedTarget] = []
        for t in config.targets {
            let key = t.name.lowercased()
            guard let r = running[key], !stopped.contains(key) else { continue }
            served.append(ServedTarget(access: Self.access(config.effective(t), portals: config.portals, portGroup: portGroup), device: r.device))
        }
        catalog.replaceAll(targets: served, discoveryAuthentication: Self.policy(config.discoveryAuth),
                           discoverySettings: Self.loginSettings(config.defaultConnection, portGroup: portGroup))
    }

    func close(_ r: Running) {
        for (_, s) in r.stores {
            do { try s.flush() } catch { logger.error("flush of \(s.path) failed: \(error)") }
            s.close()
        }
    }

    /// Asks the target's sessions to log out, waits for them (at most the grace period),
    /// closes what is left, then flushes and closes the stores.
    func retire(_ name: String, _ r: Running) async {
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
}

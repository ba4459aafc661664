import Foundation

/// When a changed setting takes effect in a running daemon.
public enum ApplyMode: String, Sendable, Codable, Hashable, Comparable, CaseIterable {
    /// Applied to running sessions right away (e.g. LUN added: REPORTED LUNS DATA HAS CHANGED).
    case immediate = "applies-now"
    /// Existing sessions keep the old value; new logins (and discovery) use the new one.
    case newLogins = "new-logins"
    /// The target's sessions must be dropped and the target restarted (other targets untouched).
    case targetRestart = "target-restart"

    private var rank: Int { self == .immediate ? 0 : self == .newLogins ? 1 : 2 }
    public static func < (a: ApplyMode, b: ApplyMode) -> Bool { a.rank < b.rank }
}

/// Every setting that can change, with its JSON field and its `ApplyMode` (exposed as data
/// for the daemon, CLI and console: `SettingKey.allCases.map { ($0.field, $0.applyMode) }`).
public enum SettingKey: String, Sendable, Codable, Hashable, CaseIterable {
    // Global
    case portals
    case discoveryAuth
    case limits
    case portGroup
    case portGroups
    /// The global defaults themselves: saved even when every target sets its own value now,
    /// since targets added later (and any target that drops its own) inherit them.
    case defaults
    // Targets
    case targetAdded
    case targetRemoved
    case alias
    case auth
    case allowedClients
    case allowedServerAddresses
    case lunMaps
    // LUNs
    case lunAdded
    case lunRemoved
    case lunBacking        // backstore kind or path
    case lunSize
    case lunBlockSize
    case lunReadOnly
    case lunWriteCache
    case lunIdentity       // serial or NAA id
    // Connection (negotiated at login) and limits
    case maxSessions, maxConnections, initialR2T, immediateData
    case maxRecvDataSegmentLength, maxXmitDataSegmentLength, maxBurstLength, firstBurstLength
    case maxOutstandingR2T, defaultTime2Wait, defaultTime2Retain, headerDigest, dataDigest
    // Timeouts
    case nopInInterval, nopInTimeout, loginTimeout

    public var applyMode: ApplyMode {
        switch self {
        case .portals: return .immediate             // listeners are opened/closed; sessions on a removed portal drop
        case .discoveryAuth: return .newLogins
        case .limits: return .newLogins                      // the next login (and session) uses them
        case .defaults: return .newLogins                    // inheriting targets' next logins; targets added later
        case .portGroup: return .newLogins                   // the portal group tag of the next logins
        case .portGroups: return .immediate                  // the next REPORT TARGET PORT GROUPS lists them
        case .targetAdded, .targetRemoved: return .immediate  // removal drops only that target's sessions
        case .alias, .auth, .allowedClients, .allowedServerAddresses: return .newLogins
        case .lunAdded, .lunRemoved: return .immediate       // REPORTED LUNS DATA HAS CHANGED unit attention
        case .lunMaps: return .immediate                     // the same, to the sessions whose view changed
        case .lunSize: return .immediate                     // online resize: CAPACITY DATA HAS CHANGED
        case .lunReadOnly, .lunWriteCache: return .immediate // MODE PARAMETERS CHANGED unit attention
        case .lunBacking, .lunBlockSize, .lunIdentity: return .targetRestart
        case .maxSessions: return .newLogins                 // existing sessions are never kicked
        case .maxConnections, .initialR2T, .immediateData, .maxRecvDataSegmentLength, .maxXmitDataSegmentLength,
             .maxBurstLength, .firstBurstLength, .maxOutstandingR2T, .defaultTime2Wait, .defaultTime2Retain,
             .headerDigest, .dataDigest:
            return .newLogins                                // negotiated during login
        case .nopInInterval, .nopInTimeout: return .newLogins
        case .loginTimeout: return .newLogins
        }
    }

    /// The JSON field this key refers to (relative to the target, LUN or `defaults`).
    public var field: String {
        switch self {
        case .targetAdded, .targetRemoved: return "targets"
        case .lunAdded, .lunRemoved: return "luns"
        case .lunBacking: return "backstore/path"
        case .lunSize: return "size"
        case .lunBlockSize: return "blockSize"
        case .lunReadOnly: return "readOnly"
        case .lunWriteCache: return "writeCache"
        case .lunIdentity: return "serial/naaId"
        case .maxSessions, .maxConnections, .initialR2T, .immediateData, .maxRecvDataSegmentLength,
             .maxXmitDataSegmentLength, .maxBurstLength, .firstBurstLength, .maxOutstandingR2T,
             .defaultTime2Wait, .defaultTime2Retain, .headerDigest, .dataDigest:
            return "connection.\(rawValue)"
        case .nopInInterval, .nopInTimeout, .loginTimeout: return "timeouts.\(rawValue)"
        case .portGroup, .portGroups: return "gateway.\(rawValue)"
        default: return rawValue
        }
    }
}

/// One changed setting. `target` is nil for global settings; `lun` is set for LUN settings.
public struct SettingEffect: Sendable, Hashable, CustomStringConvertible {
    public var setting: SettingKey
    public var target: String?
    public var lun: Int?
    public var oldValue: String?
    public var newValue: String?
    public var applyMode: ApplyMode { setting.applyMode }

    public var description: String {
        var s = target.map { "target \($0)" } ?? "global"
        if let lun { s += " LUN \(lun)" }
        s += ": \(setting.field)"
        if oldValue != nil || newValue != nil { s += " \(oldValue ?? "-") -> \(newValue ?? "-")" }
        return s + " [\(applyMode.rawValue)]"
    }
}

/// What changed in one target that exists in both configurations (compared after inheritance,
/// so a change to `defaults` shows up in every target that inherits it).
public struct TargetDiff: Sendable, Hashable {
    public var name: String
    public var addedLUNs: [Int] = []
    public var removedLUNs: [Int] = []
    public var changedLUNs: [Int] = []
    public var aliasChanged = false
    public var authChanged = false
    public var allowedClientsChanged = false
    public var allowedServerAddressesChanged = false
    public var connectionChanged = false
    public var timeoutsChanged = false
    public var lunMapsChanged = false

    public var isEmpty: Bool {
        addedLUNs.isEmpty && removedLUNs.isEmpty && changedLUNs.isEmpty && !aliasChanged && !authChanged
            && !allowedClientsChanged && !allowedServerAddressesChanged && !connectionChanged && !timeoutsChanged
            && !lunMapsChanged
    }
}

/// Pure diff of two configurations; the daemon applies it without touching unchanged targets.
public struct ConfigDiff: Sendable, Hashable {
    public var portalsChanged = false
    public var discoveryAuthChanged = false
    public var limitsChanged = false
    /// Names as in the new configuration.
    public var addedTargets: [String] = []
    /// Names as in the old configuration.
    public var removedTargets: [String] = []
    /// Only targets with at least one change.
    public var changedTargets: [TargetDiff] = []
    /// All setting-level changes with their apply modes.
    public var effects: [SettingEffect] = []

    public var isEmpty: Bool { effects.isEmpty }
    /// The strongest apply mode needed, nil when nothing changed.
    public var requiredApplyMode: ApplyMode? { effects.map(\.applyMode).max() }
    /// Targets whose sessions must be restarted.
    public var targetsNeedingRestart: [String] {
        var seen = Set<String>()
        return effects.compactMap { e in
            guard e.applyMode == .targetRestart, let t = e.target, seen.insert(t).inserted else { return nil }
            return t
        }
    }

    public static func between(_ old: Config, _ new: Config) -> ConfigDiff {
        var d = ConfigDiff()
        func add(_ k: SettingKey, _ t: String? = nil, lun: Int? = nil, _ o: String? = nil, _ n: String? = nil) {
            d.effects.append(SettingEffect(setting: k, target: t, lun: lun, oldValue: o, newValue: n))
        }
        if old.portals != new.portals {
            d.portalsChanged = true
            add(.portals, nil, old.portals.map(\.description).joined(separator: ","), new.portals.map(\.description).joined(separator: ","))
        }
        if old.discoveryAuth != new.discoveryAuth {
            d.discoveryAuthChanged = true
            add(.discoveryAuth, nil, old.discoveryAuth.summary, new.discoveryAuth.summary)
        }
        if old.portGroup != new.portGroup { add(.portGroup, nil, "\(old.portGroup)", "\(new.portGroup)") }
        let oldGroups = old.gateway?.allGroups ?? [old.portGroup], newGroups = new.gateway?.allGroups ?? [new.portGroup]
        if oldGroups != newGroups {
            add(.portGroups, nil, oldGroups.map(String.init).joined(separator: ","), newGroups.map(String.init).joined(separator: ","))
        }
        if old.defaults != new.defaults {
            // Which parts changed, never their values (the auth part holds secrets).
            let parts = [("auth", old.defaults.auth != new.defaults.auth),
                         ("allowedClients", old.defaults.allowedClients != new.defaults.allowedClients),
                         ("allowedServerAddresses", old.defaults.allowedServerAddresses != new.defaults.allowedServerAddresses),
                         ("connection", old.defaults.connection != new.defaults.connection),
                         ("timeouts", old.defaults.timeouts != new.defaults.timeouts)]
            add(.defaults, nil, nil, parts.filter(\.1).map(\.0).joined(separator: ",") + " changed")
        }
        if (old.limits ?? LimitSettings()) != (new.limits ?? LimitSettings()) {
            d.limitsChanged = true
            add(.limits, nil, (old.limits ?? LimitSettings()).summary, (new.limits ?? LimitSettings()).summary)
        }
        let oldByName = Dictionary(old.targets.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let newNames = Set(new.targets.map { $0.name.lowercased() })
        for t in old.targets where !newNames.contains(t.name.lowercased()) {
            d.removedTargets.append(t.name)
            add(.targetRemoved, t.name)
        }
        for t in new.targets {
            guard let ot = oldByName[t.name.lowercased()] else {
                d.addedTargets.append(t.name)
                add(.targetAdded, t.name)
                continue
            }
            let a = old.effective(ot), b = new.effective(t)
            var td = TargetDiff(name: t.name)
            if a.alias != b.alias { td.aliasChanged = true; add(.alias, t.name, a.alias, b.alias) }
            if a.auth != b.auth { td.authChanged = true; add(.auth, t.name, a.auth.summary, b.auth.summary) }
            if a.allowedClients != b.allowedClients {
                td.allowedClientsChanged = true
                add(.allowedClients, t.name, "\(a.allowedClients.count) rules", "\(b.allowedClients.count) rules")
            }
            if a.allowedServerAddresses != b.allowedServerAddresses {
                td.allowedServerAddressesChanged = true
                add(.allowedServerAddresses, t.name, a.allowedServerAddresses.map(\.description).joined(separator: ","),
                    b.allowedServerAddresses.map(\.description).joined(separator: ","))
            }
            if a.lunMaps != b.lunMaps {
                td.lunMapsChanged = true
                add(.lunMaps, t.name, "\(a.lunMaps.count) maps", "\(b.lunMaps.count) maps")
            }
            let oldLUNs = Dictionary(a.luns.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
            let newLUNs = Dictionary(b.luns.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
            for l in a.luns where newLUNs[l.id] == nil { td.removedLUNs.append(l.id); add(.lunRemoved, t.name, lun: l.id, l.path, nil) }
            for l in b.luns {
                guard let ol = oldLUNs[l.id] else { td.addedLUNs.append(l.id); add(.lunAdded, t.name, lun: l.id, nil, l.path); continue }
                if ol == l { continue }
                td.changedLUNs.append(l.id)
                if ol.backstore != l.backstore || ol.path != l.path {
                    add(.lunBacking, t.name, lun: l.id, "\(ol.backstore.rawValue):\(ol.path)", "\(l.backstore.rawValue):\(l.path)")
                }
                if ol.size != l.size { add(.lunSize, t.name, lun: l.id, ol.size.map { "\($0)" }, l.size.map { "\($0)" }) }
                if ol.effectiveBlockSize != l.effectiveBlockSize {
                    add(.lunBlockSize, t.name, lun: l.id, "\(ol.effectiveBlockSize)", "\(l.effectiveBlockSize)")
                }
                if ol.readOnly != l.readOnly { add(.lunReadOnly, t.name, lun: l.id, "\(ol.readOnly)", "\(l.readOnly)") }
                if ol.writeCache != l.writeCache {
                    add(.lunWriteCache, t.name, lun: l.id, ol.writeCache.rawValue, l.writeCache.rawValue)
                }
                if ol.serial != l.serial || ol.naaId.lowercased() != l.naaId.lowercased() {
                    add(.lunIdentity, t.name, lun: l.id, "\(ol.serial)/\(ol.naaId)", "\(l.serial)/\(l.naaId)")
                }
            }
            let before = d.effects.count
            diffConnection(a.connection, b.connection) { k, o, n in add(k, t.name, o, n) }
            td.connectionChanged = d.effects.count > before
            let before2 = d.effects.count
            for (k, o, n) in [(SettingKey.nopInInterval, a.timeouts.nopInInterval, b.timeouts.nopInInterval),
                              (.nopInTimeout, a.timeouts.nopInTimeout, b.timeouts.nopInTimeout),
                              (.loginTimeout, a.timeouts.loginTimeout, b.timeouts.loginTimeout)] where o != n {
                add(k, t.name, "\(o)", "\(n)")
            }
            td.timeoutsChanged = d.effects.count > before2
            if !td.isEmpty { d.changedTargets.append(td) }
        }
        return d
    }

    private static func diffConnection(
        _ a: EffectiveConnectionSettings, _ b: EffectiveConnectionSettings, _ add: (SettingKey, String, String) -> Void
    ) {
        func c<T: Equatable>(_ k: SettingKey, _ kp: KeyPath<EffectiveConnectionSettings, T>) {
            if a[keyPath: kp] != b[keyPath: kp] { add(k, "\(a[keyPath: kp])", "\(b[keyPath: kp])") }
        }
        c(.maxSessions, \.maxSessions)
        c(.maxConnections, \.maxConnections)
        c(.initialR2T, \.initialR2T)
        c(.immediateData, \.immediateData)
        c(.maxRecvDataSegmentLength, \.maxRecvDataSegmentLength)
        c(.maxXmitDataSegmentLength, \.maxXmitDataSegmentLength)
        c(.maxBurstLength, \.maxBurstLength)
        c(.firstBurstLength, \.firstBurstLength)
        c(.maxOutstandingR2T, \.maxOutstandingR2T)
        c(.defaultTime2Wait, \.defaultTime2Wait)
        c(.defaultTime2Retain, \.defaultTime2Retain)
        if a.headerDigest != b.headerDigest {
            add(.headerDigest, a.headerDigest.map(\.rawValue).joined(separator: ","), b.headerDigest.map(\.rawValue).joined(separator: ","))
        }
        if a.dataDigest != b.dataDigest {
            add(.dataDigest, a.dataDigest.map(\.rawValue).joined(separator: ","), b.dataDigest.map(\.rawValue).joined(separator: ","))
        }
    }
}

/// Entry point named in the issue: the labelled list of changes between two configurations.
public enum ConfigChange {
    public static func effects(from old: Config, to new: Config) -> [SettingEffect] {
        ConfigDiff.between(old, new).effects
    }
}

extension AuthSettings {
    /// Secret-free description for logs and diffs: `mutual-chap users=a,b out=t`.
    public var summary: String {
        var s = mode.rawValue
        if !incomingUsers.isEmpty { s += " users=" + incomingUsers.map(\.user).joined(separator: ",") }
        if let o = outgoingUser { s += " out=\(o.user)" }
        return s
    }
}

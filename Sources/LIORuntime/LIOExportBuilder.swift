import Backstores
import TCMU
import TargetConfig

/// The LIO objects one configuration asks for, plus what LIO cannot express exactly.
public struct LIOExport: Sendable, Equatable {
    public var spec: LIOExportSpec
    /// Settings LIO applies differently (or not at all); logged at start and returned by the API.
    public var warnings: [String]
}

/// A configuration LIO cannot serve as written. Worded for the admin; the daemon refuses
/// to start (or the change is refused) rather than export something more open than asked.
public struct LIOExportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Turns the daemon's configuration into an `LIOExportSpec`: one TCMU backstore
/// `core/user_<hba>/<name>` per LUN (served by our handler through `dev_config=swifttarget/…`)
/// and per target an iSCSI TPG with LUNs, portals, node ACLs, CHAP, login keys and timeouts.
/// Pure: sizes come from the caller, so it is tested without a kernel.
public enum LIOExportBuilder {
    /// The `user_<hba>` index that holds every backstore this daemon creates.
    public static let hba = 7
    /// `hw_max_sectors` (blocks per command): 1 MiB at 512-byte blocks instead of the
    /// kernel's 64 KiB, so large I/O is one ring command, not sixteen.
    public static let maxSectors = 2048

    // LIO's accepted ranges (drivers/target/iscsi/iscsi_target_core.h: TA_LOGIN_TIMEOUT_*,
    // NA_NOPIN_TIMEOUT_*, NA_NOPIN_RESPONSE_TIMEOUT_*).
    static let loginTimeoutRange = 5...30
    static let nopInTimeoutRange = 3...60
    static let nopInResponseTimeoutRange = 3...60

    /// The backstore name for a LUN: stable across restarts (the handler derives the LU's
    /// NAA id from it) and unique per target (64-bit FNV-1a of the lower-cased IQN;
    /// `build` refuses the unlikely collision).
    public static func backstoreName(target: String, lun: Int) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in target.lowercased().utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        return "st-" + String(repeating: "0", count: 16 - hex.count) + hex + "-lun\(lun)"
    }

    /// - Parameter deviceSize: the capacity of a LUN in bytes (the configured size, or the
    ///   size of the existing image or device); throws the admin-facing reason otherwise.
    public static func build(_ config: Config, deviceSize: (EffectiveTarget, LUN) throws -> UInt64) throws -> LIOExport {
        var backstores: [LIOExportSpec.Backstore] = []
        var targets: [LIOExportSpec.ISCSITarget] = []
        var warnings: [String] = []
        if config.discoveryAuth.mode != .none {
            warnings.append("discoveryAuth is not applied in LIO mode (LIO's discovery_auth is shared with other software; set it with targetcli)")
        }
        for target in config.targets {
            let t = config.effective(target)
            let name = t.name
            var luns: [LIOExportSpec.LUN] = []
            for lun in t.luns.sorted(by: { $0.id < $1.id }) {
                // LIO's control file takes comma-separated pairs, and dev_config's options are `;`-separated.
                func carry(_ what: String, _ value: String) throws {
                    if value.contains(where: { ",;\n".contains($0) }) {
                        throw LIOExportError("target \(name) LUN \(lun.id): the \(what) \(value) contains ',' ';' or a newline, which LIO's control file cannot carry")
                    }
                }
                try carry("path", lun.path)
                if lun.backstore == .rbd, case .success(let location) = RBDLocation.parse(lun.path, options: lun.options),
                   location.shared {
                    // LIO keeps reservations and ALUA state in each host's kernel: gateways
                    // would not share them.
                    throw LIOExportError("target \(name) LUN \(lun.id): shared=yes (several gateways on one image) needs the embedded target; run with --fabric embedded")
                }
                var cfg = "\(lun.backstore.rawValue):\(lun.path)"
                if lun.readOnly { cfg += ";ro" }
                // Kind settings (rbd's conf, id, keyring) travel to the handler in dev_config.
                for (key, value) in lun.options.sorted(by: { $0.key < $1.key }) {
                    try carry("\(key) setting", value)
                    cfg += ";\(key)=\(value)"
                }
                cfg += TCMUConfigString.identityOptions(serial: lun.serial, uniqueID: lun.engineUniqueID)
                // dev_config holds at most TCMU_CONFIG_LEN (256) bytes with its NUL.
                if TCMUConfigString.subtype.utf8.count + 1 + cfg.utf8.count > 255 {
                    throw LIOExportError("target \(name) LUN \(lun.id): the path \(lun.path) is too long for LIO's dev_config (255 bytes with the options)")
                }
                let b = LIOExportSpec.Backstore(
                    hba: hba, name: backstoreName(target: name, lun: lun.id), cfgstring: cfg,
                    size: try deviceSize(t, lun), blockSize: lun.effectiveBlockSize, maxSectors: maxSectors,
                    writeCache: lun.writeCache == .writeBack, commandTimeout: lun.backstore.kernelCommandTimeout)
                backstores.append(b)
                luns.append(.init(number: lun.id, backstore: b.name))
            }

            let (acls, demo) = try initiators(t)
            let chap = try credentials(t)
            let attributes = ["login_timeout": "\(clamp(t.timeouts.loginTimeout, loginTimeoutRange, "timeouts.loginTimeout", name, &warnings))"]
            var aclAttributes: [String: String] = [:]
            if t.timeouts.nopInInterval == 0 {
                aclAttributes["nopin_timeout"] = "0"  // LIO: 0 = no NOP-In pings
            } else {
                aclAttributes["nopin_timeout"] = "\(clamp(t.timeouts.nopInInterval, nopInTimeoutRange, "timeouts.nopInInterval", name, &warnings))"
                aclAttributes["nopin_response_timeout"] = "\(clamp(t.timeouts.nopInTimeout, nopInResponseTimeoutRange, "timeouts.nopInTimeout", name, &warnings))"
            }
            if demo && (t.timeouts.nopInInterval != 15 || t.timeouts.nopInTimeout != 30) {
                warnings.append("target \(name): NOP-In timeouts apply to named initiators only in LIO mode; with allowedClients empty LIO uses 15 s / 30 s")
            }
            if t.connection.maxSessions != 0 {
                warnings.append("target \(name): connection.maxSessions is not enforced by LIO")
            }

            if demo && !t.lunMaps.isEmpty {
                throw LIOExportError("target \(name): lunMaps need allowedClients naming the initiators in LIO mode (LIO maps LUNs per node ACL); list them, or run with --fabric embedded")
            }
            targets.append(LIOExportSpec.ISCSITarget(
                iqn: name, luns: luns, portals: try portals(config.portals, t),
                acls: acls.map { aclFor($0, chap: chap, maps: t.lunMaps) },
                demoModeCHAP: demo ? chap : nil,
                parameters: parameters(t.connection), attributes: attributes,
                aclAttributes: demo ? [:] : aclAttributes))
        }
        if Set(backstores.map(\.name)).count != backstores.count {
            throw LIOExportError("two targets' names hash to the same LIO backstore names; rename one of them")
        }
        return LIOExport(spec: LIOExportSpec(backstores: backstores, targets: targets), warnings: warnings)
    }

    /// A node ACL with the LUNs its initiator's map gives it (the first map whose patterns
    /// match the name; LIO's ACL names are exact, so the patterns are resolved here).
    static func aclFor(_ initiator: String, chap: LIOExportSpec.CHAP?, maps: [LUNMapping]) -> LIOExportSpec.ACL {
        guard let map = maps.first(where: { m in m.initiators.contains { Glob.matches(pattern: $0, name: initiator) } }) else {
            return LIOExportSpec.ACL(initiator: initiator, chap: chap)
        }
        return LIOExportSpec.ACL(initiator: initiator, chap: chap,
                                 mappedLUNs: map.luns.map { .init(mapped: $0.mappedLun, tpgLUN: $0.lun, readOnly: $0.readOnly) },
                                 explicitLUNs: true)
    }

    /// allowedClients → node ACLs. LIO admits initiators by exact name only, so the rules
    /// must be "allow these names (then deny the rest)"; an empty list or a leading bare
    /// allow is LIO's demo mode (every initiator).
    static func initiators(_ t: EffectiveTarget) throws -> (names: [String], demoMode: Bool) {
        let rules = t.allowedClients
        if rules.isEmpty { return ([], true) }
        var names: [String] = []
        for (i, r) in rules.enumerated() {
            let bare = r.initiator == nil && r.initiatorRegex == nil && r.address == nil
            if bare {
                if r.action == .allow && names.isEmpty { return ([], true) }
                if r.action == .deny { break }  // everything after a bare deny is unreachable
            }
            let exact = r.initiator.map { !$0.contains(where: { "*?[".contains($0) }) } ?? false
            guard r.action == .allow, exact, r.initiatorRegex == nil, r.address == nil, let name = r.initiator else {
                throw LIOExportError("target \(t.name): allowedClients[\(i)] cannot be enforced by LIO, which admits initiators by exact name only (no address, pattern or deny-by-name rules); run with --fabric embedded, or list the allowed initiator names")
            }
            names.append(name)
        }
        if names.isEmpty {
            throw LIOExportError("target \(t.name): allowedClients admits no initiator by name; LIO needs the names (or remove the rules to allow every initiator)")
        }
        return (names, false)
    }

    /// AuthSettings → CHAP. LIO keeps one user per ACL (or per TPG in demo mode).
    static func credentials(_ t: EffectiveTarget) throws -> LIOExportSpec.CHAP? {
        switch t.auth.mode {
        case .none:
            return nil
        case .chap, .mutualCHAP:
            guard let user = t.auth.incomingUsers.first else {
                throw LIOExportError("target \(t.name): CHAP is on but no incoming user is configured")
            }
            if t.auth.incomingUsers.count > 1 {
                throw LIOExportError("target \(t.name): LIO takes one CHAP user per initiator; \(t.auth.incomingUsers.count) are configured")
            }
            var chap = LIOExportSpec.CHAP(userid: user.user, password: user.secret)
            if t.auth.mode == .mutualCHAP {
                guard let out = t.auth.outgoingUser else {
                    throw LIOExportError("target \(t.name): mutual CHAP needs an outgoing user")
                }
                chap.mutualUserid = out.user
                chap.mutualPassword = out.secret
            }
            return chap
        }
    }

    /// Portals → `np/` entries. LIO binds where it is told, so allowed server addresses
    /// turn a wildcard portal into one portal per allowed address.
    static func portals(_ all: [Portal], _ t: EffectiveTarget) throws -> [String] {
        var out: [String] = []
        func add(_ address: String, _ port: Int) {
            let p = address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
            if !out.contains(p) { out.append(p) }
        }
        // LIO's [::] portal takes IPv4 too, and a 0.0.0.0 portal on the same port would then
        // fail with EADDRINUSE: keep only the IPv6 wildcard.
        let v6Wildcards = Set(all.filter { $0.isWildcard && $0.address.contains(":") }.map(\.port))
        for portal in all where !(portal.isWildcard && !portal.address.contains(":") && v6Wildcards.contains(portal.port)) {
            if t.allowedServerAddresses.isEmpty {
                add(portal.address, portal.port)
            } else if portal.isWildcard {
                for net in t.allowedServerAddresses {
                    guard net.prefixLength == (net.address.isIPv4 ? 32 : 128) else {
                        throw LIOExportError("target \(t.name): allowedServerAddresses \(net) is a network; LIO listens on single addresses, so list them one by one")
                    }
                    add(net.address.description, portal.port)
                }
            } else if let a = portal.ipAddress, t.allowedServerAddresses.contains(where: { $0.contains(a) }) {
                add(portal.address, portal.port)
            }
        }
        if out.isEmpty { throw LIOExportError("target \(t.name): no portal is left after allowedServerAddresses") }
        return out
    }

    /// Connection settings → TPG `param/` (RFC 7143 §13 key names, as LIO spells them).
    static func parameters(_ c: EffectiveConnectionSettings) -> [String: String] {
        func yesNo(_ b: Bool) -> String { b ? "Yes" : "No" }
        return [
            "MaxConnections": "\(c.maxConnections)",
            "InitialR2T": yesNo(c.initialR2T),
            "ImmediateData": yesNo(c.immediateData),
            "MaxRecvDataSegmentLength": "\(c.maxRecvDataSegmentLength)",
            "MaxXmitDataSegmentLength": "\(c.maxXmitDataSegmentLength)",
            "MaxBurstLength": "\(c.maxBurstLength)",
            "FirstBurstLength": "\(c.firstBurstLength)",
            "MaxOutstandingR2T": "\(c.maxOutstandingR2T)",
            "DefaultTime2Wait": "\(c.defaultTime2Wait)",
            "DefaultTime2Retain": "\(c.defaultTime2Retain)",
            "HeaderDigest": c.headerDigest.map(\.rawValue).joined(separator: ","),
            "DataDigest": c.dataDigest.map(\.rawValue).joined(separator: ","),
        ]
    }

    private static func clamp(_ v: Int, _ range: ClosedRange<Int>, _ field: String, _ target: String, _ warnings: inout [String]) -> Int {
        let c = min(max(v, range.lowerBound), range.upperBound)
        if c != v { warnings.append("target \(target): \(field) \(v) is outside LIO's \(range.lowerBound)…\(range.upperBound); using \(c)") }
        return c
    }
}

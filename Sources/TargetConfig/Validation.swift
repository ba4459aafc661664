import Foundation

/// iSCSI name checks (RFC 7143 §4.2.7.1, RFC 3722).
public enum ISCSIName {
    /// Nil when `name` is a valid target or initiator name, else the reason.
    /// Accepted: `iqn.YYYY-MM.reversed.domain[:anything]` in lower case (letters, digits, `.`, `-`, `:`),
    /// `eui.` + 16 hex digits, `naa.` + 16 or 32 hex digits; at most 223 bytes.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 223 { return "is longer than 223 bytes" }
        let lower = name.lowercased()
        if lower.hasPrefix("eui.") {
            let hex = name.dropFirst(4)
            return hex.count == 16 && hex.allSatisfy(\.isHexDigit) ? nil : "eui. names need exactly 16 hex digits"
        }
        if lower.hasPrefix("naa.") {
            let hex = name.dropFirst(4)
            return (hex.count == 16 || hex.count == 32) && hex.allSatisfy(\.isHexDigit)
                ? nil : "naa. names need 16 or 32 hex digits"
        }
        guard name.hasPrefix("iqn.") else {
            return "must start with iqn., eui. or naa. (e.g. iqn.2026-01.com.example:storage)"
        }
        if let bad = name.first(where: { !($0.isASCII && ($0.isLowercase || $0.isNumber || ".-:".contains($0))) }) {
            return "invalid character '\(bad)' (iqn names use lower-case letters, digits, '.', '-' and ':')"
        }
        let body = name.dropFirst(4)
        let naming = body.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let parts = naming.split(separator: ".", omittingEmptySubsequences: false)
        let date = parts[0]
        let dp = date.split(separator: "-")
        guard date.count == 7, dp.count == 2, dp[0].count == 4, let y = Int(dp[0]), let m = Int(dp[1]),
              dp[1].count == 2, y >= 1900, (1...12).contains(m)
        else { return "needs a date yyyy-mm after iqn. (e.g. iqn.2026-01.com.example)" }
        let domain = parts.dropFirst()
        if domain.isEmpty || domain.contains(where: \.isEmpty) {
            return "needs a reversed domain name after the date (e.g. iqn.2026-01.com.example)"
        }
        if domain.contains(where: { $0.hasPrefix("-") || $0.hasSuffix("-") }) {
            return "domain labels must not start or end with '-'"
        }
        return nil
    }
}

/// Checks a `Config` and returns errors and warnings with field paths.
public enum ConfigValidator {
    public static let minSecretLength = 1
    public static let maxSecretLength = 255
    /// Microsoft's initiator requires 12...16 bytes.
    public static let recommendedSecretLengths = 12...16

    public static func validate(_ config: Config) -> [ConfigDiagnostic] {
        var v = Run()
        v.check(config)
        return v.out
    }

    struct Run {
        var out: [ConfigDiagnostic] = []
        mutating func error(_ p: ConfigPath, _ m: String) { out.append(.init(.error, p, m)) }
        mutating func warn(_ p: ConfigPath, _ m: String) { out.append(.init(.warning, p, m)) }

        mutating func check(_ c: Config) {
            let root = ConfigPath()
            if c.version != Config.currentVersion {
                error(root / "version", "unsupported version \(c.version) (this program reads version \(Config.currentVersion))")
            }
            if c.portals.isEmpty { error(root / "portals", "at least one portal is required") }
            var seenPortals = Set<String>()
            for (i, p) in c.portals.enumerated() {
                let key = "\(IPAddress(p.address)?.description ?? p.address):\(p.port)"
                if !seenPortals.insert(key).inserted { error(root.at("portals", i), "duplicate portal \(p)") }
                if !(1...65535).contains(p.port) { error(root.at("portals", i), "port \(p.port) is out of range 1...65535") }
                if IPAddress(p.address) == nil { error(root.at("portals", i), "\"\(p.address)\" is not an IP address") }
            }
            checkAuth(c.discoveryAuth, root / "discoveryAuth")
            for problem in c.gateway?.problems() ?? [] { error(root / "gateway" / problem.field, problem.message) }
            for problem in c.limits?.problems() ?? [] { error(root / "limits" / problem.field, problem.message) }
            let d = root / "defaults"
            if let a = c.defaults.auth { checkAuth(a, d / "auth") }
            if let r = c.defaults.allowedClients { checkRules(r, d / "allowedClients") }
            if let s = c.defaults.allowedServerAddresses { checkServerAddresses(s, d / "allowedServerAddresses", c.portals) }
            if let cs = c.defaults.connection { checkConnection(cs, d / "connection") }
            if let t = c.defaults.timeouts { checkTimeouts(t, d / "timeouts") }
            // Cross-field rules on the defaults as they resolve.
            checkEffective(c.defaultConnection, c.defaultTimeouts, at: d, connection: c.defaults.connection, timeouts: c.defaults.timeouts)

            var names = [String: Int]()
            var paths = [String: ConfigPath]()
            var serials = [String: ConfigPath]()
            var naas = [String: ConfigPath]()
            for (ti, t) in c.targets.enumerated() {
                let tp = root.at("targets", ti)
                if let problem = ISCSIName.problem(t.name) {
                    error(tp / "name", "\"\(t.name)\" is not a valid iSCSI name: \(problem)")
                }
                if let first = names[t.name.lowercased()] {
                    error(tp / "name", "duplicate target name \(t.name) (also targets[\(first)])")
                } else {
                    names[t.name.lowercased()] = ti
                }
                if let a = t.alias {
                    if a.isEmpty || a.utf8.count > 255 || a.contains(where: { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false) }) {
                        error(tp / "alias", "must be 1...255 bytes without control characters")
                    }
                }
                if t.luns.isEmpty {
                    warn(tp / "luns", "target has no LUNs")
                } else if !t.luns.contains(where: { $0.id == 0 }) {
                    warn(tp / "luns", "no LUN 0; many initiators only scan a target that has LUN 0")
                }
                var ids = Set<Int>()
                for (li, l) in t.luns.enumerated() {
                    let lp = tp.at("luns", li)
                    if !(0...16383).contains(l.id) { error(lp / "id", "LUN \(l.id) is out of range 0...16383") }
                    if !ids.insert(l.id).inserted { error(lp / "id", "duplicate LUN \(l.id) in this target") }
                    checkLUN(l, lp)
                    if !l.path.isEmpty {
                        if let other = paths[l.path] { error(lp / "path", "\(l.path) is already used by \(other)") }
                        else { paths[l.path] = lp }
                    }
                    if let other = serials[l.serial] { error(lp / "serial", "serial \(l.serial) is already used by \(other)") }
                    else { serials[l.serial] = lp }
                    let naa = l.naaId.lowercased()
                    if let other = naas[naa] { error(lp / "naaId", "NAA id \(l.naaId) is already used by \(other)") }
                    else { naas[naa] = lp }
                }
                if let a = t.auth { checkAuth(a, tp / "auth") }
                if let r = t.allowedClients { checkRules(r, tp / "allowedClients") }
                if let m = t.lunMaps { checkLUNMaps(m, tp / "lunMaps", lunIDs: ids) }
                if let s = t.allowedServerAddresses { checkServerAddresses(s, tp / "allowedServerAddresses", c.portals) }
                if let cs = t.connection { checkConnection(cs, tp / "connection") }
                if let to = t.timeouts { checkTimeouts(to, tp / "timeouts") }
                if t.connection != nil || t.timeouts != nil {
                    let e = c.effective(t)
                    checkEffective(e.connection, e.timeouts, at: tp, connection: t.connection, timeouts: t.timeouts)
                }
            }
        }

        mutating func checkLUN(_ l: LUN, _ lp: ConfigPath) {
            if let problem = l.backstore.locatorProblem(l.path) { error(lp / "path", problem) }
            for key in l.options.keys.sorted() where !l.backstore.settings.contains(key) {
                let known = l.backstore.settings.isEmpty ? "none" : l.backstore.settings.joined(separator: ", ")
                error(lp / "options" / key, "not a setting of \(l.backstore.rawValue) LUNs (settings: \(known))")
            }
            if l.backstore.isSizedByDevice, l.size != nil {
                error(lp / "size", "not allowed for raw devices (the device's own size is used)")
            }
            if let bs = l.blockSize, ![512, 1024, 2048, 4096].contains(bs) {
                error(lp / "blockSize", "\(bs) is not one of 512, 1024, 2048, 4096")
            }
            if let s = l.size {
                if s == 0 { error(lp / "size", "must be greater than 0") }
                else if s % UInt64(l.effectiveBlockSize) != 0 {
                    error(lp / "size", "\(s) is not a multiple of the block size \(l.effectiveBlockSize)")
                }
            }
            if l.serial.isEmpty || l.serial.utf8.count > 32 || !l.serial.allSatisfy({ $0.isASCII && $0.asciiValue! > 0x20 && $0.asciiValue! < 0x7F }) {
                error(lp / "serial", "must be 1...32 printable ASCII characters without spaces")
            }
            if let p = naaProblem(l.naaId) { error(lp / "naaId", p) }
            if l.writeCache == .writeBack && !l.readOnly {
                warn(lp / "writeCache", "write-back caching can lose acknowledged writes on a power failure unless initiators flush")
            }
        }

        func naaProblem(_ s: String) -> String? {
            guard s.allSatisfy(\.isHexDigit), let first = s.first else { return "must be 16 or 32 hex digits" }
            switch (first, s.count) {
            case ("2", 16), ("3", 16), ("5", 16), ("6", 32): return nil
            case (_, 16), (_, 32):
                return "NAA type \(first) does not fit \(s.count) hex digits (use 2, 3 or 5 with 16 digits, 6 with 32)"
            default: return "must be 16 or 32 hex digits"
            }
        }

        mutating func checkAuth(_ a: AuthSettings, _ p: ConfigPath) {
            switch a.mode {
            case .none:
                if !a.incomingUsers.isEmpty { error(p / "incomingUsers", "not allowed when mode is \"none\"") }
                if a.outgoingUser != nil { error(p / "outgoingUser", "not allowed when mode is \"none\"") }
            case .chap:
                if a.incomingUsers.isEmpty { error(p / "incomingUsers", "at least one user is required when mode is \"chap\"") }
                if a.outgoingUser != nil { error(p / "outgoingUser", "only allowed when mode is \"mutual-chap\"") }
            case .mutualCHAP:
                if a.incomingUsers.isEmpty { error(p / "incomingUsers", "at least one user is required when mode is \"mutual-chap\"") }
                if a.outgoingUser == nil { error(p / "outgoingUser", "required when mode is \"mutual-chap\"") }
            }
            var users = Set<String>()
            for (i, u) in a.incomingUsers.enumerated() {
                checkCredential(u, p.at("incomingUsers", i))
                if !users.insert(u.user).inserted { error(p.at("incomingUsers", i) / "user", "duplicate user \(u.user)") }
            }
            if let o = a.outgoingUser {
                checkCredential(o, p / "outgoingUser")
                if a.incomingUsers.contains(where: { $0.secret == o.secret }) {
                    error(p / "outgoingUser" / "secret", "must differ from every incoming secret (mutual CHAP)")
                }
            }
        }

        mutating func checkCredential(_ c: CHAPCredential, _ p: ConfigPath) {
            if c.user.isEmpty || c.user.utf8.count > 255 {
                error(p / "user", "must be 1...255 bytes")
            } else if c.user.contains(where: { $0.isWhitespace || $0.isNewline }) {
                error(p / "user", "must not contain whitespace")
            }
            let n = c.secret.utf8.count
            if n < minSecretLength || n > maxSecretLength {
                error(p / "secret", "must be 1...255 bytes (is \(n))")
            } else if n < recommendedSecretLengths.lowerBound {
                warn(p / "secret", "is \(n) bytes; Microsoft's initiator requires 12...16 bytes and short secrets are weak")
            } else if n > recommendedSecretLengths.upperBound {
                warn(p / "secret", "is \(n) bytes; Microsoft's initiator accepts only 12...16 bytes")
            }
        }

        mutating func checkRules(_ rules: [AccessRule], _ p: ConfigPath) {
            for (i, r) in rules.enumerated() {
                let rp = p[i]
                if r.initiator != nil && r.initiatorRegex != nil {
                    error(rp, "use either initiator (glob) or initiatorRegex, not both")
                }
                if let g = r.initiator, g.isEmpty { error(rp / "initiator", "must not be empty") }
                if let re = r.initiatorRegex {
                    if re.isEmpty { error(rp / "initiatorRegex", "must not be empty") }
                    else if let prob = AccessRule.regexError(re) { error(rp / "initiatorRegex", prob) }
                }
                if let a = r.address, a.hasHostBits {
                    warn(rp / "address", "\(a) has host bits set beyond /\(a.prefixLength); did you mean the network address?")
                }
                if r.initiator == nil && r.initiatorRegex == nil && r.address == nil && i < rules.count - 1 {
                    warn(rp, "matches every client, so the rules after it are never used")
                }
            }
        }

        mutating func checkLUNMaps(_ maps: [LUNMapping], _ p: ConfigPath, lunIDs: Set<Int>) {
            for (i, m) in maps.enumerated() {
                let mp = p[i]
                if m.initiators.isEmpty { error(mp / "initiators", "name at least one initiator (a glob; * for everyone)") }
                for (j, g) in m.initiators.enumerated()
                where g.isEmpty || g.utf8.count > 223 || g.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" }) {
                    error((mp / "initiators")[j], "must be 1...223 characters without spaces or brackets (wildcards: * and ?)")
                }
                var numbers = Set<Int>()
                for (j, l) in m.luns.enumerated() {
                    let lp = mp.at("luns", j)
                    if !(0...16383).contains(l.mappedLun) { error(lp / "mappedLun", "LUN \(l.mappedLun) is out of range 0...16383") }
                    if !numbers.insert(l.mappedLun).inserted { error(lp / "mappedLun", "mapped LUN \(l.mappedLun) appears twice in this map") }
                    if !lunIDs.contains(l.lun) { error(lp / "lun", "the target has no LUN \(l.lun)") }
                }
                if !m.luns.isEmpty && !numbers.contains(0) {
                    warn(mp / "luns", "no mapped LUN 0; many initiators only scan a target that has LUN 0")
                }
                if m.initiators.contains("*") && i < maps.count - 1 {
                    warn(mp, "names every initiator, so the maps after it are never used")
                }
            }
        }

        mutating func checkServerAddresses(_ nets: [IPNetwork], _ p: ConfigPath, _ portals: [Portal]) {
            if nets.isEmpty { return }
            let reachable = portals.contains { portal in
                portal.isWildcard || portal.ipAddress.map { a in nets.contains { $0.contains(a) } } ?? false
            }
            if !reachable { warn(p, "no portal address is inside these networks, so the target is unreachable") }
        }

        mutating func range(_ v: Int?, _ r: ClosedRange<Int>, _ p: ConfigPath) {
            if let v, !r.contains(v) { error(p, "\(v) is out of range \(r.lowerBound)...\(r.upperBound)") }
        }

        mutating func checkConnection(_ c: ConnectionSettings, _ p: ConfigPath) {
            range(c.maxSessions, 0...65535, p / "maxSessions")
            range(c.maxConnections, 1...65535, p / "maxConnections")
            range(c.maxRecvDataSegmentLength, 512...16_777_215, p / "maxRecvDataSegmentLength")
            range(c.maxXmitDataSegmentLength, 512...16_777_215, p / "maxXmitDataSegmentLength")
            range(c.maxBurstLength, 512...16_777_215, p / "maxBurstLength")
            range(c.firstBurstLength, 512...16_777_215, p / "firstBurstLength")
            range(c.maxOutstandingR2T, 1...65535, p / "maxOutstandingR2T")
            range(c.defaultTime2Wait, 0...3600, p / "defaultTime2Wait")
            range(c.defaultTime2Retain, 0...3600, p / "defaultTime2Retain")
            for (key, list) in [("headerDigest", c.headerDigest), ("dataDigest", c.dataDigest)] {
                guard let list else { continue }
                if list.isEmpty { error(p / key, "must list at least one of \"CRC32C\", \"None\"") }
                if Set(list).count != list.count { error(p / key, "lists a digest twice") }
            }
        }

        mutating func checkTimeouts(_ t: TimeoutSettings, _ p: ConfigPath) {
            range(t.nopInInterval, 0...3600, p / "nopInInterval")
            range(t.nopInTimeout, 1...3600, p / "nopInTimeout")
            range(t.loginTimeout, 1...3600, p / "loginTimeout")
        }

        /// Cross-field checks on resolved values; reported on the object that sets one of the fields.
        mutating func checkEffective(
            _ e: EffectiveConnectionSettings, _ t: EffectiveTimeoutSettings, at p: ConfigPath,
            connection: ConnectionSettings?, timeouts: TimeoutSettings?
        ) {
            if e.firstBurstLength > e.maxBurstLength,
               connection?.firstBurstLength != nil || connection?.maxBurstLength != nil {
                let field = connection?.firstBurstLength != nil ? "firstBurstLength" : "maxBurstLength"
                error(p / "connection" / field,
                      "firstBurstLength \(e.firstBurstLength) must not exceed maxBurstLength \(e.maxBurstLength)")
            }
            if e.maxConnections > 1 {
                if connection?.maxConnections != nil {
                    warn(p / "connection" / "maxConnections", "more than one connection per session (MC/S) is rarely supported by initiators; multipath is preferred")
                }
            }
            if t.nopInInterval > 0, t.nopInTimeout < 1, timeouts?.nopInTimeout != nil {
                error(p / "timeouts" / "nopInTimeout", "must be at least 1 when pings are enabled")
            }
        }
    }
}

extension Config {
    /// All errors and warnings; the configuration is usable when there is no `.error`.
    public func validate() -> [ConfigDiagnostic] { ConfigValidator.validate(self) }
}

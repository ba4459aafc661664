import Foundation

/// Something the importer could not map one to one, or wants the admin to know.
public struct ImportMessage: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Dropped: the setting or object has no equivalent (e.g. nullio LUNs, unknown keys).
        case unmapped
        /// Mapped, but the meaning differs slightly from IET; read before switching over.
        case note
    }
    public var kind: Kind
    public var file: String
    /// 1-based line, nil for whole-file remarks.
    public var line: Int?
    public var message: String

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(kind.rawValue): \(message)" }
}

public struct IETImportResult: Sendable {
    public var config: Config
    public var messages: [ImportMessage]
    /// Validation of the imported configuration (errors must be fixed before `ConfigStore.save`).
    public var diagnostics: [ConfigDiagnostic]
    public var unmapped: [ImportMessage] { messages.filter { $0.kind == .unmapped } }
}

/// Migration from IET: `ietd.conf` plus optional `initiators.allow` and `targets.allow`.
///
/// Semantics kept from IET (ietd.conf(5), usr/plain.c):
/// - Global `IncomingUser`/`OutgoingUser` authenticate **discovery** sessions → `discoveryAuth`.
///   Targets without their own users get `auth: none`, as in IET.
/// - Global session keys (written by the Webmin module) become `defaults.connection`/`timeouts`.
/// - Allow files: the first line naming the target or `ALL` decides; a missing file allows
///   everything; an existing file without a matching line denies. Name entries are regexes
///   matched against the whole initiator name → `initiatorRegex`.
/// - `Type=fileio` → `file` (or `raw` when the path is under /dev/), `blockio` → `raw`;
///   `IOMode=wb` → write-back, `ro` → read-only, `wt`/absent → write-through; `ScsiSN` → serial.
public enum IETImporter {
    public static func importConfig(
        ietdConf: String, initiatorsAllow: String? = nil, targetsAllow: String? = nil,
        portals: [Portal] = [Portal(address: "0.0.0.0", port: 3260)],
        fileNames: (ietd: String, initiators: String, targets: String) = ("ietd.conf", "initiators.allow", "targets.allow")
    ) -> IETImportResult {
        var run = Run(fileNames: fileNames)
        var config = Config(portals: portals)
        run.parseIetd(ietdConf, into: &config)
        if let text = initiatorsAllow { run.applyInitiatorsAllow(text, to: &config) }
        if let text = targetsAllow { run.applyTargetsAllow(text, to: &config) }
        return IETImportResult(config: config, messages: run.messages, diagnostics: config.validate())
    }

    /// Reads the files; a missing allow file (or nil path) means "allow all", as in IET.
    public static func importFiles(
        ietdConf: String, initiatorsAllow: String? = nil, targetsAllow: String? = nil,
        portals: [Portal] = [Portal(address: "0.0.0.0", port: 3260)]
    ) throws -> IETImportResult {
        func read(_ p: String?) throws -> String? {
            guard let p, FileManager.default.fileExists(atPath: p) else { return nil }
            return try String(contentsOfFile: p, encoding: .utf8)
        }
        guard let ietd = try read(ietdConf) else { throw ConfigIOError(operation: "read", path: ietdConf, errno: ENOENT) }
        return importConfig(
            ietdConf: ietd, initiatorsAllow: try read(initiatorsAllow), targetsAllow: try read(targetsAllow),
            portals: portals, fileNames: (ietdConf, initiatorsAllow ?? "initiators.allow", targetsAllow ?? "targets.allow"))
    }

    /// Portals from the `OPTIONS=` line of /etc/default/iscsitarget (`-a addr`, `-p port`,
    /// `--address=`, `--port=`). Nil when no address/port option is present.
    public static func portals(fromOptions line: String) -> [Portal]? {
        var text = line.trimmingCharacters(in: .whitespaces)
        if let eq = text.range(of: "OPTIONS=") { text = String(text[eq.upperBound...]) }
        text = text.trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var addr: String?, port: Int?
        var i = 0
        while i < tokens.count {
            let t = tokens[i]
            let next = i + 1 < tokens.count ? tokens[i + 1] : nil
            if t == "-a" || t == "--address" { addr = next; i += 2; continue }
            if t == "-p" || t == "--port" { port = next.flatMap { Int($0) }; i += 2; continue }
            if t.hasPrefix("--address=") { addr = String(t.dropFirst(10)) }
            if t.hasPrefix("--port=") { port = Int(t.dropFirst(7)) }
            i += 1
        }
        if addr == nil && port == nil { return nil }
        return [Portal(address: addr ?? "0.0.0.0", port: port ?? 3260)]
    }

    // MARK: -

    struct Line { var number: Int; var text: String }

    /// Joins backslash continuations, drops blank lines and lines starting with '#'.
    static func logicalLines(_ text: String) -> [Line] {
        var out = [Line]()
        var pending: Line?
        // A continuation can join to nothing ("\\" alone, then a blank line or the end).
        func append(_ p: Line) {
            let text = p.text.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty { out.append(Line(number: p.number, text: text)) }
        }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var s = String(raw)
            if s.hasSuffix("\r") { s.removeLast() }
            if pending == nil {
                let trimmed = s.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            }
            let continued = s.hasSuffix("\\")
            if continued { s.removeLast() }
            if var p = pending { p.text += s; pending = p } else { pending = Line(number: i + 1, text: s) }
            if !continued, let p = pending {
                append(p)
                pending = nil
            }
        }
        if let p = pending { append(p) }
        return out
    }

    struct Run {
        let fileNames: (ietd: String, initiators: String, targets: String)
        var messages: [ImportMessage] = []

        mutating func unmapped(_ file: String, _ line: Int?, _ m: String) { messages.append(.init(kind: .unmapped, file: file, line: line, message: m)) }
        mutating func note(_ file: String, _ line: Int?, _ m: String) { messages.append(.init(kind: .note, file: file, line: line, message: m)) }

        // MARK: ietd.conf

        mutating func parseIetd(_ text: String, into config: inout Config) {
            let f = fileNames.ietd
            var globalIncoming = [CHAPCredential]()
            var globalOutgoing: CHAPCredential?
            var current: Int?          // index into config.targets
            var skipping = false       // inside a Target stanza we could not import
            var incoming = [CHAPCredential]()
            var outgoing: CHAPCredential?
            var connection = ConnectionSettings()
            var timeouts = TimeoutSettings()
            var globalConnection = ConnectionSettings()
            var globalTimeouts = TimeoutSettings()

            func finishTarget(_ run: inout Run, _ config: inout Config) {
                guard let t = current else { return }
                if incoming.isEmpty {
                    config.targets[t].auth = .noAuth
                    if outgoing != nil {
                        run.unmapped(f, nil, "target \(config.targets[t].name): OutgoingUser without IncomingUser has no effect (ignored)")
                    }
                } else {
                    config.targets[t].auth = AuthSettings(mode: outgoing == nil ? .chap : .mutualCHAP,
                                                          incomingUsers: incoming, outgoingUser: outgoing)
                }
                config.targets[t].connection = connection.isEmpty ? nil : connection
                config.targets[t].timeouts = timeouts.isEmpty ? nil : timeouts
                current = nil
            }

            for line in IETImporter.logicalLines(text) {
                let parts = line.text.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                let key = String(parts[0])
                let value = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
                let lkey = key.lowercased()
                let n = line.number

                if lkey == "target" {
                    finishTarget(&self, &config)
                    incoming = []; outgoing = nil; connection = ConnectionSettings(); timeouts = TimeoutSettings()
                    skipping = false
                    var name = value
                    if name.isEmpty { unmapped(f, n, "Target without a name (stanza skipped)"); skipping = true; continue }
                    if ISCSIName.problem(name) != nil, ISCSIName.problem(name.lowercased()) == nil {
                        note(f, n, "target name \(name) lower-cased to \(name.lowercased()) (iSCSI names are case-insensitive)")
                        name = name.lowercased()
                    }
                    if let problem = ISCSIName.problem(name) {
                        unmapped(f, n, "target \(name) is not a valid iSCSI name (\(problem)); stanza skipped")
                        skipping = true; continue
                    }
                    if config.targetIndex(named: name) != nil {
                        unmapped(f, n, "target \(name) is defined twice; second stanza skipped")
                        skipping = true; continue
                    }
                    config.targets.append(Target(name: name))
                    current = config.targets.count - 1
                    continue
                }
                if skipping { continue }
                let inTarget = current != nil

                switch lkey {
                case "incominguser", "outgoinguser":
                    let fields = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                    if fields.isEmpty { continue }  // "IncomingUser" alone, as in IET's sample: no account
                    guard fields.count == 2 else {
                        unmapped(f, n, "\(key) needs a user name and a secret without spaces (ignored)")
                        continue
                    }
                    let cred = CHAPCredential(user: fields[0], secret: fields[1])
                    if lkey == "incominguser" {
                        if inTarget { incoming.append(cred) } else { globalIncoming.append(cred) }
                    } else {
                        let existing = inTarget ? outgoing : globalOutgoing
                        if existing != nil { note(f, n, "several OutgoingUser lines; the last one (\(cred.user)) is used") }
                        if inTarget { outgoing = cred } else { globalOutgoing = cred }
                    }
                case "lun":
                    guard let t = current else { unmapped(f, n, "Lun outside a Target stanza (ignored)"); continue }
                    if let lun = parseLUN(value, line: n, target: config.targets[t], config: config) {
                        config.targets[t].luns.append(lun)
                    }
                case "alias":
                    guard let t = current else { unmapped(f, n, "Alias outside a Target stanza (ignored)"); continue }
                    config.targets[t].alias = value
                case "isnsserver", "isnsaccesscontrol":
                    unmapped(f, n, "\(key) \(value): iSNS is not supported (ignored)")
                case "wthreads", "queuedcommands":
                    unmapped(f, n, "\(key) \(value): IET kernel tuning with no equivalent (ignored)")
                case "datapduinorder", "datasequenceinorder":
                    if value != "Yes" { unmapped(f, n, "\(key) \(value): only Yes is supported (Yes is used)") }
                case "errorrecoverylevel":
                    if value != "0" { unmapped(f, n, "\(key) \(value): only 0 is supported (0 is used)") }
                case "ofmarker", "ifmarker":
                    if value != "No" { unmapped(f, n, "\(key) \(value): markers are not supported (No is used)") }
                case "ofmarkint", "ifmarkint":
                    unmapped(f, n, "\(key) \(value): markers are not supported (ignored)")
                default:
                    var conn = inTarget ? connection : globalConnection
                    var tmo = inTarget ? timeouts : globalTimeouts
                    guard let handled = applySessionKey(lkey, key: key, value: value, line: n, &conn, &tmo) else {
                        unmapped(f, n, "unknown key \(key) (ignored)")
                        continue
                    }
                    guard handled else { continue }
                    if inTarget { connection = conn; timeouts = tmo } else {
                        globalConnection = conn; globalTimeouts = tmo
                        note(f, n, "global \(key) becomes a default inherited by every target (ietd itself only applies it inside Target stanzas)")
                    }
                }
            }
            finishTarget(&self, &config)
            if !globalIncoming.isEmpty {
                config.discoveryAuth = AuthSettings(mode: globalOutgoing == nil ? .chap : .mutualCHAP,
                                                    incomingUsers: globalIncoming, outgoingUser: globalOutgoing)
                note(f, nil, "global IncomingUser/OutgoingUser mapped to discoveryAuth (in IET they authenticate discovery sessions)")
            } else if globalOutgoing != nil {
                unmapped(f, nil, "global OutgoingUser without IncomingUser has no effect (ignored)")
            }
            config.defaults.connection = globalConnection.isEmpty ? nil : globalConnection
            config.defaults.timeouts = globalTimeouts.isEmpty ? nil : globalTimeouts
        }

        /// nil = not a session key; false = key recognised but value rejected (already reported).
        mutating func applySessionKey(
            _ lkey: String, key: String, value: String, line n: Int,
            _ c: inout ConnectionSettings, _ t: inout TimeoutSettings
        ) -> Bool? {
            let f = fileNames.ietd
            func int() -> Int? {
                guard let v = Int(value), v >= 0 else { unmapped(f, n, "\(key) \(value): not a number (ignored)"); return nil }
                return v
            }
            func bool() -> Bool? {
                switch value {
                case "Yes": return true
                case "No": return false
                default: unmapped(f, n, "\(key) \(value): must be Yes or No, case-sensitive as in IET (ignored)"); return nil
                }
            }
            func digests() -> [DigestKind]? {
                var out = [DigestKind]()
                for item in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    switch item.lowercased() {
                    case "none": out.append(.none)
                    case "crc32c": out.append(.crc32c)
                    default: unmapped(f, n, "\(key) \(value): unknown digest \(item) (ignored)"); return nil
                    }
                }
                return out.isEmpty ? nil : out
            }
            switch lkey {
            case "maxsessions": guard let v = int() else { return false }; c.maxSessions = v
            case "maxconnections": guard let v = int() else { return false }; c.maxConnections = v
            case "initialr2t": guard let v = bool() else { return false }; c.initialR2T = v
            case "immediatedata": guard let v = bool() else { return false }; c.immediateData = v
            case "maxrecvdatasegmentlength": guard let v = int() else { return false }; c.maxRecvDataSegmentLength = v
            case "maxxmitdatasegmentlength": guard let v = int() else { return false }; c.maxXmitDataSegmentLength = v
            case "maxburstlength": guard let v = int() else { return false }; c.maxBurstLength = v
            case "firstburstlength": guard let v = int() else { return false }; c.firstBurstLength = v
            case "maxoutstandingr2t": guard let v = int() else { return false }; c.maxOutstandingR2T = v
            case "defaulttime2wait": guard let v = int() else { return false }; c.defaultTime2Wait = v
            case "defaulttime2retain": guard let v = int() else { return false }; c.defaultTime2Retain = v
            case "headerdigest": guard let v = digests() else { return false }; c.headerDigest = v
            case "datadigest": guard let v = digests() else { return false }; c.dataDigest = v
            case "nopinterval": guard let v = int() else { return false }; t.nopInInterval = v
            case "noptimeout":
                guard let v = int() else { return false }
                if v == 0 {
                    note(f, n, "NOPTimeout 0 (same as the ping interval) left to the default")
                    return false
                }
                t.nopInTimeout = v
            default: return nil
            }
            return true
        }

        mutating func parseLUN(_ value: String, line n: Int, target: Target, config: Config) -> LUN? {
            let f = fileNames.ietd
            let parts = value.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = parts.first, let id = Int(first) else { unmapped(f, n, "Lun without a number (ignored)"); return nil }
            guard (0...16383).contains(id) else { unmapped(f, n, "LUN \(id) is out of range 0...16383 (skipped)"); return nil }
            if target.lun(id) != nil { unmapped(f, n, "LUN \(id) defined twice in target \(target.name) (second one skipped)"); return nil }
            var opts = [(key: String, value: String)]()
            for item in (parts.count > 1 ? String(parts[1]) : "").split(separator: ",") {
                let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                opts.append((kv[0], kv.count > 1 ? kv[1] : ""))
            }
            func opt(_ k: String) -> String? { opts.last { $0.key.lowercased() == k }?.value }
            let type = (opt("type") ?? "fileio").lowercased()
            if type == "nullio" {
                let size = opt("blocks").map { "\($0) blocks" } ?? opt("sectors").map { "\($0) sectors" } ?? "no size"
                unmapped(f, n, "LUN \(id) of \(target.name): Type=nullio (a RAM/null disk, \(size)) has no equivalent; LUN skipped")
                return nil
            }
            guard let path = opt("path"), !path.isEmpty else {
                unmapped(f, n, "LUN \(id) of \(target.name) has no Path (skipped)")
                return nil
            }
            let kind: BackstoreKind
            switch type {
            case "blockio": kind = .raw
            case "fileio": kind = path.hasPrefix("/dev/") ? .raw : .file
            default:
                unmapped(f, n, "LUN \(id) of \(target.name): unknown Type=\(type) (skipped)")
                return nil
            }
            var lun = LUN(id: id, backstore: kind, path: path)
            let used = Set(config.targets.flatMap { $0.luns.map(\.serial) })
            while used.contains(lun.serial) { lun.serial = LUNIdentity.generateSerial() }
            for (k, v) in opts {
                switch k.lowercased() {
                case "path", "type": break
                case "iomode":
                    switch v.lowercased() {
                    case "wb": lun.writeCache = .writeBack
                    case "wt": lun.writeCache = .writeThrough
                    case "ro": lun.readOnly = true
                    default: unmapped(f, n, "LUN \(id) of \(target.name): unknown IOMode=\(v) (write-through used)")
                    }
                case "scsisn":
                    if !v.isEmpty, v.utf8.count <= 32, v.allSatisfy({ $0.isASCII && $0 != " " && ($0.asciiValue ?? 0) > 0x20 }),
                       !used.contains(v) {
                        lun.serial = v
                    } else {
                        unmapped(f, n, "LUN \(id) of \(target.name): ScsiSN=\(v) is not a usable serial; generated \(lun.serial)")
                    }
                case "scsiid":
                    unmapped(f, n, "LUN \(id) of \(target.name): ScsiId=\(v) cannot be kept (SwiftTarget identifies LUNs by NAA id \(lun.naaId)); multipath initiators will see a new device id")
                case "blocksize":
                    if let bs = Int(v), [512, 1024, 2048, 4096].contains(bs) { lun.blockSize = bs == 512 ? nil : bs }
                    else { unmapped(f, n, "LUN \(id) of \(target.name): BlockSize=\(v) is not 512, 1024, 2048 or 4096 (512 used)") }
                default:
                    unmapped(f, n, "LUN \(id) of \(target.name): unknown option \(k)=\(v) (ignored)")
                }
            }
            if opt("scsisn") == nil {
                note(f, n, "LUN \(id) of \(target.name) had no ScsiSN; IET derived one, SwiftTarget generated \(lun.serial)")
            }
            return lun
        }

        // MARK: allow files

        struct AllowLine {
            var number: Int
            var target: String
            var entries: [String]
        }

        func allowLines(_ text: String) -> [AllowLine] {
            IETImporter.logicalLines(text).map { line in
                let parts = line.text.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                let entries = parts.count > 1
                    ? parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                    : []
                return AllowLine(number: line.number, target: String(parts[0]), entries: entries)
            }
        }

        /// For each target (and for "targets added later"), the index of the deciding line.
        mutating func decide(_ lines: [AllowLine], _ config: Config, file: String) -> (perTarget: [Int?], all: Int?) {
            let firstAll = lines.firstIndex { $0.target == "ALL" }
            var used = Set<Int>()
            if let firstAll { used.insert(firstAll) }
            let per: [Int?] = config.targets.map { t in
                let i = lines.firstIndex { $0.target == "ALL" || $0.target.lowercased() == t.name.lowercased() }
                if let i { used.insert(i) }
                return i
            }
            for (i, l) in lines.enumerated() where !used.contains(i) {
                if l.target != "ALL", config.targetIndex(named: l.target) == nil {
                    unmapped(file, l.number, "target \(l.target) is not defined in \(fileNames.ietd) (line ignored)")
                } else {
                    let decider = lines.firstIndex { $0.target == "ALL" || $0.target.lowercased() == l.target.lowercased() }!
                    unmapped(file, l.number, "never used: line \(lines[decider].number) already decides for \(l.target) (first matching line wins)")
                }
            }
            return (per, firstAll)
        }

        mutating func applyInitiatorsAllow(_ text: String, to config: inout Config) {
            let file = fileNames.initiators
            let lines = allowLines(text)
            func rules(_ l: AllowLine) -> [AccessRule] {
                var out = [AccessRule]()
                for e in l.entries {
                    if e == "ALL" { return [] }  // empty list = everyone
                    if let net = IPNetwork(e) {
                        out.append(AccessRule(.allow, address: net))
                    } else if let problem = AccessRule.regexError(e) {
                        unmapped(file, l.number, "entry \(e): \(problem) (ignored)")
                    } else {
                        out.append(AccessRule(.allow, initiatorRegex: e))
                    }
                }
                if out.isEmpty { out = [AccessRule(.deny, comment: "imported from \(file) line \(l.number): no usable entries")] }
                return out
            }
            let (per, all) = decide(lines, config, file: file)
            config.defaults.allowedClients = all.map { rules(lines[$0]) }
                ?? [AccessRule(.deny, comment: "imported: no ALL line in \(file)")]
            for (ti, i) in per.enumerated() {
                guard let i, i != all else { continue }
                config.targets[ti].allowedClients = rules(lines[i])
            }
            if lines.isEmpty { note(file, nil, "file has no entries: IET denies every initiator (imported as deny rules)") }
        }

        mutating func applyTargetsAllow(_ text: String, to config: inout Config) {
            let file = fileNames.targets
            let lines = allowLines(text)
            func nets(_ l: AllowLine) -> [IPNetwork] {
                var out = [IPNetwork]()
                for e in l.entries {
                    if e == "ALL" { return [] }
                    if let net = IPNetwork(e) { out.append(net) }
                    else { unmapped(file, l.number, "entry \(e) is not an address or network (ignored)") }
                }
                return out
            }
            let (per, all) = decide(lines, config, file: file)
            if let all { config.defaults.allowedServerAddresses = nets(lines[all]) }
            for (ti, i) in per.enumerated() {
                if let i {
                    if i != all { config.targets[ti].allowedServerAddresses = nets(lines[i]) }
                } else {
                    unmapped(file, nil, "target \(config.targets[ti].name) has no line, so IET exposed it on no portal; SwiftTarget cannot express that and exposes it on every portal — remove or restrict the target")
                }
            }
        }
    }
}

import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

@main
struct SwiftTargetCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-targetctl",
        abstract: "Administer a running swift-targetd through its local API socket.",
        discussion: """
            Changes are validated, saved to the daemon's configuration file and applied live;
            each change prints how it took effect (applies-now, new-logins, target-restart).
            Read commands take --json for machine-readable output.

            Exit status:
              0   success
              1   failure (the daemon refused: open failed, port busy, …)
              2   invalid input (bad option, validation failed)
              3   not found (no such target, LUN, rule or session)
              4   conflict (e.g. the target already exists)
              69  the daemon is unreachable (socket missing or refusing)
            """,
        version: ProductVersion.current,
        subcommands: [
            ListCommand.self, TreeCommand.self, ShowCommand.self, AddTarget.self, EditTarget.self, RemoveTarget.self, AddLUN.self, EditLUN.self, RemoveLUN.self,
            SetAuth.self, ListClients.self, AllowClient.self, RemoveClient.self, MoveClient.self, AllowServer.self,
            ListLUNMaps.self, MapLUNs.self, UnmapLUNs.self,
            Portals.self, ShowSettings.self, SetSettings.self, Limits.self, Start.self, Stop.self, Restart.self, Sessions.self,
            Logout.self, Stats.self, ShowConfig.self, Reload.self, SaveConfig.self, RestoreConfig.self, ImportIETD.self, InstallService.self,
        ]
    )

    /// Maps usage errors to exit status 2 (ArgumentParser's default is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(CtlExitCode.invalid)
            }
            exit(withError: error)
        }
    }
}

struct Connection: ParsableArguments {
    @Option(help: "The daemon's API socket.")
    var socket: String = ProcessInfo.processInfo.environment["SWIFT_TARGETD_SOCKET"] ?? defaultAPISocketPath

    var client: AdminClient { AdminClient(socketPath: socket) }
}

/// Runs a command body; prints errors and exits with the documented status.
func perform(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as AdminClientError {
        FileHandle.standardError.write(Data("swift-targetctl: \(e)\n".utf8))
        throw ExitCode(e.exitCode)
    } catch let e as AdminError {
        FileHandle.standardError.write(Data("swift-targetctl: \(e.message)\n".utf8))
        throw ExitCode(e.kind.exitCode)
    }
}

func printJSON(_ data: Data) {
    FileHandle.standardOutput.write(data)
    if data.last != 0x0A { print("") }
}

func printReport(_ report: ApplyReport) {
    for w in report.warnings { print(w.hasPrefix("warning") || w.contains(": warning: ") ? w : "warning: \(w)") }
    if report.effects.isEmpty { print("no change") }
    for e in report.effects {
        var scope = e.target.map { "target \($0)" } ?? "global"
        if let l = e.lun { scope += " LUN \(l)" }
        print("\(scope): \(e.setting) [\(e.applyMode)]: \(e.outcome)")
    }
}

func path(_ parts: String...) -> String {
    "/v1/" + parts.map { AdminClient.segment($0) }.joined(separator: "/")
}

/// "10G" → bytes.
func parseSize(_ text: String) throws -> UInt64 {
    let t = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, UInt64)] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
    for (suffix, factor) in units where t.hasSuffix(suffix) || t.hasSuffix(suffix + "IB") || t.hasSuffix(suffix + "B") {
        let number = t.replacingOccurrences(of: suffix + "IB", with: "").replacingOccurrences(of: suffix + "B", with: "")
            .replacingOccurrences(of: suffix, with: "")
        guard let n = UInt64(number), n > 0 else { break }
        return n * factor
    }
    guard let n = UInt64(t), n > 0 else { throw ValidationError("size '\(text)': use a number with K, M, G or T (powers of 1024)") }
    return n
}

/// TARGET or --all / --global.
struct Scope: ParsableArguments {
    @Flag(name: [.customLong("all"), .customLong("global")], help: "The global default instead of one target.")
    var global = false

    func path(_ target: String?, _ rest: String) throws -> String {
        if global {
            guard target == nil else { throw ValidationError("give either a TARGET or --all, not both") }
            return "/v1/" + rest
        }
        guard let target else { throw ValidationError("give a TARGET or --all") }
        return "/v1/targets/\(AdminClient.segment(target))/" + rest
    }
}

// MARK: - Targets and LUNs

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List targets.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, "/v1/targets")
            if json { printJSON(data); return }
            let targets = try JSONDecoder().decode([TargetView].self, from: data)
            if targets.isEmpty { print("no targets"); return }
            print("TARGET".padding(toLength: 50, withPad: " ", startingAt: 0) + " STATE    SESSIONS LUNS AUTH")
            for t in targets {
                let name = t.name.count > 50 ? t.name : t.name.padding(toLength: 50, withPad: " ", startingAt: 0)
                print("\(name) \(t.running ? "running" : "stopped")  \(String(t.sessions).padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(t.luns.count).padding(toLength: 4, withPad: " ", startingAt: 0)) \(t.auth.mode.rawValue)")
            }
        }
    }
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one target.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false
    @Argument(help: "Target name.") var target: String

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, path("targets", target))
            if json { printJSON(data); return }
            let t = try JSONDecoder().decode(TargetView.self, from: data)
            print("target:   \(t.name)\(t.alias.map { " (\($0))" } ?? "")")
            print("state:    \(t.running ? "running" : "stopped"), \(t.sessions) session(s)")
            print("auth:     \(t.auth.mode.rawValue)\(t.auth.incomingUsers.isEmpty ? "" : " users " + t.auth.incomingUsers.map(\.user).joined(separator: ","))\(t.auth.outgoingUser.map { " outgoing \($0.user)" } ?? "")\(t.authInherited ? " (inherited)" : "")")
            print("clients:  \(t.allowedClients.isEmpty ? "everyone" : "\(t.allowedClients.count) rule(s)")\(t.allowedClientsInherited ? " (inherited)" : "")")
            for (i, r) in t.allowedClients.enumerated() { print("  \(i): \(describe(r))") }
            print("exposed:  \(t.allowedServerAddresses.isEmpty ? "all portals" : t.allowedServerAddresses.joined(separator: ", "))")
            for l in t.luns {
                print("LUN \(l.id): \(l.backstore):\(l.path) \(l.size.map { "\($0) bytes" } ?? "") \(l.readOnly ? "read-only" : "read-write") \(l.writeCache) serial \(l.serial)")
            }
        }
    }
}

func describe(_ r: AccessRule) -> String {
    var parts = [r.action.rawValue]
    if let i = r.initiator { parts.append("initiator \(i)") }
    if let i = r.initiatorRegex { parts.append("initiator ~ \(i)") }
    if let a = r.address { parts.append("address \(a)") }
    if parts.count == 1 { parts.append("all") }
    if let c = r.comment { parts.append("# \(c)") }
    return parts.joined(separator: " ")
}

struct AddTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-target", abstract: "Add a target (IQN).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name: iqn.YYYY-MM.reversed.domain[:id], eui.… or naa.…") var name: String
    @Option(help: "Alias shown to initiators.") var alias: String?

    func run() async throws {
        try await perform {
            printReport(try await connection.client.call(.POST, "/v1/targets", body: NewTargetRequest(name: name, alias: alias)))
        }
    }
}

struct RemoveTarget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-target",
        abstract: "Remove a target; one with live sessions only with --force (they are logged out).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var name: String
    @Flag(help: "Remove it even while initiators are logged in (their sessions are logged out).") var force = false

    func run() async throws {
        try await perform {
            if !force {
                let data = try await connection.client.raw(.GET, "/v1/sessions")
                let live = try JSONDecoder().decode([SessionInfo].self, from: data).loggedIn(to: name)
                if !live.isEmpty {
                    let who = live.initiatorNames.joined(separator: ", ")
                    throw AdminError(.conflict, "\(name) has \(live.count) live session(s) (\(who)); nothing was removed. "
                                     + "Run again with --force to log them out and remove it.")
                }
            }
            printReport(try await connection.client.call(.DELETE, path("targets", name)))
        }
    }
}

struct AddLUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-lun", abstract: "Add a LUN to a target (live).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Option(help: ArgumentHelp("\(BackstoreKind.spokenList).")) var backstore: String
    @Option(help: "Path of the image or block device (POOL/IMAGE for rbd).") var path: String
    @Option(name: .customLong("option"), help: "A setting of the kind, KEY=VALUE (rbd: conf, id, keyring); repeats.")
    var options: [String] = []
    @Option(help: "Size for a new image (K, M, G, T); not for raw.") var size: String?
    @Option(help: "LUN number (default: the lowest free).") var lun: Int?
    @Flag(help: "Export read-only.") var readOnly = false
    @Option(help: "write-back or write-through (default).") var writeCache: String?

    func validate() throws {
        guard BackstoreKind(rawValue: backstore) != nil else { throw ValidationError("--backstore must be \(BackstoreKind.spokenList)") }
        if let w = writeCache, WriteCacheMode(rawValue: w) == nil { throw ValidationError("--write-cache must be write-back or write-through") }
        if let size { _ = try parseSize(size) }
        let kind = BackstoreKind(rawValue: backstore)!
        for option in options {
            guard let eq = option.firstIndex(of: "="), kind.settings.contains(String(option[..<eq])) else {
                throw ValidationError("--option \(option): \(backstore) LUNs take \(kind.settings.isEmpty ? "no settings" : kind.settings.map { $0 + "=VALUE" }.joined(separator: ", "))")
            }
        }
    }

    func run() async throws {
        let kind = BackstoreKind(rawValue: backstore)!
        let absolute = kind.locator != .path || path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var settings: [String: String] = [:]
        for option in options {
            let eq = option.firstIndex(of: "=")!
            settings[String(option[..<eq])] = String(option[option.index(after: eq)...])
        }
        let bytes = try size.map(parseSize)
        try await perform {
            let body = NewLUNRequest(id: lun, backstore: backstore, path: absolute, size: bytes, readOnly: readOnly,
                                     writeCache: writeCache, options: settings.isEmpty ? nil : settings)
            printReport(try await connection.client.call(.POST, AdminAPI_path("targets", target, "luns"), body: body))
        }
    }
}

func AdminAPI_path(_ parts: String...) -> String {
    "/v1/" + parts.map { AdminClient.segment($0) }.joined(separator: "/")
}

struct RemoveLUN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove-lun", abstract: "Remove a LUN from a target (live).")
    @OptionGroup var connection: Connection
    @Argument(help: "Target name.") var target: String
    @Argument(help: "LUN number.") var lun: Int

    func run() async throws {
        try await perform { printReport(try await connection.client.call(.DELETE, path("targets", target, "luns", String(lun)))) }
    }
}

// MARK: - Authentication

struct SetAuth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-auth", abstract: "Set CHAP for a target, the global default (--global) or discovery (--discovery).",
        discussion: """
            --chap USER:SECRET repeats for several accounts; --mutual USER:SECRET adds the target's
            own account (mutual CHAP). With --secret-stdin, give --chap USER / --mutual USER without
            secrets and type one secret per line on standard input (in the same order), so secrets
            stay out of the shell history. --inherit makes a target use the global default again.
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Target name (or use --global / --discovery).") var target: String?
    @Flag(help: "The default for targets without their own setting.") var global = false
    @Flag(help: "Discovery (SendTargets) sessions.") var discovery = false
    @Flag(help: "No authentication.") var none = false
    @Flag(help: "Use the global default (targets only).") var inherit = false
    @Option(help: "Incoming account USER:SECRET (repeatable).") var chap: [String] = []
    @Option(help: "Mutual CHAP: the target's account USER:SECRET.") var mutual: String?
    @Flag(help: "Read secrets from standard input, one per line.") var secretStdin = false

    func validate() throws {
        let scopes = (target != nil ? 1 : 0) + (global ? 1 : 0) + (discovery ? 1 : 0)
        guard scopes == 1 else { throw ValidationError("give exactly one of TARGET, --global, --discovery") }
        let modes = (none ? 1 : 0) + (inherit ? 1 : 0) + (chap.isEmpty ? 0 : 1)
        guard modes == 1 else { throw ValidationError("give exactly one of --none, --inherit, --chap USER:SECRET") }
        if inherit && target == nil { throw ValidationError("--inherit is for targets") }
        if mutual != nil && chap.isEmpty { throw ValidationError("--mutual needs --chap") }
    }

    func credentials() throws -> (incoming: [CHAPCredential], outgoing: CHAPCredential?) {
        func split(_ text: String, _ option: String) throws -> CHAPCredential {
            if secretStdin {
                guard !text.contains(":") else { throw ValidationError("with --secret-stdin give \(option) USER only") }
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("standard input ended before the secret of \(text)")
                }
                return CHAPCredential(user: text, secret: line)
            }
            guard let colon = text.firstIndex(of: ":") else { throw ValidationError("\(option) wants USER:SECRET (or use --secret-stdin)") }
            let user = String(text[..<colon]), secret = String(text[text.index(after: colon)...])
            guard !user.isEmpty, !secret.isEmpty else { throw ValidationError("\(option): user and secret must not be empty") }
            return CHAPCredential(user: user, secret: secret)
        }
        let incoming = try chap.map { try split($0, "--chap") }
        let outgoing = try mutual.map { try split($0, "--mutual") }
        return (incoming, outgoing)
    }

    func run() async throws {
        var auth = AuthSettings.noAuth
        if !chap.isEmpty {
            let (incoming, outgoing) = try credentials()
            auth = AuthSettings(mode: outgoing == nil ? .chap : .mutualCHAP, incomingUsers: incoming, outgoingUser: outgoing)
        }
        try await perform {
            let client = connection.client
            if let target {
                if inherit {
                    printReport(try await client.call(.DELETE, path("targets", target, "auth")))
                } else {
                    printReport(try await client.call(.PUT, path("targets", target, "auth"), body: auth))
                }
            } else {
                printReport(try await client.call(.PUT, global ? "/v1/auth" : "/v1/discovery-auth", body: auth))
            }
        }
    }
}

// MARK: - Access rules

/// ADDRESS (CIDR), an initiator name glob, or ALL.
func rule(from pattern: String, deny: Bool, comment: String?) throws -> AccessRule {
    let action: AccessAction = deny ? .deny : .allow
    if pattern.uppercased() == "ALL" { return AccessRule(action, comment: comment) }
    if let network = IPNetwork(pattern) { return AccessRule(action, address: network, comment: comment) }
    if pattern.hasPrefix("[") && pattern.hasSuffix("]"), let network = IPNetwork(String(pattern.dropFirst().dropLast())) {
        return AccessRule(action, address: network, comment: comment)
    }
    if pattern.hasPrefix("~") { return AccessRule(action, initiatorRegex: String(pattern.dropFirst()), comment: comment) }
    if pattern.hasPrefix("iqn.") || pattern.hasPrefix("eui.") || pattern.hasPrefix("naa.") || pattern.contains("*") {
        return AccessRule(action, initiator: pattern, comment: comment)
    }
    throw ValidationError("'\(pattern)' is neither an address (192.0.2.0/24, [2001:db8::1]), an initiator name or glob (iqn.…*), ~REGEX, nor ALL")
}

struct ListClients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-clients", abstract: "Show the allowed-client rules (first match wins).")
    @OptionGroup var connection: Connection
    @OptionGroup var scope: Scope
    @Flag(help: "JSON output.") var json = false
    @Argument(help: "Target name (or --all).") var target: String?

    func run() async throws {
        let p = try scope.path(target, "allowed-clients")
        try await perform {
            let data = try await connection.client.raw(.GET, p)
            if json { printJSON(data); return }
            let rules = try JSONDecoder().decode([AccessRule].self, from: data)
            if rules.isEmpty { print("everyone is allowed (no rules)") }
            for (i, r) in rules.enumerated() { print("\(i): \(describe(r))") }
        }
    }
}

struct AllowClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allow-client", abstract: "Add an allowed-client rule (address, initiator name/glob, ~regex or ALL).",
        discussion: "Rules are checked in order; the first match decides. A non-empty list that matches nothing denies.")
    @OptionGroup var connection: Connection
    @OptionGroup var scope: Scope
    @Argument(help: "TARGET then PATTERN, or PATTERN with --all.") var arguments: [String]
    @Flag(help: "A deny rule.") var deny = false
    @Option(help: "Position in the list (0 = first; default: last).") var position: Int?
    @Option(help: "Comment kept with the rule.") var comment: String?

    func run() async throws {
        let target: String?, pattern: String
        switch (scope.global, arguments.count) {
        case (true, 1): (target, pattern) = (nil, arguments[0])
        case (false, 2): (target, pattern) = (arguments[0], arguments[1])
        default: throw ValidationError("give TARGET PATTERN, or --all PATTERN")
        }
        let r = try rule(from: pattern, deny: deny, comment: comment)
        let p = try scope.path(target, "allowed-clients")
        try await perform {
            printReport(try await connection.client.call(.POST, p, body: NewAccessRuleRequest(rule: r, position: position)))
        }
    }
}

struct RemoveClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove-client", abstract: "Remove the rule at INDEX (see list-clients).")
    @OptionGroup var connection: Connection
    @OptionGroup var scope: Scope
    @Argument(help: "TARGET INDEX, or INDEX with --all.") var arguments: [String]

    func run() async throws {
        let target: String?, index: String
        switch (scope.global, arguments.count) {
        case (true, 1): (target, index) = (nil, arguments[0])
        case (false, 2): (target, index) = (arguments[0], arguments[1])
        default: throw ValidationError("give TARGET INDEX, or --all INDEX")
        }
        guard Int(index) != nil else { throw ValidationError("INDEX must be a number") }
        let p = try scope.path(target, "allowed-clients/\(index)")
        try await perform { printReport(try await connection.client.call(.DELETE, p)) }
    }
}

struct MoveClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "move-client", abstract: "Move a rule up or down: move-client up|down [TARGET] INDEX.")
    @OptionGroup var connection: Connection
    @OptionGroup var scope: Scope
    @Argument(help: "up or down, then TARGET INDEX (or INDEX with --all).") var arguments: [String]

    func run() async throws {
        guard let direction = arguments.first, ["up", "down"].contains(direction) else { throw ValidationError("first argument: up or down") }
        let rest = Array(arguments.dropFirst())
        let target: String?, index: String
        switch (scope.global, rest.count) {
        case (true, 1): (target, index) = (nil, rest[0])
        case (false, 2): (target, index) = (rest[0], rest[1])
        default: throw ValidationError("give up|down TARGET INDEX, or up|down --all INDEX")
        }
        guard Int(index) != nil else { throw ValidationError("INDEX must be a number") }
        let p = try scope.path(target, "allowed-clients/\(index)/move")
        try await perform { printReport(try await connection.client.call(.POST, p, body: MoveRequest(direction: direction))) }
    }
}

struct AllowServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allow-server", abstract: "Set the local addresses (CIDR) a target is reachable and advertised on.",
        discussion: "allow-server TARGET ADDR… | --all ADDR… ; --add/--remove edit the list; no address and --clear = every portal.")
    @OptionGroup var connection: Connection
    @OptionGroup var scope: Scope
    @Argument(help: "TARGET then addresses, or addresses with --all.") var arguments: [String] = []
    @Flag(help: "Add to the list instead of replacing it.") var add = false
    @Flag(help: "Remove these addresses from the list.") var remove = false
    @Flag(help: "Empty the list (every portal).") var clear = false

    func run() async throws {
        var args = arguments
        let target: String? = scope.global ? nil : (args.isEmpty ? nil : args.removeFirst())
        if !scope.global && target == nil { throw ValidationError("give TARGET or --all") }
        if args.isEmpty && !clear { throw ValidationError("give addresses, or --clear") }
        for a in args where IPNetwork(a) == nil { throw ValidationError("'\(a)' is not an address or CIDR network") }
        let p = try scope.path(target, "allowed-server-addresses")
        try await perform {
            let client = connection.client
            var list: [String] = clear ? [] : args
            if add || remove {
                let current: [String] = try await client.call(.GET, p)
                list = add ? current + args.filter { a in !current.contains(IPNetwork(a)!.description) }
                    : current.filter { c in !args.contains { IPNetwork($0)?.description == c } }
            }
            printReport(try await client.call(.PUT, p, body: list))
        }
    }
}

struct Portals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "portals", abstract: "Show or set the listening portals (live).")
    @OptionGroup var connection: Connection
    @Option(help: "Set the portal list (repeat): ADDRESS:PORT.") var set: [String] = []
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await perform {
            let client = connection.client
            if !set.isEmpty {
                printReport(try await client.call(.PUT, "/v1/portals", body: set))
                return
            }
            let data = try await client.raw(.GET, "/v1/portals")
            if json { printJSON(data); return }
            for p in try JSONDecoder().decode([String].self, from: data) { print(p) }
        }
    }
}

// MARK: - Settings

struct ShowSettings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show-settings", abstract: "Show connection and timeout settings (global or --target).")
    @OptionGroup var connection: Connection
    @Option(help: "A target instead of the global defaults.") var target: String?
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        let base = target.map { "/v1/targets/\(AdminClient.segment($0))/settings" } ?? "/v1/settings"
        try await perform {
            let client = connection.client
            let c: ConnectionSettingsView = try await client.call(.GET, base + "/connection")
            let t: TimeoutSettingsView = try await client.call(.GET, base + "/timeouts")
            if json {
                struct Both: Encodable { var connection: ConnectionSettingsView; var timeouts: TimeoutSettingsView }
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                printJSON(try e.encode(Both(connection: c, timeouts: t)))
                return
            }
            func row(_ name: String, _ configured: String?, _ effective: String) {
                print(name.padding(toLength: 28, withPad: " ", startingAt: 0) + effective.padding(toLength: 16, withPad: " ", startingAt: 0)
                      + (configured == nil ? "(inherited)" : "(set here)"))
            }
            let e = c.effective, s = c.configured
            func d(_ v: [DigestKind]?) -> String? { v.map { $0.map(\.rawValue).joined(separator: ",") } }
            row("MaxSessions", s.maxSessions.map(String.init), e.maxSessions == 0 ? "unlimited" : "\(e.maxSessions!)")
            row("MaxConnections", s.maxConnections.map(String.init), "\(e.maxConnections!)")
            row("InitialR2T", s.initialR2T.map { "\($0)" }, e.initialR2T! ? "Yes" : "No")
            row("ImmediateData", s.immediateData.map { "\($0)" }, e.immediateData! ? "Yes" : "No")
            row("MaxRecvDataSegmentLength", s.maxRecvDataSegmentLength.map(String.init), "\(e.maxRecvDataSegmentLength!)")
            row("MaxXmitDataSegmentLength", s.maxXmitDataSegmentLength.map(String.init), "\(e.maxXmitDataSegmentLength!)")
            row("MaxBurstLength", s.maxBurstLength.map(String.init), "\(e.maxBurstLength!)")
            row("FirstBurstLength", s.firstBurstLength.map(String.init), "\(e.firstBurstLength!)")
            row("MaxOutstandingR2T", s.maxOutstandingR2T.map(String.init), "\(e.maxOutstandingR2T!)")
            row("DefaultTime2Wait", s.defaultTime2Wait.map(String.init), "\(e.defaultTime2Wait!)")
            row("DefaultTime2Retain", s.defaultTime2Retain.map(String.init), "\(e.defaultTime2Retain!)")
            row("HeaderDigest", d(s.headerDigest), d(e.headerDigest) ?? "")
            row("DataDigest", d(s.dataDigest), d(e.dataDigest) ?? "")
            row("NOPInterval (s)", t.configured.nopInInterval.map(String.init), t.effective.nopInInterval == 0 ? "never" : "\(t.effective.nopInInterval!)")
            row("NOPTimeout (s)", t.configured.nopInTimeout.map(String.init), "\(t.effective.nopInTimeout!)")
            row("LoginTimeout (s)", t.configured.loginTimeout.map(String.init), "\(t.effective.loginTimeout!)")
        }
    }
}

struct SetSettings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-settings", abstract: "Change connection/timeout settings (global or --target); others stay.",
        discussion: "Negotiated settings apply to new logins; existing sessions keep theirs. MaxSessions 0 = unlimited.")
    @OptionGroup var connection: Connection
    @Option(help: "A target instead of the global defaults.") var target: String?
    @Option var maxSessions: Int?
    @Option var maxConnections: Int?
    @Option(help: "Yes or No.") var initialR2t: String?
    @Option(help: "Yes or No.") var immediateData: String?
    @Option var maxRecvDataSegmentLength: Int?
    @Option var maxXmitDataSegmentLength: Int?
    @Option var maxBurstLength: Int?
    @Option var firstBurstLength: Int?
    @Option var maxOutstandingR2t: Int?
    @Option var defaultTime2wait: Int?
    @Option var defaultTime2retain: Int?
    @Option(help: "Offered header digests in order, e.g. None,CRC32C.") var headerDigest: String?
    @Option(help: "Offered data digests in order, e.g. CRC32C,None.") var dataDigest: String?
    @Option(help: "Seconds between NOP-In pings (0 = never).") var nopInterval: Int?
    @Option(help: "Seconds to wait for a ping answer.") var nopTimeout: Int?
    @Option(help: "Seconds a login may take.") var loginTimeout: Int?

    static func yesNo(_ s: String?, _ name: String) throws -> Bool? {
        guard let s else { return nil }
        switch s.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw ValidationError("\(name) takes Yes or No")
        }
    }

    static func digests(_ s: String?, _ name: String) throws -> [DigestKind]? {
        guard let s else { return nil }
        return try s.split(separator: ",").map { item in
            switch item.trimmingCharacters(in: .whitespaces).lowercased() {
            case "none": return DigestKind.none
            case "crc32c": return DigestKind.crc32c
            default: throw ValidationError("\(name) takes None and/or CRC32C, comma separated")
            }
        }
    }

    func run() async throws {
        let c = ConnectionSettings(
            maxSessions: maxSessions, maxConnections: maxConnections, initialR2T: try Self.yesNo(initialR2t, "--initial-r2t"),
            immediateData: try Self.yesNo(immediateData, "--immediate-data"), maxRecvDataSegmentLength: maxRecvDataSegmentLength,
            maxXmitDataSegmentLength: maxXmitDataSegmentLength, maxBurstLength: maxBurstLength, firstBurstLength: firstBurstLength,
            maxOutstandingR2T: maxOutstandingR2t, defaultTime2Wait: defaultTime2wait, defaultTime2Retain: defaultTime2retain,
            headerDigest: try Self.digests(headerDigest, "--header-digest"), dataDigest: try Self.digests(dataDigest, "--data-digest"))
        let t = TimeoutSettings(nopInInterval: nopInterval, nopInTimeout: nopTimeout, loginTimeout: loginTimeout)
        guard !c.isEmpty || !t.isEmpty else { throw ValidationError("give at least one setting to change") }
        let base = target.map { "/v1/targets/\(AdminClient.segment($0))/settings" } ?? "/v1/settings"
        try await perform {
            let client = connection.client
            if !c.isEmpty { printReport(try await client.call(.PUT, base + "/connection", body: c)) }
            if !t.isEmpty { printReport(try await client.call(.PUT, base + "/timeouts", body: t)) }
        }
    }
}

// MARK: - Service, sessions, statistics

struct ServiceOptions: ParsableArguments {
    @OptionGroup var connection: Connection
    @Argument(help: "One target (default: all).") var target: String?

    func send(_ action: String) async throws {
        var p = "/v1/service/\(action)"
        if let target { p += "?target=" + (target.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? target) }
        try await perform {
            let _: [String: String] = try await connection.client.call(.POST, p)
            print("\(action): ok")
        }
    }
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a stopped target (or all).")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("start") }
}

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a target (or all): its sessions are asked to log out; logins get 'not found'.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("stop") }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart a target (or all); other targets are untouched.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.send("restart") }
}

struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions", abstract: "List live sessions.")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, "/v1/sessions")
            if json { printJSON(data); return }
            let sessions = try JSONDecoder().decode([SessionInfo].self, from: data)
            if sessions.isEmpty { print("no sessions"); return }
            print("TSIH  TARGET / INITIATOR / FROM")
            for s in sessions {
                print("\(String(s.tsih).padding(toLength: 5, withPad: " ", startingAt: 0)) \(s.target ?? "(discovery)")")
                print("      \(s.initiator) isid \(s.isid) from \(s.remoteAddress) to \(s.localAddress)")
                print("      user \(s.authenticatedUser ?? "-") digests \(s.headerDigest)/\(s.dataDigest) in flight \(s.commandsInFlight) since \(Date(timeIntervalSince1970: s.connectedSince))")
            }
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Ask a session to log out (closed after a grace period).")
    @OptionGroup var connection: Connection
    @Argument(help: "TSIH (see sessions).") var tsih: UInt16

    func run() async throws {
        try await perform {
            let _: [String: String] = try await connection.client.call(.DELETE, "/v1/sessions/\(tsih)")
            print("logout requested")
        }
    }
}

import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

// Who may connect and where: allowed clients, allowed server addresses, portals.

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

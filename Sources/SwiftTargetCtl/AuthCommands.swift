import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

// CHAP: set-auth for a target or the global default (one-way and mutual).

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

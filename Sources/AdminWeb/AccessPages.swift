import AdminCore
import Foundation
import Hummingbird
import TargetConfig

/// `ALL` (the global default rules) or a target name.
let allScope = "ALL"

extension Config {
    /// The rule list of a scope as stored (nil = not set / inherits).
    func clientRules(scope: String) -> [AccessRule]? {
        scope == allScope ? defaults.allowedClients : target(named: scope)?.allowedClients
    }

    mutating func setClientRules(scope: String, _ rules: [AccessRule]?) throws {
        if scope == allScope {
            defaults.allowedClients = (rules?.isEmpty ?? true) ? nil : rules
            return
        }
        guard let i = targetIndex(named: scope) else { throw AdminError(.notFound, "There is no target named \(scope)") }
        targets[i].allowedClients = rules
    }
}

extension AdminWebServer {
    // MARK: - Allowed client addresses

    func clientsPage(_ page: Page, notice: Notice, status: HTTPResponse.Status) async throws -> Response {
        let config = await backend.configuration()
        var b = notice.html
        b += "<p>Rules are checked in order and the <strong>first matching rule decides</strong>. A list with rules that "
        b += "no rule matches denies the login; an empty list allows every client. Targets without their own list use the "
        b += "<strong>ALL</strong> rules. \(applyModeBadge(.allowedClients))</p>"
        b += "<p><a href=\"/clients/edit\" id=\"add-rule\">Add a new allowed client rule</a></p>"
        for scope in [allScope] + config.targets.map(\.name) {
            let rules = config.clientRules(scope: scope)
            let title = scope == allScope ? "ALL targets (default rules)" : "Target \(scope)"
            b += "<h2>\(h(title))</h2>"
            b += "<form method=\"post\" action=\"/clients/action\">\(csrfField(page.csrf))<input type=\"hidden\" name=\"scope\" value=\"\(h(scope))\">"
            guard let rules else {
                if scope == allScope {
                    b += "<p class=\"muted\">No default rules: every client is allowed (unless a target has its own rules).</p>"
                } else {
                    b += "<p class=\"muted\">Uses the ALL rules.</p>"
                }
                b += "<p><a href=\"/clients/edit?scope=\(q(scope))\">Add a rule for \(h(scope == allScope ? "ALL" : "this target"))</a></p></form>"
                continue
            }
            if rules.isEmpty {
                b += "<p class=\"muted\">Own empty list: every client is allowed.</p>"
            } else {
                b += "<table class=\"rules\"><tr><th></th><th>#</th><th>Action</th><th>Initiator name</th><th>Address</th><th>Comment</th><th>Order</th><th></th></tr>"
                for (i, r) in rules.enumerated() {
                    let initiator = r.initiator.map { "<code>\(h($0))</code>" } ?? r.initiatorRegex.map { "regex <code>\(h($0))</code>" } ?? "any"
                    b += "<tr><td><input type=\"checkbox\" name=\"sel\" value=\"\(i)\"></td><td>\(i + 1)</td><td>\(r.action.rawValue)</td>"
                    b += "<td>\(initiator)</td><td>\(r.address.map { h($0.description) } ?? "all addresses")</td><td>\(h(r.comment ?? ""))</td><td>"
                    if i > 0 { b += "<button type=\"submit\" name=\"op\" value=\"up:\(i)\" title=\"Move up\">↑</button>" }
                    if i < rules.count - 1 { b += "<button type=\"submit\" name=\"op\" value=\"down:\(i)\" title=\"Move down\">↓</button>" }
                    b += "</td><td><a href=\"/clients/edit?scope=\(q(scope))&amp;index=\(i)\">edit</a></td></tr>"
                }
                b += "</table>"
            }
            b += "<p><a href=\"/clients/edit?scope=\(q(scope))\">Add a rule</a> "
            if !rules.isEmpty { b += "<button type=\"submit\" name=\"op\" value=\"delete\">Delete selected</button> " }
            if scope != allScope { b += "<button type=\"submit\" name=\"op\" value=\"inherit\">Use the ALL rules instead</button>" }
            b += "</p></form>"
        }
        return htmlResponse(layout(title: "Allowed Client Addresses", csrf: page.csrf, body: b), status: status)
    }

    func clientEditPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, useForm: Bool = false) async throws -> Response {
        let config = await backend.configuration()
        let src = useForm ? page.form : page.query
        let scope = src.text("scope")
        let index = Int(src.text("index"))
        var rule: AccessRule?
        if let index {
            guard let rules = config.clientRules(scope: scope), rules.indices.contains(index) else {
                return htmlResponse(layout(title: "No such rule", csrf: page.csrf, body: "<p>That rule no longer exists. <a href=\"/clients\">Back</a></p>"), status: .notFound)
            }
            rule = rules[index]
        }
        let form: FormData? = useForm ? page.form : nil
        func val(_ f: String, _ d: String) -> String { form.map { $0.text(f) } ?? d }
        var b = notice.html
        b += "<form method=\"post\" action=\"/clients/save\">\(csrfField(page.csrf))"
        if let index {
            b += "<input type=\"hidden\" name=\"index\" value=\"\(index)\"><input type=\"hidden\" name=\"scope\" value=\"\(h(scope))\">"
            b += "<p>Applies to: <strong>\(h(scope == allScope ? "ALL targets" : scope))</strong> (cannot be changed)</p>"
        } else {
            let cur = val("scope", scope.isEmpty ? allScope : scope)
            b += "<p><label for=\"scope\">Applies to</label><select name=\"scope\" id=\"scope\">\(option(allScope, "ALL targets", cur))"
            for t in config.targets { b += option(t.name, t.name, cur) }
            b += "</select></p>"
        }
        let action = val("action", rule?.action.rawValue ?? "allow")
        b += "<p><label for=\"action\">Action</label><select name=\"action\" id=\"action\">"
        b += option("allow", "allow", action) + option("deny", "deny", action) + "</select></p>"
        let addr = val("addresses", rule.map { $0.address?.description ?? "ALL" } ?? "")
        b += "<p><label for=\"addresses\">Client address\(index == nil ? "es" : "")</label>\(textInput("addresses", addr, placeholder: "ALL, 192.0.2.7, 10.0.0.0/8, [2001:db8::]/32"))</p>"
        b += "<p class=\"muted\">IPv4, IPv4/bits, IPv6, [IPv6]/bits, or ALL (or empty) for every address."
        b += index == nil ? " Several addresses (separated by commas or spaces) create one rule each, in order.</p>" : "</p>"
        let imode = val("imode", rule?.initiatorRegex != nil ? "regex" : "glob")
        let pattern = val("initiator", rule?.initiator ?? rule?.initiatorRegex ?? "")
        b += "<p><label for=\"initiator\">Initiator name</label>\(textInput("initiator", pattern, placeholder: "any; e.g. iqn.1993-08.org.debian:*"))"
        b += "<select name=\"imode\" id=\"imode\">\(option("glob", "pattern (* ? [..])", imode))\(option("regex", "regular expression (whole name)", imode))</select></p>"
        b += "<p><label for=\"comment\">Comment</label>\(textInput("comment", val("comment", rule?.comment ?? "")))</p>"
        if index == nil {
            let pos = val("position", "end")
            b += "<p><label for=\"position\">Position</label><select name=\"position\" id=\"position\">"
            b += option("end", "after the existing rules", pos) + option("first", "before the existing rules", pos) + "</select></p>"
        }
        b += "<p><button type=\"submit\" id=\"save\">Save</button> <a href=\"/clients\">Cancel</a></p></form>"
        return htmlResponse(layout(title: index == nil ? "Add allowed client rule" : "Edit allowed client rule", csrf: page.csrf, body: b), status: status)
    }

    func parseRules(_ f: FormData, single: Bool) throws(FormProblems) -> [AccessRule] {
        var problems: [String] = []
        guard let action = AccessAction(rawValue: f.text("action")) else { throw FormProblems("Action must be allow or deny") }
        let pattern = f.text("initiator")
        let regex = f.text("imode") == "regex"
        if regex, !pattern.isEmpty, let p = AccessRule.regexError(pattern) { problems.append(p) }
        let words = f.text("addresses").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        var nets: [IPNetwork?] = []
        if words.isEmpty || words.contains(where: { $0.uppercased() == "ALL" }) {
            if words.count > 1 { problems.append("ALL cannot be combined with other addresses") }
            nets = [nil]
        } else {
            for w in words {
                if let n = IPNetwork(w) { nets.append(n) } else { problems.append("\(w) is not an IPv4/IPv6 address or network") }
            }
        }
        if single && nets.count > 1 { problems.append("Give one address when editing a rule") }
        if !problems.isEmpty { throw FormProblems(problems) }
        let comment = f.text("comment")
        return nets.map {
            AccessRule(action, initiator: pattern.isEmpty || regex ? nil : pattern, initiatorRegex: pattern.isEmpty || !regex ? nil : pattern,
                       address: $0, comment: comment.isEmpty ? nil : comment)
        }
    }

    func saveClientRule(_ page: Page) async throws -> Response {
        let f = page.form
        let scope = f.text("scope")
        let index = Int(f.text("index"))
        let first = f.text("position") == "first"
        do {
            let newRules = try parseRules(f, single: index != nil)
            let report = try await audited(page).update { c in
                var rules = c.clientRules(scope: scope) ?? []
                if let index {
                    guard rules.indices.contains(index) else { throw AdminError(.notFound, "That rule no longer exists") }
                    rules[index] = newRules[0]
                } else if first {
                    rules.insert(contentsOf: newRules, at: 0)
                } else {
                    rules += newRules
                }
                try c.setClientRules(scope: scope, rules)
            }
            return try await clientsPage(page, notice: .applied(report, "Saved."), status: .ok)
        } catch let e as FormProblems {
            return try await clientEditPage(page, notice: Notice(errors: e.messages), status: .badRequest, useForm: true)
        } catch {
            return try await clientEditPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), useForm: true)
        }
    }

    /// Move up/down (`op=up:N`, `down:N`), delete selected (`op=delete`, `sel=N`…), revert to ALL (`op=inherit`).
    func clientsAction(_ page: Page) async throws -> Response {
        let f = page.form
        let scope = f.text("scope")
        let op = f.text("op")
        let selected = Set(f.all("sel").compactMap(Int.init))
        if op == "delete", !selected.isEmpty {
            let rules = (await backend.configuration()).clientRules(scope: scope) ?? []
            let doomed = rules.enumerated().filter { selected.contains($0.offset) }.map { rule in
                let r = rule.element
                let who = r.initiator ?? r.initiatorRegex.map { "regex " + $0 } ?? "any initiator"
                return "Rule \(rule.offset + 1): \(r.action.rawValue) \(who) from \(r.address.map(\.description) ?? "all addresses")"
            }
            let back = "/clients?scope=\(q(scope))"
            if let ask = confirmation(page, action: "/clients/action", title: "Delete \(doomed.count) allowed-client rule(s)?", items: doomed,
                                      carrying: ["scope", "op", "sel"], back: back) { return ask }
        }
        do {
            let report = try await audited(page).update { c in
                var rules = c.clientRules(scope: scope) ?? []
                let parts = op.split(separator: ":")
                switch (parts.first.map(String.init), parts.count > 1 ? Int(parts[1]) : nil) {
                case ("up", let i?) where i > 0 && i < rules.count:
                    rules.swapAt(i, i - 1)
                case ("down", let i?) where i >= 0 && i < rules.count - 1:
                    rules.swapAt(i, i + 1)
                case ("delete", _):
                    if selected.isEmpty { throw AdminError(.invalid, "No rules selected") }
                    rules = rules.enumerated().filter { !selected.contains($0.offset) }.map(\.element)
                case ("inherit", _) where scope != allScope:
                    try c.setClientRules(scope: scope, nil)
                    return
                default:
                    throw AdminError(.invalid, "Unknown action (the list may have changed; reload the page)")
                }
                try c.setClientRules(scope: scope, rules)
            }
            return try await clientsPage(page, notice: .applied(report), status: .ok)
        } catch {
            return try await clientsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }

    // MARK: - Allowed server addresses and portals

    func serversPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, formScope: String? = nil) async throws -> Response {
        let config = await backend.configuration()
        var b = notice.html
        let portalsText = formScope == "portals" ? page.form.text("portals") : config.portals.map(\.description).joined(separator: "\n")
        b += "<h2>Server address and port (portals) \(applyModeBadge(.portals))</h2>"
        b += "<form method=\"post\" action=\"/portals\">\(csrfField(page.csrf))"
        b += "<p><label for=\"portals\">Listen on (one address:port per line; 0.0.0.0:3260 or [::]:3260 = any address)</label><br>"
        b += "<textarea name=\"portals\" id=\"portals\" rows=\"4\" cols=\"40\">\(h(portalsText))</textarea></p>"
        b += "<p class=\"muted\">Sessions on a removed portal are dropped.</p>"
        b += "<p><button type=\"submit\" id=\"save-portals\">Save portals</button></p></form>"
        b += "<h2>Allowed server addresses \(applyModeBadge(.allowedServerAddresses))</h2>"
        b += "<p class=\"muted\">Which local addresses expose (and advertise in SendTargets) each target. Empty = every portal.</p>"
        for scope in [allScope] + config.targets.map(\.name) {
            let cur: [IPNetwork]? = scope == allScope ? config.defaults.allowedServerAddresses : config.target(named: scope)?.allowedServerAddresses
            let useForm = formScope == scope
            let text = useForm ? page.form.text("addresses") : (cur ?? []).map(\.description).joined(separator: "\n")
            let inherit = useForm ? page.form.has("inherit") : (cur == nil)
            b += "<form method=\"post\" action=\"/servers\">\(csrfField(page.csrf))<input type=\"hidden\" name=\"scope\" value=\"\(h(scope))\">"
            b += "<h3>\(h(scope == allScope ? "ALL targets (default)" : "Target \(scope)"))</h3>"
            if scope != allScope {
                b += "<p><label><input type=\"checkbox\" name=\"inherit\" value=\"1\"\(checked(inherit))> Use the ALL setting</label></p>"
            }
            b += "<p><textarea name=\"addresses\" rows=\"3\" cols=\"40\" placeholder=\"192.0.2.10, 10.0.0.0/8, [2001:db8::]/32\">\(h(text))</textarea></p>"
            b += "<p><button type=\"submit\">Save</button></p></form>"
        }
        return htmlResponse(layout(title: "Server Addresses and Portals", csrf: page.csrf, body: b), status: status)
    }

    func saveServers(_ page: Page) async throws -> Response {
        let f = page.form
        let scope = f.text("scope")
        let words = f.text("addresses").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        var nets: [IPNetwork] = []
        var problems: [String] = []
        for w in words {
            if let n = IPNetwork(w) { nets.append(n) } else { problems.append("\(w) is not an IPv4/IPv6 address or network") }
        }
        if !problems.isEmpty { return try await serversPage(page, notice: Notice(errors: problems), status: .badRequest, formScope: scope) }
        let inherit = f.has("inherit")
        let list = nets
        do {
            let report = try await audited(page).update { c in
                if scope == allScope {
                    c.defaults.allowedServerAddresses = list.isEmpty ? nil : list
                } else {
                    guard let i = c.targetIndex(named: scope) else { throw AdminError(.notFound, "There is no target named \(scope)") }
                    c.targets[i].allowedServerAddresses = inherit ? nil : list
                }
            }
            return try await serversPage(page, notice: .applied(report, "Saved."), status: .ok)
        } catch {
            return try await serversPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), formScope: scope)
        }
    }

    func savePortals(_ page: Page) async throws -> Response {
        let lines = page.form.text("portals").split(whereSeparator: { $0.isNewline || $0 == "," })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var portals: [Portal] = []
        var problems: [String] = []
        for l in lines {
            if let p = Portal(l) { portals.append(p) } else { problems.append("\(l) is not address:port ([IPv6]:port for IPv6)") }
        }
        if portals.isEmpty && problems.isEmpty { problems.append("At least one portal is required") }
        if !problems.isEmpty { return try await serversPage(page, notice: Notice(errors: problems), status: .badRequest, formScope: "portals") }
        let list = portals
        do {
            let report = try await audited(page).update { $0.portals = list }
            return try await serversPage(page, notice: .applied(report, "Saved."), status: .ok)
        } catch {
            return try await serversPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), formScope: "portals")
        }
    }
}

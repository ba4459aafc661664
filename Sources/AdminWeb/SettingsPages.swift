import AdminCore
import Foundation
import Hummingbird
import TargetConfig

/// An integer connection setting on the Connection Settings page.
struct IntSetting {
    var key: SettingKey
    var label: String
    var unit: String
    var field: WritableKeyPath<ConnectionSettings, Int?>
    var effective: KeyPath<EffectiveConnectionSettings, Int>
}

extension AdminWebServer {
    // MARK: - Scope (global defaults or one target)

    /// `target` query/form field: empty = global defaults.
    func scopeSelector(action: String, config: Config, current: String?) -> String {
        var s = "<form method=\"get\" action=\"\(action)\"><p><label for=\"scope\">Settings for</label><select name=\"target\" id=\"scope\">"
        s += option("", "all targets (global defaults)", current ?? "")
        for t in config.targets { s += option(t.name, "target \(t.name)", current ?? "") }
        s += "</select> <button type=\"submit\">Show</button></p></form>"
        return s
    }

    // MARK: - Authentication (defaults and discovery)

    func authPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, formFor which: String? = nil) async throws -> Response {
        let config = await backend.configuration()
        let fd = which == "defaults" ? page.form : nil
        let fs = which == "discovery" ? page.form : nil
        var b = notice.html
        b += "<form method=\"post\" action=\"/auth\">\(csrfField(page.csrf))<input type=\"hidden\" name=\"which\" value=\"defaults\">"
        b += "<h2>Default authentication for all targets \(applyModeBadge(.auth))</h2>"
        b += "<p class=\"muted\">Used by every target that does not have its own authentication settings "
        b += "(set on the target's page). No users = no authentication.</p>"
        b += AuthEditor.render(prefix: "g", current: config.defaults.auth, form: fd)
        b += "<p><button type=\"submit\" id=\"save-defaults\">Save default authentication</button></p></form>"
        b += "<form method=\"post\" action=\"/auth\">\(csrfField(page.csrf))<input type=\"hidden\" name=\"which\" value=\"discovery\">"
        b += "<h2>Discovery authentication \(applyModeBadge(.discoveryAuth))</h2>"
        b += "<p class=\"muted\">CHAP for discovery (SendTargets) sessions, independent of the targets. "
        b += "Without it, any client that passes the allowed-client rules can list the targets it may use.</p>"
        b += AuthEditor.render(prefix: "d", current: config.discoveryAuth, form: fs)
        b += "<p><button type=\"submit\" id=\"save-discovery\">Save discovery authentication</button></p></form>"
        return htmlResponse(layout(title: "Authentication Settings", csrf: page.csrf, body: b), status: status)
    }

    func saveAuth(_ page: Page) async throws -> Response {
        let which = page.form.text("which")
        let config = await backend.configuration()
        do {
            let report: ApplyReport
            if which == "discovery" {
                let a = try AuthEditor.parse(prefix: "d", form: page.form, old: config.discoveryAuth)
                report = try await audited(page).update { $0.discoveryAuth = a }
            } else {
                let a = try AuthEditor.parse(prefix: "g", form: page.form, old: config.defaults.auth)
                report = try await audited(page).update { $0.defaults.auth = a.mode == .none ? nil : a }
            }
            return try await authPage(page, notice: .applied(report, "Saved."), status: .ok)
        } catch let e as FormProblems {
            return try await authPage(page, notice: Notice(errors: e.messages), status: .badRequest, formFor: which)
        } catch {
            return try await authPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), formFor: which)
        }
    }

    // MARK: - Connection settings

    static var intSettings: [IntSetting] {
        [
            IntSetting(key: .maxSessions, label: "Maximum sessions per target (0 = unlimited)", unit: "", field: \.maxSessions, effective: \.maxSessions),
            IntSetting(key: .maxConnections, label: "Maximum connections per session", unit: "", field: \.maxConnections, effective: \.maxConnections),
            IntSetting(key: .maxRecvDataSegmentLength, label: "Maximum receive data segment length (MaxRecvDataSegmentLength)", unit: "bytes", field: \.maxRecvDataSegmentLength, effective: \.maxRecvDataSegmentLength),
            IntSetting(key: .maxXmitDataSegmentLength, label: "Maximum transmit data segment length (MaxXmitDataSegmentLength)", unit: "bytes", field: \.maxXmitDataSegmentLength, effective: \.maxXmitDataSegmentLength),
            IntSetting(key: .maxBurstLength, label: "Maximum burst length (MaxBurstLength)", unit: "bytes", field: \.maxBurstLength, effective: \.maxBurstLength),
            IntSetting(key: .firstBurstLength, label: "First burst length (FirstBurstLength)", unit: "bytes", field: \.firstBurstLength, effective: \.firstBurstLength),
            IntSetting(key: .maxOutstandingR2T, label: "Maximum outstanding R2Ts (MaxOutstandingR2T)", unit: "", field: \.maxOutstandingR2T, effective: \.maxOutstandingR2T),
            IntSetting(key: .defaultTime2Wait, label: "Time to wait before reconnecting (DefaultTime2Wait)", unit: "s", field: \.defaultTime2Wait, effective: \.defaultTime2Wait),
            IntSetting(key: .defaultTime2Retain, label: "Time to retain tasks after a connection loss (DefaultTime2Retain)", unit: "s", field: \.defaultTime2Retain, effective: \.defaultTime2Retain),
        ]
    }

    func connectionPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, useForm: Bool = false) async throws -> Response {
        let config = await backend.configuration()
        let scopeName = (useForm ? page.form.text("target") : page.query.text("target"))
        let target = scopeName.isEmpty ? nil : config.target(named: scopeName)
        if !scopeName.isEmpty && target == nil {
            return htmlResponse(layout(title: "No such target", csrf: page.csrf, body: "<p>There is no target named <code>\(h(scopeName))</code>.</p>"), status: .notFound)
        }
        let cur = target.map { $0.connection ?? ConnectionSettings() } ?? (config.defaults.connection ?? ConnectionSettings())
        let inherited = target == nil ? EffectiveConnectionSettings.builtIn : config.defaultConnection
        let form: FormData? = useForm ? page.form : nil
        func val(_ f: String, _ d: String) -> String { form.map { $0.text(f) } ?? d }
        var b = notice.html + scopeSelector(action: "/connection", config: config, current: target?.name)
        b += "<form method=\"post\" action=\"/connection\">\(csrfField(page.csrf))"
        b += "<input type=\"hidden\" name=\"target\" value=\"\(h(target?.name ?? ""))\">"
        b += "<p class=\"muted\">\(target == nil ? "Global defaults, inherited by every target that does not set the same value." : "Overrides for this target; Default inherits the global value.") "
        b += "Empty fields and “Default” leave the setting unset.</p>"
        b += "<table><tr><th>Setting</th><th>Value</th><th>Default</th><th>Takes effect</th></tr>"
        for s in Self.intSettings {
            let v = val(s.key.rawValue, cur[keyPath: s.field].map(String.init) ?? "")
            b += "<tr><td><label for=\"\(s.key.rawValue)\">\(h(s.label))</label></td><td>\(textInput(s.key.rawValue, v, size: 10, placeholder: "Default")) \(s.unit)</td>"
            let d = inherited[keyPath: s.effective]
            b += "<td>\(s.key == .maxSessions && d == 0 ? "unlimited" : String(d))</td><td>\(applyModeBadge(s.key))</td></tr>"
        }
        for (key, label, field, eff) in [
            (SettingKey.initialR2T, "Allow clients to send data after commands? (InitialR2T)", \ConnectionSettings.initialR2T, inherited.initialR2T),
            (.immediateData, "Allow clients to append data to commands? (ImmediateData)", \ConnectionSettings.immediateData, inherited.immediateData),
        ] {
            let v = val(key.rawValue, cur[keyPath: field].map { $0 ? "yes" : "no" } ?? "")
            b += "<tr><td><label for=\"\(key.rawValue)\">\(h(label))</label></td><td><select name=\"\(key.rawValue)\" id=\"\(key.rawValue)\">"
            b += option("", "Default", v) + option("yes", "Yes", v) + option("no", "No", v)
            b += "</select></td><td>\(eff ? "Yes" : "No")</td><td>\(applyModeBadge(key))</td></tr>"
        }
        b += "<tr><td><label for=\"headerDigest\">Header digest</label></td><td>\(digestSelect("headerDigest", val("headerDigest", digestChoice(cur.headerDigest)), defaultLabel: "Default"))</td>"
        b += "<td>\(digestChoice(inherited.headerDigest))</td><td>\(applyModeBadge(.headerDigest))</td></tr>"
        b += "<tr><td><label for=\"dataDigest\">Data digest</label></td><td>\(digestSelect("dataDigest", val("dataDigest", digestChoice(cur.dataDigest)), defaultLabel: "Default"))</td>"
        b += "<td>\(digestChoice(inherited.dataDigest))</td><td>\(applyModeBadge(.dataDigest))</td></tr>"
        b += "</table><p class=\"muted\">When initiator and target differ, InitialR2T combines with OR, ImmediateData with AND, lengths take the minimum.</p>"
        b += "<p><button type=\"submit\" id=\"save\">Save</button></p></form>"
        return htmlResponse(layout(title: "Connection Settings", csrf: page.csrf, body: b), status: status)
    }

    func saveConnection(_ page: Page) async throws -> Response {
        let f = page.form
        var cs = ConnectionSettings()
        var problems: [String] = []
        for s in Self.intSettings {
            let t = f.text(s.key.rawValue)
            if t.isEmpty { continue }
            if let v = Int(t) { cs[keyPath: s.field] = v } else { problems.append("\(s.label): \"\(t)\" is not a whole number") }
        }
        for (key, field) in [(SettingKey.initialR2T, \ConnectionSettings.initialR2T), (.immediateData, \ConnectionSettings.immediateData)] {
            switch f.text(key.rawValue) {
            case "yes": cs[keyPath: field] = true
            case "no": cs[keyPath: field] = false
            default: break
            }
        }
        if let hd = parseDigestChoice(f.text("headerDigest")), let dd = parseDigestChoice(f.text("dataDigest")) {
            cs.headerDigest = hd
            cs.dataDigest = dd
        } else {
            problems.append("Digest must be None, CRC32C or a comma-separated preference list")
        }
        if !problems.isEmpty { return try await connectionPage(page, notice: Notice(errors: problems), status: .badRequest, useForm: true) }
        let scope = f.text("target")
        let settings = cs
        do {
            let report = try await audited(page).update { c in
                if scope.isEmpty {
                    c.defaults.connection = settings.isEmpty ? nil : settings
                } else {
                    guard let i = c.targetIndex(named: scope) else { throw AdminError(.notFound, "There is no target named \(scope)") }
                    c.targets[i].connection = settings.isEmpty ? nil : settings
                }
            }
            var p = page
            p.query = FormData(pairs: [("target", scope)])
            return try await connectionPage(p, notice: .applied(report, "Saved."), status: .ok)
        } catch {
            return try await connectionPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), useForm: true)
        }
    }

    // MARK: - Timeout settings

    func timeoutsPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, useForm: Bool = false) async throws -> Response {
        let config = await backend.configuration()
        let scopeName = (useForm ? page.form.text("target") : page.query.text("target"))
        let target = scopeName.isEmpty ? nil : config.target(named: scopeName)
        if !scopeName.isEmpty && target == nil {
            return htmlResponse(layout(title: "No such target", csrf: page.csrf, body: "<p>There is no target named <code>\(h(scopeName))</code>.</p>"), status: .notFound)
        }
        let cur = target.map { $0.timeouts ?? TimeoutSettings() } ?? (config.defaults.timeouts ?? TimeoutSettings())
        let inherited = target == nil ? EffectiveTimeoutSettings.builtIn : config.defaultTimeouts
        let form: FormData? = useForm ? page.form : nil
        func val(_ f: String, _ d: String) -> String { form.map { $0.text(f) } ?? d }
        let never = form.map { $0.has("nopNever") } ?? (cur.nopInInterval == 0)
        var b = notice.html + scopeSelector(action: "/timeouts", config: config, current: target?.name)
        b += "<form method=\"post\" action=\"/timeouts\">\(csrfField(page.csrf))"
        b += "<input type=\"hidden\" name=\"target\" value=\"\(h(target?.name ?? ""))\">"
        b += "<p class=\"muted\">Empty fields use the default.</p>"
        b += "<table><tr><th>Setting</th><th>Value</th><th>Default</th><th>Takes effect</th></tr>"
        let interval = never ? "" : val("nopInInterval", cur.nopInInterval.map(String.init) ?? "")
        b += "<tr><td><label for=\"nopInInterval\">Seconds between NOP-In pings on an idle connection</label></td><td>"
        b += "<label><input type=\"checkbox\" name=\"nopNever\" value=\"1\" id=\"nopNever\"\(checked(never))> Never ping</label> or "
        b += "\(textInput("nopInInterval", interval, size: 6, placeholder: "Default")) s</td>"
        b += "<td>\(inherited.nopInInterval == 0 ? "never" : "\(inherited.nopInInterval) s")</td><td>\(applyModeBadge(.nopInInterval))</td></tr>"
        b += "<tr><td><label for=\"nopInTimeout\">Seconds to wait for the ping answer before dropping the connection</label></td>"
        b += "<td>\(textInput("nopInTimeout", val("nopInTimeout", cur.nopInTimeout.map(String.init) ?? ""), size: 6, placeholder: "Default")) s</td>"
        b += "<td>\(inherited.nopInTimeout) s</td><td>\(applyModeBadge(.nopInTimeout))</td></tr>"
        b += "<tr><td><label for=\"loginTimeout\">Seconds a login may take</label></td>"
        b += "<td>\(textInput("loginTimeout", val("loginTimeout", cur.loginTimeout.map(String.init) ?? ""), size: 6, placeholder: "Default")) s</td>"
        b += "<td>\(inherited.loginTimeout) s</td><td>\(applyModeBadge(.loginTimeout))</td></tr>"
        b += "</table><p><button type=\"submit\" id=\"save\">Save</button></p></form>"
        return htmlResponse(layout(title: "Timeout Settings", csrf: page.csrf, body: b), status: status)
    }

    func saveTimeouts(_ page: Page) async throws -> Response {
        let f = page.form
        var ts = TimeoutSettings()
        var problems: [String] = []
        func num(_ name: String, _ label: String) -> Int? {
            let t = f.text(name)
            if t.isEmpty { return nil }
            guard let v = Int(t) else { problems.append("\(label): \"\(t)\" is not a whole number"); return nil }
            return v
        }
        ts.nopInInterval = f.has("nopNever") ? 0 : num("nopInInterval", "Ping interval")
        ts.nopInTimeout = num("nopInTimeout", "Ping timeout")
        ts.loginTimeout = num("loginTimeout", "Login timeout")
        if !problems.isEmpty { return try await timeoutsPage(page, notice: Notice(errors: problems), status: .badRequest, useForm: true) }
        let scope = f.text("target")
        let settings = ts
        do {
            let report = try await audited(page).update { c in
                if scope.isEmpty {
                    c.defaults.timeouts = settings.isEmpty ? nil : settings
                } else {
                    guard let i = c.targetIndex(named: scope) else { throw AdminError(.notFound, "There is no target named \(scope)") }
                    c.targets[i].timeouts = settings.isEmpty ? nil : settings
                }
            }
            var p = page
            p.query = FormData(pairs: [("target", scope)])
            return try await timeoutsPage(p, notice: .applied(report, "Saved."), status: .ok)
        } catch {
            return try await timeoutsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), useForm: true)
        }
    }
}

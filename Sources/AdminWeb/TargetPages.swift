import AdminCore
import Foundation
import Hummingbird
import TargetConfig

extension AdminWebServer {
    // MARK: - Target list (index)

    func targetList(_ page: Page, notice: Notice, status: HTTPResponse.Status = .ok) async throws -> Response {
        let config = await backend.configuration()
        let statuses = await backend.targetStatuses()
        let byName = Dictionary(statuses.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        var b = notice.html
        b += "<form method=\"post\" action=\"/targets/delete\">\(csrfField(page.csrf))"
        b += "<p><a href=\"/targets/new\" id=\"add-target\">Add a new iSCSI target</a></p>"
        if config.targets.isEmpty {
            b += "<p>No iSCSI targets have been defined yet.</p>"
        } else {
            b += "<table id=\"targets\"><tr><th></th><th>Target name</th><th>Alias</th><th>LUN paths</th><th>Total size</th>"
            b += "<th>Allowed users</th><th>Sessions</th><th>State</th><th>Control</th></tr>"
            for t in config.targets {
                let e = config.effective(t)
                let st = byName[t.name.lowercased()]
                let paths = e.luns.map { "LUN \($0.id): \(h($0.path))" + ($0.readOnly ? " (read-only)" : "") }.joined(separator: "<br>")
                let total: UInt64 = e.luns.reduce(0) { acc, l in acc + (st?.lunSizes[l.id] ?? l.size ?? 0) }
                let users = e.auth.incomingUsers.map(\.user)
                var usersText = users.prefix(5).map(h).joined(separator: ", ")
                if users.count > 5 { usersText += ", …" }
                if users.isEmpty { usersText = "<span class=\"muted\">anyone (no CHAP)</span>" }
                if e.inherited.contains("auth") && !users.isEmpty { usersText += " <span class=\"muted\">(default)</span>" }
                b += "<tr><td><input type=\"checkbox\" name=\"sel\" value=\"\(h(t.name))\"></td>"
                b += "<td class=\"iqn\"><a href=\"/target?name=\(q(t.name))\">\(h(t.name))</a></td><td>\(h(t.alias ?? ""))</td>"
                b += "<td>\(paths.isEmpty ? "<span class=\"muted\">no LUNs</span>" : paths)</td>"
                b += "<td>\(total > 0 ? formatBytes(total) : "–")</td><td>\(usersText)</td>"
                b += "<td><a href=\"/sessions\">\(st?.sessions ?? 0)</a></td>"
                let state = st.map { $0.running ? "running" : "stopped" } ?? "unknown"
                b += "<td><span class=\"state state-\(state)\">\(state)</span></td><td>"
                for a in ServiceAction.allCases {
                    b += "<button type=\"submit\" formaction=\"/service\" name=\"op\" value=\"\(a.rawValue) \(h(t.name))\">\(a.rawValue.capitalized)</button> "
                }
                b += "</td></tr>"
            }
            b += "</table><p><button type=\"submit\" id=\"delete-selected\">Delete selected targets</button></p>"
        }
        b += "<h2>iSCSI server</h2><p>"
        for a in ServiceAction.allCases {
            b += "<button type=\"submit\" formaction=\"/service\" name=\"op\" value=\"\(a.rawValue)\" id=\"server-\(a.rawValue)\">\(a.rawValue.capitalized) all targets</button> "
        }
        b += "</p><p class=\"muted\">Start and stop apply to every target; Restart drops all sessions and starts the targets again. "
        b += "Each target can also be controlled on its own. Starting at boot is the init system's job (systemctl enable swift-targetd).</p>"
        b += "</form>"
        b += "<p>Global settings: <a href=\"/auth\">Authentication</a> · <a href=\"/connection\">Connection Settings</a> · "
        b += "<a href=\"/timeouts\">Timeout Settings</a> · <a href=\"/clients\">Allowed Client Addresses</a> · "
        b += "<a href=\"/lunmaps\">LUN Maps</a> · "
        b += "<a href=\"/servers\">Server Addresses and Portals</a> · <a href=\"/sessions\">Sessions</a> · "
        b += "<a href=\"/statistics\">Statistics</a></p>"
        return htmlResponse(layout(title: "iSCSI Targets", csrf: page.csrf, body: b), status: status)
    }

    /// A target delete is asked once more (`confirmation`), naming the initiators logged in.
    func confirmDelete(_ page: Page, names: [String], action: String, field: String) async -> Response? {
        guard page.form.text("confirm") != "yes" else { return nil }
        let sessions = await backend.sessions()
        let items = names.map { name -> String in
            let live = sessions.loggedIn(to: name)
            return "\(name): " + (live.isEmpty ? "no live sessions"
                : "\(live.count) live session(s) (\(live.initiatorNames.joined(separator: ", "))), which will be logged out")
        }
        return confirmation(page, action: action, title: "Delete targets", items: items, carrying: [field], back: "/",
                            heading: names.count == 1 ? "Delete this target?" : "Delete these \(names.count) targets?")
    }

    func deleteTargets(_ page: Page) async throws -> Response {
        let names = Set(page.form.all("sel").map { $0.lowercased() })
        guard !names.isEmpty else { return try await targetList(page, notice: .error("No targets selected."), status: .badRequest) }
        if let ask = await confirmDelete(page, names: page.form.all("sel"), action: "/targets/delete", field: "sel") { return ask }
        do {
            let report = try await audited(page).update { c in c.targets.removeAll { names.contains($0.name.lowercased()) } }
            return try await targetList(page, notice: .applied(report, "Deleted \(names.count) target(s)."))
        } catch {
            return try await targetList(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }

    func service(_ page: Page) async throws -> Response {
        let op = page.form.text("op").split(separator: " ", maxSplits: 1).map(String.init)
        guard let first = op.first, let action = ServiceAction(rawValue: first) else {
            return try await targetList(page, notice: .error("Unknown action."), status: .badRequest)
        }
        let target = op.count > 1 ? op[1] : nil
        do {
            try await backend.control(action, target: target)
            logger.notice("web: \(page.session.user) \(action.rawValue) \(target ?? "all targets")")
            let what = target.map { "target \($0)" } ?? "all targets"
            let done = ["start": "Started", "stop": "Stopped", "restart": "Restarted"][action.rawValue]!
            let note = Notice(info: ["\(done) \(what)."])
            if let target, page.form.text("from") == "target" {
                return try await targetForm(page, name: target, notice: note, status: .ok, useForm: false)
            }
            return try await targetList(page, notice: note)
        } catch {
            return try await targetList(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }

    // MARK: - Add / edit a target

    /// The prefix most targets already use, else `iqn.YYYY-MM.<reversed host name>`.
    func defaultPrefix(_ config: Config) -> String {
        var counts: [String: Int] = [:]
        for t in config.targets where t.name.hasPrefix("iqn.") {
            if let colon = t.name.firstIndex(of: ":") { counts[String(t.name[..<colon]), default: 0] += 1 }
        }
        if let best = counts.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) { return best.key }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM"
        let host = options.hostName().lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
        let labels = host.split(separator: ".").filter { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }
        let reversed = labels.isEmpty ? "localhost" : labels.reversed().joined(separator: ".")
        return "iqn.\(f.string(from: Date())).\(reversed)"
    }

    /// Renders the add form (`name == nil`) or the edit form. With `useForm`, field values come
    /// from the submitted form (after an error) instead of the configuration.
    func targetForm(_ page: Page, name: String?, notice: Notice, status: HTTPResponse.Status, useForm: Bool = false) async throws -> Response {
        let config = await backend.configuration()
        let form: FormData? = useForm ? page.form : nil
        var existing: Target?
        if let name {
            guard let t = config.target(named: name) else {
                return htmlResponse(layout(title: "No such target", csrf: page.csrf,
                                           body: "<p>There is no target named <code>\(h(name))</code>. <a href=\"/\">Back to the list</a></p>"),
                                    status: .notFound)
            }
            existing = t
        }
        let statuses = await backend.targetStatuses()
        let st = existing.flatMap { t in statuses.first { $0.name.lowercased() == t.name.lowercased() } }
        func val(_ field: String, _ dflt: String) -> String { form.map { $0.has(field) ? $0.text(field) : dflt } ?? dflt }

        var b = notice.html
        b += "<form method=\"post\" action=\"\(existing == nil ? "/targets/new" : "/target")\">\(csrfField(page.csrf))"
        b += "<fieldset><legend>Target</legend>"
        if let t = existing {
            b += "<input type=\"hidden\" name=\"name\" value=\"\(h(t.name))\"><p>Name: <code>\(h(t.name))</code> "
            b += st.map { $0.running ? "(running, \($0.sessions) session(s))" : "(stopped)" } ?? ""
            b += "</p>"
        } else {
            b += "<p><label for=\"prefix\">Name</label>\(textInput("prefix", val("prefix", defaultPrefix(config)), size: 34)) : "
            b += "\(textInput("suffix", val("suffix", ""), size: 20, placeholder: "e.g. storage1"))</p>"
            b += "<p class=\"muted\">The full name is prefix:suffix (iqn.YYYY-MM.reversed.domain:anything, lower case), "
            b += "or leave the suffix empty to use the prefix field as the whole name (eui./naa. names too).</p>"
        }
        b += "<p><label for=\"alias\">Alias</label>\(textInput("alias", val("alias", existing?.alias ?? ""))) \(applyModeBadge(.alias))</p>"
        b += "</fieldset>"

        // LUNs
        b += "<fieldset><legend>LUNs</legend>"
        if let t = existing, !t.luns.isEmpty {
            b += "<table id=\"luns\"><tr><th>LUN</th><th>Backing</th><th>Path \(applyModeBadge(.lunBacking))</th><th>Served size</th>"
            b += "<th>Image size \(applyModeBadge(.lunSize))</th><th>IO mode \(applyModeBadge(.lunReadOnly))</th><th>Remove \(applyModeBadge(.lunRemoved))</th></tr>"
            for l in t.luns {
                let mode = val("mode_\(l.id)", ioMode(l))
                let size = st?.lunSizes[l.id] ?? l.size
                b += "<tr><td>\(l.id)</td><td>\(l.backstore.rawValue)</td><td>\(textInput("path_\(l.id)", val("path_\(l.id)", l.path)))</td>"
                b += "<td>\(size.map(formatBytes) ?? "–")</td><td>"
                b += l.backstore.isSizedByDevice ? "<span class=\"muted\">device size</span>" : textInput("size_\(l.id)", val("size_\(l.id)", shortSize(l.size)), size: 8)
                b += "</td><td>\(ioModeSelect("mode_\(l.id)", mode))</td>"
                let removing = form?.all("remove_lun").contains(String(l.id)) ?? false
                b += "<td><input type=\"checkbox\" name=\"remove_lun\" value=\"\(l.id)\"\(checked(removing))></td></tr>"
            }
            b += "</table>"
        }
        let devices = options.blockDevices()
        // Ceph images of the pool asked for with the "List images" form below the main form.
        let rbdPool = page.query.text("rbd_pool")
        var rbdOptions: [String: String] = [:]
        for key in ["conf", "id"] where !page.query.text("rbd_\(key)").isEmpty { rbdOptions[key] = page.query.text("rbd_\(key)") }
        var rbdImages: [String] = []
        if !rbdPool.isEmpty {
            let (pool, opts, list) = (rbdPool, rbdOptions, options.rbdImages)
            do {
                rbdImages = try await Task.detached { try list(pool, opts) }.value
                if rbdImages.isEmpty { b += "<p class=\"muted\">Pool \(h(rbdPool)) has no images.</p>" }
            } catch {
                b += "<p class=\"error\">Cannot list the images of pool \(h(rbdPool)): \(h("\(error)"))</p>"
            }
            for (key, value) in rbdOptions { b += "<input type=\"hidden\" name=\"rbd_\(key)\" value=\"\(h(value))\">" }
        }
        let rows = existing == nil ? 3 : 2
        b += "<p>Add LUNs \(applyModeBadge(.lunAdded)) (rows with no device and no path are ignored):</p>"
        b += "<table id=\"new-luns\"><tr><th>LUN id</th><th>Device</th><th>or file / device path</th><th>Kind</th><th>Size (new images)</th><th>IO mode</th></tr>"
        for k in 0..<rows {
            let dev = val("new_dev_\(k)", "")
            b += "<tr><td>\(textInput("new_id_\(k)", val("new_id_\(k)", ""), size: 4, placeholder: "auto"))</td>"
            b += "<td><select name=\"new_dev_\(k)\" id=\"new_dev_\(k)\">\(option("", "Other file or device →", dev))"
            for d in devices {
                b += option(d.path, "\(d.path) (\(d.kindLabel), \(formatBytes(d.sizeBytes)))", dev)
            }
            for image in rbdImages {
                b += option("rbd:\(rbdPool)/\(image)", "rbd:\(rbdPool)/\(image) (Ceph image)", dev)
            }
            b += "</select></td><td>\(textInput("new_path_\(k)", val("new_path_\(k)", ""), placeholder: "/var/lib/swifttarget/disk1.img"))</td>"
            let kind = val("new_kind_\(k)", "file")
            b += "<td><select name=\"new_kind_\(k)\" id=\"new_kind_\(k)\">"
            for choice in BackstoreKind.allCases { b += option(choice.rawValue, choice.label, kind) }
            b += "</select></td><td>\(textInput("new_size_\(k)", val("new_size_\(k)", ""), size: 8, placeholder: "64M, 10G"))</td>"
            b += "<td>\(ioModeSelect("new_mode_\(k)", val("new_mode_\(k)", "wt")))</td></tr>"
        }
        b += "</table><p class=\"muted\">A device chosen in the list is served raw. Image files are created with the given size if missing. "
        b += "Write-back is faster but can lose acknowledged writes on power failure unless initiators flush.</p>"
        b += "<p class=\"muted\">Ceph RBD images: list a pool's images with the form below the page, then pick one here.</p></fieldset>"

        // Authentication
        let ownAuth = form.map { $0.text("auth_src") == "own" } ?? (existing?.auth != nil)
        b += "<fieldset><legend>Authentication \(applyModeBadge(.auth))</legend>"
        b += "<p><label><input type=\"radio\" name=\"auth_src\" value=\"inherit\"\(checked(!ownAuth))> Use the default authentication "
        b += "(<a href=\"/auth\">Authentication settings</a>: \(h(config.defaults.auth?.summary ?? "none")))</label><br>"
        b += "<label><input type=\"radio\" name=\"auth_src\" value=\"own\" id=\"auth_own\"\(checked(ownAuth))> Use these settings for this target:</label></p>"
        b += AuthEditor.render(prefix: "t", current: existing?.auth, form: form)
        b += "</fieldset>"

        // Digests
        let hd = val("hd", digestChoice(existing?.connection?.headerDigest))
        let dd = val("dd", digestChoice(existing?.connection?.dataDigest))
        let dflt = config.defaultConnection
        b += "<fieldset><legend>Digests</legend>"
        b += "<p><label for=\"hd\">Header digest</label>\(digestSelect("hd", hd, defaultLabel: "Default (\(digestChoice(dflt.headerDigest)))")) \(applyModeBadge(.headerDigest))</p>"
        b += "<p><label for=\"dd\">Data digest</label>\(digestSelect("dd", dd, defaultLabel: "Default (\(digestChoice(dflt.dataDigest)))")) \(applyModeBadge(.dataDigest))</p>"
        if let t = existing {
            b += "<p>More: <a href=\"/connection?target=\(q(t.name))\">connection settings</a> · "
            b += "<a href=\"/timeouts?target=\(q(t.name))\">timeouts</a> · <a href=\"/clients\">allowed clients</a> · "
            b += "<a href=\"/servers\">server addresses</a> for this target.</p>"
        }
        b += "</fieldset>"
        b += "<p><button type=\"submit\" id=\"save\">\(existing == nil ? "Create target" : "Save")</button>"
        if let t = existing {
            b += " <button type=\"submit\" formaction=\"/target/delete\" id=\"delete\">Delete target</button>"
            b += "<input type=\"hidden\" name=\"from\" value=\"target\">"
            for a in ServiceAction.allCases {
                b += " <button type=\"submit\" formaction=\"/service\" name=\"op\" value=\"\(a.rawValue) \(h(t.name))\">\(a.rawValue.capitalized) target</button>"
            }
        }
        b += "</p></form>"
        // Its own GET form, so listing images never sends the main form's fields (secrets) in a URL.
        b += "<form method=\"get\" action=\"\(existing == nil ? "/targets/new" : "/target")\" id=\"rbd-picker\"><fieldset><legend>Ceph RBD images</legend>"
        if let t = existing { b += "<input type=\"hidden\" name=\"name\" value=\"\(h(t.name))\">" }
        b += "<p><label for=\"rbd_pool\">Pool</label>\(textInput("rbd_pool", rbdPool, placeholder: "rbd")) "
        b += "<label for=\"rbd_conf\">ceph.conf</label>\(textInput("rbd_conf", page.query.text("rbd_conf"), placeholder: "/etc/ceph/ceph.conf")) "
        b += "<label for=\"rbd_id\">client</label>\(textInput("rbd_id", page.query.text("rbd_id"), size: 8, placeholder: "admin")) "
        b += "<button type=\"submit\" id=\"list-images\">List images</button></p></fieldset></form>"
        let title = existing.map { "Edit iSCSI target \($0.name)" } ?? "Add a new iSCSI target"
        return htmlResponse(layout(title: title, csrf: page.csrf, body: b), status: status)
    }

    /// `64M`, `2G` or bytes, as typed in the size fields.
    func shortSize(_ s: UInt64?) -> String {
        guard let s else { return "" }
        if s % (1 << 30) == 0 { return "\(s >> 30)G" }
        if s % (1 << 20) == 0 { return "\(s >> 20)M" }
        return String(s)
    }

    func ioMode(_ l: LUN) -> String { l.readOnly ? "ro" : (l.writeCache == .writeBack ? "wb" : "wt") }

    func ioModeSelect(_ name: String, _ current: String) -> String {
        "<select name=\"\(h(name))\" id=\"\(h(name))\">" + option("wt", "write-through", current)
            + option("wb", "write-back", current) + option("ro", "read-only", current) + "</select>"
    }

    struct NewLUN: Sendable {
        var id: Int?
        var kind: BackstoreKind
        var path: String
        var size: UInt64?
        var readOnly: Bool
        var writeCache: WriteCacheMode
        var options: [String: String] = [:]
    }

    func parseNewLUNs(_ form: FormData) throws(FormProblems) -> [NewLUN] {
        var out: [NewLUN] = []
        var problems: [String] = []
        for k in 0..<10 {
            let dev = form.text("new_dev_\(k)")
            let typed = form.text("new_path_\(k)")
            let path = dev.isEmpty ? typed : dev
            if path.isEmpty { continue }
            var kind = BackstoreKind(rawValue: form.text("new_kind_\(k)")) ?? .file
            var lunOptions: [String: String] = [:]
            var location = path
            if dev.hasPrefix("rbd:") {
                // An image from the picker: rbd, with the cluster options it was listed with.
                kind = .rbd
                location = String(dev.dropFirst(4))
                for key in ["conf", "id"] where !form.text("rbd_\(key)").isEmpty { lunOptions[key] = form.text("rbd_\(key)") }
            } else if !dev.isEmpty {
                kind = .raw
            }
            var id: Int?
            let idText = form.text("new_id_\(k)")
            if !idText.isEmpty {
                guard let v = Int(idText) else { problems.append("New LUN \(path): id \"\(idText)\" is not a number"); continue }
                id = v
            }
            var size: UInt64?
            let sizeText = form.text("new_size_\(k)")
            if !sizeText.isEmpty {
                guard let v = parseSize(sizeText) else {
                    problems.append("New LUN \(path): size \"\(sizeText)\" is not a size (e.g. 64M, 10G or bytes)")
                    continue
                }
                size = v
            }
            let mode = form.text("new_mode_\(k)")
            out.append(NewLUN(id: id, kind: kind, path: location, size: size, readOnly: mode == "ro",
                              writeCache: mode == "wb" ? .writeBack : .writeThrough, options: lunOptions))
        }
        if !problems.isEmpty { throw FormProblems(problems) }
        return out
    }

    func saveTarget(_ page: Page, existing: String?) async throws -> Response {
        let form = page.form
        let config = await backend.configuration()
        func fail(_ errors: [String], _ st: HTTPResponse.Status) async throws -> Response {
            try await targetForm(page, name: existing, notice: Notice(errors: errors), status: st, useForm: true)
        }
        var name: String
        // Every problem of the form is reported at once.
        var problems: [String] = []
        var conflict = false
        if let existing {
            guard let t = config.target(named: existing) else { return try await fail(["There is no target named \(existing)"], .notFound) }
            name = t.name
        } else {
            var prefix = form.text("prefix")
            while prefix.hasSuffix(":") { prefix.removeLast() }
            let suffix = form.text("suffix")
            name = suffix.isEmpty ? prefix : "\(prefix):\(suffix)"
            if let p = ISCSIName.problem(name) { problems.append("Target name \(name) is not valid: \(p)") }
            if config.target(named: name) != nil {
                problems.append("A target named \(name) already exists")
                conflict = true
            }
        }
        let aliasText = form.text("alias")
        let alias: String? = aliasText.isEmpty ? nil : aliasText
        var auth: AuthSettings?
        if form.text("auth_src") == "own" {
            do { auth = try AuthEditor.parse(prefix: "t", form: form, old: config.target(named: name)?.auth) } catch { problems += error.messages }
        } else if AuthEditor.hasEntries(prefix: "t", form: form, old: config.target(named: name)?.auth) {
            problems.append("CHAP users were entered but “Use the default authentication” is selected; choose “Use these settings for this target” to keep them")
        }
        var newLUNs: [NewLUN] = []
        do { newLUNs = try parseNewLUNs(form) } catch { problems += error.messages }
        let hd = parseDigestChoice(form.text("hd")), dd = parseDigestChoice(form.text("dd"))
        if hd == nil || dd == nil { problems.append("Digest must be None, CRC32C or a comma-separated preference list") }
        var edits: [Int: (path: String?, size: UInt64?)] = [:]
        for l in config.target(named: name)?.luns ?? [] {
            var e: (path: String?, size: UInt64?) = (nil, nil)
            let path = form.text("path_\(l.id)")
            if !path.isEmpty && path != l.path { e.path = path }
            let sizeText = form.text("size_\(l.id)")
            if !sizeText.isEmpty && !l.backstore.isSizedByDevice {
                if let v = parseSize(sizeText) {
                    if v != l.size { e.size = v }
                } else {
                    problems.append("LUN \(l.id): size \"\(sizeText)\" is not a size (e.g. 64M, 10G or bytes)")
                }
            }
            if e.path != nil || e.size != nil { edits[l.id] = e }
        }
        if !problems.isEmpty { return try await fail(problems, conflict && problems.count == 1 ? .conflict : .badRequest) }
        let lunEdits = edits
        let removes = Set(form.all("remove_lun").compactMap(Int.init))
        var modes: [Int: String] = [:]
        for (k, v) in form.pairs where k.hasPrefix("mode_") { if let id = Int(k.dropFirst(5)) { modes[id] = v } }
        let isNew = existing == nil
        let targetName = name
        let newAuth = auth
        let lunModes = modes
        let addLUNs = newLUNs
        do {
            let report = try await audited(page).update { c in
                if isNew { c.targets.append(Target(name: targetName)) }
                guard let i = c.targetIndex(named: targetName) else { throw AdminError(.notFound, "There is no target named \(targetName)") }
                c.targets[i].alias = alias
                c.targets[i].auth = newAuth
                var conn = c.targets[i].connection ?? ConnectionSettings()
                conn.headerDigest = hd ?? nil
                conn.dataDigest = dd ?? nil
                c.targets[i].connection = conn.isEmpty ? nil : conn
                c.targets[i].luns.removeAll { removes.contains($0.id) }
                // Mappings of removed LUNs go with them (as through the API).
                c.targets[i].lunMaps = c.targets[i].lunMaps.map { maps in
                    maps.map { m in
                        var m = m
                        m.luns.removeAll { removes.contains($0.lun) }
                        return m
                    }
                }
                for j in c.targets[i].luns.indices {
                    let id = c.targets[i].luns[j].id
                    if let e = lunEdits[id] {
                        if let p = e.path { c.targets[i].luns[j].path = p }
                        if let sz = e.size { c.targets[i].luns[j].size = sz }
                    }
                    guard let m = lunModes[id] else { continue }
                    c.targets[i].luns[j].readOnly = m == "ro"
                    c.targets[i].luns[j].writeCache = m == "wb" ? .writeBack : .writeThrough
                }
                for l in addLUNs {
                    try c.addLUN(toTarget: targetName, id: l.id, backstore: l.kind, path: l.path, size: l.size,
                                 readOnly: l.readOnly, writeCache: l.writeCache, options: l.options)
                }
            }
            let note = isNew ? "Created target \(targetName)." : "Saved target \(targetName)."
            return try await targetForm(page, name: targetName, notice: .applied(report, note), status: .ok)
        } catch {
            return try await fail(message(of: error), status(for: error))
        }
    }

    func deleteTarget(_ page: Page) async throws -> Response {
        let name = page.form.text("name")
        if (await backend.configuration()).target(named: name) != nil,
           let ask = await confirmDelete(page, names: [name], action: "/target/delete", field: "name") { return ask }
        do {
            let report = try await audited(page).update { c in
                guard let i = c.targetIndex(named: name) else { throw AdminError(.notFound, "There is no target named \(name)") }
                c.targets.remove(at: i)
            }
            return try await targetList(page, notice: .applied(report, "Deleted target \(name)."))
        } catch {
            return try await targetList(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }
}

import AdminCore
import Foundation
import Hummingbird
import TargetConfig

extension AdminWebServer {
    // MARK: - LUN maps (which LUNs each initiator sees)

    func lunMapsPage(_ page: Page, notice: Notice, status: HTTPResponse.Status, useForm: Bool = false) async throws -> Response {
        let config = await backend.configuration()
        let form: FormData? = useForm ? page.form : nil
        var b = notice.html
        b += "<p>A target's LUN maps decide which of its LUNs an initiator sees and at which numbers. The "
        b += "<strong>first map whose pattern matches</strong> the initiator's name decides; an initiator no map names "
        b += "sees every LUN. A last map for <code>*</code> with no LUNs hides the LUNs from everyone else. "
        b += "\(applyModeBadge(.lunMaps))</p>"
        for t in config.targets {
            let maps = t.lunMaps ?? []
            b += "<h2>Target \(h(t.name))</h2>"
            b += "<form method=\"post\" action=\"/lunmaps/delete\">\(csrfField(page.csrf))<input type=\"hidden\" name=\"target\" value=\"\(h(t.name))\">"
            if maps.isEmpty {
                b += "<p class=\"muted\">No LUN maps: every initiator sees every LUN.</p></form>"
                continue
            }
            b += "<table class=\"lunmaps\"><tr><th></th><th>#</th><th>Initiators</th><th>LUNs they see</th><th>Comment</th></tr>"
            for (i, m) in maps.enumerated() {
                let luns = m.luns.isEmpty ? "<span class=\"muted\">none</span>"
                    : m.luns.map { "LUN \($0.mappedLun) → LUN \($0.lun) (\(h(t.lun($0.lun)?.path ?? "?")))\($0.readOnly ? " read-only" : "")" }
                        .joined(separator: "<br>")
                b += "<tr><td><input type=\"checkbox\" name=\"sel\" value=\"\(i)\"></td><td>\(i + 1)</td>"
                b += "<td>\(m.initiators.map { "<code>\(h($0))</code>" }.joined(separator: " "))</td><td>\(luns)</td><td>\(h(m.comment ?? ""))</td></tr>"
            }
            b += "</table><p><button type=\"submit\" name=\"op\" value=\"delete\">Delete selected maps</button></p></form>"
        }
        guard !config.targets.isEmpty else {
            b += "<p>No targets yet.</p>"
            return htmlResponse(layout(title: "LUN Maps", csrf: page.csrf, body: b), status: status)
        }
        func val(_ f: String, _ d: String) -> String { form.map { $0.text(f) } ?? d }
        b += "<h2>Add a LUN map</h2><form method=\"post\" action=\"/lunmaps/add\">\(csrfField(page.csrf))"
        let cur = val("target", page.query.text("target"))
        b += "<p><label for=\"target\">Target</label><select name=\"target\" id=\"target\">"
        for t in config.targets { b += option(t.name, t.name, cur) }
        b += "</select></p>"
        b += "<p><label for=\"initiators\">Initiators</label>\(textInput("initiators", val("initiators", ""), placeholder: "iqn.1994-05.com.redhat:web*  iqn.2026-01.org.example:db"))</p>"
        b += "<p class=\"muted\">Names or patterns (* and ?), separated by spaces or commas.</p>"
        b += "<p><label for=\"luns\">LUNs</label><textarea name=\"luns\" id=\"luns\" rows=\"4\" cols=\"40\" placeholder=\"0=2\n1=0 ro\">\(h(val("luns", "")))</textarea></p>"
        b += "<p class=\"muted\">One per line: <code>MAPPED=LUN</code> (the target's LUN shown to them as MAPPED), "
        b += "<code>ro</code> after it for read-only. Empty: they see no LUNs.</p>"
        b += "<p><label for=\"comment\">Comment</label>\(textInput("comment", val("comment", "")))</p>"
        let pos = val("position", "end")
        b += "<p><label for=\"position\">Position</label><select name=\"position\" id=\"position\">"
        b += option("end", "after the existing maps", pos) + option("first", "before the existing maps", pos) + "</select></p>"
        b += "<p><button type=\"submit\" id=\"add-lunmap\">Add</button></p></form>"
        return htmlResponse(layout(title: "LUN Maps", csrf: page.csrf, body: b), status: status)
    }

    func parseLUNMap(_ f: FormData) throws(FormProblems) -> LUNMapping {
        var problems: [String] = []
        let initiators = f.text("initiators").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        if initiators.isEmpty { problems.append("Name at least one initiator (or * for everyone)") }
        var luns: [MappedLUN] = []
        for line in f.text("luns").split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: { $0.isWhitespace || $0 == "," }).map(String.init)
            guard let first = words.first else { continue }
            let numbers = first.split(separator: "=").map { Int($0) }
            let readOnly = words.dropFirst() == ["ro"]
            guard numbers.count == 2, let mapped = numbers[0], let lun = numbers[1], words.count == 1 || readOnly else {
                problems.append("\(line) is not MAPPED=LUN (optionally followed by ro)")
                continue
            }
            luns.append(MappedLUN(mappedLun: mapped, lun: lun, readOnly: readOnly))
        }
        if !problems.isEmpty { throw FormProblems(problems) }
        let comment = f.text("comment")
        return LUNMapping(initiators: initiators, luns: luns, comment: comment.isEmpty ? nil : comment)
    }

    func addLUNMap(_ page: Page) async throws -> Response {
        let f = page.form
        let target = f.text("target")
        do {
            let map = try parseLUNMap(f)
            let first = f.text("position") == "first"
            let report = try await audited(page).update { c in
                guard let i = c.targetIndex(named: target) else { throw AdminError(.notFound, "There is no target named \(target)") }
                var maps = c.targets[i].lunMaps ?? []
                if first { maps.insert(map, at: 0) } else { maps.append(map) }
                c.targets[i].lunMaps = maps
            }
            return try await lunMapsPage(page, notice: .applied(report, "Saved."), status: .ok)
        } catch let e as FormProblems {
            return try await lunMapsPage(page, notice: Notice(errors: e.messages), status: .badRequest, useForm: true)
        } catch {
            return try await lunMapsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), useForm: true)
        }
    }

    func deleteLUNMaps(_ page: Page) async throws -> Response {
        let target = page.form.text("target")
        let selected = Set(page.form.all("sel").compactMap(Int.init))
        if !selected.isEmpty {
            let maps = (await backend.configuration()).target(named: target)?.lunMaps ?? []
            let doomed = maps.enumerated().filter { selected.contains($0.offset) }.map { "Map \($0.offset + 1): \($0.element.initiators.joined(separator: " "))" }
            if let ask = confirmation(page, action: "/lunmaps/delete", title: "Delete \(doomed.count) LUN map(s) of \(target)?", items: doomed,
                                      carrying: ["target", "op", "sel"], back: "/lunmaps?target=\(q(target))") { return ask }
        }
        do {
            if selected.isEmpty { throw AdminError(.invalid, "No maps selected") }
            let report = try await audited(page).update { c in
                guard let i = c.targetIndex(named: target) else { throw AdminError(.notFound, "There is no target named \(target)") }
                let maps = (c.targets[i].lunMaps ?? []).enumerated().filter { !selected.contains($0.offset) }.map(\.element)
                c.targets[i].lunMaps = maps.isEmpty ? nil : maps
            }
            return try await lunMapsPage(page, notice: .applied(report), status: .ok)
        } catch {
            return try await lunMapsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }
}
